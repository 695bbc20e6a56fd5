package auth

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
)

// PasswordKeySize is the length of the server key of password verifiers.
const PasswordKeySize = 32

// PasswordKey is the server key ("pepper") of keyed password verifiers. When a password is set
// through Turnstile, or first verifies against an imported hash, a [Verifier] is stored beside
// the user's hash: HMAC-SHA256 under a key derived from the server key, of the user's ID, a NUL
// and the password. A login then costs one HMAC instead of a bcrypt run.
//
// The server key lives in a file outside the data directory ([main] auth_key_file). A stolen data
// directory alone gives the bcrypt hashes, as hard to crack as without verifiers: a verifier
// cannot be checked without the key. With the key file as well, a verifier is a fast hash to
// guess against (docs/security.md, "Password storage and login speed").
//
// The key is derived with HKDF-SHA256 into the HMAC key and a key id; the id is stored with each
// verifier, so that verifiers made with another key (after the key file was replaced) are known
// for what they are and ignored: such users log in by their hash and get a new verifier.
type PasswordKey struct {
	mac  [32]byte // HKDF(K, "turnstile password verifier v1")
	id   [8]byte  // HKDF(K, "turnstile password key id v1")
	macs *macPool // HMAC states keyed with mac
}

// NewPasswordKey derives a PasswordKey from the 32-byte server key k.
func NewPasswordKey(k []byte) (*PasswordKey, error) {
	if len(k) != PasswordKeySize {
		return nil, fmt.Errorf("auth: the password key must be %d bytes, got %d", PasswordKeySize, len(k))
	}
	mac, err := hkdf.Key(sha256.New, k, nil, "turnstile password verifier v1", len(PasswordKey{}.mac))
	if err != nil {
		return nil, fmt.Errorf("auth: deriving the verifier key: %w", err)
	}
	id, err := hkdf.Key(sha256.New, k, nil, "turnstile password key id v1", len(PasswordKey{}.id))
	if err != nil {
		return nil, fmt.Errorf("auth: deriving the key id: %w", err)
	}
	pk := &PasswordKey{}
	copy(pk.mac[:], mac)
	copy(pk.id[:], id)
	pk.macs = newMACPool(pk.mac[:])
	return pk, nil
}

// RandomPasswordKey returns a key drawn for this process only: for a broker whose state lives in
// memory, whose verifiers die with it.
func RandomPasswordKey() *PasswordKey {
	k := make([]byte, PasswordKeySize)
	rand.Read(k) // never fails on supported platforms
	pk, _ := NewPasswordKey(k)
	return pk
}

// String hides the key from fmt.
func (k *PasswordKey) String() string { return "auth.PasswordKey(redacted)" }

// GoString hides the key from %#v.
func (k *PasswordKey) GoString() string { return k.String() }

// LogValue hides the key from slog.
func (k *PasswordKey) LogValue() slog.Value { return slog.StringValue(k.String()) }

// NewVerifier returns the verifier of password pw for user u, bound to u's ID and stored hash.
// Call it only where pw is known to be u's password: it was just hashed into u, or just verified
// against u's hash. The verifier is authoritative at login while u keeps that ID and hash.
func (k *PasswordKey) NewVerifier(u User, pw []byte) Verifier {
	return Verifier{userID: u.ID, keyID: k.id, bound: hashBinding(u.HashAlgorithm, u.PasswordHash), mac: k.sum(u.ID, pw)}
}

// Made reports whether v was made with this key.
func (k *PasswordKey) Made(v *Verifier) bool { return v.keyID == k.id }

// sum is HMAC-SHA256(verifier key, userID ‖ 0x00 ‖ pw). A user ID is hex and holds no NUL, so
// the encoding is injective.
func (k *PasswordKey) sum(userID string, pw []byte) [sha256.Size]byte {
	m := k.macs.get()
	m.buf = append(append(append(m.buf, userID...), 0), pw...)
	return k.macs.sum(m)
}

// matches reports, in constant time, whether pw is the password v was made for: one HMAC.
func (k *PasswordKey) matches(v *Verifier, pw []byte) bool {
	got := k.sum(v.userID, pw)
	return hmac.Equal(got[:], v.mac[:])
}

// hashBinding identifies a stored hash: SHA-256 of the length-prefixed algorithm and hash.
func hashBinding(alg, hash string) (out [sha256.Size]byte) {
	h := sha256.New()
	var n [4]byte
	for _, s := range [...]string{alg, hash} {
		binary.BigEndian.PutUint32(n[:], uint32(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	h.Sum(out[:0])
	return out
}

// Verifier is a keyed password verifier of one local user (see [PasswordKey]), bound to the
// user's ID and to the stored hash it was made beside. It is kept in the [Users] registry apart
// from the User (Get and List never return it, so it is never exported with definitions or shown
// by the API) and persisted by the directory in a record of its own.
//
// Its fields are unexported, and fmt, %#v and slog print it redacted.
type Verifier struct {
	userID string
	keyID  [8]byte
	bound  [sha256.Size]byte
	mac    [sha256.Size]byte
}

// UserID is the ID of the user the verifier was made for.
func (v Verifier) UserID() string { return v.userID }

// For reports whether v was made for u as it is stored now: the same ID and the same hash.
func (v *Verifier) For(u *User) bool {
	return v.userID == u.ID && u.PasswordHash != "" && v.bound == hashBinding(u.HashAlgorithm, u.PasswordHash)
}

// String hides the verifier from fmt.
func (v Verifier) String() string { return "auth.Verifier(redacted)" }

// GoString hides the verifier from %#v.
func (v Verifier) GoString() string { return v.String() }

// LogValue hides the verifier from slog.
func (v Verifier) LogValue() slog.Value { return slog.StringValue(v.String()) }

const (
	verifierVersion = 1
	verifierFixed   = 1 + 8 + sha256.Size + sha256.Size // version, key id, binding, MAC
	maxUserIDLen    = 128
)

// ErrBadVerifier reports a stored verifier that cannot be decoded.
var ErrBadVerifier = errors.New("auth: stored password verifier is not valid")

// MarshalBinary encodes v for the store: version 1, the key id, the hash binding, the MAC, then
// the user ID.
func (v Verifier) MarshalBinary() ([]byte, error) {
	b := make([]byte, 0, verifierFixed+len(v.userID))
	b = append(b, verifierVersion)
	b = append(b, v.keyID[:]...)
	b = append(b, v.bound[:]...)
	b = append(b, v.mac[:]...)
	return append(b, v.userID...), nil
}

// UnmarshalBinary decodes what MarshalBinary wrote.
func (v *Verifier) UnmarshalBinary(b []byte) error {
	if len(b) <= verifierFixed || len(b) > verifierFixed+maxUserIDLen || b[0] != verifierVersion {
		return ErrBadVerifier
	}
	b = b[1:]
	copy(v.keyID[:], b)
	b = b[len(v.keyID):]
	copy(v.bound[:], b)
	b = b[len(v.bound):]
	copy(v.mac[:], b)
	v.userID = string(b[len(v.mac):])
	return nil
}
