package auth

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// keyedLocal is a testLocal with verifiers on.
type keyedLocal struct {
	*testLocal
	key  *PasswordKey
	macs uint64 // the verifier checks (HMACs) counted by the last costs
}

func newKeyedLocal(t *testing.T) *keyedLocal {
	t.Helper()
	key := RandomPasswordKey()
	return &keyedLocal{testLocal: newTestLocal(t, LocalOptions{Key: key}), key: key}
}

// costs returns the hash checks and the HMACs (matchVerifier counts each in the stats) since the
// last call.
func (kl *keyedLocal) costs() (hashes int, macs uint64) {
	now := kl.Stats().VerifierChecks
	macs, kl.macs = now-kl.macs, now
	return len(kl.verifications()), macs
}

func TestVerifierLogin(t *testing.T) {
	kl := newKeyedLocal(t)
	ctx := context.Background()
	alice, _ := kl.users.Get("alice")
	if !kl.users.SetVerifier("alice", kl.key.NewVerifier(alice, []byte("wonderland"))) {
		t.Fatal("a verifier made for alice as stored was refused")
	}
	if d, id, err := kl.Authenticate(ctx, creds("alice", "wonderland")); d != Allow || err != nil || id.User != "alice" {
		t.Fatalf("right password: %v %v", d, err)
	}
	if h, m := kl.costs(); h != 0 || m != 1 {
		t.Fatalf("a user with a verifier: %d hash checks, %d HMACs; want 0 and 1", h, m)
	}
	// A wrong password is refused by the verifier alone, as a wrong password.
	d, _, err := kl.Authenticate(ctx, creds("alice", "wonderlanD"))
	if d != Deny {
		t.Fatalf("wrong password: %v", d)
	}
	wantDenial(t, err, ErrBadCredentials, "wrong password")
	if h, m := kl.costs(); h != 0 || m != 1 {
		t.Fatalf("a wrong password against a verifier: %d hash checks, %d HMACs; want 0 and 1", h, m)
	}
}

// With a key, the provider hashes nothing when it is made: unknown users are checked against a
// verifier, which needs no hash, so a restart does not make clients wait for a bcrypt run. A
// Hasher that could not hash is still refused, as without a key.
func TestKeyedLocalStartsWithoutHashing(t *testing.T) {
	key := RandomPasswordKey()
	start := time.Now()
	// bcrypt at cost 16 takes seconds: made, it would show.
	l, err := NewLocal(NewUsers(), LocalOptions{Key: key, Hasher: Hasher{BcryptCost: MaxBcryptCost}})
	if err != nil {
		t.Fatal(err)
	}
	if l.dummyHash != "" || l.dummyAlg != "" {
		t.Fatalf("a dummy hash was made with a key: %s %s", l.dummyAlg, l.dummyHash)
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("NewLocal with a key took %v", took)
	}
	d, _, err := l.Authenticate(context.Background(), creds("nobody", "whatever"))
	if d != Deny || !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("an unknown user: %v %v", d, err)
	}
	if s := l.Stats(); s.VerifierChecks != 1 || s.HashChecks != 0 {
		t.Fatalf("an unknown user cost %d HMACs and %d hash checks; want 1 and 0", s.VerifierChecks, s.HashChecks)
	}
	for _, h := range []Hasher{{Algorithm: AlgMD5}, {BcryptCost: MaxBcryptCost + 1}, {Algorithm: AlgArgon2id, Argon2: Argon2Params{Time: 1, MemoryKiB: 64, Threads: 0, SaltLen: 16, KeyLen: 32}}} {
		if _, err := NewLocal(NewUsers(), LocalOptions{Key: key, Hasher: h}); err == nil {
			t.Errorf("NewLocal with a key accepted a Hasher that cannot hash: %+v", h)
		}
	}
}

// An unknown user, and a user without a password, cost what a known user with a verifier costs:
// one HMAC, against a dummy verifier; never a hash check.
func TestVerifierUnknownUserCostsOneHMAC(t *testing.T) {
	kl := newKeyedLocal(t)
	kl.users.Put(User{Name: "nopass"})
	for _, user := range []string{"nobody", "nopass"} {
		d, _, err := kl.Authenticate(context.Background(), creds(user, "whatever"))
		if d != Deny {
			t.Fatalf("%s: %v", user, d)
		}
		wantDenial(t, err, ErrBadCredentials, "")
		if h, m := kl.costs(); h != 0 || m != 1 {
			t.Fatalf("%s: %d hash checks, %d HMACs; want 0 and 1, as for a known user", user, h, m)
		}
	}
	if s := kl.Stats(); s.VerifierChecks != 2 || s.HashChecks != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// A user without a verifier (imported with a hash only) is judged by the hash once and gets a
// verifier; from then on one HMAC. The registry tells the directory, which persists it.
func TestVerifierMadeAtFirstLogin(t *testing.T) {
	kl := newKeyedLocal(t)
	var changed []string
	kl.users.OnVerifierChange(func(name string) { changed = append(changed, name) })
	ctx := context.Background()
	if d, _, _ := kl.Authenticate(ctx, creds("alice", "wonderlanD")); d != Deny {
		t.Fatal("wrong password allowed")
	}
	if h, m := kl.costs(); h != 1 || m != 0 {
		t.Fatalf("wrong password, no verifier: %d hash checks, %d HMACs", h, m)
	}
	if _, ok := kl.users.Verifier("alice"); ok || len(changed) != 0 {
		t.Fatal("a failed login made a verifier")
	}
	if d, _, _ := kl.Authenticate(ctx, creds("alice", "wonderland")); d != Allow {
		t.Fatal("right password refused")
	}
	if h, m := kl.costs(); h != 1 || m != 0 {
		t.Fatalf("first login: %d hash checks, %d HMACs; want 1 and 0", h, m)
	}
	if _, ok := kl.users.Verifier("alice"); !ok || fmt.Sprint(changed) != "[alice]" {
		t.Fatalf("no verifier kept after the first login (changes %v)", changed)
	}
	for range 3 {
		if d, _, _ := kl.Authenticate(ctx, creds("alice", "wonderland")); d != Allow {
			t.Fatal("right password refused")
		}
	}
	if h, m := kl.costs(); h != 0 || m != 3 {
		t.Fatalf("later logins: %d hash checks, %d HMACs; want 0 and 3", h, m)
	}
	if s := kl.Stats(); s.VerifiersMade != 1 {
		t.Fatalf("stats %+v", s)
	}
}

// A verifier made with another key (the key file was replaced) is ignored: the hash decides,
// and a new verifier replaces the old one.
func TestVerifierOfAnotherKeyIsIgnored(t *testing.T) {
	kl := newKeyedLocal(t)
	alice, _ := kl.users.Get("alice")
	old := RandomPasswordKey()
	kl.users.SetVerifier("alice", old.NewVerifier(alice, []byte("wonderland")))
	if d, _, _ := kl.Authenticate(context.Background(), creds("alice", "wonderland")); d != Allow {
		t.Fatal("refused")
	}
	if h, m := kl.costs(); h != 1 || m != 0 {
		t.Fatalf("%d hash checks, %d HMACs; want the hash, not the old verifier", h, m)
	}
	v, _ := kl.users.Verifier("alice")
	if !kl.key.Made(&v) || old.Made(&v) {
		t.Fatal("the old key's verifier was not replaced")
	}
}

// A verifier lives only while the user keeps the ID and hash it was made for.
func TestVerifierFollowsTheHash(t *testing.T) {
	users := NewUsers()
	key := RandomPasswordKey()
	var changed []string
	users.OnVerifierChange(func(name string) { changed = append(changed, name) })
	alice := users.Put(mustUser(t, "alice", "wonderland"))
	v := key.NewVerifier(alice, []byte("wonderland"))
	if !users.SetVerifier("alice", v) {
		t.Fatal("refused")
	}
	// New tags: the same hash, the verifier stays.
	alice.Tags = []Tag{TagManagement}
	users.Put(alice)
	if _, ok := users.Verifier("alice"); !ok {
		t.Fatal("a change of tags dropped the verifier")
	}
	// A new password drops it, and the old one cannot be attached to the new hash.
	next := mustUser(t, "alice", "looking-glass")
	users.Put(next)
	if _, ok := users.Verifier("alice"); ok {
		t.Fatal("a new password kept the old verifier: the old password would still log in")
	}
	if users.SetVerifier("alice", v) {
		t.Fatal("a verifier made for the old hash was attached to the new one")
	}
	now, _ := users.Get("alice")
	users.SetVerifier("alice", key.NewVerifier(now, []byte("looking-glass")))
	// Deleting the user drops it; a user of the same name created again has another ID.
	users.Delete("alice")
	if _, ok := users.Verifier("alice"); ok {
		t.Fatal("a deleted user's verifier stayed")
	}
	again := users.Put(mustUser(t, "alice", "looking-glass"))
	if users.SetVerifier("alice", key.NewVerifier(now, []byte("looking-glass"))) || again.ID == now.ID {
		t.Fatal("a verifier of the deleted subject was attached to the new one")
	}
	if want := "[alice alice alice alice]"; fmt.Sprint(changed) != want {
		t.Fatalf("change notices %v, want %v (set, dropped by the new password, set, dropped by the deletion)", changed, want)
	}
}

func mustUser(t *testing.T, name, pw string) User {
	t.Helper()
	u, err := NewUser(name, []byte(pw), fastHasher)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// Identical hash checks in flight at once (a cold reconnect storm of one user) share one run.
func TestLocalSharesIdenticalHashChecks(t *testing.T) {
	tl := newTestLocal(t, LocalOptions{CacheTTL: -1})
	release := make(chan struct{})
	var runs atomic.Int64
	tl.verify = func(alg, hash string, pw []byte) (bool, error) {
		runs.Add(1)
		<-release
		return VerifyPassword(alg, hash, pw)
	}
	var wg sync.WaitGroup
	var allowed atomic.Int64
	for range 16 {
		wg.Go(func() {
			if d, _, _ := tl.Authenticate(context.Background(), creds("alice", "wonderland")); d == Allow {
				allowed.Add(1)
			}
		})
	}
	for tl.waiters() < 15 { // one runs the check, 15 wait for it
		waitABit()
	}
	close(release)
	wg.Wait()
	if allowed.Load() != 16 || runs.Load() != 1 {
		t.Fatalf("%d allowed, %d hash checks run; want 16 and 1", allowed.Load(), runs.Load())
	}
	// A different password is a different check.
	tl.Authenticate(context.Background(), creds("alice", "other"))
	if runs.Load() != 2 {
		t.Fatalf("runs %d", runs.Load())
	}
}

// A check whose client went away does not answer the identical ones waiting for it.
func TestLocalSharedCheckLeaderGone(t *testing.T) {
	tl := newTestLocal(t, LocalOptions{CacheTTL: -1, MaxConcurrentVerifications: 1})
	// Hold the only verification slot, so that the leader waits for it.
	tl.sem <- struct{}{}
	lctx, cancel := context.WithCancel(context.Background())
	leader := make(chan error, 1)
	go func() {
		_, _, err := tl.Authenticate(lctx, creds("alice", "wonderland"))
		leader <- err
	}()
	for tl.flightsLen() == 0 {
		waitABit()
	}
	follower := make(chan Decision, 1)
	go func() {
		d, _, _ := tl.Authenticate(context.Background(), creds("alice", "wonderland"))
		follower <- d
	}()
	for tl.waiters() < 1 {
		waitABit()
	}
	cancel()
	if err := <-leader; err == nil {
		t.Fatal("the leader's login succeeded after its context ended")
	}
	<-tl.sem // free the slot: the follower runs its own check
	if d := <-follower; d != Allow {
		t.Fatalf("the follower got %v after the leader went away, want its own check's Allow", d)
	}
}

func (l *Local) flightsLen() int {
	l.flightMu.Lock()
	defer l.flightMu.Unlock()
	return len(l.flights)
}

// waiters is the number of logins waiting for another's hash check.
func (l *Local) waiters() (n int) {
	l.flightMu.Lock()
	defer l.flightMu.Unlock()
	for _, f := range l.flights {
		n += f.waiters
	}
	return n
}

// waitABit yields while a test polls for a state another goroutine reaches.
func waitABit() { time.Sleep(100 * time.Microsecond) }

func TestVerifierEncodingAndRedaction(t *testing.T) {
	key := RandomPasswordKey()
	u := mustUser(t, "alice", "wonderland")
	u.ID = NewUserID()
	v := key.NewVerifier(u, []byte("wonderland"))
	b, err := v.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var w Verifier
	if err := w.UnmarshalBinary(b); err != nil || w != v || !key.matches(&w, []byte("wonderland")) || w.UserID() != u.ID {
		t.Fatalf("round trip: %v", err)
	}
	for _, bad := range [][]byte{nil, b[:verifierFixed], append([]byte{2}, b[1:]...), append(b, make([]byte, maxUserIDLen)...)} {
		if err := new(Verifier).UnmarshalBinary(bad); err != ErrBadVerifier {
			t.Errorf("%d bytes: %v, want ErrBadVerifier", len(bad), err)
		}
	}
	// fmt, %#v and slog print neither the MAC nor the key.
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("x", "v", v, "k", key)
	out := fmt.Sprintf("%v %+v %#v %s %v %+v %#v", v, v, v, v, key, key, key) + logged.String()
	mac := b[1+8+32 : 1+8+32+32]
	for _, leak := range []string{string(mac), fmt.Sprintf("%x", mac), fmt.Sprint(mac), fmt.Sprint(key.mac[:]), fmt.Sprintf("%x", key.mac[:])} {
		if strings.Contains(out, leak) {
			t.Fatalf("printed: %s", out)
		}
	}
	if _, err := NewPasswordKey(make([]byte, 16)); err == nil {
		t.Fatal("a 16-byte key was accepted")
	}
}

// A verifier is HMAC-SHA256(verifier key, user ID ‖ 0x00 ‖ password), whatever the pooled
// states (macpool.go) did before: verifiers stored by an earlier Turnstile keep matching. A
// known answer, then many users and passwords in parallel, each against crypto/hmac itself, and
// a verifier check allocates nothing.
func TestVerifierSumIsHMAC(t *testing.T) {
	k, err := NewPasswordKey(bytes.Repeat([]byte{7}, PasswordKeySize))
	if err != nil {
		t.Fatal(err)
	}
	want := func(id string, pw []byte) [32]byte {
		m := hmac.New(sha256.New, k.mac[:])
		m.Write([]byte(id))
		m.Write([]byte{0})
		m.Write(pw)
		return [32]byte(m.Sum(nil))
	}
	// The known answer, computed apart (Python's hmac and an HKDF written out by hand).
	if got := k.sum("0a1b", []byte("pw")); hex.EncodeToString(got[:]) != "8af31a25c37c28735b627655d1dfe9cf3c807d77aefe5aafa8d739cc4b72e559" {
		t.Fatalf("sum of a known input: %x", got)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				id, pw := fmt.Sprintf("user-%d-%d", g, i), bytes.Repeat([]byte{byte(i)}, i*37%5000) // some past maxPooledInput
				if k.sum(id, pw) != want(id, pw) {
					t.Errorf("user %s, %d-byte password: sum differs from HMAC-SHA256", id, len(pw))
					return
				}
			}
		}()
	}
	wg.Wait()
	v := Verifier{userID: "0a1b", mac: want("0a1b", []byte("pw"))}
	if !k.matches(&v, []byte("pw")) || k.matches(&v, []byte("pW")) {
		t.Fatal("matches disagrees with the HMAC")
	}
	if n := testing.AllocsPerRun(100, func() { k.matches(&v, []byte("pw")) }); n != 0 && !raceEnabled {
		t.Fatalf("a verifier check allocates %v times", n)
	}
}
