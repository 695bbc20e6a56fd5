package expiring

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/turnstilemq/turnstile/internal/clock"
	"github.com/turnstilemq/turnstile/internal/store"
)

// ErrFull is what Add wraps when the set holds Options.Max entries in force and the owner named
// no error of its own.
var ErrFull = errors.New("expiring: full")

// Index is the owner's secondary indexes over the entries of one snapshot (by client id, by jti,
// ...), X being the owner's own (pointer) type. A published snapshot is never changed: the set
// calls Add and Remove only on a fresh Clone, or on the empty index while New loads.
type Index[E, X any] interface {
	// Clone returns a copy that Add and Remove may change without changing the receiver.
	// Entries are shared: an entry is never modified once in a snapshot.
	Clone() X
	// Add indexes e.
	Add(e *E)
	// Remove forgets e, which Add indexed.
	Remove(e *E)
}

// Options configure a Set. ID, End and Compare are required, and so is Max; Namespace is
// required with a Store.
type Options[E any] struct {
	Namespace string        // the store.Records namespace of the entries
	Store     store.Records // nil: memory only
	Max       int           // the most entries held; Add prunes, then refuses with ErrFull
	ErrFull   error         // what Add wraps when full; nil: ErrFull
	Clock     clock.Clock   // nil: clock.Real
	Logger    *slog.Logger  // nil: slog.Default()

	// ID returns the entry's id: its key in the set and in the store.
	ID func(e *E) string
	// End returns the first instant at which e is no longer in force: the set prunes e then.
	End func(e *E) time.Time
	// Compare orders List.
	Compare func(a, b *E) int
	// Check validates an entry loaded from the store; one it refuses is logged and left in the
	// store. nil accepts every entry that decodes.
	Check func(e *E) error
}

// Snapshot is the immutable state the lookups read: the entries by id, and the owner's Index.
type Snapshot[E, X any] struct {
	byID  map[string]*E
	Index X
}

// Len returns the number of entries.
func (s *Snapshot[E, X]) Len() int { return len(s.byID) }

func (s *Snapshot[E, X]) clone(x X) *Snapshot[E, X] {
	return &Snapshot[E, X]{byID: maps.Clone(s.byID), Index: x}
}

// Set is a set of entries that end. It is safe for concurrent use; lookups (Load, Get, Len,
// List) take no lock.
type Set[E any, X Index[E, X]] struct {
	o   Options[E]
	clk clock.Clock
	log *slog.Logger
	cur atomic.Pointer[Snapshot[E, X]]

	mu        sync.Mutex // serializes changes; guards hooks, timer, timerAt, closed
	hooks     []func(E)
	timer     clock.Timer
	timerAt   time.Time
	closed    bool
	persisted func(store.Ticket) // waits for durability, when the store can tell
}

// New returns a set whose index starts as empty, loaded from o.Store when there is one.
// Entries already ended are deleted from the store as they are loaded; a record that cannot be
// decoded, whose id is not its key, or that o.Check refuses is logged and left alone. The error
// names the option at fault, or wraps the store's.
func New[E any, X Index[E, X]](o Options[E], empty X) (*Set[E, X], error) {
	switch {
	case o.ID == nil:
		return nil, errors.New("expiring: options: ID: nil")
	case o.End == nil:
		return nil, errors.New("expiring: options: End: nil")
	case o.Compare == nil:
		return nil, errors.New("expiring: options: Compare: nil")
	case o.Max <= 0:
		return nil, fmt.Errorf("expiring: options: Max: %d is not positive", o.Max)
	case o.Store != nil && o.Namespace == "":
		return nil, errors.New("expiring: options: Namespace: empty with a Store")
	}
	if o.ErrFull == nil {
		o.ErrFull = ErrFull
	}
	s := &Set[E, X]{o: o, clk: clock.Or(o.Clock), log: o.Logger}
	if s.log == nil {
		s.log = slog.Default()
	}
	if n, ok := o.Store.(interface {
		Notify(store.Ticket, func())
	}); ok {
		s.persisted = func(t store.Ticket) {
			done := make(chan struct{})
			n.Notify(t, func() { close(done) })
			<-done
		}
	}
	snap := &Snapshot[E, X]{byID: map[string]*E{}, Index: empty}
	if o.Store != nil {
		if err := s.load(snap); err != nil {
			return nil, err
		}
	}
	s.cur.Store(snap)
	s.mu.Lock()
	s.rearmLocked()
	s.mu.Unlock()
	return s, nil
}

// load adds the stored entries in force to snap, and deletes the ended ones from the store.
func (s *Set[E, X]) load(snap *Snapshot[E, X]) error {
	ns := s.o.Namespace
	now := s.clk.Now()
	var ended []string
	err := s.o.Store.LoadRecords(ns, func(key string, val []byte) error {
		e := new(E)
		if err := json.Unmarshal(val, e); err != nil || s.o.ID(e) != key {
			s.log.Warn("expiring: unreadable record left in the store", "namespace", ns, "key", key)
			return nil
		}
		if s.o.Check != nil {
			if err := s.o.Check(e); err != nil {
				s.log.Warn("expiring: invalid record left in the store", "namespace", ns, "key", key, "error", err)
				return nil
			}
		}
		if !now.Before(s.o.End(e)) {
			ended = append(ended, key)
			return nil
		}
		snap.byID[key] = e
		snap.Index.Add(e)
		return nil
	})
	if err != nil {
		return fmt.Errorf("expiring: loading %q: %w", ns, err)
	}
	for _, k := range ended {
		s.o.Store.DeleteRecord(ns, k)
	}
	return nil
}

// Load returns the current snapshot: one atomic load, no lock, no allocation. The caller must
// not change it.
func (s *Set[E, X]) Load() *Snapshot[E, X] { return s.cur.Load() }

// Add puts an entry in at instant now. find returns, from the current index, the entry the new
// one replaces (nil: none). build returns the new entry, not yet ended at now, given the one it
// replaces (or nil) and the id it must carry: the replaced entry's, else a new random one. A new
// entry needs room: when Max entries are held the set prunes those ended at now, and refuses
// with Options.ErrFull if that was not enough. The entry takes effect at once (find and build
// run under the set's lock, and must not call the set), then the OnAdd hooks run, then Add
// returns once the entry is durable. created reports whether no entry was replaced.
func (s *Set[E, X]) Add(now time.Time, find func(X) *E, build func(old *E, id string) *E) (_ E, created bool, _ error) {
	s.mu.Lock()
	cur := s.cur.Load()
	old := find(cur.Index)
	var id string
	if old != nil {
		id = s.o.ID(old)
	} else {
		if len(cur.byID) >= s.o.Max {
			cur = s.pruneLocked(now)
		}
		if len(cur.byID) >= s.o.Max {
			s.mu.Unlock()
			var zero E
			return zero, false, fmt.Errorf("%w: %d in force", s.o.ErrFull, len(cur.byID))
		}
		id = newID()
	}
	e := build(old, id)
	next := cur.clone(cur.Index.Clone())
	if old != nil {
		delete(next.byID, id)
		next.Index.Remove(old)
	}
	next.byID[id] = e
	next.Index.Add(e)
	s.cur.Store(next)
	t := s.putLocked(id, e)
	s.rearmLocked()
	hooks := slices.Clone(s.hooks)
	s.mu.Unlock()
	for _, fn := range hooks {
		fn(*e)
	}
	if s.persisted != nil && s.o.Store != nil {
		s.persisted(t)
	}
	return *e, old == nil, nil
}

// putLocked writes e to the store. mu held.
func (s *Set[E, X]) putLocked(id string, e *E) store.Ticket {
	if s.o.Store == nil {
		return 0
	}
	data, err := json.Marshal(e)
	if err != nil { // the owner's entry type encodes, or no Add ever stores it
		s.log.Error("expiring: encoding an entry", "namespace", s.o.Namespace, "id", id, "error", err)
		return 0
	}
	return s.o.Store.PutRecord(s.o.Namespace, id, data)
}

// OnAdd registers fn to run after each Add, once the entry is in force, outside the set's lock,
// in the goroutine of Add.
func (s *Set[E, X]) OnAdd(fn func(E)) {
	s.mu.Lock()
	s.hooks = append(s.hooks, fn)
	s.mu.Unlock()
}

// Get returns the entry with id.
func (s *Set[E, X]) Get(id string) (E, bool) {
	e, ok := s.cur.Load().byID[id]
	if !ok {
		var zero E
		return zero, false
	}
	return *e, true
}

// Len returns the number of entries held (ended ones too, until they are pruned).
func (s *Set[E, X]) Len() int { return len(s.cur.Load().byID) }

// List returns the entries held, in Options.Compare order.
func (s *Set[E, X]) List() []E {
	snap := s.cur.Load()
	ptrs := slices.Collect(maps.Values(snap.byID))
	slices.SortFunc(ptrs, s.o.Compare)
	out := make([]E, len(ptrs))
	for i, e := range ptrs {
		out[i] = *e
	}
	return out
}

// Delete removes the entry with id, from the store too, and reports whether there was one.
func (s *Set[E, X]) Delete(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.cur.Load()
	e, ok := cur.byID[id]
	if !ok {
		return false
	}
	next := cur.clone(cur.Index.Clone())
	delete(next.byID, id)
	next.Index.Remove(e)
	s.cur.Store(next)
	if s.o.Store != nil {
		s.o.Store.DeleteRecord(s.o.Namespace, id)
	}
	s.rearmLocked()
	return true
}

// Prune removes the entries ended at now and returns how many. The set also prunes by itself, on
// its clock, when the earliest end comes.
func (s *Set[E, X]) Prune(now time.Time) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.cur.Load().byID)
	s.pruneLocked(now)
	s.rearmLocked()
	return n - len(s.cur.Load().byID)
}

// pruneLocked removes the entries ended at now and returns the new snapshot. mu held.
func (s *Set[E, X]) pruneLocked(now time.Time) *Snapshot[E, X] {
	cur := s.cur.Load()
	var next *Snapshot[E, X]
	for id, e := range cur.byID {
		if now.Before(s.o.End(e)) {
			continue
		}
		if next == nil {
			next = cur.clone(cur.Index.Clone())
		}
		delete(next.byID, id)
		next.Index.Remove(e)
		if s.o.Store != nil {
			s.o.Store.DeleteRecord(s.o.Namespace, id)
		}
	}
	if next == nil {
		return cur
	}
	s.cur.Store(next)
	return next
}

// rearmLocked arms the prune timer for the earliest end, or stops it when the set is empty.
// mu held.
func (s *Set[E, X]) rearmLocked() {
	if s.closed {
		return
	}
	var first time.Time
	for _, e := range s.cur.Load().byID {
		if end := s.o.End(e); first.IsZero() || end.Before(first) {
			first = end
		}
	}
	if first.IsZero() {
		if s.timer != nil {
			s.timer.Stop()
			s.timer, s.timerAt = nil, time.Time{}
		}
		return
	}
	if s.timer != nil && s.timerAt.Equal(first) {
		return
	}
	if s.timer != nil {
		s.timer.Stop()
	}
	s.timerAt = first
	s.timer = s.clk.AfterFunc(first.Sub(s.clk.Now()), func() { s.Prune(s.clk.Now()) })
}

// Close stops the prune timer. The set still answers, and changes, afterwards; it prunes only
// when Add needs room or Prune is called.
func (s *Set[E, X]) Close() {
	s.mu.Lock()
	s.closed = true
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	s.mu.Unlock()
}

// Entries is the reading and removing half of a Set: List, Get, Len, Delete, Prune and Close. A
// typed wrapper (ban.List, revoke.Set) embeds it and keeps Add behind its own validation.
type Entries[E any, X Index[E, X]] struct{ s *Set[E, X] }

// Entries returns the set's Entries.
func (s *Set[E, X]) Entries() Entries[E, X] { return Entries[E, X]{s} }

// List returns the entries held, in Options.Compare order.
func (e Entries[E, X]) List() []E { return e.s.List() }

// Get returns the entry with id.
func (e Entries[E, X]) Get(id string) (E, bool) { return e.s.Get(id) }

// Len returns the number of entries held (ended ones too, until they are pruned).
func (e Entries[E, X]) Len() int { return e.s.Len() }

// Delete removes the entry with id, from the store too, and reports whether there was one.
func (e Entries[E, X]) Delete(id string) bool { return e.s.Delete(id) }

// Prune removes the entries ended at now and returns how many.
func (e Entries[E, X]) Prune(now time.Time) int { return e.s.Prune(now) }

// Close stops the prune timer; the set still answers afterwards.
func (e Entries[E, X]) Close() { e.s.Close() }

// newID returns 12 random bytes in hex.
func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
