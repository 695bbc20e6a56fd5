package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/turnstilemq/turnstile/internal/clock"
	"github.com/turnstilemq/turnstile/internal/event"
	"github.com/turnstilemq/turnstile/internal/packet"
)

// DefaultVhost is the name of the vhost every installation starts with.
const DefaultVhost = "/"

// Server is a running broker: its vhosts, its listeners and their connections.
type Server struct {
	opts    Options
	log     *slog.Logger
	limits  Limits
	clock   clock.Clock
	obs     event.Observer
	started time.Time

	persist *persister // nil without a store: state lives in memory only
	preauth preauthBudget
	denyLog throttle // the WARN lines of denials and limit refusals, once a second (authz.go)

	mu        sync.Mutex
	vhosts    map[string]*Vhost
	listeners map[net.Listener]struct{}
	clients   map[*client]struct{} // every open connection, connected or not

	guard guard // limits, bans and the login refusal log (limits.go, bans.go, loginlog.go)

	conns        sync.WaitGroup
	shuttingDown atomic.Bool
	stop         chan struct{}
	bg           sync.WaitGroup // background goroutines ($SYS)
	linger       lingerClock    // lets idle write loops and workers end (writer.go, workers.go)
	workQ        chan *client   // hands a busy period to a waiting worker; unbuffered (workers.go)
}

// New builds a server: its vhosts, and the state recovered from the store. It starts nothing
// but the $SYS loop: hand listeners to Serve.
func New(opts Options) (*Server, error) {
	if opts.Authenticator == nil || opts.Authorizer == nil {
		return nil, errors.New("broker: Options.Authenticator and Options.Authorizer are required")
	}
	if opts.DefaultVhost == "" {
		opts.DefaultVhost = DefaultVhost
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	obs := opts.Observer
	if obs == nil {
		obs = event.Nop
	}
	s := &Server{
		opts:      opts,
		log:       log,
		limits:    opts.Limits,
		clock:     clock.Or(opts.Clock),
		obs:       obs,
		vhosts:    make(map[string]*Vhost),
		listeners: make(map[net.Listener]struct{}),
		clients:   make(map[*client]struct{}),
		stop:      make(chan struct{}),
		workQ:     make(chan *client),
	}
	s.started = s.clock.Now()
	s.preauth.max = opts.Limits.MaxPreauthBytes
	if s.preauth.max <= 0 {
		s.preauth.max = 64 << 20
	}
	if opts.Store != nil {
		s.persist = newPersister(opts.Store, log.With("component", "persist"))
	}
	for _, name := range opts.Vhosts {
		s.AddVhost(name)
	}
	if s.persist != nil {
		if err := s.recover(); err != nil {
			return nil, fmt.Errorf("recovering state: %w", err)
		}
	}
	if opts.SysInterval > 0 {
		s.bg.Add(1)
		go s.sysLoop(opts.SysInterval)
	}
	s.bg.Add(1)
	go s.housekeeping()
	s.bg.Add(1)
	go s.linger.run(s.stop, &s.bg)
	return s, nil
}

// now is the server's clock.
func (s *Server) now() time.Time { return s.clock.Now() }

// observe reports an event, stamped with the server's clock.
func (s *Server) observe(e event.Event) {
	e.Time = s.now()
	s.obs.Observe(e)
}

// Vhost returns the named vhost, or nil.
func (s *Server) Vhost(name string) *Vhost {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.vhosts[name]
}

// Serve accepts connections on ln until the server is closed; it then returns nil.
func (s *Server) Serve(ln net.Listener, l Listener) error {
	name := l.Name
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
		go s.serveConn(conn, l)
	}
}

// serveConn runs one connection; the caller has done s.conns.Add(1).
func (s *Server) serveConn(conn net.Conn, l Listener) {
	defer s.conns.Done()
	c := newClient(s, conn, l)
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
func (s *Server) ServeConn(conn net.Conn, l Listener) {
	s.conns.Add(1)
	s.serveConn(conn, l)
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
	return err
}

// recoverTimer logs a panic of a timer's function (a will delay, a session expiry) instead of
// letting it end the process.
func (s *Server) recoverTimer(what string) {
	if r := recover(); r != nil {
		s.log.Error("timer function panicked", "timer", what, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
	}
}

// Now is the server's clock.
func (s *Server) Now() time.Time { return s.clock.Now() }
