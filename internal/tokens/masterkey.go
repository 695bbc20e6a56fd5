package tokens

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// MasterKeySize is the length of the master key: AES-256.
const MasterKeySize = 32

// ErrMasterKeyMode: the master key file is readable or writable by group or others.
var ErrMasterKeyMode = errors.New("tokens: master key file must not be accessible by group or others (chmod 600)")

// LoadOrCreateMasterKey reads the master key from path, or creates it when the file does not
// exist: 32 random bytes, written hex-encoded to a new file of mode 0600 (its directory is
// created with mode 0700 if missing). It refuses a file whose mode gives group or others any
// access, and a file that does not hold exactly 32 bytes (raw, or 64 hex digits). The key never
// goes into the store: it protects what the store holds.
func LoadOrCreateMasterKey(path string) ([]byte, error) {
	if path == "" {
		return nil, errors.New("tokens: master key path is empty")
	}
	key, err := readMasterKey(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("tokens: master key directory: %w", err)
	}
	key = make([]byte, MasterKeySize)
	rand.Read(key) // never fails on supported platforms
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) { // created meanwhile by another process
		return readMasterKey(path)
	}
	if err != nil {
		return nil, fmt.Errorf("tokens: creating master key: %w", err)
	}
	_, err = f.WriteString(hex.EncodeToString(key) + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("tokens: writing master key: %w", err)
	}
	return key, nil
}

func readMasterKey(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("tokens: master key: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("tokens: master key %s is not a regular file", path)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %v", ErrMasterKeyMode, path, st.Mode().Perm())
	}
	buf := make([]byte, 2*MasterKeySize+3)
	n, _ := f.Read(buf)
	b := buf[:n]
	if n == MasterKeySize {
		return b, nil
	}
	s := strings.TrimSpace(string(b))
	if len(s) == 2*MasterKeySize {
		if key, err := hex.DecodeString(s); err == nil {
			return key, nil
		}
	}
	return nil, fmt.Errorf("tokens: master key %s must hold 32 bytes (raw or 64 hex digits)", path)
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
