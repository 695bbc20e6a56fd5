package tokens

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestMasterKeyFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "secrets")
	path := filepath.Join(dir, "tokens.key")
	k1, err := LoadOrCreateMasterKey(path)
	if err != nil || len(k1) != MasterKeySize {
		t.Fatalf("create: %d bytes, %v", len(k1), err)
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("created with mode %v, want 0600", st.Mode().Perm())
	}
	if st, _ := os.Stat(dir); st.Mode().Perm() != 0o700 {
		t.Fatalf("directory created with mode %v, want 0700", st.Mode().Perm())
	}
	k2, err := LoadOrCreateMasterKey(path)
	if err != nil || string(k1) != string(k2) {
		t.Fatalf("reload gave another key (%v)", err)
	}
	for _, mode := range []os.FileMode{0o640, 0o604, 0o660, 0o644} {
		os.Chmod(path, mode)
		if _, err := LoadOrCreateMasterKey(path); !errors.Is(err, ErrMasterKeyMode) {
			t.Errorf("mode %v: err = %v, want ErrMasterKeyMode", mode, err)
		}
	}
	os.Chmod(path, 0o400)
	if _, err := LoadOrCreateMasterKey(path); err != nil {
		t.Errorf("mode 0400: %v", err)
	}
	raw := filepath.Join(dir, "raw.key")
	os.WriteFile(raw, k1, 0o600)
	if k, err := LoadOrCreateMasterKey(raw); err != nil || string(k) != string(k1) {
		t.Errorf("raw 32-byte key: %v", err)
	}
	short := filepath.Join(dir, "short.key")
	os.WriteFile(short, []byte("abcd\n"), 0o600)
	if _, err := LoadOrCreateMasterKey(short); err == nil {
		t.Error("a 4-byte key file was accepted")
	}
	if _, err := LoadOrCreateMasterKey(""); err == nil {
		t.Error("empty path accepted")
	}
}

func TestSealBindsRecordAndKey(t *testing.T) {
	k := make([]byte, 32)
	s, _ := newSealer(k)
	sealed := s.seal("ns", "a", []byte("secret"))
	if p, err := s.open("ns", "a", sealed); err != nil || string(p) != "secret" {
		t.Fatalf("open: %q %v", p, err)
	}
	if _, err := s.open("ns", "b", sealed); err == nil {
		t.Error("a sealed value opened under another record key")
	}
	k[0] = 1
	other, _ := newSealer(k)
	if _, err := other.open("ns", "a", sealed); err == nil {
		t.Error("a sealed value opened with another master key")
	}
	if _, err := newSealer(k[:16]); err == nil {
		t.Error("a 16-byte master key was accepted")
	}
}

func TestNewRefusesWrongMasterKey(t *testing.T) {
	e := newEnv(t)
	o := e.o
	o.MasterKey = make([]byte, 32)
	if _, err := New(o); err == nil || strings.Contains(err.Error(), e.secret) {
		t.Fatalf("New with another master key: %v", err)
	}
	o.MasterKey = nil
	if _, err := New(o); err == nil {
		t.Fatal("New without a master key succeeded")
	}
	o = e.o
	o.Owners = nil
	if _, err := New(o); err == nil {
		t.Fatal("New without Owners succeeded")
	}
}

func TestAccessKeys(t *testing.T) {
	e := newEnv(t)
	if _, _, err := e.s.CreateAccessKey("bob", "mqtt-1"); !errors.Is(err, ErrUnknownUser) {
		t.Errorf("unknown user: %v", err)
	}
	if _, _, err := e.s.CreateAccessKey("alice", "other"); !errors.Is(err, ErrNoVhostAccess) {
		t.Errorf("no access: %v", err)
	}
	if !strings.HasPrefix(e.akid, "TK") || len(e.secret) < 30 {
		t.Errorf("id %q, secret of %d chars", e.akid, len(e.secret))
	}
	list := e.s.ListAccessKeys()
	if len(list) != 1 || list[0].ID != e.akid || list[0].User != "alice" || list[0].Vhost != "mqtt-1" {
		t.Fatalf("list = %+v", list)
	}
	b, _ := json.Marshal(list)
	if strings.Contains(string(b), e.secret) {
		t.Fatal("ListAccessKeys reveals the secret")
	}
	// At rest the secret is encrypted; the log never names it.
	if e.st.contains(e.secret) || e.st.contains(base64.StdEncoding.EncodeToString([]byte(e.secret))) {
		t.Fatal("the store holds the AccessKey secret in clear")
	}
	if strings.Contains(e.logs.String(), e.secret) {
		t.Fatal("the log holds the AccessKey secret")
	}
	// A restart keeps the key and its secret.
	s2 := e.reopen(t)
	ak, ok := s2.aks.get(e.akid)
	if !ok || ak.Secret != e.secret || ak.UserID != "u1" {
		t.Fatalf("after restart: %+v %v", ak.ID, ok)
	}
	if err := s2.DeleteAccessKey("nope"); !errors.Is(err, ErrUnknownAccessKey) {
		t.Errorf("delete unknown: %v", err)
	}
	var deleted []string
	s2.OnAccessKeyDelete(func(id string) { deleted = append(deleted, id) })
	if err := s2.DeleteAccessKey(e.akid); err != nil || len(s2.ListAccessKeys()) != 0 || e.st.count(nsAccessKeys) != 0 {
		t.Fatalf("delete: %v", err)
	}
	if !slices.Equal(deleted, []string{e.akid}) {
		t.Fatalf("delete hook got %v", deleted)
	}
}

func TestAccessKeysBounded(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.MaxAccessKeys = 2 })
	if _, _, err := e.s.CreateAccessKey("alice", "mqtt-1"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.s.CreateAccessKey("alice", "mqtt-1"); !errors.Is(err, ErrAccessKeysFull) {
		t.Fatalf("third key: %v", err)
	}
}

func TestApplyAndVerify(t *testing.T) {
	e := newEnv(t)
	iss := e.apply(t, TypeRW, time.Hour, "b/#", "a/+/c", "b/#")
	if iss.Capped || !iss.Expiry.Equal(t0.Add(time.Hour)) || iss.KID == "" || iss.JTI == "" {
		t.Fatalf("issued %+v", iss)
	}
	tk, err := e.s.Verify(iss.Token, e.akid, "mqtt-1", TypeRW, t0)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(tk.Resources, []string{"a/+/c", "b/#"}) || tk.Actions != TypeRW || tk.Vhost != "mqtt-1" ||
		tk.AKID != e.akid || tk.JTI != iss.JTI || tk.KID != iss.KID || tk.Hash != HashToken(iss.Token) || tk.Iat != t0.Unix() {
		t.Fatalf("claims %+v", tk)
	}
	// tokens.md §7: never stored, never logged.
	if e.st.contains(iss.Token) || strings.Contains(e.logs.String(), iss.Token) {
		t.Fatal("the raw token was stored or logged")
	}
	if !strings.Contains(e.logs.String(), iss.JTI) {
		t.Fatal("the issue is not logged by jti")
	}
	if _, err := e.s.Verify(iss.Token, e.akid, "mqtt-1", TypeR, t0); !errors.Is(err, ErrType) {
		t.Errorf("type R: %v", err)
	}
	if _, err := e.s.Verify(iss.Token, e.akid, "mqtt-2", "", t0); !errors.Is(err, ErrNotIssued) {
		t.Errorf("other vhost: %v", err)
	}
	if _, err := e.s.Verify(iss.Token, "TKOTHER", "mqtt-1", "", t0); !errors.Is(err, ErrNotIssued) {
		t.Errorf("other AccessKey: %v", err)
	}
	if _, err := e.s.Verify(iss.Token, e.akid, "mqtt-1", "", t0.Add(time.Hour-time.Second)); err != nil {
		t.Errorf("just before exp: %v", err)
	}
	// Not accepted on or after exp (RFC 7519 4.1.4), as the broker's expiry timer judges it.
	if _, err := e.s.Verify(iss.Token, e.akid, "mqtt-1", "", t0.Add(time.Hour)); !errors.Is(err, ErrExpired) || CodeOf(err) != InvalidExpired {
		t.Errorf("at exp: %v", err)
	}
}

// tokens.md §2: ExpireTime at least now + 60 s, at most 30 days (capped, or refused).
func TestExpiryRules(t *testing.T) {
	e := newEnv(t)
	if _, err := e.s.ApplyToken(e.akid, "mqtt-1", []string{"a"}, TypeR, t0.Add(59*time.Second)); err == nil {
		t.Error("ExpireTime now+59s accepted")
	}
	e.apply(t, TypeR, 60*time.Second, "a")
	iss := e.apply(t, TypeR, 31*24*time.Hour, "a")
	if !iss.Capped || !iss.Expiry.Equal(t0.Add(30*24*time.Hour)) {
		t.Fatalf("31 days: capped=%v exp=%v", iss.Capped, iss.Expiry)
	}
	r := newEnv(t, func(o *Options) { o.RejectLongExpiry = true })
	_, err := r.s.ApplyToken(r.akid, "mqtt-1", []string{"a"}, TypeR, t0.Add(31*24*time.Hour))
	var ae *APIError
	if !errors.As(err, &ae) || ae.Code != CodeParameter || !strings.Contains(ae.Message, "ExpireTime") {
		t.Fatalf("reject mode: %v", err)
	}
}

func TestApplyValidation(t *testing.T) {
	e := newEnv(t)
	many := make([]string, MaxResources+1)
	for i := range many {
		many[i] = "t/" + strconv.Itoa(i)
	}
	for name, c := range map[string]struct {
		res  []string
		typ  string
		inst string
		code string
	}{
		"no resources":    {nil, TypeR, "mqtt-1", CodeParameter},
		"101 resources":   {many, TypeR, "mqtt-1", CodeParameter},
		"invalid filter":  {[]string{"a/#/b"}, TypeR, "mqtt-1", CodeParameter},
		"empty filter":    {[]string{""}, TypeR, "mqtt-1", CodeParameter},
		"bad type":        {[]string{"a"}, "R,W", "mqtt-1", CodeParameter},
		"other instance":  {[]string{"a"}, TypeR, "mqtt-2", CodeInstancePermission},
		"token too large": {longResources(), TypeR, "mqtt-1", CodeParameter},
	} {
		_, err := e.s.ApplyToken(e.akid, c.inst, c.res, c.typ, t0.Add(time.Hour))
		var ae *APIError
		if !errors.As(err, &ae) || ae.Code != c.code {
			t.Errorf("%s: err = %v, want %s", name, err, c.code)
		}
	}
	e.apply(t, TypeR, time.Hour, many[:MaxResources]...)
}

func longResources() []string {
	out := make([]string, 50)
	for i := range out {
		out[i] = strings.Repeat("y", 100) + "/" + string(rune('a'+i%26)) + strings.Repeat("z", i)
	}
	return out
}

// tokens.md §3: a token never grants more than its owner may do; a deleted or re-created owner
// invalidates the owner's keys and tokens.
func TestOwnerChecks(t *testing.T) {
	e := newEnv(t)
	iss := e.apply(t, TypeR, time.Hour, "a")
	e.owners.revokeAccess("alice", "mqtt-1")
	_, err := e.s.ApplyToken(e.akid, "mqtt-1", []string{"a"}, TypeR, t0.Add(time.Hour))
	var ae *APIError
	if !errors.As(err, &ae) || ae.Code != CodePermission {
		t.Fatalf("owner without access: %v", err)
	}
	if _, err := e.s.Verify(iss.Token, e.akid, "mqtt-1", "", t0); !errors.Is(err, ErrAccount) || CodeOf(err) != InvalidAccount {
		t.Fatalf("token of an owner without access: %v", err)
	}
	e.owners.add("alice", "u1", "mqtt-1")
	if _, err := e.s.Verify(iss.Token, e.akid, "mqtt-1", "", t0); err != nil {
		t.Fatalf("access restored: %v", err)
	}
	e.owners.del("alice")
	if _, err := e.s.Verify(iss.Token, e.akid, "mqtt-1", "", t0); !errors.Is(err, ErrAccount) {
		t.Fatalf("deleted owner: %v", err)
	}
	e.owners.add("alice", "u2", "mqtt-1") // same name, another user
	if _, err := e.s.Verify(iss.Token, e.akid, "mqtt-1", "", t0); !errors.Is(err, ErrAccount) {
		t.Fatalf("re-created owner: %v", err)
	}
	if _, err := e.s.ApplyToken(e.akid, "mqtt-1", []string{"a"}, TypeR, t0.Add(time.Hour)); err == nil {
		t.Fatal("a re-created owner's old AccessKey issued a token")
	}
	e.owners.add("alice", "u1", "mqtt-1")
	if err := e.s.DeleteAccessKey(e.akid); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.Verify(iss.Token, e.akid, "mqtt-1", "", t0); !errors.Is(err, ErrAccount) {
		t.Fatalf("deleted AccessKey: %v", err)
	}
}

func TestKeyRotation(t *testing.T) {
	e := newEnv(t)
	old := e.apply(t, TypeR, 30*24*time.Hour, "a")
	if keys := e.s.SigningKeys(); len(keys) != 1 || !keys[0].Active || keys[0].KID != old.KID {
		t.Fatalf("keys %+v", keys)
	}
	nk := e.s.RotateKey()
	if nk.KID == old.KID {
		t.Fatal("rotation kept the kid")
	}
	fresh := e.apply(t, TypeR, time.Hour, "a")
	if fresh.KID != nk.KID {
		t.Fatalf("new token signed by %s, want %s", fresh.KID, nk.KID)
	}
	if _, err := e.s.Verify(old.Token, e.akid, "mqtt-1", "", t0); err != nil {
		t.Fatalf("token of the retired key: %v", err)
	}
	// Restart: both keys are back, the new one active.
	e.s = e.reopen(t)
	for _, tok := range []string{old.Token, fresh.Token} {
		if _, err := e.s.Verify(tok, e.akid, "mqtt-1", "", t0); err != nil {
			t.Fatalf("after restart: %v", err)
		}
	}
	if again := e.apply(t, TypeR, time.Hour, "a"); again.KID != nk.KID {
		t.Fatalf("after restart signed by %s", again.KID)
	}
	if err := e.s.RemoveKey(nk.KID); !errors.Is(err, ErrActiveKey) {
		t.Fatalf("removing the active key: %v", err)
	}
	if err := e.s.RemoveKey("nope"); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("removing an unknown key: %v", err)
	}
	// The retired key lives until the longest token it can have signed has expired.
	e.clk.Advance(30*24*time.Hour - time.Minute)
	e.s.RotateKey()
	if _, err := e.s.Verify(old.Token, e.akid, "mqtt-1", "", e.clk.Now()); err != nil {
		t.Fatalf("retired key pruned early: %v", err)
	}
	e.clk.Advance(2 * time.Minute)
	e.s.RotateKey()
	if slices.ContainsFunc(e.s.SigningKeys(), func(k SigningKey) bool { return k.KID == old.KID }) {
		t.Fatal("retired key kept past the longest token lifetime")
	}
	// A removed (compromised) key's tokens fail at once.
	e2 := newEnv(t)
	tok := e2.apply(t, TypeW, time.Hour, "a")
	e2.s.RotateKey()
	if err := e2.s.RemoveKey(tok.KID); err != nil {
		t.Fatal(err)
	}
	if _, err := e2.s.Verify(tok.Token, e2.akid, "mqtt-1", "", t0); !errors.Is(err, ErrSignature) || CodeOf(err) != InvalidSignature {
		t.Fatalf("token of a removed key: %v", err)
	}
	if e2.reopen(t).SigningKeys()[0].KID == tok.KID {
		t.Fatal("removed key came back after a restart")
	}
}

func TestTamperedTokens(t *testing.T) {
	e := newEnv(t)
	tok := e.apply(t, TypeR, time.Hour, "a").Token
	parts := strings.Split(tok, ".")
	claims, _ := base64.RawURLEncoding.DecodeString(parts[1])
	forged := strings.Replace(string(claims), `"a"`, `"#"`, 1)
	other := newEnv(t)
	otherTok := other.apply(t, TypeR, time.Hour, "a").Token
	oparts := strings.Split(otherTok, ".")
	for name, c := range map[string]struct {
		tok  string
		code InvalidCode
	}{
		"changed claims":    {parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(forged)) + "." + parts[2], InvalidSignature},
		"alg none":          {base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","kid":"x"}`)) + "." + parts[1] + ".", InvalidForged},
		"HS256":             {base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256"}`)) + "." + parts[1] + "." + parts[2], InvalidForged},
		"truncated":         {tok[:len(tok)-10], InvalidSignature},
		"garbage":           {"not a token", InvalidForged},
		"empty":             {"", InvalidForged},
		"huge":              {strings.Repeat("a", MaxTokenBytes+1), InvalidForged},
		"another service":   {otherTok, InvalidSignature},
		"signature swapped": {parts[0] + "." + parts[1] + "." + oparts[2], InvalidSignature},
	} {
		_, err := e.s.Verify(c.tok, e.akid, "mqtt-1", "", t0)
		if got := CodeOf(err); got != c.code {
			t.Errorf("%s: code %d (%v), want %d", name, got, err, c.code)
		}
		if err != nil && c.tok != "" && len(c.tok) > 20 && strings.Contains(err.Error(), c.tok) {
			t.Errorf("%s: the error contains the token", name)
		}
	}
}

func TestRevocation(t *testing.T) {
	e := newEnv(t)
	iss := e.apply(t, TypeR, time.Hour, "a")
	var hooked []string
	e.s.OnRevoke(func(jti string) { hooked = append(hooked, jti) })
	if ok, _, err := e.s.QueryToken(e.akid, "mqtt-1", iss.Token); !ok || err != nil {
		t.Fatalf("query before revoke: %v %v", ok, err)
	}
	if err := e.s.RevokeToken(e.akid, "mqtt-1", iss.Token); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(hooked, []string{iss.JTI}) {
		t.Fatalf("OnRevoke got %v", hooked)
	}
	if _, err := e.s.Verify(iss.Token, e.akid, "mqtt-1", "", t0); !errors.Is(err, ErrRevoked) || CodeOf(err) != InvalidRevoked {
		t.Fatalf("revoked token: %v", err)
	}
	if ok, code, _ := e.s.QueryToken(e.akid, "mqtt-1", iss.Token); ok || code != InvalidRevoked {
		t.Fatalf("query after revoke: %v %d", ok, code)
	}
	// Idempotent: a second revocation succeeds and fires nothing.
	if err := e.s.RevokeToken(e.akid, "mqtt-1", iss.Token); err != nil || len(hooked) != 1 {
		t.Fatalf("second revoke: %v, hooks %d", err, len(hooked))
	}
	// Persisted by jti until exp: a restart keeps it; the store holds no token.
	if e.st.count(nsRevoked) != 1 || e.st.contains(iss.Token) {
		t.Fatal("revocation not persisted by jti")
	}
	s2 := e.reopen(t)
	if _, err := s2.Verify(iss.Token, e.akid, "mqtt-1", "", t0); !errors.Is(err, ErrRevoked) {
		t.Fatalf("after restart: %v", err)
	}
	// Past exp the entry is dropped (at the next load or sweep).
	e.clk.Advance(time.Hour + time.Second)
	s3 := e.reopen(t)
	if s3.revoker.(*RevocationSet).Len() != 0 || e.st.count(nsRevoked) != 0 {
		t.Fatal("expired revocation kept")
	}
	if ok, code, _ := s3.QueryToken(e.akid, "mqtt-1", iss.Token); ok || code != InvalidExpired {
		t.Fatalf("query after exp: %v %d", ok, code)
	}
	// Revoking an expired token succeeds and records nothing.
	if err := s3.RevokeToken(e.akid, "mqtt-1", iss.Token); err != nil || e.st.count(nsRevoked) != 0 {
		t.Fatalf("revoke expired: %v", err)
	}
}

func TestRevokeAndQueryScope(t *testing.T) {
	e := newEnv(t)
	iss := e.apply(t, TypeR, time.Hour, "a")
	// Another AccessKey of the same owner may query and revoke it.
	ak2, _, _ := e.s.CreateAccessKey("alice", "mqtt-1")
	if ok, _, _ := e.s.QueryToken(ak2, "mqtt-1", iss.Token); !ok {
		t.Fatal("same owner cannot query")
	}
	// Another owner may not.
	e.owners.add("bob", "u9", "mqtt-1")
	bob, _, _ := e.s.CreateAccessKey("bob", "mqtt-1")
	if ok, _, _ := e.s.QueryToken(bob, "mqtt-1", iss.Token); ok {
		t.Fatal("another owner sees the token as valid")
	}
	err := e.s.RevokeToken(bob, "mqtt-1", iss.Token)
	var ae *APIError
	if !errors.As(err, &ae) || ae.Code != CodePermission {
		t.Fatalf("another owner revokes: %v", err)
	}
	if err := e.s.RevokeToken(e.akid, "mqtt-1", "garbage"); !errors.As(err, &ae) || ae.Code != CodeParameter {
		t.Fatalf("revoke garbage: %v", err)
	}
	if err := e.s.RevokeToken(e.akid, "mqtt-2", iss.Token); !errors.As(err, &ae) || ae.Code != CodeInstancePermission {
		t.Fatalf("revoke on another instance: %v", err)
	}
	if err := e.s.RevokeToken(ak2, "mqtt-1", iss.Token); err != nil {
		t.Fatal(err)
	}
}

func TestRevocationSetBounded(t *testing.T) {
	now := t0
	r, _ := NewRevocationSet(nil, 2, func() time.Time { return now })
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(r.RevokeToken("a", now.Add(time.Minute)))
	must(r.RevokeToken("b", now.Add(time.Hour)))
	must(r.RevokeToken("a", now.Add(2*time.Minute))) // an update, not a new entry
	if err := r.RevokeToken("c", now.Add(time.Hour)); !errors.Is(err, ErrRevocationsFull) {
		t.Fatalf("full set: %v", err)
	}
	if !r.TokenRevoked("a") || r.TokenRevoked("c") {
		t.Fatal("a full set forgot or invented a revocation")
	}
	now = now.Add(3 * time.Minute) // "a" has expired: its place is free
	must(r.RevokeToken("c", now.Add(time.Hour)))
	if r.TokenRevoked("a") || !r.TokenRevoked("c") || r.Len() != 2 {
		t.Fatal("expired entry not swept")
	}
	if err := r.RevokeToken("", now.Add(time.Hour)); err == nil {
		t.Fatal("empty jti accepted")
	}
}
