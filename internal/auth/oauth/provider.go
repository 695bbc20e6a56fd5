package oauth

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/turnstilemq/turnstile/internal/auth"
)

// MethodJWT is the MQTT 5 Authentication Method whose Authentication Data is a JWT
// (will-and-expiry.md §4, "Refresh without reconnecting").
const MethodJWT = "jwt"

// Provider is the "oauth" link of the auth chain and the token verifier behind it. It is safe
// for concurrent use; Verify reads the key cache without locking.
type Provider struct {
	o    Options // defaults applied
	algs []jose.SignatureAlgorithm
	keys *keySet
}

var _ auth.BearerProvider = (*Provider)(nil)

// New validates o, applies its defaults and returns a provider. It does no I/O: Start fetches
// the keys and runs the refresh loop; without Start, the first token fetches them on demand
// (as an unknown kid) and they are never refreshed periodically.
func New(o Options) (*Provider, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	o = o.withDefaults()
	p := &Provider{o: o}
	for _, a := range o.Algorithms {
		p.algs = append(p.algs, jose.SignatureAlgorithm(a))
	}
	p.keys = newKeySet(&p.o)
	return p, nil
}

// Name is "oauth".
func (p *Provider) Name() string { return "oauth" }

// Leeway is the clock skew allowed on exp, nbf and iat, for the broker's expiry timer and
// per-action validity checks (Identity.ValidAt).
func (p *Provider) Leeway() time.Duration { return p.o.Leeway }

// Start fetches the keys once and starts the periodic refresh. It fails only when called twice
// or after Close: an identity provider that is down at start is retried by the loop (with
// backoff), and tokens are refused, or their kid fetched on demand, until keys arrive. ctx
// bounds the first fetch only.
func (p *Provider) Start(ctx context.Context) error { return p.keys.start(ctx) }

// Close stops the refresh loop and ends a fetch in flight. Verify still works afterwards with
// the keys cached (an unknown kid then fails).
func (p *Provider) Close() error {
	p.keys.close()
	return nil
}

// Refresh fetches the keys now (joining a fetch in flight) and reports its failure; the cached
// keys stay in use when it fails.
func (p *Provider) Refresh(ctx context.Context) error { return p.keys.refresh(ctx, TriggerManual) }

// TokenError is the error of a Deny by Authenticate: the token was presented and failed
// verification. It wraps auth.ErrBadCredentials (CONNACK 0x86, 3.1.1 return code 4) and the
// verification failure (one of this package's Err* values). Enhanced is set when the token
// came as MQTT 5 Authentication Data with the method "jwt" rather than as the password: the
// broker answers 0x87 then (will-and-expiry.md §4, "At CONNECT").
//
// Its Error is the summary a CONNACK stands for; the *auth.Denial around it carries the cause
// as its Reason ("token expired at …"), so the chain's error reads "bad user name or password:
// oauth: token expired at …".
type TokenError struct {
	Enhanced bool
	Err      error
}

func (e *TokenError) Error() string {
	if e.Enhanced {
		return "bad authentication data (method jwt)"
	}
	return auth.ErrBadCredentials.Error()
}

func (e *TokenError) Unwrap() []error { return []error{auth.ErrBadCredentials, e.Err} }

// Bearer reports whether c carries a JWT: the Authentication Method jwt, or a JWT-shaped
// password (auth.BearerProvider). The shape cannot be used to guess a local password without
// being counted at once: the local provider abstains on a JWT-shaped password, so such an
// attempt is only ever checked as a JWT.
func (p *Provider) Bearer(c *auth.Credentials) bool {
	return c.AuthMethod == MethodJWT || (c.AuthMethod == "" && auth.LooksLikeJWT(c.Password))
}

// Authenticate implements auth.Provider. It abstains unless the client uses the method "jwt"
// (the token is AuthData) or, without an authentication method, the password looks like a JWT
// (auth.LooksLikeJWT; the user name then only carries the vhost prefix, as in LavinMQ). Another
// method is not this provider's. A token that fails Verify is denied with an *auth.Denial whose
// Err is a *TokenError; a good one is allowed with the identity Verify returns, judged at the
// provider's clock.
func (p *Provider) Authenticate(ctx context.Context, c *auth.Credentials) (auth.Decision, *auth.Identity, error) {
	var token []byte
	enhanced := false
	switch {
	case c.AuthMethod == MethodJWT:
		token, enhanced = c.AuthData, true
	case c.AuthMethod != "":
		return auth.Abstain, nil, nil
	case auth.LooksLikeJWT(c.Password):
		token = c.Password
	default:
		return auth.Abstain, nil, nil
	}
	id, err := p.Verify(ctx, token, c.Vhost, p.o.Clock.Now())
	if err != nil {
		if ctx.Err() != nil && !errors.Is(err, ErrUnknownKeyID) {
			return auth.Deny, nil, fmt.Errorf("oauth: %w", ctx.Err())
		}
		te := &TokenError{Enhanced: enhanced, Err: err}
		reason := strings.TrimPrefix(err.Error(), "oauth: ")
		return auth.Deny, nil, &auth.Denial{Provider: p.Name(), Reason: reason, Err: te}
	}
	id.Loopback = c.Loopback()
	return auth.Allow, id, nil
}

// RefreshCount is one jwks_refresh_total{trigger,result} counter.
type RefreshCount struct {
	Trigger, Result string
	N               uint64
}

// Stats are the provider's counters and key-cache state, for metrics.
type Stats struct {
	// Refreshes is jwks_refresh_total by trigger and result, every combination, in a fixed order.
	Refreshes []RefreshCount
	// UnknownKid is jwks_unknown_kid_total: tokens whose kid was not in the cache.
	UnknownKid uint64
	// Keys is the number of key ids cached; LastRefresh when the last fetch succeeded (zero if
	// none did); RefreshTTL is the interval the loop waits after a success.
	Keys        int
	LastRefresh time.Time
	RefreshTTL  time.Duration
}

// Refresh returns the count of one trigger and result.
func (s Stats) Refresh(trigger, result string) uint64 {
	i := slices.IndexFunc(s.Refreshes, func(r RefreshCount) bool { return r.Trigger == trigger && r.Result == result })
	if i < 0 {
		return 0
	}
	return s.Refreshes[i].N
}

// Stats returns the counters now.
func (p *Provider) Stats() Stats {
	ks := p.keys
	s := Stats{UnknownKid: ks.stats.unknownKid.Load(), Keys: len(*ks.keys.Load())}
	for ti, t := range triggers {
		for ri, r := range results {
			s.Refreshes = append(s.Refreshes, RefreshCount{Trigger: t, Result: r, N: ks.stats.refresh[ti][ri].Load()})
		}
	}
	ks.mu.Lock()
	s.LastRefresh, s.RefreshTTL = ks.lastOK, ks.ttl
	ks.mu.Unlock()
	return s
}
