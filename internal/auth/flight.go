package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"sync"
	"sync/atomic"
)

// flights coalesces identical login attempts that are in progress at the same time: the same
// credentials from the same source, on the same listener, for the same vhost. The first one is
// checked (and counted by the rate limiter); the others wait for its answer and share it.
//
// Why: the rate limiter counts attempts when they start, so that parallel guesses cannot escape
// it. A connection pool or a fleet restarting behind one address opens many connections at once
// with the same correct password; counted one by one they would look like a guessing attack and
// be refused. Coalesced, they are one attempt. Guesses are different passwords: each is still
// counted on its own.
//
// The key is an HMAC under a key drawn per process, so the map never holds a password.
type flights struct {
	macs    *macPool // HMAC-SHA256 under a key drawn per process
	mu      sync.Mutex
	m       map[[sha256.Size]byte]*flight
	waiting atomic.Int32  // attempts waiting for another's answer now (tests)
	shared  atomic.Uint64 // attempts answered by another's check, ever
}

type flight struct {
	done chan struct{}
	id   *Identity
	err  error
}

func newFlights() *flights {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		panic("auth: no randomness for the login coalescing key: " + err.Error())
	}
	return &flights{macs: newMACPool(k), m: make(map[[sha256.Size]byte]*flight)}
}

// keyOf is the coalescing key of c: everything a provider's decision depends on, and the
// limiter's source, but not the client id or the exact remote port, which are the caller's own.
// Each field is length-prefixed, so the encoding is injective.
func (f *flights) keyOf(c *Credentials) [sha256.Size]byte {
	m := f.macs.get()
	src, _ := SourceKey(c.Remote)
	b := m.buf
	n := len(b)
	b = src.AppendTo(binary.BigEndian.AppendUint32(b, 0)) // its length is set below
	binary.BigEndian.PutUint32(b[n:], uint32(len(b)-n-4))
	b = appendField(b, c.Username)
	b = appendField(b, c.Vhost)
	b = appendField(b, c.Password)
	b = appendField(b, c.Listener)
	b = appendField(b, c.PeerCN)
	b = appendField(b, c.AuthMethod)
	b = appendField(b, c.AuthData)
	var flags [2]byte
	if c.FromBrowser {
		flags[0] = 1
	}
	if c.Loopback() {
		flags[1] = 1
	}
	m.buf = appendField(b, flags[:])
	return f.macs.sum(m)
}

// appendField appends s to b after its length, 4 bytes big-endian.
func appendField[T string | []byte](b []byte, s T) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

// do runs check for c unless an identical attempt is in progress, whose answer it then shares:
// a copy of its identity with c's own remote address and client id. When the attempt it waited
// for ended because that client went away, it runs its own.
func (f *flights) do(ctx context.Context, c *Credentials, check func() (*Identity, error)) (*Identity, error) {
	k := f.keyOf(c)
	f.mu.Lock()
	if fl, ok := f.m[k]; ok {
		f.mu.Unlock()
		f.waiting.Add(1)
		select {
		case <-fl.done:
			f.waiting.Add(-1)
		case <-ctx.Done():
			f.waiting.Add(-1)
			return nil, ctx.Err()
		}
		if fl.err != nil && (errors.Is(fl.err, context.Canceled) || errors.Is(fl.err, context.DeadlineExceeded)) && ctx.Err() == nil {
			return check() // the leader's client left; this one is still here
		}
		f.shared.Add(1)
		if fl.err != nil {
			return nil, fl.err
		}
		snap := fl.id.clone()
		snap.Remote, snap.ClientID = c.Remote, c.ClientID
		return snap, nil
	}
	fl := &flight{done: make(chan struct{})}
	f.m[k] = fl
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.m, k)
		f.mu.Unlock()
		close(fl.done)
	}()
	fl.id, fl.err = check()
	return fl.id, fl.err
}
