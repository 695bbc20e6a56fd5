package broker

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/turnstilemq/turnstile/internal/auth"
)

// BenchmarkReadGate measures the per-delivery read check of a gated subscription in steady
// state (the answer for the topic remembered): what issue 11's check adds to each delivery.
func BenchmarkReadGate(b *testing.B) {
	srv := newFanoutServer(b, true)
	s := newSession(srv.Vhost(DefaultVhost), "bench")
	s.idNow.Store(&auth.Identity{User: "test"})
	for _, topics := range []int{1, 4} {
		names := []string{"bench/a/x", "bench/b/x", "bench/c/x", "bench/d/x"}[:topics]
		b.Run(map[int]string{1: "one-topic", 4: "four-topics"}[topics], func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if !s.gate.allow(names[i%topics]) {
					b.Fatal("refused")
				}
				i++
			}
		})
	}
}

// flipPolicy is an authorizer whose read permission of every topic is switched by deny, each
// switch a new policy generation.
type flipPolicy struct {
	gateAll
	deny atomic.Bool
	gen  atomic.Uint64
}

func (p *flipPolicy) Generation() uint64 { return p.gen.Load() }
func (p *flipPolicy) CanReceive(*auth.Identity, string, string) error {
	if p.deny.Load() {
		return errors.New("denied")
	}
	return nil
}

// TestReadGateNeverStale proves that the gate's remembered answers, the lock-free last one
// included, never outlive a policy change or an identity change: after each change the very
// next delivery is judged by the new policy (issue 11: read permission holds for every message).
// Publishers on other goroutines use the gate meanwhile (run with -race).
func TestReadGateNeverStale(t *testing.T) {
	pol := &flipPolicy{}
	o := testOptions(t, "")
	o.Authorizer = pol
	srv := newTestServerWith(t, o)
	s := newSession(srv.Vhost(DefaultVhost), "gate")
	s.idNow.Store(&auth.Identity{User: "a"})

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Add(1)
		go func() { // concurrent deliveries on their own topics and a shared one
			defer wg.Done()
			for j := 0; ; j++ {
				select {
				case <-stop:
					return
				default:
				}
				s.gate.allow(fmt.Sprintf("t/%d", (i+j)%3))
				s.gate.allow("t/shared")
			}
		}()
	}
	for round := range 2000 {
		deny := round%2 == 1
		pol.deny.Store(deny)
		pol.gen.Add(1)
		for range 3 { // the locked path, then the lock-free one
			if got := s.gate.allow("t/shared"); got == deny {
				t.Fatalf("round %d: allow = %v after the policy changed to deny=%v", round, got, deny)
			}
		}
		if round%100 == 0 { // a re-authentication: a new identity, same policy
			s.idNow.Store(&auth.Identity{User: "a"})
			if got := s.gate.allow("t/shared"); got == deny {
				t.Fatalf("round %d: allow = %v after a new identity, deny=%v", round, got, deny)
			}
		}
	}
	close(stop)
	wg.Wait()
	s.idNow.Store(nil)
	if s.gate.allow("t/shared") {
		t.Fatal("a session without an identity was let read")
	}
}
