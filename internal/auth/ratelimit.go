package auth

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"time"
)

// RateLimitPolicy is the login policy of a [RateLimiter]. Zero fields take the defaults of
// DefaultRateLimitPolicy.
type RateLimitPolicy struct {
	// Threshold is how many attempts of one user name from one source may be on record before
	// that pair's attempts are delayed.
	Threshold int
	// SourceThreshold is how many attempts of one source, whatever their user names, may be on
	// record before every attempt from it is delayed (credential stuffing across many names).
	SourceThreshold int
	BaseDelay       time.Duration // the delay at a threshold; it doubles with each attempt above it
	MaxDelay        time.Duration // cap of the delay, and of how far ahead an attempt may be queued
	DecayInterval   time.Duration // one attempt on record is forgotten per interval
	MaxEntries      int           // bound of each table (sources, and user names per source)
}

// DefaultRateLimitPolicy: a user name from one source is delayed after 5 attempts on record, a
// source after 20; 100 ms doubling up to 5 s; one attempt forgotten every 30 s; 10,000 sources
// and 10,000 (user name, source) pairs tracked.
var DefaultRateLimitPolicy = RateLimitPolicy{
	Threshold:       5,
	SourceThreshold: 20,
	BaseDelay:       100 * time.Millisecond,
	MaxDelay:        5 * time.Second,
	DecayInterval:   30 * time.Second,
	MaxEntries:      10000,
}

// RateLimiter slows down password guessing from one source without letting anyone lock another
// client out. The policy, exactly (docs/security.md, "Logins"):
//
//   - Keys. A source is an IPv4 address, or the /64 of an IPv6 address (one host commonly holds
//     a whole /64); a unix socket has none. Every attempt has a pair key (its user name and its
//     source) and, when it has a source, a source key. Each key has a count f of attempts on
//     record. There is no key of a user name alone: failures from one source never slow the
//     same user name from another.
//   - Counting. An attempt is counted when it starts, before any password is checked, so
//     attempts sent in parallel cannot escape the count: f of its pair goes up by 1, and f of
//     its source too while the pair is below Threshold (a client retrying one wrong password
//     cannot push its whole source, a NAT address shared with healthy neighbours, over
//     SourceThreshold on its own). A successful login takes its attempt back: the pair is
//     forgotten and the source's count returned. An attempt abandoned before any provider was
//     asked (the client went away while delayed) is returned too.
//   - Bearer tokens. An attempt with a credential that cannot be guessed (a JWT, a token of the
//     token service, an AccessKey signature: BearerProvider) is delayed or refused like any
//     other, but counted only when it fails, as it fails: parallel attempts with distinct
//     tokens (a fleet behind one NAT address, all its devices sharing one token user name)
//     gain an attacker nothing, and a flood of bad tokens is slowed by its failures.
//   - Decay. f loses 1 per DecayInterval since it last changed (linear leak), down to 0.
//   - Delay. When an attempt starts, each of its keys at or above its threshold t asks for the
//     delay d = min(BaseDelay × 2^(f−t), MaxDelay): with the defaults 100 ms at 5 attempts of a
//     pair, 200 ms at 6, … 3.2 s at 10, and 5 s from 11 on. The key's answer slot is then
//     max(now, the key's previous slot) + d, so attempts on one key are answered at least d apart
//     even when they arrive in parallel. The attempt waits until the latest slot of its keys,
//     then the providers are asked as usual: a correct password still logs in, late, and a wrong
//     one fails as a wrong password.
//   - Refusal. When a slot would lie more than MaxDelay ahead, the attempt is refused at once
//     with an error wrapping ErrRateLimited only (never ErrBadCredentials: the credentials were
//     not checked, and a client must not take the refusal as final). Nothing is counted or
//     reserved for it.
//   - Bounds. Each table holds at most MaxEntries keys; a new key evicts the one least recently
//     touched, and keys whose count has decayed to 0 are dropped when next touched.
//
// The delay is a sleep outside any lock that ends early when the attempt's context is done. The
// limiter is safe for concurrent use.
type RateLimiter struct {
	p     RateLimitPolicy
	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) error // replaced by tests

	mu      sync.Mutex
	sources failureTable[netip.Prefix] // mu held
	pairs   failureTable[pairKey]      // mu held
}

// pairKey is a user name from a source ("" for a unix socket).
type pairKey struct {
	user string
	src  netip.Prefix
}

// NewRateLimiter returns a limiter with policy p (zero fields take the defaults) and clock now
// (nil: time.Now).
func NewRateLimiter(p RateLimitPolicy, now func() time.Time) *RateLimiter {
	d := DefaultRateLimitPolicy
	if p.Threshold <= 0 {
		p.Threshold = d.Threshold
	}
	if p.SourceThreshold <= 0 {
		p.SourceThreshold = d.SourceThreshold
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
	return &RateLimiter{p: p, now: now, sleep: sleepCtx, sources: newFailureTable[netip.Prefix](p.MaxEntries),
		pairs: newFailureTable[pairKey](p.MaxEntries)}
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

// SourceKey is the key of a source address: the address, or the /64 of an IPv6 address; ok is
// false for no address (a unix socket).
func SourceKey(a netip.Addr) (p netip.Prefix, ok bool) {
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

// delayFor is d(f) for threshold t, 0 below it.
func (r *RateLimiter) delayFor(f, t int) time.Duration {
	n := f - t
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
	src, hasSrc := SourceKey(addr)
	r.mu.Lock()
	defer r.mu.Unlock()
	d := r.delayFor(r.pairs.count(pairKey{user, src}, now, r.p.DecayInterval), r.p.Threshold)
	if hasSrc {
		d = max(d, r.delayFor(r.sources.count(src, now, r.p.DecayInterval), r.p.SourceThreshold))
	}
	return d
}

// attempt is what reserve counted for one login attempt, so that finish can take it back.
type attempt struct {
	pair       pairKey
	src        netip.Prefix
	hasSrc     bool
	bearer     bool // counted only if it fails
	countedSrc bool
}

// reserve counts an attempt from addr as user (a bearer token's only later, if it fails: see
// finish) and claims its answer slots. It returns how long
// the attempt must wait, or an error wrapping ErrRateLimited when it is refused (then nothing is
// counted).
func (r *RateLimiter) reserve(addr netip.Addr, user string, bearer bool) (time.Duration, attempt, error) {
	now := r.now()
	src, hasSrc := SourceKey(addr)
	a := attempt{pair: pairKey{user, src}, src: src, hasSrc: hasSrc, bearer: bearer}
	r.mu.Lock()
	defer r.mu.Unlock()
	pair := r.pairs.peek(a.pair, now, r.p.DecayInterval)
	var source *failureState
	if hasSrc {
		source = r.sources.peek(src, now, r.p.DecayInterval)
	}
	keys := [2]struct {
		e     *failureState
		d     time.Duration
		until time.Time
	}{{e: pair}, {e: source}}
	keys[0].d = r.delayFor(pair.countOrZero(), r.p.Threshold)
	keys[1].d = r.delayFor(source.countOrZero(), r.p.SourceThreshold)
	var wait time.Duration
	for i := range keys {
		k := &keys[i]
		if k.e == nil || k.d == 0 {
			continue
		}
		k.until = now
		if k.e.slot.After(now) {
			k.until = k.e.slot
		}
		k.until = k.until.Add(k.d)
		w := k.until.Sub(now)
		if w > r.p.MaxDelay {
			who := "this user name from this address"
			if i == 1 {
				who = "this address"
			}
			return 0, attempt{}, fmt.Errorf("auth: %w: too many login attempts of %s; retry later", ErrRateLimited, who)
		}
		wait = max(wait, w)
	}
	for i := range keys {
		if keys[i].e != nil && keys[i].d > 0 {
			keys[i].e.slot = keys[i].until
		}
	}
	if !bearer {
		r.countLocked(&a, now)
	}
	return wait, a, nil
}

// countLocked puts attempt a on record: its pair, and its source while the pair is below
// Threshold. mu held.
func (r *RateLimiter) countLocked(a *attempt, now time.Time) {
	below := r.pairs.count(a.pair, now, r.p.DecayInterval) < r.p.Threshold
	r.pairs.add(a.pair, now, r.p.DecayInterval, 1)
	if a.hasSrc && below {
		r.sources.add(a.src, now, r.p.DecayInterval, 1)
		a.countedSrc = true
	}
}

// finish settles a counted attempt: a successful login forgets its pair and returns its count
// on the source; an abandoned one (no provider was asked) returns both; a failure keeps them.
func (r *RateLimiter) finish(a attempt, success, abandoned bool) {
	if a.bearer { // counted only as it fails
		if !success && !abandoned {
			now := r.now()
			r.mu.Lock()
			r.countLocked(&a, now)
			r.mu.Unlock()
		}
		return
	}
	if !success && !abandoned {
		return
	}
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if success {
		r.pairs.clear(a.pair)
	} else {
		r.pairs.add(a.pair, now, r.p.DecayInterval, -1)
	}
	if a.countedSrc {
		r.sources.add(a.src, now, r.p.DecayInterval, -1)
	}
}

// Failure records a failed login from addr as user, outside Authenticate (counted as an
// attempt that has already started and failed).
func (r *RateLimiter) Failure(addr netip.Addr, user string) {
	now := r.now()
	src, hasSrc := SourceKey(addr)
	r.mu.Lock()
	defer r.mu.Unlock()
	below := r.pairs.count(pairKey{user, src}, now, r.p.DecayInterval) < r.p.Threshold
	r.pairs.add(pairKey{user, src}, now, r.p.DecayInterval, 1)
	if hasSrc && below {
		r.sources.add(src, now, r.p.DecayInterval, 1)
	}
}

// Len returns the number of sources and of (user name, source) pairs on record.
func (r *RateLimiter) Len() (sources, pairs int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.sources.m), len(r.pairs.m)
}

// failureTable is a bounded map of attempt counts with least-recently-touched eviction. Its
// entries are linked in a list of their own and reused: a successful login puts an entry on
// record when it starts and takes it off when it succeeds, and that costs no allocation.
type failureTable[K comparable] struct {
	max   int
	m     map[K]*tableEntry[K]
	lru   tableEntry[K]  // the list's sentinel: lru.next is the most recently touched entry
	free  *tableEntry[K] // entries off the list, linked through next, for reuse
	nfree int
}

// maxFreeEntries bounds the entries a failureTable keeps for reuse: about as many as attempts
// are in progress at once.
const maxFreeEntries = 64

type tableEntry[K comparable] struct {
	key        K
	prev, next *tableEntry[K]
	failureState
}

type failureState struct {
	failures int
	changed  time.Time // when failures last changed or decayed
	slot     time.Time // answer slot of the latest delayed attempt
}

func (e *failureState) countOrZero() int {
	if e == nil {
		return 0
	}
	return e.failures
}

func newFailureTable[K comparable](max int) failureTable[K] {
	return failureTable[K]{max: max, m: make(map[K]*tableEntry[K])}
}

// toFront puts e at the front of the list, unlinking it first if it is on it.
func (t *failureTable[K]) toFront(e *tableEntry[K]) {
	if t.lru.next == nil { // the sentinel of a new table points at itself
		t.lru.next, t.lru.prev = &t.lru, &t.lru
	}
	if e.next != nil {
		e.prev.next, e.next.prev = e.next, e.prev
	}
	e.prev, e.next = &t.lru, t.lru.next
	t.lru.next.prev = e
	t.lru.next = e
}

// remove takes e off the list and out of the map, and keeps it for reuse.
func (t *failureTable[K]) remove(e *tableEntry[K]) {
	delete(t.m, e.key)
	e.prev.next, e.next.prev = e.next, e.prev
	*e = tableEntry[K]{}
	if t.nfree < maxFreeEntries {
		e.next = t.free
		t.free = e
		t.nfree++
	}
}

// insert puts a new entry for k on record, at the front.
func (t *failureTable[K]) insert(k K) *tableEntry[K] {
	e := t.free
	if e != nil {
		t.free, e.next = e.next, nil
		t.nfree--
	} else {
		e = new(tableEntry[K])
	}
	e.key = k
	t.m[k] = e
	t.toFront(e)
	return e
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

// peek returns k's entry with decay applied and marks it touched, or nil when k has nothing on
// record (such an entry is dropped unless it still holds a future slot).
func (t *failureTable[K]) peek(k K, now time.Time, interval time.Duration) *failureState {
	el, ok := t.m[k]
	if !ok {
		return nil
	}
	e := &el.failureState
	e.decay(now, interval)
	if e.failures == 0 && !e.slot.After(now) {
		t.remove(el)
		return nil
	}
	t.toFront(el)
	return e
}

func (t *failureTable[K]) count(k K, now time.Time, interval time.Duration) int {
	return t.peek(k, now, interval).countOrZero()
}

// add changes k's count by n (+1 or -1) after decay, creating the entry for +1 and evicting the
// least recently touched one when the table is full; an entry back at 0 without a future slot
// goes.
func (t *failureTable[K]) add(k K, now time.Time, interval time.Duration, n int) {
	el, ok := t.m[k]
	if !ok {
		if n <= 0 {
			return
		}
		for len(t.m) > 0 && len(t.m) >= t.max {
			t.remove(t.lru.prev) // the least recently touched
		}
		el = t.insert(k)
	}
	e := &el.failureState
	e.decay(now, interval)
	e.failures = max(e.failures+n, 0)
	e.changed = now
	if e.failures == 0 && !e.slot.After(now) {
		t.remove(el)
		return
	}
	t.toFront(el)
}

func (t *failureTable[K]) clear(k K) {
	if el, ok := t.m[k]; ok {
		t.remove(el)
	}
}
