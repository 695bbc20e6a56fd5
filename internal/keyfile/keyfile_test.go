package keyfile

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadOrCreate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "k.key")
	k1, created, err := LoadOrCreate(path)
	if err != nil || !created || len(k1) != Size {
		t.Fatalf("create: %d bytes, created %v, %v", len(k1), created, err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v; want 0600", st.Mode().Perm(), err)
	}
	if st, _ := os.Stat(filepath.Dir(path)); st.Mode().Perm() != 0o700 {
		t.Fatalf("directory mode %v, want 0700", st.Mode().Perm())
	}
	k2, created, err := LoadOrCreate(path)
	if err != nil || created || !bytes.Equal(k1, k2) {
		t.Fatalf("second load: created %v, same %v, %v", created, bytes.Equal(k1, k2), err)
	}

	// Group or other access is refused, read or write; the error names the path, not the key.
	for _, mode := range []os.FileMode{0o640, 0o604, 0o620, 0o602, 0o644} {
		os.Chmod(path, mode)
		_, _, err := LoadOrCreate(path)
		if !errors.Is(err, ErrMode) || !strings.Contains(err.Error(), path) {
			t.Errorf("mode %v: err = %v, want ErrMode naming the path", mode, err)
		}
		raw, _ := os.ReadFile(path)
		if err != nil && strings.Contains(err.Error(), strings.TrimSpace(string(raw))) {
			t.Errorf("mode %v: the error quotes the key", mode)
		}
	}
	os.Chmod(path, 0o400)
	if _, _, err := LoadOrCreate(path); err != nil {
		t.Errorf("mode 0400: %v", err)
	}

	raw := filepath.Join(dir, "raw.key")
	os.WriteFile(raw, k1, 0o600)
	if k, _, err := LoadOrCreate(raw); err != nil || !bytes.Equal(k, k1) {
		t.Errorf("raw 32 bytes: %v", err)
	}
	short := filepath.Join(dir, "short.key")
	os.WriteFile(short, []byte("abcd\n"), 0o600)
	if _, _, err := LoadOrCreate(short); err == nil {
		t.Error("a 2-byte key file was accepted")
	}
	if _, _, err := LoadOrCreate(dir); err == nil {
		t.Error("a directory was accepted as a key file")
	}
	if _, _, err := LoadOrCreate(""); err == nil {
		t.Error("an empty path was accepted")
	}
}
