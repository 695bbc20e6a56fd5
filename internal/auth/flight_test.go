package auth

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

// gate is a provider that allows one password, counts its calls and holds every call until
// released, so that attempts are in progress at the same time.
type gate struct {
	calls   atomic.Int32
	started chan struct{}
	release chan struct{}
}

func (g *gate) Name() string { return "gate" }
func (g *gate) Authenticate(ctx context.Context, c *Credentials) (Decision, *Identity, error) {
	g.calls.Add(1)
	select {
	case g.started <- struct{}{}:
	default:
	}
	<-g.release
	if string(c.Password) != "right" {
		return deny("gate", "wrong password", ErrBadCredentials)
	}
	return Allow, &Identity{User: c.Username, Subject: "id-" + c.Username, Issuer: IssuerLocal}, nil
}

// Many identical logins in progress at once (a connection pool behind one address) are checked
// and counted once: none is refused by the rate limiter, each gets its own client id and address.
// Different passwords (guesses) are not coalesced: the limiter still sees each.
func TestChainCoalescesIdenticalAttempts(t *testing.T) {
	g := &gate{started: make(chan struct{}, 1), release: make(chan struct{})}
	ch := NewChain(g) // the default rate limiter: 5 attempts of a pair before a delay
	const n = 40
	var wg sync.WaitGroup
	ids := make([]*Identity, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ids[i], errs[i] = ch.Authenticate(context.Background(), &Credentials{Username: "pool", Password: []byte("right"),
				Vhost: "/", Listener: "tcp", Remote: addr("10.0.0.7"), ClientID: fmt.Sprintf("c%d", i)})
		}()
	}
	<-g.started
	for ch.flights.waiting.Load() < n-1 {
		runtime.Gosched()
	}
	close(g.release)
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("login %d: %v", i, errs[i])
		}
		if ids[i].ClientID != fmt.Sprintf("c%d", i) || ids[i].User != "pool" {
			t.Fatalf("login %d: identity %+v", i, ids[i])
		}
	}
	if c, shared := g.calls.Load(), ch.Coalesced(); c != 1 || shared != n-1 {
		t.Fatalf("the provider checked %d times and %d logins were coalesced, want 1 and %d", c, shared, n-1)
	}

	// Guesses: distinct passwords in parallel, each counted: the limiter refuses some unchecked.
	g2 := &gate{started: make(chan struct{}, 1), release: make(chan struct{})}
	close(g2.release)
	ch2 := NewChain(g2)
	refused := 0
	var mu sync.Mutex
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := ch2.Authenticate(context.Background(), &Credentials{Username: "pool", Password: []byte(fmt.Sprintf("guess-%d", i)),
				Vhost: "/", Listener: "tcp", Remote: addr("10.0.0.8"), ClientID: "x"})
			if errors.Is(err, ErrRateLimited) {
				mu.Lock()
				refused++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if refused == 0 || int(g2.calls.Load())+refused != n {
		t.Fatalf("40 parallel guesses: %d checked, %d refused by the limiter; want some refused", g2.calls.Load(), refused)
	}
}

// The coalescing key covers everything a decision depends on and nothing the caller owns: it
// changes with each field, stays with the client id and another address of the same source
// (a /32 for IPv4, a /64 for IPv6), keeps fields apart (no "ab"+"c" = "a"+"bc"), and costs no
// allocation.
func TestFlightKeyFields(t *testing.T) {
	f := newFlights()
	base := Credentials{Username: "u", Password: []byte("pw"), Vhost: "/", Listener: "tcp", Remote: addr("10.0.0.1"),
		ClientID: "c1", PeerCN: "cn", AuthMethod: "m", AuthData: []byte("d")}
	k := f.keyOf(&base)
	same := []func(c *Credentials){
		func(c *Credentials) { c.ClientID = "c2" },
		func(c *Credentials) { c.Remote = addr("::ffff:10.0.0.1") },
	}
	for i, mod := range same {
		c := base
		mod(&c)
		if f.keyOf(&c) != k {
			t.Errorf("same %d: the key changed", i)
		}
	}
	v6 := base
	v6.Remote = addr("2001:db8::1")
	v6b := v6
	v6b.Remote = addr("2001:db8::2")
	if f.keyOf(&v6) != f.keyOf(&v6b) {
		t.Error("two addresses of one IPv6 /64: different keys")
	}
	other := []func(c *Credentials){
		func(c *Credentials) { c.Username = "v" },
		func(c *Credentials) { c.Password = []byte("pW") },
		func(c *Credentials) { c.Vhost = "t" },
		func(c *Credentials) { c.Listener = "ws" },
		func(c *Credentials) { c.PeerCN = "" },
		func(c *Credentials) { c.AuthMethod = "" },
		func(c *Credentials) { c.AuthData = nil },
		func(c *Credentials) { c.FromBrowser = true },
		func(c *Credentials) { c.Remote = addr("10.0.0.2") },
		func(c *Credentials) { c.Remote = addr("127.0.0.1") },
		func(c *Credentials) { c.Username, c.Vhost = "u/", "" }, // the boundary between two fields moved
		func(c *Credentials) { c.Username, c.Password = "upw", nil },
	}
	seen := map[[32]byte]int{k: -1}
	for i, mod := range other {
		c := base
		mod(&c)
		kk := f.keyOf(&c)
		if j, dup := seen[kk]; dup {
			t.Errorf("change %d gives the key of %d", i, j)
		}
		seen[kk] = i
	}
	if n := testing.AllocsPerRun(100, func() { f.keyOf(&base) }); n != 0 && !raceEnabled {
		t.Errorf("keyOf allocates %v times", n)
	}
}
