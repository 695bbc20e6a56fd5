// Package packettest holds Turnstile's golden MQTT packets: one table per packet type of hand-written
// bytes, laid out as in the specification, with the packet they decode to or the reason code that
// decoding them must fail with. The codec tests use every row both ways (bytes to packet and packet to
// bytes) and seed the fuzzers with them; connection tests can feed the same bytes to a broker.
//
// Row names cite the normative statement (or section) they prove.
package packettest

import "github.com/turnstilemq/turnstile/internal/packet"

// Case is one golden packet.
type Case struct {
	Name    string
	Version packet.Version // the connection's protocol version (CONNECT carries its own)
	Raw     []byte         // one whole packet, fixed header included
	Packet  packet.Packet  // what Raw decodes to; nil when WantErr is set
	WantErr error          // when set, the packet.ReasonCode the decode error carries (errors.As)

	// DecodeOnly marks a valid encoding that Append does not produce (a shorter or longer legal form);
	// EncodeOnly marks bytes that Append produces but that decode to a different packet (a 5.0 code
	// mapped for 3.1.1, an AUTH left out before 5.0).
	DecodeOnly, EncodeOnly bool
}

// HeaderCase is one golden fixed header (2.1).
type HeaderCase struct {
	Name       string
	Raw        []byte
	Header     packet.FixedHeader
	N          int   // bytes the header takes
	WantErr    error // a packet.ReasonCode, or nil
	Incomplete bool  // DecodeFixedHeader returns packet.ErrIncomplete
}

// Tables returns every packet table by packet type name, in packet type order.
func Tables() []Table {
	return []Table{
		{"CONNECT", Connect}, {"CONNACK", Connack}, {"PUBLISH", Publish}, {"PUBACK", Puback},
		{"PUBREC", Pubrec}, {"PUBREL", Pubrel}, {"PUBCOMP", Pubcomp}, {"SUBSCRIBE", Subscribe},
		{"SUBACK", Suback}, {"UNSUBSCRIBE", Unsubscribe}, {"UNSUBACK", Unsuback}, {"PINGREQ", Pingreq},
		{"PINGRESP", Pingresp}, {"DISCONNECT", Disconnect}, {"AUTH", Auth},
	}
}

// Table is a named list of cases.
type Table struct {
	Name  string
	Cases []Case
}

// All returns every case of every table.
func All() []Case {
	var all []Case
	for _, t := range Tables() {
		all = append(all, t.Cases...)
	}
	return all
}

// FixedHeader is the fixed header table (2.1), for ReadFixedHeader and DecodeFixedHeader.
var FixedHeader = []HeaderCase{
	{Name: "2.1.4 remaining length 0", Raw: []byte{0xC0, 0x00}, Header: packet.FixedHeader{Type: packet.PINGREQ}, N: 2},
	{Name: "1.5.5 remaining length 127 in one byte", Raw: []byte{0x30, 0x7F}, Header: packet.FixedHeader{Type: packet.PUBLISH, Remaining: 127}, N: 2},
	{Name: "1.5.5 remaining length 128 in two bytes", Raw: []byte{0x30, 0x80, 0x01}, Header: packet.FixedHeader{Type: packet.PUBLISH, Remaining: 128}, N: 3},
	{Name: "1.5.5 remaining length 16383", Raw: []byte{0x30, 0xFF, 0x7F}, Header: packet.FixedHeader{Type: packet.PUBLISH, Remaining: 16383}, N: 3},
	{Name: "1.5.5 remaining length 16384 in three bytes", Raw: []byte{0x30, 0x80, 0x80, 0x01}, Header: packet.FixedHeader{Type: packet.PUBLISH, Remaining: 16384}, N: 4},
	{Name: "1.5.5 remaining length 2097151", Raw: []byte{0x30, 0xFF, 0xFF, 0x7F}, Header: packet.FixedHeader{Type: packet.PUBLISH, Remaining: 2097151}, N: 4},
	{Name: "1.5.5 remaining length 2097152 in four bytes", Raw: []byte{0x30, 0x80, 0x80, 0x80, 0x01}, Header: packet.FixedHeader{Type: packet.PUBLISH, Remaining: 2097152}, N: 5},
	{Name: "MQTT-1.5.5-1 remaining length 268435455 is the maximum", Raw: []byte{0x30, 0xFF, 0xFF, 0xFF, 0x7F}, Header: packet.FixedHeader{Type: packet.PUBLISH, Remaining: packet.MaxRemainingLength}, N: 5},
	{Name: "2.1.3 PUBLISH flags are left to DecodePublish", Raw: []byte{0x3F, 0x00}, Header: packet.FixedHeader{Type: packet.PUBLISH, Flags: 0xF}, N: 2},
	{Name: "MQTT-2.1.3-1 SUBSCRIBE flags 0010", Raw: []byte{0x82, 0x02}, Header: packet.FixedHeader{Type: packet.SUBSCRIBE, Flags: 2, Remaining: 2}, N: 2},
	{Name: "MQTT-1.5.5-1 a fifth remaining length byte is malformed", Raw: []byte{0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01}, WantErr: packet.MalformedPacket},
	{Name: "MQTT-1.5.5-1 remaining length not in its shortest form is malformed", Raw: []byte{0x30, 0x80, 0x00}, WantErr: packet.MalformedPacket},
	{Name: "2.1.2 packet type 0 is malformed", Raw: []byte{0x00, 0x00}, WantErr: packet.MalformedPacket},
	{Name: "MQTT-2.1.3-1 CONNECT flags 0001 are malformed", Raw: []byte{0x11, 0x00}, WantErr: packet.MalformedPacket},
	{Name: "MQTT-3.6.1-1 PUBREL flags 0000 are malformed", Raw: []byte{0x60, 0x02}, WantErr: packet.MalformedPacket},
	{Name: "MQTT-3.10.1-1 UNSUBSCRIBE flags 0011 are malformed", Raw: []byte{0xA3, 0x02}, WantErr: packet.MalformedPacket},
	{Name: "MQTT-2.1.3-1 a bad first byte fails before the rest arrives", Raw: []byte{0x01}, WantErr: packet.MalformedPacket},
	{Name: "2.1 empty input is incomplete", Raw: []byte{}, Incomplete: true},
	{Name: "2.1 first byte alone is incomplete", Raw: []byte{0x30}, Incomplete: true},
	{Name: "1.5.5 remaining length cut after a continuation byte is incomplete", Raw: []byte{0x30, 0x80, 0x80}, Incomplete: true},
}
