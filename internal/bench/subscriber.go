package bench

import (
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/turnstilemq/turnstile/internal/packet"
)

// maxPendingAcks is how many bytes of acknowledgements a reader collects before writing them even
// though more packets are buffered.
const maxPendingAcks = 16 << 10

// stream is what one subscriber knows of one publisher's sequence.
type stream struct {
	seen bool
	next uint32 // the sequence number expected next
}

// subscriber is one subscribing connection; run is its only reader goroutine.
type subscriber struct {
	c *conn

	received atomic.Int64 // bench messages received (read live by Run while draining)

	// Owned by run until it returns.
	hist    *Histogram // end-to-end latency
	streams []stream   // by publisher index
	gaps    int64      // sequence numbers skipped: messages lost on the way
	dups    int64      // sequence numbers seen again or out of order
	foreign int64      // messages too short to be bench messages
	acks    []byte     // acknowledgements waiting to be written
	puback  ackTemplate
	pubrec  ackTemplate
	pubcomp ackTemplate
	err     error // why run ended, nil when the bench closed the connection
}

// newSubscriber wraps c. publishers > 0 says how many in-process publishers there are: their
// streams start at sequence 0, so a loss at the very start counts as a gap.
func newSubscriber(c *conn, publishers int) *subscriber {
	s := &subscriber{
		c:       c,
		hist:    new(Histogram),
		streams: make([]stream, publishers),
		puback:  newAckTemplate(packet.PUBACK, c.v),
		pubrec:  newAckTemplate(packet.PUBREC, c.v),
		pubcomp: newAckTemplate(packet.PUBCOMP, c.v),
	}
	for i := range s.streams {
		s.streams[i].seen = true
	}
	return s
}

// run reads until the connection fails or is closed. Acknowledgements are collected while more
// packets are buffered and written in one go before the reader would block.
func (s *subscriber) run(closing *atomic.Bool) {
	err := s.loop()
	if !closing.Load() {
		s.err = err
	}
}

func (s *subscriber) loop() error {
	c := s.c
	for {
		if len(s.acks) > 0 && (c.buffered() == 0 || len(s.acks) >= maxPendingAcks) {
			if err := c.write(s.acks); err != nil {
				return err
			}
			s.acks = s.acks[:0]
		}
		h, body, err := c.next()
		if err != nil {
			return err
		}
		switch h.Type {
		case packet.PUBLISH:
			qos, pid, payload, err := parsePublish(h.Flags, body, c.v)
			if err != nil {
				return err
			}
			s.message(payload, c.readAt())
			switch qos {
			case 1:
				s.acks = s.puback.append(s.acks, pid) // [MQTT-4.3.2-4]
			case 2:
				s.acks = s.pubrec.append(s.acks, pid) // [MQTT-4.3.3-9]
			}
		case packet.PUBREL:
			pid, _, err := ackID(body)
			if err != nil {
				return err
			}
			s.acks = s.pubcomp.append(s.acks, pid) // [MQTT-4.3.3-11]
		case packet.DISCONNECT:
			return disconnected(h, body, c.v)
		case packet.PINGRESP, packet.SUBACK, packet.UNSUBACK:
		default:
			return fmt.Errorf("unexpected %s from the broker", h.Type)
		}
	}
}

// message accounts for one payload received at now (bench clock).
func (s *subscriber) message(p []byte, now int64) {
	if len(p) < MinSize {
		s.foreign++
		return
	}
	s.hist.Record(time.Duration(now - int64(binary.BigEndian.Uint64(p[offStamp:]))))
	s.received.Add(1)
	pub := int(binary.BigEndian.Uint32(p[offPub:]))
	seq := binary.BigEndian.Uint32(p[offSeq:])
	if pub >= len(s.streams) {
		if pub > 1<<20 {
			s.foreign++
			return
		}
		s.streams = append(s.streams, make([]stream, pub+1-len(s.streams))...)
	}
	st := &s.streams[pub]
	switch {
	case !st.seen:
		st.seen, st.next = true, seq+1
	case seq == st.next:
		st.next++
	case seq > st.next:
		s.gaps += int64(seq - st.next)
		st.next = seq + 1
	default:
		s.dups++
	}
}

// disconnected turns a DISCONNECT from the broker into an error naming its reason.
func disconnected(h packet.FixedHeader, body []byte, v packet.Version) error {
	if p, err := packet.Decode(h, body, v); err == nil {
		if d, ok := p.(*packet.Disconnect); ok && d.ReasonCode != packet.Success {
			return fmt.Errorf("broker sent DISCONNECT: %v", d.ReasonCode)
		}
	}
	return fmt.Errorf("broker sent DISCONNECT")
}
