package store

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/turnstilemq/turnstile/internal/logbuf"
)

// newestWAL returns the path of the highest-numbered WAL file in dir.
func newestWAL(t *testing.T, dir string) string {
	t.Helper()
	logs, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil || len(logs) == 0 {
		t.Fatalf("no WAL in %s: %v", dir, err)
	}
	slices.Sort(logs) // fixed-width numbers
	return logs[len(logs)-1]
}

// copyDir copies a store directory; done while the store is open it is a crash image.
func copyDir(t *testing.T, from, to string) { copyDirB(t, from, to) }

func copyDirB(t testing.TB, from, to string) {
	t.Helper()
	if err := os.MkdirAll(to, 0o700); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if errors.Is(err, os.ErrNotExist) {
			continue // removed by the open store meanwhile (an obsolete file): not in the image
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// payloadOf is message i's payload; its size is set by the test (padding).
func payloadOf(i int) []byte {
	return []byte(fmt.Sprintf("payload-%03d-%s", i, strings.Repeat("x", padding)))
}

var padding = 200

// writeSeparateBatches writes messages 1..n, each in its own group commit (its own WAL record).
func writeSeparateBatches(t *testing.T, s *DB, n int) {
	t.Helper()
	for i := 1; i <= n; i++ {
		wait(t, s, s.PutMessage(uint64(i), &MessageRecord{Topic: "t", Payload: payloadOf(i)}))
	}
}

// present returns how many of messages 1..n are there, checking they form a prefix.
func present(t *testing.T, s *DB, n int) int {
	t.Helper()
	k := 0
	for i := 1; i <= n; i++ {
		m, err := s.LoadMessage(uint64(i))
		switch {
		case err == nil && bytes.Equal(m.Payload, payloadOf(i)):
			if k != i-1 {
				t.Fatalf("message %d recovered after message %d was lost: not a prefix", i, k+1)
			}
			k = i
		case errors.Is(err, ErrNotFound):
		default:
			t.Fatalf("message %d: %v", i, err)
		}
	}
	return k
}

// A torn or damaged tail of the newest WAL does not prevent opening; everything committed
// before it is recovered and the log says what was skipped.
func TestRecoverTornWALTail(t *testing.T) {
	const n = 40
	for _, image := range []string{"after close", "crash image"} {
		for _, damage := range []string{"cut 1 byte", "cut 30 bytes", "cut 150 bytes", "flip a byte of the last batch", "append garbage"} {
			t.Run(image+"/"+damage, func(t *testing.T) {
				dir := t.TempDir()
				s, _ := openTest(t, dir, FsyncAlways)
				writeSeparateBatches(t, s, n)
				if image == "crash image" {
					src := dir
					dir = filepath.Join(t.TempDir(), "image")
					copyDir(t, src, dir)
				} else if err := s.Close(); err != nil {
					t.Fatal(err)
				}
				wal := newestWAL(t, dir)
				b, err := os.ReadFile(wal)
				if err != nil {
					t.Fatal(err)
				}
				switch damage {
				case "cut 1 byte":
					b = b[:len(b)-1]
				case "cut 30 bytes":
					b = b[:len(b)-30]
				case "cut 150 bytes":
					b = b[:len(b)-150]
				case "flip a byte of the last batch":
					i := bytes.LastIndex(b, payloadOf(n))
					b[i+5] ^= 0x55
				case "append garbage":
					b = append(b, bytes.Repeat([]byte{0xA5}, 100)...)
				}
				if err := os.WriteFile(wal, b, 0o600); err != nil {
					t.Fatal(err)
				}
				s2, lb := openTest(t, dir, FsyncAlways)
				k := present(t, s2, n)
				logs := lb.String()
				t.Logf("recovered %d of %d; log: %s", k, n, grepLines(logs, "WAL"))
				if k < n-1 {
					t.Fatalf("recovered %d of %d: more than the damaged last batch was lost", k, n)
				}
				if k < n {
					line := grepLines(logs, "wal="+filepath.Base(wal))
					if !strings.Contains(line, "dropped_records=") || !strings.Contains(line, "acknowledged=") ||
						!(strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR")) {
						t.Fatalf("a record was dropped without a WARN or ERROR naming the WAL, the records dropped and whether they were acknowledged:\n%s", logs)
					}
					// After a clean close the durability record shows the cut record had been
					// synced and acknowledged: an ERROR saying so, not a guess that it was not.
					if image == "after close" && (!strings.Contains(line, "level=ERROR") || !strings.Contains(line, "acknowledged=\"yes: ")) {
						t.Fatalf("an acknowledged record lost after a clean close is not reported as such:\n%s", logs)
					}
				}
				if strings.Contains(logs, "never reported durable") || strings.Contains(logs, "never synced") {
					t.Fatalf("the log guesses what was acknowledged:\n%s", logs)
				}
				// The recovered store works and survives another restart.
				wait(t, s2, s2.PutMessage(1000, &MessageRecord{Topic: "after"}))
				if err := s2.Close(); err != nil {
					t.Fatal(err)
				}
				s3, _ := openTest(t, dir, FsyncAlways)
				if got := present(t, s3, n); got != k {
					t.Fatalf("second restart: %d messages, want %d", got, k)
				}
				if _, err := s3.LoadMessage(1000); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}

// Damage in the middle of the newest WAL, followed by batches synced after it. pebble alone
// either refuses to open (the damaged chunk is confirmed by a sync offset in a later 32 KiB
// block) or, when the later chunks are in the same block, opens and silently drops everything
// after the damage. The store recovers everything before the damaged batch in both cases, says
// so in an error line and keeps a copy of the WAL as found.
func TestRecoverDamagedWAL(t *testing.T) {
	const n = 40
	for _, c := range []struct {
		name          string
		padding, bad  int
		pebbleRefuses bool
	}{
		{"same block", 200, 20, false},  // 40 × ~265 bytes: one block
		{"later blocks", 3000, 5, true}, // 40 × ~3 KiB: several blocks
	} {
		for _, image := range []string{"after close", "crash image"} {
			t.Run(c.name+"/"+image, func(t *testing.T) {
				padding = c.padding
				defer func() { padding = 200 }()
				dir := t.TempDir()
				s, _ := openTest(t, dir, FsyncAlways)
				rep0, _ := inspectWAL(dir)
				base := rep0.batches // records Open wrote (its probe, the format key)
				writeSeparateBatches(t, s, n)
				if image == "crash image" {
					src := dir
					dir = filepath.Join(t.TempDir(), "image")
					copyDir(t, src, dir)
				} else if err := s.Close(); err != nil {
					t.Fatal(err)
				}
				wal := newestWAL(t, dir)
				b, err := os.ReadFile(wal)
				if err != nil {
					t.Fatal(err)
				}
				i := bytes.Index(b, payloadOf(c.bad))
				b[i+20] ^= 0x01
				if err := os.WriteFile(wal, b, 0o600); err != nil {
					t.Fatal(err)
				}

				// What pebble alone does with this directory.
				probe := filepath.Join(t.TempDir(), "probe")
				copyDir(t, dir, probe)
				po := pebbleOptions(newGuardFS(vfs.Default, defaultTimings), newPebbleSink(slog.New(slog.NewTextHandler(io.Discard, nil))))
				pdb, err := pebble.Open(probe, po)
				po.Cache.Unref()
				if c.pebbleRefuses {
					if !pebble.IsCorruptionError(err) {
						t.Fatalf("pebble.Open: %v, want ErrCorruption", err)
					}
					t.Logf("pebble alone refuses: %v", err)
				} else {
					if err != nil {
						t.Fatalf("pebble.Open: %v", err)
					}
					_, closer, gerr := pdb.Get(messageKey(uint64(c.bad + 1)))
					if gerr == nil {
						closer.Close()
					}
					if !errors.Is(gerr, pebble.ErrNotFound) {
						t.Fatalf("pebble kept the synced batch after the damage: %v", gerr)
					}
					t.Logf("pebble alone opens without error and drops the synced batches %d..%d", c.bad, n)
					pdb.Close()
				}

				s2, lb := openTest(t, dir, FsyncAlways)
				if k := present(t, s2, n); k != c.bad-1 {
					t.Fatalf("recovered %d messages, want the %d before the damaged batch", k, c.bad-1)
				}
				logs := lb.String()
				t.Logf("log: %s", grepLines(logs, "WAL"))
				for _, want := range []string{"level=ERROR msg=\"WAL damaged", fmt.Sprintf("kept_records=%d", base+c.bad-1),
					"including records that had been synced", "dropped_records=", "dropped_bytes=", "copy=", "wal=" + filepath.Base(wal)} {
					if !strings.Contains(logs, want) {
						t.Fatalf("log lacks %q:\n%s", want, logs)
					}
				}
				copies, _ := filepath.Glob(wal + ".damaged-*")
				if len(copies) != 1 {
					t.Fatalf("copies of the damaged WAL: %v", copies)
				}
				if kept, _ := os.ReadFile(copies[0]); !bytes.Equal(kept, b) {
					t.Fatal("the kept copy is not the damaged WAL as found")
				}
				wait(t, s2, s2.PutMessage(1000, &MessageRecord{Topic: "after"}))
				if err := s2.Close(); err != nil {
					t.Fatal(err)
				}
				s3, lb3 := openTest(t, dir, FsyncAlways)
				if k := present(t, s3, n); k != c.bad-1 {
					t.Fatalf("second restart: %d", k)
				}
				if _, err := s3.LoadMessage(1000); err != nil {
					t.Fatal(err)
				}
				if strings.Contains(lb3.String(), "level=WARN") || strings.Contains(lb3.String(), "level=ERROR") {
					t.Fatalf("second restart complains:\n%s", lb3.String())
				}
			})
		}
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// A WAL deleted, or cut at a record boundary (here: emptied), after a clean close: pebble
// opens without a word; the durability record shows that acknowledged writes are missing, and
// an ERROR names the WAL, says whether the file is there, and how many records are lost at
// least.
func TestRecoverMissingWAL(t *testing.T) {
	for _, damage := range []string{"deleted", "emptied"} {
		t.Run(damage, func(t *testing.T) {
			dir := t.TempDir()
			s, _ := openTest(t, dir, FsyncAlways)
			writeSeparateBatches(t, s, 10)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			wal := newestWAL(t, dir)
			if damage == "deleted" {
				if err := os.Remove(wal); err != nil {
					t.Fatal(err)
				}
			} else if err := os.Truncate(wal, 0); err != nil {
				t.Fatal(err)
			}
			s2, lb := openTest(t, dir, FsyncAlways)
			if k := present(t, s2, 10); k != 0 {
				t.Fatalf("%d messages survived", k)
			}
			line := grepLines(lb.String(), "were not recovered")
			file := map[string]string{"deleted": "missing", "emptied": "present"}[damage]
			for _, want := range []string{"level=ERROR", "wal=" + filepath.Base(wal), "wal_file=" + file, "dropped_records_at_least=10"} {
				if !strings.Contains(line, want) {
					t.Fatalf("log lacks %q:\n%s", want, lb.String())
				}
			}
			// The next restart has nothing more to say: the record now matches the store.
			wait(t, s2, s2.PutMessage(100, &MessageRecord{Topic: "after"}))
			if err := s2.Close(); err != nil {
				t.Fatal(err)
			}
			_, lb3 := openTest(t, dir, FsyncAlways)
			if strings.Contains(lb3.String(), "level=ERROR") || strings.Contains(lb3.String(), "level=WARN") {
				t.Fatalf("second restart complains:\n%s", lb3.String())
			}
		})
	}
}

// What the durability record tells, case by case.
func TestAcknowledgedFromRecord(t *testing.T) {
	at := time.Unix(1_700_000_000, 0)
	for _, c := range []struct {
		rec       *durableRecord
		recovered Ticket
		lost      uint64
		synced    bool
		says      string
	}{
		{nil, 5, 0, false, "unknown"},
		{&durableRecord{durable: 9, synced: 9, fsync: "always", at: at}, 5, 4, true, "had been synced and acknowledged"},
		{&durableRecord{durable: 9, synced: 6, fsync: "interval", at: at}, 6, 3, false, "acknowledged before being synced"},
		{&durableRecord{durable: 9, synced: 6, fsync: "interval", at: at}, 4, 2, true, "had been synced"},
		{&durableRecord{durable: 9, synced: 9, fsync: "always", at: at}, 9, 0, false, "not as of"},
	} {
		lost, synced, says := acknowledged(c.rec, c.recovered)
		if lost != c.lost || synced != c.synced || !strings.Contains(says, c.says) {
			t.Errorf("%+v recovered %d: lost %d synced %v %q; want %d %v %q", c.rec, c.recovered, lost, synced, says, c.lost, c.synced, c.says)
		}
	}
	r := &durableRecord{durable: 12, synced: 11, wal: "000009.log", fsync: "interval", at: at}
	got, err := parseDurableRecord([]byte(r.String()))
	if err != nil || *got != *r { // walFile is not written
		t.Fatalf("record round trip: %+v %v", got, err)
	}
}

// pebble refuses a store whose older WAL does not end cleanly, or whose OPTIONS file is
// damaged; the error names the file.
func TestOpenNamesDamagedFiles(t *testing.T) {
	t.Run("older WAL", func(t *testing.T) {
		dir := t.TempDir()
		s, _ := openTest(t, dir, FsyncAlways)
		writeSeparateBatches(t, s, 10)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		wal := newestWAL(t, dir)
		// A newer WAL (its chunks carry another log number: it reads as empty) makes wal an
		// older one, which pebble requires to end cleanly; then cut wal in its last record.
		copyFileT(t, wal, filepath.Join(dir, "000999.log"))
		st, _ := os.Stat(wal)
		if err := os.Truncate(wal, st.Size()-20); err != nil {
			t.Fatal(err)
		}
		_, err := Open(dir, quietOptions(FsyncAlways))
		if err == nil || !strings.Contains(err.Error(), "WAL "+filepath.Base(wal)+" is damaged") {
			t.Fatalf("Open: %v; want an error naming %s", err, filepath.Base(wal))
		}
		t.Log(err)
	})
	t.Run("OPTIONS", func(t *testing.T) {
		dir := t.TempDir()
		s, _ := openTest(t, dir, FsyncAlways)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		opts, _ := filepath.Glob(filepath.Join(dir, "OPTIONS-*"))
		newest := opts[len(opts)-1]
		if err := os.WriteFile(newest, []byte("[Options]\n\x00\x01garbage\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Open(dir, quietOptions(FsyncAlways))
		if err == nil || !strings.Contains(err.Error(), filepath.Base(newest)+" is damaged") {
			t.Fatalf("Open: %v; want an error naming %s", err, filepath.Base(newest))
		}
		t.Log(err)
	})
}

func copyFileT(t *testing.T, from, to string) {
	t.Helper()
	if err := copyFile(from, to); err != nil {
		t.Fatal(err)
	}
}

// pebble's informational lines are debug output: at the default level (INFO) a start, some
// writes and a close log only the store's own lines.
func TestPebbleInfoIsDebug(t *testing.T) {
	lb := &logbuf.Buffer{}
	log := slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelInfo}))
	dir := t.TempDir()
	for range 2 {
		s, err := Open(dir, Options{Fsync: FsyncAlways, Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		writeSeparateBatches(t, s, 5)
		s.Close()
	}
	if strings.Contains(lb.String(), "engine=pebble") {
		t.Fatalf("pebble lines at INFO:\n%s", lb.String())
	}
}

// Tickets continue across restarts and the last one is recovered exactly, also after the WAL
// was switched (memtables flushed, older WALs removed) and across restarts without writes: no
// restart reports a loss that did not happen.
func TestTicketsContinueAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	payload := make([]byte, 64<<10)
	var last Ticket
	for round := range 4 {
		s, lb := openTest(t, dir, FsyncAlways)
		if round > 0 && s.pendingT != last+1 {
			t.Fatalf("round %d: next ticket %d, want %d", round, s.pendingT, last+1)
		}
		if strings.Contains(lb.String(), "level=WARN") || strings.Contains(lb.String(), "level=ERROR") {
			t.Fatalf("round %d: a restart reports a loss:\n%s", round, lb.String())
		}
		if round != 2 { // round 2 writes nothing
			for i := range 200 { // 12.8 MB: the 4 MiB memtable and its WAL switch several times
				last = s.PutMessage(uint64(i), &MessageRecord{Topic: "t", Payload: payload})
				wait(t, s, last)
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
