package store

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

const (
	defaultInterval = 100 * time.Millisecond

	// maxPendingBytes bounds the batch that accumulates while a commit is in progress. A
	// mutation that finds the pending batch at or over it waits until the committer takes the
	// batch (backpressure), so a slow disk slows writers instead of growing memory without
	// bound. One mutation is always accepted into an empty batch, however large.
	maxPendingBytes = 64 << 20

	// refusedTicket is what a refused mutation (while the store cannot write, or after Close)
	// returns: it is failed from the start. It is the largest ticket, so a caller that keeps
	// the max of several tickets keeps the failure.
	refusedTicket = Ticket(math.MaxUint64)

	// closeGrace is how long Close waits for a committer blocked on a full disk before it
	// stops the retries, and again before it gives up on it.
	closeGrace = 2 * time.Second
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
// When the disk cannot be written (health.go), the store is degraded: the tickets not yet
// durable fail, their callbacks run, mutations are refused (refusedTicket) and reads go on.
// The committer probes the disk on a backoff and the store recovers by itself when a probe
// succeeds; after a failed sync it stays failed until restarted.
//
// One mutex, mu; nothing is called with it held except pebble's batch appends. Reads are counted
// under mu (not held during the read), so nested reads (a Load* from a LoadQueue callback) never
// deadlock with Close: once Close begins they get ErrClosed, and Close waits for the reads in
// progress before closing pebble. Notify callbacks run without mu; they must not block and must
// not call Load*, Sync or Close (those wait for the committer that runs them); a mutation from
// a callback is allowed but may wait under backpressure, so avoid it.
type DB struct {
	pdb        *pebble.DB
	fs         *guardFS
	sink       *pebbleSink
	dir        string
	log        *slog.Logger
	syncAlways bool
	maxPending int // maxPendingBytes; lowered by tests

	mu       sync.Mutex
	cond     sync.Cond     // on mu: the pending batch was taken, a ticket was resolved, or the committer stopped
	pending  *pebble.Batch // the batch mutations append to; never nil while open
	pendingT Ticket        // the ticket of pending
	waiters  []waiter      // Notify callbacks, sorted by ticket (FIFO among equal tickets)
	closing  bool          // Close began: mutations are refused
	stopped  bool          // the committer exited: Notify calls fn at once
	health   healthState   // degraded state, failed tickets (health.go)

	durable   atomic.Uint64         // highest durable ticket (tickets in failed ranges excepted)
	synced    atomic.Uint64         // highest ticket whose WAL write was synced (durable.go)
	failedMax atomic.Uint64         // highest ticket of any failed range; 0 if none
	unhealthy atomic.Pointer[error] // non-nil while writes are refused: Healthy's answer

	kick    chan struct{}   // a mutation made pending non-empty, or the store became degraded (cap 1)
	syncReq chan chan error // Sync requests
	stop    chan struct{}   // closed by Close
	done    chan struct{}   // closed by the committer when it exits

	// Owned by the committer goroutine.
	dirty bool                            // batches committed without sync since the last WAL sync
	fire  []waiter                        // callbacks being run
	tbuf  [1 + binary.MaxVarintLen64]byte // a batch's ticket record (durable.go)

	recordStop chan struct{} // stops recordLoop
	recordDone chan struct{}

	commits    atomic.Uint64
	onCommit   func(time.Duration, bool)
	walSyncs   atomic.Uint64
	refusedLog atomic.Bool // a write refused after Close was logged
	panicked   atomic.Bool // pebble panicked in a commit: it cannot be closed (its commit mutex is held)

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
//
// Open writes before it returns (a probe file, then a synced probe through pebble): a store
// that cannot be written fails to open with one error naming dir, and nothing is left running.
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
	base := opts.FS
	if base == nil {
		base = vfs.Default
	}
	start := time.Now()
	if err := base.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: data directory %s: %w", dir, err)
	}
	if err := probeDir(base, dir); err != nil {
		return nil, fmt.Errorf("store: data directory %s cannot be written: %w", dir, err)
	}
	tm := defaultTimings
	if opts.timings != nil {
		tm = *opts.timings
	}
	g := newGuardFS(base, tm)
	sink := newPebbleSink(log)
	rec, recErr := readDurableRecord(base, dir)
	rep, walTicket := inspectWAL(dir) // before pebble opens: it removes the WALs it replays
	pdb, rep, err := openPebble(dir, g, sink, rep)
	if err != nil {
		return nil, err
	}
	s := &DB{
		pdb:        pdb,
		fs:         g,
		sink:       sink,
		dir:        dir,
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
	s.health.sig = make(chan struct{})
	fail := func(err error) (*DB, error) {
		_ = s.pending.Close()
		_ = s.closePebble()
		return nil, err
	}
	// Tickets continue from the last one recovered (durable.go).
	recovered, err := s.recoveredTicket()
	if err != nil {
		return fail(err)
	}
	recovered = max(recovered, walTicket)
	if err := s.checkFormat(); err != nil { // before any write: it tells a new store by its emptiness
		return fail(err)
	}
	// Still failing fast (guardFS modeFailFast): a disk that cannot take a synced write fails
	// Open here, once, instead of degrading later. The write keeps the recovered ticket.
	b := pdb.NewBatch()
	_ = b.Set(ticketKey, binary.AppendUvarint(nil, uint64(recovered)), nil)
	err = s.apply(b, pebble.Sync)
	_ = b.Close()
	if err != nil {
		return fail(fmt.Errorf("store: data directory %s cannot be written: %w", dir, err))
	}
	s.pendingT = recovered + 1
	s.durable.Store(uint64(recovered))
	s.synced.Store(uint64(recovered))
	if recErr != nil {
		log.Warn("durability record unreadable; what recovery may have lost cannot be checked", "dir", dir, "error", recErr.Error())
	}
	s.reportRecovery(rep, rec, recovered)
	g.setOnError(s.diskError)
	sink.setBackground(s.backgroundError)
	sink.setOnFatal(s.failCommit)
	g.setMode(modeBlock)
	var ticker *time.Ticker
	if !s.syncAlways {
		ticker = time.NewTicker(opts.Interval)
	}
	go s.run(ticker)
	s.recordStop, s.recordDone = make(chan struct{}), make(chan struct{})
	go s.recordLoop(s.recordStop, s.recordDone)
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
	// The probe timer's channel is nil while the store is healthy: a select costs per live
	// channel, and this one runs for every group commit.
	probe := time.NewTimer(time.Hour)
	probe.Stop()
	defer probe.Stop()
	var probeC <-chan time.Time
	backoff := time.Duration(0)
	for {
		select {
		case <-s.kick: // a mutation, or the store became degraded (degradeWith)
			if probeC == nil && s.unhealthy.Load() != nil {
				backoff = s.fs.tm.minBackoff
				probe.Reset(backoff)
				probeC = probe.C
			}
			s.commit(false)
		case ch := <-s.syncReq:
			ch <- s.commit(true)
		case <-tick:
			if s.Healthy() == nil {
				if err := s.syncWAL(); err != nil {
					s.failCommit(err)
				}
			}
		case <-probeC:
			if s.probe() {
				probeC = nil
				continue
			}
			backoff = min(2*backoff, s.fs.tm.maxBackoff)
			probe.Reset(backoff)
		case <-s.stop:
			if s.Healthy() == nil {
				if err := s.commit(true); err != nil {
					s.log.Error("final commit failed", "dir", s.dir, "error", err.Error())
				}
			}
			return
		}
	}
}

// commit commits the pending batch, if any, synced under FsyncAlways or when forceSync. With
// forceSync and nothing pending, it syncs what earlier unsynced commits wrote.
func (s *DB) commit(forceSync bool) error {
	s.mu.Lock()
	if err := s.health.degraded; err != nil {
		s.mu.Unlock()
		return err
	}
	b, t := s.pending, s.pendingT
	if b.Empty() {
		s.mu.Unlock()
		if forceSync {
			if err := s.syncWAL(); err != nil {
				s.failCommit(err)
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
	// The ticket goes into the WAL record (not the memtable: no cost beyond a few bytes), so
	// that recovery knows the last one it replayed; a large batch, which pebble writes into the
	// WAL it is about to leave, keeps it under the ticket key too (durable.go).
	n := binary.PutUvarint(s.tbuf[1:], uint64(t))
	if b.Len() >= largeBatch {
		_ = b.Set(ticketKey, s.tbuf[1:1+n], nil)
	}
	s.tbuf[0] = ticketTag
	_ = b.LogData(s.tbuf[:1+n], nil)
	size := b.Len()
	start := time.Now()
	err := s.apply(b, wo)
	took := time.Since(start)
	_ = b.Close()
	if err != nil {
		err = fmt.Errorf("commit of ticket %d (%d bytes): %w", t, size, err)
		s.failCommit(err)
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
	if sync {
		s.synced.Store(uint64(t))
	}
	return nil
}

// apply commits b (nil: an empty LogData batch, which pebble writes and syncs like any other
// and replay skips) and turns pebble's ways of failing into an error: an error return, a
// Fatalf (recorded by pebbleSink, which returns instead of exiting), or a panic. A panic
// leaves pebble's commit mutex held, so the DB can no longer be closed.
func (s *DB) apply(b *pebble.Batch, wo *pebble.WriteOptions) (err error) {
	defer func() {
		if r := recover(); r != nil {
			s.panicked.Store(true)
			err = fmt.Errorf("pebble: %v", r)
		}
	}()
	if b == nil {
		err = s.pdb.LogData(nil, wo)
	} else {
		err = b.Commit(wo)
	}
	if err == nil {
		err = s.sink.fatalErr()
	}
	return err
}

// syncWAL fsyncs the WAL if unsynced commits wrote to it. A batch with only a LogData record
// is written and synced like any other batch and skipped by replay; an empty batch would not
// reach the WAL at all (pebble's commitPipeline.Commit returns early for b.Empty()).
func (s *DB) syncWAL() error {
	if !s.dirty {
		return nil
	}
	d := s.durable.Load() // everything committed so far is in the WAL this sync covers
	if err := s.apply(nil, pebble.Sync); err != nil {
		return fmt.Errorf("WAL sync: %w", err)
	}
	s.synced.Store(d)
	s.dirty = false
	s.walSyncs.Add(1)
	return nil
}

// markDurable records that every ticket <= t is durable and runs their callbacks in ticket order.
func (s *DB) markDurable(t Ticket) {
	s.mu.Lock()
	s.durable.Store(uint64(t))
	n := s.waitersUpToLocked(t)
	s.fire = append(s.fire[:0], s.waiters[:n]...)
	s.dropWaitersLocked(n)
	s.cond.Broadcast()
	s.mu.Unlock()
	s.runFire()
}

// waitersUpToLocked returns how many waiters wait for tickets <= t. mu held.
func (s *DB) waitersUpToLocked(t Ticket) int {
	n, _ := slices.BinarySearchFunc(s.waiters, t+1, func(w waiter, t Ticket) int {
		if w.t < t {
			return -1
		}
		return 1
	})
	return n
}

// dropWaitersLocked removes the first n waiters. mu held.
func (s *DB) dropWaitersLocked(n int) {
	m := copy(s.waiters, s.waiters[n:])
	clear(s.waiters[m:])
	s.waiters = s.waiters[:m]
}

func (s *DB) runFire() {
	for i := range s.fire {
		s.fire[i].fn()
		s.fire[i].fn = nil
	}
	s.fire = s.fire[:0]
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
// backpressure (see maxPendingBytes). While the store cannot write, and after Close, it
// returns refusedTicket and writes nothing.
func (s *DB) mutate(op string, f func(b *pebble.Batch)) Ticket {
	s.mu.Lock()
	for !s.closing && s.health.degraded == nil && s.pending.Len() >= s.maxPending {
		s.cond.Wait()
	}
	if s.closing || s.health.degraded != nil {
		closing := s.closing
		if !closing {
			s.health.refused++
		}
		s.mu.Unlock()
		if closing && !s.refusedLog.Swap(true) {
			s.log.Warn("write refused: the store is closed; its ticket will never be durable (logged once)", "op", op)
		}
		return refusedTicket
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

// Notify calls fn once the operations with ticket <= t are durable, or once t has failed.
// fn runs on the committer goroutine (or on the goroutine that found the disk failing) and
// must not block; if t is already durable or failed, fn runs before Notify returns, on the
// caller's goroutine. Callbacks run by the committer run in ticket order.
//
// fn is called exactly once in every case: when the store gives up on t (a write failed, the
// store cannot write, or it was closed) fn is called without t being durable, so a caller for
// whom it matters (an acknowledgement) checks Status(t) in fn.
func (s *DB) Notify(t Ticket, fn func()) {
	if Ticket(s.durable.Load()) >= t {
		fn()
		return
	}
	s.mu.Lock()
	if done, _ := s.statusLocked(t); done || s.stopped {
		s.mu.Unlock()
		fn()
		return
	}
	i := s.waitersUpToLocked(t)
	s.waiters = slices.Insert(s.waiters, i, waiter{t: t, fn: fn})
	s.mu.Unlock()
}

// Durable reports whether t is durable.
func (s *DB) Durable(t Ticket) bool {
	done, err := s.Status(t)
	return done && err == nil
}

// Status reports whether t is resolved and how: (false, nil) while it is pending, (true, nil)
// once it is durable, (true, err) when it failed: its writes are not durable (some may reach
// the disk; none is reported durable). err wraps ErrUnavailable.
func (s *DB) Status(t Ticket) (done bool, err error) {
	if t == 0 {
		return true, nil
	}
	if t != refusedTicket && uint64(t) > s.failedMax.Load() {
		return uint64(t) <= s.durable.Load(), nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.statusLocked(t)
}

func (s *DB) statusLocked(t Ticket) (bool, error) {
	if t == 0 {
		return true, nil
	}
	if err := s.health.failedErr(t); err != nil {
		return true, err
	}
	return uint64(t) <= s.durable.Load(), nil
}

// Healthy returns nil while the store can write, and why it cannot while it is degraded: the
// error wraps ErrUnavailable and names the data directory. It is one atomic load.
func (s *DB) Healthy() error {
	if p := s.unhealthy.Load(); p != nil {
		return *p
	}
	return nil
}

// Commits returns how many group commits wrote a batch so far (for tests, benchmarks and metrics).
func (s *DB) Commits() uint64 { return s.commits.Load() }

// WALSyncs returns how many times the WAL was fsynced so far.
func (s *DB) WALSyncs() uint64 { return s.walSyncs.Load() }

// WALBytesWritten returns how many bytes pebble has written to its write-ahead logs since
// Open (for tests and benchmarks).
func (s *DB) WALBytesWritten() uint64 { return s.pdb.Metrics().WAL.BytesWritten }

// Sync makes everything written so far durable, synced to disk in both fsync modes, and
// returns when it is. While the store cannot write, it returns why.
func (s *DB) Sync() error {
	s.mu.Lock()
	sig, err := s.health.sig, s.health.degraded
	s.mu.Unlock()
	if err != nil {
		return err
	}
	ch := make(chan error, 1)
	select {
	case s.syncReq <- ch:
	case <-s.done:
		return ErrClosed
	case <-sig: // the committer may be blocked on the disk
		return s.Healthy()
	}
	select {
	case err := <-ch:
		return err
	case <-sig:
		return s.Healthy()
	}
}

// Close commits and syncs what is pending, runs the callbacks, stops the committer and closes
// pebble. Afterwards mutations are refused (they log once and return a ticket that never
// becomes durable), Notify calls fn at once, and reads, Sync and Close return ErrClosed.
//
// A committer blocked on a full disk is given closeGrace, then its retries are stopped (the
// blocked write fails); if it is still blocked after another closeGrace, Close returns an error
// and leaves pebble open: the process is expected to exit, and the next Open recovers the WAL.
func (s *DB) Close() error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return ErrClosed
	}
	s.closing = true
	s.cond.Broadcast()
	s.mu.Unlock()
	close(s.recordStop)
	<-s.recordDone
	close(s.stop)
	if !s.waitDone(closeGrace) {
		s.log.Warn("closing: a write is blocked on the disk; abandoning it", "dir", s.dir)
		s.fs.setMode(modeAbort)
		if !s.waitDone(closeGrace) {
			return fmt.Errorf("store: close %s: a write is still blocked on the disk; the store is left open (the next start recovers its log)", s.dir)
		}
	}

	s.mu.Lock()
	s.closed = true
	for s.readers > 0 {
		s.cond.Wait()
	}
	degraded := s.health.degraded
	s.mu.Unlock()
	if err := s.writeDurableRecord(s.currentRecord()); err != nil {
		s.log.Debug("durability record not written at close", "error", err.Error())
	}
	_ = s.pending.Close()
	if err := s.closePebble(); err != nil {
		if degraded != nil {
			return degraded
		}
		return fmt.Errorf("store: close %s: %w", s.dir, err)
	}
	if degraded != nil {
		return degraded
	}
	s.log.Info("store closed", "commits", s.commits.Load(), "wal_syncs", s.walSyncs.Load())
	return nil
}

func (s *DB) waitDone(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-s.done:
		return true
	case <-t.C:
		return false
	}
}

// closePebble closes pebble without waiting on the disk: a failed write is returned, not
// retried, and while the store is degraded pebble's flushes stop too (otherwise they finish, so
// that the next start has less to replay). A pebble that panicked in a commit holds its commit
// mutex and cannot be closed; it is left open.
func (s *DB) closePebble() error {
	if s.Healthy() != nil {
		s.fs.setMode(modeAbort)
	} else {
		s.fs.setMode(modeFailFast)
	}
	if s.panicked.Load() {
		return fmt.Errorf("pebble cannot be closed after it panicked in a commit; left open")
	}
	return s.pdb.Close()
}

// beginRead registers a read and waits until every mutation issued so far is committed
// (read-your-writes). On success the caller must call endRead when done.
func (s *DB) beginRead() error { return s.beginReadWait(true) }

// beginReadWait is beginRead; without wait, the read sees what is committed now and does not
// wait for writes still pending (see LoadQueueCommitted). A read waits for the pending
// mutations to be durable or failed; it then reads whatever pebble holds (a failed write may
// or may not be visible).
func (s *DB) beginReadWait(wait bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if wait {
		target := s.pendingT - 1
		if !s.pending.Empty() {
			target = s.pendingT
		}
		for !s.stopped {
			if done, _ := s.statusLocked(target); done {
				break
			}
			s.cond.Wait()
		}
		if s.closed {
			return ErrClosed
		}
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
