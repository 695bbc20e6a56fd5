package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"hash"
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
	key     []byte
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
	return &flights{key: k, m: make(map[[sha256.Size]byte]*flight)}
}

// keyOf is the coalescing key of c: everything a provider's decision depends on, and the
// limiter's source, but not the client id or the exact remote port, which are the caller's own.
func (f *flights) keyOf(c *Credentials) [sha256.Size]byte {
	h := hmac.New(sha256.New, f.key)
	src, _ := SourceKey(c.Remote)
	field := func(h hash.Hash, b []byte) {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	field(h, []byte(src.String()))
	field(h, []byte(c.Username))
	field(h, []byte(c.Vhost))
	field(h, c.Password)
	field(h, []byte(c.Listener))
	field(h, []byte(c.PeerCN))
	field(h, []byte(c.AuthMethod))
	field(h, c.AuthData)
	flags := []byte{0, 0}
	if c.FromBrowser {
		flags[0] = 1
	}
	if c.Loopback() {
		flags[1] = 1
	}
	field(h, flags)
	var k [sha256.Size]byte
	h.Sum(k[:0])
	return k
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
