package broker

import (
	"container/heap"
	"sync"
	"time"
)

// Retained messages with a Message Expiry Interval leave the index, the store, the counts and
// the listings when they expire, not when a subscription happens to match them (issue 12): each
// vhost keeps them in a heap by expiry, and a sweep removes the due ones every sweepInterval.

const sweepInterval = time.Second

type expiring struct {
	at    int64 // unix nanoseconds
	topic string
	m     *Message
}

type expiryHeap []expiring

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].at < h[j].at }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(expiring)) }
func (h *expiryHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	old[len(old)-1] = expiring{}
	*h = old[:len(old)-1]
	return x
}

// retainedExpiry is a vhost's heap of expiring retained messages. Its lock is a leaf.
type retainedExpiry struct {
	mu sync.Mutex
	h  expiryHeap
}

// track remembers a retained message that expires.
func (e *retainedExpiry) track(m *Message) {
	if m.Expiry == 0 {
		return
	}
	e.mu.Lock()
	heap.Push(&e.h, expiring{at: m.Expiry, topic: m.Topic, m: m})
	e.mu.Unlock()
}

// due pops the entries expired at now.
func (e *retainedExpiry) due(now int64) []expiring {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []expiring
	for len(e.h) > 0 && e.h[0].at <= now {
		out = append(out, heap.Pop(&e.h).(expiring))
	}
	return out
}

// sweepRetained removes the vhost's retained messages that have expired at now, unless a newer
// message replaced them meanwhile [MQTT-3.3.2-5].
func (v *Vhost) sweepRetained(now int64) {
	for _, x := range v.retainedExp.due(now) {
		v.retainMu.Lock()
		if v.retained.DeleteIf(x.topic, func(cur *Message) bool { return cur == x.m }) && v.srv.persist != nil {
			v.srv.persist.st.DeleteRetained(v.name, x.topic)
		}
		v.retainMu.Unlock()
	}
}

// housekeeping runs the periodic sweeps until the server stops.
func (s *Server) housekeeping() {
	defer s.bg.Done()
	t := time.NewTicker(sweepInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			now := s.now().UnixNano()
			for _, v := range s.vhostList() {
				v.sweepRetained(now)
			}
		}
	}
}
