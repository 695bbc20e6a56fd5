package logging

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
)

// Options chooses the logger New builds. Each field maps to a [main] key, named in New's errors.
type Options struct {
	Level  string    // log_level: debug, info, warn or error; "" means info
	Format string    // log_format: text (key=value) or json; "" means text
	File   string    // log_file: append to this file; "" writes to Stderr
	Stderr io.Writer // the output when File is ""; nil means os.Stderr
}

// FileMode is the permission of a log file New creates: the owner writes, the group reads.
const FileMode os.FileMode = 0o640

// New builds the logger o describes and the Output it writes to. The caller closes the Output
// when the process is done logging; with a File it holds an open file.
func New(o Options) (*slog.Logger, *Output, error) {
	level, err := ParseLevel(o.Level)
	if err != nil {
		return nil, nil, fmt.Errorf("[main] log_level: %w", err)
	}
	out := &Output{path: o.File, key: "[main] log_file", mode: FileMode, w: o.Stderr}
	if out.w == nil {
		out.w = os.Stderr
	}
	if o.File != "" {
		f, err := openLog(o.File, FileMode)
		if err != nil {
			return nil, nil, fmt.Errorf("[main] log_file: %w", err)
		}
		out.f, out.w = f, f
	}
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: ReplaceAttr}
	var h slog.Handler
	switch o.Format {
	case "", "text":
		h = slog.NewTextHandler(out, opts)
	case "json":
		h = slog.NewJSONHandler(out, opts)
	default:
		out.Close()
		return nil, nil, fmt.Errorf("[main] log_format: %q is not one of text, json", o.Format)
	}
	return slog.New(h), out, nil
}

// ParseLevel reads debug, info, warn or error (any case); "" is info.
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "", "info":
		return slog.LevelInfo, nil
	case "debug":
		return slog.LevelDebug, nil
	case "warn":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("%q is not one of debug, info, warn, error", s)
}

// ReplaceAttr is the handlers' slog.HandlerOptions.ReplaceAttr: a time.Duration attribute is
// written as time.Duration.String ("1.5s", "2m0s", "350µs") instead of an integer of nanoseconds.
// It is exported so that a caller building its own handler writes durations the same way.
func ReplaceAttr(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		a.Value = slog.StringValue(a.Value.Duration().String())
	}
	return a
}

// Output is where the logger writes: stderr, or a log file that Reopen replaces. It is safe for
// concurrent use; each slog record arrives in one Write.
type Output struct {
	path string // "" when writing to stderr
	key  string // the configuration key naming the file, for errors
	mode os.FileMode

	mu sync.Mutex
	w  io.Writer
	f  *os.File // the open log file; nil for stderr and after Close
}

// Write writes one record to the current file (or stderr).
func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.w == nil {
		return 0, os.ErrClosed
	}
	return o.w.Write(p)
}

// Path is the log file, "" when the output is stderr.
func (o *Output) Path() string { return o.path }

// Reopen opens the log file again by its path and writes there from now on; call it when the
// file has been moved away (logrotate's default, then SIGHUP). The new file is opened before the
// old one is closed, so when opening fails the old one stays in use and the error is returned.
// Without a log file Reopen does nothing.
func (o *Output) Reopen() error {
	if o.path == "" {
		return nil
	}
	o.mu.Lock()
	closed := o.w == nil
	o.mu.Unlock()
	if closed {
		return os.ErrClosed
	}
	f, err := openLog(o.path, o.mode)
	if err != nil {
		return fmt.Errorf("%s: reopening: %w", o.key, err)
	}
	o.mu.Lock()
	old := o.f
	if o.w == nil { // closed meanwhile
		o.mu.Unlock()
		f.Close()
		return os.ErrClosed
	}
	o.f, o.w = f, f
	o.mu.Unlock()
	if old != nil {
		return old.Close()
	}
	return nil
}

// Close closes the log file; later writes fail with os.ErrClosed. With stderr it only stops
// writing.
func (o *Output) Close() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	f := o.f
	o.f, o.w = nil, nil
	if f != nil {
		return f.Close()
	}
	return nil
}

// OpenFile opens path for appending (created with mode), as an Output that Reopen replaces
// after logrotate: for files other than the process log, such as the audit log. key names the
// configuration key in errors.
func OpenFile(path, key string, mode os.FileMode) (*Output, error) {
	f, err := openLog(path, mode)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	return &Output{path: path, key: key, mode: mode, f: f, w: f}, nil
}

func openLog(path string, mode os.FileMode) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, mode)
	if err != nil {
		return nil, err
	}
	if fi, err := f.Stat(); err == nil && !fi.Mode().IsRegular() && fi.Mode()&os.ModeCharDevice == 0 {
		f.Close()
		return nil, errors.New(path + " is not a regular file or a character device")
	}
	return f, nil
}

var _ io.Writer = (*Output)(nil)
