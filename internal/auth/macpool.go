package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"hash"
	"sync"
)

// macPool keeps HMAC-SHA256 states keyed with one key, each with a scratch buffer for its input.
// hmac.New costs two SHA-256 states and the key's pads, allocated anew each time; a login takes
// one or two HMACs (the coalescing key in flight.go, the password verifier in verifier.go), and
// a storm of logins turned those allocations into garbage collections.
type macPool struct{ p sync.Pool }

// pooledMAC is one keyed HMAC state and the input being gathered for it.
type pooledMAC struct {
	h   hash.Hash
	buf []byte
	out [sha256.Size]byte // Sum's destination: a local array would escape to the heap
}

// maxPooledInput is the largest input buffer kept for reuse; a longer one (a huge password or
// token) is left to the garbage collector.
const maxPooledInput = 4 << 10

func newMACPool(key []byte) *macPool {
	k := append([]byte(nil), key...)
	mp := &macPool{}
	mp.p.New = func() any { return &pooledMAC{h: hmac.New(sha256.New, k), buf: make([]byte, 0, 256)} }
	return mp
}

// get returns a keyed state with an empty input buffer.
func (mp *macPool) get() *pooledMAC { return mp.p.Get().(*pooledMAC) }

// sum returns the HMAC of what m.buf holds and gives m back to the pool, its input wiped (it
// may hold a password).
func (mp *macPool) sum(m *pooledMAC) (out [sha256.Size]byte) {
	m.h.Write(m.buf)
	m.h.Sum(m.out[:0])
	out = m.out
	m.h.Reset()
	clear(m.buf)
	if cap(m.buf) > maxPooledInput {
		m.buf = make([]byte, 0, 256)
	}
	m.buf = m.buf[:0]
	mp.p.Put(m)
	return out
}
