package tokens

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/turnstilemq/turnstile/internal/store"
)

// Owners judges the owners of AccessKeys; the broker implements it over its user directory and
// permissions. It must be safe for concurrent use and fast: it is asked on every API request
// and every token login.
type Owners interface {
	// UserID returns the stable ID of the named user (auth.User.ID), ok false when there is none.
	UserID(name string) (id string, ok bool)
	// HasAccess reports whether the user may use the vhost (a permission entry exists).
	HasAccess(user, vhost string) bool
}

// AccessKey is an AccessKey as listed: never its secret.
type AccessKey struct {
	ID      string    `json:"access_key_id"`
	User    string    `json:"user"`
	Vhost   string    `json:"vhost"`
	Created time.Time `json:"created"`
}

type accessKeyRecord struct {
	ID      string    `json:"id"`
	Secret  string    `json:"secret"`
	User    string    `json:"user"`
	UserID  string    `json:"user_id"` // the owner's ID when the key was made: a re-created user is another owner
	Vhost   string    `json:"vhost"`
	Created time.Time `json:"created"`
}

// Errors of the AccessKey operations.
var (
	ErrUnknownUser      = errors.New("tokens: no such user")
	ErrNoVhostAccess    = errors.New("tokens: the user has no access to the vhost")
	ErrAccessKeysFull   = errors.New("tokens: too many AccessKeys")
	ErrUnknownAccessKey = errors.New("tokens: no such AccessKey")
)

// accessKeys is the AccessKey table, bounded, persisted sealed.
type accessKeys struct {
	mu   sync.RWMutex
	keys map[string]*accessKeyRecord
	max  int
	st   store.Records
	seal *sealer
}

func (a *accessKeys) load() error {
	a.keys = map[string]*accessKeyRecord{}
	if a.st == nil {
		return nil
	}
	err := a.st.LoadRecords(nsAccessKeys, func(key string, val []byte) error {
		plain, err := a.seal.open(nsAccessKeys, key, val)
		if err != nil {
			return fmt.Errorf("AccessKey %s: %w", key, err)
		}
		var r accessKeyRecord
		if err := json.Unmarshal(plain, &r); err != nil || r.ID != key || r.Secret == "" {
			return fmt.Errorf("AccessKey %s: unreadable record", key)
		}
		a.keys[key] = &r
		return nil
	})
	if err != nil {
		return fmt.Errorf("tokens: loading AccessKeys: %w", err)
	}
	return nil
}

var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

func (a *accessKeys) create(user, userID, vhost string, now time.Time) (string, string, error) {
	var idb [15]byte
	var sb [24]byte
	rand.Read(idb[:])
	rand.Read(sb[:])
	r := &accessKeyRecord{
		ID:      "TK" + idEncoding.EncodeToString(idb[:]),
		Secret:  base64.RawURLEncoding.EncodeToString(sb[:]),
		User:    user,
		UserID:  userID,
		Vhost:   vhost,
		Created: now.UTC(),
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.keys) >= a.max {
		return "", "", ErrAccessKeysFull
	}
	a.keys[r.ID] = r
	if a.st != nil {
		b, _ := json.Marshal(r)
		a.st.PutRecord(nsAccessKeys, r.ID, a.seal.seal(nsAccessKeys, r.ID, b))
	}
	return r.ID, r.Secret, nil
}

func (a *accessKeys) get(id string) (accessKeyRecord, bool) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	r, ok := a.keys[id]
	if !ok {
		return accessKeyRecord{}, false
	}
	return *r, true
}

func (a *accessKeys) list() []AccessKey {
	a.mu.RLock()
	out := make([]AccessKey, 0, len(a.keys))
	for _, r := range a.keys {
		out = append(out, AccessKey{ID: r.ID, User: r.User, Vhost: r.Vhost, Created: r.Created})
	}
	a.mu.RUnlock()
	slices.SortFunc(out, func(x, y AccessKey) int { return strings.Compare(x.ID, y.ID) })
	return out
}

func (a *accessKeys) delete(id string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.keys[id]; !ok {
		return false
	}
	delete(a.keys, id)
	if a.st != nil {
		a.st.DeleteRecord(nsAccessKeys, id)
	}
	return true
}
