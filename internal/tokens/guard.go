package tokens

import (
	"sync"
	"time"
)

// Request classes, each with its own rate per AccessKey.
type class int

const (
	classApply class = iota
	classQuery
	classRevoke
	numClasses
)

// guard holds the per-AccessKey state of request verification: the nonces seen within the
// replay window and the rate buckets. Entries exist only for AccessKeys that signed a request
// correctly, so the tables are bounded by the number of AccessKeys; nonces are bounded per key
// and in all. Safe for concurrent use.
type guard struct {
	mu       sync.Mutex
	o        *Options
	hold     time.Duration // how long a nonce is remembered: twice the timestamp window
	perKey   map[string]*keyState
	nonces   int // across all keys
	rates    [numClasses]float64
	maxPer   int
	maxTotal int
}

type keyState struct {
	seen    map[string]time.Time // nonce → forget after
	fifo    []nonceEntry         // insertion order, hence forget-after order
	head    int
	buckets [numClasses]bucket
}

type nonceEntry struct {
	nonce string
	until time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newGuard(o *Options) *guard {
	return &guard{
		o:        o,
		hold:     2 * o.TimestampWindow,
		perKey:   map[string]*keyState{},
		rates:    [numClasses]float64{o.ApplyRate, o.QueryRate, o.RevokeRate},
		maxPer:   o.MaxNoncesPerKey,
		maxTotal: o.MaxNonces,
	}
}

func (g *guard) state(akid string) *keyState {
	ks := g.perKey[akid]
	if ks == nil {
		ks = &keyState{seen: map[string]time.Time{}}
		g.perKey[akid] = ks
	}
	return ks
}

// allow takes one request of class c from akid's bucket: rate r per second, burst max(r, 1).
func (g *guard) allow(akid string, c class, now time.Time) bool {
	r := g.rates[c]
	if r < 0 {
		return true
	}
	burst := max(r, 1)
	g.mu.Lock()
	defer g.mu.Unlock()
	b := &g.state(akid).buckets[c]
	if b.last.IsZero() {
		b.tokens = burst
	} else if el := now.Sub(b.last).Seconds(); el > 0 {
		b.tokens = min(burst, b.tokens+el*r)
	}
	if now.After(b.last) {
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// nonceResult says what happened to a nonce.
type nonceResult int

const (
	nonceOK nonceResult = iota
	nonceReplay
	nonceFull
)

// useNonce records nonce for akid, or reports it was already used within the window, or that the
// tables are full (the request is refused: forgetting a nonce early would allow a replay). A
// nonce is remembered for twice the timestamp window, longer than any timestamp that carries it
// stays acceptable.
func (g *guard) useNonce(akid, nonce string, now time.Time) nonceResult {
	g.mu.Lock()
	defer g.mu.Unlock()
	ks := g.state(akid)
	g.pruneLocked(ks, now)
	if _, ok := ks.seen[nonce]; ok {
		return nonceReplay
	}
	if g.nonces >= g.maxTotal {
		for _, other := range g.perKey {
			g.pruneLocked(other, now)
		}
	}
	if len(ks.seen) >= g.maxPer || g.nonces >= g.maxTotal {
		return nonceFull
	}
	until := now.Add(g.hold)
	ks.seen[nonce] = until
	ks.fifo = append(ks.fifo, nonceEntry{nonce, until})
	g.nonces++
	return nonceOK
}

// pruneLocked forgets the nonces whose time has passed. mu held.
func (g *guard) pruneLocked(ks *keyState, now time.Time) {
	for ks.head < len(ks.fifo) && now.After(ks.fifo[ks.head].until) {
		delete(ks.seen, ks.fifo[ks.head].nonce)
		ks.fifo[ks.head] = nonceEntry{}
		ks.head++
		g.nonces--
	}
	if ks.head > 0 && ks.head*2 >= len(ks.fifo) { // compact: the slice never grows without bound
		n := copy(ks.fifo, ks.fifo[ks.head:])
		clear(ks.fifo[n:])
		ks.fifo = ks.fifo[:n]
		ks.head = 0
	}
}

// forget drops an AccessKey's state (it was deleted).
func (g *guard) forget(akid string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if ks := g.perKey[akid]; ks != nil {
		g.nonces -= len(ks.seen)
		delete(g.perKey, akid)
	}
}
