package logging

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestJSONAndLevel(t *testing.T) {
	var b bytes.Buffer
	log, out, err := New(Options{Level: "warn", Format: "json", Stderr: &b})
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if out.Path() != "" {
		t.Errorf("Path = %q without a file", out.Path())
	}
	log.Info("hidden")
	log.Warn("shown", "client_id", "c1", "took", 1500*time.Millisecond)
	var rec map[string]any
	if err := json.Unmarshal(b.Bytes(), &rec); err != nil {
		t.Fatalf("one JSON record expected, got %q: %v", b.String(), err)
	}
	if rec["msg"] != "shown" || rec["client_id"] != "c1" || rec["level"] != "WARN" {
		t.Errorf("record %v", rec)
	}
	// Durations in human units, not nanoseconds.
	if rec["took"] != "1.5s" {
		t.Errorf("took = %#v, want \"1.5s\"", rec["took"])
	}
}

func TestTextDurations(t *testing.T) {
	var b bytes.Buffer
	log, _, err := New(Options{Level: "debug", Stderr: &b})
	if err != nil {
		t.Fatal(err)
	}
	log.Debug("hello", "interval", 250*time.Millisecond,
		slog.Group("store", "sync", 2*time.Minute), "n", 3)
	got := b.String()
	for _, want := range []string{"level=DEBUG msg=hello", "interval=250ms", "store.sync=2m0s", "n=3"} {
		if !strings.Contains(got, want) {
			t.Errorf("text record %q lacks %q", got, want)
		}
	}
	if strings.Contains(got, "250000000") {
		t.Errorf("a duration in nanoseconds: %q", got)
	}
}

func TestBadOptions(t *testing.T) {
	for _, o := range []Options{{Level: "loud"}, {Format: "xml"}, {File: filepath.Join(t.TempDir(), "missing", "x.log")}} {
		_, _, err := New(o)
		if err == nil {
			t.Errorf("%+v accepted", o)
			continue
		}
		if !strings.HasPrefix(err.Error(), "[main] log_") {
			t.Errorf("%+v: error %q does not name the key", o, err)
		}
	}
	if _, _, err := New(Options{File: t.TempDir()}); err == nil {
		t.Error("a directory accepted as log_file")
	}
}

func TestFileReopen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "turnstile.log")
	log, out, err := New(Options{File: path, Format: "text"})
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if out.Path() != path {
		t.Errorf("Path = %q", out.Path())
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != FileMode {
		t.Fatalf("log file: %v %v", fi, err)
	}
	log.Info("first")
	// logrotate moves the file away, then the broker gets SIGHUP.
	rotated := path + ".1"
	if err := os.Rename(path, rotated); err != nil {
		t.Fatal(err)
	}
	log.Info("second") // still to the moved file
	if err := out.Reopen(); err != nil {
		t.Fatal(err)
	}
	log.Info("third")
	old, _ := os.ReadFile(rotated)
	cur, _ := os.ReadFile(path)
	if !strings.Contains(string(old), "msg=first") || !strings.Contains(string(old), "msg=second") || strings.Contains(string(old), "third") {
		t.Errorf("rotated file:\n%s", old)
	}
	if !strings.Contains(string(cur), "msg=third") || strings.Contains(string(cur), "first") {
		t.Errorf("reopened file:\n%s", cur)
	}

	// A reopen that fails keeps the file in use.
	if err := os.Rename(dir, dir+".gone"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Rename(dir+".gone", dir) })
	if err := out.Reopen(); err == nil || !strings.Contains(err.Error(), "[main] log_file") {
		t.Errorf("Reopen into a missing directory: %v", err)
	}
	log.Info("fourth")
	if cur, _ := os.ReadFile(filepath.Join(dir+".gone", "turnstile.log")); !strings.Contains(string(cur), "msg=fourth") {
		t.Errorf("after a failed reopen the old file is not used:\n%s", cur)
	}

	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := out.Write([]byte("x")); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Write after Close: %v", err)
	}
	if err := out.Reopen(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Reopen after Close: %v", err)
	}
}

func TestReopenStderrIsNoop(t *testing.T) {
	var b bytes.Buffer
	log, out, err := New(Options{Stderr: &b})
	if err != nil {
		t.Fatal(err)
	}
	if err := out.Reopen(); err != nil {
		t.Fatal(err)
	}
	log.Info("still here")
	if !strings.Contains(b.String(), "still here") {
		t.Errorf("got %q", b.String())
	}
}

func TestConcurrentWritesAndReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.log")
	log, out, err := New(Options{File: path})
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 200 {
				log.Info("line", "k", "v")
			}
		})
	}
	for range 20 {
		if err := out.Reopen(); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	data, _ := os.ReadFile(path)
	if n := strings.Count(string(data), "msg=line"); n != 800 {
		t.Errorf("%d records, want 800", n)
	}
}
