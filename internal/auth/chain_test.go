package auth

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
)

// stub is a provider with a fixed answer that counts its calls.
type stub struct {
	name  string
	d     Decision
	id    *Identity
	err   error
	calls atomic.Int32
	wait  chan struct{} // non-nil: answers only once it is closed
}

func (s *stub) Name() string { return s.name }
func (s *stub) Authenticate(context.Context, *Credentials) (Decision, *Identity, error) {
	s.calls.Add(1)
	if s.wait != nil {
		<-s.wait
	}
	if s.id == nil {
		return s.d, nil, s.err
	}
	return s.d, s.id.clone(), s.err // a new identity for each call, as Provider requires
}

var _ Provider = (*stub)(nil)

func noLimit(ps ...Provider) *Chain { return NewChain(ps...).WithRateLimiter(nil) }

func TestChainFirstAllowWins(t *testing.T) {
	a := &stub{name: "a", d: Abstain}
	b := &stub{name: "b", d: Allow, id: &Identity{User: "bob", Tags: []Tag{TagManagement}}}
	c := &stub{name: "c", d: Allow, id: &Identity{User: "carol"}}
	ch := noLimit(a, b, c)
	if got := ch.Providers(); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("Providers = %v", got)
	}
	id, err := ch.Authenticate(context.Background(), &Credentials{Username: "x", Vhost: "prod", Listener: "unix"})
	if err != nil || id.User != "bob" {
		t.Fatalf("got %+v %v", id, err)
	}
	if a.calls.Load() != 1 || b.calls.Load() != 1 || c.calls.Load() != 0 {
		t.Fatalf("calls %d %d %d", a.calls.Load(), b.calls.Load(), c.calls.Load())
	}
	// The identity is a snapshot: vhost and method filled in, loopback from the credentials, and
	// the provider's later changes do not reach it.
	if id.Vhost != "prod" || id.Method != "b" || !id.Loopback {
		t.Fatalf("snapshot %+v", id)
	}
	b.id.Tags[0] = TagAdministrator
	b.id.User = "eve"
	if id.User != "bob" || id.Tags[0] != TagManagement {
		t.Fatal("identity shares memory with the provider's")
	}
}

func TestChainDenyStops(t *testing.T) {
	later := &stub{name: "later", d: Allow, id: &Identity{User: "x"}}
	tests := []struct {
		name     string
		p        *stub
		kind     error
		inReason string
	}{
		{"bare deny", &stub{name: "p", d: Deny}, ErrBadCredentials, "p: denied"},
		{"denial bad credentials", &stub{name: "p", d: Deny, err: &Denial{Provider: "p", Reason: "wrong password", Err: ErrBadCredentials}}, ErrBadCredentials, "wrong password"},
		{"denial not authorized", &stub{name: "p", d: Deny, err: &Denial{Provider: "p", Reason: "no vhost access", Err: ErrNotAuthorized}}, ErrNotAuthorized, "no vhost access"},
		{"provider failure", &stub{name: "p", d: Deny, err: errors.New("store unreachable")}, ErrBadCredentials, "provider p failed: store unreachable"},
		{"error with allow", &stub{name: "p", d: Allow, id: &Identity{User: "x"}, err: errors.New("half-broken")}, ErrBadCredentials, "half-broken"},
		{"allow without identity", &stub{name: "p", d: Allow}, ErrBadCredentials, "without an identity"},
		{"unknown decision", &stub{name: "p", d: Decision(9)}, ErrBadCredentials, "unknown decision 9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			later.calls.Store(0)
			id, err := noLimit(&stub{name: "first", d: Abstain}, tt.p, later).Authenticate(context.Background(), &Credentials{Username: "u"})
			if id != nil || !errors.Is(err, tt.kind) || !strings.Contains(err.Error(), tt.inReason) {
				t.Fatalf("got %v %v; want %v containing %q", id, err, tt.kind, tt.inReason)
			}
			if later.calls.Load() != 0 {
				t.Fatal("the chain went on after a deny")
			}
		})
	}
}

func TestChainAllAbstainIsBadCredentials(t *testing.T) {
	for _, ch := range []*Chain{noLimit(), noLimit(&stub{name: "a"}, &stub{name: "b"})} {
		_, err := ch.Authenticate(context.Background(), &Credentials{Username: "u"})
		var d *Denial
		if !errors.Is(err, ErrBadCredentials) || !errors.As(err, &d) || d.Provider != "chain" {
			t.Fatalf("err = %v", err)
		}
	}
}

func TestChainStopsWhenContextIsDone(t *testing.T) {
	p := &stub{name: "p", d: Allow, id: &Identity{User: "u"}}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ch := NewChain(p)
	if _, err := ch.Authenticate(ctx, &Credentials{Username: "u", Remote: addr("192.0.2.1")}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	if p.calls.Load() != 0 {
		t.Fatal("asked a provider after cancellation")
	}
	if a, u := ch.RateLimiter().Len(); a != 0 || u != 0 {
		t.Fatal("a client that went away was counted as a failure")
	}
}

// The real providers together, in the order a configuration with certificate login, local users
// and anonymous access would give.
func TestChainOfRealProviders(t *testing.T) {
	tl := newTestLocal(t, LocalOptions{DefaultUserOnlyLoopback: "guest"})
	ch := noLimit(
		&Cert{Users: tl.users, DefaultUserOnlyLoopback: "guest"},
		tl.Local,
		&Anonymous{User: "alice", Users: tl.users, DefaultUserOnlyLoopback: "guest"},
	)
	ctx := context.Background()
	remote := addr("198.51.100.4")
	tests := []struct {
		name       string
		c          Credentials
		user, meth string
		err        error
	}{
		{"password", Credentials{Username: "alice", Password: []byte("wonderland"), Remote: remote}, "alice", "local", nil},
		{"wrong password", Credentials{Username: "alice", Password: []byte("x"), Remote: remote}, "", "", ErrBadCredentials},
		{"certificate", Credentials{PeerCN: "alice", Remote: remote}, "alice", "cert", nil},
		{"certificate, unknown CN, then password", Credentials{PeerCN: "nobody", Username: "alice", Password: []byte("wonderland"), Remote: remote}, "alice", "local", nil},
		{"anonymous", Credentials{Remote: remote}, "alice", "anonymous", nil},
		{"user name without password", Credentials{Username: "alice", Remote: remote}, "", "", ErrBadCredentials},
		{"default user from afar", Credentials{Username: "guest", Password: []byte("guest"), Remote: remote}, "", "", ErrNotAuthorized},
		{"default user from loopback", Credentials{Username: "guest", Password: []byte("guest"), Remote: addr("::1")}, "guest", "local", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := ch.Authenticate(ctx, &tt.c)
			if tt.err != nil {
				if !errors.Is(err, tt.err) || id != nil {
					t.Fatalf("got %+v %v, want %v", id, err, tt.err)
				}
				assertNoSecret(t, err.Error(), string(tt.c.Password))
				return
			}
			if err != nil || id.User != tt.user || id.Method != tt.meth {
				t.Fatalf("got %+v %v, want %s by %s", id, err, tt.user, tt.meth)
			}
		})
	}
}

// TestProvidersReturnTheirOwnIdentity: the chain completes an allowed identity in place (remote
// address, client id), so a provider that handed two logins one Identity, or one sharing its
// Tags with the user record, would let one connection's address and client id overwrite
// another's, against which bans and wills are judged. Two logins of one user through each
// provider of this package, from two addresses, keep their own identities.
func TestProvidersReturnTheirOwnIdentity(t *testing.T) {
	tl := newTestLocal(t, LocalOptions{Key: RandomPasswordKey()})
	anon := &Anonymous{User: "guest", Users: tl.users}
	cert := &Cert{Users: tl.users}
	for _, tc := range []struct {
		p          Provider
		user, pass string
		cn         string
	}{
		{tl.Local, "alice", "wonderland", ""},
		{anon, "", "", ""},
		{cert, "", "", "alice"},
	} {
		ch := noLimit(tc.p)
		login := func(remote, clientID string) *Identity {
			c := &Credentials{Username: tc.user, Vhost: "/", Remote: addr(remote), Listener: "tcp", ClientID: clientID, PeerCN: tc.cn}
			if tc.pass != "" {
				c.Password = []byte(tc.pass)
			}
			id, err := ch.Authenticate(context.Background(), c)
			if err != nil {
				t.Fatalf("%s: %v", tc.p.Name(), err)
			}
			return id
		}
		a := login("192.0.2.1", "dev-a")
		b := login("198.51.100.2", "dev-b")
		switch {
		case a == b:
			t.Fatalf("%s: two logins got one Identity", tc.p.Name())
		case a.Remote != addr("192.0.2.1") || a.ClientID != "dev-a":
			t.Fatalf("%s: the second login rewrote the first one's identity: %v %q", tc.p.Name(), a.Remote, a.ClientID)
		case len(a.Tags) == 0 || &a.Tags[0] == &b.Tags[0]:
			t.Fatalf("%s: the two identities share their tags (%v)", tc.p.Name(), a.Tags)
		}
		a.Tags[0] = "tampered"
		if u, _ := tl.users.Get(b.User); b.Tags[0] == "tampered" || u.Tags[0] == "tampered" {
			t.Fatalf("%s: an identity's tags are the user record's", tc.p.Name())
		}
	}
}
