package auth

import (
	"context"
	"testing"
)

func TestAnonymous(t *testing.T) {
	users := NewUsers()
	users.Put(User{Name: "anon", Tags: []Tag{TagMonitoring}})
	users.Put(User{Name: "guest", Tags: []Tag{TagAdministrator}})
	ctx := context.Background()
	remote := addr("203.0.113.9")

	a := &Anonymous{User: "anon"}
	d, id, err := a.Authenticate(ctx, &Credentials{Vhost: "v", Remote: remote})
	if d != Allow || err != nil || id.User != "anon" || id.Method != "anonymous" || id.Vhost != "v" || id.Tags != nil {
		t.Fatalf("got %v %+v %v", d, id, err)
	}
	if d, _, _ := a.Authenticate(ctx, &Credentials{Username: "someone", Remote: remote}); d != Abstain {
		t.Fatalf("with a user name: %v", d)
	}

	// With the registry: the user must exist, and lends its tags.
	a = &Anonymous{User: "anon", Users: users}
	if _, id, _ := a.Authenticate(ctx, &Credentials{Remote: remote}); !id.HasTag(TagMonitoring) {
		t.Fatalf("tags %v", id.Tags)
	}
	users.Delete("anon")
	d, _, err = a.Authenticate(ctx, &Credentials{Remote: remote})
	if d != Deny {
		t.Fatal(d)
	}
	wantDenial(t, err, ErrBadCredentials, "does not exist")

	d, _, err = (&Anonymous{}).Authenticate(ctx, &Credentials{Remote: remote})
	if d != Deny {
		t.Fatal(d)
	}
	wantDenial(t, err, ErrBadCredentials, "no anonymous user")

	// Anonymous as the loopback-only default user does not get around the restriction.
	a = &Anonymous{User: "guest", Users: users, DefaultUserOnlyLoopback: "guest"}
	d, _, err = a.Authenticate(ctx, &Credentials{Remote: addr("10.0.0.1")})
	if d != Deny {
		t.Fatal(d)
	}
	wantDenial(t, err, ErrNotAuthorized, "loopback")
	if d, _, _ := a.Authenticate(ctx, &Credentials{Remote: addr("127.0.0.1")}); d != Allow {
		t.Fatal("guest refused on loopback")
	}
}

func TestCert(t *testing.T) {
	users := NewUsers()
	users.Put(User{Name: "device-17", Tags: []Tag{TagManagement}}) // no password: certificate only
	users.Put(User{Name: "guest"})
	p := &Cert{Users: users, DefaultUserOnlyLoopback: "guest"}
	ctx := context.Background()
	remote := addr("203.0.113.9")

	for _, c := range []*Credentials{
		{PeerCN: "device-17", Remote: remote, Vhost: "iot", Listener: "tls"},
		{PeerCN: "device-17", Username: "device-17", Password: []byte("ignored"), Remote: remote, Vhost: "iot", Listener: "tls"},
	} {
		d, id, err := p.Authenticate(ctx, c)
		if d != Allow || err != nil || id.User != "device-17" || id.Method != "cert" || id.Vhost != "iot" || !id.HasTag(TagManagement) {
			t.Fatalf("got %v %+v %v", d, id, err)
		}
	}
	for name, c := range map[string]*Credentials{
		"no certificate":       {Username: "device-17", Password: []byte("pw"), Remote: remote},
		"unknown CN":           {PeerCN: "device-99", Remote: remote},
		"another user's login": {PeerCN: "device-17", Username: "alice", Password: []byte("pw"), Remote: remote},
	} {
		if d, id, err := p.Authenticate(ctx, c); d != Abstain || id != nil || err != nil {
			t.Errorf("%s: got %v %v %v, want Abstain", name, d, id, err)
		}
	}
	d, _, err := p.Authenticate(ctx, &Credentials{PeerCN: "guest", Remote: remote, Listener: "tls"})
	if d != Deny {
		t.Fatal(d)
	}
	wantDenial(t, err, ErrNotAuthorized, "loopback")
	if d, _, _ := p.Authenticate(ctx, &Credentials{PeerCN: "guest", Remote: addr("127.0.0.1"), Listener: "tls"}); d != Allow {
		t.Fatal("guest certificate refused on loopback")
	}
}
