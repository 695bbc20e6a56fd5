package mgmt

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/turnstilemq/turnstile/internal/ban"
	"github.com/turnstilemq/turnstile/internal/broker"
	"github.com/turnstilemq/turnstile/internal/clock"
	"github.com/turnstilemq/turnstile/internal/directory"
	"github.com/turnstilemq/turnstile/internal/event"
	"github.com/turnstilemq/turnstile/internal/revoke"
	"github.com/turnstilemq/turnstile/internal/store"
	"github.com/turnstilemq/turnstile/internal/tokens"
)

// Options is what the management API is built from. The composition root (package app) fills
// it; the API reads the broker and the directory only through their query and command methods.
type Options struct {
	Broker    *broker.Server
	Directory *directory.Directory
	Auth      Authenticator // the program's one authentication chain
	// Counters are the event counts (logins, refusals, denials, wills) for /metrics and
	// /api/overview; nil reads as all zero.
	Counters *event.Counters
	Commits  *store.CommitHistogram // the store's commit latency; nil without a store
	Observer event.Observer         // where failed API logins are reported; nil: nowhere
	Logger   *slog.Logger
	// Registry receives the API's collector (a fresh one when nil; never the global one).
	// Building two APIs on one registry panics.
	Registry *prometheus.Registry
	// Bind is the address the API listens on. The Host header is checked against it and
	// AllowedHosts (DNS-rebinding protection, see hostCheck): bound to one address, the API
	// answers to that address, localhost, 127.0.0.1 and ::1; bound to every address, to IP
	// addresses, localhost and the machine's host name; AllowedHosts adds names ("*.example.com"
	// for subdomains, "*" for any).
	Bind         string
	AllowedHosts []string
	Clock        clock.Clock // nil: the system clock
	// Revocations serves /api/oauth/revocations; nil turns it off.
	Revocations *revoke.Set
	// Tokens serves /api/access-keys; nil (no token service) turns it off.
	Tokens *tokens.Service
	Bans   *ban.List // /api/bans; nil: those endpoints answer 404
}

// handler is the management API: a route table over the broker's query and command methods.
type handler struct {
	srv     *broker.Server
	dir     *directory.Directory
	auth    Authenticator
	obs     event.Observer
	count   *event.Counters
	commits *store.CommitHistogram
	clock   clock.Clock
	log     *slog.Logger
	routes  []*route
	metrics http.Handler

	hosts hostCheck // the Host header check (DNS-rebinding protection, hosts.go)
	cop   *http.CrossOriginProtection

	rates  *rates
	revs   *revoke.Set
	tokens *tokens.Service
	bans   *ban.List // nil: /api/bans answers 404
}

// New returns the management API: the /api endpoints and GET /metrics.
func New(o Options) http.Handler { return newHandler(o) }

func newHandler(o Options) *handler {
	reg := o.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	h := &handler{
		srv:     o.Broker,
		dir:     o.Directory,
		auth:    o.Auth,
		obs:     o.Observer,
		count:   o.Counters,
		commits: o.Commits,
		clock:   clock.Or(o.Clock),
		log:     log.With("component", "mgmt"),
		cop:     http.NewCrossOriginProtection(),
		rates:   newRates(),
		revs:    o.Revocations,
		tokens:  o.Tokens,
		bans:    o.Bans,
	}
	if h.obs == nil {
		h.obs = event.Nop
	}
	if h.count == nil {
		h.count = &event.Counters{}
	}
	reg.MustRegister(newCollector(h))
	h.metrics = promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelError)})
	h.hosts = newHostCheck(o.Bind, o.AllowedHosts)
	h.routeTable()
	return h
}

func (h *handler) now() time.Time { return h.clock.Now() }

// access is who may call an endpoint.
type access int

const (
	public  access = iota // no credentials: health and metrics
	reader                // management, monitoring or administrator; management sees its vhosts only
	monitor               // monitoring or administrator
	admin                 // administrator
)

// handlerFunc serves one endpoint; c is nil for public endpoints.
type handlerFunc func(w http.ResponseWriter, r *http.Request, c *caller) error

type endpoint struct {
	access access
	fn     handlerFunc
}

// route is a path pattern: literal segments, "{name}" (one non-empty segment, URL-decoded, so
// %2F is part of the value and not a separator) and a final "{name...}" (the rest of the path,
// decoded). Go's ServeMux is not used because it cannot match %2F alone as a wildcard segment,
// and "%2F" is how the default vhost "/" is written.
type route struct {
	pattern string
	segs    []string
	methods map[string]endpoint
}

func (h *handler) handle(method, pattern string, acc access, fn handlerFunc) {
	for _, rt := range h.routes {
		if rt.pattern == pattern {
			rt.methods[method] = endpoint{acc, fn}
			return
		}
	}
	h.routes = append(h.routes, &route{pattern: pattern, segs: strings.Split(strings.TrimPrefix(pattern, "/"), "/"),
		methods: map[string]endpoint{method: {acc, fn}}})
}

// match reports whether the escaped path segments match the route, and its path values.
func (rt *route) match(segs []string) (map[string]string, bool) {
	vals := map[string]string{}
	for i, p := range rt.segs {
		if i >= len(segs) {
			return nil, false
		}
		switch {
		case strings.HasPrefix(p, "{") && strings.HasSuffix(p, "...}"):
			v, err := url.PathUnescape(strings.Join(segs[i:], "/"))
			if err != nil || v == "" {
				return nil, false
			}
			vals[p[1:len(p)-4]] = v
			return vals, true
		case strings.HasPrefix(p, "{"):
			v, err := url.PathUnescape(segs[i])
			if err != nil || v == "" {
				return nil, false
			}
			vals[p[1:len(p)-1]] = v
		case segs[i] != p:
			return nil, false
		}
	}
	return vals, len(segs) == len(rt.segs)
}

// ServeHTTP checks the Host header, finds the route (404, 405), checks the Origin of
// state-changing requests, authenticates and authorizes the caller, and runs the endpoint.
// Every failure is an *Error, written as JSON by writeError.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	if err := h.serve(w, r); err != nil {
		writeError(w, r, h.log, err)
	}
}

func (h *handler) serve(w http.ResponseWriter, r *http.Request) error {
	if !h.hosts.allowed(r.Host) {
		return forbidden("host %q not allowed: add it to [mgmt] allowed_hosts to reach the management API by this name", r.Host)
	}
	ep, err := h.find(r)
	if err != nil {
		return err
	}
	if err := h.cop.Check(r); err != nil {
		return forbidden("cross-origin request refused: %v", err)
	}
	var c *caller
	if ep.access != public {
		if c, err = h.authorize(r, ep.access); err != nil {
			return err
		}
	}
	return ep.fn(w, r, c)
}

// find matches the request to a route and sets its path values.
func (h *handler) find(r *http.Request) (endpoint, error) {
	p := r.URL.EscapedPath()
	if !strings.HasPrefix(p, "/") {
		return endpoint{}, notFound("no such endpoint")
	}
	segs := strings.Split(p[1:], "/")
	for _, rt := range h.routes {
		vals, ok := rt.match(segs)
		if !ok {
			continue
		}
		method := r.Method
		if method == http.MethodHead {
			method = http.MethodGet
		}
		ep, ok := rt.methods[method]
		if !ok {
			allow := make([]string, 0, len(rt.methods))
			for m := range rt.methods {
				allow = append(allow, m)
			}
			slices.Sort(allow)
			e := apiError(http.StatusMethodNotAllowed, "method_not_allowed", "%s %s: allowed methods are %s",
				r.Method, rt.pattern, strings.Join(allow, ", "))
			e.Header = http.Header{"Allow": {strings.Join(allow, ", ")}}
			return endpoint{}, e
		}
		for k, v := range vals {
			r.SetPathValue(k, v)
		}
		return ep, nil
	}
	return endpoint{}, notFound("no such endpoint: %s", r.URL.Path)
}

// routeTable lists every endpoint; docs/api.md describes them.
func (h *handler) routeTable() {
	h.handle("GET", "/api/health", public, h.health)
	h.handle("GET", "/api/health/ready", public, h.ready)
	h.handle("GET", "/metrics", public, h.serveMetrics)

	h.handle("GET", "/api/overview", reader, h.overview)
	h.handle("GET", "/api/whoami", reader, h.whoami)

	h.handle("GET", "/api/users", monitor, h.listUsers)
	h.handle("GET", "/api/users/{name}", monitor, h.getUser)
	h.handle("PUT", "/api/users/{name}", admin, h.putUser)
	h.handle("DELETE", "/api/users/{name}", admin, h.deleteUser)

	h.handle("GET", "/api/vhosts", reader, h.listVhosts)
	h.handle("GET", "/api/vhosts/{name}", reader, h.getVhost)
	h.handle("PUT", "/api/vhosts/{name}", admin, h.putVhost)
	h.handle("DELETE", "/api/vhosts/{name}", admin, h.deleteVhost)
	h.handle("GET", "/api/vhosts/{vhost}/connections", reader, h.listConnections)

	h.handle("GET", "/api/permissions", reader, h.listPermissions)
	h.handle("GET", "/api/permissions/{vhost}/{user}", reader, h.getPermission)
	h.handle("PUT", "/api/permissions/{vhost}/{user}", admin, h.putPermission)
	h.handle("DELETE", "/api/permissions/{vhost}/{user}", admin, h.deletePermission)

	h.handle("GET", "/api/topic-permissions", reader, h.listTopicPermissions)
	h.handle("GET", "/api/topic-permissions/{vhost}/{user}", reader, h.getTopicPermission)
	h.handle("PUT", "/api/topic-permissions/{vhost}/{user}", admin, h.putTopicPermission)
	h.handle("DELETE", "/api/topic-permissions/{vhost}/{user}", admin, h.deleteTopicPermission)

	h.handle("GET", "/api/connections", reader, h.listConnections)
	h.handle("DELETE", "/api/connections/{name...}", admin, h.closeConnection)

	h.handle("GET", "/api/sessions/{vhost}", reader, h.listSessions)
	h.handle("DELETE", "/api/sessions/{vhost}/{client_id}", admin, h.deleteSession)

	h.handle("GET", "/api/retained/{vhost}", reader, h.listRetained)
	h.handle("DELETE", "/api/retained/{vhost}/{topic...}", admin, h.deleteRetained)

	h.handle("GET", "/api/definitions", admin, h.exportDefinitions)
	h.handle("POST", "/api/definitions", admin, h.importDefinitions)

	h.handle("GET", "/api/oauth/revocations", admin, h.listRevocations)
	h.handle("POST", "/api/oauth/revocations", admin, h.addRevocation)
	h.handle("DELETE", "/api/oauth/revocations/{id}", admin, h.deleteRevocation)

	h.handle("GET", "/api/access-keys", admin, h.listAccessKeys)
	h.handle("POST", "/api/access-keys", admin, h.createAccessKey)
	h.handle("DELETE", "/api/access-keys/{id}", admin, h.deleteAccessKey)
	h.limitRoutes() // vhost and user limits, bans (limits.go, bans.go)
}

// writeJSON writes v with status. HTML escaping is off so that regexes stay readable.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v) // the client went away, or v is ours and encodes
}

func noContent(w http.ResponseWriter) error {
	w.WriteHeader(http.StatusNoContent)
	return nil
}
