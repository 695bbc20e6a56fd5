package auth

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// Denial is a provider's reason for a Deny, returned as its error. Err is ErrBadCredentials or
// ErrNotAuthorized and picks the CONNACK code (v5 0x86 or 0x87, 3.1.1 code 4 or 5); Reason is for
// the log: it never contains a password, a hash or a token, and the client is never told it.
type Denial struct {
	Provider string
	Reason   string
	Err      error
}

func (d *Denial) Error() string {
	err := d.Err
	if err == nil {
		err = ErrBadCredentials
	}
	return err.Error() + ": " + d.Provider + ": " + d.Reason
}

func (d *Denial) Unwrap() error { return d.Err }

func deny(provider, reason string, err error) (Decision, *Identity, error) {
	return Deny, nil, &Denial{Provider: provider, Reason: reason, Err: err}
}

// Reasons of loopbackOnly's denials, for the log.
const (
	reasonNotLoopback = "the default user may log in only from a loopback address or the unix socket"
	reasonFromBrowser = "a connection carrying a browser Origin header cannot log in as the default user, " +
		"even from a loopback address: a web page could reach a loopback listener through DNS rebinding"
)

// loopbackOnly refuses user when it is the restricted (default) user and the client is not on a
// loopback address or a unix socket. Every provider that logs in as a local user applies it, so
// neither a certificate nor anonymous access gets around it. The reason names the real cause: a
// browser's WebSocket (FromBrowser) is refused whatever its address, and the log shows its remote
// address, often 127.0.0.1, beside the reason.
func loopbackOnly(provider, restricted, user string, c *Credentials) (Decision, *Identity, error) {
	if restricted != "" && user == restricted && !c.Loopback() {
		if c.FromBrowser {
			return deny(provider, reasonFromBrowser, ErrNotAuthorized)
		}
		return deny(provider, reasonNotLoopback, ErrNotAuthorized)
	}
	return Abstain, nil, nil
}

// Chain is the ordered list of providers configured by [main] auth_backends. It is safe for
// concurrent use once configured.
type Chain struct {
	providers []Provider
	limiter   *RateLimiter
	onLimit   func(LimitNotice)
	flights   *flights // identical attempts in progress share one check (flight.go)
}

// LimitNotice tells what the rate limiter did to one login attempt: delayed it by Delay before
// its credentials were checked, or Refused it without checking them. It names the user and the
// address, never a credential.
type LimitNotice struct {
	Listener string     // of the attempt's Credentials: "tcp", ..., "mgmt"
	Remote   netip.Addr // invalid for a unix socket
	User     string
	Delay    time.Duration
	Refused  bool
}

// NewChain returns a chain that asks providers in order, with login rate limiting at
// DefaultRateLimitPolicy (see [RateLimiter]); WithRateLimiter changes or disables it.
func NewChain(providers ...Provider) *Chain {
	return &Chain{providers: slices.Clone(providers), limiter: NewRateLimiter(RateLimitPolicy{}, nil), flights: newFlights()}
}

// WithRateLimiter replaces the chain's rate limiter (nil: none) and returns the chain. Call it
// before the chain is used.
func (ch *Chain) WithRateLimiter(rl *RateLimiter) *Chain {
	ch.limiter = rl
	return ch
}

// OnLimit installs fn, called for every attempt the rate limiter delays or refuses, on the
// attempt's goroutine before the delay; it must return quickly. Call it before the chain is used.
func (ch *Chain) OnLimit(fn func(LimitNotice)) *Chain {
	ch.onLimit = fn
	return ch
}

// RateLimiter returns the chain's rate limiter, nil when there is none.
func (ch *Chain) RateLimiter() *RateLimiter { return ch.limiter }

// Coalesced returns how many login attempts were answered by an identical attempt's check in
// progress at the same time (flight.go) instead of running their own.
func (ch *Chain) Coalesced() uint64 {
	if ch.flights == nil {
		return 0
	}
	return ch.flights.shared.Load()
}

// Providers returns the names of the providers, in order.
func (ch *Chain) Providers() []string {
	names := make([]string, len(ch.providers))
	for i, p := range ch.providers {
		names[i] = p.Name()
	}
	return names
}

// Authenticate asks the providers in order. The first Allow wins and its Identity, copied, is
// the result. A Deny stops the chain: the error is the provider's *Denial (which wraps
// ErrBadCredentials or ErrNotAuthorized), or ErrBadCredentials wrapping the provider's own
// failure. When every provider abstains the error wraps ErrBadCredentials.
//
// Before the providers are asked, the rate limiter counts the attempt and may delay it or refuse
// it (see [RateLimiter] for the policy). A refusal wraps ErrRateLimited and nothing else: no
// credential was checked. A delayed attempt is then answered on its merits. The delay holds no
// lock and ends early, with an error wrapping ErrRateLimited and ctx's error, when ctx is done.
// Errors never contain a secret.
//
// A bearer token (BearerProvider) is counted by the limiter only if it fails: it cannot be
// guessed, so attempts in parallel gain an attacker nothing.
//
// Identical attempts in progress at the same time (the same credentials from the same source,
// listener and vhost: a connection pool, a fleet behind one address) are checked and counted
// once and share the answer (flight.go); guesses, being different passwords, are not coalesced.
func (ch *Chain) Authenticate(ctx context.Context, c *Credentials) (*Identity, error) {
	if ch.flights == nil {
		return ch.authenticate(ctx, c)
	}
	return ch.flights.do(ctx, c, func() (*Identity, error) { return ch.authenticate(ctx, c) })
}

// authenticate is Authenticate for one attempt: the rate limiter, then the providers.
func (ch *Chain) authenticate(ctx context.Context, c *Credentials) (*Identity, error) {
	bearer := ch.bearer(c)
	rl := ch.limiter
	if rl == nil {
		return ch.run(ctx, c, bearer)
	}
	wait, at, err := rl.reserve(c.Remote, c.Username, bearer)
	if err != nil {
		ch.notify(c, 0, true)
		return nil, err
	}
	if wait > 0 {
		ch.notify(c, wait, false)
		if err := rl.sleep(ctx, wait); err != nil {
			rl.finish(at, false, true)
			return nil, fmt.Errorf("auth: %w: gave up while delayed: %w", ErrRateLimited, err)
		}
	}
	if err := ctx.Err(); err != nil { // the client went away before anything was checked
		rl.finish(at, false, true)
		return nil, fmt.Errorf("auth: %w", err)
	}
	id, err := ch.run(ctx, c, bearer)
	rl.finish(at, err == nil, false)
	return id, err
}

// bearer reports whether a provider of the chain takes c for one of its bearer tokens.
func (ch *Chain) bearer(c *Credentials) bool {
	for _, p := range ch.providers {
		if takesBearer(p, c) {
			return true
		}
	}
	return false
}

// takesBearer reports whether p takes c for one of its bearer tokens.
func takesBearer(p Provider, c *Credentials) bool {
	b, ok := p.(BearerProvider)
	return ok && b.Bearer(c)
}

func (ch *Chain) notify(c *Credentials, d time.Duration, refused bool) {
	if ch.onLimit != nil {
		ch.onLimit(LimitNotice{Listener: c.Listener, Remote: c.Remote, User: c.Username, Delay: d, Refused: refused})
	}
}

// run asks the providers in order. A bearer credential is asked only of the providers that take
// it for theirs: the limiter counts it only when it fails, which must never let a guessable
// password through uncounted (a local user named like a token's user name, say).
func (ch *Chain) run(ctx context.Context, c *Credentials, bearer bool) (*Identity, error) {
	for _, p := range ch.providers {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("auth: %w", err)
		}
		if bearer && !takesBearer(p, c) {
			continue
		}
		d, id, err := p.Authenticate(ctx, c)
		if err != nil {
			if errors.Is(err, ErrBadCredentials) || errors.Is(err, ErrNotAuthorized) {
				return nil, err
			}
			return nil, fmt.Errorf("%w: provider %s failed: %w", ErrBadCredentials, p.Name(), err)
		}
		switch d {
		case Abstain:
			continue
		case Allow:
			if id == nil {
				return nil, fmt.Errorf("%w: provider %s allowed without an identity", ErrBadCredentials, p.Name())
			}
			// Completed in place: the identity is this call's own (Provider), never shared with
			// another login (TestProvidersReturnTheirOwnIdentity).
			if id.Vhost == "" {
				id.Vhost = c.Vhost
			}
			if id.Method == "" {
				id.Method = p.Name()
			}
			id.Loopback = c.Loopback()
			id.Remote, id.ClientID = c.Remote, c.ClientID
			return id, nil
		case Deny:
			return nil, &Denial{Provider: p.Name(), Reason: "denied", Err: ErrBadCredentials}
		default:
			return nil, fmt.Errorf("%w: provider %s answered unknown decision %d", ErrBadCredentials, p.Name(), d)
		}
	}
	return nil, &Denial{Provider: "chain", Reason: "no provider accepted the credentials", Err: ErrBadCredentials}
}

// clone returns a copy of id that shares nothing mutable with it.
func (id *Identity) clone() *Identity {
	snap := *id
	snap.Tags = slices.Clone(id.Tags)
	snap.Grants = slices.Clone(id.Grants)
	snap.Creds = slices.Clone(id.Creds)
	if id.Scoped != nil {
		sp := *id.Scoped
		snap.Scoped = &sp
	}
	return &snap
}
