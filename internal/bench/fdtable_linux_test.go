//go:build linux

package bench

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// fdTableSize is the size of the process's descriptor table (FDSize in /proc/self/status).
func fdTableSize(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "FDSize:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no FDSize in /proc/self/status")
	return 0
}

func openFDs(t *testing.T) int {
	t.Helper()
	es, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}

// The generator grows its descriptor table before a run's timing starts, so that no growth
// (an RCU grace period each in a threaded process) stalls a burst; it leaves no descriptor
// open and none closed.
func TestGrowFDTable(t *testing.T) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	before, open := fdTableSize(t), openFDs(t)
	want := before * 4
	if uint64(want) > lim.Cur {
		t.Skipf("RLIMIT_NOFILE %d leaves no room above a table of %d", lim.Cur, before)
	}
	growFDTable(want)
	if got := fdTableSize(t); got < want {
		t.Errorf("descriptor table has %d entries after growFDTable(%d), want at least %d (it had %d)", got, want, want, before)
	}
	if got := openFDs(t); got != open {
		t.Errorf("%d descriptors open after growFDTable, %d before", got, open)
	}
	growFDTable(want / 2) // already large enough: nothing happens
	if got := openFDs(t); got != open {
		t.Errorf("%d descriptors open after a second growFDTable, %d before", got, open)
	}
}

// An open descriptor at the top of the range asked for is left alone: growFDTable must not
// replace it (dup3 onto an open descriptor closes it first).
func TestGrowFDTableKeepsAnOpenDescriptor(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "fd")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// The file at a high descriptor, above those the process has open: the /dev/null that
	// growFDTable opens gets a lower one.
	fd := fdTableSize(t)*2 - 1
	if fdOpen(fd) {
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
	growFDTable(fd + 1) // its highest descriptor is fd, which is open
	var after syscall.Stat_t
	if err := syscall.Fstat(fd, &after); err != nil {
		t.Fatalf("descriptor %d closed by growFDTable: %v", fd, err)
	}
	if after.Ino != before.Ino || after.Dev != before.Dev {
		t.Errorf("descriptor %d now refers to another file (inode %d, was %d)", fd, after.Ino, before.Ino)
	}
}
