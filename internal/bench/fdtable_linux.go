//go:build linux

package bench

import "syscall"

// growFDTable makes the process's descriptor table large enough for descriptors 0 to n-1 (or
// as many as RLIMIT_NOFILE allows) before a run's timing starts.
//
// Why: Linux grows a process's descriptor table by doubling it, and in a process with more than
// one thread each growth waits for an RCU grace period (expand_files, synchronize_rcu) while the
// thread opening the descriptor sleeps. A fresh generator opening 2,000 sockets grew its table
// five times during the login burst; on the two vCPUs of docs/benchmarks.md each wait stopped
// both dial loops for 3 to 7 ms with the broker left idle: 15 to 25 ms of a 150 ms burst. The
// loss is a fixed time, so it cut a faster broker's measured rate more. Grown here, the table
// costs one wait, before the clock starts; a table never shrinks.
//
// It is best effort: a run works the same without it.
func growFDTable(n int) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur < 2 {
		return
	}
	top := int(min(uint64(n), lim.Cur) - 1) // the highest descriptor asked for
	if top < 3 || fdOpen(top) {
		return // small, or the table already reaches it
	}
	fd, err := syscall.Open("/dev/null", syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return
	}
	defer syscall.Close(fd)
	if fd < top && syscall.Dup3(fd, top, syscall.O_CLOEXEC) == nil {
		syscall.Close(top)
	}
}

// fdOpen reports whether descriptor fd is open.
func fdOpen(fd int) bool {
	_, _, errno := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_GETFD, 0)
	return errno != syscall.EBADF
}
