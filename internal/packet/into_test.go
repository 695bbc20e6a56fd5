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

// TestIntoDecodersMatchDecode: the decoders the broker's read path uses for acknowledgements and
// DISCONNECT (DecodeAck, DecodeDisconnect, into a value of the caller's that held an earlier
// packet) give what Decode gives, packet or reason code, for every golden case of those types.
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
		body := tc.Raw[hs:]
		var got packet.Packet
		switch h.Type {
		case packet.PUBACK, packet.PUBREC, packet.PUBREL, packet.PUBCOMP:
			a := packet.Ack{PacketID: 77, ReasonCode: 0x80, Props: dirtyProps}
			if err = packet.DecodeAck(h, body, tc.Version, &a); err == nil {
				got = map[packet.Type]packet.Packet{packet.PUBACK: (*packet.Puback)(&a), packet.PUBREC: (*packet.Pubrec)(&a),
					packet.PUBREL: (*packet.Pubrel)(&a), packet.PUBCOMP: (*packet.Pubcomp)(&a)}[h.Type]
			}
		case packet.DISCONNECT:
			d := packet.Disconnect{ReasonCode: 0x80, Props: dirtyProps}
			if err = packet.DecodeDisconnect(h, body, tc.Version, &d); err == nil {
				got = &d
			}
		default:
			continue
		}
		n++
		want, werr := packet.Decode(h, body, tc.Version)
		var code, wcode packet.ReasonCode
		switch {
		case (err == nil) != (werr == nil):
			t.Errorf("%s: error %v, Decode's %v", tc.Name, err, werr)
		case err != nil && (!errors.As(err, &code) || !errors.As(werr, &wcode) || code != wcode):
			t.Errorf("%s: error %v, Decode's %v", tc.Name, err, werr)
		case err == nil && !reflect.DeepEqual(got, want):
			t.Errorf("%s: got %#v, Decode's %#v", tc.Name, got, want)
		}
	}
	if n < 10 {
		t.Fatalf("only %d golden cases of acknowledgements and DISCONNECT", n)
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
