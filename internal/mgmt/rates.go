package mgmt

import (
	"sync"
	"time"
)

// Counters sampled for rates: bytes in and out, messages in and out.
const (
	cRecvOct = iota
	cSendOct
	cPublish    // PUBLISH received
	cDeliverGet // PUBLISH sent
	numCounters
)

type counters [numCounters]uint64

// sampleEvery is the shortest interval between the two samples a rate is computed from.
const sampleEvery = 5 * time.Second

type sample struct {
	at time.Time
	v  counters
}

// rates turns the broker's monotonic counters into per-second rates, as RabbitMQ's
// *_details.rate: each key (a connection, a vhost, the overview) keeps its latest sample and
// the one before it, at least every apart; a rate is the change since that older sample
// divided by the time since. The first request for a key reports 0.
type rates struct {
	mu        sync.Mutex
	every     time.Duration
	now       func() time.Time
	m         map[string]*[2]sample // [0] older, [1] latest
	lastPrune time.Time
}

func newRates() *rates {
	return &rates{every: sampleEvery, now: time.Now, m: map[string]*[2]sample{}}
}

// observe records v for key and returns the rates per second.
func (r *rates) observe(key string, v counters) (out [numCounters]float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	s := r.m[key]
	if s == nil {
		s = &[2]sample{{at: now, v: v}, {at: now, v: v}}
		r.m[key] = s
	} else if now.Sub(s[1].at) >= r.every {
		s[0], s[1] = s[1], sample{at: now, v: v}
	}
	if dt := now.Sub(s[0].at).Seconds(); dt > 0 {
		for i := range v {
			if v[i] >= s[0].v[i] {
				out[i] = float64(v[i]-s[0].v[i]) / dt
			}
		}
	}
	// Forget keys not seen for a while (closed connections, deleted vhosts).
	if now.Sub(r.lastPrune) > time.Minute {
		r.lastPrune = now
		for k, s := range r.m {
			if now.Sub(s[1].at) > 10*time.Minute+20*r.every {
				delete(r.m, k)
			}
		}
	}
	return out
}

// rate is RabbitMQ's "<counter>_details" object.
type rate struct {
	Rate float64 `json:"rate"`
}

// messageStats is RabbitMQ's message_stats object: publish counts messages received from
// clients, deliver_get messages sent to them.
type messageStats struct {
	Publish           uint64 `json:"publish"`
	PublishDetails    rate   `json:"publish_details"`
	DeliverGet        uint64 `json:"deliver_get"`
	DeliverGetDetails rate   `json:"deliver_get_details"`
}

// traffic is the byte counters and the message_stats of a connection, a vhost or the overview.
type traffic struct {
	RecvOct        uint64       `json:"recv_oct"`
	RecvOctDetails rate         `json:"recv_oct_details"`
	SendOct        uint64       `json:"send_oct"`
	SendOctDetails rate         `json:"send_oct_details"`
	MessageStats   messageStats `json:"message_stats"`
}

func (r *rates) traffic(key string, v counters) traffic {
	rt := r.observe(key, v)
	return traffic{
		RecvOct: v[cRecvOct], RecvOctDetails: rate{rt[cRecvOct]},
		SendOct: v[cSendOct], SendOctDetails: rate{rt[cSendOct]},
		MessageStats: messageStats{
			Publish: v[cPublish], PublishDetails: rate{rt[cPublish]},
			DeliverGet: v[cDeliverGet], DeliverGetDetails: rate{rt[cDeliverGet]},
		},
	}
}
