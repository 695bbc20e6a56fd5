//go:build !unix

package broker

import "syscall"

// rawReads is false: outside unix, an idle connection waits in a one-byte Read (inReader.fill)
// on its read loop.
const rawReads = false

const errAgain = syscall.EAGAIN

func rawRead(uintptr, []byte) (int, syscall.Errno) { return 0, syscall.EINVAL }

func rawWrite(uintptr, []byte) (int, syscall.Errno) { return 0, syscall.EINVAL }
