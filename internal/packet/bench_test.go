package packet_test

import (
	"bytes"
	"testing"

	"github.com/turnstilemq/turnstile/internal/packet"
	"github.com/turnstilemq/turnstile/internal/packet/packettest"
)

var payload64 = bytes.Repeat([]byte{'x'}, 64)

func benchPublish(v packet.Version) *packet.Publish {
	p := &packet.Publish{QoS: 1, PacketID: 42, Topic: "sensors/building-7/floor-3/room-12/temperature", Payload: payload64}
	if v == packet.V5 {
		p.Props = packet.Properties{
			MessageExpiry: 3600, HasMessageExpiry: true,
			ContentType:     "application/json",
			SubscriptionIDs: []uint32{7},
			User:            []packet.UserProperty{{Key: "trace", Value: "abc123"}},
		}
	}
	return p
}

// TestPublishAppendAllocs: the fan-out path encodes into a buffer with room and allocates nothing.
func TestPublishAppendAllocs(t *testing.T) {
	for _, v := range []packet.Version{packet.V311, packet.V5} {
		p := benchPublish(v)
		buf := make([]byte, 0, 4096)
		if n := testing.AllocsPerRun(1000, func() { buf = p.Append(buf[:0], v) }); n != 0 {
			t.Errorf("%v: Publish.Append allocates %v times", v, n)
		}
		if n := testing.AllocsPerRun(1000, func() { buf = packet.Append(buf[:0], p, v) }); n != 0 {
			t.Errorf("%v: Append(*Publish) allocates %v times", v, n)
		}
	}
}

// TestAppendAllocs: every golden packet encodes without allocating into a buffer with room.
func TestAppendAllocs(t *testing.T) {
	buf := make([]byte, 0, 4096)
	for _, tc := range packettest.All() {
		if tc.Packet == nil {
			continue
		}
		if n := testing.AllocsPerRun(100, func() { buf = packet.Append(buf[:0], tc.Packet, tc.Version) }); n != 0 {
			t.Errorf("%s: Append allocates %v times", tc.Name, n)
		}
	}
}

// TestDecodePublishAllocs: decoding into a caller's Publish allocates the topic string and nothing else
// (no user properties or string properties here: those are copied too).
func TestDecodePublishAllocs(t *testing.T) {
	for _, v := range []packet.Version{packet.V311, packet.V5} {
		p := benchPublish(packet.V311)
		if v == packet.V5 {
			p.Props = packet.Properties{MessageExpiry: 60, HasMessageExpiry: true, TopicAlias: 3, HasTopicAlias: true,
				PayloadFormat: 1, HasPayloadFormat: true, CorrelationData: []byte("id")}
		}
		raw := p.Append(nil, v)
		h, n, err := packet.DecodeFixedHeader(raw)
		if err != nil {
			t.Fatal(err)
		}
		var got packet.Publish
		allocs := testing.AllocsPerRun(1000, func() {
			if err := packet.DecodePublish(h, raw[n:], v, &got); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 1 {
			t.Errorf("%v: DecodePublish allocates %v times, want 1 (the topic)", v, allocs)
		}
	}
}

func BenchmarkDecodePublish(b *testing.B) {
	for _, v := range []packet.Version{packet.V311, packet.V5} {
		b.Run(v.String(), func(b *testing.B) {
			raw := benchPublish(v).Append(nil, v)
			h, n, _ := packet.DecodeFixedHeader(raw)
			body := raw[n:]
			var p packet.Publish
			b.ReportAllocs()
			b.SetBytes(int64(len(raw)))
			for b.Loop() {
				if err := packet.DecodePublish(h, body, v, &p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkEncodePublish(b *testing.B) {
	for _, v := range []packet.Version{packet.V311, packet.V5} {
		b.Run(v.String(), func(b *testing.B) {
			p := benchPublish(v)
			buf := make([]byte, 0, 1024)
			b.ReportAllocs()
			b.SetBytes(int64(p.Size(v)))
			for b.Loop() {
				buf = p.Append(buf[:0], v)
			}
		})
	}
}

func BenchmarkDecodeConnect(b *testing.B) {
	c := &packet.Connect{
		CleanStart: true, KeepAlive: 60, ClientID: "load-generator-000123",
		Props: packet.Properties{SessionExpiry: 3600, HasSessionExpiry: true, ReceiveMaximum: 100, HasReceiveMaximum: true,
			TopicAliasMaximum: 16, HasTopicAliasMaximum: true},
		Will:         &packet.Will{QoS: 1, Topic: "clients/load-generator-000123/status", Payload: []byte("offline")},
		UsernameFlag: true, Username: "loadgen", PasswordFlag: true, Password: []byte("secret-token"),
	}
	raw := c.Append(nil, packet.V5)
	_, n, _ := packet.DecodeFixedHeader(raw)
	body := raw[n:]
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	var got packet.Connect
	for b.Loop() {
		if err := packet.DecodeConnect(body, &got); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeSuback(b *testing.B) {
	s := &packet.Suback{PacketID: 9, ReasonCodes: []packet.ReasonCode{
		packet.GrantedQoS1, packet.GrantedQoS2, packet.Success, packet.NotAuthorized, packet.GrantedQoS1,
		packet.TopicFilterInvalid, packet.GrantedQoS1, packet.Success}}
	for _, v := range []packet.Version{packet.V311, packet.V5} {
		b.Run(v.String(), func(b *testing.B) {
			buf := make([]byte, 0, 256)
			b.ReportAllocs()
			for b.Loop() {
				buf = packet.Append(buf[:0], s, v)
			}
		})
	}
}

func BenchmarkDecodeFixedHeader(b *testing.B) {
	raw := []byte{0x32, 0xC1, 0x02}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := packet.DecodeFixedHeader(raw); err != nil {
			b.Fatal(err)
		}
	}
}
