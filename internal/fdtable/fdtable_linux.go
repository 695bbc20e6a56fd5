package fdtable

import (
	"os"
	"strconv"
	"strings"
	"syscall"
)

// Grow makes the descriptor table large enough for descriptors 0 to n-1, or as many as
// RLIMIT_NOFILE allows, and reports how many it now has room for at least (0 if it could not
// grow it; the table itself may be larger, see Size). It opens one descriptor and puts a copy
// at the highest one asked for, then closes both; it never replaces an open descriptor. Call
// it at start, before other goroutines open descriptors. It is best effort: a table it could
// not grow grows later as it would have.
func Grow(n int) int {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur < 2 || n < 2 {
		return 0
	}
	top := int(min(uint64(n), lim.Cur) - 1) // the highest descriptor asked for
	if open(top) {
		return top + 1 // the table already reaches it
	}
	fd, err := syscall.Open("/dev/null", syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return 0
	}
	defer syscall.Close(fd)
	if fd >= top {
		return fd + 1
	}
	if err := syscall.Dup3(fd, top, syscall.O_CLOEXEC); err != nil {
		return 0
	}
	syscall.Close(top)
	return top + 1
}

// open reports whether descriptor fd is open.
func open(fd int) bool {
	_, _, errno := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_GETFD, 0)
	return errno != syscall.EBADF
}

// Size is the size of the process's descriptor table in entries (FDSize in /proc/self/status),
// 0 if it cannot tell.
func Size() int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "FDSize:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return 0
}
