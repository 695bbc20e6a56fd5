package store

import (
	"fmt"
	"log/slog"
	"math"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

const (
	defaultInterval = 100 * time.Millisecond

	// maxPendingBytes bounds the batch that accumulates while a commit is in progress. A
	// mutation that finds the pending batch at or over it waits until the committer takes the
	// batch (backpressure), so a slow disk slows writers instead of growing memory without
	// bound. One mutation is always accepted into an empty batch, however large.
	maxPendingBytes = 64 << 20

	// neverTicket is what a refused mutation (after Close, or after a failed commit) returns:
	// it never becomes durable.
	neverTicket = Ticket(math.MaxUint64)
)

// DB is the pebble implementation of Store.
//
// Writes go through a group commit: a mutation appends to the pending batch under mu and gets
// that batch's ticket, without I/O. A single committer goroutine swaps in a fresh batch,
// commits the one it took (synced under FsyncAlways), marks its ticket durable and runs the
// Notify callbacks of tickets up to it, in ticket order. Mutations that arrive during a commit
// share the next one: N concurrent writers cost one fsync, not N.
//
// Reads see every mutation whose call returned before the read began: a read first waits for
// the commit of the pending batch, if any (read-your-writes; at most one group commit).
//
// One mutex, mu; nothing is called with it held except pebble's batch appends. Reads are counted
// under mu (not held during the read), so nested reads (a Load* from a LoadQueue callback) never
// deadlock with Close: once Close begins they get ErrClosed, and Close waits for the reads in
// progress before closing pebble. Notify callbacks run without mu; they must not block and must
// not call Load*, Sync or Close (those wait for the committer that runs them); a mutation from
// a callback is allowed but may wait under backpressure, so avoid it.
type DB struct {
	pdb        *pebble.DB
	log        *slog.Logger
	syncAlways bool
	maxPending int // maxPendingBytes; lowered by tests

	mu       sync.Mutex
	cond     sync.Cond     // on mu: the pending batch was taken, durability advanced, or the committer stopped
	pending  *pebble.Batch // the batch mutations append to; never nil while open
	pendingT Ticket        // the ticket of pending
	waiters  []waiter      // Notify callbacks, sorted by ticket (FIFO among equal tickets)
	closing  bool          // Close began: mutations are refused
	stopped  bool          // the committer exited: Notify calls fn at once
	failed   error         // a commit failed: nothing more becomes durable

	durable atomic.Uint64 // highest durable ticket

	kick    chan struct{}   // a mutation made pending non-empty (cap 1)
	syncReq chan chan error // Sync requests
	stop    chan struct{}   // closed by Close
	done    chan struct{}   // closed by the committer when it exits

	// Owned by the committer goroutine.
	dirty bool     // batches committed without sync since the last WAL sync
	fire  []waiter // callbacks being run

	commits  atomic.Uint64
	onCommit func(time.Duration, bool)
	walSyncs atomic.Uint64
	refused  atomic.Bool // a refused mutation was logged

	readers int  // reads in progress; under mu
	closed  bool // Close is closing or has closed pebble: reads are refused; under mu
}

type waiter struct {
	t  Ticket
	fn func()
}

var _ Store = (*DB)(nil)

// Open opens (creating it if needed) the store in dir and recovers what was committed: pebble
// replays its write-ahead log. A torn or damaged tail of the newest WAL does not prevent
// opening: see recovery.go for what is kept, what is dropped and what is logged.
func Open(dir string, opts Options) (*DB, error) {
	switch opts.Fsync {
	case FsyncAlways, FsyncInterval:
	default:
		return nil, fmt.Errorf("store: unknown fsync mode %d", opts.Fsync)
	}
	if opts.Interval <= 0 {
		opts.Interval = defaultInterval
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "store")
	start := time.Now()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	pdb, err := openPebble(dir, log)
	if err != nil {
		return nil, err
	}
	s := &DB{
		pdb:        pdb,
		log:        log,
		syncAlways: opts.Fsync == FsyncAlways,
		onCommit:   opts.OnCommit,
		maxPending: maxPendingBytes,
		pending:    pdb.NewBatch(),
		pendingT:   1,
		kick:       make(chan struct{}, 1),
		syncReq:    make(chan chan error),
		stop:       make(chan struct{}),
		done:       make(chan struct{}),
	}
	s.cond.L = &s.mu
	var ticker *time.Ticker
	if !s.syncAlways {
		ticker = time.NewTicker(opts.Interval)
	}
	go s.run(ticker)
	log.Info("store opened", "dir", dir, "fsync", opts.Fsync.String(), "interval", opts.Interval,
		"took", time.Since(start).Round(time.Millisecond))
	return s, nil
}

// run is the committer goroutine.
func (s *DB) run(ticker *time.Ticker) {
	defer s.exit()
	var tick <-chan time.Time
	if ticker != nil {
		defer ticker.Stop()
		tick = ticker.C
	}
	for {
		select {
		case <-s.kick:
			s.commit(false)
		case ch := <-s.syncReq:
			ch <- s.commit(true)
		case <-tick:
			if err := s.syncWAL(); err != nil {
				s.fail(err)
			}
		case <-s.stop:
			if err := s.commit(true); err != nil {
				s.log.Error("final commit failed", "error", err.Error())
			}
			return
		}
	}
}

// commit commits the pending batch, if any, synced under FsyncAlways or when forceSync. With
// forceSync and nothing pending, it syncs what earlier unsynced commits wrote.
func (s *DB) commit(forceSync bool) error {
	s.mu.Lock()
	if s.failed != nil {
		err := s.failed
		s.mu.Unlock()
		return err
	}
	b, t := s.pending, s.pendingT
	if b.Empty() {
		s.mu.Unlock()
		if forceSync {
			if err := s.syncWAL(); err != nil {
				s.fail(err)
				return err
			}
		}
		return nil
	}
	s.pending = s.pdb.NewBatch()
	s.pendingT++
	s.cond.Broadcast() // writers waiting under backpressure
	s.mu.Unlock()

	sync := s.syncAlways || forceSync
	wo := pebble.NoSync
	if sync {
		wo = pebble.Sync
	}
	size := b.Len()
	start := time.Now()
	err := b.Commit(wo)
	took := time.Since(start)
	_ = b.Close()
	if err != nil {
		err = fmt.Errorf("store: commit of ticket %d (%d bytes): %w", t, size, err)
		s.fail(err)
		return err
	}
	s.commits.Add(1)
	if s.onCommit != nil {
		s.onCommit(took, sync)
	}
	if sync {
		s.dirty = false
		s.walSyncs.Add(1)
	} else {
		s.dirty = true
	}
	s.markDurable(t)
	return nil
}

// syncWAL fsyncs the WAL if unsynced commits wrote to it. A batch with only a LogData record
// is written and synced like any other batch and skipped by replay; an empty batch would not
// reach the WAL at all (pebble's commitPipeline.Commit returns early for b.Empty()).
func (s *DB) syncWAL() error {
	if !s.dirty {
		return nil
	}
	if err := s.pdb.LogData(nil, pebble.Sync); err != nil {
		return fmt.Errorf("store: WAL sync: %w", err)
	}
	s.dirty = false
	s.walSyncs.Add(1)
	return nil
}

// markDurable records that every ticket <= t is durable and runs their callbacks in ticket order.
func (s *DB) markDurable(t Ticket) {
	s.mu.Lock()
	s.durable.Store(uint64(t))
	n, _ := slices.BinarySearchFunc(s.waiters, t+1, func(w waiter, t Ticket) int {
		if w.t < t {
			return -1
		}
		return 1
	})
	s.fire = append(s.fire[:0], s.waiters[:n]...)
	m := copy(s.waiters, s.waiters[n:])
	clear(s.waiters[m:])
	s.waiters = s.waiters[:m]
	s.cond.Broadcast()
	s.mu.Unlock()
	s.runFire()
}

func (s *DB) runFire() {
	for i := range s.fire {
		s.fire[i].fn()
		s.fire[i].fn = nil
	}
	s.fire = s.fire[:0]
}

// fail makes the store refuse further writes: once a commit failed, no later ticket may be
// reported durable (durability is a watermark). Callbacks still waiting are called (their
// tickets stay not durable).
func (s *DB) fail(err error) {
	s.mu.Lock()
	if s.failed == nil {
		s.failed = err
		s.log.Error("store failed: nothing written from now on becomes durable", "error", err.Error())
	}
	s.fire = append(s.fire[:0], s.waiters...)
	clear(s.waiters)
	s.waiters = s.waiters[:0]
	s.cond.Broadcast()
	s.mu.Unlock()
	s.runFire()
}

// exit runs when the committer stops: later Notify calls run fn at once, and callbacks still
// waiting (for tickets never issued) are called now.
func (s *DB) exit() {
	s.mu.Lock()
	s.stopped = true
	s.fire = append(s.fire[:0], s.waiters...)
	clear(s.waiters)
	s.waiters = nil
	s.cond.Broadcast()
	s.mu.Unlock()
	if len(s.fire) > 0 {
		s.log.Debug("callbacks for tickets never written called at close", "count", len(s.fire))
	}
	s.runFire()
	close(s.done)
}

// mutate appends to the pending batch and returns its ticket. It blocks only under
// backpressure (see maxPendingBytes).
func (s *DB) mutate(op string, f func(b *pebble.Batch)) Ticket {
	s.mu.Lock()
	for !s.closing && s.failed == nil && s.pending.Len() >= s.maxPending {
		s.cond.Wait()
	}
	if s.closing || s.failed != nil {
		closing := s.closing
		s.mu.Unlock()
		if !s.refused.Swap(true) {
			reason := "the store failed"
			if closing {
				reason = "the store is closed"
			}
			s.log.Warn("write refused: its ticket will never be durable (logged once)", "op", op, "reason", reason)
		}
		return neverTicket
	}
	f(s.pending)
	t := s.pendingT
	s.mu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
	return t
}

// Notify calls fn once every operation with ticket <= t is durable. fn runs on the committer
// goroutine and must not block; if t is already durable, fn runs before Notify returns, on the
// caller's goroutine. Callbacks run by the committer run in ticket order.
//
// fn is called exactly once in every case: when the store gives up on t (it was closed, or a
// commit failed) fn is called without t being durable, so a caller for whom it matters (an
// acknowledgement) checks Durable(t) in fn.
func (s *DB) Notify(t Ticket, fn func()) {
	if Ticket(s.durable.Load()) >= t {
		fn()
		return
	}
	s.mu.Lock()
	if Ticket(s.durable.Load()) >= t || s.stopped || s.failed != nil {
		s.mu.Unlock()
		fn()
		return
	}
	i, _ := slices.BinarySearchFunc(s.waiters, t+1, func(w waiter, t Ticket) int {
		if w.t < t {
			return -1
		}
		return 1
	})
	s.waiters = slices.Insert(s.waiters, i, waiter{t: t, fn: fn})
	s.mu.Unlock()
}

// Durable reports whether t is durable.
func (s *DB) Durable(t Ticket) bool { return Ticket(s.durable.Load()) >= t }

// Commits returns how many group commits wrote a batch so far (for tests, benchmarks and metrics).
func (s *DB) Commits() uint64 { return s.commits.Load() }

// WALSyncs returns how many times the WAL was fsynced so far.
func (s *DB) WALSyncs() uint64 { return s.walSyncs.Load() }

// Sync makes everything written so far durable, synced to disk in both fsync modes, and
// returns when it is.
func (s *DB) Sync() error {
	ch := make(chan error, 1)
	select {
	case s.syncReq <- ch:
		return <-ch
	case <-s.done:
		return ErrClosed
	}
}

// Close commits and syncs what is pending, runs the callbacks, stops the committer and closes
// pebble. Afterwards mutations are refused (they log once and return a ticket that never
// becomes durable), Notify calls fn at once, and reads, Sync and Close return ErrClosed.
func (s *DB) Close() error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return ErrClosed
	}
	s.closing = true
	s.cond.Broadcast()
	s.mu.Unlock()
	close(s.stop)
	<-s.done

	s.mu.Lock()
	s.closed = true
	for s.readers > 0 {
		s.cond.Wait()
	}
	failed := s.failed
	s.mu.Unlock()
	_ = s.pending.Close()
	err := s.pdb.Close()
	if err != nil {
		return fmt.Errorf("store: close: %w", err)
	}
	if failed != nil {
		return failed
	}
	s.log.Info("store closed", "commits", s.commits.Load(), "wal_syncs", s.walSyncs.Load())
	return nil
}

// beginRead registers a read and waits until every mutation issued so far is committed
// (read-your-writes). On success the caller must call endRead when done.
func (s *DB) beginRead() error { return s.beginReadWait(true) }

// beginReadWait is beginRead; without wait, the read sees what is committed now and does not
// wait for writes still pending (see LoadQueueCommitted).
func (s *DB) beginReadWait(wait bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if !wait {
		if s.failed != nil {
			return s.failed
		}
		s.readers++
		return nil
	}
	target := s.pendingT - 1
	if !s.pending.Empty() {
		target = s.pendingT
	}
	for Ticket(s.durable.Load()) < target && s.failed == nil && !s.stopped {
		s.cond.Wait()
	}
	if s.failed != nil {
		return s.failed
	}
	if s.closed {
		return ErrClosed
	}
	s.readers++
	return nil
}

func (s *DB) endRead() {
	s.mu.Lock()
	if s.readers--; s.readers == 0 {
		s.cond.Broadcast()
	}
	s.mu.Unlock()
}
