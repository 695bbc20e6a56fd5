package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/turnstilemq/turnstile/internal/logbuf"
)

// fastTimings makes degraded-mode tests quick: probes every 20-80 ms, a summary line at most
// every 200 ms.
var fastTimings = timings{minBackoff: 20 * time.Millisecond, maxBackoff: 80 * time.Millisecond, logInterval: 200 * time.Millisecond}

// diskFull injects ENOSPC, as a full disk returns it, into every operation that allocates
// space (creating, writing, preallocating, renaming, linking), not into syncs or removals,
// while it is on. match, if set, limits it to the files whose name it accepts.
type diskFull struct {
	on    atomic.Bool
	match func(name string) bool
	hits  atomic.Int64
}

func (d *diskFull) String() string { return "diskFull" }

func (d *diskFull) MaybeError(op errorfs.Op) error {
	if !d.on.Load() {
		return nil
	}
	switch op.Kind {
	case errorfs.OpCreate, errorfs.OpFileWrite, errorfs.OpFileWriteAt, errorfs.OpFilePreallocate,
		errorfs.OpReuseForWrite, errorfs.OpLink, errorfs.OpRename:
	default:
		return nil
	}
	if d.match != nil && !d.match(filepath.Base(op.Path)) {
		return nil
	}
	d.hits.Add(1)
	return &fs.PathError{Op: "write", Path: op.Path, Err: syscall.ENOSPC}
}

// syncFails injects EIO into syncs of WAL files while it is on.
type syncFails struct{ on atomic.Bool }

func (d *syncFails) String() string { return "syncFails" }

func (d *syncFails) MaybeError(op errorfs.Op) error {
	if !d.on.Load() || !strings.HasSuffix(op.Path, ".log") {
		return nil
	}
	switch op.Kind {
	case errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo:
		return &fs.PathError{Op: "sync", Path: op.Path, Err: syscall.EIO}
	}
	return nil
}

func openFaulty(t *testing.T, dir string, mode Fsync, inj errorfs.Injector) (*DB, *logbuf.Buffer) {
	t.Helper()
	lb := &logbuf.Buffer{}
	tm := fastTimings
	s, err := Open(dir, Options{Fsync: mode, Interval: 10 * time.Millisecond, Logger: testLogger(lb),
		FS: errorfs.Wrap(vfs.Default, inj), timings: &tm})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Close()
		if t.Failed() {
			t.Logf("store log:\n%s", lb.String())
		}
	})
	return s, lb
}

// resolved waits for tk's callback and returns its status.
func resolved(t *testing.T, s *DB, tk Ticket) error {
	t.Helper()
	done := make(chan struct{})
	s.Notify(tk, func() { close(done) })
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("ticket %d not resolved after 10s", tk)
	}
	ok, err := s.Status(tk)
	if !ok {
		t.Fatalf("ticket %d: callback ran while it is still pending", tk)
	}
	if s.Durable(tk) != (err == nil) {
		t.Fatalf("ticket %d: Durable %v but Status error %v", tk, s.Durable(tk), err)
	}
	return err
}

func waitHealthy(t *testing.T, s *DB) {
	t.Helper()
	waitUntil(t, func() bool { return s.Healthy() == nil }, func() string { return fmt.Sprintf("store not healthy after 10s: %v", s.Healthy()) })
}

// waitUntil polls cond for up to 10 s and fails with why() if it never holds.
func waitUntil(t *testing.T, cond func() bool, why func() string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal(why())
		}
	}
}

// A full disk (ENOSPC on every allocation) degrades the store, in both fsync modes: the
// ticket in flight fails and its callback runs, writes are refused at once, Healthy names
// the directory; nothing panics; the failure is logged once, then rate-limited; when space
// returns the store recovers by itself and what it acknowledged before and after is there
// after a restart.
func TestDiskFullDegradesAndRecovers(t *testing.T) {
	for _, mode := range []Fsync{FsyncAlways, FsyncInterval} {
		t.Run(mode.String(), func(t *testing.T) {
			dir := t.TempDir()
			full := &diskFull{}
			s, lb := openFaulty(t, dir, mode, full)
			msg := &MessageRecord{Topic: "t", Payload: []byte("before"), QoS: 1}
			if err := resolved(t, s, s.PutMessage(1, msg)); err != nil {
				t.Fatalf("write before the disk filled: %v", err)
			}
			if s.Healthy() != nil {
				t.Fatalf("Healthy before: %v", s.Healthy())
			}

			full.on.Store(true)
			// Writes issued until the store notices: each one ends durable (it got in before)
			// or failed; at least the last one fails.
			var failedTk Ticket
			for i := uint64(2); failedTk == 0; i++ {
				if i > 1000 {
					t.Fatal("no write failed with the disk full")
				}
				tk := s.PutMessage(i, &MessageRecord{Topic: "t", Payload: make([]byte, 100<<10)})
				if err := resolved(t, s, tk); err != nil {
					if !errors.Is(err, ErrUnavailable) || !errors.Is(err, syscall.ENOSPC) {
						t.Fatalf("failed ticket's error %v, want ErrUnavailable wrapping ENOSPC", err)
					}
					failedTk = tk
				}
			}
			herr := s.Healthy()
			if herr == nil || !strings.Contains(herr.Error(), dir) || !errors.Is(herr, syscall.ENOSPC) {
				t.Fatalf("Healthy() = %v, want an error naming %s and ENOSPC", herr, dir)
			}
			// While degraded: refused at once, failed, callback at once.
			tk := s.PutSession(&SessionRecord{Vhost: "v", ClientID: "c"})
			if tk != refusedTicket {
				t.Fatalf("write while degraded got ticket %d, want the refused ticket", tk)
			}
			ran := false
			s.Notify(tk, func() { ran = true })
			if !ran {
				t.Fatal("Notify of a refused ticket did not run at once")
			}
			if done, err := s.Status(tk); !done || !errors.Is(err, ErrUnavailable) {
				t.Fatalf("Status(refused) = %v, %v", done, err)
			}
			if _, err := s.LoadMessage(1); err != nil {
				t.Fatalf("reads while degraded: %v", err)
			}
			if err := s.Sync(); !errors.Is(err, ErrUnavailable) {
				t.Fatalf("Sync while degraded: %v, want ErrUnavailable", err)
			}
			// Several probes fail; the log has one first line and at most a few summaries.
			time.Sleep(500 * time.Millisecond)
			log := lb.String()
			if n := strings.Count(log, "store cannot write"); n != 1 {
				t.Fatalf("first failure logged %d times, want once:\n%s", n, log)
			}
			if n := strings.Count(log, "store still cannot write"); n > 4 {
				t.Fatalf("%d summary lines in 500ms with a 200ms interval:\n%s", n, log)
			}
			if !strings.Contains(log, dir) || !strings.Contains(log, "no space left on device") {
				t.Fatalf("the failure line does not name the directory and the error:\n%s", log)
			}
			if done, err := s.Status(failedTk); !done || err == nil {
				t.Fatalf("the failed ticket reads back as %v, %v", done, err)
			}

			full.on.Store(false)
			waitHealthy(t, s)
			// The recovery is logged once the store is healthy again (health.go logs after
			// releasing its lock): wait for the line rather than expect it at once.
			waitUntil(t, func() bool { return strings.Contains(lb.String(), "store can write again") },
				func() string { return "recovery not logged:\n" + lb.String() })
			after := s.PutMessage(9999, &MessageRecord{Topic: "t", Payload: []byte("after"), QoS: 1})
			if err := resolved(t, s, after); err != nil {
				t.Fatalf("write after recovery: %v", err)
			}
			if done, err := s.Status(failedTk); !done || err == nil {
				t.Fatalf("a failed ticket became %v, %v after recovery", done, err)
			}
			if err := s.Close(); err != nil {
				t.Fatalf("close after recovery: %v", err)
			}

			s2, _ := openTest(t, dir, FsyncAlways)
			for _, id := range []uint64{1, 9999} {
				if _, err := s2.LoadMessage(id); err != nil {
					t.Fatalf("message %d acknowledged as durable is gone after a restart: %v", id, err)
				}
			}
		})
	}
}

// A failed WAL sync cannot be retried: pebble gives up (Fatalf, which used to end the
// process). The store stays degraded, says a restart is needed, and closes without hanging.
func TestWALSyncFailureStopsWritesWithoutPanic(t *testing.T) {
	dir := t.TempDir()
	inj := &syncFails{}
	s, lb := openFaulty(t, dir, FsyncAlways, inj)
	if err := resolved(t, s, s.PutMessage(1, &MessageRecord{Topic: "t"})); err != nil {
		t.Fatal(err)
	}
	inj.on.Store(true)
	err := resolved(t, s, s.PutMessage(2, &MessageRecord{Topic: "t"}))
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("ticket after a failed sync: %v", err)
	}
	inj.on.Store(false)
	time.Sleep(200 * time.Millisecond) // probes do not heal a failed sync
	herr := s.Healthy()
	if herr == nil || !strings.Contains(herr.Error(), "restart") || !strings.Contains(herr.Error(), dir) {
		t.Fatalf("Healthy() = %v, want the directory and that a restart is needed", herr)
	}
	if s.PutMessage(3, &MessageRecord{Topic: "t"}) != refusedTicket {
		t.Fatal("write accepted after pebble gave up")
	}
	if n := strings.Count(lb.String(), "store failed"); n != 1 {
		t.Fatalf("'store failed' logged %d times:\n%s", n, lb.String())
	}
	done := make(chan error, 1)
	go func() { done <- s.Close() }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Close of a failed store returned nil")
		}
	case <-time.After(3 * closeGrace):
		t.Fatal("Close hangs")
	}
	s2, _ := openTest(t, dir, FsyncAlways)
	if _, err := s2.LoadMessage(1); err != nil {
		t.Fatalf("durable message lost: %v", err)
	}
}

// Open refuses, with one error naming the directory, a directory it cannot write, whichever
// write fails first; it neither hangs nor spins.
func TestOpenOnFullDisk(t *testing.T) {
	for _, c := range []struct {
		name  string
		match func(string) bool
	}{
		{"all writes", nil},
		{"WAL", func(n string) bool { return strings.HasSuffix(n, ".log") }},
		// Only the flush of the replayed WAL fails: pebble.Open would retry it forever.
		{"sstables", func(n string) bool { return strings.HasSuffix(n, ".sst") }},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			s, _ := openTest(t, dir, FsyncAlways)
			for i := range 200 {
				s.PutMessage(uint64(i), &MessageRecord{Topic: "t", Payload: make([]byte, 1000)})
			}
			if err := s.Sync(); err != nil {
				t.Fatal(err)
			}
			s.Close()

			full := &diskFull{match: c.match}
			full.on.Store(true)
			lb := &logbuf.Buffer{}
			tm := fastTimings
			start := time.Now()
			s2, err := Open(dir, Options{Fsync: FsyncAlways, Logger: testLogger(lb), FS: errorfs.Wrap(vfs.Default, full), timings: &tm})
			if err == nil {
				s2.Close()
				t.Fatal("Open succeeded on a full disk")
			}
			if took := time.Since(start); took > 5*time.Second {
				t.Fatalf("Open took %v to fail", took)
			}
			if !strings.Contains(err.Error(), dir) || !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("Open error %q does not name the directory and ENOSPC", err)
			}
			t.Logf("Open: %v", err)
			// Nothing keeps retrying fast or logging after Open returned.
			hits, lines := full.hits.Load(), strings.Count(lb.String(), "\n")
			time.Sleep(300 * time.Millisecond)
			if n := full.hits.Load() - hits; n > 3 {
				t.Fatalf("%d more failing writes in 300ms after Open returned: spinning", n)
			}
			if n := strings.Count(lb.String(), "\n") - lines; n > 0 {
				t.Fatalf("%d log lines after Open returned:\n%s", n, lb.String())
			}
		})
	}
}

// mountTmpfs mounts a tmpfs of size bytes in a temporary directory (root only; skipped
// where mounting is not permitted: the errorfs tests above cover the same paths).
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Getenv("TURNSTILE_NO_TMPFS") != "" {
		t.Skip("TURNSTILE_NO_TMPFS set")
	}
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs (%v: %s); the injected-fault tests cover this", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", mnt, err, out)
		}
	})
	return mnt
}

// fillDisk writes a filler file until the filesystem is full, then frees leave bytes of it,
// and returns a function that removes it.
func fillDisk(t *testing.T, dir string, leave int64) func() {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	for len(buf) > 0 {
		if _, err := f.Write(buf); err != nil {
			buf = buf[:len(buf)/2]
		}
	}
	if leave > 0 {
		st, err := f.Stat()
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Truncate(max(st.Size()-leave, 0)); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	return func() {
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
	}
}

// The same on a real full filesystem: a tmpfs filled by another file.
func TestRealFullDisk(t *testing.T) {
	mnt := mountTmpfs(t, "24m")
	dir := filepath.Join(mnt, "data")
	lb := &logbuf.Buffer{}
	tm := fastTimings
	s, err := Open(dir, Options{Fsync: FsyncAlways, Logger: testLogger(lb), timings: &tm})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if t.Failed() || testing.Verbose() {
			t.Logf("store log:\n%s", lb.String())
		}
	}()
	free := fillDisk(t, mnt, 6<<20)
	var acked []uint64
	var failed bool
	for i := uint64(1); !failed; i++ {
		if i > 100000 {
			t.Fatal("no write failed on a full tmpfs")
		}
		tk := s.PutMessage(i, &MessageRecord{Topic: "t", Payload: make([]byte, 4<<10)})
		if err := resolved(t, s, tk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("failed with %v, want ENOSPC", err)
			}
			failed = true
		} else {
			acked = append(acked, i)
		}
	}
	t.Logf("%d writes acknowledged before the disk was full; then: %v", len(acked), s.Healthy())
	if s.PutMessage(1<<40, &MessageRecord{Topic: "t"}) != refusedTicket {
		t.Fatal("write accepted while degraded")
	}
	time.Sleep(300 * time.Millisecond)
	if n := strings.Count(lb.String(), "store cannot write"); n != 1 {
		t.Fatalf("first failure logged %d times:\n%s", n, lb.String())
	}
	free()
	waitHealthy(t, s)
	tk := s.PutMessage(1<<41, &MessageRecord{Topic: "t", Payload: []byte("after")})
	if err := resolved(t, s, tk); err != nil {
		t.Fatalf("write after space returned: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Restart on a full disk: one clear error, at once.
	s, err = Open(dir, Options{Fsync: FsyncAlways, Logger: testLogger(lb), timings: &tm})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range append(acked, 1<<41) {
		if _, err := s.LoadMessage(id); err != nil {
			t.Fatalf("acknowledged message %d lost: %v", id, err)
		}
	}
	for i := range 500 {
		s.PutMessage(uint64(1<<42+i), &MessageRecord{Topic: "t", Payload: make([]byte, 1000)})
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	free = fillDisk(t, mnt, 0)
	lines := strings.Count(lb.String(), "\n")
	start := time.Now()
	if s, err := Open(dir, Options{Fsync: FsyncAlways, Logger: testLogger(lb), timings: &tm}); err == nil {
		s.Close()
		t.Fatal("Open succeeded on a full disk")
	} else if !strings.Contains(err.Error(), dir) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Open on a full disk: %v; want the directory and ENOSPC", err)
	} else {
		t.Logf("Open on a full disk after %v: %v", time.Since(start).Round(time.Millisecond), err)
	}
	if n := strings.Count(lb.String(), "\n") - lines; n > 2 {
		t.Fatalf("%d log lines from a failed Open:\n%s", n, lb.String())
	}
	free()
	s, err = Open(dir, Options{Fsync: FsyncAlways, Logger: testLogger(lb), timings: &tm})
	if err != nil {
		t.Fatalf("Open once space returned: %v", err)
	}
	if _, err := s.LoadMessage(1 << 41); err != nil {
		t.Fatalf("message lost: %v", err)
	}
	s.Close()
}
