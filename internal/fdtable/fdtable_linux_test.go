//go:build linux

package fdtable

import (
	"os"
	"syscall"
	"testing"
)

// fdTableSize is Size, which must be able to tell on Linux.
func fdTableSize(t *testing.T) int {
	t.Helper()
	n := Size()
	if n == 0 {
		t.Fatal("no FDSize in /proc/self/status")
	}
	return n
}

func openFDs(t *testing.T) int {
	t.Helper()
	es, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}

// Grow makes the table as large as asked in one step, so that no later growth (an RCU grace
// period each in a threaded process) stalls a burst of new connections; it leaves no descriptor
// open and none closed.
func TestGrow(t *testing.T) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	before, opened := fdTableSize(t), openFDs(t)
	want := before * 4
	if uint64(want) > lim.Cur {
		t.Skipf("RLIMIT_NOFILE %d leaves no room above a table of %d", lim.Cur, before)
	}
	if got := Grow(want); got < want {
		t.Errorf("Grow(%d) reports a table of %d", want, got)
	}
	if got := fdTableSize(t); got < want {
		t.Errorf("descriptor table has %d entries after Grow(%d), want at least %d (it had %d)", got, want, want, before)
	}
	if got := openFDs(t); got != opened {
		t.Errorf("%d descriptors open after Grow, %d before", got, opened)
	}
	Grow(want / 2) // already large enough: nothing happens
	if got := openFDs(t); got != opened {
		t.Errorf("%d descriptors open after a second Grow, %d before", got, opened)
	}
}

// An open descriptor at the top of the range asked for is left alone: Grow must not
// replace it (dup3 onto an open descriptor closes it first).
func TestGrowKeepsAnOpenDescriptor(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "fd")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// The file at a high descriptor, above those the process has open: the /dev/null that
	// Grow opens gets a lower one.
	fd := fdTableSize(t)*2 - 1
	if open(fd) {
		t.Fatalf("descriptor %d is already open", fd)
	}
	if err := syscall.Dup3(int(f.Fd()), fd, syscall.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	var before syscall.Stat_t
	if err := syscall.Fstat(fd, &before); err != nil {
		t.Fatal(err)
	}
	Grow(fd + 1) // its highest descriptor is fd, which is open
	var after syscall.Stat_t
	if err := syscall.Fstat(fd, &after); err != nil {
		t.Fatalf("descriptor %d closed by Grow: %v", fd, err)
	}
	if after.Ino != before.Ino || after.Dev != before.Dev {
		t.Errorf("descriptor %d now refers to another file (inode %d, was %d)", fd, after.Ino, before.Ino)
	}
}

// A table is grown no further than RLIMIT_NOFILE allows, however much is asked.
func TestGrowStopsAtTheLimit(t *testing.T) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	capped := uint64(fdTableSize(t) * 8)
	if capped > lim.Max {
		t.Skipf("the hard RLIMIT_NOFILE %d is below %d", lim.Max, capped)
	}
	low := syscall.Rlimit{Cur: capped, Max: lim.Max}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	defer syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	if got := Grow(1 << 30); got != int(capped) {
		t.Errorf("Grow(1<<30) under a limit of %d reports %d", capped, got)
	}
	if got := fdTableSize(t); got < int(capped) || got > 2*int(capped) {
		t.Errorf("descriptor table has %d entries under a limit of %d", got, capped)
	}
}
