package auth

import (
	"context"
	"crypto/rand"
	"fmt"
	"runtime"
	"slices"
	"time"
)

// LocalOptions configure a [Local] provider. The zero value is usable.
type LocalOptions struct {
	// DefaultUserOnlyLoopback names the user ([main] default_user) who may log in only from a
	// loopback address or a unix socket; "" lifts the restriction.
	DefaultUserOnlyLoopback string
	// Hasher is how new passwords are hashed; the dummy hash checked for unknown users is made
	// with it, so that they cost what a user created here costs.
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
// An unknown user or one without a password costs what a known one does: the password is
// checked against a dummy hash made with the configured Hasher (Caddy's trick). Users whose hash
// was imported in a fast format (the RabbitMQ salted digests) remain faster to refuse than
// unknown ones; that is the price of importing such hashes unchanged.
type Local struct {
	users      *Users
	restricted string
	cache      *verifyCache // nil: disabled
	now        func() time.Time
	sem        chan struct{}

	// verify checks a password; tests wrap it to count calls.
	verify func(alg, hash string, pw []byte) (bool, error)

	dummyAlg, dummyHash string // a random password hashed with the Hasher
}

var _ Provider = (*Local)(nil)

// NewLocal returns the local provider over users. It hashes the dummy password at once, so it
// fails when o.Hasher is misconfigured, and costs one hash (about 50 ms at bcrypt cost 10).
func NewLocal(users *Users, o LocalOptions) (*Local, error) {
	pw := make([]byte, 24)
	rand.Read(pw) // never fails on supported platforms
	dummyAlg, dummyHash, err := o.Hasher.Hash(pw)
	if err != nil {
		return nil, fmt.Errorf("auth: local provider: %w", err)
	}
	l := &Local{dummyAlg: dummyAlg, dummyHash: dummyHash, users: users, restricted: o.DefaultUserOnlyLoopback, now: o.Now, verify: VerifyPassword}
	if l.now == nil {
		l.now = time.Now
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
	u, ok := l.users.Get(c.Username)
	if !ok || u.PasswordHash == "" {
		if _, err := l.check(ctx, l.dummyAlg, l.dummyHash, c.Password); err != nil {
			return Deny, nil, err
		}
		if !ok {
			return deny(l.Name(), "unknown user", ErrBadCredentials)
		}
		return deny(l.Name(), "user has no password", ErrBadCredentials)
	}
	if l.cache != nil && l.cache.hit(u.Name, c.Password, u.HashAlgorithm, u.PasswordHash, l.now()) {
		return Allow, l.identity(u, c), nil
	}
	good, err := l.check(ctx, u.HashAlgorithm, u.PasswordHash, c.Password)
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
	return Allow, l.identity(u, c), nil
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
