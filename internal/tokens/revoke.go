package tokens

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/turnstilemq/turnstile/internal/store"
)

// Revoker holds the revoked token ids (tokens.md §7). A revocation lasts until the token's own
// exp; after that the token is refused as expired anyway. Package internal/revoke may replace
// this package's implementation.
type Revoker interface {
	// RevokeToken records jti as revoked until until.
	RevokeToken(jti string, until time.Time) error
	// TokenRevoked reports whether jti is revoked.
	TokenRevoked(jti string) bool
}

// ErrRevocationsFull: the revocation set holds its maximum of unexpired entries.
var ErrRevocationsFull = errors.New("tokens: revocation set is full")

// RevocationSet is an in-memory Revoker persisted in store.Records (namespace
// "tokens.revoked": key jti, value the Unix milliseconds until which it holds). It is bounded:
// entries past their time are dropped, and when the set is full of unexpired entries a new
// revocation fails rather than forget one. Safe for concurrent use.
type RevocationSet struct {
	mu    sync.Mutex
	set   map[string]time.Time
	max   int
	st    store.Records
	now   func() time.Time
	clean time.Time // next time expired entries are swept
}

var _ Revoker = (*RevocationSet)(nil)

// NewRevocationSet loads the persisted revocations from st (nil: memory only), dropping expired
// ones, and holds at most max entries.
func NewRevocationSet(st store.Records, max int, now func() time.Time) (*RevocationSet, error) {
	if now == nil {
		now = time.Now
	}
	r := &RevocationSet{set: map[string]time.Time{}, max: max, st: st, now: now}
	if st == nil {
		return r, nil
	}
	t := now()
	var stale []string
	err := st.LoadRecords(nsRevoked, func(key string, val []byte) error {
		if len(val) != 8 {
			stale = append(stale, key)
			return nil
		}
		until := time.UnixMilli(int64(binary.BigEndian.Uint64(val)))
		if !until.After(t) {
			stale = append(stale, key)
			return nil
		}
		r.set[key] = until
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("tokens: loading revocations: %w", err)
	}
	for _, k := range stale {
		st.DeleteRecord(nsRevoked, k)
	}
	return r, nil
}

// RevokeToken implements Revoker. A revocation already in force is kept with the later time.
func (r *RevocationSet) RevokeToken(jti string, until time.Time) error {
	if jti == "" {
		return errors.New("tokens: revoking an empty jti")
	}
	now := r.now()
	if !until.After(now) {
		return nil // expired: nothing left to revoke
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if old, ok := r.set[jti]; ok && !old.Before(until) {
		return nil
	}
	if _, ok := r.set[jti]; !ok && len(r.set) >= r.max {
		r.sweepLocked(now)
		if len(r.set) >= r.max {
			return ErrRevocationsFull
		}
	}
	r.set[jti] = until
	if r.st != nil {
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], uint64(until.UnixMilli()))
		r.st.PutRecord(nsRevoked, jti, b[:])
	}
	if now.After(r.clean) {
		r.sweepLocked(now)
	}
	return nil
}

// sweepLocked drops the entries whose time has passed. mu held.
func (r *RevocationSet) sweepLocked(now time.Time) {
	for k, until := range r.set {
		if !until.After(now) {
			delete(r.set, k)
			if r.st != nil {
				r.st.DeleteRecord(nsRevoked, k)
			}
		}
	}
	r.clean = now.Add(time.Minute)
}

// TokenRevoked implements Revoker.
func (r *RevocationSet) TokenRevoked(jti string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.set[jti]
	return ok
}

// Len returns how many revocations are held.
func (r *RevocationSet) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.set)
}
