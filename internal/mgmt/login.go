package mgmt

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"slices"

	"github.com/turnstilemq/turnstile/internal/auth"
	"github.com/turnstilemq/turnstile/internal/event"
)

// Authenticator is the one authentication chain of the program (auth.Chain): the management API
// verifies no password itself, so every rule of the chain (providers, loopback-only default
// user, rate limiting, verification cache) applies to it as to MQTT.
type Authenticator interface {
	Authenticate(ctx context.Context, c *auth.Credentials) (*auth.Identity, error)
}

// caller is an authenticated API user.
type caller struct {
	id  *auth.Identity
	all bool            // administrator or monitoring: sees every vhost
	own map[string]bool // management: the vhosts it has a permission entry on
}

func (c *caller) name() string { return c.id.User }

func (c *caller) admin() bool { return c.id.HasTag(auth.TagAdministrator) }

// sees reports whether the caller may read the vhost's resources.
func (c *caller) sees(vhost string) bool { return c.all || c.own[vhost] }

// remoteAddr is the request's peer address, for the loopback rule and the login limiter.
func remoteAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// authorize authenticates the request through the chain and checks its tags against acc: 401
// without valid credentials (an unknown user, a wrong password and a refused address answer
// alike), 403 for a valid user without the tag.
func (h *handler) authorize(r *http.Request, acc access) (*caller, error) {
	name, password, ok := r.BasicAuth()
	if !ok {
		return nil, unauthorized("credentials required (HTTP basic authentication)")
	}
	// A browser cannot reach this API from another site: the Host check and the cross-origin
	// check of serve come first (DNS rebinding, CSRF).
	creds := &auth.Credentials{Username: name, Password: []byte(password), Remote: remoteAddr(r), Listener: "mgmt"}
	id, err := h.auth.Authenticate(r.Context(), creds)
	if err != nil {
		reason := event.ReasonBadCredentials
		switch {
		case errors.Is(err, auth.ErrRateLimited):
			reason = event.ReasonRateLimited
		case errors.Is(err, auth.ErrNotAuthorized):
			reason = event.ReasonNotAuthorized
		}
		h.obs.Observe(event.Event{Kind: event.LoginFailed, Time: h.now(), Listener: "mgmt", Remote: r.RemoteAddr,
			User: name, Reason: reason, Detail: err.Error()})
		h.log.Debug("management login failed", "user", name, "remote", r.RemoteAddr, "reason", err.Error())
		if reason == event.ReasonRateLimited {
			e := apiError(http.StatusTooManyRequests, "too_many_requests", "too many failed logins from this address; try again later")
			e.Header = http.Header{"Retry-After": {"5"}}
			return nil, e
		}
		return nil, unauthorized("login failed: bad user name or password")
	}
	c := &caller{id: id, all: id.HasTag(auth.TagAdministrator) || id.HasTag(auth.TagMonitoring)}
	var allowed bool
	switch acc {
	case reader:
		allowed = c.all || id.HasTag(auth.TagManagement)
	case monitor:
		allowed = c.all
	case admin:
		allowed = c.admin()
	}
	if !allowed {
		need := map[access]string{reader: "management, monitoring or administrator", monitor: "monitoring or administrator",
			admin: "administrator"}[acc]
		return nil, forbidden("user %s lacks the tag this needs: %s", id.User, need)
	}
	if !c.all {
		c.own = map[string]bool{}
		for _, v := range h.dir.Vhosts() {
			if h.dir.HasAccess(id.User, v) {
				c.own[v] = true
			}
		}
	}
	return c, nil
}

// vhost checks that the caller may read the vhost and that it exists: 403 for a vhost the
// caller may not see (whether or not it exists), 404 for a missing one.
func (h *handler) vhost(c *caller, name string) error {
	if !c.sees(name) {
		return forbidden("user %s has no access to vhost %s", c.name(), name)
	}
	if !h.dir.HasVhost(name) {
		return notFound("vhost %s not found", name)
	}
	return nil
}

func tagStrings(tags []auth.Tag) []string {
	out := make([]string, len(tags))
	for i, t := range tags {
		out[i] = string(t)
	}
	return out
}

func toTags(list []string) []auth.Tag {
	var out []auth.Tag
	for _, t := range list {
		if !slices.Contains(out, auth.Tag(t)) {
			out = append(out, auth.Tag(t))
		}
	}
	return out
}
