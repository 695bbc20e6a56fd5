package ban

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
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

func newList(t *testing.T, o Options) (*List, *clock.Fake) {
	t.Helper()
	clk, _ := o.Clock.(*clock.Fake)
	if clk == nil {
		clk = clock.NewFake(epoch)
		o.Clock = clk
	}
	o.Logger = quiet
	l, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	return l, clk
}

func mustAdd(t *testing.T, l *List, as Kind, who string, until time.Time) Ban {
	t.Helper()
	b, _, err := l.Add(Ban{As: as, Who: who, By: "admin", Reason: "test", Until: until})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

func TestMatchEachKind(t *testing.T) {
	l, _ := newList(t, Options{})
	if _, ok := l.Match("c", "u", ip("10.1.2.3"), epoch); ok {
		t.Fatal("an empty list matched")
	}
	mustAdd(t, l, ClientID, "dev-1", time.Time{})
	mustAdd(t, l, Username, "mallory", time.Time{})
	mustAdd(t, l, PeerHost, "192.0.2.7", time.Time{})
	mustAdd(t, l, PeerNet, "10.0.0.0/8", time.Time{})
	mustAdd(t, l, PeerNet, "2001:db8:bad::/48", time.Time{})
	tests := []struct {
		clientID, user, addr string
		want                 Kind // "" for no match
	}{
		{"dev-1", "", "", ClientID},
		{"dev-10", "", "", ""},
		{"x", "mallory", "198.51.100.1", Username},
		{"x", "Mallory", "198.51.100.1", ""}, // exact, case-sensitive, as MQTT names are
		{"x", "alice", "192.0.2.7", PeerHost},
		{"x", "alice", "192.0.2.8", ""},
		{"x", "alice", "::ffff:192.0.2.7", PeerHost}, // a mapped IPv4 address is the IPv4 address
		{"x", "alice", "10.255.0.1", PeerNet},
		{"x", "alice", "::ffff:10.0.0.1", PeerNet},
		{"x", "alice", "11.0.0.1", ""},
		{"x", "alice", "2001:db8:bad:1::2", PeerNet},
		{"x", "alice", "2001:db8:bae::1", ""},
		{"", "", "", ""},
	}
	for _, tt := range tests {
		var a netip.Addr
		if tt.addr != "" {
			a = ip(tt.addr)
		}
		b, ok := l.Match(tt.clientID, tt.user, a, epoch)
		if ok != (tt.want != "") || (ok && b.As != tt.want) {
			t.Errorf("Match(%q, %q, %s) = %+v, %v; want %q", tt.clientID, tt.user, tt.addr, b, ok, tt.want)
		}
	}
	// Revoked judges an identity by its user name, client id and address.
	for _, id := range []*auth.Identity{{User: "mallory"}, {User: "a", ClientID: "dev-1"}, {User: "a", Remote: ip("10.9.9.9")}} {
		if reason, ok := l.Revoked(id, epoch); !ok || reason != "banned" {
			t.Errorf("Revoked(%+v) = %q, %v", id, reason, ok)
		}
	}
	if _, ok := l.Revoked(&auth.Identity{User: "alice", ClientID: "ok", Remote: ip("203.0.113.1")}, epoch); ok {
		t.Error("a clean identity revoked")
	}
}

func TestValidationNamesTheField(t *testing.T) {
	l, _ := newList(t, Options{})
	for _, tt := range []struct {
		b     Ban
		field string
	}{
		{Ban{As: "ip", Who: "x"}, "as:"},
		{Ban{As: ClientID}, "who: empty"},
		{Ban{As: PeerHost, Who: "10.0.0.0/8"}, "who:"},
		{Ban{As: PeerHost, Who: "example.com"}, "who:"},
		{Ban{As: PeerNet, Who: "10.0.0.0/33"}, "who:"},
		{Ban{As: Username, Who: string([]byte{0xff})}, "who: not valid UTF-8"},
		{Ban{As: Username, Who: strings.Repeat("x", MaxWho+1)}, "who: longer"},
		{Ban{As: Username, Who: "u", Reason: strings.Repeat("r", MaxReason+1)}, "reason:"},
		{Ban{As: Username, Who: "u", Until: epoch}, "until:"},
		{Ban{As: Username, Who: "u", Until: epoch.Add(-time.Second)}, "until:"},
	} {
		_, _, err := l.Add(tt.b)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.field) {
			t.Errorf("Add(%+v): %v; want ErrInvalid naming %q", tt.b, err, tt.field)
		}
	}
	if l.Len() != 0 {
		t.Fatal("an invalid ban was added")
	}
}

// Addresses and ranges are kept in canonical form, so one range is one ban however written.
func TestCanonicalFormAndUpdate(t *testing.T) {
	l, _ := newList(t, Options{})
	b1 := mustAdd(t, l, PeerNet, "10.1.2.3/8", epoch.Add(time.Hour))
	if b1.Who != "10.0.0.0/8" || b1.By != "admin" || !b1.At.Equal(epoch) {
		t.Fatalf("ban %+v", b1)
	}
	b2, created, err := l.Add(Ban{As: PeerNet, Who: "::ffff:10.0.0.0/104", Until: epoch.Add(2 * time.Hour), Reason: "again"})
	if err != nil || created || b2.ID != b1.ID || b2.Reason != "again" || !b2.Until.Equal(epoch.Add(2*time.Hour)) {
		t.Fatalf("re-ban of the same range: %+v, created %v, %v", b2, created, err)
	}
	if l.Len() != 1 {
		t.Fatalf("%d bans", l.Len())
	}
	if b := mustAdd(t, l, PeerHost, "::ffff:192.0.2.1", time.Time{}); b.Who != "192.0.2.1" || !b.Until.Equal(epoch.Add(DefaultDuration)) {
		t.Fatalf("peerhost %+v", b)
	}
	if b := mustAdd(t, l, PeerNet, "2001:db8::1", time.Time{}); b.Who != "2001:db8::1/128" {
		t.Fatalf("peerhost_net of one address %+v", b)
	}
}

// A ban applies before its Until and not from then on, and leaves the list by itself.
func TestExpiry(t *testing.T) {
	l, clk := newList(t, Options{})
	b := mustAdd(t, l, ClientID, "dev", epoch.Add(time.Minute))
	if _, ok := l.Match("dev", "", netip.Addr{}, epoch.Add(time.Minute-time.Nanosecond)); !ok {
		t.Fatal("not in force just before Until")
	}
	if _, ok := l.Match("dev", "", netip.Addr{}, epoch.Add(time.Minute)); ok {
		t.Fatal("in force at Until")
	}
	clk.Advance(time.Minute)
	clk.Wait()
	if _, ok := l.Get(b.ID); ok || l.Len() != 0 {
		t.Fatal("an expired ban was not pruned")
	}
}

func TestDeleteAndList(t *testing.T) {
	l, clk := newList(t, Options{})
	a := mustAdd(t, l, Username, "a", time.Time{})
	clk.Advance(time.Second)
	b := mustAdd(t, l, PeerNet, "10.0.0.0/8", time.Time{})
	if got := l.List(); len(got) != 2 || got[0].ID != a.ID || got[1].ID != b.ID {
		t.Fatalf("List %+v", got)
	}
	if !l.Delete(b.ID) || l.Delete(b.ID) {
		t.Fatal("Delete")
	}
	if _, ok := l.Match("", "", ip("10.0.0.1"), clk.Now()); ok {
		t.Fatal("a deleted ban still matches")
	}
}

// MaxEntries bounds the list, and a full list refuses with ErrFull (the list prunes what has
// expired first: package expiring's test proves it).
func TestBounded(t *testing.T) {
	l, _ := newList(t, Options{MaxEntries: 2})
	mustAdd(t, l, ClientID, "a", time.Time{})
	mustAdd(t, l, PeerNet, "10.0.0.0/8", time.Time{})
	if _, _, err := l.Add(Ban{As: ClientID, Who: "x"}); !errors.Is(err, ErrFull) || !strings.Contains(err.Error(), "2 in force") {
		t.Fatalf("third ban: %v", err)
	}
	if _, created, err := l.Add(Ban{As: PeerNet, Who: "10.0.0.0/8", Reason: "again"}); err != nil || created {
		t.Fatalf("updating a ban in a full list: %v, created %v", err, created)
	}
}

func TestOnBanRunsAfterTheBanIsInForce(t *testing.T) {
	l, _ := newList(t, Options{})
	var mu sync.Mutex
	var seen []bool
	l.OnBan(func(b Ban) {
		_, ok := l.Match(b.Who, "", netip.Addr{}, epoch)
		mu.Lock()
		seen = append(seen, ok)
		mu.Unlock()
	})
	mustAdd(t, l, ClientID, "dev", time.Time{})
	if len(seen) != 1 || !seen[0] {
		t.Fatalf("hook saw %v", seen)
	}
}

// A ban is one JSON record under "bans", in the format earlier releases wrote and read. After a
// restart the list comes back from its records, ranges matching again; bans expired meanwhile are
// dropped, and a record not in canonical form is left in the store, unused.
func TestStoredFormatAndRestart(t *testing.T) {
	dir := t.TempDir()
	db := openStore(t, dir)
	clk := clock.NewFake(epoch)
	l, _ := newList(t, Options{Store: db, Clock: clk})
	keep := mustAdd(t, l, PeerNet, "2001:db8::/32", epoch.Add(time.Hour))
	gone := mustAdd(t, l, Username, "short", epoch.Add(time.Minute))
	want := `{"id":"` + keep.ID + `","as":"peerhost_net","who":"2001:db8::/32","by":"admin","reason":"test","at":"2026-05-06T07:08:09Z","until":"2026-05-06T08:08:09Z"}`
	if got := records(t, db)[keep.ID]; got != want {
		t.Fatalf("stored\n%s\nwant\n%s", got, want)
	}
	old := Ban{ID: "0123456789abcdef01234567", As: ClientID, Who: "dev-9", By: "ops", Reason: "old", At: epoch.Add(-time.Hour), Until: epoch.Add(time.Hour)}
	db.PutRecord(Namespace, old.ID, []byte(`{"id":"0123456789abcdef01234567","as":"clientid","who":"dev-9","by":"ops","reason":"old","at":"2026-05-06T06:08:09Z","until":"2026-05-06T08:08:09Z"}`))
	db.PutRecord(Namespace, "odd", []byte(`{"id":"odd","as":"peerhost","who":"::ffff:192.0.2.1","until":"2030-01-01T00:00:00Z"}`))
	l.Close()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	clk.Set(epoch.Add(time.Minute)) // "short" ends now
	db = openStore(t, dir)
	defer db.Close()
	l2, _ := newList(t, Options{Store: db, Clock: clk})
	if got := l2.List(); len(got) != 2 || got[0] != old || got[1] != keep {
		t.Fatalf("after restart %+v, want %+v and %+v", got, old, keep)
	}
	if _, ok := l2.Match("", "", ip("2001:db8:1::1"), clk.Now()); !ok {
		t.Fatal("a reloaded range does not match")
	}
	if _, ok := l2.Match("", "", ip("192.0.2.1"), clk.Now()); ok {
		t.Fatal("a record not in canonical form was loaded")
	}
	if got := records(t, db); len(got) != 3 || got[gone.ID] != "" || got["odd"] == "" {
		t.Fatalf("store holds %v: want the expired ban gone and the odd record left", got)
	}
}

// The hot path allocates nothing when nothing matches.
func TestMatchAllocatesNothing(t *testing.T) {
	l, _ := newList(t, Options{})
	mustAdd(t, l, ClientID, "dev-1", time.Time{})
	mustAdd(t, l, PeerNet, "10.0.0.0/8", time.Time{})
	a := ip("192.0.2.1")
	if n := testing.AllocsPerRun(1000, func() { l.Banned("dev-2", "alice", a, epoch) }); n != 0 {
		t.Errorf("%v allocations", n)
	}
}

// Match reads snapshots that Add and Delete never change (run with -race).
func TestMatchDuringChanges(t *testing.T) {
	l, _ := newList(t, Options{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 200 {
				b := mustAdd(t, l, PeerNet, fmt.Sprintf("10.%d.%d.0/24", w, i%20), time.Time{})
				if i%3 == 0 {
					l.Delete(b.ID)
				}
			}
		})
	}
	for r := range 4 {
		wg.Go(func() {
			for i := range 2000 {
				l.Match("c", "u", ip(fmt.Sprintf("10.%d.%d.1", r, i%20)), epoch)
			}
		})
	}
	wg.Wait()
}

func openStore(t *testing.T, dir string) *store.DB {
	t.Helper()
	db, err := store.Open(dir, store.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// records returns the list's records in db, once they are durable.
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
