package mgmt

import (
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/turnstilemq/turnstile/internal/auth"
	"github.com/turnstilemq/turnstile/internal/broker"
	"github.com/turnstilemq/turnstile/internal/config"
)

// handler is the management API: a route table over the broker's query and command methods.
type handler struct {
	srv     *broker.Server
	log     *slog.Logger
	routes  []*route
	metrics http.Handler

	// Host header check (DNS-rebinding protection): anyHost when bound to every address.
	anyHost bool
	hosts   []string
	cop     *http.CrossOriginProtection

	logins *logins
	hasher auth.Hasher // hashes passwords set through PUT /api/users; tests lower the cost
	rates  *rates
}

// New returns the management API over srv: the /api endpoints and GET /metrics, whose
// collector is registered on reg (a fresh registry when nil; never the global one). Calling New
// twice with the same registry panics. cfg gives the bind address (for the Host check) and the
// default user's loopback-only rule.
func New(srv *broker.Server, cfg *config.Config, log *slog.Logger, reg *prometheus.Registry) http.Handler {
	return newHandler(srv, cfg, log, reg)
}

func newHandler(srv *broker.Server, cfg *config.Config, log *slog.Logger, reg *prometheus.Registry) *handler {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	reg.MustRegister(newCollector(srv))
	h := &handler{
		srv:     srv,
		log:     log.With("component", "mgmt"),
		metrics: promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelError)}),
		cop:     http.NewCrossOriginProtection(),
		rates:   newRates(),
	}
	restricted := ""
	if cfg.Main.DefaultUserOnlyLoopback {
		restricted = cfg.Main.DefaultUser
	}
	h.logins = newLogins(srv, restricted, func() auth.Hasher { return h.hasher })
	switch bind := strings.Trim(cfg.Mgmt.Bind, "[]"); bind {
	case "", "0.0.0.0", "::":
		h.anyHost = true
	default:
		h.hosts = []string{strings.ToLower(bind), "localhost", "127.0.0.1", "::1"}
	}
	h.routeTable()
	return h
}

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
	if !h.hostAllowed(r.Host) {
		return forbidden("host %q not allowed: the management API answers to its bind address, localhost, 127.0.0.1 and ::1 only", r.Host)
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

// hostAllowed is the DNS-rebinding check: a browser tricked into sending requests here from
// another site carries that site's name in Host.
func (h *handler) hostAllowed(host string) bool {
	if h.anyHost {
		return true
	}
	if hn, _, err := net.SplitHostPort(host); err == nil {
		host = hn
	}
	host = strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")
	return host != "" && slices.Contains(h.hosts, host)
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
