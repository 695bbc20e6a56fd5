package auth

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const ms = time.Millisecond

func newTestLimiter(p RateLimitPolicy) (*RateLimiter, *fakeClock) {
	clk := newFakeClock()
	return NewRateLimiter(p, clk.Now), clk
}

func TestRateLimitDelayGrowsAndCaps(t *testing.T) {
	rl, _ := newTestLimiter(RateLimitPolicy{})
	if p := rl.Policy(); p != DefaultRateLimitPolicy {
		t.Fatalf("defaults %+v", p)
	}
	a := addr("192.0.2.1")
	// Delay after n attempts of one user name from one address: nothing up to 4, then 100 ms
	// doubling, capped at 5 s.
	want := []time.Duration{0, 0, 0, 0, 0, 100 * ms, 200 * ms, 400 * ms, 800 * ms, 1600 * ms, 3200 * ms, 5000 * ms, 5000 * ms, 5000 * ms}
	for n, w := range want {
		if got := rl.Delay(a, "alice"); got != w {
			t.Fatalf("after %d failures: delay %v, want %v", n, got, w)
		}
		rl.Failure(a, "alice")
	}
	// A huge count does not overflow the doubling.
	for range 100 {
		rl.Failure(a, "alice")
	}
	if got := rl.Delay(a, "alice"); got != 5*time.Second {
		t.Fatalf("after many failures: %v", got)
	}
}

func TestRateLimitDecays(t *testing.T) {
	rl, clk := newTestLimiter(RateLimitPolicy{})
	a := addr("192.0.2.1")
	for range 7 {
		rl.Failure(a, "")
	}
	if got := rl.Delay(a, ""); got != 400*ms {
		t.Fatalf("7 failures: %v", got)
	}
	clk.Advance(29 * time.Second) // not yet one interval
	if got := rl.Delay(a, ""); got != 400*ms {
		t.Fatalf("after 29 s: %v", got)
	}
	clk.Advance(1 * time.Second) // one interval: 6 failures
	if got := rl.Delay(a, ""); got != 200*ms {
		t.Fatalf("after 30 s: %v", got)
	}
	clk.Advance(45 * time.Second) // 75 s in: two intervals, 5 failures; the half interval carries over
	if got := rl.Delay(a, ""); got != 100*ms {
		t.Fatalf("after 75 s: %v", got)
	}
	clk.Advance(15 * time.Second) // 90 s: three intervals, 4 failures
	if got := rl.Delay(a, ""); got != 0 {
		t.Fatalf("after 90 s: %v", got)
	}
	clk.Advance(time.Hour)
	if got := rl.Delay(a, ""); got != 0 {
		t.Fatalf("after an hour: %v", got)
	}
	if s, p := rl.Len(); s != 0 || p != 0 {
		t.Fatalf("fully decayed entries are kept: %d sources, %d pairs", s, p)
	}
	// A failure after decay counts from zero.
	rl.Failure(a, "")
	if got := rl.Delay(a, ""); got != 0 {
		t.Fatal(got)
	}
}

// An attacker's failures never slow the same user name from another address: there is no key of
// a user name alone (issue 11: a lock-out from anywhere).
func TestRateLimitNoLockOutFromElsewhere(t *testing.T) {
	rl, _ := newTestLimiter(RateLimitPolicy{})
	for i := range 200 { // 200 addresses, one user name
		a := netip.AddrFrom4([4]byte{198, 51, 100, byte(i)})
		for range 3 {
			rl.Failure(a, "target")
		}
	}
	rl.Failure(addr("192.0.2.66"), "target")
	for range 50 { // and many failures from one address
		rl.Failure(addr("192.0.2.66"), "target")
	}
	if d := rl.Delay(addr("203.0.113.5"), "target"); d != 0 {
		t.Fatalf("the owner from a fresh address is delayed %v by failures elsewhere", d)
	}
	if d := rl.Delay(addr("192.0.2.66"), "target"); d != 5*time.Second {
		t.Fatalf("the guessing address: delay %v, want the cap", d)
	}
}

// A source is limited after SourceThreshold attempts whatever their user names (credential
// stuffing), and one user name cannot push its source past that on its own (a device retrying
// a wrong password behind a NAT address does not slow its neighbours).
func TestRateLimitSourceKey(t *testing.T) {
	rl, _ := newTestLimiter(RateLimitPolicy{})
	nat := addr("192.0.2.1")
	for range 100 {
		rl.Failure(nat, "broken-device")
	}
	if d := rl.Delay(nat, "healthy-neighbour"); d != 0 {
		t.Fatalf("one user name's failures delay the whole source: %v", d)
	}
	if d := rl.Delay(nat, "broken-device"); d != 5*time.Second {
		t.Fatalf("the failing pair: %v", d)
	}
	stuffing := addr("192.0.2.2")
	for i := range 20 {
		rl.Failure(stuffing, fmt.Sprintf("user%d", i)) // twenty names, one attempt each
	}
	if d := rl.Delay(stuffing, "anyone"); d != 100*ms {
		t.Fatalf("after 20 names from one address: %v, want 100ms", d)
	}
	if d := rl.Delay(addr("192.0.2.3"), "user0"); d != 0 {
		t.Fatal("another address is limited")
	}
	// IPv6 is keyed by /64; a mapped IPv4 address is the IPv4 address.
	for i := range 20 {
		rl.Failure(netip.MustParseAddr(fmt.Sprintf("2001:db8:1:2::%x", i+1)), fmt.Sprintf("u%d", i))
	}
	if rl.Delay(addr("2001:db8:1:2:ffff::9"), "x") != 100*ms || rl.Delay(addr("2001:db8:1:3::1"), "x") != 0 {
		t.Fatal("IPv6 not keyed by /64")
	}
	if rl.Delay(addr("::ffff:192.0.2.2"), "x") != 100*ms {
		t.Fatal("mapped IPv4 not unmapped")
	}
	// A unix socket has no source key, only pairs.
	for range 10 {
		rl.Failure(netip.Addr{}, "local")
	}
	if rl.Delay(netip.Addr{}, "local") != 3200*ms || rl.Delay(netip.Addr{}, "other") != 0 {
		t.Fatal("unix socket pairs")
	}
}

// Attempts are counted when they start: 40 attempts reserved at the same instant (parallel
// guesses, none finished yet) get 5 free answers, then slots 0.1, 0.3, 0.7, 1.5 and 3.1 s ahead;
// the other 30 are refused at once with ErrRateLimited alone.
func TestRateLimitCountsAttemptsWhenTheyStart(t *testing.T) {
	rl, clk := newTestLimiter(RateLimitPolicy{})
	a := addr("192.0.2.1")
	var waits []time.Duration
	refused := 0
	for i := range 40 {
		w, _, err := rl.reserve(a, "alice", false)
		switch {
		case err == nil:
			waits = append(waits, w)
		case errors.Is(err, ErrRateLimited) && !errors.Is(err, ErrBadCredentials) && !errors.Is(err, ErrNotAuthorized):
			refused++
		default:
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	want := []time.Duration{0, 0, 0, 0, 0, 100 * ms, 300 * ms, 700 * ms, 1500 * ms, 3100 * ms}
	if fmt.Sprint(waits) != fmt.Sprint(want) || refused != 30 {
		t.Fatalf("waits %v, %d refused; want %v and 30", waits, refused, want)
	}
	// A refusal reserved nothing: once the queue has drained, the next attempt gets a slot.
	clk.Advance(3100 * ms)
	if w, _, err := rl.reserve(a, "alice", false); err != nil || w != 3200*ms {
		t.Fatalf("after the queue: %v %v", w, err)
	}
	// A fresh pair from the same address is free (the pair stopped feeding the source at 5).
	if w, _, err := rl.reserve(a, "bob", false); w != 0 || err != nil {
		t.Fatal(w, err)
	}
}

func TestRateLimitSuccessAndAbandon(t *testing.T) {
	rl, _ := newTestLimiter(RateLimitPolicy{})
	a := addr("192.0.2.1")
	for range 6 {
		rl.Failure(a, "alice")
	}
	_, at, err := rl.reserve(a, "alice", false)
	if err != nil {
		t.Fatal(err)
	}
	rl.finish(at, true, false)
	if d := rl.Delay(a, "alice"); d != 0 {
		t.Fatalf("a success did not forget the pair: %v", d)
	}
	if s, p := rl.Len(); s != 1 || p != 0 {
		t.Fatalf("Len %d %d", s, p)
	}
	// The source keeps the failures (5: a pair feeds its source up to Threshold), less the
	// successful attempt, which was not counted on it (the pair was at the threshold).
	if got := rl.sources.count(netip.MustParsePrefix("192.0.2.1/32"), rl.now(), time.Hour); got != 5 {
		t.Fatalf("source count %d, want 5", got)
	}
	// An abandoned attempt is taken back whole.
	_, at, _ = rl.reserve(a, "carol", false)
	rl.finish(at, false, true)
	if got := rl.sources.count(netip.MustParsePrefix("192.0.2.1/32"), rl.now(), time.Hour); got != 5 {
		t.Fatalf("source count after an abandoned attempt %d, want 5", got)
	}
	if _, p := rl.Len(); p != 0 {
		t.Fatal("an abandoned attempt left its pair")
	}
}

func TestRateLimitTablesAreBounded(t *testing.T) {
	rl, _ := newTestLimiter(RateLimitPolicy{MaxEntries: 3})
	for i := range 10 {
		rl.Failure(netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}), fmt.Sprintf("u%d", i))
	}
	if s, p := rl.Len(); s != 3 || p != 3 {
		t.Fatalf("Len = %d, %d", s, p)
	}
	// The least recently touched went first: u9 kept its failure, u0 lost it.
	for range 4 {
		rl.Failure(addr("10.0.0.9"), "u9")
		rl.Failure(addr("10.0.0.0"), "u0")
	}
	if rl.Delay(addr("10.0.0.9"), "u9") != 100*ms || rl.Delay(addr("10.0.0.0"), "u0") != 0 {
		t.Fatal("eviction did not drop the least recently touched entry")
	}
}

// sleepRecorder replaces the limiter's sleep: it records the delays and, while "sleeping",
// proves that no lock is held by using the limiter.
type sleepRecorder struct {
	mu     sync.Mutex
	delays []time.Duration
	rl     *RateLimiter
}

func (s *sleepRecorder) sleep(ctx context.Context, d time.Duration) error {
	done := make(chan struct{})
	go func() { s.rl.Delay(netip.Addr{}, "probe"); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		panic("the limiter's lock is held during the delay")
	}
	s.mu.Lock()
	s.delays = append(s.delays, d)
	s.mu.Unlock()
	return ctx.Err()
}

func TestChainRateLimitsFailedLogins(t *testing.T) {
	tl := newTestLocal(t, LocalOptions{})
	rl, clk := newTestLimiter(RateLimitPolicy{})
	rec := &sleepRecorder{rl: rl}
	rl.sleep = rec.sleep
	var notices []LimitNotice
	ch := NewChain(tl.Local).WithRateLimiter(rl).OnLimit(func(n LimitNotice) { notices = append(notices, n) })
	ctx := context.Background()
	c := func(pw string) *Credentials {
		return &Credentials{Username: "alice", Password: []byte(pw), Remote: addr("192.0.2.1"), Listener: "tcp"}
	}
	for i := range 5 {
		_, err := ch.Authenticate(ctx, c("hunter2-wrong"))
		if !errors.Is(err, ErrBadCredentials) || errors.Is(err, ErrRateLimited) {
			t.Fatalf("failure %d: %v", i, err)
		}
	}
	if len(rec.delays) != 0 {
		t.Fatalf("delayed too early: %v", rec.delays)
	}
	// The sixth attempt waits 100 ms, is still checked, and fails as a wrong password.
	_, err := ch.Authenticate(ctx, c("hunter2-wrong"))
	if !errors.Is(err, ErrBadCredentials) || errors.Is(err, ErrRateLimited) {
		t.Fatalf("sixth: %v", err)
	}
	assertNoSecret(t, err.Error(), "hunter2-wrong", "wonderland")
	clk.Advance(time.Second) // let the slot pass
	// The right password still logs in after the delay (200 ms: six attempts on record) and
	// makes the pair forget its attempts.
	if id, err := ch.Authenticate(ctx, c("wonderland")); err != nil || id.User != "alice" {
		t.Fatalf("right password while limited: %v", err)
	} else if id.Remote != addr("192.0.2.1") {
		t.Fatalf("identity's Remote %v", id.Remote)
	}
	if want := []time.Duration{100 * ms, 200 * ms}; fmt.Sprint(rec.delays) != fmt.Sprint(want) {
		t.Fatalf("delays %v, want %v", rec.delays, want)
	}
	if len(notices) != 2 || notices[0].Delay != 100*ms || notices[0].Refused || notices[0].User != "alice" ||
		notices[0].Remote != addr("192.0.2.1") || notices[0].Listener != "tcp" {
		t.Fatalf("notices %+v", notices)
	}
	if rl.Delay(addr("192.0.2.1"), "alice") != 0 {
		t.Fatal("success should forget the pair")
	}
}

// 40 guesses in parallel through the chain: 10 are checked, 30 refused with ErrRateLimited
// alone (never as a wrong password), and the provider is asked exactly 10 times.
func TestChainParallelGuesses(t *testing.T) {
	p := &stub{name: "p", d: Deny}
	rl, _ := newTestLimiter(RateLimitPolicy{})
	rl.sleep = func(ctx context.Context, _ time.Duration) error { return ctx.Err() }
	var mu sync.Mutex
	refusedNotices := 0
	ch := NewChain(p).WithRateLimiter(rl).OnLimit(func(n LimitNotice) {
		mu.Lock()
		if n.Refused {
			refusedNotices++
		}
		mu.Unlock()
	})
	var wg sync.WaitGroup
	var bad, limited, other sync.Map
	for i := range 40 {
		wg.Go(func() {
			// Each guess a different password: identical attempts in progress would be coalesced
			// into one (flight.go).
			_, err := ch.Authenticate(context.Background(), &Credentials{Username: "alice", Remote: addr("192.0.2.1"),
				Password: fmt.Appendf(nil, "guess-%d", i)})
			switch {
			case errors.Is(err, ErrRateLimited) && !errors.Is(err, ErrBadCredentials):
				limited.Store(i, true)
			case errors.Is(err, ErrBadCredentials) && !errors.Is(err, ErrRateLimited):
				bad.Store(i, true)
			default:
				other.Store(i, err)
			}
		})
	}
	wg.Wait()
	n := func(m *sync.Map) (k int) {
		m.Range(func(any, any) bool { k++; return true })
		return k
	}
	if n(&bad) != 10 || n(&limited) != 30 || n(&other) != 0 || p.calls.Load() != 10 || refusedNotices != 30 {
		t.Fatalf("%d checked, %d limited, %d other, %d provider calls, %d refusal notices", n(&bad), n(&limited), n(&other),
			p.calls.Load(), refusedNotices)
	}
}

func TestChainRateLimitDelayRespectsContext(t *testing.T) {
	p := &stub{name: "p", d: Deny}
	rl := NewRateLimiter(RateLimitPolicy{BaseDelay: time.Hour, MaxDelay: 2 * time.Hour}, nil)
	ch := NewChain(p).WithRateLimiter(rl)
	c := &Credentials{Username: "u", Remote: addr("192.0.2.1")}
	for range 5 {
		ch.Authenticate(context.Background(), c)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*ms)
	defer cancel()
	start := time.Now()
	_, err := ch.Authenticate(ctx, c) // asks for an hour's delay
	if !errors.Is(err, ErrRateLimited) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("the delay ignored the context (%v)", el)
	}
	if p.calls.Load() != 5 {
		t.Fatal("a provider was asked after the context ended")
	}
	// The abandoned attempt was taken back: the pair still has 5 on record.
	if got := rl.pairs.count(pairKey{"u", netip.MustParsePrefix("192.0.2.1/32")}, time.Now(), time.Hour); got != 5 {
		t.Fatalf("pair count %d after an abandoned attempt, want 5", got)
	}
}

// TestRateLimitBearerCountedOnFailure: 64 bearer-token attempts in flight at once from one
// address under one user name (a fleet of token devices behind a NAT) are neither delayed nor
// refused; their failures are counted as they fail, so a flood of bad tokens is slowed and then
// refused like password guesses, and a bearer attempt from a source already over its threshold
// waits like any other.
func TestRateLimitBearerCountedOnFailure(t *testing.T) {
	rl, _ := newTestLimiter(RateLimitPolicy{})
	a := addr("192.0.2.7")
	user := "Token|AK|instance"
	var inFlight []attempt
	for i := range 64 {
		w, at, err := rl.reserve(a, user, true)
		if err != nil || w != 0 {
			t.Fatalf("bearer attempt %d in parallel: wait %v, %v", i, w, err)
		}
		inFlight = append(inFlight, at)
	}
	for _, at := range inFlight {
		rl.finish(at, true, false)
	}
	if s, p := rl.Len(); s != 0 || p != 0 {
		t.Fatalf("successful bearer attempts left %d sources, %d pairs on record", s, p)
	}
	// Bad tokens: each failure is on record, and the sixth attempt is delayed.
	for range 5 {
		_, at, err := rl.reserve(a, user, true)
		if err != nil {
			t.Fatal(err)
		}
		rl.finish(at, false, false)
	}
	if w, _, err := rl.reserve(a, user, true); err != nil || w != 100*ms {
		t.Fatalf("after 5 bad tokens: wait %v, %v; want 100ms", w, err)
	}
	// An abandoned bearer attempt was never counted and takes nothing back.
	_, at, _ := rl.reserve(addr("192.0.2.8"), user, true)
	rl.finish(at, false, true)
	if got := rl.pairs.count(pairKey{user, netip.MustParsePrefix("192.0.2.8/32")}, rl.now(), time.Hour); got != 0 {
		t.Fatalf("abandoned bearer attempt counted %d", got)
	}
}

// bearerStub is a stub provider whose credentials are all bearer tokens.
type bearerStub struct{ stub }

func (*bearerStub) Bearer(*Credentials) bool { return true }

// TestChainBearerFleet: 40 distinct bearer tokens of one user name from one address, all in
// flight at once (held in the provider until all have started), are neither delayed nor
// refused; the same 40 as passwords would be (TestChainParallelGuesses: 30 refused).
func TestChainBearerFleet(t *testing.T) {
	p := &bearerStub{stub{name: "tokens", d: Allow, id: &Identity{User: "Token|AK|i"}, wait: make(chan struct{})}}
	rl, _ := newTestLimiter(RateLimitPolicy{})
	var delayed atomic.Int32
	rl.sleep = func(ctx context.Context, _ time.Duration) error { delayed.Add(1); return ctx.Err() }
	ch := NewChain(p).WithRateLimiter(rl)
	var wg sync.WaitGroup
	var failed atomic.Int32
	for i := range 40 {
		wg.Go(func() {
			_, err := ch.Authenticate(context.Background(), &Credentials{Username: "Token|AK|i", Remote: addr("192.0.2.1"),
				Password: fmt.Appendf(nil, "RW|token-%d", i)})
			if err != nil {
				failed.Add(1)
			}
		})
	}
	for p.calls.Load()+failed.Load() < 40 {
		time.Sleep(time.Millisecond)
	}
	close(p.wait)
	wg.Wait()
	if failed.Load() != 0 || delayed.Load() != 0 || p.calls.Load() != 40 {
		t.Fatalf("%d failed, %d delayed, %d checked; want 0, 0, 40", failed.Load(), delayed.Load(), p.calls.Load())
	}
}

// TestChainBearerShapeIsNoEscape: a credential a bearer provider takes for its own is asked of
// that provider only. A password provider that would accept the same credential (a local user
// named like a token's user name) is never asked, so parallel password guesses dressed as a
// bearer token are never checked uncounted.
func TestChainBearerShapeIsNoEscape(t *testing.T) {
	tokens := &bearerStub{stub{name: "tokens", d: Deny, err: ErrBadCredentials}}
	password := &stub{name: "local", d: Allow, id: &Identity{User: "Token|AK|i"}}
	ch := NewChain(password, tokens).WithRateLimiter(nil)
	_, err := ch.Authenticate(context.Background(), &Credentials{Username: "Token|AK|i", Password: []byte("guess")})
	if !errors.Is(err, ErrBadCredentials) || password.calls.Load() != 0 || tokens.calls.Load() != 1 {
		t.Fatalf("err %v; password provider asked %d times, bearer provider %d; want a refusal by the bearer provider alone",
			err, password.calls.Load(), tokens.calls.Load())
	}
}
