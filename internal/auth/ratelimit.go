package auth

import (
	"container/list"
	"context"
	"fmt"
	"net/netip"
	"sync"
	"time"
)

// RateLimitPolicy is the failed-login policy of a [RateLimiter]. Zero fields take the defaults
// of DefaultRateLimitPolicy.
type RateLimitPolicy struct {
	Threshold     int           // failures on record before attempts are delayed
	BaseDelay     time.Duration // the delay at Threshold failures; it doubles with each further one
	MaxDelay      time.Duration // cap of the delay, and of how far ahead an attempt may be queued
	DecayInterval time.Duration // one failure on record is forgotten per interval
	MaxEntries    int           // bound of each table (source addresses, user names)
}

// DefaultRateLimitPolicy: after 5 failures, 100 ms doubling up to 5 s; one failure forgotten
// every 30 s; 10,000 addresses and 10,000 user names tracked.
var DefaultRateLimitPolicy = RateLimitPolicy{
	Threshold:     5,
	BaseDelay:     100 * time.Millisecond,
	MaxDelay:      5 * time.Second,
	DecayInterval: 30 * time.Second,
	MaxEntries:    10000,
}

// RateLimiter slows down failed logins per source address and per user name. The policy,
// exactly:
//
//   - Keys. Every attempt has up to two keys: its source address (an IPv4 address, or the /64 of
//     an IPv6 address, since one host commonly holds a whole /64; none for a unix socket) and its
//     user name (none when empty). Each key has a failure count f.
//   - Counting. A failed attempt (a Deny, every provider abstaining, or a provider failure, but
//     not a client that went away) adds 1 to f of each of its keys. A successful login clears f
//     of its user name, not of its address (many clients may share one NAT address).
//   - Decay. f loses 1 per DecayInterval since it last changed (linear leak), down to 0.
//   - Delay. When an attempt starts, each of its keys with f ≥ Threshold asks for the delay
//     d = min(BaseDelay × 2^(f−Threshold), MaxDelay): with the defaults 100 ms after 5 failures,
//     200 ms after 6, … 3.2 s after 10, and 5 s from 11 on. The key's answer slot is then
//     max(now, the key's previous slot) + d, so attempts on one key are answered at least d apart
//     even when they arrive in parallel. The attempt waits until the latest slot of its keys,
//     then the providers are asked as usual: a correct password still logs in, late. A failure
//     after a delay wraps ErrRateLimited besides ErrBadCredentials or ErrNotAuthorized.
//   - Refusal. When a slot would lie more than MaxDelay ahead, the attempt is refused at once
//     with an error wrapping ErrRateLimited and ErrBadCredentials, the providers are not asked
//     (no password is checked) and nothing is counted or reserved.
//   - Bounds. Each table holds at most MaxEntries keys; a new key evicts the one least recently
//     touched, and keys whose count has decayed to 0 are dropped when next touched.
//
// The delay is a sleep outside any lock that ends early when the attempt's context is done. The
// limiter is safe for concurrent use.
type RateLimiter struct {
	p     RateLimitPolicy
	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) error // replaced by tests

	mu    sync.Mutex
	addrs failureTable[netip.Prefix] // mu held
	users failureTable[string]       // mu held
}

// NewRateLimiter returns a limiter with policy p (zero fields take the defaults) and clock now
// (nil: time.Now).
func NewRateLimiter(p RateLimitPolicy, now func() time.Time) *RateLimiter {
	d := DefaultRateLimitPolicy
	if p.Threshold <= 0 {
		p.Threshold = d.Threshold
	}
	if p.BaseDelay <= 0 {
		p.BaseDelay = d.BaseDelay
	}
	if p.MaxDelay <= 0 {
		p.MaxDelay = d.MaxDelay
	}
	if p.DecayInterval <= 0 {
		p.DecayInterval = d.DecayInterval
	}
	if p.MaxEntries <= 0 {
		p.MaxEntries = d.MaxEntries
	}
	if now == nil {
		now = time.Now
	}
	return &RateLimiter{p: p, now: now, sleep: sleepCtx, addrs: newFailureTable[netip.Prefix](p.MaxEntries), users: newFailureTable[string](p.MaxEntries)}
}

// Policy returns the limiter's policy, defaults filled in.
func (r *RateLimiter) Policy() RateLimitPolicy { return r.p }

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// addrKey is the table key of a source address: the address, or the /64 of an IPv6 address.
func addrKey(a netip.Addr) (netip.Prefix, bool) {
	if !a.IsValid() {
		return netip.Prefix{}, false
	}
	a = a.Unmap()
	bits := 32
	if a.Is6() {
		bits = 64
	}
	p, err := a.Prefix(bits)
	return p, err == nil
}

// delayFor is d(f) of the policy, 0 below the threshold.
func (r *RateLimiter) delayFor(f int) time.Duration {
	n := f - r.p.Threshold
	if n < 0 {
		return 0
	}
	d := r.p.BaseDelay
	for ; n > 0 && d < r.p.MaxDelay; n-- {
		d *= 2
	}
	return min(d, r.p.MaxDelay)
}

// Delay returns the delay an attempt from addr as user would be asked for now, ignoring any
// queue of parallel attempts: for metrics and tests.
func (r *RateLimiter) Delay(addr netip.Addr, user string) time.Duration {
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	var d time.Duration
	if k, ok := addrKey(addr); ok {
		d = max(d, r.delayFor(r.addrs.count(k, now, r.p.DecayInterval)))
	}
	if user != "" {
		d = max(d, r.delayFor(r.users.count(user, now, r.p.DecayInterval)))
	}
	return d
}

// reserve claims the answer slots of an attempt and returns how long it must wait, or an error
// wrapping ErrRateLimited and ErrBadCredentials when it is refused.
func (r *RateLimiter) reserve(addr netip.Addr, user string) (time.Duration, error) {
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	var slots [2]*failureState
	var until [2]time.Time
	if k, ok := addrKey(addr); ok {
		slots[0] = r.addrs.peek(k, now, r.p.DecayInterval)
	}
	if user != "" {
		slots[1] = r.users.peek(user, now, r.p.DecayInterval)
	}
	wait := time.Duration(0)
	for i, e := range slots {
		if e == nil {
			continue
		}
		d := r.delayFor(e.failures)
		if d == 0 {
			slots[i] = nil
			continue
		}
		until[i] = now
		if e.slot.After(now) {
			until[i] = e.slot
		}
		until[i] = until[i].Add(d)
		if w := until[i].Sub(now); w > r.p.MaxDelay {
			return 0, fmt.Errorf("auth: %w: %w: too many failed logins", ErrRateLimited, ErrBadCredentials)
		} else if w > wait {
			wait = w
		}
	}
	for i, e := range slots {
		if e != nil {
			e.slot = until[i]
		}
	}
	return wait, nil
}

// Failure records a failed login from addr as user.
func (r *RateLimiter) Failure(addr netip.Addr, user string) {
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if k, ok := addrKey(addr); ok {
		r.addrs.fail(k, now, r.p.DecayInterval)
	}
	if user != "" {
		r.users.fail(user, now, r.p.DecayInterval)
	}
}

// Success records a successful login as user: its failures are forgotten.
func (r *RateLimiter) Success(user string) {
	if user == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.users.clear(user)
}

// Len returns the number of addresses and user names on record.
func (r *RateLimiter) Len() (addrs, users int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.addrs.m), len(r.users.m)
}

// failureTable is a bounded map of failure counts with least-recently-touched eviction, keyed
// by address prefix or by user name.
type failureTable[K comparable] struct {
	max int
	m   map[K]*list.Element
	lru list.List // of *tableEntry[K], most recently touched at the front
}

type tableEntry[K comparable] struct {
	key K
	failureState
}

type failureState struct {
	failures int
	changed  time.Time // when failures last changed or decayed
	slot     time.Time // answer slot of the latest delayed attempt
}

func newFailureTable[K comparable](max int) failureTable[K] {
	return failureTable[K]{max: max, m: make(map[K]*list.Element)}
}

// decay applies the linear leak to e at now.
func (e *failureState) decay(now time.Time, interval time.Duration) {
	if e.failures == 0 {
		e.changed = now
		return
	}
	steps := now.Sub(e.changed) / interval
	if steps <= 0 {
		return
	}
	if steps >= time.Duration(e.failures) {
		e.failures, e.changed = 0, now
		return
	}
	e.failures -= int(steps)
	e.changed = e.changed.Add(steps * interval)
}

// peek returns k's entry with decay applied and marks it touched, or nil when k has no failures
// on record (such an entry is dropped unless it still holds a future slot).
func (t *failureTable[K]) peek(k K, now time.Time, interval time.Duration) *failureState {
	el, ok := t.m[k]
	if !ok {
		return nil
	}
	e := &el.Value.(*tableEntry[K]).failureState
	e.decay(now, interval)
	if e.failures == 0 && !e.slot.After(now) {
		t.lru.Remove(el)
		delete(t.m, k)
		return nil
	}
	t.lru.MoveToFront(el)
	return e
}

func (t *failureTable[K]) count(k K, now time.Time, interval time.Duration) int {
	if e := t.peek(k, now, interval); e != nil {
		return e.failures
	}
	return 0
}

func (t *failureTable[K]) fail(k K, now time.Time, interval time.Duration) {
	e := t.peek(k, now, interval)
	if e == nil {
		for len(t.m) >= t.max {
			back := t.lru.Back()
			delete(t.m, back.Value.(*tableEntry[K]).key)
			t.lru.Remove(back)
		}
		te := &tableEntry[K]{key: k}
		t.m[k] = t.lru.PushFront(te)
		e = &te.failureState
	}
	e.failures++
	e.changed = now
}

func (t *failureTable[K]) clear(k K) {
	if el, ok := t.m[k]; ok {
		t.lru.Remove(el)
		delete(t.m, k)
	}
}
