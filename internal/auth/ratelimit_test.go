package auth

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const ms = time.Millisecond

// distinct returns a credential fingerprint no other call returns: a new guess.
func distinct() (fp [32]byte) {
	rand.Read(fp[:])
	return fp
}

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
		w, _, err := rl.reserve(a, "alice", distinct())
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
	if w, _, err := rl.reserve(a, "alice", distinct()); err != nil || w != 3200*ms {
		t.Fatalf("after the queue: %v %v", w, err)
	}
	// A fresh pair from the same address is free (the pair stopped feeding the source at 5).
	if w, _, err := rl.reserve(a, "bob", distinct()); w != 0 || err != nil {
		t.Fatal(w, err)
	}
}

func TestRateLimitSuccessAndAbandon(t *testing.T) {
	rl, _ := newTestLimiter(RateLimitPolicy{})
	a := addr("192.0.2.1")
	for range 6 {
		rl.Failure(a, "alice")
	}
	_, at, err := rl.reserve(a, "alice", distinct())
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
	_, at, _ = rl.reserve(a, "carol", distinct())
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

// 40 distinct guesses in parallel through the chain: 10 are checked, 30 refused with ErrRateLimited
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
			_, err := ch.Authenticate(context.Background(), &Credentials{Username: "alice", Password: []byte(fmt.Sprint("guess-", i)), Remote: addr("192.0.2.1")})
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

// A reconnect storm of one user from one address (the same credential, in parallel) is one
// guess: counted once, never delayed or refused; the same storm of distinct passwords is
// limited as guessing is (TestChainParallelGuesses). Issue 12: 64 devices logging in as one user
// from a NAT address were answered 0x9F.
func TestChainIdenticalAttemptsAreOneGuess(t *testing.T) {
	for _, tt := range []struct {
		name string
		d    Decision
	}{{"correct", Allow}, {"wrong", Deny}} {
		t.Run(tt.name, func(t *testing.T) {
			release := make(chan struct{})
			p := &stub{name: "p", d: tt.d, id: &Identity{User: "alice"}, wait: release}
			rl, _ := newTestLimiter(RateLimitPolicy{})
			var delays, refusals atomic.Int64
			ch := NewChain(p).WithRateLimiter(rl).OnLimit(func(n LimitNotice) {
				if n.Refused {
					refusals.Add(1)
				} else {
					delays.Add(1)
				}
			})
			var wg sync.WaitGroup
			var allowed, denied atomic.Int64
			for range 64 {
				wg.Go(func() {
					_, err := ch.Authenticate(context.Background(), &Credentials{Username: "alice", Password: []byte("pw"), Remote: addr("192.0.2.1")})
					switch {
					case err == nil:
						allowed.Add(1)
					case errors.Is(err, ErrBadCredentials) && !errors.Is(err, ErrRateLimited):
						denied.Add(1)
					}
				})
			}
			for p.calls.Load() < 64 { // all 64 in flight at once, inside the provider
				time.Sleep(time.Millisecond)
			}
			if got := rl.pairs.count(pairKey{"alice", netip.MustParsePrefix("192.0.2.1/32")}, rl.now(), time.Hour); got != 1 {
				t.Fatalf("64 identical attempts in flight count %d, want 1", got)
			}
			close(release)
			wg.Wait()
			if delays.Load() != 0 || refusals.Load() != 0 {
				t.Fatalf("%d delays, %d refusals; want none", delays.Load(), refusals.Load())
			}
			if tt.d == Allow && allowed.Load() != 64 || tt.d == Deny && denied.Load() != 64 {
				t.Fatalf("%d allowed, %d denied", allowed.Load(), denied.Load())
			}
			want := 0
			if tt.d == Deny {
				want = 1 // one wrong guess on record, not 64
			}
			if got := rl.Delay(addr("192.0.2.1"), "alice"); got != 0 || len(rl.guesses) != 0 {
				t.Fatalf("delay %v, %d guesses left in flight", got, len(rl.guesses))
			}
			if got := rl.pairs.count(pairKey{"alice", netip.MustParsePrefix("192.0.2.1/32")}, rl.now(), time.Hour); got != want {
				t.Fatalf("pair count %d after the storm, want %d", got, want)
			}
		})
	}
}

// An identical attempt waits for the first one's slot: repeating a delayed guess in parallel
// does not get it answered sooner. And abandoning the attempt that counted a guess while an
// identical one is still in flight keeps the count: a guess is never checked uncounted.
func TestRateLimitIdenticalAttemptWaitsAndKeepsTheCount(t *testing.T) {
	rl, clk := newTestLimiter(RateLimitPolicy{})
	a := addr("192.0.2.1")
	for range 5 {
		rl.Failure(a, "alice")
	}
	g := distinct()
	w1, first, err := rl.reserve(a, "alice", g)
	if err != nil || w1 != 100*ms {
		t.Fatalf("first: %v %v", w1, err)
	}
	clk.Advance(40 * ms)
	w2, second, err := rl.reserve(a, "alice", g)
	if err != nil || w2 != 60*ms {
		t.Fatalf("identical attempt 40 ms later waits %v (%v), want the 60 ms left of the first's slot", w2, err)
	}
	pair := pairKey{"alice", netip.MustParsePrefix("192.0.2.1/32")}
	if got := rl.pairs.count(pair, rl.now(), time.Hour); got != 6 {
		t.Fatalf("count %d, want 6: the identical attempt is not counted", got)
	}
	rl.finish(first, false, true) // the first client went away while delayed
	if got := rl.pairs.count(pair, rl.now(), time.Hour); got != 6 {
		t.Fatalf("count %d after the counting attempt was abandoned, want 6: the identical one will be checked", got)
	}
	rl.finish(second, false, false)
	if got := rl.pairs.count(pair, rl.now(), time.Hour); got != 6 {
		t.Fatalf("count %d after the guess failed, want 6", got)
	}
	// Abandoned with nothing left in flight: taken back whole.
	_, at, _ := rl.reserve(a, "alice", distinct())
	rl.finish(at, false, true)
	if got := rl.pairs.count(pair, rl.now(), time.Hour); got != 6 {
		t.Fatalf("count %d after a lone abandoned attempt, want 6", got)
	}
}
