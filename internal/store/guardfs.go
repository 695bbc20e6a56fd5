package store

import (
	"errors"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// guardFS is the filesystem pebble writes through. It turns a full or failing disk into a state
// the store handles (degraded: writes refused, retried, recovered) instead of a crash.
//
// pebble (v2.1.7) treats most write failures as fatal. A failed WAL write or sync fails the
// commit and pebble calls Logger.Fatalf (db.go, DB.applyInternal); a failed WAL switch panics
// in DB.rotateWAL after unlocking DB.mu, which a deferred unlock turns into an unrecoverable
// "unlock of unlocked mutex"; a failed WAL write sticks in the log writer, and the next commit
// panics while holding the commit pipeline's mutex, which DB.Close then waits for; a failed
// MANIFEST write is fatal (versionSet.logAndApply). A failed flush or compaction is not fatal,
// but it is retried at once, forever (DB.flush: "TODO: backoff"): a full disk spins a core and
// floods the log, and pebble.Open, which waits for the flush of the WALs it replayed, never
// returns.
//
// So, by the kind of file:
//
//   - WAL, MANIFEST and marker files (critical): a failed create, write or rename is reported
//     to the store and retried, on a backoff of 1 s doubling to 30 s, until it succeeds; pebble
//     never sees it. A write is retried from the first byte not written, so a partial write is
//     completed, never duplicated. The store refuses new writes meanwhile and reports the ones
//     in flight as failed (db.go). A failed sync is not retried (after a failed fsync the
//     kernel may have dropped the data and a retry may succeed without writing it): it is
//     reported as fatal and returned; the store stops writing until it is restarted.
//   - sstables and blob files: a failure is reported and returned (pebble retries the flush or
//     compaction); a new one is created no sooner than the backoff after the last failure, so
//     the retries do not spin.
//   - everything else (OPTIONS, temporary files, the lock, directories): reported and returned.
//
// During Open (modeFailFast) nothing is retried: pebble.Open returns the error, or, while it
// waits for a flush that cannot succeed, the store gives up on it (modeAbandon). At Close
// failures are returned, not retried (modeFailFast), and while the store is degraded pebble's
// flushes and compactions stop too (modeAbort).
type guardFS struct {
	vfs.FS

	tm       timings
	mode     atomic.Int32
	failures atomic.Uint64 // write failures seen, all kinds

	mu       sync.Mutex
	onError  func(op, path string, err error, fatal bool) // under mu for setting; called without it
	lastFail time.Time
	streak   int           // consecutive failures since the last reset
	wake     chan struct{} // closed and replaced by reset: waits end early
	abortCh  chan struct{} // closed when the mode becomes modeAbort or modeAbandon
}

const (
	modeFailFast int32 = iota // Open: report and return
	modeBlock                 // running: critical writes retried until they succeed
	modeAbort                 // closing: report and return, no waiting
	modeAbandon               // pebble.Open given up: fail everything, slowly
)

// timings are the retry and logging intervals; tests shorten them (Options.timings).
type timings struct {
	minBackoff, maxBackoff time.Duration // retries and probes: minBackoff doubling to maxBackoff
	logInterval            time.Duration // at most one line per logInterval while degraded
}

var defaultTimings = timings{minBackoff: time.Second, maxBackoff: 30 * time.Second, logInterval: 30 * time.Second}

// errAborted is returned by a retry or a wait cut short by Close.
var errAborted = errors.New("store: write abandoned: the store is closing")

func newGuardFS(fs vfs.FS, tm timings) *guardFS {
	return &guardFS{FS: fs, tm: tm, wake: make(chan struct{}), abortCh: make(chan struct{})}
}

type fileKind uint8

const (
	fileOther fileKind = iota
	fileCritical
	fileTable
)

// kindOf classifies a pebble file by its name (pebble/v2/internal/base.MakeFilename).
func kindOf(path string) fileKind {
	name := path[strings.LastIndexByte(path, os.PathSeparator)+1:]
	switch {
	case strings.HasSuffix(name, ".log"), strings.HasPrefix(name, "MANIFEST-"), strings.HasPrefix(name, "marker."):
		return fileCritical
	case strings.HasSuffix(name, ".sst"), strings.HasSuffix(name, ".blob"):
		return fileTable
	}
	return fileOther
}

func (g *guardFS) setMode(m int32) {
	if old := g.mode.Swap(m); (m == modeAbort || m == modeAbandon) && old != modeAbort && old != modeAbandon {
		close(g.abortCh)
	}
}

func (g *guardFS) setOnError(fn func(op, path string, err error, fatal bool)) {
	g.mu.Lock()
	g.onError = fn
	g.mu.Unlock()
}

// backoffLocked is how long after the last failure the next attempt may start.
func (g *guardFS) backoffLocked() time.Duration {
	if g.streak == 0 {
		return 0
	}
	if g.mode.Load() == modeAbandon {
		return g.tm.maxBackoff
	}
	d := g.tm.minBackoff << min(g.streak-1, 5)
	return min(d, g.tm.maxBackoff)
}

// reset forgets past failures (the store found the disk writable again), so that pebble's
// pending flush is retried at once.
func (g *guardFS) reset() {
	g.mu.Lock()
	g.streak = 0
	close(g.wake)
	g.wake = make(chan struct{})
	g.mu.Unlock()
}

// report records a failure and tells the store.
func (g *guardFS) report(op, path string, err error, fatal bool) {
	g.failures.Add(1)
	g.mu.Lock()
	g.lastFail = time.Now()
	g.streak++
	fn := g.onError
	g.mu.Unlock()
	if fn != nil {
		fn(op, path, err, fatal)
	}
}

// wait sleeps until the backoff after the last failure has passed. It returns false when the
// store is closing (or gave up) and the caller should stop retrying.
func (g *guardFS) wait() bool {
	g.mu.Lock()
	d := time.Until(g.lastFail.Add(g.backoffLocked()))
	wake := g.wake
	g.mu.Unlock()
	if g.mode.Load() == modeAbort {
		return false
	}
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return g.mode.Load() != modeAbort
	case <-wake:
		return g.mode.Load() != modeAbort
	case <-g.abortCh:
		if g.mode.Load() == modeAbandon {
			// Given up on during Open: keep failing, slowly, until the process exits.
			<-t.C
		}
		return false
	}
}

// do runs a write-type operation on a file of kind k. Failures are reported; critical ones
// are retried while the store runs (modeBlock).
func (g *guardFS) do(k fileKind, op, path string, fn func() error) error {
	if g.mode.Load() == modeAbandon {
		g.wait()
		return errAborted
	}
	if k == fileTable && op == "create" {
		if !g.wait() {
			return errAborted
		}
	}
	for {
		err := fn()
		if err == nil {
			return nil
		}
		g.report(op, path, err, false)
		if k != fileCritical || g.mode.Load() != modeBlock || !g.wait() {
			return err
		}
	}
}

// sync runs a sync. A failed sync of a critical file (or directory) is fatal for the store.
func (g *guardFS) sync(k fileKind, op, path string, fn func() error) error {
	if g.mode.Load() == modeAbandon {
		return errAborted
	}
	err := fn()
	if err != nil {
		g.report(op, path, err, k != fileTable)
	}
	return err
}

func (g *guardFS) wrap(f vfs.File, path string) vfs.File {
	if f == nil {
		return nil
	}
	return &guardFile{File: f, fs: g, path: path, kind: kindOf(path)}
}

func (g *guardFS) Create(name string, category vfs.DiskWriteCategory) (vfs.File, error) {
	var f vfs.File
	err := g.do(kindOf(name), "create", name, func() (err error) {
		f, err = g.FS.Create(name, category)
		return err
	})
	return g.wrap(f, name), err
}

func (g *guardFS) Link(oldname, newname string) error {
	return g.do(kindOf(newname), "link", newname, func() error { return g.FS.Link(oldname, newname) })
}

func (g *guardFS) OpenReadWrite(name string, category vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	var f vfs.File
	err := g.do(kindOf(name), "open", name, func() (err error) {
		f, err = g.FS.OpenReadWrite(name, category, opts...)
		return err
	})
	return g.wrap(f, name), err
}

func (g *guardFS) OpenDir(name string) (vfs.File, error) {
	f, err := g.FS.OpenDir(name)
	if f == nil {
		return nil, err
	}
	// A directory is synced after files are created or renamed in it: treat it as critical.
	return &guardFile{File: f, fs: g, path: name, kind: fileCritical}, err
}

func (g *guardFS) Rename(oldname, newname string) error {
	return g.do(kindOf(newname), "rename", newname, func() error { return g.FS.Rename(oldname, newname) })
}

func (g *guardFS) ReuseForWrite(oldname, newname string, category vfs.DiskWriteCategory) (vfs.File, error) {
	var f vfs.File
	err := g.do(kindOf(newname), "reuse", newname, func() (err error) {
		f, err = g.FS.ReuseForWrite(oldname, newname, category)
		return err
	})
	return g.wrap(f, newname), err
}

func (g *guardFS) MkdirAll(dir string, perm os.FileMode) error {
	return g.do(fileOther, "mkdir", dir, func() error { return g.FS.MkdirAll(dir, perm) })
}

func (g *guardFS) Unwrap() vfs.FS { return g.FS }

// guardFile routes a file's writes and syncs through its guardFS.
type guardFile struct {
	vfs.File
	fs   *guardFS
	path string
	kind fileKind
}

func (f *guardFile) Write(p []byte) (int, error) {
	n, err := f.File.Write(p)
	if err == nil {
		return n, nil
	}
	// Retried from the first byte not written.
	first := true
	err = f.fs.do(f.kind, "write", f.path, func() error {
		if first {
			first = false
			return err
		}
		m, err := f.File.Write(p[n:])
		n += m
		return err
	})
	return n, err
}

func (f *guardFile) WriteAt(p []byte, off int64) (int, error) {
	n, err := f.File.WriteAt(p, off)
	if err == nil {
		return n, nil
	}
	first := true
	err = f.fs.do(f.kind, "write", f.path, func() error {
		if first {
			first = false
			return err
		}
		m, err := f.File.WriteAt(p[n:], off+int64(n))
		n += m
		return err
	})
	return n, err
}

func (f *guardFile) Preallocate(off, length int64) error {
	err := f.File.Preallocate(off, length)
	if err == nil {
		return nil
	}
	first := true
	return f.fs.do(f.kind, "preallocate", f.path, func() error {
		if first {
			first = false
			return err
		}
		return f.File.Preallocate(off, length)
	})
}

func (f *guardFile) Sync() error {
	return f.fs.sync(f.kind, "sync", f.path, f.File.Sync)
}

func (f *guardFile) SyncData() error {
	return f.fs.sync(f.kind, "sync", f.path, f.File.SyncData)
}

func (f *guardFile) SyncTo(length int64) (fullSync bool, err error) {
	err = f.fs.sync(f.kind, "sync", f.path, func() (err error) {
		fullSync, err = f.File.SyncTo(length)
		return err
	})
	return fullSync, err
}

var _ vfs.FS = (*guardFS)(nil)
var _ io.Writer = (*guardFile)(nil)
