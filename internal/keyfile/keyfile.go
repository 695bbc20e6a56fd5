package keyfile

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Size is the length of a key: 32 bytes (AES-256, HMAC-SHA256).
const Size = 32

// ErrMode: the key file is readable or writable by group or others.
var ErrMode = errors.New("key file must not be accessible by group or others (chmod 600)")

// LoadOrCreate reads the key from path, or creates it when the file does not exist: 32 random
// bytes, written hex-encoded to a new file of mode 0600 (its directory is created with mode 0700
// if missing). It refuses a file whose mode gives group or others any access (an error wrapping
// ErrMode), a path that is not a regular file, and a file that does not hold exactly 32 bytes
// (raw, or 64 hex digits). Errors name the path, never the content. created reports whether the
// file was made by this call.
func LoadOrCreate(path string) (key []byte, created bool, err error) {
	if path == "" {
		return nil, false, errors.New("key file path is empty")
	}
	key, err = read(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return key, false, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, false, fmt.Errorf("key file directory: %w", err)
	}
	key = make([]byte, Size)
	rand.Read(key) // never fails on supported platforms
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) { // created meanwhile by another process
		key, err = read(path)
		return key, false, err
	}
	if err != nil {
		return nil, false, fmt.Errorf("creating key file: %w", err)
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
		return nil, false, fmt.Errorf("writing key file: %w", err)
	}
	return key, true, nil
}

// read reads an existing key file; an error wrapping fs.ErrNotExist when there is none.
func read(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("key file %s is not a regular file", path)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s has mode %v: %w", path, st.Mode().Perm(), ErrMode)
	}
	buf := make([]byte, 2*Size+3)
	n, _ := f.Read(buf)
	b := buf[:n]
	if n == Size {
		return b, nil
	}
	s := strings.TrimSpace(string(b))
	if len(s) == 2*Size {
		if key, err := hex.DecodeString(s); err == nil {
			return key, nil
		}
	}
	return nil, fmt.Errorf("key file %s must hold 32 bytes (raw or 64 hex digits)", path)
}
