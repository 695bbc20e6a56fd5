package cli

import (
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/turnstilemq/turnstile/internal/fdtable"
)

// checkFDTable checks that serve grew the descriptor table (internal/fdtable) for the default
// max_connections, and said so on its start line.
func checkFDTable(t *testing.T, start string) {
	t.Helper()
	_, v, ok := strings.Cut(start, "fd_table=")
	if f := strings.Fields(v); ok && len(f) > 0 {
		v = f[0]
	}
	n, err := strconv.Atoi(v)
	if !ok || err != nil {
		t.Errorf("start line %q names no fd_table", start)
		return
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if want := int(min(uint64(maxFDTable), lim.Cur)); n != want {
		t.Errorf("fd_table=%d on the start line, want %d", n, want)
	}
	if size := fdtable.Size(); size < n {
		t.Errorf("the descriptor table has %d entries, fewer than the %d serve reported", size, n)
	}
}
