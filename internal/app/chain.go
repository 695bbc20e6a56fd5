package app

import (
	"context"
	"crypto/rand"
	"fmt"

	"github.com/turnstilemq/turnstile/internal/auth"
	"github.com/turnstilemq/turnstile/internal/auth/oauth"
	"github.com/turnstilemq/turnstile/internal/config"
	"github.com/turnstilemq/turnstile/internal/keyfile"
	"github.com/turnstilemq/turnstile/internal/revoke"
	"github.com/turnstilemq/turnstile/internal/tokens"
)

// buildCredentials sets up what logins are checked against besides local users: the
// revocation set, the OAuth2 provider ([main] auth_backends lists oauth), the token service
// ([tokens] port or tls_port), and the chain that asks them all.
func (a *App) buildCredentials() error {
	cfg := a.cfg
	ro := revoke.Options{MaxTokenLifetime: cfg.OAuth.MaxTokenLifetime, Clock: a.opts.Clock, Logger: a.log}
	if a.store != nil {
		ro.Store = a.store
	}
	var err error
	if a.revs, err = revoke.New(ro); err != nil {
		return fmt.Errorf("revocations: %w", err)
	}
	if cfg.UsesOAuth() {
		o := oauthOptions(cfg)
		o.Clock, o.Logger = a.opts.Clock, a.log
		if a.oauth, err = oauth.New(o); err != nil {
			return fmt.Errorf("[oauth]: %w", err)
		}
		a.oauth.Start(context.Background())
	}
	if cfg.Tokens.Enabled() {
		var key []byte
		if f := cfg.TokenKeyFile(); f != "" {
			if key, err = tokens.LoadOrCreateMasterKey(f); err != nil {
				return fmt.Errorf("[tokens] key_file %s: %w", f, err)
			}
		} else { // state in memory only: so is the key
			key = make([]byte, 32)
			rand.Read(key)
		}
		to := tokens.Options{Clock: a.opts.Clock, Logger: a.log, MasterKey: key, Owners: owners{a.dir},
			Revoker: tokenRevoker{a.revs}, MaxLifetime: cfg.Tokens.MaxLifetime, RejectLongExpiry: cfg.Tokens.RejectLongExpiry,
			Legacy: cfg.Tokens.LegacyAPI}
		if a.store != nil {
			to.Store = a.store
		}
		if a.tokens, err = tokens.New(to); err != nil {
			return fmt.Errorf("[tokens]: %w", err)
		}
	}
	a.chain, a.local, err = buildChain(cfg, a.dir.Users(), a.pwKey, a.oauth, a.tokens)
	return err
}

// loadPasswordKey reads or creates the key of the password verifiers ([main] auth_key_file,
// <data_dir>.auth.key by default), or draws one for this process when state lives in memory.
func (a *App) loadPasswordKey() error {
	f := a.cfg.PasswordKeyFile()
	if f == "" {
		a.pwKey = auth.RandomPasswordKey()
		return nil
	}
	k, created, err := keyfile.LoadOrCreate(f)
	if err != nil {
		return fmt.Errorf("[main] auth_key_file: %w", err)
	}
	if created {
		a.createdKeyFile = f
		a.log.Info("created the password verifier key; keep it apart from backups of the data directory", "file", f)
	}
	a.pwKey, err = auth.NewPasswordKey(k)
	return err
}

// buildChain assembles the authentication chain of [main] auth_backends: one chain for every
// login, MQTT and the management API alike, with one rate limiter and one verification cache.
// Certificate login, when on, comes first, then token and signature logins (which name
// themselves by their user name's form) when the token service is on; anonymous access, when
// on, last.
func buildChain(cfg *config.Config, users *auth.Users, pk *auth.PasswordKey, op *oauth.Provider, ts *tokens.Service) (*auth.Chain, *auth.Local, error) {
	loopbackOnly := ""
	if cfg.Main.DefaultUserOnlyLoopback {
		loopbackOnly = cfg.Main.DefaultUser
	}
	var providers []auth.Provider
	var local *auth.Local
	if cfg.MQTT.TLSCertLogin {
		providers = append(providers, &auth.Cert{Users: users, DefaultUserOnlyLoopback: loopbackOnly})
	}
	if ts != nil {
		providers = append(providers, ts.Provider())
	}
	for _, name := range config.List(cfg.Main.AuthBackends) {
		switch name {
		case "oauth":
			providers = append(providers, op)
		case "local":
			var err error
			if local, err = auth.NewLocal(users, auth.LocalOptions{DefaultUserOnlyLoopback: loopbackOnly, Key: pk}); err != nil {
				return nil, nil, err
			}
			providers = append(providers, local)
		default:
			return nil, nil, fmt.Errorf("[main] auth_backends: unknown provider %q", name)
		}
	}
	if cfg.MQTT.AllowAnonymous {
		providers = append(providers, &auth.Anonymous{User: cfg.MQTT.AnonymousUser, Users: users, DefaultUserOnlyLoopback: loopbackOnly})
	}
	return auth.NewChain(providers...), local, nil
}
