package broker

import (
	"testing"
	"unsafe"
)

// TestConnectionStructsFitTheirSizeClass: every connection, idle or not, holds a client and a
// session, each allocated in the smallest of Go's size classes (768 and 384 bytes) it fits. A
// field that pushes one into the next class costs every connection up to 128 bytes more (issue
// 12's idle-memory goal, and the garbage of every login): keep what only CONNECT needs off the
// struct, or raise the bound here knowingly.
func TestConnectionStructsFitTheirSizeClass(t *testing.T) {
	if n := unsafe.Sizeof(client{}); n > 768 {
		t.Errorf("client is %d bytes, more than its 768-byte size class", n)
	}
	if n := unsafe.Sizeof(session{}); n > 384 {
		t.Errorf("session is %d bytes, more than its 384-byte size class", n)
	}
}
