package revoke

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/turnstilemq/turnstile/internal/auth"
	"github.com/turnstilemq/turnstile/internal/clock"
	"github.com/turnstilemq/turnstile/internal/expiring"
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

// index is the set's secondary indexes, in each snapshot: what Revoked reads.
type index struct {
	jti map[string]*Revocation
	kid map[string]*Revocation
	sub map[string][]*Revocation // by subject; one entry per issuer ("" = any)
}

var _ expiring.Index[Revocation, *index] = (*index)(nil)

// Set is the revocation set. It is safe for concurrent use. Its embedded Entries list the
// revocations (oldest first), get, count, lift (Delete: connections a revocation closed stay
// closed; the credentials it covered are accepted again) and prune them; the set also prunes by
// itself when the earliest Until passes.
type Set struct {
	expiring.Entries[Revocation, *index]
	o   Options
	clk clock.Clock
	set *expiring.Set[Revocation, *index]
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
	set, err := expiring.New(expiring.Options[Revocation]{
		Namespace: Namespace,
		Store:     o.Store,
		Max:       o.MaxEntries,
		ErrFull:   ErrFull,
		Clock:     o.Clock,
		Logger:    o.Logger,
		ID:        func(r *Revocation) string { return r.ID },
		End:       func(r *Revocation) time.Time { return r.Until.Add(time.Nanosecond) }, // in force through Until
		Compare:   func(a, b *Revocation) int { return cmp.Or(a.Created.Compare(b.Created), cmp.Compare(a.ID, b.ID)) },
		Check:     func(r *Revocation) error { return validate(r.By, r.Value) },
	}, newIndex())
	if err != nil {
		return nil, fmt.Errorf("revoke: %w", err)
	}
	return &Set{Entries: set.Entries(), o: o, clk: clock.Or(o.Clock), set: set}, nil
}

func newIndex() *index {
	return &index{jti: map[string]*Revocation{}, kid: map[string]*Revocation{}, sub: map[string][]*Revocation{}}
}

// Clone implements expiring.Index: it copies the maps (a subject's slice is copied when it
// changes).
func (x *index) Clone() *index {
	return &index{jti: maps.Clone(x.jti), kid: maps.Clone(x.kid), sub: maps.Clone(x.sub)}
}

// Add implements expiring.Index.
func (x *index) Add(r *Revocation) {
	switch r.By {
	case ByJTI:
		x.jti[r.Value] = r
	case ByKeyID:
		x.kid[r.Value] = r
	case BySubject:
		list := slices.DeleteFunc(slices.Clone(x.sub[r.Value]), func(y *Revocation) bool { return y.Issuer == r.Issuer })
		x.sub[r.Value] = append(list, r)
	}
}

// Remove implements expiring.Index.
func (x *index) Remove(r *Revocation) {
	switch r.By {
	case ByJTI:
		if x.jti[r.Value] == r {
			delete(x.jti, r.Value)
		}
	case ByKeyID:
		if x.kid[r.Value] == r {
			delete(x.kid, r.Value)
		}
	case BySubject:
		list := slices.DeleteFunc(slices.Clone(x.sub[r.Value]), func(y *Revocation) bool { return y == r })
		if len(list) == 0 {
			delete(x.sub, r.Value)
		} else {
			x.sub[r.Value] = list
		}
	}
}

// existing returns the entry with the same key (by, value, issuer), if any.
func (x *index) existing(by By, value, issuer string) *Revocation {
	switch by {
	case ByJTI:
		return x.jti[value]
	case ByKeyID:
		return x.kid[value]
	case BySubject:
		for _, r := range x.sub[value] {
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
	r := &Revocation{By: by, Value: value, Issuer: issuer, Created: now, Until: until.UTC()}
	got, _, err := s.set.Add(now,
		func(x *index) *Revocation { return x.existing(by, value, issuer) },
		func(old *Revocation, id string) *Revocation {
			r.ID = id
			if old != nil {
				r.Created, r.Until = old.Created, maxTime(old.Until, r.Until)
			}
			return r
		})
	return got, err
}

// OnRevoke registers fn to run after each Add, once the revocation is in force, outside the
// set's lock, in the goroutine of Add. The broker disconnects the connections the revocation
// covers (Revoked on each live identity) and suppresses their wills.
func (s *Set) OnRevoke(fn func(Revocation)) { s.set.OnAdd(fn) }

// Revoked reports whether a revocation in force at at covers a credential of id: its jti, its
// key id, or its subject (the credential's, else the identity's) with the identity's issuer or
// any. It returns the first that does. An identity without credentials (a local user) is never
// revoked here, and costs not even the atomic load; an empty set costs that one load.
func (s *Set) Revoked(id *auth.Identity, at time.Time) (Revocation, bool) {
	if len(id.Creds) == 0 {
		return Revocation{}, false
	}
	snap := s.set.Load()
	if snap.Len() == 0 {
		return Revocation{}, false
	}
	x := snap.Index
	for i := range id.Creds {
		c := &id.Creds[i]
		if c.ID != "" {
			if r := x.jti[c.ID]; r != nil && r.inForce(at) {
				return *r, true
			}
		}
		if c.KeyID != "" {
			if r := x.kid[c.KeyID]; r != nil && r.inForce(at) {
				return *r, true
			}
		}
		sub := cmp.Or(c.Subject, id.Subject)
		if sub == "" {
			continue
		}
		for _, r := range x.sub[sub] {
			if (r.Issuer == "" || r.Issuer == id.Issuer) && r.inForce(at) {
				return *r, true
			}
		}
	}
	return Revocation{}, false
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
