package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// Degraded mode.
//
// The store is degraded from the first failed write to the disk (guardFS reports every one,
// whichever pebble goroutine made it) until a probe succeeds:
//
//   - the tickets not yet durable fail: their callbacks run, Status reports them failed, and the
//     batch still being formed is discarded;
//   - mutations are refused (refusedTicket) and reads go on;
//   - Healthy returns the reason (one atomic load: the broker checks it before routing);
//   - the committer probes on a backoff (1 s doubling to 30 s, timings): a probe file written and
//     synced beside pebble's, then a synced empty batch through pebble. When both succeed and
//     no failure was reported meanwhile, the store is healthy again.
//
// The first failure is logged at ERROR with the data directory, the file, the operation and
// the error; then at most one line per 30 s (timings.logInterval), with the counts since the last line; the
// recovery with how long it lasted and how many writes were refused.
//
// A failed sync of the WAL or MANIFEST, or pebble giving up on a write (Fatalf), is not
// retried: the data the disk acknowledged may be lost, and pebble cannot go on. The store then
// stays degraded until it is restarted; the next Open recovers what the log holds.

// ErrUnavailable is wrapped by the errors of a store that cannot write (Healthy, Status, Sync).
var ErrUnavailable = errors.New("store: cannot write")

const (
	maxFailRanges = 64
	probeName     = "turnstile-probe" // pebble ignores files it does not know
	probeSize     = 1 << 20           // a probe that small writes fit after is no proof of room
)

// failRange is a run of tickets that failed: none of their writes is reported durable (some may
// have reached the disk).
type failRange struct {
	from, to Ticket
	err      error
}

// healthState is the degraded state and the failed tickets; guarded by DB.mu.
type healthState struct {
	degraded error // non-nil while writes are refused
	poisoned error // non-nil once pebble cannot go on: degraded until restarted
	since    time.Time
	failures uint64 // failed disk operations this episode
	refused  uint64 // mutations refused this episode
	lastLine time.Time
	lineFail uint64 // counts at the last log line
	lineRef  uint64
	failed   []failRange   // in ticket order, disjoint
	sig      chan struct{} // closed when the store becomes degraded; replaced when it recovers
}

// failedErr returns the error of the failed range holding t, or nil.
func (h *healthState) failedErr(t Ticket) error {
	if t == refusedTicket {
		if h.degraded != nil {
			return h.degraded
		}
		return ErrUnavailable
	}
	for i := len(h.failed) - 1; i >= 0; i-- {
		r := &h.failed[i]
		if t > r.to {
			return nil
		}
		if t >= r.from {
			return r.err
		}
	}
	return nil
}

// addFailed records a failed range, merging the oldest two when there are too many (which
// reports the durable tickets between them failed: never the other way round).
func (h *healthState) addFailed(r failRange) {
	if n := len(h.failed); n > 0 && h.failed[n-1].to >= r.from {
		h.failed[n-1].to = max(h.failed[n-1].to, r.to)
		return
	}
	if len(h.failed) == maxFailRanges {
		h.failed[1].from = h.failed[0].from
		h.failed = append(h.failed[:0], h.failed[1:]...)
	}
	h.failed = append(h.failed, r)
}

// diskError is guardFS's report of a failed disk operation, from any goroutine.
func (s *DB) diskError(op, path string, err error, fatal bool) {
	var pe *fs.PathError
	if !errors.As(err, &pe) { // an *fs.PathError names its operation and file itself
		err = fmt.Errorf("%s %s: %w", op, filepath.Base(path), err)
	}
	s.degradeWith(err, fatal)
}

// failCommit handles a commit or sync that pebble failed: pebble cannot go on.
func (s *DB) failCommit(err error) { s.degradeWith(err, true) }

// backgroundError handles pebble's BackgroundError: a failed flush or compaction, whose disk
// failure guardFS has already reported, or something else, which is logged.
func (s *DB) backgroundError(err error) {
	if s.Healthy() != nil {
		s.log.Debug("pebble background error while degraded", "error", err.Error())
		return
	}
	s.log.Error("pebble background error", "dir", s.dir, "error", err.Error())
}

// degradeWith makes the store degraded (see above) and logs, rate-limited.
func (s *DB) degradeWith(cause error, fatal bool) {
	now := time.Now()
	var fire []waiter
	s.mu.Lock()
	h := &s.health
	first := h.degraded == nil
	newlyPoisoned := fatal && h.poisoned == nil
	if newlyPoisoned {
		h.poisoned = fmt.Errorf("%w: data directory %s: %w (the store stopped writing; restart to recover its log)", ErrUnavailable, s.dir, cause)
		h.degraded = h.poisoned
		e := h.poisoned // a copy: Healthy reads it without mu
		s.unhealthy.Store(&e)
	}
	if first {
		if !newlyPoisoned {
			h.degraded = fmt.Errorf("%w: data directory %s: %w", ErrUnavailable, s.dir, cause)
			e := h.degraded
			s.unhealthy.Store(&e)
		}
		h.since, h.lastLine = now, now
		h.failures, h.refused, h.lineFail, h.lineRef = 0, 0, 0, 0
		r := failRange{from: Ticket(s.durable.Load()) + 1, to: s.pendingT, err: h.degraded}
		h.addFailed(r)
		s.failedMax.Store(uint64(h.failed[len(h.failed)-1].to))
		if !s.closed {
			s.pending.Reset()
			s.pendingT++
		}
		close(h.sig)
		fire = append(fire, s.waiters...)
		clear(s.waiters)
		s.waiters = s.waiters[:0]
		s.cond.Broadcast()
	}
	h.failures++
	line := !first && !newlyPoisoned && now.Sub(h.lastLine) >= s.fs.tm.logInterval
	var failures, refused uint64
	if line {
		failures, refused = h.failures-h.lineFail, h.refused-h.lineRef
		h.lastLine, h.lineFail, h.lineRef = now, h.failures, h.refused
	}
	since := h.since
	s.mu.Unlock()

	switch {
	case newlyPoisoned:
		s.log.Error("store failed: pebble cannot go on after this error; writes are refused until the broker is restarted (the next start recovers the log)",
			"dir", s.dir, "error", cause.Error())
	case first:
		s.log.Error("store cannot write: writes are refused until it can; retrying",
			"dir", s.dir, "error", cause.Error())
	case line:
		s.log.Error("store still cannot write", "dir", s.dir, "for", now.Sub(since).Round(time.Millisecond),
			"failures", failures, "refused_writes", refused, "error", cause.Error())
	}
	if first {
		if len(fire) > 0 {
			// Not on the goroutine that found the failure: it may be one of pebble's, and the
			// callbacks are the broker's.
			go func() {
				for _, w := range fire {
					w.fn()
				}
			}()
		}
		select { // the committer starts probing
		case s.kick <- struct{}{}:
		default:
		}
	}
}

// probe checks whether the disk takes writes again; on success the store is healthy again. It
// runs on the committer.
func (s *DB) probe() bool {
	s.mu.Lock()
	poisoned := s.health.poisoned
	s.mu.Unlock()
	if poisoned != nil {
		s.degradeWith(errors.New("still failed (restart required)"), false)
		return false
	}
	n := s.fs.failures.Load()
	err := probeDir(s.fs.FS, s.dir)
	if err != nil {
		s.degradeWith(fmt.Errorf("probe: %w", err), false)
		return false
	}
	s.fs.reset() // writes waiting in guardFS retry now, not at the end of their backoff
	// Through pebble: may wait in guardFS until the disk takes its write.
	if err := s.apply(nil, pebble.Sync); err != nil {
		s.failCommit(fmt.Errorf("probe: %w", err))
		return false
	}
	if s.fs.failures.Load() != n {
		return false // something else failed meanwhile: not yet
	}
	now := time.Now()
	s.mu.Lock()
	h := &s.health
	since, failures, refused := h.since, h.failures, h.refused
	h.degraded = nil
	h.sig = make(chan struct{})
	s.unhealthy.Store(nil)
	s.cond.Broadcast()
	s.mu.Unlock()
	s.fs.reset()
	s.log.Info("store can write again", "dir", s.dir, "after", now.Sub(since).Round(time.Millisecond),
		"failures", failures, "refused_writes", refused)
	return true
}

// probeDir writes a probe file of probeSize bytes in dir, syncs it and removes it, on fs
// itself (not through guardFS: it fails fast).
func probeDir(fs vfs.FS, dir string) error {
	path := fs.PathJoin(dir, probeName)
	f, err := fs.Create(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		return err
	}
	buf := make([]byte, 64<<10)
	for n := 0; n < probeSize && err == nil; n += len(buf) {
		_, err = f.Write(buf)
	}
	if err == nil {
		err = f.Sync()
	}
	err = errors.Join(err, f.Close(), fs.Remove(path))
	return err
}

// pebbleSink is pebble's Logger and the sink of its events: its log lines go to the store's
// logger (INFO at DEBUG), Fatalf for a failed write is recorded instead of ending the process,
// and everything is muted once the store gave up on this pebble (see openPebble).
type pebbleSink struct {
	log   *slog.Logger
	fatal atomic.Pointer[error]
	muted atomic.Bool
	wal   atomic.Pointer[string] // base name of the newest WAL pebble created

	mu         sync.Mutex
	background func(error)
	onFatal    func(error)
}

func newPebbleSink(log *slog.Logger) *pebbleSink {
	return &pebbleSink{log: log.With("engine", "pebble")}
}

func (l *pebbleSink) setBackground(fn func(error)) {
	l.mu.Lock()
	l.background = fn
	l.mu.Unlock()
}

func (l *pebbleSink) setOnFatal(fn func(error)) {
	l.mu.Lock()
	l.onFatal = fn
	l.mu.Unlock()
}

func (l *pebbleSink) newestWAL() string {
	if p := l.wal.Load(); p != nil {
		return *p
	}
	return ""
}

func (l *pebbleSink) fatalErr() error {
	if p := l.fatal.Load(); p != nil {
		return *p
	}
	return nil
}

func (l *pebbleSink) logf(level slog.Level, format string, args []any) {
	if !l.muted.Load() && l.log.Enabled(context.Background(), level) {
		l.log.Log(context.Background(), level, fmt.Sprintf(format, args...))
	}
}

// Infof: pebble's informational lines (WAL replay, flushes) are for debugging.
func (l *pebbleSink) Infof(format string, args ...any)  { l.logf(slog.LevelDebug, format, args) }
func (l *pebbleSink) Errorf(format string, args ...any) { l.logf(slog.LevelError, format, args) }

// Fatalf is called when pebble cannot go on. For a failed write (a failed commit, MANIFEST
// write or sync) the store records it and returns: pebble then returns the error to its caller
// (or, for DB.Apply, nil: apply checks fatalErr after every commit) and the store stops
// writing. Anything else is an invariant violation inside pebble: logged, then a panic, as
// pebble's default logger exits.
func (l *pebbleSink) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if writeFailure(format, msg, args) {
		err := fmt.Errorf("pebble: %s", msg)
		if l.fatal.CompareAndSwap(nil, &err) {
			l.mu.Lock()
			fn := l.onFatal
			l.mu.Unlock()
			if fn != nil {
				fn(err)
			}
		}
		return
	}
	if !l.muted.Load() {
		l.log.Error("fatal: "+msg, "fatal", true)
	}
	panic("store: pebble: " + msg)
}

func writeFailure(format, msg string, args []any) bool {
	if strings.HasPrefix(format, "pebble: fatal commit error") || strings.HasPrefix(msg, "MANIFEST") {
		return true
	}
	for _, a := range args {
		if err, ok := a.(error); ok {
			var pe *fs.PathError
			var errno syscall.Errno
			if errors.As(err, &pe) || errors.As(err, &errno) {
				return true
			}
		}
	}
	return false
}

func (l *pebbleSink) backgroundError(err error) {
	l.mu.Lock()
	fn := l.background
	l.mu.Unlock()
	if l.muted.Load() {
		return
	}
	if fn != nil {
		fn(err)
		return
	}
	l.log.Error("background error", "error", err.Error())
}

func (l *pebbleSink) listener() *pebble.EventListener {
	return &pebble.EventListener{
		BackgroundError: l.backgroundError,
		WALCreated: func(info pebble.WALCreateInfo) {
			name := filepath.Base(info.Path)
			l.wal.Store(&name)
		},
		DataCorruption: func(info pebble.DataCorruptionInfo) {
			if !l.muted.Load() {
				l.log.Error("data corruption", "info", info.String())
			}
		},
		WriteStallBegin: func(info pebble.WriteStallBeginInfo) {
			if !l.muted.Load() {
				l.log.Warn("write stall", "reason", info.String())
			}
		},
		WriteStallEnd: func() {
			if !l.muted.Load() {
				l.log.Info("write stall ended")
			}
		},
		LowDiskSpace: func(info pebble.LowDiskSpaceInfo) {
			if !l.muted.Load() {
				l.log.Warn("low disk space", "info", info.String())
			}
		},
	}
}
