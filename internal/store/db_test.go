package store

import (
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/turnstilemq/turnstile/internal/logbuf"
)

func testLogger(lb *logbuf.Buffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func openTest(t testing.TB, dir string, mode Fsync) (*DB, *logbuf.Buffer) {
	t.Helper()
	lb := &logbuf.Buffer{}
	s, err := Open(dir, Options{Fsync: mode, Interval: 10 * time.Millisecond, Logger: testLogger(lb)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil && !errors.Is(err, ErrClosed) {
			t.Errorf("close: %v", err)
		}
		if t.Failed() {
			t.Logf("store log:\n%s", lb.String())
		}
	})
	return s, lb
}

// wait blocks until t is durable.
func wait(t testing.TB, s Store, tk Ticket) {
	t.Helper()
	done := make(chan struct{})
	s.Notify(tk, func() { close(done) })
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("ticket %d not durable after 10s", tk)
	}
	if !s.Durable(tk) {
		t.Fatalf("Notify(%d) fired but Durable is false", tk)
	}
}

func loadAllSessions(t testing.TB, s Store) []SessionRecord {
	t.Helper()
	var out []SessionRecord
	if err := s.LoadSessions(func(r *SessionRecord) error { out = append(out, *r); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

func loadQueue(t testing.TB, s Store, vhost, clientID string, after uint64, limit int) []QueueEntry {
	t.Helper()
	var out []QueueEntry
	if err := s.LoadQueue(vhost, clientID, after, limit, func(e *QueueEntry) error { out = append(out, *e); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

func seqs(es []QueueEntry) []uint64 {
	var out []uint64
	for _, e := range es {
		out = append(out, e.Seq)
	}
	return out
}

func TestStoreRoundTripAndReopen(t *testing.T) {
	dir := t.TempDir()
	s, _ := openTest(t, dir, FsyncAlways)
	var sessions []SessionRecord
	for i, c := range sessionCases {
		r := c.r
		r.Vhost, r.ClientID = "vh", fmt.Sprintf("client-%d", i)
		sessions = append(sessions, r)
		s.PutSession(&r)
	}
	entries := map[uint64]QueueEntry{}
	for i, e := range queueCases {
		e.Seq = uint64(i + 1)
		entries[e.Seq] = e
		s.PutQueueEntry("vh", "client-1", &e)
	}
	for i, m := range messageCases {
		s.PutMessage(uint64(100+i), &m)
	}
	retained := messageCases[2]
	s.PutRetained("vh", &retained)
	s.PutRetained("other", &MessageRecord{Topic: "x"})
	s.PutInbound("vh", "client-1", 65535)
	tk := s.PutInbound("vh", "client-1", 7)

	check := func(s *DB) {
		t.Helper()
		if got := loadAllSessions(t, s); !reflect.DeepEqual(got, sessions) {
			t.Fatalf("sessions:\n got %+v\nwant %+v", got, sessions)
		}
		got := loadQueue(t, s, "vh", "client-1", 0, 0)
		if len(got) != len(entries) {
			t.Fatalf("queue: %d entries, want %d", len(got), len(entries))
		}
		for _, e := range got {
			if !reflect.DeepEqual(e, entries[e.Seq]) {
				t.Fatalf("queue entry %d: got %+v want %+v", e.Seq, e, entries[e.Seq])
			}
		}
		for i, m := range messageCases {
			got, err := s.LoadMessage(uint64(100 + i))
			if err != nil || !reflect.DeepEqual(*got, m) {
				t.Fatalf("message %d: %v %+v", i, err, got)
			}
		}
		var rv []string
		var rm []MessageRecord
		if err := s.LoadRetained(func(v string, m *MessageRecord) error { rv = append(rv, v); rm = append(rm, *m); return nil }); err != nil {
			t.Fatal(err)
		}
		// Ordered by vhost, length first ("vh" before "other").
		if !reflect.DeepEqual(rv, []string{"vh", "other"}) || !reflect.DeepEqual(rm[0], retained) || rm[1].Topic != "x" {
			t.Fatalf("retained: vhosts %v, topics %q %q", rv, rm[0].Topic, rm[1].Topic)
		}
		pids, err := s.LoadInbound("vh", "client-1")
		if err != nil || !reflect.DeepEqual(pids, []uint16{7, 65535}) {
			t.Fatalf("inbound: %v %v", pids, err)
		}
		if id, err := s.MaxMessageID(); err != nil || id != uint64(100+len(messageCases)-1) {
			t.Fatalf("MaxMessageID = %d, %v", id, err)
		}
	}
	// Reads see what was written before them, committed or not yet.
	check(s)
	if !s.Durable(tk) {
		t.Fatal("a read returned before the writes it saw were durable")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, _ := openTest(t, dir, FsyncInterval)
	check(s2)

	// Replace and delete.
	s2.DeleteRetained("vh", retained.Topic)
	s2.DeleteInbound("vh", "client-1", 7)
	s2.DeleteMessage(100)
	s2.DeleteQueueEntry("vh", "client-1", 2)
	r := sessions[0]
	r.Version = 4
	s2.PutSession(&r)
	if _, err := s2.LoadMessage(100); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted message: %v", err)
	}
	if got := seqs(loadQueue(t, s2, "vh", "client-1", 0, 0)); !reflect.DeepEqual(got, []uint64{1, 3, 4}) {
		t.Fatalf("queue after delete: %v", got)
	}
	if pids, _ := s2.LoadInbound("vh", "client-1"); !reflect.DeepEqual(pids, []uint16{65535}) {
		t.Fatalf("inbound after delete: %v", pids)
	}
	if got := loadAllSessions(t, s2); got[0].Version != 4 || len(got) != len(sessions) {
		t.Fatalf("replaced session: %+v", got[0])
	}
	n := 0
	_ = s2.LoadRetained(func(string, *MessageRecord) error { n++; return nil })
	if n != 1 {
		t.Fatalf("%d retained after delete, want 1", n)
	}
}

// 100 goroutines × 100 mutations: every Notify fires exactly once, callbacks run by the
// committer run in ticket order, and far fewer commits than mutations happen.
func TestGroupCommit(t *testing.T) {
	for _, mode := range []Fsync{FsyncAlways, FsyncInterval} {
		t.Run(mode.String(), func(t *testing.T) {
			s, _ := openTest(t, t.TempDir(), mode)
			const writers, each = 100, 100
			var (
				mu       sync.Mutex
				fired    = make(map[[2]int]int)
				order    []Ticket // tickets of callbacks run by the committer, in run order
				notDur   atomic.Int32
				all      sync.WaitGroup
				maxIssue atomic.Uint64
			)
			all.Add(writers * each)
			for g := range writers {
				go func() {
					cid := fmt.Sprintf("c%d", g)
					for i := range each {
						var tk Ticket
						if i%10 == 9 {
							tk = s.PutMessage(uint64(g*each+i), &MessageRecord{Topic: cid, Payload: []byte("p")})
						} else {
							tk = s.PutQueueEntry("v", cid, &QueueEntry{Seq: uint64(i + 1), MsgID: uint64(g*each + i)})
						}
						for {
							m := maxIssue.Load()
							if uint64(tk) <= m || maxIssue.CompareAndSwap(m, uint64(tk)) {
								break
							}
						}
						var returned atomic.Bool
						key := [2]int{g, i}
						s.Notify(tk, func() {
							if !s.Durable(tk) {
								notDur.Add(1)
							}
							mu.Lock()
							fired[key]++
							if returned.Load() { // run by the committer, not inline
								order = append(order, tk)
							}
							mu.Unlock()
							all.Done()
						})
						returned.Store(true)
					}
				}()
			}
			done := make(chan struct{})
			go func() { all.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(15 * time.Second):
				t.Fatal("not every Notify fired")
			}
			mu.Lock()
			defer mu.Unlock()
			if len(fired) != writers*each {
				t.Fatalf("%d distinct callbacks fired, want %d", len(fired), writers*each)
			}
			for k, n := range fired {
				if n != 1 {
					t.Fatalf("callback %v fired %d times", k, n)
				}
			}
			if n := notDur.Load(); n > 0 {
				t.Fatalf("%d callbacks ran before their ticket was durable", n)
			}
			if !slices.IsSorted(order) {
				t.Fatalf("committer ran callbacks out of ticket order")
			}
			commits := s.Commits()
			t.Logf("%d mutations in %d commits (%d tickets, %d callbacks run by the committer)", writers*each, commits, maxIssue.Load(), len(order))
			if commits > writers*each/10 {
				t.Fatalf("%d commits for %d mutations: no group commit", commits, writers*each)
			}
			if uint64(commits) != maxIssue.Load() {
				t.Fatalf("%d commits but highest ticket %d: one commit per ticket expected", commits, maxIssue.Load())
			}
			// Everything is readable.
			for g := range writers {
				if n := len(loadQueue(t, s, "v", fmt.Sprintf("c%d", g), 0, 0)); n != each-each/10 {
					t.Fatalf("client c%d: %d entries", g, n)
				}
			}
		})
	}
}

func TestFsyncModes(t *testing.T) {
	t.Run("always", func(t *testing.T) {
		s, _ := openTest(t, t.TempDir(), FsyncAlways)
		for i := range 20 {
			wait(t, s, s.PutMessage(uint64(i+1), &MessageRecord{Topic: "t"}))
		}
		if c, w := s.Commits(), s.WALSyncs(); c != 20 || w != c {
			t.Fatalf("always: %d commits, %d WAL syncs: want every commit synced", c, w)
		}
		tk := s.PutMessage(99, &MessageRecord{Topic: "t"})
		if err := s.Sync(); err != nil || !s.Durable(tk) {
			t.Fatalf("Sync: %v, durable %v", err, s.Durable(tk))
		}
		if err := s.Sync(); err != nil { // nothing pending
			t.Fatal(err)
		}
	})
	t.Run("interval", func(t *testing.T) {
		s, _ := openTest(t, t.TempDir(), FsyncInterval)
		for i := range 20 {
			wait(t, s, s.PutMessage(uint64(i+1), &MessageRecord{Topic: "t"}))
		}
		// Durable (committed) without a sync per commit; the ticker syncs the WAL.
		if c := s.Commits(); c != 20 {
			t.Fatalf("%d commits, want 20", c)
		}
		deadline := time.Now().Add(5 * time.Second)
		for s.WALSyncs() == 0 {
			if time.Now().After(deadline) {
				t.Fatal("the interval ticker never synced the WAL")
			}
			time.Sleep(5 * time.Millisecond)
		}
		// An idle store does not keep syncing.
		time.Sleep(30 * time.Millisecond)
		idle := s.WALSyncs()
		time.Sleep(50 * time.Millisecond)
		if s.WALSyncs() != idle {
			t.Fatalf("WAL synced while idle: %d -> %d", idle, s.WALSyncs())
		}
		// Sync after unsynced commits syncs them; Sync with a pending batch commits it synced.
		wait(t, s, s.PutMessage(100, &MessageRecord{Topic: "t"}))
		before := s.WALSyncs()
		if err := s.Sync(); err != nil || s.WALSyncs() != before+1 {
			t.Fatalf("Sync: %v, WAL syncs %d -> %d", err, before, s.WALSyncs())
		}
		tk := s.PutMessage(101, &MessageRecord{Topic: "t"})
		if err := s.Sync(); err != nil || !s.Durable(tk) {
			t.Fatalf("Sync with pending: %v, durable %v", err, s.Durable(tk))
		}
	})
}

func TestDeleteSessionOnlyThatSession(t *testing.T) {
	s, _ := openTest(t, t.TempDir(), FsyncAlways)
	type sc struct{ v, c string }
	all := []sc{{"v", "a"}, {"v", "ab"}, {"va", ""}, {"v2", "a"}, {"v", "a/b"}, {"v", ""}}
	for _, x := range all {
		s.PutSession(&SessionRecord{Vhost: x.v, ClientID: x.c, Version: 5})
		for seq := uint64(1); seq <= 5; seq++ {
			s.PutQueueEntry(x.v, x.c, &QueueEntry{Seq: seq, MsgID: seq})
		}
		s.PutQueueEntry(x.v, x.c, &QueueEntry{Seq: ^uint64(0), MsgID: 9})
		s.PutInbound(x.v, x.c, 1)
		s.PutInbound(x.v, x.c, 65535)
	}
	wait(t, s, s.DeleteSession("v", "a"))
	for _, x := range all {
		gone := x == sc{"v", "a"}
		q := loadQueue(t, s, x.v, x.c, 0, 0)
		pids, err := s.LoadInbound(x.v, x.c)
		if err != nil {
			t.Fatal(err)
		}
		if gone != (len(q) == 0) || gone != (len(pids) == 0) {
			t.Fatalf("%q/%q: %d queue entries, %d inbound ids after deleting v/a", x.v, x.c, len(q), len(pids))
		}
		if !gone && (len(q) != 6 || len(pids) != 2) {
			t.Fatalf("%q/%q lost data: %d entries, %d ids", x.v, x.c, len(q), len(pids))
		}
	}
	var left []string
	for _, r := range loadAllSessions(t, s) {
		left = append(left, r.Vhost+"|"+r.ClientID)
	}
	slices.Sort(left)
	want := []string{"v2|a", "v|", "v|a/b", "v|ab", "va|"}
	slices.Sort(want)
	if !reflect.DeepEqual(left, want) {
		t.Fatalf("sessions left: %q, want %q", left, want)
	}
	// A session written again after its delete starts empty.
	s.PutSession(&SessionRecord{Vhost: "v", ClientID: "a"})
	if q := loadQueue(t, s, "v", "a", 0, 0); len(q) != 0 {
		t.Fatalf("re-created session has %d entries", len(q))
	}
	tk := s.PutQueueEntry("v", "a", &QueueEntry{Seq: 3})
	if q := loadQueue(t, s, "v", "a", 0, 0); len(q) != 1 || !s.Durable(tk) {
		t.Fatalf("entry after re-create: %d", len(q))
	}
}

func TestLoadQueueOrderAfterLimit(t *testing.T) {
	s, _ := openTest(t, t.TempDir(), FsyncInterval)
	in := []uint64{256, 1, 255, 1 << 40, 2, 65536, 3}
	for _, seq := range in {
		s.PutQueueEntry("v", "c", &QueueEntry{Seq: seq, MsgID: seq * 10})
	}
	s.PutQueueEntry("v", "c2", &QueueEntry{Seq: 4}) // another client, in between by key order
	sorted := slices.Sorted(slices.Values(in))
	for _, c := range []struct {
		after uint64
		limit int
		want  []uint64
	}{
		{0, 0, sorted},
		{0, -1, sorted},
		{0, 3, []uint64{1, 2, 3}},
		{2, 2, []uint64{3, 255}},
		{255, 0, []uint64{256, 65536, 1 << 40}},
		{1 << 40, 0, nil},
		{^uint64(0), 0, nil},
		{0, 100, sorted},
	} {
		got := loadQueue(t, s, "v", "c", c.after, c.limit)
		if !reflect.DeepEqual(seqs(got), c.want) {
			t.Errorf("after %d limit %d: %v, want %v", c.after, c.limit, seqs(got), c.want)
		}
		for _, e := range got {
			if e.MsgID != e.Seq*10 {
				t.Fatalf("entry %d has MsgID %d", e.Seq, e.MsgID)
			}
		}
	}
	// fn's error stops the scan and is returned.
	stop := errors.New("enough")
	n := 0
	if err := s.LoadQueue("v", "c", 0, 0, func(*QueueEntry) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
		t.Fatalf("fn error: %v after %d", err, n)
	}
}

func TestMessages(t *testing.T) {
	s, _ := openTest(t, t.TempDir(), FsyncAlways)
	if id, err := s.MaxMessageID(); err != nil || id != 0 {
		t.Fatalf("empty MaxMessageID = %d, %v", id, err)
	}
	if _, err := s.LoadMessage(1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("absent message: %v", err)
	}
	for id := uint64(1); id <= 10; id++ {
		s.PutMessage(id, &MessageRecord{Topic: "t", Payload: []byte{byte(id)}})
	}
	s.PutMessage(1<<33, &MessageRecord{Topic: "big"})
	// Referenced: 2 and 5 (by a), 5 and 7 (by b), 1<<33 (by c, a later deleted session's twin).
	s.PutQueueEntry("v", "a", &QueueEntry{Seq: 1, MsgID: 2})
	s.PutQueueEntry("v", "a", &QueueEntry{Seq: 2, MsgID: 5})
	s.PutQueueEntry("v", "b", &QueueEntry{Seq: 1, MsgID: 5})
	s.PutQueueEntry("v", "b", &QueueEntry{Seq: 9, MsgID: 7})
	s.PutQueueEntry("w", "c", &QueueEntry{Seq: 1, MsgID: 1 << 33})
	s.PutQueueEntry("v", "gone", &QueueEntry{Seq: 1, MsgID: 3})
	s.DeleteSession("v", "gone")
	if id, err := s.MaxMessageID(); err != nil || id != 1<<33 {
		t.Fatalf("MaxMessageID = %d, %v", id, err)
	}
	n, err := s.DeleteUnreferencedMessages()
	if err != nil || n != 7 {
		t.Fatalf("DeleteUnreferencedMessages = %d, %v; want 7", n, err)
	}
	for id := uint64(1); id <= 10; id++ {
		_, err := s.LoadMessage(id)
		if kept := id == 2 || id == 5 || id == 7; kept != (err == nil) {
			t.Fatalf("message %d: %v", id, err)
		}
	}
	if m, err := s.LoadMessage(1 << 33); err != nil || m.Topic != "big" {
		t.Fatalf("message 1<<33: %v", err)
	}
	if n, err := s.DeleteUnreferencedMessages(); err != nil || n != 0 {
		t.Fatalf("second run: %d, %v", n, err)
	}
}

func TestClose(t *testing.T) {
	dir := t.TempDir()
	s, lb := openTest(t, dir, FsyncInterval)
	// Close commits and syncs what is pending and runs its callbacks.
	tk := s.PutMessage(1, &MessageRecord{Topic: "pending at close"})
	var firedDurable atomic.Int32
	s.Notify(tk, func() {
		if s.Durable(tk) {
			firedDurable.Add(1)
		}
	})
	never := Ticket(1 << 60) // a ticket never issued
	var firedNever atomic.Int32
	s.Notify(never, func() { firedNever.Add(1) })
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if firedDurable.Load() != 1 || !s.Durable(tk) {
		t.Fatalf("callback of the pending write: %d, durable %v", firedDurable.Load(), s.Durable(tk))
	}
	if firedNever.Load() != 1 || s.Durable(never) {
		t.Fatalf("callback for a never-issued ticket: %d calls, durable %v", firedNever.Load(), s.Durable(never))
	}
	// After Close: writes are refused with a ticket that never becomes durable, logged once.
	t1 := s.PutMessage(2, &MessageRecord{Topic: "late"})
	t2 := s.DeleteSession("v", "c")
	if s.Durable(t1) || s.Durable(t2) {
		t.Fatal("a write after Close is reported durable")
	}
	if n := strings.Count(lb.String(), "write refused"); n != 1 {
		t.Fatalf("refused writes logged %d times, want once:\n%s", n, lb.String())
	}
	// Notify calls fn at once; Durable tells the truth.
	called := false
	s.Notify(t1, func() { called = true })
	if !called {
		t.Fatal("Notify after Close did not call fn")
	}
	calledOld := false
	s.Notify(tk, func() { calledOld = s.Durable(tk) })
	if !calledOld {
		t.Fatal("Notify after Close for a durable ticket")
	}
	if _, err := s.LoadMessage(1); !errors.Is(err, ErrClosed) {
		t.Fatalf("read after Close: %v", err)
	}
	if err := s.LoadSessions(func(*SessionRecord) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Fatalf("scan after Close: %v", err)
	}
	if err := s.Sync(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Sync after Close: %v", err)
	}
	if err := s.Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Close: %v", err)
	}
	// The write pending at Close is there after reopening; the refused one is not.
	s2, _ := openTest(t, dir, FsyncAlways)
	if m, err := s2.LoadMessage(1); err != nil || m.Topic != "pending at close" {
		t.Fatalf("pending write after reopen: %v", err)
	}
	if _, err := s2.LoadMessage(2); !errors.Is(err, ErrNotFound) {
		t.Fatalf("refused write after reopen: %v", err)
	}
}

// A full pending batch makes writers wait until the committer takes it.
func TestBackpressure(t *testing.T) {
	s, _ := openTest(t, t.TempDir(), FsyncInterval)
	s.mu.Lock()
	s.maxPending = 64 << 10
	next := s.pendingT // the ticket the next write gets: not durable yet
	s.mu.Unlock()
	// Hold the committer in a callback so the next batch fills up.
	release := make(chan struct{})
	held := make(chan struct{})
	s.Notify(next, func() { close(held); <-release })
	if tk := s.PutMessage(1, &MessageRecord{Topic: "t"}); tk != next {
		t.Fatalf("ticket %d, want %d", tk, next)
	}
	<-held
	payload := make([]byte, 16<<10)
	for i := range 4 { // 4 × 16 KiB + overhead: over the limit
		s.PutMessage(uint64(10+i), &MessageRecord{Topic: "t", Payload: payload})
	}
	blocked := make(chan Ticket)
	go func() { blocked <- s.PutMessage(100, &MessageRecord{Topic: "t", Payload: payload}) }()
	select {
	case <-blocked:
		t.Fatal("a write over the pending limit did not wait")
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	select {
	case tk := <-blocked:
		wait(t, s, tk)
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting write was not released")
	}
}

// A read nested in a scan's callback (LoadMessage from LoadQueue, as recovery does) does not
// deadlock with a concurrent Close: it gets ErrClosed, and Close waits for the outer scan.
func TestNestedReadDuringClose(t *testing.T) {
	s, _ := openTest(t, t.TempDir(), FsyncAlways)
	s.PutMessage(1, &MessageRecord{Topic: "t"})
	s.PutQueueEntry("v", "c", &QueueEntry{Seq: 1, MsgID: 1})
	s.PutQueueEntry("v", "c", &QueueEntry{Seq: 2, MsgID: 1})
	closed := make(chan error, 1)
	var inner []error
	err := s.LoadQueue("v", "c", 0, 0, func(e *QueueEntry) error {
		if e.Seq == 1 {
			_, err := s.LoadMessage(e.MsgID) // nested read, store open
			inner = append(inner, err)
			go func() { closed <- s.Close() }()
			for { // wait until Close has begun and waits for this scan
				s.mu.Lock()
				c := s.closed
				s.mu.Unlock()
				if c {
					break
				}
				time.Sleep(time.Millisecond)
			}
			return nil
		}
		_, err := s.LoadMessage(e.MsgID) // nested read while Close waits
		inner = append(inner, err)
		return nil
	})
	if err != nil {
		t.Fatalf("outer scan: %v", err)
	}
	if len(inner) != 2 || inner[0] != nil || !errors.Is(inner[1], ErrClosed) {
		t.Fatalf("nested reads: %v, want [nil, ErrClosed]", inner)
	}
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return after the scan ended")
	}
}

func TestDefinitionsRoundTrip(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(dir, Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.LoadDefinitions(); !errors.Is(err, ErrNotFound) {
		t.Fatalf("LoadDefinitions on a new store: %v, want ErrNotFound", err)
	}
	db.PutDefinitions([]byte(`{"users":[]}`))
	db.PutDefinitions([]byte(`{"users":[{"name":"a"}]}`))
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = Open(dir, Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	got, err := db.LoadDefinitions()
	if err != nil || string(got) != `{"users":[{"name":"a"}]}` {
		t.Fatalf("LoadDefinitions after reopen = %q, %v", got, err)
	}
}

func TestOnCommitObservesEachCommit(t *testing.T) {
	var n atomic.Int64
	db, err := Open(t.TempDir(), Options{Logger: slog.New(slog.DiscardHandler), OnCommit: func(d time.Duration, synced bool) {
		if d < 0 || !synced {
			t.Errorf("OnCommit(%v, %v): want a non-negative duration, synced under FsyncAlways", d, synced)
		}
		n.Add(1)
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.PutDefinitions([]byte("x"))
	if err := db.Sync(); err != nil {
		t.Fatal(err)
	}
	if n.Load() == 0 {
		t.Fatal("OnCommit was not called for a commit")
	}
}

func TestRecordsNamespaces(t *testing.T) {
	s, _ := openTest(t, t.TempDir(), FsyncAlways)
	s.PutRecord("keys", "b", []byte("2"))
	s.PutRecord("keys", "a", []byte("1"))
	s.PutRecord("keysx", "a", []byte("other namespace"))
	s.PutRecord("bans", "a", []byte("x"))
	s.DeleteRecord("bans", "a")
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	var got []string
	if err := s.LoadRecords("keys", func(k string, v []byte) error {
		got = append(got, k+"="+string(v))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != "a=1,b=2" {
		t.Fatalf("LoadRecords(keys) = %v, want a=1,b=2 (a namespace must not see a longer one's records)", got)
	}
	n := 0
	s.LoadRecords("bans", func(string, []byte) error { n++; return nil })
	if n != 0 {
		t.Fatalf("deleted record still loaded")
	}
}
