package auth

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
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
	// Delay after n failures: nothing up to 4, then 100 ms doubling, capped at 5 s.
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
	if n, _ := rl.Len(); n != 0 {
		t.Fatalf("a fully decayed entry is kept: %d", n)
	}
	// A failure after decay counts from zero.
	rl.Failure(a, "")
	if got := rl.Delay(a, ""); got != 0 {
		t.Fatal(got)
	}
}

func TestRateLimitKeysAreAddressAndUser(t *testing.T) {
	rl, _ := newTestLimiter(RateLimitPolicy{})
	attacker := addr("192.0.2.1")
	for i := range 5 {
		rl.Failure(attacker, fmt.Sprintf("user%d", i)) // five users, one failure each
	}
	if rl.Delay(attacker, "someone") != 100*ms {
		t.Fatal("the address is not limited")
	}
	if rl.Delay(addr("192.0.2.2"), "user0") != 0 {
		t.Fatal("another address limited for a user with one failure")
	}
	for i := range 5 {
		rl.Failure(netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}), "target") // five addresses
	}
	if rl.Delay(addr("203.0.113.5"), "target") != 100*ms {
		t.Fatal("the user name is not limited from a fresh address")
	}
	// IPv6 is keyed by /64; a mapped IPv4 address is the IPv4 address.
	for i := range 5 {
		rl.Failure(netip.MustParseAddr(fmt.Sprintf("2001:db8:1:2::%x", i+1)), "")
	}
	if rl.Delay(addr("2001:db8:1:2:ffff::9"), "") != 100*ms || rl.Delay(addr("2001:db8:1:3::1"), "") != 0 {
		t.Fatal("IPv6 not keyed by /64")
	}
	if rl.Delay(addr("::ffff:192.0.2.1"), "") != 100*ms {
		t.Fatal("mapped IPv4 not unmapped")
	}
	// A unix socket (no address) and an empty user name are not keys.
	for range 10 {
		rl.Failure(netip.Addr{}, "")
	}
	if a, u := rl.Len(); a != 7 || u != 6 {
		t.Fatalf("Len = %d, %d", a, u)
	}
}

func TestRateLimitSuccessClearsTheUserOnly(t *testing.T) {
	rl, _ := newTestLimiter(RateLimitPolicy{})
	a := addr("192.0.2.1")
	for range 6 {
		rl.Failure(a, "alice")
	}
	rl.Success("alice")
	if rl.Delay(netip.Addr{}, "alice") != 0 {
		t.Fatal("user not cleared")
	}
	if rl.Delay(a, "") != 200*ms {
		t.Fatal("address cleared by a success")
	}
}

// Parallel attempts on one key get slots d apart; one that would wait more than MaxDelay is
// refused at once.
func TestRateLimitSlotsSpaceParallelAttempts(t *testing.T) {
	rl, clk := newTestLimiter(RateLimitPolicy{BaseDelay: time.Second})
	a := addr("192.0.2.1")
	for range 5 {
		rl.Failure(a, "")
	}
	for i, want := range []time.Duration{1, 2, 3, 4, 5} {
		w, err := rl.reserve(a, "")
		if err != nil || w != want*time.Second {
			t.Fatalf("attempt %d: wait %v, %v; want %v", i, w, err, want*time.Second)
		}
	}
	_, err := rl.reserve(a, "")
	if !errors.Is(err, ErrRateLimited) || !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("sixth parallel attempt: %v", err)
	}
	// The refusal reserved nothing: once the queue has drained, slots start from now again.
	clk.Advance(5 * time.Second)
	if w, err := rl.reserve(a, ""); err != nil || w != time.Second {
		t.Fatalf("after the queue: %v %v", w, err)
	}
	// Unlimited keys reserve nothing.
	if w, err := rl.reserve(addr("192.0.2.99"), "bob"); w != 0 || err != nil {
		t.Fatal(w, err)
	}
}

func TestRateLimitTablesAreBounded(t *testing.T) {
	rl, _ := newTestLimiter(RateLimitPolicy{MaxEntries: 3})
	for i := range 10 {
		rl.Failure(netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}), fmt.Sprintf("u%d", i))
	}
	if a, u := rl.Len(); a != 3 || u != 3 {
		t.Fatalf("Len = %d, %d", a, u)
	}
	// The least recently touched went first: u9 kept its failure, u0 lost it.
	for range 4 {
		rl.Failure(netip.Addr{}, "u9")
		rl.Failure(netip.Addr{}, "u0")
	}
	if rl.Delay(netip.Addr{}, "u9") != 100*ms || rl.Delay(netip.Addr{}, "u0") != 0 {
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
	ch := NewChain(tl.Local).WithRateLimiter(rl)
	ctx := context.Background()
	c := func(pw string) *Credentials {
		return &Credentials{Username: "alice", Password: []byte(pw), Remote: addr("192.0.2.1")}
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
	// The sixth attempt waits 100 ms, is still checked, and its failure says it was limited.
	_, err := ch.Authenticate(ctx, c("hunter2-wrong"))
	if !errors.Is(err, ErrRateLimited) || !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("sixth: %v", err)
	}
	assertNoSecret(t, err.Error(), "hunter2-wrong", "wonderland")
	clk.Advance(time.Second) // let the slot pass
	// The right password still logs in after the delay (200 ms: six failures on record) and
	// clears the user's count.
	if id, err := ch.Authenticate(ctx, c("wonderland")); err != nil || id.User != "alice" {
		t.Fatalf("right password while limited: %v", err)
	}
	if want := []time.Duration{100 * ms, 200 * ms}; len(rec.delays) != 2 || rec.delays[0] != want[0] || rec.delays[1] != want[1] {
		t.Fatalf("delays %v, want %v", rec.delays, want)
	}
	if rl.Delay(netip.Addr{}, "alice") != 0 || rl.Delay(addr("192.0.2.1"), "") != 200*ms {
		t.Fatal("success should clear the user, not the address")
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
}
