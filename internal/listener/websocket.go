package listener

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Subprotocol is the WebSocket subprotocol of MQTT 3.1.1 and 5.0
// [MQTT-6.0.0-3], [MQTT-6.0.0-4].
const Subprotocol = "mqtt"

// Subprotocols are the WebSocket subprotocols served, in order of preference:
// "mqtt", and "mqttv3.1", the name MQTT 3.1 clients offer alone (MQTT.js with
// protocolVersion 3, the Paho JavaScript client). The MQTT version itself is
// whatever the CONNECT packet says.
var Subprotocols = []string{Subprotocol, "mqttv3.1"}

// refusalLogInterval spaces the INFO lines of refused upgrades: a scanner
// hammering the port gets one line per interval, the rest go to DEBUG with a
// count in the next INFO line.
const refusalLogInterval = time.Second

// Defaults for WSOptions.
const (
	DefaultWSPath           = "/mqtt"
	DefaultHandshakeTimeout = 10 * time.Second
	// DefaultMaxMessageSize is the largest MQTT packet: a 5-byte fixed header
	// and the largest Remaining Length, 268,435,455.
	DefaultMaxMessageSize = 268_435_455 + 5
)

const (
	wsBacklog        = 128         // upgraded connections waiting for Accept
	wsMaxHeaderBytes = 32 << 10    // request headers, cookies included
	wsCloseGrace     = time.Second // bound on sending a close frame
)

// WSOptions configures a WebSocket listener. The zero value serves /mqtt to
// non-browser and same-host clients with no message size limit beyond MQTT's.
type WSOptions struct {
	// Path is the HTTP path served; other paths get 404. Default "/mqtt".
	Path string
	// AllowedOrigins lists browser origins accepted besides the listener's own
	// host. An entry is a full origin ("https://dash.example.com", compared
	// on scheme and host:port), a bare host[:port] ("dash.example.com",
	// any scheme), or "*" for any origin. Matching ignores case.
	AllowedOrigins []string
	// MaxMessageSize caps one WebSocket message; give it the broker's maximum
	// MQTT packet size. A bigger message closes the connection with status
	// 1009. 0 means DefaultMaxMessageSize.
	MaxMessageSize int64
	// HandshakeTimeout bounds reading the HTTP upgrade request (and, on wss,
	// the TLS handshake) and writing the response. 0 means
	// DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
	// Logger receives refused upgrades with their reason at INFO (at most
	// one line a second, the others at DEBUG) and HTTP server errors at
	// DEBUG. nil means slog.Default().
	Logger *slog.Logger
}

// WebSocket listens on addr for MQTT over WebSocket: an HTTP server (HTTPS
// when cfg is not nil) on opts.Path that upgrades requests offering the
// "mqtt" or "mqttv3.1" subprotocol and answers with the one offered ("mqtt"
// when both are). Accept returns each upgraded connection as a net.Conn
// that reads the byte stream carried in binary messages and writes one binary
// message per Write (see wsConn).
//
// Refusals, before upgrading, each logged with its reason (see WSOptions.Logger):
//   - a WebSocket upgrade on another path: 404;
//   - a request that is not a WebSocket upgrade: 426 Upgrade Required;
//   - an Origin header that is neither the request's own host nor allowed by
//     opts.AllowedOrigins: 403 (no Origin, as from non-browser clients, passes);
//   - neither "mqtt" nor "mqttv3.1" in Sec-WebSocket-Protocol: 400 [MQTT-6.0.0-3].
//
// Close stops the HTTP server, closes connections not yet accepted and makes
// Accept return net.ErrClosed; accepted connections belong to the caller.
func WebSocket(addr string, cfg *tls.Config, opts WSOptions) (net.Listener, error) {
	if opts.Path == "" {
		opts.Path = DefaultWSPath
	}
	if !strings.HasPrefix(opts.Path, "/") {
		return nil, fmt.Errorf("listener: websocket path %q must start with /", opts.Path)
	}
	if opts.MaxMessageSize < 0 {
		return nil, fmt.Errorf("listener: websocket max message size %d is negative", opts.MaxMessageSize)
	}
	if opts.MaxMessageSize == 0 {
		opts.MaxMessageSize = DefaultMaxMessageSize
	}
	if opts.HandshakeTimeout <= 0 {
		opts.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	origins, err := parseOrigins(opts.AllowedOrigins)
	if err != nil {
		return nil, err
	}
	if cfg != nil {
		if err := checkServerConfig(cfg); err != nil {
			return nil, err
		}
		// HTTP/1.1 only: WebSocket upgrades need it, and leaving out "h2"
		// keeps browsers from negotiating HTTP/2.
		cfg = cfg.Clone()
		cfg.NextProtos = []string{"http/1.1"}
	}

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listener: websocket %s: %w", addr, err)
	}
	if cfg != nil {
		ln = tls.NewListener(ln, cfg)
	}
	l := &wsListener{
		ln:        ln,
		opts:      opts,
		origins:   origins,
		log:       opts.Logger,
		now:       time.Now,
		conns:     make(chan net.Conn, wsBacklog),
		done:      make(chan struct{}),
		serveDone: make(chan struct{}),
	}
	l.upgrader = websocket.Upgrader{
		HandshakeTimeout: opts.HandshakeTimeout,
		CheckOrigin:      l.originAllowed,
		// Subprotocols stays nil: ServeHTTP negotiates through the response
		// header, looking at every Sec-WebSocket-Protocol line.
	}
	l.srv = &http.Server{
		Handler:           l,
		ReadHeaderTimeout: opts.HandshakeTimeout,
		ReadTimeout:       opts.HandshakeTimeout,
		WriteTimeout:      opts.HandshakeTimeout,
		IdleTimeout:       opts.HandshakeTimeout,
		MaxHeaderBytes:    wsMaxHeaderBytes,
		TLSNextProto:      map[string]func(*http.Server, *tls.Conn, http.Handler){}, // no HTTP/2
		ErrorLog:          slog.NewLogLogger(opts.Logger.Handler(), slog.LevelDebug),
	}
	go func() {
		defer close(l.serveDone)
		l.serveErr = l.srv.Serve(ln)
	}()
	return l, nil
}

type wsListener struct {
	ln       net.Listener
	srv      *http.Server
	upgrader websocket.Upgrader
	opts     WSOptions
	origins  originSet
	log      *slog.Logger
	now      func() time.Time // time.Now; tests replace it

	refusalMu      sync.Mutex
	lastRefusalLog time.Time // when a refusal was last logged at INFO
	refusalsQuiet  int       // refusals logged at DEBUG since then

	conns     chan net.Conn // upgraded, waiting for Accept
	done      chan struct{} // closed by Close
	closeOnce sync.Once

	serveDone chan struct{} // closed when srv.Serve returns
	serveErr  error         // written before serveDone is closed

	mu       sync.Mutex // guards closed and handlers.Add
	closed   bool
	handlers sync.WaitGroup // ServeHTTP calls in progress
}

var _ net.Listener = (*wsListener)(nil)

// Accept waits for the next upgraded connection.
func (l *wsListener) Accept() (net.Conn, error) {
	select {
	case <-l.done: // closed wins over queued connections, which Close drains
		return nil, l.acceptErr(net.ErrClosed)
	default:
	}
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, l.acceptErr(net.ErrClosed)
	case <-l.serveDone:
		if errors.Is(l.serveErr, http.ErrServerClosed) {
			return nil, l.acceptErr(net.ErrClosed)
		}
		return nil, l.acceptErr(l.serveErr)
	}
}

func (l *wsListener) acceptErr(err error) error {
	return &net.OpError{Op: "accept", Net: "websocket", Addr: l.ln.Addr(), Err: err}
}

// Close stops the HTTP server and waits for its goroutines, closes upgraded
// connections that were never accepted, and unblocks Accept. It may wait up
// to HandshakeTimeout for an upgrade that is writing its response.
func (l *wsListener) Close() error {
	err := net.ErrClosed
	l.closeOnce.Do(func() {
		l.mu.Lock()
		l.closed = true
		l.mu.Unlock()
		close(l.done)
		err = l.srv.Close() // closes the socket and connections not yet upgraded
		l.handlers.Wait()
		<-l.serveDone
		for {
			select {
			case c := <-l.conns:
				c.Close()
			default:
				return
			}
		}
	})
	return err
}

// Addr is the listening address.
func (l *wsListener) Addr() net.Addr { return l.ln.Addr() }

// ServeHTTP checks and upgrades one request and queues the connection for
// Accept.
func (l *wsListener) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	l.handlers.Add(1)
	l.mu.Unlock()
	defer l.handlers.Done()

	if r.URL.Path != l.opts.Path {
		if websocket.IsWebSocketUpgrade(r) { // a client with the wrong path; other requests are noise
			l.refuse(w, r, http.StatusNotFound, "path "+r.URL.Path+" not served: MQTT over WebSocket is at "+l.opts.Path)
			return
		}
		http.NotFound(w, r)
		return
	}
	if !websocket.IsWebSocketUpgrade(r) {
		w.Header().Set("Connection", "Upgrade")
		w.Header().Set("Upgrade", "websocket")
		l.refuse(w, r, http.StatusUpgradeRequired, "not a websocket upgrade")
		return
	}
	if !l.originAllowed(r) {
		l.refuse(w, r, http.StatusForbidden, "origin not allowed")
		return
	}
	proto := chooseSubprotocol(r)
	if proto == "" {
		l.refuse(w, r, http.StatusBadRequest, `Sec-WebSocket-Protocol must include "mqtt" (or "mqttv3.1" for MQTT 3.1) [MQTT-6.0.0-3]`)
		return
	}
	// [MQTT-6.0.0-4] the subprotocol returned is "mqtt" when the client
	// offered it; an MQTT 3.1 client offering only "mqttv3.1" gets that.
	ws, err := l.upgrader.Upgrade(w, r, http.Header{"Sec-Websocket-Protocol": {proto}})
	if err != nil { // the upgrader has answered with an HTTP error
		l.logRefusal(r, http.StatusBadRequest, err.Error())
		return
	}
	c := newWSConn(ws, r, l.opts.MaxMessageSize)
	select {
	case l.conns <- c:
	case <-l.done:
		c.Close()
	}
}

func (l *wsListener) refuse(w http.ResponseWriter, r *http.Request, status int, reason string) {
	l.logRefusal(r, status, reason)
	http.Error(w, reason, status)
}

// logRefusal logs a refused upgrade at INFO, or at DEBUG when one was logged
// at INFO less than refusalLogInterval ago; the next INFO line counts those.
func (l *wsListener) logRefusal(r *http.Request, status int, reason string) {
	now := l.now()
	l.refusalMu.Lock()
	level, quiet := slog.LevelDebug, 0
	if now.Sub(l.lastRefusalLog) >= refusalLogInterval {
		level, quiet = slog.LevelInfo, l.refusalsQuiet
		l.lastRefusalLog, l.refusalsQuiet = now, 0
	} else {
		l.refusalsQuiet++
	}
	l.refusalMu.Unlock()
	attrs := []any{"listener", l.ln.Addr().String(), "remote", r.RemoteAddr, "status", status, "reason", reason,
		"origin", r.Header.Get("Origin"), "subprotocols", strings.Join(r.Header.Values("Sec-Websocket-Protocol"), ", ")}
	if quiet > 0 {
		attrs = append(attrs, "refusals_not_logged", quiet)
	}
	l.log.Log(r.Context(), level, "websocket upgrade refused", attrs...)
}

// chooseSubprotocol returns the first of Subprotocols that any
// Sec-WebSocket-Protocol line lists, or "". Subprotocol names are
// case-sensitive tokens (RFC 6455 §11.3.4).
func chooseSubprotocol(r *http.Request) string {
	offered := map[string]bool{}
	for _, line := range r.Header.Values("Sec-Websocket-Protocol") {
		for p := range strings.SplitSeq(line, ",") {
			offered[strings.TrimSpace(p)] = true
		}
	}
	for _, p := range Subprotocols {
		if offered[p] {
			return p
		}
	}
	return ""
}

// originSet is the parsed AllowedOrigins.
type originSet struct {
	any     bool
	origins map[string]bool // "scheme://host[:port]", lower case
	hosts   map[string]bool // "host[:port]", lower case
}

func parseOrigins(list []string) (originSet, error) {
	s := originSet{origins: map[string]bool{}, hosts: map[string]bool{}}
	for _, o := range list {
		o = strings.ToLower(strings.TrimSpace(o))
		switch {
		case o == "*":
			s.any = true
		case strings.Contains(o, "://"):
			u, err := url.Parse(strings.TrimSuffix(o, "/"))
			if err != nil || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.User != nil {
				return s, fmt.Errorf("listener: websocket allowed origin %q: want scheme://host[:port]", o)
			}
			s.origins[u.Scheme+"://"+u.Host] = true
		case o == "" || strings.ContainsAny(o, "/?#@ "):
			return s, fmt.Errorf("listener: websocket allowed origin %q: want scheme://host[:port], host[:port] or *", o)
		default:
			s.hosts[o] = true
		}
	}
	return s, nil
}

// originAllowed lets through requests without an Origin header (non-browser
// clients, which cannot be protected by it anyway), origins on the request's
// own host:port, and the allow-list. It protects browser users from pages on
// other sites, most of all from reaching a loopback-only default user.
func (l *wsListener) originAllowed(r *http.Request) bool {
	vals := r.Header.Values("Origin")
	switch len(vals) {
	case 0:
		return true
	case 1:
	default:
		return false
	}
	if l.origins.any {
		return true
	}
	u, err := url.Parse(strings.ToLower(vals[0]))
	if err != nil || u.Host == "" { // "null" from sandboxed frames and files
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	return l.origins.origins[u.Scheme+"://"+u.Host] || l.origins.hosts[u.Host]
}
