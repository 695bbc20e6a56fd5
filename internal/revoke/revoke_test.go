package revoke

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/turnstilemq/turnstile/internal/auth"
	"github.com/turnstilemq/turnstile/internal/clock"
	"github.com/turnstilemq/turnstile/internal/store"
)

var epoch = time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func newSet(t *testing.T, o Options) (*Set, *clock.Fake) {
	t.Helper()
	clk := clock.NewFake(epoch)
	if o.Clock == nil {
		o.Clock = clk
	} else {
		clk = o.Clock.(*clock.Fake)
	}
	o.Logger = quiet
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s, clk
}

// jwtIdent is an identity with one JWT credential.
func jwtIdent(sub, iss, jti, kid string) *auth.Identity {
	return &auth.Identity{
		User: sub, Subject: sub, Issuer: iss, Method: "oauth",
		Creds: []auth.CredentialRef{{Kind: "jwt", ID: jti, KeyID: kid, Subject: sub, Expiry: epoch.Add(time.Hour)}},
	}
}

func mustAdd(t *testing.T, s *Set, by By, value string, until time.Time) Revocation {
	t.Helper()
	r, err := s.Add(by, value, until)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func mustSub(t *testing.T, s *Set, sub, issuer string, until time.Time) Revocation {
	t.Helper()
	r, err := s.AddSubject(sub, issuer, until)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRevokedByJTIKidAndSubject(t *testing.T) {
	s, clk := newSet(t, Options{})
	now := clk.Now()
	alice := jwtIdent("alice", "https://idp-a", "tok-1", "key-1")
	bob := jwtIdent("bob", "https://idp-b", "tok-2", "key-2")
	local := &auth.Identity{User: "carol", Subject: "u-3", Issuer: auth.IssuerLocal}
	if _, ok := s.Revoked(alice, now); ok {
		t.Fatal("revoked in an empty set")
	}

	rj := mustAdd(t, s, ByJTI, "tok-1", now.Add(time.Hour))
	if r, ok := s.Revoked(alice, now); !ok || r.ID != rj.ID {
		t.Fatalf("jti: %+v %v", r, ok)
	}
	if _, ok := s.Revoked(bob, now); ok {
		t.Fatal("bob revoked by alice's jti")
	}
	// In force through Until, not after.
	if _, ok := s.Revoked(alice, now.Add(time.Hour)); !ok {
		t.Fatal("not in force at Until")
	}
	if _, ok := s.Revoked(alice, now.Add(time.Hour+time.Nanosecond)); ok {
		t.Fatal("in force after Until")
	}
	// Judged at an earlier instant (a will earned before the revocation): still revoked.
	if _, ok := s.Revoked(alice, now.Add(-time.Hour)); !ok {
		t.Fatal("a will earned before the revocation escaped it")
	}

	mustAdd(t, s, ByKeyID, "key-2", time.Time{})
	if r, ok := s.Revoked(bob, now); !ok || r.By != ByKeyID || !r.Until.Equal(now.Add(DefaultMaxTokenLifetime)) {
		t.Fatalf("kid: %+v %v", r, ok)
	}

	// Subject of one issuer, then of any issuer.
	carl := jwtIdent("carl", "https://idp-a", "tok-3", "key-9")
	carlB := jwtIdent("carl", "https://idp-b", "tok-4", "key-9")
	mustSub(t, s, "carl", "https://idp-b", time.Time{})
	if _, ok := s.Revoked(carl, now); ok {
		t.Fatal("carl of idp-a revoked by a revocation for idp-b")
	}
	if _, ok := s.Revoked(carlB, now); !ok {
		t.Fatal("carl of idp-b not revoked")
	}
	mustAdd(t, s, BySubject, "carl", time.Time{})
	if _, ok := s.Revoked(carl, now); !ok {
		t.Fatal("a subject revocation of any issuer missed carl of idp-a")
	}
	if s.Len() != 4 {
		t.Fatalf("%d entries, want 4 (sub of idp-b and of any issuer are two)", s.Len())
	}

	// An identity without credentials is never revoked here.
	mustAdd(t, s, BySubject, "u-3", time.Time{})
	if _, ok := s.Revoked(local, now); ok {
		t.Fatal("a local user was revoked")
	}
}

func TestAddValidatesAndDeduplicates(t *testing.T) {
	s, clk := newSet(t, Options{MaxTokenLifetime: time.Hour})
	now := clk.Now()
	for _, tt := range []struct {
		by    By
		value string
		until time.Time
		field string
	}{
		{"email", "x", time.Time{}, "by"},
		{ByJTI, "", time.Time{}, "jti"},
		{ByKeyID, strings.Repeat("k", 2000), time.Time{}, "kid"},
		{ByJTI, "t", now, "until"},
		{ByJTI, "t", now.Add(-time.Second), "until"},
	} {
		_, err := s.Add(tt.by, tt.value, tt.until)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), ": "+tt.field+": ") {
			t.Errorf("Add(%q, %.10q, %v) = %v, want ErrInvalid naming %s", tt.by, tt.value, tt.until, err, tt.field)
		}
	}
	if s.Len() != 0 {
		t.Fatal("a refused Add changed the set")
	}
	a := mustAdd(t, s, ByJTI, "t", now.Add(10*time.Minute))
	if !a.Until.Equal(now.Add(10*time.Minute)) || !a.Created.Equal(now) || len(a.ID) != 24 {
		t.Fatalf("entry %+v", a)
	}
	clk.Advance(time.Minute)
	b := mustAdd(t, s, ByJTI, "t", time.Time{}) // default: now + 1 h, later than 10 min
	if b.ID != a.ID || !b.Created.Equal(a.Created) || !b.Until.Equal(clk.Now().Add(time.Hour)) || s.Len() != 1 {
		t.Fatalf("re-add: %+v (first %+v)", b, a)
	}
	c := mustAdd(t, s, ByJTI, "t", clk.Now().Add(time.Minute)) // never shortened by a re-add
	if !c.Until.Equal(b.Until) {
		t.Fatalf("re-add shortened Until to %v", c.Until)
	}
	if g, ok := s.Get(a.ID); !ok || g != c {
		t.Fatalf("Get = %+v %v", g, ok)
	}
	if !s.Delete(a.ID) || s.Delete(a.ID) {
		t.Fatal("Delete did not report the removal once")
	}
	if _, ok := s.Revoked(jwtIdent("s", "i", "t", "k"), clk.Now()); ok {
		t.Fatal("revoked after Delete")
	}
}

func TestPrunedAfterUntil(t *testing.T) {
	s, clk := newSet(t, Options{})
	now := clk.Now()
	mustAdd(t, s, ByJTI, "short", now.Add(time.Minute))
	mustAdd(t, s, ByJTI, "long", now.Add(time.Hour))
	clk.Advance(time.Minute)
	clk.Wait()
	if s.Len() != 2 {
		t.Fatal("pruned at Until: it is in force through it")
	}
	clk.Advance(time.Nanosecond)
	clk.Wait()
	if s.Len() != 1 {
		t.Fatalf("%d entries after the first Until", s.Len())
	}
	clk.Advance(time.Hour)
	clk.Wait()
	if s.Len() != 0 || clk.Pending() != 0 {
		t.Fatalf("%d entries, %d timers after the last Until", s.Len(), clk.Pending())
	}
	// Prune by hand too.
	mustAdd(t, s, ByKeyID, "k", clk.Now().Add(time.Second))
	if n := s.Prune(clk.Now().Add(2 * time.Second)); n != 1 || s.Len() != 0 {
		t.Fatalf("Prune removed %d", n)
	}
}

// OnRevoke runs after the revocation is in force: a hook that looks finds it.
func TestOnRevoke(t *testing.T) {
	s, clk := newSet(t, Options{})
	victim := jwtIdent("alice", "iss", "tok-1", "key-1")
	var got []Revocation
	s.OnRevoke(func(r Revocation) {
		if _, ok := s.Revoked(victim, clk.Now()); !ok {
			t.Error("hook ran before the revocation was in force")
		}
		got = append(got, r)
	})
	r := mustAdd(t, s, ByKeyID, "key-1", time.Time{})
	if len(got) != 1 || got[0] != r {
		t.Fatalf("hook got %+v", got)
	}
}

// MaxEntries bounds the set, and a full set refuses with ErrFull (the set prunes what has ended
// first: package expiring's test proves it); re-adding needs no room.
func TestBounded(t *testing.T) {
	s, _ := newSet(t, Options{MaxEntries: 2})
	mustAdd(t, s, ByJTI, "0", time.Time{})
	mustSub(t, s, "alice", "https://idp", time.Time{})
	if _, err := s.Add(ByJTI, "x", time.Time{}); !errors.Is(err, ErrFull) || !strings.Contains(err.Error(), "2 in force") {
		t.Fatalf("third: %v", err)
	}
	mustAdd(t, s, ByJTI, "0", time.Time{})
	mustSub(t, s, "alice", "https://idp", time.Time{})
}

// A revocation is one JSON record under "revocations", in the format earlier releases wrote and
// read; it names the token by its ids, never holds it. After a restart the set comes back from
// its records, each index with it; ended and deleted entries are gone from the store.
func TestStoredFormatAndRestart(t *testing.T) {
	dir := t.TempDir()
	clk := clock.NewFake(epoch)
	db := openStore(t, dir)
	s, _ := newSet(t, Options{Store: db, Clock: clk})
	j := mustAdd(t, s, ByJTI, "tok-1", epoch.Add(time.Minute))
	k := mustAdd(t, s, ByKeyID, "key-1", time.Time{})
	clk.Advance(time.Second) // List is oldest first
	sub := mustSub(t, s, "alice", "https://idp", time.Time{})
	gone := mustAdd(t, s, ByJTI, "tok-2", time.Time{})
	s.Delete(gone.ID)
	want := `{"id":"` + sub.ID + `","by":"sub","value":"alice","issuer":"https://idp","created":"2026-05-06T07:08:10Z","until":"2026-05-07T07:08:10Z"}`
	if got := records(t, db)[sub.ID]; got != want {
		t.Fatalf("stored\n%s\nwant\n%s", got, want)
	}
	old := Revocation{ID: "0123456789abcdef01234567", By: ByJTI, Value: "tok-9", Created: epoch.Add(-time.Hour), Until: epoch.Add(time.Hour)}
	db.PutRecord(Namespace, old.ID, []byte(`{"id":"0123456789abcdef01234567","by":"jti","value":"tok-9","created":"2026-05-06T06:08:09Z","until":"2026-05-06T08:08:09Z"}`))
	s.Close()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = openStore(t, dir)
	defer db.Close()
	clk.Set(j.Until.Add(time.Nanosecond)) // tok-1's revocation has just ended
	s2, _ := newSet(t, Options{Store: db, Clock: clk})
	if got := s2.List(); len(got) != 3 || got[0] != old || got[1] != k || got[2] != sub {
		t.Fatalf("loaded %+v, want %+v, %+v and %+v", got, old, k, sub)
	}
	for _, id := range []*auth.Identity{jwtIdent("alice", "https://idp", "t", "k"), jwtIdent("s", "i", "t", "key-1"), jwtIdent("s", "i", "tok-9", "k")} {
		if _, ok := s2.Revoked(id, clk.Now()); !ok {
			t.Errorf("a loaded revocation does not apply to %+v", id.Creds[0])
		}
	}
	got := records(t, db)
	if len(got) != 3 || got[j.ID] != "" || got[gone.ID] != "" {
		t.Fatalf("store holds %v: the ended and the deleted entries must be gone", got)
	}
	for key, val := range got {
		if strings.Contains(val, "eyJ") {
			t.Errorf("record %s holds token material", key)
		}
	}
}

// Revoked reads snapshots that Add and Delete never change, a subject's list of issuers included
// (run with -race).
func TestConcurrent(t *testing.T) {
	s, clk := newSet(t, Options{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 200 {
				r, err := s.Add(ByJTI, fmt.Sprint(w, "-", i%20), time.Time{})
				if err != nil {
					t.Error(err)
					return
				}
				if i%3 == 0 {
					s.Delete(r.ID)
				}
				if r, err = s.AddSubject("shared", fmt.Sprint("iss-", w, "-", i%5), time.Time{}); err == nil && i%2 == 0 {
					s.Delete(r.ID)
				}
				_ = s.List()
			}
		})
	}
	for r := range 8 {
		wg.Go(func() {
			id := jwtIdent("s", "i", fmt.Sprint(r%4, "-", 5), "k")
			other := jwtIdent("shared", "iss-none", "t", "k")
			for range 5000 {
				_, _ = s.Revoked(id, clk.Now())
				_, _ = s.Revoked(other, clk.Now())
			}
		})
	}
	wg.Wait()
}

func TestRevokedAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	s, clk := newSet(t, Options{})
	mustAdd(t, s, ByJTI, "other", time.Time{})
	local := &auth.Identity{User: "u"}
	id := jwtIdent("s", "i", "tok", "key")
	for name, x := range map[string]*auth.Identity{"no creds": local, "no match": id} {
		if n := testing.AllocsPerRun(1000, func() { s.Revoked(x, clk.Now()) }); n != 0 {
			t.Errorf("%s: %v allocations", name, n)
		}
	}
}

func openStore(t *testing.T, dir string) *store.DB {
	t.Helper()
	db, err := store.Open(dir, store.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// records returns the set's records in db, once they are durable.
func records(t *testing.T, db *store.DB) map[string]string {
	t.Helper()
	if err := db.Sync(); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	if err := db.LoadRecords(Namespace, func(key string, val []byte) error { out[key] = string(val); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

func BenchmarkRevoked(b *testing.B) {
	clk := clock.NewFake(epoch)
	s, err := New(Options{Clock: clk, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	for i := range 1000 {
		if _, err := s.Add(ByJTI, fmt.Sprint("tok-", i), time.Time{}); err != nil {
			b.Fatal(err)
		}
	}
	id := jwtIdent("s", "i", "tok-x", "key")
	local := &auth.Identity{User: "u"}
	now := clk.Now()
	b.Run("jwt", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			s.Revoked(id, now)
		}
	})
	b.Run("no creds", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			s.Revoked(local, now)
		}
	})
}
