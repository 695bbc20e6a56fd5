package tokens

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/turnstilemq/turnstile/internal/keyfile"
)

// MasterKeySize is the length of the master key: AES-256.
const MasterKeySize = keyfile.Size

// ErrMasterKeyMode: the master key file is readable or writable by group or others.
var ErrMasterKeyMode = keyfile.ErrMode

// LoadOrCreateMasterKey reads the master key from path, or creates it when the file does not
// exist: 32 random bytes, written hex-encoded to a new file of mode 0600 (its directory is
// created with mode 0700 if missing). It refuses a file whose mode gives group or others any
// access, and a file that does not hold exactly 32 bytes (raw, or 64 hex digits). The key never
// goes into the store: it protects what the store holds. See package keyfile.
func LoadOrCreateMasterKey(path string) ([]byte, error) {
	key, _, err := keyfile.LoadOrCreate(path)
	if err != nil {
		return nil, fmt.Errorf("tokens: master key: %w", err)
	}
	return key, nil
}

// sealer encrypts records with AES-256-GCM under the master key. The record's namespace and key
// are the additional data, so a sealed value cannot be moved to another record.
type sealer struct{ aead cipher.AEAD }

const sealVersion = 1

func newSealer(key []byte) (*sealer, error) {
	if len(key) != MasterKeySize {
		return nil, fmt.Errorf("tokens: master key must be %d bytes, got %d", MasterKeySize, len(key))
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	g, err := cipher.NewGCM(b)
	if err != nil {
		return nil, err
	}
	return &sealer{aead: g}, nil
}

func (s *sealer) seal(ns, key string, plain []byte) []byte {
	out := make([]byte, 1+s.aead.NonceSize(), 1+s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	out[0] = sealVersion
	rand.Read(out[1:])
	return s.aead.Seal(out, out[1:], plain, []byte(ns+"\x00"+key))
}

var errUnseal = errors.New("cannot be decrypted with this master key")

func (s *sealer) open(ns, key string, sealed []byte) ([]byte, error) {
	ns0 := 1 + s.aead.NonceSize()
	if len(sealed) < ns0+s.aead.Overhead() || sealed[0] != sealVersion {
		return nil, errUnseal
	}
	plain, err := s.aead.Open(nil, sealed[1:ns0], sealed[ns0:], []byte(ns+"\x00"+key))
	if err != nil {
		return nil, errUnseal
	}
	return plain, nil
}
