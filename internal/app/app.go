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
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/turnstilemq/turnstile/internal/auth"
	"github.com/turnstilemq/turnstile/internal/ban"
	"github.com/turnstilemq/turnstile/internal/broker"
	"github.com/turnstilemq/turnstile/internal/clock"
	"github.com/turnstilemq/turnstile/internal/config"
	"github.com/turnstilemq/turnstile/internal/directory"
	"github.com/turnstilemq/turnstile/internal/event"
	"github.com/turnstilemq/turnstile/internal/listener"
	"github.com/turnstilemq/turnstile/internal/mgmt"
	"github.com/turnstilemq/turnstile/internal/store"
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
	// Signals makes Run handle SIGHUP (reload the TLS certificate). Tests leave it off.
	Signals bool
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
	counters *event.Counters
	events   *event.Multi
	broker   *broker.Server
	bans     *ban.List

	mqtt  []mqttListener
	mgmt  []net.Listener
	api   http.Handler
	certs []*listener.Certs // reloaded on SIGHUP

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
		}
	}()
	a.events.Add(a.counters)
	for _, obs := range o.Observers {
		a.events.Add(obs)
	}

	if dir := cfg.Main.DataDir; dir != "" {
		a.commits = &store.CommitHistogram{}
		so := store.Options{Fsync: store.FsyncAlways, Interval: time.Duration(cfg.Main.FsyncInterval) * time.Millisecond,
			Logger: a.log, OnCommit: a.commits.Observe}
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
	do := directory.Options{DefaultUser: cfg.Main.DefaultUser, DefaultPassword: cfg.Main.DefaultPassword,
		DefaultVhost: cfg.MQTT.DefaultVhost, DefinitionsFile: cfg.Main.DefinitionsFile, AnonymousUser: anonymous,
		PermissionCheckEnabled: cfg.MQTT.PermissionCheckEnabled, Logger: a.log}
	if a.store != nil {
		do.Store = a.store
	}
	a.dir = directory.New(do)
	if err := a.dir.Load(); err != nil {
		return nil, err
	}
	if a.chain, err = buildChain(cfg, a.dir.Users()); err != nil {
		return nil, err
	}

	m := &cfg.MQTT
	bo := broker.Options{
		Limits: broker.Limits{MaxInflight: m.MaxInflightMessages, MaxPacket: m.MaxPacketSize, MaxKeepalive: m.MaxKeepalive,
			ReceiveMax: m.ReceiveMaximum, MaxQueued: m.MaxQueuedMessages, MaxQueuedBytes: int(m.MaxQueuedBytes),
			MaxTopicAlias: m.MaxTopicAlias, MaxSessionExpiry: m.MaxSessionExpiry, RetainAvailable: m.RetainAvailable,
			AllowEmptyClientID: m.AllowZeroLengthClientID},
		DefaultVhost:  m.DefaultVhost,
		Vhosts:        a.dir.Vhosts(),
		Authenticator: a.chain,
		Authorizer:    a.dir.Checker(),
		Standing:      a.dir,
		Logger:        a.log,
		Clock:         o.Clock,
		Observer:      a.events,
		SysInterval:   m.SysInterval,
		Version:       o.Version,
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

	var certs *listener.Certs
	if a.mqtt, certs, err = openMQTT(cfg, o.Ephemeral); err != nil {
		return nil, err
	}
	if certs != nil {
		a.certs = append(a.certs, certs)
	}
	if len(a.mqtt) == 0 {
		a.log.Warn("no MQTT listener configured")
	}
	if err := a.openMgmt(); err != nil {
		return nil, err
	}
	return a, nil
}

// openMgmt builds the management API and opens its listeners: HTTP on [mgmt] port, HTTPS on
// tls_port when [main] tls_cert is set.
func (a *App) openMgmt() error {
	mg := &a.cfg.Mgmt
	useTLS := a.cfg.Main.TLSCert != "" && mg.TLSPort > 0
	if mg.Port <= 0 && !useTLS {
		return nil
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	a.api = mgmt.New(mgmt.Options{Broker: a.broker, Directory: a.dir, Auth: a.chain, Counters: a.counters,
		Commits: a.commits, Observer: a.events, Logger: a.log, Registry: reg, Bind: mg.Bind, Clock: a.opts.Clock,
		AllowedHosts: allowedHosts(mg.AllowedHosts), Bans: a.bans})
	if mg.Port > 0 {
		addr := listenAddr(mg.Bind, mg.Port, a.opts.Ephemeral)
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("[mgmt] port: cannot listen on %s: %w", addr, err)
		}
		a.mgmt = append(a.mgmt, ln)
	}
	if useTLS {
		tlsCfg, certs, err := listener.TLSConfig(listener.TLSOptions{CertFile: a.cfg.Main.TLSCert, KeyFile: a.cfg.Main.TLSKey,
			MinVersion: a.cfg.Main.TLSMinVersion})
		if err != nil {
			return fmt.Errorf("[main] tls_cert: %w", err)
		}
		tlsCfg.NextProtos = []string{"http/1.1"}
		addr := listenAddr(mg.Bind, mg.TLSPort, a.opts.Ephemeral)
		ln, err := listener.TLS(addr, tlsCfg)
		if err != nil {
			return fmt.Errorf("[mgmt] tls_port: cannot listen on %s: %w", addr, err)
		}
		a.mgmt = append(a.mgmt, ln)
		a.certs = append(a.certs, certs)
	}
	return nil
}

// Run serves every listener until ctx is done or a listener fails, then shuts down: the
// broker drains (v5 clients get DISCONNECT 0x8B), the management API stops, the store closes.
// A listener failure is returned as an error, so the process exits non-zero.
func (a *App) Run(ctx context.Context) error {
	errc := make(chan error, len(a.mqtt)+len(a.mgmt))
	for _, l := range a.mqtt {
		go func() {
			if err := a.broker.Serve(l.ln, l.l); err != nil {
				errc <- fmt.Errorf("[mqtt] %s: %w", l.key, err)
			}
		}()
	}
	mctx, stopMgmt := context.WithCancel(context.Background())
	var mwg sync.WaitGroup
	for _, ln := range a.mgmt {
		mwg.Add(1)
		go func() {
			defer mwg.Done()
			if err := mgmt.Serve(mctx, ln, a.api, a.log); err != nil {
				errc <- fmt.Errorf("[mgmt]: %w", err)
			}
		}()
	}
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
	a.closeAll()
	return errors.Join(runErr, err)
}

// reload handles SIGHUP: the TLS certificate and key are read again for every TLS listener.
func (a *App) reload() {
	if len(a.certs) == 0 {
		a.log.Info("SIGHUP: no TLS certificate to reload")
		return
	}
	for _, c := range a.certs {
		if err := c.Reload(); err != nil {
			a.log.Error("SIGHUP: TLS certificate reload failed; the previous one stays in use", "error", err.Error())
			return
		}
	}
	if leaf := a.certs[0].Leaf(); leaf != nil {
		a.log.Info("SIGHUP: TLS certificate reloaded", "subject", leaf.Subject.String(), "not_after", leaf.NotAfter)
	}
}

// closeAll closes the listeners and the store; the broker must have stopped using them.
func (a *App) closeAll() {
	a.closeOnce.Do(func() {
		if a.bans != nil {
			a.bans.Close()
		}
		for _, l := range a.mqtt {
			l.ln.Close()
		}
		for _, ln := range a.mgmt {
			ln.Close()
		}
		if a.store != nil {
			if err := a.store.Close(); err != nil {
				a.log.Error("closing the store", "error", err.Error())
			}
		}
	})
}

// Addr returns the address of a listener: "tcp", "tls", "ws", "wss", "unix", or "mgmt" and
// "mgmts" for the management API; nil when it is not open.
func (a *App) Addr(name string) net.Addr {
	for _, l := range a.mqtt {
		if l.l.Name == name {
			return l.ln.Addr()
		}
	}
	for i, ln := range a.mgmt {
		if (name == "mgmt" && i == 0 && a.cfg.Mgmt.Port > 0) || (name == "mgmts" && (i == 1 || a.cfg.Mgmt.Port <= 0)) {
			return ln.Addr()
		}
	}
	return nil
}

// URL returns the base URL of the management API ("http://127.0.0.1:15672"), "" when it is off.
func (a *App) URL() string {
	if ad := a.Addr("mgmt"); ad != nil {
		return "http://" + ad.String()
	}
	if ad := a.Addr("mgmts"); ad != nil {
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

// Describe lists what is listening where, for the start-up announcement.
func (a *App) Describe() []string {
	var out []string
	for _, l := range a.mqtt {
		out = append(out, l.l.Name+" "+l.ln.Addr().String())
	}
	for i, ln := range a.mgmt {
		name := "mgmt"
		if i > 0 || a.cfg.Mgmt.Port <= 0 {
			name = "mgmts"
		}
		out = append(out, name+" "+ln.Addr().String())
	}
	return out
}
