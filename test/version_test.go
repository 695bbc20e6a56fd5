package test

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestVersionOfABuild builds the binary with docs/install.md's release -ldflags and checks what
// `turnstile version` reports: the -ldflags version and build time, the module, the toolchain,
// and the git commit when Go stamped one (a build inside a git checkout; not in a git worktree or
// with -buildvcs=false).
func TestVersionOfABuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "turnstile")
	const pkg = "github.com/turnstilemq/turnstile/internal/cli"
	build := exec.Command("go", "build", "-buildvcs=auto",
		"-ldflags", "-s -w -X "+pkg+".Version=9.8.7-test -X "+pkg+".BuildTime=2030-01-02T03:04:05Z", "-o", bin, "./cmd/turnstile")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("turnstile version: %v\n%s", err, out)
	}
	got := string(out)
	for _, want := range []string{
		"turnstile 9.8.7-test\n",
		"\n  module:    github.com/turnstilemq/turnstile ",
		"\n  built:     2030-01-02T03:04:05Z\n",
		"\n  go:        go1.",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("version output lacks %q:\n%s", want, got)
		}
	}
	if short, err := exec.Command(bin, "--version").Output(); err != nil || string(short) != "turnstile 9.8.7-test\n" {
		t.Errorf("--version: %q %v", short, err)
	}

	// The commit, when the toolchain recorded one.
	info, err := exec.Command("go", "version", "-m", bin).Output()
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*build\s+vcs\.revision=([0-9a-f]+)$`).FindSubmatch(info)
	if m == nil {
		t.Logf("this build has no VCS stamp (not a git checkout, a git worktree, or GOFLAGS=-buildvcs=false): commit not checked")
		return
	}
	if !strings.Contains(got, "\n  commit:    "+string(m[1])) {
		t.Errorf("version output lacks the commit %s:\n%s", m[1], got)
	}
}
