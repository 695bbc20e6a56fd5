//go:build unix

package broker

import "syscall"

// rawReads says that sockets are read with one non-blocking read(2) inside RawConn.Read.
const rawReads = true

// errAgain is a non-blocking read that found nothing to read.
const errAgain = syscall.EAGAIN

// rawRead is one non-blocking read(2) of fd, retried when a signal interrupts it.
func rawRead(fd uintptr, p []byte) (int, syscall.Errno) { return rawIO(syscall.Read, fd, p) }

// rawWrite is one non-blocking write(2) to fd (pong), retried when a signal interrupts it.
func rawWrite(fd uintptr, p []byte) (int, syscall.Errno) { return rawIO(syscall.Write, fd, p) }

func rawIO(op func(int, []byte) (int, error), fd uintptr, p []byte) (int, syscall.Errno) {
	for {
		n, err := op(int(fd), p)
		if err == nil {
			return n, 0
		}
		if errno, ok := err.(syscall.Errno); ok && errno != syscall.EINTR {
			return 0, errno
		} else if !ok {
			return 0, syscall.EIO
		}
	}
}
