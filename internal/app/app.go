package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/turnstilemq/turnstile/internal/audit"
	"github.com/turnstilemq/turnstile/internal/auth"
	"github.com/turnstilemq/turnstile/internal/auth/oauth"
	"github.com/turnstilemq/turnstile/internal/ban"
	"github.com/turnstilemq/turnstile/internal/broker"
	"github.com/turnstilemq/turnstile/internal/clock"
	"github.com/turnstilemq/turnstile/internal/config"
	"github.com/turnstilemq/turnstile/internal/directory"
	"github.com/turnstilemq/turnstile/internal/event"
	"github.com/turnstilemq/turnstile/internal/logging"
	"github.com/turnstilemq/turnstile/internal/mgmt"
	"github.com/turnstilemq/turnstile/internal/revoke"
	"github.com/turnstilemq/turnstile/internal/store"
	"github.com/turnstilemq/turnstile/internal/tokens"
)

// Options are what the configuration does not say.
type Options struct {
	Logger  *slog.Logger // nil: slog.Default()
	Clock   clock.Clock  // nil: the system clock
	Version string       // reported in $SYS and the API
	// Ephemeral binds every configured listener on a free port of its bind address instead of
	// its configured port, for tests; Addr tells where each one is.
	Ephemeral bool
	// Observers receive every event besides the built-in counters.
	Observers []event.Observer
	// Signals makes Run handle SIGHUP (reload the TLS certificate, reopen the log file). Tests
	// leave it off.
	Signals bool
	// LogOutput, when set, is reopened on SIGHUP (a log file moved away by logrotate).
	LogOutput interface{ Reopen() error }
	// StoreFS is the filesystem under the store; nil is the operating system's. Tests inject
	// faults through it (a full disk).
	StoreFS vfs.FS
}

// App is one assembled Turnstile.
type App struct {
	cfg  *config.Config
	opts Options
	log  *slog.Logger

	store    *store.DB // nil without [main] data_dir
	commits  *store.CommitHistogram
	dir      *directory.Directory
	chain    *auth.Chain
	revs     *revoke.Set
	oauth    *oauth.Provider // nil unless auth_backends lists oauth
	tokens   *tokens.Service // nil unless [tokens] is on
	counters *event.Counters
	events   *event.Multi
	broker   *broker.Server
	audit    *audit.Log      // nil without [main] audit_log
	auditOut *logging.Output // its file, reopened on SIGHUP
	bans     *ban.List

	ls  *listeners
	api http.Handler

	createdDataDir bool   // the data directory did not exist: a failed start removes it again
	createdKeyFile string // the password key file this start created, removed with the data directory

	pwKey *auth.PasswordKey // keys the password verifiers ([main] auth_key_file)
	local *auth.Local       // the local password provider; nil unless auth_backends lists local

	closeOnce sync.Once
}

// New assembles a Turnstile from a validated configuration: it opens the store, loads the
// directory, builds the auth chain and the broker (recovering stored state), and opens every
// configured listener, all or nothing. Nothing is served until Run. On error everything opened
// so far is closed again.
func New(cfg *config.Config, o Options) (_ *App, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	a := &App{cfg: cfg, opts: o, log: o.Logger, counters: &event.Counters{}, events: &event.Multi{}}
	defer func() {
		if err != nil {
			if a.broker != nil {
				a.broker.Close(context.Background())
			}
			a.closeAll()
			if a.createdDataDir {
				os.RemoveAll(cfg.Main.DataDir) // a failed start leaves nothing behind
				if a.createdKeyFile != "" {
					os.Remove(a.createdKeyFile)
				}
			}
		}
	}()
	a.events.Add(a.counters)
	for _, obs := range o.Observers {
		a.events.Add(obs)
	}
	if path := cfg.Main.AuditLog; path != "" {
		// 0600: the audit log names users, client ids and addresses.
		if a.auditOut, err = logging.OpenFile(path, "[main] audit_log", 0o600); err != nil {
			return nil, err
		}
		a.audit = audit.New(a.auditOut, 0)
		a.events.Add(a.audit)
	}

	// Listeners first: a port that is taken fails the start before anything is written.
	if a.ls, err = openListeners(cfg, o.Ephemeral, a.log); err != nil {
		return nil, err
	}
	if len(a.ls.mqtt) == 0 {
		a.log.Warn("no MQTT listener configured")
	}

	if dir := cfg.Main.DataDir; dir != "" {
		if _, statErr := os.Stat(dir); os.IsNotExist(statErr) {
			a.createdDataDir = true
		}
		a.commits = &store.CommitHistogram{}
		so := store.Options{Fsync: store.FsyncAlways, Interval: time.Duration(cfg.Main.FsyncInterval) * time.Millisecond,
			Logger: a.log, OnCommit: a.commits.Observe, FS: a.opts.StoreFS}
		if cfg.Main.Fsync == "interval" {
			so.Fsync = store.FsyncInterval
		}
		if a.store, err = store.Open(dir, so); err != nil {
			return nil, fmt.Errorf("[main] data_dir %s: %w", dir, err)
		}
	}

	anonymous := ""
	if cfg.MQTT.AllowAnonymous {
		anonymous = cfg.MQTT.AnonymousUser
	}
	if err := a.loadPasswordKey(); err != nil {
		return nil, err
	}
	do := directory.Options{DefaultUser: cfg.Main.DefaultUser, DefaultPassword: cfg.Main.DefaultPassword,
		DefaultVhost: cfg.MQTT.DefaultVhost, DefinitionsFile: cfg.Main.DefinitionsFile, AnonymousUser: anonymous,
		PermissionCheckEnabled: cfg.MQTT.PermissionCheckEnabled, Logger: a.log, PasswordKey: a.pwKey}
	if a.store != nil {
		do.Store = a.store
	}
	a.dir = directory.New(do)
	if err := a.dir.Load(); err != nil {
		return nil, err
	}
	if err := a.buildCredentials(); err != nil {
		return nil, err
	}

	m := &cfg.MQTT
	bo := broker.Options{
		Limits: broker.Limits{MaxInflight: m.MaxInflightMessages, MaxPacket: m.MaxPacketSize, MaxConnect: m.MaxConnectSize, MaxKeepalive: m.MaxKeepalive,
			ReceiveMax: m.ReceiveMaximum, MaxQueued: m.MaxQueuedMessages, MaxQueuedBytes: int(m.MaxQueuedBytes),
			MaxTopicAlias: m.MaxTopicAlias, MaxSessionExpiry: m.MaxSessionExpiry, RetainAvailable: m.RetainAvailable,
			AllowEmptyClientID: m.AllowZeroLengthClientID},
		DefaultVhost:  m.DefaultVhost,
		Vhosts:        a.dir.Vhosts(),
		Authenticator: a.chain,
		Authorizer:    a.dir.Checker(),
		Standing:      &standing{dir: a.dir, revs: a.revs, tokens: a.tokens},
		Logger:        a.log,
		Clock:         o.Clock,
		Observer:      a.events,
		SysInterval:   m.SysInterval,
		Version:       o.Version,
		Lifecycle: broker.Lifecycle{Leeway: cfg.OAuth.Leeway, DenyOnly: m.ExpiryAction == "deny_only",
			SuppressWillOnReauthFailure: m.WillOnReauthFailure == "suppress", NoticeLead: cfg.Tokens.NoticeLead,
			UploadsPerMinute: m.TokenUploadsPerMinute},
	}
	if m.ExpiryReason == "not_authorized" {
		bo.Lifecycle.ExpiryCode = 0x87
	}
	if a.oauth != nil || a.tokens != nil {
		bo.Credentials = &credentials{oauth: a.oauth, methods: config.List(cfg.OAuth.AuthMethods), tokens: a.tokens}
	}
	if a.store != nil {
		bo.Store = a.store
	}
	if err := a.openGuards(&bo); err != nil { // limits, quotas, bans (guards.go)
		return nil, err
	}
	if a.broker, err = broker.New(bo); err != nil {
		return nil, err
	}
	a.enforceBans()
	// Changes of the directory reach the broker from now on: vhosts come and go, a deleted
	// user's sessions end, and a permission change re-checks every live subscription.
	a.dir.SetHooks(directory.Hooks{VhostAdded: a.broker.AddVhost,
		VhostDeleted: func(name string) { a.broker.DeleteVhost(name) }, UserDeleted: a.broker.DropSubject})
	a.dir.Checker().OnChange(a.broker.RecheckSubscriptions)
	// A revocation (by jti, subject or key id; an admin's or RevokeToken's) closes the
	// connections it matches at once, and a deleted AccessKey cuts off what logged in with it.
	a.revs.OnRevoke(func(revoke.Revocation) {
		now := a.broker.Now()
		a.broker.RevokeWhere(func(id *auth.Identity) bool { _, ok := a.revs.Revoked(id, now); return ok }, event.WillRevoked)
	})
	if a.tokens != nil {
		a.tokens.OnAccessKeyDelete(func(akid string) {
			a.broker.RevokeWhere(func(id *auth.Identity) bool { return usesAccessKey(id, akid) }, event.WillRevoked)
		})
	}

	if len(a.ls.mgmt) > 0 {
		reg := prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		a.api = mgmt.New(mgmt.Options{Broker: a.broker, Directory: a.dir, Auth: a.chain, Counters: a.counters,
			Commits: a.commits, Observer: a.events, Logger: a.log, Registry: reg, Bind: cfg.Mgmt.Bind, Clock: o.Clock,
			Revocations: a.revs, Tokens: a.tokens, AllowedHosts: allowedHosts(cfg.Mgmt.AllowedHosts), Bans: a.bans})
	}
	return a, nil
}

// Run serves every listener until ctx is done or a listener fails, then shuts down: the
// broker drains (v5 clients get DISCONNECT 0x8B), the management API stops, the store closes.
// A listener failure is returned as an error, so the process exits non-zero.
func (a *App) Run(ctx context.Context) error {
	errc := make(chan error, len(a.ls.mqtt)+len(a.ls.mgmt)+len(a.ls.tokens))
	for _, l := range a.ls.mqtt {
		go func() {
			if err := a.broker.Serve(l.ln, l.l); err != nil {
				errc <- fmt.Errorf("%s: %w", l.conf.KeyName(), err)
			}
		}()
	}
	mctx, stopMgmt := context.WithCancel(context.Background())
	var mwg sync.WaitGroup
	serveHTTP := func(l openListener, h http.Handler) {
		mwg.Add(1)
		go func() {
			defer mwg.Done()
			if err := mgmt.Serve(mctx, l.ln, h, a.log); err != nil {
				errc <- fmt.Errorf("%s: %w", l.conf.KeyName(), err)
			}
		}()
	}
	for _, l := range a.ls.mgmt {
		serveHTTP(l, a.api)
	}
	for _, l := range a.ls.tokens {
		serveHTTP(l, tokens.Handler(a.tokens))
	}
	a.announce()
	var hup chan os.Signal
	if a.opts.Signals {
		hup = make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
	}
	var runErr error
	for running := true; running; {
		select {
		case <-ctx.Done():
			running = false
		case err := <-errc:
			a.log.Error("a listener failed; shutting down", "error", err.Error())
			runErr, running = err, false
		case <-hup:
			a.reload()
		}
	}
	a.log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := a.broker.Close(sctx)
	stopMgmt()
	mwg.Wait()
	if a.oauth != nil {
		a.oauth.Close()
	}
	a.closeAll()
	return errors.Join(runErr, err)
}

// reload handles SIGHUP: the log file is reopened, and the TLS certificate and key are read
// again for every TLS listener.
func (a *App) reload() {
	if lo := a.opts.LogOutput; lo != nil {
		if err := lo.Reopen(); err != nil {
			a.log.Error("SIGHUP: reopening the log file failed; logging continues to the old one", "error", err.Error())
		}
	}
	if a.auditOut != nil {
		if err := a.auditOut.Reopen(); err != nil {
			a.log.Error("SIGHUP: reopening the audit log failed; it continues to the old file", "error", err.Error())
		}
	}
	if len(a.ls.certs) == 0 {
		a.log.Info("SIGHUP: no TLS certificate to reload")
		return
	}
	for _, c := range a.ls.certs {
		if err := c.Reload(); err != nil {
			a.log.Error("SIGHUP: TLS certificate reload failed; the previous one stays in use", "error", err.Error())
			return
		}
	}
	if leaf := a.ls.certs[0].Leaf(); leaf != nil {
		a.log.Info("SIGHUP: TLS certificate reloaded", "subject", leaf.Subject.String(), "not_after", leaf.NotAfter)
	}
}

// announce says what a newcomer needs at start: where each listener is, where the state is
// kept, and, on the first start, the default account and its loopback-only rule.
func (a *App) announce() {
	for _, l := range a.ls.mqtt {
		a.log.Info("listening", "listener", l.conf.Name, "addr", l.ln.Addr().String(), "key", l.conf.KeyName())
	}
	for _, l := range a.ls.mgmt {
		scheme := "http://"
		if l.conf.TLS {
			scheme = "https://"
		}
		a.log.Info("management API listening", "listener", l.conf.Name, "url", scheme+l.ln.Addr().String(), "key", l.conf.KeyName())
	}
	if dir := a.cfg.Main.DataDir; dir != "" {
		a.log.Info("state kept in the data directory", "data_dir", dir)
	} else {
		a.log.Warn("no data directory: state lives in memory only and is lost at exit")
	}
	if a.dir.Bootstrapped() && a.cfg.Main.DefaultPassword != "" {
		rule := "from anywhere"
		if a.cfg.Main.DefaultUserOnlyLoopback {
			rule = "from loopback only (127.0.0.0/8, ::1, the unix socket; never from a browser page)"
		}
		a.log.Info("first start: created the administrator "+a.cfg.Main.DefaultUser+" with the configured default password; it may log in "+rule+
			"; change its password with `turnstile ctl change_password "+a.cfg.Main.DefaultUser+" NEW`", "user", a.cfg.Main.DefaultUser)
	}
}

// closeAll closes the listeners and the store; the broker must have stopped using them.
func (a *App) closeAll() {
	a.closeOnce.Do(func() {
		if a.bans != nil {
			a.bans.Close()
		}
		if a.ls != nil {
			a.ls.close()
		}
		if a.dir != nil {
			a.dir.Close() // its queued verifier writes reach the store before it closes
		}
		if a.store != nil {
			if err := a.store.Close(); err != nil {
				a.log.Error("closing the store", "error", err.Error())
			}
		}
		if a.audit != nil {
			a.audit.Close() // writes what is queued: the broker has stopped reporting
			if n := a.audit.Dropped(); n > 0 {
				a.log.Warn("audit events dropped: the audit log could not keep up", "count", n)
			}
		}
		if a.auditOut != nil {
			a.auditOut.Close()
		}
	})
}

// Addr returns the address of a listener by its name (config.Listener.Name): "tcp", "tls",
// "ws", "wss", "unix", "mgmt" or "mgmt-tls"; nil when it is not open.
func (a *App) Addr(name string) net.Addr {
	for _, l := range slices.Concat(a.ls.mqtt, a.ls.mgmt, a.ls.tokens) {
		if l.conf.Name == name {
			return l.ln.Addr()
		}
	}
	return nil
}

// URL returns the base URL of the management API ("http://127.0.0.1:15672"), "" when it is off.
func (a *App) URL() string {
	if ad := a.Addr("mgmt"); ad != nil {
		return "http://" + ad.String()
	}
	if ad := a.Addr("mgmt-tls"); ad != nil {
		return "https://" + ad.String()
	}
	return ""
}

// Broker, Directory, Chain, Counters and Events expose the parts, for tests and for the
// commands that run beside serve.
func (a *App) Broker() *broker.Server          { return a.broker }
func (a *App) Directory() *directory.Directory { return a.dir }
func (a *App) Chain() *auth.Chain              { return a.chain }
func (a *App) Counters() *event.Counters       { return a.counters }
func (a *App) Events() *event.Multi            { return a.events }

// Local exposes the local password provider (nil unless [main] auth_backends lists local).
func (a *App) Local() *auth.Local { return a.local }

// OAuth, Tokens and Revocations expose the credential providers (nil when off).
func (a *App) OAuth() *oauth.Provider   { return a.oauth }
func (a *App) Tokens() *tokens.Service  { return a.tokens }
func (a *App) Revocations() *revoke.Set { return a.revs }
