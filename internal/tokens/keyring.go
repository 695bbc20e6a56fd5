package tokens

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/turnstilemq/turnstile/internal/store"
)

// Store namespaces of this package.
const (
	nsKeys       = "tokens.keys"
	nsAccessKeys = "tokens.accesskeys"
	nsRevoked    = "tokens.revoked"
)

// SigningKey describes one signing key, without its private part.
type SigningKey struct {
	KID     string    `json:"kid"`
	Created time.Time `json:"created"`
	// Retired is when a newer key replaced it (zero for the active key). A retired key signs
	// nothing more and verifies until Retired + the longest token lifetime.
	Retired time.Time `json:"retired,omitzero"`
	Active  bool      `json:"active"`
}

type keyRecord struct {
	KID     string    `json:"kid"`
	Seed    []byte    `json:"seed"` // ed25519 seed
	Created time.Time `json:"created"`
	Retired time.Time `json:"retired,omitzero"`
}

type signingKey struct {
	rec  keyRecord
	priv ed25519.PrivateKey
	pub  ed25519.PublicKey
}

// keyring holds the signing keys: one active key that signs, and retired keys that still verify.
type keyring struct {
	mu     sync.RWMutex
	keys   map[string]*signingKey
	active *signingKey
	st     store.Records // nil: memory only
	seal   *sealer
}

func newKID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// load reads the persisted keys, drops those past now - maxLifetime since retirement, and makes
// a key when none is active.
func (k *keyring) load(now time.Time, maxLifetime time.Duration) error {
	k.keys = map[string]*signingKey{}
	if k.st != nil {
		err := k.st.LoadRecords(nsKeys, func(key string, val []byte) error {
			plain, err := k.seal.open(nsKeys, key, val)
			if err != nil {
				return fmt.Errorf("signing key %s: %w", key, err)
			}
			var r keyRecord
			if err := json.Unmarshal(plain, &r); err != nil || len(r.Seed) != ed25519.SeedSize || r.KID != key {
				return fmt.Errorf("signing key %s: unreadable record", key)
			}
			k.add(r)
			return nil
		})
		if err != nil {
			return fmt.Errorf("tokens: loading signing keys: %w", err)
		}
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.pruneLocked(now, maxLifetime)
	for _, sk := range k.keys {
		if sk.rec.Retired.IsZero() && (k.active == nil || sk.rec.Created.After(k.active.rec.Created)) {
			k.active = sk
		}
	}
	// Should several keys be unretired (a crash between the two writes of a rotation), the
	// newest signs and the others verify until they would have expired anyway.
	for _, sk := range k.keys {
		if sk != k.active && sk.rec.Retired.IsZero() {
			sk.rec.Retired = now
			k.persistLocked(sk)
		}
	}
	if k.active == nil {
		k.rotateLocked(now)
	}
	return nil
}

func (k *keyring) add(r keyRecord) *signingKey {
	priv := ed25519.NewKeyFromSeed(r.Seed)
	sk := &signingKey{rec: r, priv: priv, pub: priv.Public().(ed25519.PublicKey)}
	k.keys[r.KID] = sk
	return sk
}

func (k *keyring) persistLocked(sk *signingKey) {
	if k.st == nil {
		return
	}
	b, _ := json.Marshal(sk.rec)
	k.st.PutRecord(nsKeys, sk.rec.KID, k.seal.seal(nsKeys, sk.rec.KID, b))
}

// rotateLocked makes a new active key and retires the old one. mu held.
func (k *keyring) rotateLocked(now time.Time) *signingKey {
	seed := make([]byte, ed25519.SeedSize)
	rand.Read(seed)
	sk := k.add(keyRecord{KID: newKID(), Seed: seed, Created: now})
	k.persistLocked(sk)
	if old := k.active; old != nil {
		old.rec.Retired = now
		k.persistLocked(old)
	}
	k.active = sk
	return sk
}

// pruneLocked removes the retired keys no unexpired token can have been signed with. mu held.
func (k *keyring) pruneLocked(now time.Time, maxLifetime time.Duration) {
	for kid, sk := range k.keys {
		if !sk.rec.Retired.IsZero() && now.After(sk.rec.Retired.Add(maxLifetime)) {
			delete(k.keys, kid)
			if k.st != nil {
				k.st.DeleteRecord(nsKeys, kid)
			}
		}
	}
}

func (k *keyring) signer() *signingKey {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.active
}

func (k *keyring) lookup(kid string) (ed25519.PublicKey, bool) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	sk, ok := k.keys[kid]
	if !ok {
		return nil, false
	}
	return sk.pub, true
}

func (k *keyring) list() []SigningKey {
	k.mu.RLock()
	out := make([]SigningKey, 0, len(k.keys))
	for _, sk := range k.keys {
		out = append(out, SigningKey{KID: sk.rec.KID, Created: sk.rec.Created, Retired: sk.rec.Retired, Active: sk == k.active})
	}
	k.mu.RUnlock()
	slices.SortFunc(out, func(a, b SigningKey) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.KID, b.KID)
	})
	return out
}

// ErrUnknownKey: no signing key has that kid.
var ErrUnknownKey = errors.New("tokens: no such signing key")

// ErrActiveKey: the active signing key cannot be removed; rotate first.
var ErrActiveKey = errors.New("tokens: the active signing key cannot be removed; rotate first")

func (k *keyring) remove(kid string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	sk, ok := k.keys[kid]
	if !ok {
		return ErrUnknownKey
	}
	if sk == k.active {
		return ErrActiveKey
	}
	delete(k.keys, kid)
	if k.st != nil {
		k.st.DeleteRecord(nsKeys, kid)
	}
	return nil
}
