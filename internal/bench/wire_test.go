package bench

import (
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/turnstilemq/turnstile/internal/packet"
)

// TestParsePublishMatchesCodec: the in-place parser finds the packet id and payload that
// packet.DecodePublish finds, in every version and QoS, after a publisher's rewrite.
func TestParsePublishMatchesCodec(t *testing.T) {
	for _, v := range []packet.Version{packet.V31, packet.V311, packet.V5} {
		for qos := range byte(3) {
			t.Run(fmt.Sprintf("v%d/qos%d", v, qos), func(t *testing.T) {
				tmpl, err := newPublishTemplate("bench/42", qos, 64, 7, v)
				if err != nil {
					t.Fatal(err)
				}
				b := append([]byte(nil), tmpl.b...)
				po := tmpl.payloadOff
				binary.BigEndian.PutUint64(b[po+offStamp:], 123456789)
				binary.BigEndian.PutUint32(b[po+offSeq:], 99)
				if qos > 0 {
					binary.BigEndian.PutUint16(b[tmpl.pidOff:], 0xBEEF)
				}
				h, n, err := packet.DecodeFixedHeader(b)
				if err != nil {
					t.Fatal(err)
				}
				var want packet.Publish
				if err := packet.DecodePublish(h, b[n:], v, &want); err != nil {
					t.Fatal(err)
				}
				gotQoS, pid, payload, err := parsePublish(h.Flags, b[n:], v)
				if err != nil {
					t.Fatal(err)
				}
				if gotQoS != want.QoS || pid != want.PacketID || string(payload) != string(want.Payload) {
					t.Errorf("parsePublish: qos %d pid %d payload %x; codec: qos %d pid %d payload %x",
						gotQoS, pid, payload, want.QoS, want.PacketID, want.Payload)
				}
				if qos > 0 && want.PacketID != 0xBEEF {
					t.Errorf("packet id %#x after rewrite, want 0xBEEF", want.PacketID)
				}
				if want.Topic != "bench/42" || len(want.Payload) != 64 ||
					binary.BigEndian.Uint64(want.Payload) != 123456789 ||
					binary.BigEndian.Uint32(want.Payload[offPub:]) != 7 ||
					binary.BigEndian.Uint32(want.Payload[offSeq:]) != 99 {
					t.Errorf("decoded %q %x", want.Topic, want.Payload)
				}
			})
		}
	}
}

func TestParsePublishRejectsTruncated(t *testing.T) {
	tmpl, err := newPublishTemplate("t", 1, 16, 0, packet.V5)
	if err != nil {
		t.Fatal(err)
	}
	_, n, _ := packet.DecodeFixedHeader(tmpl.b)
	body := tmpl.b[n:]
	for _, cut := range []int{0, 1, 3, 4, 5} { // inside the topic, the packet id, the properties
		if _, _, _, err := parsePublish(0x02, body[:cut], packet.V5); err == nil {
			t.Errorf("body cut at %d: no error", cut)
		}
	}
}

func TestAckTemplates(t *testing.T) {
	for _, v := range []packet.Version{packet.V311, packet.V5} {
		for _, typ := range []packet.Type{packet.PUBACK, packet.PUBREC, packet.PUBREL, packet.PUBCOMP} {
			a := newAckTemplate(typ, v)
			b := a.append([]byte{0xFF}, 0x1234)[1:]
			h, n, err := packet.DecodeFixedHeader(b)
			if err != nil {
				t.Fatal(err)
			}
			p, err := packet.Decode(h, b[n:], v)
			if err != nil {
				t.Fatalf("%s v%d: %v", typ, v, err)
			}
			var id uint16
			switch p := p.(type) {
			case *packet.Puback:
				id = p.PacketID
			case *packet.Pubrec:
				id = p.PacketID
			case *packet.Pubrel:
				id = p.PacketID
			case *packet.Pubcomp:
				id = p.PacketID
			}
			if p.Type() != typ || id != 0x1234 {
				t.Errorf("%s v%d: decoded %s id %#x", typ, v, p.Type(), id)
			}
		}
	}
}

// TestReceivePathDoesNotAllocate: parsing a PUBLISH, timing it and tracking its sequence
// allocates nothing per message.
func TestReceivePathDoesNotAllocate(t *testing.T) {
	tmpl, err := newPublishTemplate("bench/1", 1, 64, 1, packet.V5)
	if err != nil {
		t.Fatal(err)
	}
	_, n, _ := packet.DecodeFixedHeader(tmpl.b)
	body := tmpl.b[n:]
	s := &subscriber{hist: new(Histogram), streams: make([]stream, 2), puback: newAckTemplate(packet.PUBACK, packet.V5)}
	s.acks = make([]byte, 0, 1<<20)
	var seq uint32
	allocs := testing.AllocsPerRun(1000, func() {
		binary.BigEndian.PutUint32(body[len(body)-64+offSeq:], seq)
		seq++
		_, pid, payload, err := parsePublish(0x02, body, packet.V5)
		if err != nil {
			t.Fatal(err)
		}
		s.message(payload, 1e9)
		s.acks = s.puback.append(s.acks, pid)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per message", allocs)
	}
	if s.gaps != 0 || s.dups != 0 || s.received.Load() != 1001 {
		t.Errorf("gaps %d dups %d received %d", s.gaps, s.dups, s.received.Load())
	}
}

func BenchmarkReceivePath(b *testing.B) {
	tmpl, _ := newPublishTemplate("bench/1", 0, 64, 0, packet.V311)
	_, n, _ := packet.DecodeFixedHeader(tmpl.b)
	body := tmpl.b[n:]
	s := &subscriber{hist: new(Histogram), streams: make([]stream, 1)}
	var seq uint32
	for b.Loop() {
		binary.BigEndian.PutUint32(body[len(body)-64+offSeq:], seq)
		seq++
		_, _, payload, _ := parsePublish(0x00, body, packet.V311)
		s.message(payload, 1e9)
	}
}
