package broker

import (
	"time"

	"github.com/turnstilemq/turnstile/internal/packet"
)

// Message is one application message inside the broker. It is created once per PUBLISH received
// (or will or $SYS value) and shared, read-only, by every subscriber it is delivered to: the
// payload buffer is never copied per subscriber.
type Message struct {
	Topic   string
	Payload []byte
	QoS     byte // QoS it was published with
	Retain  bool // RETAIN flag it was published with
	// Props holds the properties forwarded to subscribers unchanged (Payload Format Indicator,
	// Content Type, Response Topic, Correlation Data, User Properties) [MQTT-3.3.2-17],
	// [MQTT-3.3.2-20]; nil when there are none.
	Props *packet.Properties
	// Expiry is the Message Expiry deadline in unix nanoseconds; 0 means it never expires.
	Expiry int64
	// origin is the publishing session, for No Local [MQTT-3.8.3-3]; nil for server messages.
	origin *session
	// id is the message's record id in the store once a persistent session has queued it; 0
	// before. Guarded by persister.mu.
	id uint64
}

// forwardProps copies the properties a server forwards with an Application Message, or returns
// nil when p carries none of them.
func forwardProps(p *packet.Properties) *packet.Properties {
	if !p.HasPayloadFormat && p.ContentType == "" && p.ResponseTopic == "" &&
		p.CorrelationData == nil && len(p.User) == 0 {
		return nil
	}
	return &packet.Properties{
		PayloadFormat:    p.PayloadFormat,
		HasPayloadFormat: p.HasPayloadFormat,
		ContentType:      p.ContentType,
		ResponseTopic:    p.ResponseTopic,
		CorrelationData:  p.CorrelationData,
		User:             p.User,
	}
}

// expired reports whether m has passed its Message Expiry deadline at now (unix nanoseconds).
func (m *Message) expired(now int64) bool { return m.Expiry != 0 && now >= m.Expiry }

// remainingExpiry is the Message Expiry Interval to send: the received interval minus the time
// the message has waited in the server, rounded up [MQTT-3.3.2-6].
func (m *Message) remainingExpiry(now int64) uint32 {
	left := m.Expiry - now
	if left <= 0 {
		return 0
	}
	return uint32((left + int64(time.Second) - 1) / int64(time.Second))
}

// delivery is one message bound for one session, with the options of the subscription(s) that
// matched. It is a value type: queues and in-flight tables hold it without a per-message
// allocation.
type delivery struct {
	msg    *Message
	qos    byte
	retain bool
	subID  uint32   // first Subscription Identifier, 0 = none
	subIDs []uint32 // further identifiers when several subscriptions matched (rare)
	seq    uint64   // queue entry sequence in the store; 0 when not stored
}

// size estimates the bytes this delivery takes in a queue (payload and topic dominate).
func (d *delivery) size() int { return len(d.msg.Payload) + len(d.msg.Topic) + 16 }
