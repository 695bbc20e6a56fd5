package expiring

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/turnstilemq/turnstile/internal/clock"
	"github.com/turnstilemq/turnstile/internal/store"
)

var t0 = time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)

// entry is a test entry: one per name, in force before Until.
type entry struct {
	ID    string    `json:"id"`
	Name  string    `json:"name"`
	At    time.Time `json:"at"`
	Until time.Time `json:"until"`
}

// names indexes the entries by name.
type names struct{ byName map[string]*entry }

func newNames() *names                  { return &names{byName: map[string]*entry{}} }
func (x *names) Clone() *names          { return &names{byName: maps.Clone(x.byName)} }
func (x *names) Add(e *entry)           { x.byName[e.Name] = e }
func (x *names) lookup(n string) *entry { return x.byName[n] }
func (x *names) Remove(e *entry) {
	if x.byName[e.Name] == e {
		delete(x.byName, e.Name)
	}
}

var errTooMany = errors.New("test: too many entries")

func options(clk clock.Clock, db store.Records, logger *slog.Logger) Options[entry] {
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return Options[entry]{
		Namespace: "test",
		Store:     db,
		Max:       100,
		ErrFull:   errTooMany,
		Clock:     clk,
		Logger:    logger,
		ID:        func(e *entry) string { return e.ID },
		End:       func(e *entry) time.Time { return e.Until },
		Compare:   func(a, b *entry) int { return cmp.Or(a.At.Compare(b.At), cmp.Compare(a.ID, b.ID)) },
		Check: func(e *entry) error {
			if e.Name == "" {
				return errors.New("name: empty")
			}
			return nil
		},
	}
}

func newSet(t testing.TB, o Options[entry]) *Set[entry, *names] {
	t.Helper()
	s, err := New(o, newNames())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func openStore(t *testing.T, dir string) *store.DB {
	t.Helper()
	db, err := store.Open(dir, store.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// put adds (or replaces) the entry for name, ending at until.
func put(t testing.TB, s *Set[entry, *names], now time.Time, name string, until time.Time) (entry, bool) {
	t.Helper()
	e, created, err := s.Add(now,
		func(x *names) *entry { return x.lookup(name) },
		func(_ *entry, id string) *entry { return &entry{ID: id, Name: name, At: now, Until: until} })
	if err != nil {
		t.Fatal(err)
	}
	return e, created
}

func TestNewNamesTheMissingOption(t *testing.T) {
	db := openStore(t, t.TempDir())
	defer db.Close()
	for field, mutate := range map[string]func(*Options[entry]){
		"ID":        func(o *Options[entry]) { o.ID = nil },
		"End":       func(o *Options[entry]) { o.End = nil },
		"Compare":   func(o *Options[entry]) { o.Compare = nil },
		"Max":       func(o *Options[entry]) { o.Max = 0 },
		"Namespace": func(o *Options[entry]) { o.Namespace = "" },
	} {
		o := options(nil, db, nil)
		mutate(&o)
		if _, err := New(o, newNames()); err == nil || !strings.Contains(err.Error(), field+":") {
			t.Errorf("without %s: %v", field, err)
		}
	}
}

// An entry is in force before its End and is pruned by the timer when End comes; the timer
// is re-armed for the next End, moved when the earliest entry goes early, and stopped when the
// set is empty.
func TestPrunedOnTheClockAtEnd(t *testing.T) {
	clk := clock.NewFake(t0)
	s := newSet(t, options(clk, nil, nil))
	gone, _ := put(t, s, t0, "c", t0.Add(30*time.Second))
	if !s.Delete(gone.ID) || s.Delete(gone.ID) {
		t.Fatal("Delete did not report the removal once")
	}
	if clk.Pending() != 0 {
		t.Fatal("the timer outlived the last entry")
	}
	a, _ := put(t, s, t0, "a", t0.Add(time.Minute))
	put(t, s, t0, "b", t0.Add(time.Hour))
	clk.Advance(time.Minute - time.Nanosecond)
	clk.Wait()
	if s.Len() != 2 || s.Load().Index.lookup("a") == nil {
		t.Fatalf("pruned before End: %d entries", s.Len())
	}
	clk.Advance(time.Nanosecond)
	clk.Wait()
	if _, ok := s.Get(a.ID); ok || s.Len() != 1 || s.Load().Index.lookup("a") != nil {
		t.Fatal("not pruned at End, or still indexed")
	}
	if clk.Pending() != 1 {
		t.Fatalf("%d timers pending, want 1 for b", clk.Pending())
	}
	clk.Advance(time.Hour)
	clk.Wait()
	if s.Len() != 0 || clk.Pending() != 0 {
		t.Fatalf("%d entries, %d timers after the last End", s.Len(), clk.Pending())
	}
	// By hand, and after Close (no timer then).
	s.Close()
	put(t, s, clk.Now(), "d", clk.Now().Add(time.Second))
	if clk.Pending() != 0 {
		t.Fatal("a closed set armed a timer")
	}
	if n := s.Prune(clk.Now().Add(time.Second)); n != 1 || s.Len() != 0 {
		t.Fatalf("Prune removed %d", n)
	}
}

// Adding under a name that is there replaces the entry and keeps its id; the hooks run after the
// entry is in force, outside the lock (they may read and even change the set).
func TestAddReplacesAndRunsHooks(t *testing.T) {
	clk := clock.NewFake(t0)
	s := newSet(t, options(clk, nil, nil))
	var seen []entry
	s.OnAdd(func(e entry) {
		if got := s.Load().Index.lookup(e.Name); got == nil || *got != e {
			t.Errorf("hook ran before %+v was in force", e)
		}
		seen = append(seen, e)
		_ = s.List() // the lock is not held
	})
	first, created := put(t, s, t0, "a", t0.Add(time.Minute))
	if !created || len(first.ID) != 24 {
		t.Fatalf("first Add: %+v, created %v", first, created)
	}
	var replaced *entry
	second, created, err := s.Add(t0.Add(time.Second),
		func(x *names) *entry { return x.lookup("a") },
		func(old *entry, id string) *entry {
			replaced = old
			return &entry{ID: id, Name: "a", At: old.At, Until: t0.Add(time.Hour)}
		})
	if err != nil || created || second.ID != first.ID || replaced == nil || *replaced != first {
		t.Fatalf("replacing: %+v, created %v, %v; build got %+v", second, created, err, replaced)
	}
	if got := s.List(); s.Len() != 1 || len(got) != 1 || got[0] != second {
		t.Fatalf("after replacing: %+v", got)
	}
	if len(seen) != 2 || seen[0] != first || seen[1] != second {
		t.Fatalf("hooks saw %+v", seen)
	}
}

func TestListOrder(t *testing.T) {
	clk := clock.NewFake(t0)
	s := newSet(t, options(clk, nil, nil))
	var want []entry
	for i := range 5 {
		e, _ := put(t, s, t0.Add(time.Duration(5-i)*time.Second), fmt.Sprint(i), t0.Add(time.Hour))
		want = append([]entry{e}, want...)
	}
	if got := s.List(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("List %+v, want %+v", got, want)
	}
}

// The bound counts entries held; a full set prunes what has ended before it refuses, and a
// replacement needs no room.
func TestBound(t *testing.T) {
	clk := clock.NewFake(t0)
	o := options(clk, nil, nil)
	o.Max = 3
	s := newSet(t, o)
	for i := range 3 {
		put(t, s, t0, fmt.Sprint(i), t0.Add(time.Duration(i+1)*time.Minute))
	}
	_, _, err := s.Add(t0, func(*names) *entry { return nil }, func(_ *entry, id string) *entry {
		t.Error("build called for a refused entry")
		return &entry{ID: id}
	})
	if !errors.Is(err, errTooMany) || !strings.Contains(err.Error(), "3 in force") {
		t.Fatalf("fourth: %v", err)
	}
	put(t, s, t0, "0", t0.Add(time.Hour)) // replacing needs no room
	clk.Hold()                            // the timer does not prune: Add must
	clk.Advance(2 * time.Minute)          // "1" has ended
	if _, created := put(t, s, clk.Now(), "x", clk.Now().Add(time.Hour)); !created || s.Len() != 3 || s.Load().Index.lookup("1") != nil {
		t.Fatalf("after one ended: %d entries", s.Len())
	}
	clk.Release()
	clk.Wait()

	// Without an error of the owner's, ErrFull.
	o.ErrFull = nil
	o.Max = 1
	s2 := newSet(t, o)
	put(t, s2, t0, "a", t0.Add(time.Hour))
	if _, _, err := s2.Add(t0, func(*names) *entry { return nil }, func(*entry, string) *entry { return nil }); !errors.Is(err, ErrFull) {
		t.Fatalf("full: %v", err)
	}
}

// The set survives a reopen of the store: entries in force come back with their indexes, ended
// and deleted ones do not, and the ended are deleted from the store as they load; records that
// do not decode, whose id is not their key, or that Check refuses are logged and left alone.
func TestPersistenceAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	clk := clock.NewFake(t0)
	db := openStore(t, dir)
	s := newSet(t, options(clk, db, nil))
	keep1, _ := put(t, s, t0, "keep1", t0.Add(time.Hour))
	ends, _ := put(t, s, t0, "ends", t0.Add(time.Minute))
	deleted, _ := put(t, s, t0, "deleted", t0.Add(time.Hour))
	s.Delete(deleted.ID)
	put(t, s, t0.Add(time.Second), "keep2", t0.Add(time.Hour))
	keep2, _ := put(t, s, t0.Add(time.Second), "keep2", t0.Add(2*time.Hour)) // replaced in the store too
	db.PutRecord("test", "garbage", []byte("{not json"))
	db.PutRecord("test", "other-key", []byte(`{"id":"not-other-key","name":"x","until":"2100-01-01T00:00:00Z"}`))
	db.PutRecord("test", "nameless", []byte(`{"id":"nameless","until":"2100-01-01T00:00:00Z"}`))
	s.Close()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	clk.Set(t0.Add(time.Minute)) // "ends" has ended meanwhile, just now
	db = openStore(t, dir)
	defer db.Close()
	var logged bytes.Buffer
	s2 := newSet(t, options(clk, db, slog.New(slog.NewTextHandler(&logged, nil))))
	if got := s2.List(); len(got) != 2 || got[0] != keep1 || got[1] != keep2 {
		t.Fatalf("loaded %+v, want %+v and %+v", got, keep1, keep2)
	}
	if e := s2.Load().Index.lookup("keep2"); e == nil || *e != keep2 {
		t.Fatalf("index after reopen: %+v", e)
	}
	for _, key := range []string{"garbage", "other-key", "nameless"} {
		if !strings.Contains(logged.String(), "key="+key) {
			t.Errorf("bad record %s not logged:\n%s", key, logged.String())
		}
	}
	if err := db.Sync(); err != nil {
		t.Fatal(err)
	}
	stored := map[string]string{}
	if err := db.LoadRecords("test", func(key string, val []byte) error {
		stored[key] = string(val)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{keep1.ID: true, keep2.ID: true, "garbage": true, "other-key": true, "nameless": true}
	if len(stored) != len(want) {
		t.Fatalf("store holds %v, want the keys %v (ended and deleted entries gone, bad ones left)", stored, want)
	}
	for key := range want {
		if _, ok := stored[key]; !ok {
			t.Errorf("%s missing from the store", key)
		}
	}
	// A record is the entry as JSON.
	if b, _ := json.Marshal(keep2); stored[keep2.ID] != string(b) {
		t.Errorf("record %s, want %s", stored[keep2.ID], b)
	}
	if _, ok := stored[ends.ID]; ok {
		t.Error("an ended entry was left in the store")
	}
}

// Readers on the atomic snapshot see a consistent state while writers add, replace, delete and
// prune: every snapshot's index has exactly the entries of its id map (run with -race).
func TestConcurrentReadersDuringWrites(t *testing.T) {
	clk := clock.NewFake(t0)
	s := newSet(t, options(clk, nil, nil))
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range 4 {
		wg.Go(func() {
			for i := range 200 {
				now := clk.Now()
				e, _ := put(t, s, now, fmt.Sprint(w, "-", i%25), now.Add(time.Duration(1+i%7)*time.Second))
				switch i % 5 {
				case 0:
					s.Delete(e.ID)
				case 1:
					clk.Advance(time.Second)
				}
				_ = s.List()
			}
		})
	}
	var readers sync.WaitGroup
	for r := range 8 {
		readers.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				snap := s.Load()
				if n := len(snap.Index.byName); n != snap.Len() {
					t.Errorf("a snapshot indexes %d entries and holds %d", n, snap.Len())
					return
				}
				if e := snap.Index.lookup(fmt.Sprint(r%4, "-", 3)); e != nil && snap.byID[e.ID] != e {
					t.Error("an indexed entry is not in its snapshot")
					return
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	clk.Wait()
}

func TestLoadAllocatesNothing(t *testing.T) {
	s := newSet(t, options(clock.NewFake(t0), nil, nil))
	put(t, s, t0, "a", t0.Add(time.Hour))
	if n := testing.AllocsPerRun(1000, func() {
		if snap := s.Load(); snap.Len() == 0 || snap.Index.lookup("b") != nil {
			t.Fatal("lookup")
		}
	}); n != 0 {
		t.Errorf("%v allocations", n)
	}
}
