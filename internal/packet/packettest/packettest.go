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
