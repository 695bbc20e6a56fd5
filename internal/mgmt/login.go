package mgmt

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/turnstilemq/turnstile/internal/auth"
	"github.com/turnstilemq/turnstile/internal/broker"
)

// Login cache bounds: a verified (user, password, stored hash) is remembered this long, so that
// a dashboard polling the API does not pay a bcrypt check per request.
const (
	loginCacheTTL  = time.Minute
	loginCacheSize = 1024
)

// logins checks HTTP basic credentials against the broker's local users, as the MQTT "local"
// provider does: passwords through auth.VerifyPassword, and for an unknown user (or one without
// a password) a check against a dummy hash, so that the answer takes as long (Caddy's trick).
// Verifications run at most GOMAXPROCS at a time.
type logins struct {
	srv        *broker.Server
	restricted string             // the default user, who may log in from loopback only; "" for none
	hasher     func() auth.Hasher // the dummy hash is made with the hasher of new passwords

	dummyOnce           sync.Once
	dummyAlg, dummyHash string

	sem chan struct{}

	key   [32]byte // HMAC key of the cache: entries reveal nothing of the passwords
	mu    sync.Mutex
	cache map[[32]byte]time.Time // HMAC(user, stored hash, password) → expiry
	now   func() time.Time
}

func newLogins(srv *broker.Server, restricted string, hasher func() auth.Hasher) *logins {
	l := &logins{srv: srv, restricted: restricted, hasher: hasher, sem: make(chan struct{}, runtime.GOMAXPROCS(0)),
		cache: map[[32]byte]time.Time{}, now: time.Now}
	rand.Read(l.key[:]) // never fails on supported platforms
	return l
}

func (l *logins) dummy() (alg, hash string) {
	l.dummyOnce.Do(func() {
		pw := make([]byte, 24)
		rand.Read(pw)
		var err error
		if l.dummyAlg, l.dummyHash, err = l.hasher().Hash(pw); err != nil {
			l.dummyAlg, l.dummyHash, _ = auth.Hasher{}.Hash(pw)
		}
	})
	return l.dummyAlg, l.dummyHash
}

// check returns the user whose name and password these are. A failure is a 401 whose reason
// does not say whether the user exists.
func (l *logins) check(ctx context.Context, name, password string, remote string) (auth.User, error) {
	bad := unauthorized("login failed: bad user name or password")
	if name == l.restricted && name != "" && !loopback(remote) {
		// Before any password check, so the answer says nothing about the password.
		return auth.User{}, unauthorized("user " + name + " may log in from localhost only")
	}
	u, ok := l.srv.User(name)
	if !ok || u.PasswordHash == "" || password == "" {
		alg, hash := l.dummy()
		l.verify(ctx, alg, hash, []byte(password))
		return auth.User{}, bad
	}
	k := l.cacheKey(u, password)
	now := l.now()
	l.mu.Lock()
	exp, hit := l.cache[k]
	l.mu.Unlock()
	if hit && now.Before(exp) {
		return u, nil
	}
	if good, err := l.verify(ctx, u.HashAlgorithm, u.PasswordHash, []byte(password)); err != nil || !good {
		return auth.User{}, bad
	}
	l.mu.Lock()
	if len(l.cache) >= loginCacheSize {
		for ck, ce := range l.cache {
			if !now.Before(ce) || len(l.cache) >= loginCacheSize {
				delete(l.cache, ck)
			}
		}
	}
	l.cache[k] = now.Add(loginCacheTTL)
	l.mu.Unlock()
	return u, nil
}

// verify checks a password under the concurrency bound; a request that goes away while it
// waits fails.
func (l *logins) verify(ctx context.Context, alg, hash string, pw []byte) (bool, error) {
	select {
	case l.sem <- struct{}{}:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	defer func() { <-l.sem }()
	return auth.VerifyPassword(alg, hash, pw)
}

// cacheKey binds the entry to the stored hash: a password change makes it useless.
func (l *logins) cacheKey(u auth.User, password string) [32]byte {
	m := hmac.New(sha256.New, l.key[:])
	for _, s := range []string{u.Name, u.HashAlgorithm, u.PasswordHash, password} {
		m.Write([]byte(s))
		m.Write([]byte{0})
	}
	var k [32]byte
	copy(k[:], m.Sum(nil))
	return k
}

func loopback(remote string) bool {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		host, _, err := net.SplitHostPort(remote)
		if err != nil {
			return false
		}
		a, err := netip.ParseAddr(host)
		return err == nil && a.Unmap().IsLoopback()
	}
	return ap.Addr().Unmap().IsLoopback()
}

// caller is an authenticated API user.
type caller struct {
	user auth.User
	all  bool            // administrator or monitoring: sees every vhost
	own  map[string]bool // management: the vhosts it has a permission entry on
}

func (c *caller) admin() bool { return c.user.HasTag(auth.TagAdministrator) }

// sees reports whether the caller may read the vhost's resources.
func (c *caller) sees(vhost string) bool { return c.all || c.own[vhost] }

// authorize authenticates the request and checks its tags against acc: 401 without valid
// credentials, 403 for a valid user without the tag.
func (h *handler) authorize(r *http.Request, acc access) (*caller, error) {
	name, password, ok := r.BasicAuth()
	if !ok {
		return nil, unauthorized("credentials required (HTTP basic authentication)")
	}
	u, err := h.logins.check(r.Context(), name, password, r.RemoteAddr)
	if err != nil {
		h.log.Debug("management login failed", "user", name, "remote", r.RemoteAddr)
		return nil, err
	}
	c := &caller{user: u, all: u.HasTag(auth.TagAdministrator) || u.HasTag(auth.TagMonitoring)}
	var allowed bool
	switch acc {
	case reader:
		allowed = c.all || u.HasTag(auth.TagManagement)
	case monitor:
		allowed = c.all
	case admin:
		allowed = c.admin()
	}
	if !allowed {
		need := map[access]string{reader: "management, monitoring or administrator", monitor: "monitoring or administrator",
			admin: "administrator"}[acc]
		return nil, forbidden("user %s lacks the tag this needs: %s", u.Name, need)
	}
	if !c.all {
		c.own = map[string]bool{}
		for _, p := range h.srv.ExportDefinitions().Permissions {
			if p.User == u.Name {
				c.own[p.Vhost] = true
			}
		}
	}
	return c, nil
}

// vhost checks that the caller may read the vhost and that it exists: 403 for a vhost the
// caller may not see (whether or not it exists), 404 for a missing one.
func (h *handler) vhost(c *caller, name string) error {
	if !c.sees(name) {
		return forbidden("user %s has no access to vhost %s", c.user.Name, name)
	}
	if h.srv.Vhost(name) == nil {
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
