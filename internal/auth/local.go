package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// LocalOptions configure a [Local] provider. The zero value is usable.
type LocalOptions struct {
	// DefaultUserOnlyLoopback names the user ([main] default_user) who may log in only from a
	// loopback address or a unix socket; "" lifts the restriction.
	DefaultUserOnlyLoopback string
	// Hasher is how new passwords are hashed. Without a Key, the dummy hash checked for unknown
	// users is made with it, so that they cost what a user created here costs.
	Hasher Hasher
	// CacheTTL is how long a successful verification is remembered: 0 means DefaultCacheTTL,
	// a negative value disables the cache.
	CacheTTL time.Duration
	// CacheSize bounds the cache; 0 means DefaultCacheSize.
	CacheSize int
	// MaxConcurrentVerifications bounds the password checks running at once, so that a storm
	// of logins cannot take every CPU (bcrypt) or all memory (argon2id); 0 means GOMAXPROCS.
	MaxConcurrentVerifications int
	// Now is the clock of the cache; nil means time.Now.
	Now func() time.Time
	// Key, when set, turns on keyed password verifiers (see [PasswordKey]): a user with a
	// verifier made with Key logs in by one HMAC, and a user whose stored hash verifies gets one
	// (kept through [Users.SetVerifier]). Unknown users then cost one HMAC too. nil: every login
	// checks the stored hash.
	Key *PasswordKey
}

// Local authenticates users of the local registry by password.
//
// It abstains when the user name is empty (anonymous access may follow) or the password is empty
// (a local login always has one; certificate login may follow). It abstains too, before any
// lookup, when the password looks like a JWT ([LooksLikeJWT]) or the client uses the MQTT 5
// authentication method "jwt": the token is the oauth provider's to judge, and the user name of
// such a login only carries the vhost prefix, as in LavinMQ. Otherwise it answers: Deny with
// ErrNotAuthorized when the user is the default user and the client is not on loopback (before
// any password is checked, so the answer says nothing about the password); Deny with
// ErrBadCredentials for an unknown user, a user without a password, a wrong password or an
// unreadable stored hash; Allow with Identity{User, Vhost, Tags, Method: "local"}.
//
// With a key (LocalOptions.Key), a user who has a verifier made with that key is judged by it
// alone, in constant time: a mismatch is a wrong password, without a look at the hash (the
// verifier was made from the password the hash holds, and is dropped whenever the hash changes).
// A user without one is judged by the stored hash, and on success gets one, kept in the registry
// (whose owner persists it behind the login, never in its way). An unknown user, or one without
// a password, is checked against a dummy verifier: one HMAC, what a known user costs.
//
// Without a key, an unknown user or one without a password costs what a known one does: the
// password is checked against a dummy hash made with the configured Hasher (Caddy's trick).
// Users whose hash was imported in a fast format (the RabbitMQ salted digests) remain faster to
// refuse than unknown ones; that is the price of importing such hashes unchanged. With a key, a
// user who has no verifier yet (imported, and not logged in since) costs a hash check where an
// unknown user costs one HMAC.
//
// Hash checks run at most MaxConcurrentVerifications at a time, on the logins' own goroutines;
// identical checks in flight at once (a reconnect storm of one device class) share one run.
type Local struct {
	users      *Users
	restricted string
	cache      *verifyCache // nil: disabled
	now        func() time.Time
	sem        chan struct{}
	key        *PasswordKey // nil: no verifiers

	// verify checks a password against a stored hash; tests wrap it to count calls.
	verify func(alg, hash string, pw []byte) (bool, error)

	dummyAlg, dummyHash string   // without key: a random password hashed with the Hasher
	dummy               Verifier // with key: a random password's verifier

	flightKey [32]byte // per-process HMAC key naming identical checks in flight
	flightMu  sync.Mutex
	flights   map[[sha256.Size]byte]*hashFlight

	stats struct{ verifierChecks, hashChecks, cacheHits, shared, verifiersMade atomic.Uint64 }
}

// hashFlight is one hash check in progress, shared by the identical checks that arrive meanwhile.
type hashFlight struct {
	done    chan struct{}
	good    bool
	err     error
	waiters int // logins that joined it instead of running their own; flightMu held
}

// LocalStats count what the provider did, for tests and diagnostics.
type LocalStats struct {
	VerifierChecks uint64 // passwords checked by one HMAC against a verifier (unknown users' dummy included)
	HashChecks     uint64 // passwords checked against a stored hash (the dummy hash included)
	CacheHits      uint64 // logins answered by the verification cache
	Shared         uint64 // logins that waited for an identical hash check in flight instead of running one
	VerifiersMade  uint64 // verifiers made after a hash verified, and kept
}

var _ Provider = (*Local)(nil)

// NewLocal returns the local provider over users. It fails when o.Hasher is misconfigured.
// Without a key it hashes the dummy password at once, which costs one hash (about 50 ms at
// bcrypt cost 10); with one it hashes nothing.
func NewLocal(users *Users, o LocalOptions) (*Local, error) {
	l := &Local{users: users, restricted: o.DefaultUserOnlyLoopback, now: o.Now,
		verify: VerifyPassword, key: o.Key, flights: make(map[[sha256.Size]byte]*hashFlight)}
	rand.Read(l.flightKey[:])
	if l.now == nil {
		l.now = time.Now
	}
	pw := make([]byte, 24)
	rand.Read(pw) // never fails on supported platforms
	if k := o.Key; k != nil {
		// Unknown users are checked against a verifier: one HMAC of a random password under a
		// random user ID. Matching reads only its MAC, so it needs no hash, and a start costs
		// no password hashing (about 60 ms of a restart that clients wait for).
		if err := o.Hasher.Validate(); err != nil {
			return nil, fmt.Errorf("auth: local provider: %w", err)
		}
		l.dummy = k.NewVerifier(User{ID: NewUserID()}, pw)
	} else {
		var err error
		if l.dummyAlg, l.dummyHash, err = o.Hasher.Hash(pw); err != nil {
			return nil, fmt.Errorf("auth: local provider: %w", err)
		}
	}
	if o.CacheTTL >= 0 {
		ttl, size := o.CacheTTL, o.CacheSize
		if ttl == 0 {
			ttl = DefaultCacheTTL
		}
		if size <= 0 {
			size = DefaultCacheSize
		}
		l.cache = newVerifyCache(ttl, size)
	}
	n := o.MaxConcurrentVerifications
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	l.sem = make(chan struct{}, n)
	return l, nil
}

// Name is "local".
func (l *Local) Name() string { return "local" }

// Authenticate implements Provider.
func (l *Local) Authenticate(ctx context.Context, c *Credentials) (Decision, *Identity, error) {
	if c.Username == "" || len(c.Password) == 0 {
		return Abstain, nil, nil
	}
	if c.AuthMethod == "jwt" || LooksLikeJWT(c.Password) {
		return Abstain, nil, nil // a token, not a password: for the oauth provider
	}
	if d, id, err := loopbackOnly(l.Name(), l.restricted, c.Username, c); d != Abstain {
		return d, id, err
	}
	u, v, hasV, ok := l.users.lookup(c.Username)
	if !ok || u.PasswordHash == "" {
		if l.key != nil {
			l.matchVerifier(&l.dummy, c.Password) // one HMAC, what a known user with a verifier costs
		} else {
			l.stats.hashChecks.Add(1)
			if _, err := l.check(ctx, l.dummyAlg, l.dummyHash, c.Password); err != nil {
				return Deny, nil, err
			}
		}
		if !ok {
			return deny(l.Name(), "unknown user", ErrBadCredentials)
		}
		return deny(l.Name(), "user has no password", ErrBadCredentials)
	}
	if hasV && l.key != nil && l.key.Made(&v) && v.userID == u.ID {
		// The verifier is authoritative: it was made from the password u's hash holds.
		if !l.matchVerifier(&v, c.Password) {
			return deny(l.Name(), "wrong password", ErrBadCredentials)
		}
		return Allow, l.identity(u, c), nil
	}
	if l.cache != nil && l.cache.hit(u.Name, c.Password, u.HashAlgorithm, u.PasswordHash, l.now()) {
		l.stats.cacheHits.Add(1)
		l.remember(u, c.Password)
		return Allow, l.identity(u, c), nil
	}
	good, err := l.checkShared(ctx, u, c.Password)
	switch {
	case err != nil && ctx.Err() != nil:
		return Deny, nil, err
	case err != nil:
		// err names the field and the fault, never the value.
		return deny(l.Name(), "stored password hash unusable: "+err.Error(), ErrBadCredentials)
	case !good:
		return deny(l.Name(), "wrong password", ErrBadCredentials)
	}
	if l.cache != nil {
		l.cache.add(u.Name, c.Password, u.HashAlgorithm, u.PasswordHash, l.now())
	}
	l.remember(u, c.Password)
	return Allow, l.identity(u, c), nil
}

// remember keeps a verifier for u, whose stored hash pw has just verified against. The registry
// refuses it when u's hash or ID changed meanwhile.
func (l *Local) remember(u User, pw []byte) {
	if l.key == nil {
		return
	}
	if l.users.SetVerifier(u.Name, l.key.NewVerifier(u, pw)) {
		l.stats.verifiersMade.Add(1)
	}
}

// Stats returns the provider's counters.
func (l *Local) Stats() LocalStats {
	return LocalStats{VerifierChecks: l.stats.verifierChecks.Load(), HashChecks: l.stats.hashChecks.Load(),
		CacheHits: l.stats.cacheHits.Load(), Shared: l.stats.shared.Load(), VerifiersMade: l.stats.verifiersMade.Load()}
}

// checkShared checks pw against u's stored hash, sharing the run with identical checks (the same
// user, password and hash) in flight. A check that ends because its own client went away does
// not answer the others: they run their own.
func (l *Local) checkShared(ctx context.Context, u User, pw []byte) (bool, error) {
	k := credentialSum(&l.flightKey, u.Name, pw, u.HashAlgorithm, u.PasswordHash)
	for {
		l.flightMu.Lock()
		f, waiting := l.flights[k]
		if waiting {
			f.waiters++
		} else {
			f = &hashFlight{done: make(chan struct{})}
			l.flights[k] = f
		}
		l.flightMu.Unlock()
		if waiting {
			select {
			case <-f.done:
			case <-ctx.Done():
				return false, fmt.Errorf("auth: waiting to verify a password: %w", ctx.Err())
			}
			if errors.Is(f.err, context.Canceled) || errors.Is(f.err, context.DeadlineExceeded) {
				continue // the leader's client went away: not an answer
			}
			l.stats.shared.Add(1)
			return f.good, f.err
		}
		l.stats.hashChecks.Add(1)
		f.good, f.err = l.check(ctx, u.HashAlgorithm, u.PasswordHash, pw)
		l.flightMu.Lock()
		delete(l.flights, k)
		l.flightMu.Unlock()
		close(f.done)
		return f.good, f.err
	}
}

// matchVerifier checks pw against v, one HMAC (key set), and counts it in the stats. The key's
// method is called directly: through a func value v would escape to the heap, an allocation per
// login.
func (l *Local) matchVerifier(v *Verifier, pw []byte) bool {
	l.stats.verifierChecks.Add(1)
	return l.key.matches(v, pw)
}

func (l *Local) identity(u User, c *Credentials) *Identity {
	return &Identity{User: u.Name, Subject: u.ID, Issuer: IssuerLocal, Vhost: c.Vhost, Tags: slices.Clone(u.Tags), Method: "local", Loopback: c.Loopback()}
}

// check runs one password verification under the concurrency bound.
func (l *Local) check(ctx context.Context, alg, hash string, pw []byte) (bool, error) {
	select {
	case l.sem <- struct{}{}:
	case <-ctx.Done():
		return false, fmt.Errorf("auth: waiting to verify a password: %w", ctx.Err())
	}
	defer func() { <-l.sem }()
	return l.verify(alg, hash, pw)
}
