package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
)

// DefaultDataDir is the data directory used when the configuration does not set data_dir, the
// first of:
//   - $STATE_DIRECTORY, which systemd sets for a unit with StateDirectory= (its first entry);
//   - $XDG_DATA_HOME/turnstile (the XDG base directory specification);
//   - $HOME/.local/share/turnstile.
//
// Each variable counts only when it holds an absolute path. Never a directory relative to the
// working directory: where state lives must not depend on where the broker was started. The
// error says what to set when none of them is usable.
func DefaultDataDir() (string, error) {
	if v, _, _ := strings.Cut(os.Getenv("STATE_DIRECTORY"), ":"); filepath.IsAbs(v) {
		return filepath.Clean(v), nil
	}
	if v := os.Getenv("XDG_DATA_HOME"); filepath.IsAbs(v) {
		return filepath.Join(v, "turnstile"), nil
	}
	if v := os.Getenv("HOME"); filepath.IsAbs(v) {
		return filepath.Join(v, ".local", "share", "turnstile"), nil
	}
	return "", errors.New("no default data directory: neither STATE_DIRECTORY, XDG_DATA_HOME nor HOME is an absolute path; " +
		"set data_dir (an empty data_dir keeps all state in memory only)")
}

// defaultDataDirDoc is data_dir's default as the documentation states it.
const defaultDataDirDoc = "$STATE_DIRECTORY, else $XDG_DATA_HOME/turnstile, else $HOME/.local/share/turnstile"
