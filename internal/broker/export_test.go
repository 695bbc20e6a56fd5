package broker

import "github.com/turnstilemq/turnstile/internal/store"

// ReplaceStoreForTest closes the server's store and opens its directory again with opts (for a
// filesystem with injected faults). Call it after New and before Serve: nothing may use the
// store meanwhile.
func ReplaceStoreForTest(s *Server, opts store.Options) error {
	if err := s.persist.st.Close(); err != nil {
		return err
	}
	st, err := store.Open(s.cfg.Main.DataDir, opts)
	if err != nil {
		return err
	}
	s.persist.st = st
	return nil
}

// StoreWALBytesForTest returns how many bytes the server's store has written to its
// write-ahead log since it was opened.
func StoreWALBytesForTest(s *Server) uint64 { return s.persist.st.(*store.DB).WALBytesWritten() }
