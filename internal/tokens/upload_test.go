package tokens

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/turnstilemq/turnstile/internal/auth"
	"github.com/turnstilemq/turnstile/pkg/tokensign"
)

func upload(tok, typ string) []byte {
	return []byte(`{"token": "` + tok + `", "type": "` + typ + `"}`)
}

func TestVerifyUploadReplacesOneToken(t *testing.T) {
	e := newEnv(t)
	p := e.s.Provider()
	r := e.apply(t, TypeR, time.Hour, "s/old")
	w := e.apply(t, TypeW, 2*time.Hour, "p/1")
	_, cur, err := connect(p, "Token|"+e.akid+"|mqtt-1", "R|"+r.Token+"|W|"+w.Token, "c")
	if err != nil {
		t.Fatal(err)
	}
	e.clk.Advance(50 * time.Minute)
	r2 := e.apply(t, TypeR, 3*time.Hour, "s/new/#")
	next, code, err := e.s.VerifyUpload(cur, upload(r2.Token, "R"), e.clk.Now())
	if err != nil || code != 0 {
		t.Fatalf("upload: %d %v", code, err)
	}
	if next.Generation != 1 || next.User != "alice" || next.Subject != "u1" || next.Vhost != "mqtt-1" || next.GrantsSource != auth.GrantsToken {
		t.Fatalf("next %+v", next)
	}
	want := []auth.Grant{{Action: "read", Pattern: "s/new/#"}, {Action: "write", Pattern: "p/1"}}
	if !slices.Equal(next.Grants, want) {
		t.Fatalf("grants %v, want %v", next.Grants, want)
	}
	if !next.Expiry.Equal(w.Expiry) { // earliest: the W token's now
		t.Fatalf("expiry %v, want %v", next.Expiry, w.Expiry)
	}
	if len(next.Creds) != 2 || next.Creds[0].ID != r2.JTI || next.Creds[1].ID != w.JTI || next.HasCredentialID(r.JTI) {
		t.Fatalf("creds %+v", next.Creds)
	}
	// current is untouched: identities are immutable.
	if cur.Generation != 0 || cur.Creds[0].ID != r.JTI || cur.Grants[0].Pattern != "s/old" {
		t.Fatal("VerifyUpload modified the current identity")
	}
	// Uploading a type not held yet adds it; "Token" is accepted as the key.
	rw := e.apply(t, TypeRW, time.Hour, "x")
	third, code, err := e.s.VerifyUpload(next, []byte(`{"Token":"`+rw.Token+`","type":"RW"}`), e.clk.Now())
	if err != nil || code != 0 || third.Generation != 2 || len(third.Creds) != 3 || !third.Expiry.Equal(rw.Expiry) {
		t.Fatalf("add RW: %d %v %+v", code, err, third)
	}
	if !slices.Contains(third.Grants, auth.Grant{Action: "write", Pattern: "x"}) {
		t.Fatal("RW upload did not add its write grant")
	}
}

// tokens.md §5, §6: a bad upload gets the tokenInvalidNotice code.
func TestVerifyUploadCodes(t *testing.T) {
	e := newEnv(t)
	p := e.s.Provider()
	r := e.apply(t, TypeR, time.Hour, "a")
	_, cur, err := connect(p, "Token|"+e.akid+"|mqtt-1", "R|"+r.Token, "c")
	if err != nil {
		t.Fatal(err)
	}
	good := e.apply(t, TypeR, time.Hour, "b")
	w := e.apply(t, TypeW, time.Hour, "b")
	revoked := e.apply(t, TypeR, time.Hour, "b")
	e.s.RevokeToken(e.akid, "mqtt-1", revoked.Token)
	short := e.apply(t, TypeR, time.Minute, "b")
	other := newEnv(t)
	foreign := other.apply(t, TypeR, time.Hour, "b").Token
	ak2, _, _ := e.s.CreateAccessKey("alice", "mqtt-1")
	e2 := *e
	e2.akid = ak2
	otherKey := e2.apply(t, TypeR, time.Hour, "b").Token
	parts := strings.Split(good.Token, ".")
	tampered := parts[0] + "." + parts[1] + "x." + parts[2]

	_, sigID, err := connect(p, "Signature|"+e.akid+"|mqtt-1", tokensign.MQTTPassword(e.secret, "c"), "c")
	if err != nil {
		t.Fatal(err)
	}
	at := t0.Add(2 * time.Minute)
	for name, c := range map[string]struct {
		payload []byte
		cur     *auth.Identity
		code    InvalidCode
	}{
		"not JSON":          {[]byte("R|" + good.Token), cur, InvalidForged},
		"no token":          {[]byte(`{"type":"R"}`), cur, InvalidForged},
		"empty token":       {upload("", "R"), cur, InvalidForged},
		"too large":         {upload(strings.Repeat("a", MaxUploadBytes), "R"), cur, InvalidForged},
		"garbage token":     {upload("abc", "R"), cur, InvalidForged},
		"two tokens":        {[]byte(`{"token":"` + good.Token + `","Token":"x","type":"R"}`), cur, InvalidForged},
		"tampered":          {upload(tampered, "R"), cur, InvalidSignature},
		"foreign signer":    {upload(foreign, "R"), cur, InvalidSignature},
		"expired":           {upload(short.Token, "R"), cur, InvalidExpired},
		"revoked":           {upload(revoked.Token, "R"), cur, InvalidRevoked},
		"type mismatch":     {upload(w.Token, "R"), cur, InvalidType},
		"unknown type":      {upload(good.Token, "X"), cur, InvalidType},
		"other AccessKey":   {upload(otherKey, "R"), cur, InvalidForged},
		"not a token login": {upload(good.Token, "R"), &auth.Identity{User: "alice", Vhost: "mqtt-1", Method: "local"}, InvalidForged},
		"nil identity":      {upload(good.Token, "R"), nil, InvalidForged},
		"signature login":   {upload(good.Token, "R"), sigID, InvalidForged},
	} {
		next, code, err := e.s.VerifyUpload(c.cur, c.payload, at)
		if next != nil || err == nil || code != c.code {
			t.Errorf("%s: code %d, err %v, want %d", name, code, err, c.code)
		}
		if err != nil && strings.Contains(err.Error(), good.Token) {
			t.Errorf("%s: error contains the token", name)
		}
	}
	// Another vhost: the identity's vhost is the token's.
	moved := *cur
	moved.Vhost = "mqtt-2"
	if _, code, _ := e.s.VerifyUpload(&moved, upload(good.Token, "R"), at); code != InvalidForged {
		t.Errorf("other vhost: %d", code)
	}
	// The owner gone: account code.
	e.owners.del("alice")
	if _, code, _ := e.s.VerifyUpload(cur, upload(good.Token, "R"), at); code != InvalidAccount {
		t.Errorf("owner deleted: %d", code)
	}
}

func TestNoticePayloads(t *testing.T) {
	exp := time.UnixMilli(1700000000123)
	if got := string(ExpireNotice(exp, "R")); got != `{"expireTime":1700000000123,"type":"R"}` {
		t.Errorf("ExpireNotice = %s", got)
	}
	if got := string(InvalidNotice(3, "W")); got != `{"code":3,"type":"W"}` {
		t.Errorf("InvalidNotice = %s", got)
	}
	if got := string(InvalidNotice(int(InvalidAccount), "RW")); got != `{"code":-1,"type":"RW"}` {
		t.Errorf("InvalidNotice(-1) = %s", got)
	}
	if ParseUploadType([]byte(`{"token":"x","type":"RW"}`)) != "RW" || ParseUploadType([]byte(`{"type":"Q"}`)) != "" || ParseUploadType([]byte("x")) != "" {
		t.Error("ParseUploadType")
	}
}
