package tokens

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/turnstilemq/turnstile/internal/acl"
	"github.com/turnstilemq/turnstile/internal/auth"
	"github.com/turnstilemq/turnstile/pkg/tokensign"
)

func TestParsePassword(t *testing.T) {
	for _, c := range []struct {
		pw    string
		types []string
		bad   bool
	}{
		{pw: "R|t1", types: []string{"R"}},
		{pw: "W|t1", types: []string{"W"}},
		{pw: "RW|t1", types: []string{"RW"}},
		{pw: "R|t1|W|t2", types: []string{"R", "W"}},
		{pw: "W|t2|R|t1", types: []string{"W", "R"}},
		{pw: "R|t1|W|t2|RW|t3", types: []string{"R", "W", "RW"}},
		{pw: "R|t1|", types: []string{"R"}}, // Alibaba's sample trims it, others may not
		{pw: "R|t1|W|t2|", types: []string{"R", "W"}},
		{pw: "", bad: true},
		{pw: "|", bad: true},
		{pw: "R", bad: true},
		{pw: "R|", bad: true},
		{pw: "R||", bad: true},
		{pw: "R|t1||", bad: true},
		{pw: "|R|t1", bad: true},
		{pw: "R|t1|R|t2", bad: true},
		{pw: "X|t1", bad: true},
		{pw: "r|t1", bad: true},
		{pw: "R,W|t1", bad: true},
		{pw: "R|t1|W", bad: true},
		{pw: "R|t1|W|t2|RW|t3|R|t4", bad: true},
		{pw: "R|t1|W||", bad: true},
	} {
		pairs, why := parsePassword(c.pw)
		if c.bad != (why != "") {
			t.Errorf("%q: why %q, bad=%v", c.pw, why, c.bad)
			continue
		}
		var got []string
		for _, p := range pairs {
			got = append(got, p.typ)
			if p.tok == "" {
				t.Errorf("%q: empty token", c.pw)
			}
		}
		if !c.bad && !slices.Equal(got, c.types) {
			t.Errorf("%q: types %v, want %v", c.pw, got, c.types)
		}
	}
}

// The provider never panics, and denies or abstains on anything that is not a valid login.
func FuzzProviderCredentials(f *testing.F) {
	e := newEnv(f)
	tok := e.apply(f, TypeR, time.Hour, "a").Token
	for _, s := range [][2]string{
		{"Token|" + e.akid + "|mqtt-1", "R|" + tok}, {"Token|" + e.akid + "|mqtt-1", "R|" + tok + "|"},
		{"Signature|" + e.akid + "|mqtt-1", "x"}, {"Token||", ""}, {"Token|", "R|"}, {"Token", "|"},
		{"Token|a|b|c", "R|a|W|b|"}, {"|||", "|||"}, {"Token|" + e.akid + "|mqtt-1", "RW|x.y.z"},
	} {
		f.Add(s[0], s[1])
	}
	p := e.s.Provider()
	f.Fuzz(func(t *testing.T, user, pw string) {
		d, id, err := p.Authenticate(context.Background(), &auth.Credentials{Username: user, Password: []byte(pw), ClientID: "c"})
		switch d {
		case auth.Abstain:
			if id != nil || err != nil || strings.HasPrefix(user, "Token|") || strings.HasPrefix(user, "Signature|") {
				t.Fatalf("abstained on %q with %v %v", user, id, err)
			}
		case auth.Deny:
			if !errors.Is(err, auth.ErrBadCredentials) || (len(pw) > 20 && strings.Contains(err.Error(), pw)) {
				t.Fatalf("deny error %v", err)
			}
		case auth.Allow:
			if id == nil || id.User != "alice" || !strings.Contains(pw, tok) {
				t.Fatalf("allowed %q/%q as %+v", user, pw, id)
			}
		}
	})
}

func connect(p *Provider, user, pw, clientID string) (auth.Decision, *auth.Identity, error) {
	return p.Authenticate(context.Background(), &auth.Credentials{Username: user, Password: []byte(pw), ClientID: clientID, Vhost: "/"})
}

func TestProviderTokenMode(t *testing.T) {
	e := newEnv(t)
	p := e.s.Provider()
	user := "Token|" + e.akid + "|mqtt-1"
	r := e.apply(t, TypeR, 2*time.Hour, "s/+/c", "s/#")
	w := e.apply(t, TypeW, time.Hour, "p/1")
	rw := e.apply(t, TypeRW, 3*time.Hour, "x")

	d, id, err := connect(p, user, "W|"+w.Token+"|R|"+r.Token+"|", "GID_Test@@@0001")
	if d != auth.Allow || err != nil {
		t.Fatalf("R+W login: %v %v", d, err)
	}
	if id.User != "alice" || id.Subject != "u1" || id.Issuer != auth.IssuerLocal || id.Vhost != "mqtt-1" ||
		id.Method != "token" || id.GrantsSource != auth.GrantsToken || !id.Expiry.Equal(w.Expiry) || id.Generation != 0 {
		t.Fatalf("identity %+v", id)
	}
	want := []auth.Grant{{Action: "read", Pattern: "s/#"}, {Action: "read", Pattern: "s/+/c"}, {Action: "write", Pattern: "p/1"}}
	if !slices.Equal(id.Grants, want) {
		t.Fatalf("grants %v, want %v", id.Grants, want)
	}
	if len(id.Creds) != 2 || id.Creds[0].Type != "R" || id.Creds[1].Type != "W" {
		t.Fatalf("creds %+v", id.Creds)
	}
	c := id.Creds[0]
	if c.Kind != "token" || c.ID != r.JTI || c.KeyID != r.KID || c.Subject != e.akid || !c.Expiry.Equal(r.Expiry) ||
		c.Hash != HashToken(r.Token) || !slices.Equal(c.Resources, []string{"s/#", "s/+/c"}) {
		t.Fatalf("cred %+v", c)
	}
	if !id.HasCredentialID(w.JTI) || !id.HasKeyID(w.KID) {
		t.Fatal("identity does not name its tokens")
	}

	d, id, _ = connect(p, user, "RW|"+rw.Token, "c")
	if d != auth.Allow || !slices.Equal(id.Grants, []auth.Grant{{Action: "read", Pattern: "x"}, {Action: "write", Pattern: "x"}}) {
		t.Fatalf("RW login: %v %+v", d, id)
	}
	d, id, _ = connect(p, user, "R|"+r.Token+"|W|"+w.Token+"|RW|"+rw.Token, "c")
	if d != auth.Allow || len(id.Creds) != 3 || !id.Expiry.Equal(w.Expiry) {
		t.Fatalf("three tokens: %v %+v", d, id)
	}

	other, _, _ := e.s.CreateAccessKey("alice", "mqtt-1")
	e.owners.add("alice", "u1", "mqtt-1", "mqtt-2")
	e.s.RotateKey()
	revoked := e.apply(t, TypeR, time.Hour, "a")
	e.s.RevokeToken(e.akid, "mqtt-1", revoked.Token)
	short := e.apply(t, TypeR, time.Minute, "a")
	for name, cr := range map[string][2]string{
		"type mismatch":       {user, "W|" + r.Token},
		"RW token as R":       {user, "R|" + rw.Token},
		"one bad of two":      {user, "R|" + r.Token + "|W|" + w.Token + "x"},
		"garbage":             {user, "R|garbage"},
		"duplicate type":      {user, "R|" + r.Token + "|R|" + r.Token},
		"other instance":      {"Token|" + e.akid + "|mqtt-2", "R|" + r.Token},
		"other AccessKey":     {"Token|" + other + "|mqtt-1", "R|" + r.Token},
		"unknown AccessKey":   {"Token|TKNONE|mqtt-1", "R|" + r.Token},
		"revoked":             {user, "R|" + revoked.Token},
		"empty password":      {user, ""},
		"no instance":         {"Token|" + e.akid, "R|" + r.Token},
		"empty AccessKey":     {"Token||mqtt-1", "R|" + r.Token},
		"extra field in user": {user + "|x", "R|" + r.Token},
	} {
		d, id, err := connect(p, cr[0], cr[1], "c")
		if d != auth.Deny || id != nil || !errors.Is(err, auth.ErrBadCredentials) {
			t.Errorf("%s: %v %v %v", name, d, id, err)
		}
		if err != nil && strings.Contains(err.Error(), r.Token) {
			t.Errorf("%s: error contains the token", name)
		}
	}
	e.clk.Advance(2 * time.Minute)
	if d, _, _ := connect(p, user, "R|"+short.Token, "c"); d != auth.Deny {
		t.Error("expired token allowed")
	}
	for _, u := range []string{"guest", "", "token|" + e.akid + "|mqtt-1", "Tokens|a|b", "DeviceCredential|a|b", "Token"} {
		if d, id, err := connect(p, u, "R|"+r.Token, "c"); d != auth.Abstain || id != nil || err != nil {
			t.Errorf("user %q: %v %v %v", u, d, id, err)
		}
	}
}

func TestProviderSignatureMode(t *testing.T) {
	e := newEnv(t)
	p := e.s.Provider()
	user := "Signature|" + e.akid + "|mqtt-1"
	pw := tokensign.MQTTPassword(e.secret, "GID_Test@@@0001")
	d, id, err := connect(p, user, pw, "GID_Test@@@0001")
	if d != auth.Allow || err != nil {
		t.Fatalf("signature login: %v %v", d, err)
	}
	if id.User != "alice" || id.Subject != "u1" || id.Vhost != "mqtt-1" || id.Method != "token" ||
		id.Grants != nil || id.GrantsSource != "" || id.Expires() ||
		len(id.Creds) != 1 || id.Creds[0].Kind != CredSignature || id.Creds[0].Subject != e.akid || id.Creds[0].ID != "" {
		t.Fatalf("identity %+v", id)
	}
	for name, c := range map[string][3]string{
		"other client id":   {user, pw, "GID_Test@@@0002"},
		"wrong secret":      {user, tokensign.MQTTPassword("x", "GID_Test@@@0001"), "GID_Test@@@0001"},
		"other instance":    {"Signature|" + e.akid + "|mqtt-2", pw, "GID_Test@@@0001"},
		"unknown key":       {"Signature|TKNONE|mqtt-1", pw, "GID_Test@@@0001"},
		"API signature key": {user, tokensign.MQTTPassword(e.secret+"&", "GID_Test@@@0001"), "GID_Test@@@0001"},
	} {
		if d, _, err := connect(p, c[0], c[1], c[2]); d != auth.Deny || !errors.Is(err, auth.ErrBadCredentials) {
			t.Errorf("%s: %v %v", name, d, err)
		}
	}
	e.owners.del("alice")
	if d, _, _ := connect(p, user, pw, "GID_Test@@@0001"); d != auth.Deny {
		t.Error("deleted owner allowed")
	}
}

// Through the chain, a bad token is ErrBadCredentials (v5 0x86, 3.1.1 code 4), and other user
// names reach the next provider.
func TestProviderInChain(t *testing.T) {
	e := newEnv(t)
	ch := auth.NewChain(e.s.Provider(), &auth.Anonymous{User: "anon"}).WithRateLimiter(nil)
	_, err := ch.Authenticate(context.Background(), &auth.Credentials{Username: "Token|" + e.akid + "|mqtt-1", Password: []byte("R|bad")})
	var den *auth.Denial
	if !errors.Is(err, auth.ErrBadCredentials) || !errors.As(err, &den) || den.Provider != "token" {
		t.Fatalf("bad token through the chain: %v", err)
	}
	tok := e.apply(t, TypeR, time.Hour, "a").Token
	id, err := ch.Authenticate(context.Background(), &auth.Credentials{Username: "Token|" + e.akid + "|mqtt-1", Password: []byte("R|" + tok), Vhost: "/"})
	if err != nil || id.Vhost != "mqtt-1" || len(id.Creds[0].Resources) != 1 {
		t.Fatalf("good token through the chain: %+v %v", id, err)
	}
	if id, err := ch.Authenticate(context.Background(), &auth.Credentials{}); err != nil || id.User != "anon" {
		t.Fatalf("anonymous after the token provider: %v", err)
	}
}

// tokens.md §4: a publish needs a W/RW resource matching the topic, a subscribe an R/RW
// resource covering the filter; and the owner's own permissions still apply (§3).
func TestProviderGrantsWithACL(t *testing.T) {
	e := newEnv(t)
	p := e.s.Provider()
	r := e.apply(t, TypeR, time.Hour, "a/+/c", "b/#")
	w := e.apply(t, TypeW, time.Hour, "a/+/c")
	_, id, err := connect(p, "Token|"+e.akid+"|mqtt-1", "R|"+r.Token+"|W|"+w.Token, "c")
	if err != nil {
		t.Fatal(err)
	}
	ck := acl.NewChecker(false)
	if err := ck.SetPermission(acl.Permission{User: "alice", Vhost: "mqtt-1", Configure: ".*", Write: ".*", Read: ".*"}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		sub, filter string
		ok          bool
	}{
		{"sub", "a/b/c", true}, {"sub", "a/+/c", true}, {"sub", "a/#", false},
		{"sub", "b/x/+", true}, {"sub", "b/#", true}, {"sub", "b", true}, {"sub", "#", false},
		{"sub", "$share/g/a/b/c", true}, {"sub", "$share/g/a/#", false},
		{"pub", "a/b/c", true}, {"pub", "a/b/d", false}, {"pub", "b/x", false},
	} {
		var err error
		if c.sub == "sub" {
			err = ck.CanSubscribe(id, "c", c.filter)
		} else {
			err = ck.CanPublish(id, "c", c.filter)
		}
		if (err == nil) != c.ok {
			t.Errorf("%s %s: %v, want allowed=%v", c.sub, c.filter, err, c.ok)
		}
	}
	// The owner's topic permission narrows what the token allows.
	if err := ck.SetTopicPermission(acl.TopicPermission{User: "alice", Vhost: "mqtt-1", Exchange: acl.DefaultExchange, Write: "^a/x/", Read: ".*"}); err != nil {
		t.Fatal(err)
	}
	if err := ck.CanPublish(id, "c", "a/b/c"); err == nil {
		t.Error("token allowed more than its owner may")
	}
	if err := ck.CanPublish(id, "c", "a/x/c"); err != nil {
		t.Errorf("within both: %v", err)
	}
	// An owner without any permission on the vhost: nothing.
	ck.DeletePermission("alice", "mqtt-1")
	if err := ck.CanSubscribe(id, "c", "a/b/c"); err == nil {
		t.Error("owner without access may subscribe")
	}
}
