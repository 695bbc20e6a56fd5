package packet_test

import (
	"errors"
	"reflect"
	"testing"

	"github.com/turnstilemq/turnstile/internal/packet"
	"github.com/turnstilemq/turnstile/internal/packet/packettest"
)

// dirtyProps fills a Properties, so that a decoder that leaves anything of a previous packet in
// the caller's value is caught.
var dirtyProps = packet.Properties{ReasonString: "old", User: []packet.UserProperty{{Key: "k", Value: "v"}},
	SessionExpiry: 9, HasSessionExpiry: true}

// intoMatchesDecode checks the decoders the broker's read path uses, into a value of its own
// that held an earlier packet (DecodeAck, DecodeDisconnect, DecodeConnect), against what Decode
// gave for the same bytes (p, err): the same packet, or an error with the same reason code. A
// CONNECT refused after its protocol name and level is left as Decode's partial packet (the
// broker answers in its version), one refused before them as the zero value. It reports whether
// h's type has such a decoder.
func intoMatchesDecode(t *testing.T, h packet.FixedHeader, body []byte, v packet.Version, p packet.Packet, err error) bool {
	t.Helper()
	var got packet.Packet
	var gerr error
	switch h.Type {
	case packet.PUBACK, packet.PUBREC, packet.PUBREL, packet.PUBCOMP:
		a := packet.Ack{PacketID: 77, ReasonCode: 0x80, Props: dirtyProps}
		gerr = packet.DecodeAck(h, body, v, &a)
		got = map[packet.Type]packet.Packet{packet.PUBACK: (*packet.Puback)(&a), packet.PUBREC: (*packet.Pubrec)(&a),
			packet.PUBREL: (*packet.Pubrel)(&a), packet.PUBCOMP: (*packet.Pubcomp)(&a)}[h.Type]
	case packet.DISCONNECT:
		d := packet.Disconnect{ReasonCode: 0x80, Props: dirtyProps}
		gerr = packet.DecodeDisconnect(h, body, v, &d)
		got = &d
	case packet.CONNECT:
		c := packet.Connect{Version: packet.V5, ClientID: "old", Username: "u", UsernameFlag: true,
			Will: &packet.Will{Topic: "old"}, Props: dirtyProps}
		gerr = packet.DecodeConnect(body, &c)
		switch {
		case p == nil && !reflect.DeepEqual(c, packet.Connect{}):
			t.Fatalf("CONNECT % X: Decode read no version, DecodeConnect left %#v", body, c)
		case p != nil && !reflect.DeepEqual(&c, p):
			t.Fatalf("CONNECT % X: DecodeConnect %#v, Decode %#v", body, c, p)
		}
		got = p
	default:
		return false
	}
	var code, wcode packet.ReasonCode
	switch {
	case (gerr == nil) != (err == nil):
		t.Fatalf("%v % X: into-decoder error %v, Decode's %v", h.Type, body, gerr, err)
	case err != nil && (!errors.As(gerr, &code) || !errors.As(err, &wcode) || code != wcode):
		t.Fatalf("%v % X: into-decoder error %v, Decode's %v", h.Type, body, gerr, err)
	case err == nil && !reflect.DeepEqual(got, p):
		t.Fatalf("%v % X: into-decoder %#v, Decode's %#v", h.Type, body, got, p)
	}
	return true
}

// TestIntoDecodersMatchDecode: the decoders the broker's read path uses for acknowledgements,
// DISCONNECT and CONNECT give what Decode gives, packet or reason code, for every golden case of
// those types (intoMatchesDecode; FuzzReadPacket checks the same for any bytes).
func TestIntoDecodersMatchDecode(t *testing.T) {
	n := 0
	for _, tc := range packettest.All() {
		if tc.EncodeOnly {
			continue
		}
		h, hs, err := packet.DecodeFixedHeader(tc.Raw)
		if err != nil {
			continue
		}
		p, err := packet.Decode(h, tc.Raw[hs:], tc.Version)
		if intoMatchesDecode(t, h, tc.Raw[hs:], tc.Version, p, err) {
			n++
		}
	}
	if n < 20 {
		t.Fatalf("only %d golden cases of acknowledgements, DISCONNECT and CONNECT", n)
	}
	// The type and the flags are checked as Decode checks them.
	var a packet.Ack
	wantCode(t, packet.DecodeAck(packet.FixedHeader{Type: packet.PUBREL, Remaining: 2}, []byte{0, 1}, packet.V5, &a),
		packet.MalformedPacket) // [MQTT-3.6.1-1]: PUBREL's flags are 0010
	wantCode(t, packet.DecodeAck(packet.FixedHeader{Type: packet.SUBACK, Remaining: 2}, []byte{0, 1}, packet.V5, &a),
		packet.MalformedPacket)
	wantCode(t, packet.DecodeAck(packet.FixedHeader{Type: packet.PUBACK, Remaining: 3}, []byte{0, 1}, packet.V5, &a),
		packet.MalformedPacket)
	var d packet.Disconnect
	wantCode(t, packet.DecodeDisconnect(packet.FixedHeader{Type: packet.PINGREQ}, nil, packet.V5, &d), packet.MalformedPacket)
	wantCode(t, packet.DecodeDisconnect(packet.FixedHeader{Type: packet.DISCONNECT, Flags: 1}, nil, packet.V5, &d),
		packet.MalformedPacket) // [MQTT-2.1.3-1]
}

// TestDecodeAckAllocs: an acknowledgement or a DISCONNECT without properties decodes into the
// caller's value without allocating, in every version (the broker receives one PUBACK per QoS 1
// message).
func TestDecodeAckAllocs(t *testing.T) {
	for _, v := range []packet.Version{packet.V31, packet.V311, packet.V5} {
		for _, ty := range []packet.Type{packet.PUBACK, packet.PUBREC, packet.PUBREL, packet.PUBCOMP} {
			raw := packet.Append(nil, &packet.Puback{PacketID: 42}, v)
			raw[0] = byte(ty) << 4
			if ty == packet.PUBREL {
				raw[0] |= 0x02
			}
			h, n, err := packet.DecodeFixedHeader(raw)
			if err != nil {
				t.Fatal(err)
			}
			var a packet.Ack
			allocs := testing.AllocsPerRun(1000, func() {
				if err := packet.DecodeAck(h, raw[n:], v, &a); err != nil || a.PacketID != 42 {
					t.Fatalf("%v %v: %+v, %v", v, ty, a, err)
				}
			})
			if allocs != 0 {
				t.Errorf("%v %v: DecodeAck allocates %v times", v, ty, allocs)
			}
		}
		raw := packet.Append(nil, &packet.Disconnect{}, v)
		h, n, _ := packet.DecodeFixedHeader(raw)
		var d packet.Disconnect
		if allocs := testing.AllocsPerRun(1000, func() {
			if err := packet.DecodeDisconnect(h, raw[n:], v, &d); err != nil {
				t.Fatal(err)
			}
		}); allocs != 0 {
			t.Errorf("%v: DecodeDisconnect allocates %v times", v, allocs)
		}
	}
	// A v5 PUBACK with a reason code and no properties: still none.
	raw := packet.Append(nil, &packet.Puback{PacketID: 1, ReasonCode: packet.NoMatchingSubscribers}, packet.V5)
	h, n, _ := packet.DecodeFixedHeader(raw)
	var a packet.Ack
	if allocs := testing.AllocsPerRun(1000, func() { packet.DecodeAck(h, raw[n:], packet.V5, &a) }); allocs != 0 || a.ReasonCode != packet.NoMatchingSubscribers {
		t.Errorf("v5 PUBACK 0x10: %v allocations, code %v", allocs, a.ReasonCode)
	}
}
