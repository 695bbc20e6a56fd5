package broker

import "github.com/turnstilemq/turnstile/internal/store"

// StoreWALBytesForTest returns how many bytes the server's store has written to its
// write-ahead log since it was opened.
func StoreWALBytesForTest(s *Server) uint64 { return s.persist.st.(*store.DB).WALBytesWritten() }

// BuffersMadeForTest returns how many pooled read and write buffers were ever allocated.
func BuffersMadeForTest() (read, write uint64) { return readBufsMade.Load(), outBufsMade.Load() }

// WorkersStartedForTest returns how many busy-period workers were ever started (workers.go).
func WorkersStartedForTest() uint64 { return workersStarted.Load() }

// WriteLoopsStartedForTest returns how many write loops were ever started (writer.go).
func WriteLoopsStartedForTest() uint64 { return writeLoopsStarted.Load() }
