package event

import (
	"maps"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/turnstilemq/turnstile/internal/packet"
)

// Counters counts events by kind and reason, for /metrics and $SYS. It is an Observer.
type Counters struct {
	byKind [numKinds]atomic.Uint64

	mu       sync.Mutex
	byReason [numKinds]map[string]uint64 // LoginFailed, Refused, Denied, Disconnected, WillSuppressed, LimitExceeded
	refused  map[string]uint64           // LoginFailed and Refused by CONNACK reason code
}

// Observe implements Observer.
func (c *Counters) Observe(e Event) {
	if e.Kind >= numKinds {
		return
	}
	c.byKind[e.Kind].Add(1)
	label := e.Reason
	switch e.Kind {
	case Connected, WillPublished, Reauthenticated, TokenUploaded, LoginDelayed, Banned:
		return
	case Denied:
		label = e.Action
	}
	c.mu.Lock()
	if (e.Kind == LoginFailed || e.Kind == Refused) && e.Code != 0 {
		if c.refused == nil {
			c.refused = map[string]uint64{}
		}
		c.refused[CodeLabel(e.Code)]++
	}
	if c.byReason[e.Kind] == nil {
		c.byReason[e.Kind] = map[string]uint64{}
	}
	c.byReason[e.Kind][label]++
	c.mu.Unlock()
}

// Total returns how many events of kind k were observed.
func (c *Counters) Total(k Kind) uint64 {
	if k >= numKinds {
		return 0
	}
	return c.byKind[k].Load()
}

// ByReason returns a copy of the counts of kind k by reason (by action for Denied).
func (c *Counters) ByReason(k Kind) map[string]uint64 {
	if k >= numKinds {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.byReason[k])
}

// Refusals returns a copy of the counts of refused CONNECTs and API logins by reason code
// label ("bad_user_name_or_password", "quota_exceeded", ...).
func (c *Counters) Refusals() map[string]uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := maps.Clone(c.refused)
	if out == nil {
		out = map[string]uint64{}
	}
	return out
}

// CodeLabel turns an MQTT reason code into a label: 0x86 becomes "bad_user_name_or_password".
func CodeLabel(code byte) string {
	return strings.ReplaceAll(packet.ReasonCode(code).Error(), " ", "_")
}
