package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/turnstilemq/turnstile/internal/config"
	"github.com/turnstilemq/turnstile/internal/packet"
	"github.com/turnstilemq/turnstile/internal/store"
)

// Version is the broker version reported in $SYS/broker/version.
var Version = "0.1.0-dev"

// DefaultVhost is the name of the vhost every client lands in until vhost selection exists.
const DefaultVhost = "/"

// limits are the configured bounds, copied once from the configuration.
type limits struct {
	maxInflight        int
	maxPacket          int
	maxKeepalive       int
	receiveMax         int
	maxQueued          int
	maxQueuedBytes     int
	maxTopicAlias      int
	maxSessionExpiry   int64
	retainAvailable    bool
	allowEmptyClientID bool
}

// Server is a running broker: its vhosts, its listeners and their connections.
type Server struct {
	cfg     *config.Config
	log     *slog.Logger
	limits  limits
	started time.Time

	defaultVhost *Vhost
	persist      *persister // nil when [main] data_dir is empty: state lives in memory only
	sec          *security
	defMu        sync.Mutex // serialises changes of users, vhosts and permissions

	mu        sync.Mutex
	vhosts    map[string]*Vhost
	listeners map[net.Listener]struct{}
	clients   map[*client]struct{} // every open connection, connected or not

	connects      atomic.Uint64 // successful CONNECTs
	commitLatency latencyHistogram
	refused       refusalCounter
	conns         sync.WaitGroup
	shuttingDown  atomic.Bool
	stop          chan struct{}
	bg            sync.WaitGroup // background goroutines ($SYS)
}

// New builds a server from a validated configuration. It starts nothing: hand listeners to Serve.
func New(cfg *config.Config, log *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m := cfg.MQTT
	s := &Server{
		cfg: cfg,
		log: log,
		limits: limits{
			maxInflight:        m.MaxInflightMessages,
			maxPacket:          m.MaxPacketSize,
			maxKeepalive:       m.MaxKeepalive,
			receiveMax:         m.ReceiveMaximum,
			maxQueued:          m.MaxQueuedMessages,
			maxQueuedBytes:     int(m.MaxQueuedBytes),
			maxTopicAlias:      m.MaxTopicAlias,
			maxSessionExpiry:   m.MaxSessionExpiry,
			retainAvailable:    m.RetainAvailable,
			allowEmptyClientID: m.AllowZeroLengthClientID,
		},
		started:   time.Now(),
		vhosts:    make(map[string]*Vhost),
		listeners: make(map[net.Listener]struct{}),
		clients:   make(map[*client]struct{}),
		stop:      make(chan struct{}),
	}
	sec, err := newSecurity(cfg)
	if err != nil {
		return nil, err
	}
	s.sec = sec
	if dir := cfg.Main.DataDir; dir != "" {
		opts := store.Options{Fsync: store.FsyncAlways, Interval: time.Duration(cfg.Main.FsyncInterval) * time.Millisecond,
			Logger: log, OnCommit: s.commitLatency.observe}
		if cfg.Main.Fsync == "interval" {
			opts.Fsync = store.FsyncInterval
		}
		st, err := store.Open(dir, opts)
		if err != nil {
			return nil, fmt.Errorf("[main] data_dir %q: %w", dir, err)
		}
		s.persist = newPersister(st, log.With("component", "persist"))
	}
	if err := s.loadDefinitions(); err != nil {
		s.closeStore()
		return nil, err
	}
	s.defaultVhost = s.Vhost(DefaultVhost)
	if s.persist != nil {
		if err := s.recover(); err != nil {
			s.closeStore()
			return nil, fmt.Errorf("recovering state from %q: %w", cfg.Main.DataDir, err)
		}
	}
	// A permission change re-checks every live subscription at once.
	s.sec.checker.OnChange(s.recheckSubscriptions)
	if m.SysInterval > 0 {
		s.bg.Add(1)
		go s.sysLoop(m.SysInterval)
	}
	return s, nil
}

func (s *Server) closeStore() {
	if s.persist != nil {
		s.persist.st.Close()
	}
}

// Vhost returns the named vhost, or nil.
func (s *Server) Vhost(name string) *Vhost {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.vhosts[name]
}

// Serve accepts connections on ln until the server is closed; it then returns nil. name labels
// the listener in logs ("tcp", "tls", ...).
func (s *Server) Serve(ln net.Listener, name string) error {
	s.mu.Lock()
	if s.shuttingDown.Load() {
		s.mu.Unlock()
		ln.Close()
		return errShuttingDown
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	s.log.Info("listening", "listener", name, "addr", ln.Addr().String())
	var backoff time.Duration
	for {
		conn, err := ln.Accept()
		if err != nil {
			if s.shuttingDown.Load() || errors.Is(err, net.ErrClosed) {
				return nil
			}
			// Out of file descriptors and the like: back off instead of spinning.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Warn("accept failed", "listener", name, "error", err.Error(), "retry_in", backoff)
			select {
			case <-time.After(backoff):
				continue
			case <-s.stop:
				return nil
			}
		}
		backoff = 0
		s.conns.Add(1)
		go s.serveConn(conn, name)
	}
}

// serveConn runs one connection; the caller has done s.conns.Add(1).
func (s *Server) serveConn(conn net.Conn, name string) {
	defer s.conns.Done()
	c := newClient(s, conn, name)
	s.mu.Lock()
	if s.shuttingDown.Load() {
		s.mu.Unlock()
		conn.Close()
		return
	}
	s.clients[c] = struct{}{}
	s.mu.Unlock()
	c.serve()
	s.mu.Lock()
	delete(s.clients, c)
	s.mu.Unlock()
}

// ServeConn runs one already-accepted connection to its end (for in-process tests over net.Pipe
// and for listeners that produce connections themselves).
func (s *Server) ServeConn(conn net.Conn, name string) {
	s.conns.Add(1)
	s.serveConn(conn, name)
}

// Close shuts the server down gracefully: listeners stop accepting, v5 clients get DISCONNECT
// 0x8B, and Close returns when every connection has ended or ctx is done.
func (s *Server) Close(ctx context.Context) error {
	if !s.shuttingDown.CompareAndSwap(false, true) {
		return nil
	}
	close(s.stop)
	s.mu.Lock()
	for ln := range s.listeners {
		ln.Close()
	}
	clients := make([]*client, 0, len(s.clients))
	for c := range s.clients {
		clients = append(clients, c)
	}
	s.mu.Unlock()
	for _, c := range clients {
		c.close(errShuttingDown, packet.ServerShuttingDown) // [MQTT-3.14.2-1] 0x8B
	}
	done := make(chan struct{})
	go func() {
		s.conns.Wait()
		s.bg.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("shutdown: %w", ctx.Err())
	}
	if s.persist != nil {
		if cerr := s.persist.st.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("closing the store: %w", cerr)
		}
	}
	return err
}

// Component runs beside the broker, such as the management API: it starts once the broker's
// listeners are open and must return soon after ctx is done. An error ends the broker.
type Component func(ctx context.Context, s *Server) error

// Run starts a broker with the configured listeners and components and blocks until ctx is
// cancelled, then shuts it down gracefully. SIGHUP reloads the TLS certificate and key.
func Run(ctx context.Context, cfg *config.Config, log *slog.Logger, components ...Component) error {
	s, err := New(cfg, log)
	if err != nil {
		return err
	}
	lns, certs, err := openListeners(cfg)
	if err != nil {
		s.Close(context.Background())
		return err
	}
	if len(lns) == 0 {
		log.Warn("no MQTT listener configured")
	}
	errc := make(chan error, len(lns)+len(components))
	for _, l := range lns {
		go func() { errc <- s.Serve(l.ln, l.name) }()
	}
	cctx, stopComponents := context.WithCancel(ctx)
	var cwg sync.WaitGroup
	for _, run := range components {
		cwg.Add(1)
		go func() {
			defer cwg.Done()
			if err := run(cctx, s); err != nil {
				errc <- err
			}
		}()
	}
	defer func() { stopComponents(); cwg.Wait() }()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for running := true; running; {
		select {
		case <-ctx.Done():
			running = false
		case err := <-errc:
			if err != nil {
				log.Error("listener or component failed", "error", err.Error())
				running = false
			}
		case <-hup:
			if certs == nil {
				log.Info("SIGHUP: no TLS certificate to reload")
				continue
			}
			if err := certs.Reload(); err != nil {
				log.Error("SIGHUP: TLS certificate reload failed; the previous one stays in use", "error", err.Error())
				continue
			}
			if leaf := certs.Leaf(); leaf != nil {
				log.Info("SIGHUP: TLS certificate reloaded", "subject", leaf.Subject.String(), "not_after", leaf.NotAfter)
			}
		}
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return s.Close(sctx)
}
