package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/turnstilemq/turnstile/internal/auth"
	"github.com/turnstilemq/turnstile/internal/auth/oauth"
	"github.com/turnstilemq/turnstile/internal/broker"
	"github.com/turnstilemq/turnstile/internal/config"
	"github.com/turnstilemq/turnstile/internal/directory"
	"github.com/turnstilemq/turnstile/internal/event"
	"github.com/turnstilemq/turnstile/internal/revoke"
	"github.com/turnstilemq/turnstile/internal/tokens"
)

// oauthOptions maps [oauth] onto the provider's options.
func oauthOptions(cfg *config.Config) oauth.Options {
	o := oauth.DefaultOptions()
	c := &cfg.OAuth
	o.Issuer, o.ResourceServerID, o.Audience = c.Issuer, c.ResourceServerID, c.Audience
	o.PreferredUsernameClaims = config.List(c.PreferredUsernameClaims)
	o.AdditionalScopesKeys = config.List(c.AdditionalScopesKeys)
	o.ScopePrefix = cfg.OAuthScopePrefix()
	o.VerifyAud = c.VerifyAud
	o.JWKSCacheTTL, o.JWKSURL, o.JWKSFile = c.JWKSCacheTTL, c.JWKSURL, c.JWKSFile
	o.Leeway = c.Leeway
	if c.Leeway == 0 {
		o.Leeway = -1 // the option's zero means its default; 0 in the file means none
	}
	o.Algorithms = config.List(c.Algorithms)
	return o
}

// credentials is what the broker asks of the providers on a live connection: MQTT 5 AUTH
// re-authentication with a JWT, and $SYS/uploadToken for token and JWT logins.
type credentials struct {
	oauth   *oauth.Provider // nil: no JWT login
	methods []string        // Authentication Methods that carry a JWT
	tokens  *tokens.Service // nil: no token service
}

var _ broker.Credentials = (*credentials)(nil)

func (c *credentials) AcceptsMethod(m string) bool {
	return c.oauth != nil && slices.Contains(c.methods, m)
}

func (c *credentials) Reauthenticate(ctx context.Context, cur *auth.Identity, method string, data []byte, now time.Time) (*auth.Identity, error) {
	if !c.AcceptsMethod(method) {
		return nil, fmt.Errorf("authentication method %q is not offered", method)
	}
	return c.oauth.Verify(ctx, data, cur.Vhost, now)
}

// Upload verifies a $SYS/uploadToken payload: {"token": "…", "type": "R"|"W"|"RW"} (the key
// "Token" too). A token login replaces the token of that type (tokens.md §6); a JWT login
// replaces its JWT, type omitted (will-and-expiry.md §4). The int is the notice code of a
// refusal: 1 unparsable, 2 expired, 3 revoked, 5 wrong type, 8 bad signature.
func (c *credentials) Upload(ctx context.Context, cur *auth.Identity, payload []byte, now time.Time) (*auth.Identity, int, error) {
	switch cur.Method {
	case "token":
		if c.tokens == nil {
			return nil, 1, errors.New("no token service")
		}
		id, code, err := c.tokens.VerifyUpload(cur, payload, now)
		return id, int(code), err
	case "oauth":
		var v struct {
			Token  string `json:"token"`
			Token2 string `json:"Token"`
		}
		if err := json.Unmarshal(payload, &v); err != nil {
			return nil, 1, errors.New("upload payload is not JSON")
		}
		tok := v.Token
		if tok == "" {
			tok = v.Token2
		}
		id, err := c.oauth.Verify(ctx, []byte(tok), cur.Vhost, now)
		switch {
		case err == nil:
			return id, 0, nil
		case errors.Is(err, oauth.ErrExpired):
			return nil, 2, err
		case errors.Is(err, oauth.ErrSignature):
			return nil, 8, err
		}
		return nil, 1, err
	}
	return nil, 1, errors.New("this login carries no token to replace")
}

// owners is the token service's view of the user directory.
type owners struct{ dir *directory.Directory }

func (o owners) UserID(name string) (string, bool) {
	u, ok := o.dir.User(name)
	return u.ID, ok
}

func (o owners) HasAccess(user, vhost string) bool { return o.dir.HasAccess(user, vhost) }

// tokenRevoker keeps the token service's revocations in the one revocation set, so that a
// RevokeToken, an admin revocation by jti, subject or key id, and the broker's checks all read
// the same state.
type tokenRevoker struct{ set *revoke.Set }

func (r tokenRevoker) RevokeToken(jti string, until time.Time) error {
	_, err := r.set.Add(revoke.ByJTI, jti, until)
	return err
}

func (r tokenRevoker) TokenRevoked(jti string) bool {
	_, ok := r.set.Revoked(&auth.Identity{Creds: []auth.CredentialRef{{ID: jti}}}, time.Now())
	return ok
}

// standing is the broker's view of whether a subject is still in good standing: not deleted
// (directory), not revoked (the revocation set), not cut off with its AccessKey (tokens).
type standing struct {
	dir    *directory.Directory
	revs   *revoke.Set
	tokens *tokens.Service
	more   []broker.Standing
}

func (s *standing) Revoked(id *auth.Identity, at time.Time) (string, bool) {
	if r, ok := s.dir.Revoked(id, at); ok {
		return r, true
	}
	if s.revs != nil {
		if _, ok := s.revs.Revoked(id, at); ok {
			return event.WillRevoked, true
		}
	}
	if s.tokens != nil {
		for _, cr := range id.Creds {
			if (cr.Kind == "token" || cr.Kind == "signature") && !s.tokens.AccessKeyValid(cr.Subject) {
				return event.WillRevoked, true
			}
		}
	}
	for _, m := range s.more {
		if r, ok := m.Revoked(id, at); ok {
			return r, true
		}
	}
	return "", false
}

// usesAccessKey reports whether an identity logged in with AccessKey akid.
func usesAccessKey(id *auth.Identity, akid string) bool {
	for _, cr := range id.Creds {
		if (cr.Kind == "token" || cr.Kind == "signature") && cr.Subject == akid {
			return true
		}
	}
	return false
}
