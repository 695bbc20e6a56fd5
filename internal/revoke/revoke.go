package revoke

import (
	"cmp"
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

	"github.com/turnstilemq/turnstile/internal/auth"
	"github.com/turnstilemq/turnstile/internal/clock"
	"github.com/turnstilemq/turnstile/internal/store"
)

// Namespace is the store.Records namespace of the set.
const Namespace = "revocations"

// Defaults of the zero Options fields.
const (
	DefaultMaxTokenLifetime = 24 * time.Hour
	DefaultMaxEntries       = 100_000
	maxValueLen             = 1024
)

// By is what a revocation matches.
type By string

const (
	ByJTI     By = "jti" // one token, by its jti
	BySubject By = "sub" // every token of a subject (of one issuer, or of any)
	ByKeyID   By = "kid" // every token signed with a key: the key is compromised
)

// Revocation is one entry of the set.
type Revocation struct {
	ID      string    `json:"id"`
	By      By        `json:"by"`
	Value   string    `json:"value"`
	Issuer  string    `json:"issuer,omitempty"` // BySubject only; "" matches every issuer
	Created time.Time `json:"created"`
	// Until is when the entry ends: no credential it covers is valid after it (for a jti, the
	// token's exp when known).
	Until time.Time `json:"until"`
}

// inForce reports whether r is in force at instant at: through its Until, not after.
func (r *Revocation) inForce(at time.Time) bool { return !at.After(r.Until) }

// Errors of Add and New.
var (
	ErrInvalid = errors.New("revoke: invalid revocation")
	ErrFull    = errors.New("revoke: too many revocations")
)

// Options configure a Set. The zero value is a memory-only set with the defaults.
type Options struct {
	// Store persists the set; nil keeps it in memory only.
	Store store.Records
	// MaxTokenLifetime is how long a revocation stays when no Until is given: the longest
	// lifetime a token of the identity provider may have. 0: 24 h.
	MaxTokenLifetime time.Duration
	// MaxEntries bounds the set; 0: 100 000.
	MaxEntries int
	Clock      clock.Clock
	Logger     *slog.Logger
}

// snapshot is the immutable state the checks read.
type snapshot struct {
	byID map[string]*Revocation
	jti  map[string]*Revocation
	kid  map[string]*Revocation
	sub  map[string][]*Revocation // by subject; one entry per issuer ("" = any)
}

func (s *snapshot) empty() bool { return len(s.byID) == 0 }

// Set is the revocation set. It is safe for concurrent use.
type Set struct {
	o   Options
	clk clock.Clock
	log *slog.Logger
	cur atomic.Pointer[snapshot]

	mu        sync.Mutex // serializes changes; guards hooks, timer, closed
	hooks     []func(Revocation)
	timer     clock.Timer
	timerAt   time.Time
	closed    bool
	persisted func(store.Ticket) // waits for durability, when the store can tell
}

// New returns a set, loaded from o.Store when there is one. Entries already past their Until
// are deleted from the store as they are loaded; a record that cannot be read is logged and
// left alone.
func New(o Options) (*Set, error) {
	if o.MaxTokenLifetime < 0 {
		return nil, fmt.Errorf("%w: max_token_lifetime: negative", ErrInvalid)
	}
	if o.MaxTokenLifetime == 0 {
		o.MaxTokenLifetime = DefaultMaxTokenLifetime
	}
	if o.MaxEntries <= 0 {
		o.MaxEntries = DefaultMaxEntries
	}
	s := &Set{o: o, clk: clock.Or(o.Clock), log: o.Logger}
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
	snap := newSnapshot()
	if o.Store != nil {
		now := s.clk.Now()
		var expired []string
		err := o.Store.LoadRecords(Namespace, func(key string, val []byte) error {
			var r Revocation
			if err := json.Unmarshal(val, &r); err != nil || r.ID != key || validate(r.By, r.Value) != nil {
				s.log.Warn("revoke: unreadable revocation record left in the store", "key", key)
				return nil
			}
			if !r.inForce(now) {
				expired = append(expired, key)
				return nil
			}
			snap.add(&r)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("revoke: loading: %w", err)
		}
		for _, k := range expired {
			o.Store.DeleteRecord(Namespace, k)
		}
	}
	s.cur.Store(snap)
	s.mu.Lock()
	s.rearmLocked()
	s.mu.Unlock()
	return s, nil
}

func newSnapshot() *snapshot {
	return &snapshot{byID: map[string]*Revocation{}, jti: map[string]*Revocation{}, kid: map[string]*Revocation{}, sub: map[string][]*Revocation{}}
}

// clone copies the maps (entries are shared: they are never modified once in a snapshot).
func (s *snapshot) clone() *snapshot {
	c := &snapshot{byID: maps.Clone(s.byID), jti: maps.Clone(s.jti), kid: maps.Clone(s.kid), sub: maps.Clone(s.sub)}
	return c
}

func (s *snapshot) add(r *Revocation) {
	s.byID[r.ID] = r
	switch r.By {
	case ByJTI:
		s.jti[r.Value] = r
	case ByKeyID:
		s.kid[r.Value] = r
	case BySubject:
		list := slices.DeleteFunc(slices.Clone(s.sub[r.Value]), func(x *Revocation) bool { return x.Issuer == r.Issuer })
		s.sub[r.Value] = append(list, r)
	}
}

func (s *snapshot) remove(r *Revocation) {
	delete(s.byID, r.ID)
	switch r.By {
	case ByJTI:
		if s.jti[r.Value] == r {
			delete(s.jti, r.Value)
		}
	case ByKeyID:
		if s.kid[r.Value] == r {
			delete(s.kid, r.Value)
		}
	case BySubject:
		list := slices.DeleteFunc(slices.Clone(s.sub[r.Value]), func(x *Revocation) bool { return x == r })
		if len(list) == 0 {
			delete(s.sub, r.Value)
		} else {
			s.sub[r.Value] = list
		}
	}
}

// existing returns the entry with the same key (by, value, issuer), if any.
func (s *snapshot) existing(by By, value, issuer string) *Revocation {
	switch by {
	case ByJTI:
		return s.jti[value]
	case ByKeyID:
		return s.kid[value]
	case BySubject:
		for _, r := range s.sub[value] {
			if r.Issuer == issuer {
				return r
			}
		}
	}
	return nil
}

func validate(by By, value string) error {
	switch by {
	case ByJTI, BySubject, ByKeyID:
	default:
		return fmt.Errorf("%w: by: %q is not jti, sub or kid", ErrInvalid, by)
	}
	if value == "" {
		return fmt.Errorf("%w: %s: empty", ErrInvalid, by)
	}
	if len(value) > maxValueLen {
		return fmt.Errorf("%w: %s: longer than %d bytes", ErrInvalid, by, maxValueLen)
	}
	return nil
}

// Add revokes by jti, subject (of any issuer) or key id until until; a zero until means now +
// MaxTokenLifetime (for a jti, pass the token's exp when it is known). Adding what is already
// revoked extends its Until and returns the entry, keeping its ID. It takes effect at once,
// runs the OnRevoke hooks, then returns once the entry is durable. The error names the field.
func (s *Set) Add(by By, value string, until time.Time) (Revocation, error) {
	return s.add(by, value, "", until)
}

// AddSubject revokes every token of subject sub issued by issuer ("" for any issuer).
func (s *Set) AddSubject(sub, issuer string, until time.Time) (Revocation, error) {
	return s.add(BySubject, sub, issuer, until)
}

func (s *Set) add(by By, value, issuer string, until time.Time) (Revocation, error) {
	if err := validate(by, value); err != nil {
		return Revocation{}, err
	}
	if len(issuer) > maxValueLen {
		return Revocation{}, fmt.Errorf("%w: issuer: longer than %d bytes", ErrInvalid, maxValueLen)
	}
	now := s.clk.Now()
	if until.IsZero() {
		until = now.Add(s.o.MaxTokenLifetime)
	}
	if !until.After(now) {
		return Revocation{}, fmt.Errorf("%w: until: %s has passed", ErrInvalid, until.UTC().Format(time.RFC3339))
	}
	s.mu.Lock()
	cur := s.cur.Load()
	r := &Revocation{By: by, Value: value, Issuer: issuer, Created: now, Until: until.UTC()}
	if old := cur.existing(by, value, issuer); old != nil {
		r.ID, r.Created = old.ID, old.Created
		r.Until = maxTime(old.Until, r.Until)
	} else {
		if len(cur.byID) >= s.o.MaxEntries {
			cur = s.pruneLocked(now)
		}
		if len(cur.byID) >= s.o.MaxEntries {
			s.mu.Unlock()
			return Revocation{}, fmt.Errorf("%w: %d in force", ErrFull, len(cur.byID))
		}
		r.ID = newID()
	}
	next := cur.clone()
	if old := cur.byID[r.ID]; old != nil {
		next.remove(old)
	}
	next.add(r)
	s.cur.Store(next)
	t := s.put(r)
	s.rearmLocked()
	hooks := slices.Clone(s.hooks)
	s.mu.Unlock()
	for _, fn := range hooks {
		fn(*r)
	}
	if s.persisted != nil && s.o.Store != nil {
		s.persisted(t)
	}
	return *r, nil
}

// put writes r to the store. mu held.
func (s *Set) put(r *Revocation) store.Ticket {
	if s.o.Store == nil {
		return 0
	}
	b, err := json.Marshal(r)
	if err != nil { // cannot happen: plain strings and times
		s.log.Error("revoke: encoding a revocation", "id", r.ID, "error", err)
		return 0
	}
	return s.o.Store.PutRecord(Namespace, r.ID, b)
}

// OnRevoke registers fn to run after each Add, once the revocation is in force, outside the
// set's lock, in the goroutine of Add. The broker disconnects the connections the revocation
// covers (Revoked on each live identity) and suppresses their wills.
func (s *Set) OnRevoke(fn func(Revocation)) {
	s.mu.Lock()
	s.hooks = append(s.hooks, fn)
	s.mu.Unlock()
}

// Revoked reports whether a revocation in force at at covers a credential of id: its jti, its
// key id, or its subject (the credential's, else the identity's) with the identity's issuer or
// any. It returns the first that does. An identity without credentials (a local user) is never
// revoked here, and costs not even the atomic load; an empty set costs that one load.
func (s *Set) Revoked(id *auth.Identity, at time.Time) (Revocation, bool) {
	if len(id.Creds) == 0 {
		return Revocation{}, false
	}
	snap := s.cur.Load()
	if snap.empty() {
		return Revocation{}, false
	}
	for i := range id.Creds {
		c := &id.Creds[i]
		if c.ID != "" {
			if r := snap.jti[c.ID]; r != nil && r.inForce(at) {
				return *r, true
			}
		}
		if c.KeyID != "" {
			if r := snap.kid[c.KeyID]; r != nil && r.inForce(at) {
				return *r, true
			}
		}
		sub := cmp.Or(c.Subject, id.Subject)
		if sub == "" {
			continue
		}
		for _, r := range snap.sub[sub] {
			if (r.Issuer == "" || r.Issuer == id.Issuer) && r.inForce(at) {
				return *r, true
			}
		}
	}
	return Revocation{}, false
}

// List returns the revocations in force, oldest first.
func (s *Set) List() []Revocation {
	snap := s.cur.Load()
	out := make([]Revocation, 0, len(snap.byID))
	for _, r := range snap.byID {
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b Revocation) int { return cmp.Or(a.Created.Compare(b.Created), cmp.Compare(a.ID, b.ID)) })
	return out
}

// Get returns the revocation with id.
func (s *Set) Get(id string) (Revocation, bool) {
	r, ok := s.cur.Load().byID[id]
	if !ok {
		return Revocation{}, false
	}
	return *r, true
}

// Len returns the number of revocations held.
func (s *Set) Len() int { return len(s.cur.Load().byID) }

// Delete lifts the revocation with id and reports whether there was one. Connections it
// closed stay closed; the credentials it covered are accepted again.
func (s *Set) Delete(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.cur.Load()
	r, ok := cur.byID[id]
	if !ok {
		return false
	}
	next := cur.clone()
	next.remove(r)
	s.cur.Store(next)
	if s.o.Store != nil {
		s.o.Store.DeleteRecord(Namespace, id)
	}
	s.rearmLocked()
	return true
}

// Prune removes the revocations whose Until is before now and returns how many. The set also
// prunes by itself, on its clock, when the earliest Until passes.
func (s *Set) Prune(now time.Time) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.cur.Load().byID)
	s.pruneLocked(now)
	s.rearmLocked()
	return n - len(s.cur.Load().byID)
}

// pruneLocked removes the entries past their Until and returns the new snapshot. mu held.
func (s *Set) pruneLocked(now time.Time) *snapshot {
	cur := s.cur.Load()
	var next *snapshot
	for _, r := range cur.byID {
		if r.inForce(now) {
			continue
		}
		if next == nil {
			next = cur.clone()
		}
		next.remove(r)
		if s.o.Store != nil {
			s.o.Store.DeleteRecord(Namespace, r.ID)
		}
	}
	if next == nil {
		return cur
	}
	s.cur.Store(next)
	return next
}

// rearmLocked arms the prune timer for just after the earliest Until. mu held.
func (s *Set) rearmLocked() {
	if s.closed {
		return
	}
	var first time.Time
	for _, r := range s.cur.Load().byID {
		if first.IsZero() || r.Until.Before(first) {
			first = r.Until
		}
	}
	if first.IsZero() {
		if s.timer != nil {
			s.timer.Stop()
			s.timer, s.timerAt = nil, time.Time{}
		}
		return
	}
	at := first.Add(time.Nanosecond) // in force through Until, gone after it
	if s.timer != nil && s.timerAt.Equal(at) {
		return
	}
	if s.timer != nil {
		s.timer.Stop()
	}
	s.timerAt = at
	s.timer = s.clk.AfterFunc(at.Sub(s.clk.Now()), func() { s.Prune(s.clk.Now()) })
}

// Close stops the prune timer. The set still answers afterwards.
func (s *Set) Close() {
	s.mu.Lock()
	s.closed = true
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	s.mu.Unlock()
}

func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
