package logbuf

import (
	"strings"
	"sync"
	"testing"
)

// Writers on many goroutines and a reader at the same time (run under -race): nothing is lost
// and no write is torn.
func TestConcurrentWritesAndReads(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				b.Write([]byte("line\n"))
				_ = b.String()
			}
		})
	}
	wg.Wait()
	if s := b.String(); strings.Count(s, "line\n") != 800 || len(s) != 800*len("line\n") {
		t.Fatalf("%d bytes, %d lines, want 800 lines", len(s), strings.Count(s, "line\n"))
	}
}
