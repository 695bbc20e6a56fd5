package auth

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

var fastHasher = Hasher{BcryptCost: bcrypt.MinCost}

// verifyCall is one call of the verify hook.
type verifyCall struct{ alg, hash string }

// testLocal is a Local over a registry with alice/wonderland and guest/guest, a fake clock and a
// verify hook that records its calls.
type testLocal struct {
	*Local
	users *Users
	clock *fakeClock
	mu    sync.Mutex
	calls []verifyCall
}

func newTestLocal(t testing.TB, o LocalOptions) *testLocal {
	t.Helper()
	users := NewUsers()
	alice, err := NewUser("alice", []byte("wonderland"), fastHasher, TagMonitoring)
	if err != nil {
		t.Fatal(err)
	}
	guest, err := NewUser("guest", []byte("guest"), fastHasher, TagAdministrator)
	if err != nil {
		t.Fatal(err)
	}
	users.Put(alice)
	users.Put(guest)
	tl := &testLocal{users: users, clock: newFakeClock()}
	o.Hasher = fastHasher
	o.Now = tl.clock.Now
	l, err := NewLocal(users, o)
	if err != nil {
		t.Fatal(err)
	}
	l.verify = func(alg, hash string, pw []byte) (bool, error) {
		tl.mu.Lock()
		tl.calls = append(tl.calls, verifyCall{alg, hash})
		tl.mu.Unlock()
		return VerifyPassword(alg, hash, pw)
	}
	tl.Local = l
	return tl
}

// verifications returns and resets the calls of the verify hook.
func (tl *testLocal) verifications() []verifyCall {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	c := tl.calls
	tl.calls = nil
	return c
}

func creds(user, pw string) *Credentials {
	return &Credentials{Username: user, Password: []byte(pw), Vhost: "/", Remote: addr("192.0.2.7"), Listener: "tcp"}
}

func wantDenial(t *testing.T, err error, kind error, reason string) {
	t.Helper()
	var d *Denial
	if !errors.As(err, &d) || !errors.Is(err, kind) || !strings.Contains(d.Reason, reason) {
		t.Fatalf("err = %v, want a *Denial wrapping %v with reason %q", err, kind, reason)
	}
}

func TestLocalAllowsTheRightPassword(t *testing.T) {
	tl := newTestLocal(t, LocalOptions{})
	d, id, err := tl.Authenticate(context.Background(), creds("alice", "wonderland"))
	if d != Allow || err != nil {
		t.Fatalf("got %v %v", d, err)
	}
	if id.User != "alice" || id.Vhost != "/" || id.Method != "local" || !id.HasTag(TagMonitoring) || id.Loopback || !id.Expiry.IsZero() || id.Grants != nil {
		t.Fatalf("identity %+v", id)
	}
}

func TestLocalDeniesAWrongPassword(t *testing.T) {
	tl := newTestLocal(t, LocalOptions{})
	d, id, err := tl.Authenticate(context.Background(), creds("alice", "wonderlanD"))
	if d != Deny || id != nil {
		t.Fatalf("got %v %v", d, id)
	}
	wantDenial(t, err, ErrBadCredentials, "wrong password")
	u, _ := tl.users.Get("alice")
	assertNoSecret(t, err.Error(), "wonderlanD", "wonderland", u.PasswordHash)
}

// Unknown users cost what known ones do: the password is checked against the dummy hash, made
// with the configured Hasher. The same holds for a user without a password.
func TestLocalUnknownUserVerifiesTheDummyHash(t *testing.T) {
	tl := newTestLocal(t, LocalOptions{})
	tl.users.Put(User{Name: "nopass"})
	for _, tc := range []struct{ user, reason string }{{"mallory", "unknown user"}, {"nopass", "user has no password"}} {
		d, _, err := tl.Authenticate(context.Background(), creds(tc.user, "whatever"))
		if d != Deny {
			t.Fatalf("%s: decision %v", tc.user, d)
		}
		wantDenial(t, err, ErrBadCredentials, tc.reason)
		calls := tl.verifications()
		if len(calls) != 1 || calls[0].alg != AlgBcrypt || calls[0].hash != tl.dummyHash {
			t.Fatalf("%s: verify calls %v, want one against the dummy hash", tc.user, calls)
		}
		if c, _ := bcrypt.Cost([]byte(tl.dummyHash)); c != fastHasher.BcryptCost {
			t.Fatalf("dummy cost %d, want the Hasher's %d", c, fastHasher.BcryptCost)
		}
	}
	// A known user costs exactly one verification too.
	tl.Authenticate(context.Background(), creds("alice", "nope"))
	if calls := tl.verifications(); len(calls) != 1 || calls[0].hash == tl.dummyHash {
		t.Fatalf("known user: %v", calls)
	}
}

func TestLocalDummyHashFollowsTheHasher(t *testing.T) {
	l, err := NewLocal(NewUsers(), LocalOptions{Hasher: Hasher{Algorithm: AlgArgon2id, Argon2: Argon2Params{Time: 1, MemoryKiB: 64, Threads: 1, SaltLen: 16, KeyLen: 32}}})
	if err != nil {
		t.Fatal(err)
	}
	if l.dummyAlg != AlgArgon2id || !strings.HasPrefix(l.dummyHash, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("dummy %s %s", l.dummyAlg, l.dummyHash)
	}
	if _, err := NewLocal(NewUsers(), LocalOptions{Hasher: Hasher{Algorithm: AlgMD5}}); err == nil {
		t.Fatal("NewLocal accepted a Hasher that cannot hash")
	}
}

func TestLocalAbstains(t *testing.T) {
	tl := newTestLocal(t, LocalOptions{})
	for _, c := range []*Credentials{creds("", "wonderland"), creds("alice", ""), {Username: "alice"}} {
		if d, id, err := tl.Authenticate(context.Background(), c); d != Abstain || id != nil || err != nil {
			t.Fatalf("%+v: got %v %v %v", c, d, id, err)
		}
	}
	if calls := tl.verifications(); len(calls) != 0 {
		t.Fatalf("verified %v", calls)
	}
}

func TestLocalDefaultUserOnlyFromLoopback(t *testing.T) {
	tl := newTestLocal(t, LocalOptions{DefaultUserOnlyLoopback: "guest"})
	from := func(remote, listener string) *Credentials {
		c := creds("guest", "guest")
		c.Listener = listener
		c.Remote = netipOrZero(remote)
		return c
	}
	for _, c := range []*Credentials{
		from("127.0.0.1", "tcp"), from("127.8.9.10", "tls"), from("::1", "ws"), from("::ffff:127.0.0.1", "wss"),
		from("", "unix"), from("10.0.0.1", "unix"),
	} {
		d, id, err := tl.Authenticate(context.Background(), c)
		if d != Allow || err != nil || !id.Loopback || !id.HasTag(TagAdministrator) {
			t.Errorf("%v over %s: got %v %+v %v, want Allow", c.Remote, c.Listener, d, id, err)
		}
	}
	tl.verifications()
	for _, c := range []*Credentials{from("10.0.0.1", "tcp"), from("10.0.0.1", "tls"), from("10.0.0.1", "ws"), from("2001:db8::1", "wss"), from("", "tcp")} {
		d, _, err := tl.Authenticate(context.Background(), c)
		if d != Deny {
			t.Errorf("%v over %s: got %v, want Deny", c.Remote, c.Listener, d)
		}
		wantDenial(t, err, ErrNotAuthorized, "loopback")
		if errors.Is(err, ErrBadCredentials) {
			t.Error("a loopback refusal also reads as bad credentials")
		}
	}
	// Refused before any password is checked: a wrong password gets the same answer.
	if _, _, err := tl.Authenticate(context.Background(), &Credentials{Username: "guest", Password: []byte("x"), Remote: addr("10.0.0.1")}); !errors.Is(err, ErrNotAuthorized) {
		t.Fatalf("wrong password from afar: %v", err)
	}
	if calls := tl.verifications(); len(calls) != 0 {
		t.Fatalf("verified a password for a refused address: %v", calls)
	}
	// Other users are not restricted.
	if d, _, _ := tl.Authenticate(context.Background(), &Credentials{Username: "alice", Password: []byte("wonderland"), Remote: addr("10.0.0.1")}); d != Allow {
		t.Fatal("alice refused from 10.0.0.1")
	}
	// Without the restriction, guest logs in from anywhere.
	open := newTestLocal(t, LocalOptions{})
	if d, _, err := open.Authenticate(context.Background(), from("10.0.0.1", "tcp")); d != Allow {
		t.Fatalf("unrestricted: %v %v", d, err)
	}
}

func netipOrZero(s string) (a netip.Addr) {
	if s == "" {
		return a
	}
	return addr(s)
}

func TestLocalCacheHitSkipsVerification(t *testing.T) {
	tl := newTestLocal(t, LocalOptions{CacheTTL: 30 * time.Second})
	ctx := context.Background()
	login := func(pw string) Decision {
		d, _, _ := tl.Authenticate(ctx, creds("alice", pw))
		return d
	}
	if login("wonderland") != Allow || len(tl.verifications()) != 1 {
		t.Fatal("first login did not verify")
	}
	for range 3 {
		if login("wonderland") != Allow {
			t.Fatal("cached login refused")
		}
	}
	if c := tl.verifications(); len(c) != 0 {
		t.Fatalf("cache hits verified %d times", len(c))
	}
	// A wrong password is never a hit, and failures are not cached.
	for range 2 {
		if login("wonderlanD") != Deny {
			t.Fatal("wrong password allowed")
		}
	}
	if c := tl.verifications(); len(c) != 2 {
		t.Fatalf("wrong passwords verified %d times, want 2", len(c))
	}

	// Expiry: still a hit just before the TTL, a miss at it.
	tl.clock.Advance(30*time.Second - time.Nanosecond)
	login("wonderland")
	if c := tl.verifications(); len(c) != 0 {
		t.Fatal("expired early")
	}
	tl.clock.Advance(time.Nanosecond)
	login("wonderland")
	if c := tl.verifications(); len(c) != 1 {
		t.Fatal("did not expire at the TTL")
	}

	// A password change (a new hash) invalidates: the old password is checked, and refused.
	alice, _ := NewUser("alice", []byte("looking-glass"), fastHasher, TagMonitoring)
	tl.users.Put(alice)
	if login("wonderland") != Deny {
		t.Fatal("old password still accepted after a change")
	}
	if login("looking-glass") != Allow || len(tl.verifications()) != 2 {
		t.Fatal("new password")
	}
	// A deleted user is gone at once, cache or not.
	tl.users.Delete("alice")
	if login("looking-glass") != Deny {
		t.Fatal("deleted user allowed from the cache")
	}
	// Tags come from the registry, not from the cache.
	alice.Tags = []Tag{TagPolicymaker}
	tl.users.Put(alice)
	login("looking-glass")
	_, id, _ := tl.Authenticate(ctx, creds("alice", "looking-glass"))
	if !id.HasTag(TagPolicymaker) || id.HasTag(TagMonitoring) {
		t.Fatalf("stale tags %v", id.Tags)
	}
}

func TestLocalCacheIsBoundedAndCanBeDisabled(t *testing.T) {
	tl := newTestLocal(t, LocalOptions{CacheSize: 2})
	for i := range 5 {
		u, _ := NewUser(string(rune('a'+i)), []byte("pw"), fastHasher)
		tl.users.Put(u)
		tl.Authenticate(context.Background(), creds(u.Name, "pw"))
	}
	if n := tl.cache.len(); n != 2 {
		t.Fatalf("cache holds %d, want 2", n)
	}
	off := newTestLocal(t, LocalOptions{CacheTTL: -1})
	for range 2 {
		off.Authenticate(context.Background(), creds("alice", "wonderland"))
	}
	if off.cache != nil || len(off.verifications()) != 2 {
		t.Fatal("disabled cache still caches")
	}
}

// The cache key encodes each field with its length: NUL bytes, legal in an MQTT password, cannot
// make two different logins collide.
func TestVerifyCacheKeyIsInjective(t *testing.T) {
	c := newVerifyCache(time.Minute, 10)
	a := c.sum("u", []byte("p\x00x"), "alg", "h")
	b := c.sum("u", []byte("p"), "x\x00alg", "h")
	d := c.sum("u\x00p", []byte(""), "alg", "h")
	if a == b || a == d || b == d {
		t.Fatal("collision")
	}
	e, f := c.sum("u", []byte("p"), "alg", "h"), c.sum("u", []byte("p"), "alg", "h")
	if e != f {
		t.Fatal("not deterministic")
	}
	if newVerifyCache(time.Minute, 10).sum("u", []byte("p"), "alg", "h") == e {
		t.Fatal("the key is not per process")
	}
}

func TestLocalInvalidStoredHash(t *testing.T) {
	tl := newTestLocal(t, LocalOptions{})
	tl.users.Put(User{Name: "imported", HashAlgorithm: AlgSHA256, PasswordHash: "c2VjcmV0"})
	d, _, err := tl.Authenticate(context.Background(), creds("imported", "pw"))
	if d != Deny {
		t.Fatal(d)
	}
	wantDenial(t, err, ErrBadCredentials, "password_hash")
	assertNoSecret(t, err.Error(), "c2VjcmV0", "pw")
}

func TestLocalBoundsConcurrentVerifications(t *testing.T) {
	tl := newTestLocal(t, LocalOptions{MaxConcurrentVerifications: 1})
	tl.sem <- struct{}{} // the only slot is taken
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	d, _, err := tl.Authenticate(ctx, creds("alice", "wonderland"))
	if d != Deny || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v %v", d, err)
	}
	<-tl.sem
	if d, _, _ := tl.Authenticate(context.Background(), creds("alice", "wonderland")); d != Allow {
		t.Fatal("slot not released")
	}
}

// A JWT-shaped password, or the MQTT 5 method "jwt", is the oauth provider's (LavinMQ): local
// abstains before any lookup, for known and unknown users alike, and verifies nothing; so
// [main] auth_backends = local,oauth reaches the token. An unknown user with a password that is
// not a token is still denied, after the dummy-hash check.
func TestLocalAbstainsOnATokenBeforeAnyLookup(t *testing.T) {
	tl := newTestLocal(t, LocalOptions{DefaultUserOnlyLoopback: "guest"})
	const jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"
	withMethod := creds("mallory", "not-a-token")
	withMethod.AuthMethod, withMethod.AuthData = "jwt", []byte(jwt)
	for _, c := range []*Credentials{creds("mallory", jwt), creds("alice", jwt), creds("guest", jwt), withMethod} {
		if d, id, err := tl.Authenticate(context.Background(), c); d != Abstain || id != nil || err != nil {
			t.Errorf("user %q, method %q: got %v %v %v, want Abstain", c.Username, c.AuthMethod, d, id, err)
		}
	}
	if calls := tl.verifications(); len(calls) != 0 {
		t.Fatalf("verified %v for a token", calls)
	}
	d, _, err := tl.Authenticate(context.Background(), creds("mallory", "eyJ-not.a-token"))
	if d != Deny {
		t.Fatalf("unknown user with a password: %v", d)
	}
	wantDenial(t, err, ErrBadCredentials, "unknown user")
	if calls := tl.verifications(); len(calls) != 1 || calls[0].hash != tl.dummyHash {
		t.Fatalf("unknown user: verify calls %v, want one against the dummy hash", calls)
	}
}

func TestLooksLikeJWT(t *testing.T) {
	for _, tt := range []struct {
		pw   string
		want bool
	}{
		{"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln", true},
		{"eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", true}, // unsigned: the oauth provider refuses it
		{"eyJ.eyJ.x-_Y", true},
		{"eyJhbGci.eyJzdWIi", false},       // two parts
		{"eyJ.eyJ.sig.extra", false},       // four parts
		{"eyJ..sig", false},                // empty payload
		{"ey.eyJ.sig", true},               // "ey" then a dot: still the shape
		{"xyJhbGci.eyJzdWIi.c2ln", false},  // not "ey"
		{"eyJhbG ci.eyJzdWIi.c2ln", false}, // a space
		{"eyJhbGci.eyJzdWIi.c2ln=", false}, // padding is not base64url in a JWT
		{"eyJhbGci.eyJzd+Ii.c2ln", false},  // '+' is not base64url
		{"wonderland", false}, {"", false}, {"ey", false}, {"ey..", false},
	} {
		if got := LooksLikeJWT([]byte(tt.pw)); got != tt.want {
			t.Errorf("LooksLikeJWT(%q) = %v, want %v", tt.pw, got, tt.want)
		}
	}
}
