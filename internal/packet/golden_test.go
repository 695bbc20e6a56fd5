package packet_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"

	"github.com/turnstilemq/turnstile/internal/packet"
	"github.com/turnstilemq/turnstile/internal/packet/packettest"
)

// decodeWhole decodes one whole packet from raw through DecodeFixedHeader and Decode, and checks that
// the ReadFixedHeader path agrees.
func decodeWhole(t *testing.T, raw []byte, v packet.Version) (packet.Packet, error) {
	t.Helper()
	h, n, err := packet.DecodeFixedHeader(raw)
	rh, rerr := packet.ReadFixedHeader(bytes.NewReader(raw))
	if (err == nil) != (rerr == nil) || (err == nil && h != rh) {
		t.Fatalf("DecodeFixedHeader = %+v, %v; ReadFixedHeader = %+v, %v", h, err, rh, rerr)
	}
	if err != nil {
		return nil, err
	}
	if n+h.Remaining != len(raw) {
		t.Fatalf("table error: % X is not one whole packet (header %d bytes, remaining length %d)", raw, n, h.Remaining)
	}
	return packet.Decode(h, raw[n:], v)
}

// wantCode checks that err carries the reason code want, and is an *Error naming a field.
func wantCode(t *testing.T, err error, want error) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %v", want)
	}
	var code packet.ReasonCode
	if !errors.As(err, &code) || !errors.Is(err, want) {
		t.Fatalf("error %q carries %v, want %v", err, code, want)
	}
	var pe *packet.Error
	if !errors.As(err, &pe) || pe.Field == "" {
		t.Fatalf("error %q is not an *Error with a Field", err)
	}
}

func TestGolden(t *testing.T) {
	for _, table := range packettest.Tables() {
		t.Run(table.Name, func(t *testing.T) {
			for _, tc := range table.Cases {
				t.Run(tc.Name, func(t *testing.T) { testCase(t, tc) })
			}
		})
	}
}

func testCase(t *testing.T, tc packettest.Case) {
	if !tc.EncodeOnly {
		got, err := decodeWhole(t, tc.Raw, tc.Version)
		if tc.WantErr != nil {
			wantCode(t, err, tc.WantErr)
			if _, ok := got.(*packet.Connect); got != nil && !ok {
				t.Errorf("Decode returned %T with an error", got)
			}
			return
		}
		if err != nil {
			t.Fatalf("Decode: %v", err)
		}
		if !reflect.DeepEqual(got, tc.Packet) {
			t.Fatalf("Decode:\n got %#v\nwant %#v", got, tc.Packet)
		}
	}
	if tc.DecodeOnly || tc.WantErr != nil {
		return
	}
	got := packet.Append(nil, tc.Packet, tc.Version)
	if !bytes.Equal(got, tc.Raw) {
		t.Fatalf("Append:\n got % X\nwant % X", got, tc.Raw)
	}
	if n := packet.Size(tc.Packet, tc.Version); n != len(got) {
		t.Fatalf("Size = %d, Append wrote %d bytes", n, len(got))
	}
	prefix := []byte{0xAA, 0xBB}
	if got := packet.Append(prefix, tc.Packet, tc.Version); !bytes.Equal(got[:2], prefix) || !bytes.Equal(got[2:], tc.Raw) {
		t.Fatalf("Append after a prefix: % X", got)
	}
}

func TestFixedHeaderGolden(t *testing.T) {
	for _, tc := range packettest.FixedHeader {
		t.Run(tc.Name, func(t *testing.T) {
			h, n, err := packet.DecodeFixedHeader(tc.Raw)
			rh, rerr := packet.ReadFixedHeader(bytes.NewReader(tc.Raw))
			switch {
			case tc.Incomplete:
				if err != packet.ErrIncomplete {
					t.Fatalf("DecodeFixedHeader error %v, want ErrIncomplete", err)
				}
				want := io.ErrUnexpectedEOF
				if len(tc.Raw) == 0 {
					want = io.EOF // unwrapped when no byte was read
				}
				if rerr != want {
					t.Fatalf("ReadFixedHeader error %v, want %v", rerr, want)
				}
			case tc.WantErr != nil:
				wantCode(t, err, tc.WantErr)
				wantCode(t, rerr, tc.WantErr)
			default:
				if err != nil || rerr != nil {
					t.Fatalf("errors %v, %v", err, rerr)
				}
				if h != tc.Header || n != tc.N || rh != tc.Header {
					t.Fatalf("got %+v (%d bytes) and %+v, want %+v (%d bytes)", h, n, rh, tc.Header, tc.N)
				}
				if h.Size() != n {
					t.Fatalf("FixedHeader.Size() = %d, want %d", h.Size(), n)
				}
			}
		})
	}
}

// TestFixedHeaderEveryFirstByte: [MQTT-2.1.3-1], [MQTT-3.3.1-4] is left to DecodePublish, [MQTT-3.6.1-1],
// [MQTT-3.8.1-1], [MQTT-3.10.1-1], [MQTT-3.14.1-1], [MQTT-3.15.1-1]: all 256 first bytes against table 2-2.
func TestFixedHeaderEveryFirstByte(t *testing.T) {
	for b := 0; b < 256; b++ {
		typ, flags := packet.Type(b>>4), byte(b&0x0F)
		var ok bool
		switch typ {
		case 0:
			ok = false
		case packet.PUBLISH:
			ok = true
		case packet.PUBREL, packet.SUBSCRIBE, packet.UNSUBSCRIBE:
			ok = flags == 0x2
		default:
			ok = flags == 0
		}
		_, _, err := packet.DecodeFixedHeader([]byte{byte(b), 0})
		if ok && err != nil || !ok && !errors.Is(err, packet.MalformedPacket) {
			t.Errorf("first byte 0x%02X: error %v, want ok=%v", b, err, ok)
		}
	}
}

func TestReadFixedHeaderPassesReadErrors(t *testing.T) {
	boom := errors.New("boom")
	r := bufio.NewReader(io.MultiReader(bytes.NewReader([]byte{0x30, 0x80}), errReader{boom}))
	if _, err := packet.ReadFixedHeader(r); err != boom {
		t.Fatalf("error %v, want %v", err, boom)
	}
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

// TestConnectPartialOnError: the broker needs the version of a refused CONNECT to answer it
// [MQTT-3.1.2-2], [MQTT-3.1.4-1].
func TestConnectPartialOnError(t *testing.T) {
	for _, tc := range []struct {
		name string
		raw  []byte
		want packet.Version
		code error
	}{
		{"MQTT-3.1.2-2 level 6", []byte{0x10, 12, 0, 4, 'M', 'Q', 'T', 'T', 6, 0x02, 0, 60, 0, 0}, 6, packet.UnsupportedProtocolVersion},
		{"MQTT-3.1.2-3 5.0 reserved flag", []byte{0x10, 13, 0, 4, 'M', 'Q', 'T', 'T', 5, 0x03, 0, 60, 0, 0, 0}, packet.V5, packet.MalformedPacket},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := packet.Decode(packet.FixedHeader{Type: packet.CONNECT, Remaining: len(tc.raw) - 2}, tc.raw[2:], packet.V311)
			wantCode(t, err, tc.code)
			c, ok := p.(*packet.Connect)
			if !ok || c.Version != tc.want {
				t.Fatalf("packet %#v, want a *Connect with version %v", p, tc.want)
			}
		})
	}
	// Into a value that held another CONNECT, DecodeConnect leaves what Decode gives: nothing for
	// a cut name, the partial packet, the whole one.
	for _, body := range [][]byte{
		{0, 4, 'M'},
		{0, 4, 'M', 'Q', 'T', 'T', 5, 0x03, 0, 60, 0, 0, 0},
		(&packet.Connect{ProtocolName: "MQTT", Version: packet.V311, CleanStart: true, ClientID: "c"}).Append(nil, packet.V311)[2:],
	} {
		h := packet.FixedHeader{Type: packet.CONNECT, Remaining: len(body)}
		p, err := packet.Decode(h, body, packet.V311)
		intoMatchesDecode(t, h, body, packet.V311, p, err)
	}
	if p, err := packet.Decode(packet.FixedHeader{Type: packet.CONNECT, Remaining: 1}, []byte{0}, packet.V5); p != nil || err == nil {
		t.Fatalf("Decode of a cut name = %#v, %v", p, err)
	}
}

func TestDecodeChecksRemainingLengthAndFlags(t *testing.T) {
	_, err := packet.Decode(packet.FixedHeader{Type: packet.PINGREQ, Remaining: 1}, nil, packet.V5)
	wantCode(t, err, packet.MalformedPacket)
	_, err = packet.Decode(packet.FixedHeader{Type: packet.PUBREL, Remaining: 2}, []byte{0, 1}, packet.V5)
	wantCode(t, err, packet.MalformedPacket) // [MQTT-3.6.1-1]: flags 0000
	var p packet.Publish
	wantCode(t, packet.DecodePublish(packet.FixedHeader{Type: packet.PUBACK}, []byte{0, 1, 't'}, packet.V5, &p), packet.MalformedPacket)
}

// TestDecodePublishResetsCallerStruct: a reused Publish keeps nothing of the previous packet.
func TestDecodePublishResetsCallerStruct(t *testing.T) {
	p := packet.Publish{Dup: true, QoS: 2, Topic: "old", PacketID: 9, Payload: []byte("old"),
		Props: packet.Properties{ContentType: "x", User: []packet.UserProperty{{Key: "k"}}}}
	if err := packet.DecodePublish(packet.FixedHeader{Type: packet.PUBLISH}, []byte{0, 1, 't', 0}, packet.V5, &p); err != nil {
		t.Fatal(err)
	}
	if want := (packet.Publish{Topic: "t"}); !reflect.DeepEqual(p, want) {
		t.Fatalf("got %#v, want %#v", p, want)
	}
}

// TestDecodeAliasesBody: byte slices alias the body and cannot grow into the rest of it.
func TestDecodeAliasesBody(t *testing.T) {
	body := []byte{0, 1, 't', 'a', 'b'}
	var p packet.Publish
	if err := packet.DecodePublish(packet.FixedHeader{Type: packet.PUBLISH}, body, packet.V311, &p); err != nil {
		t.Fatal(err)
	}
	body[3] = 'z'
	if string(p.Payload) != "zb" {
		t.Fatalf("payload %q does not alias the body", p.Payload)
	}
	if cap(p.Payload) != len(p.Payload) {
		t.Fatalf("payload capacity %d reaches past its length %d", cap(p.Payload), len(p.Payload))
	}
}

func TestAppendVersionDifferences(t *testing.T) {
	// 3.1: CONNECT writes MQIsdp and level 3 whatever the struct says.
	c := &packet.Connect{ProtocolName: "MQTT", Version: packet.V5, ClientID: "c", CleanStart: true}
	want := []byte{0x10, 15, 0, 6, 'M', 'Q', 'I', 's', 'd', 'p', 3, 0x02, 0, 0, 0, 1, 'c'}
	if got := packet.Append(nil, c, packet.V31); !bytes.Equal(got, want) {
		t.Errorf("CONNECT for 3.1: % X, want % X", got, want)
	}
	// Properties and 5.0 fields are left out before 5.0.
	p := &packet.Publish{QoS: 1, PacketID: 1, Topic: "t", Props: packet.Properties{ContentType: "x"}}
	if got, want := packet.Append(nil, p, packet.V311), []byte{0x32, 5, 0, 1, 't', 0, 1}; !bytes.Equal(got, want) {
		t.Errorf("PUBLISH for 3.1.1: % X, want % X", got, want)
	}
	s := &packet.Subscribe{PacketID: 1, Props: packet.Properties{SubscriptionIDs: []uint32{1}},
		Subscriptions: []packet.Subscription{{Filter: "a", QoS: 1, NoLocal: true, RetainHandling: 2}}}
	if got, want := packet.Append(nil, s, packet.V311), []byte{0x82, 6, 0, 1, 0, 1, 'a', 1}; !bytes.Equal(got, want) {
		t.Errorf("SUBSCRIBE for 3.1.1: % X, want % X", got, want)
	}
	d := &packet.Disconnect{ReasonCode: packet.ServerShuttingDown, Props: packet.Properties{ReasonString: "bye"}}
	if got, want := packet.Append(nil, d, packet.V311), []byte{0xE0, 0}; !bytes.Equal(got, want) {
		t.Errorf("DISCONNECT for 3.1.1: % X, want % X", got, want)
	}
	a := &packet.Puback{PacketID: 1, ReasonCode: packet.QuotaExceeded}
	if got, want := packet.Append(nil, a, packet.V311), []byte{0x40, 2, 0, 1}; !bytes.Equal(got, want) {
		t.Errorf("PUBACK for 3.1.1: % X, want % X", got, want)
	}
	// Properties a packet may not carry are not written (2.2.2.2).
	ack := &packet.Puback{PacketID: 1, Props: packet.Properties{TopicAlias: 1, HasTopicAlias: true}}
	if got, want := packet.Append(nil, ack, packet.V5), []byte{0x40, 2, 0, 1}; !bytes.Equal(got, want) {
		t.Errorf("PUBACK with a topic alias: % X, want % X", got, want)
	}
	if got := packet.Append([]byte{1}, nil, packet.V5); !bytes.Equal(got, []byte{1}) || packet.Size(nil, packet.V5) != 0 {
		t.Errorf("nil packet: % X", got)
	}
}

func TestReasonCodeErrors(t *testing.T) {
	err := error(&packet.Error{Code: packet.TopicNameInvalid, Field: "PUBLISH topic name"})
	var code packet.ReasonCode
	if !errors.As(err, &code) || code != packet.TopicNameInvalid || !errors.Is(err, packet.TopicNameInvalid) {
		t.Fatalf("errors.As found %v", code)
	}
	if got, want := err.Error(), "topic name invalid: PUBLISH topic name"; got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}
}

// TestGoldenSplit: partial reads are normal. Every prefix of every golden packet gives ErrIncomplete or
// the header of the whole packet, never a different answer.
func TestGoldenSplit(t *testing.T) {
	for _, tc := range packettest.All() {
		h, n, err := packet.DecodeFixedHeader(tc.Raw)
		for cut := 0; cut < len(tc.Raw); cut++ {
			sh, sn, serr := packet.DecodeFixedHeader(tc.Raw[:cut])
			switch {
			case serr == packet.ErrIncomplete:
			case serr == nil && err == nil && sh == h && sn == n:
			case serr != nil && err != nil && serr.Error() == err.Error():
			default:
				t.Errorf("%s: prefix of %d bytes gives %+v, %d, %v; whole gives %+v, %d, %v", tc.Name, cut, sh, sn, serr, h, n, err)
			}
		}
	}
}

// TestErrorFields: errors name the field that failed.
func TestErrorFields(t *testing.T) {
	for _, tc := range []struct {
		raw   []byte
		v     packet.Version
		field string
	}{
		{[]byte{0x30, 5, 0, 3, 'a', 0, 'b'}, packet.V311, "PUBLISH topic name"},   // [MQTT-1.5.4-2]
		{[]byte{0x30, 5, 0, 3, 'a', '/', '#'}, packet.V311, "PUBLISH topic name"}, // [MQTT-3.3.2-2]
		{[]byte{0x10, 13, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 60, 0, 1, 0}, packet.V311, "CONNECT client identifier"},
		{[]byte{0x30, 10, 0, 1, 't', 6, 0x26, 0, 1, 'k', 0, 0xFF}, packet.V5, "user property"},   // cut value
		{[]byte{0x30, 0x80, 0x00}, packet.V5, "remaining length"},                                // [MQTT-1.5.5-1]
		{[]byte{0x00, 0x00}, packet.V5, "fixed header"},                                          // type 0
		{[]byte{0x82, 7, 0, 1, 0, 0, 1, 'a', 0x30}, packet.V5, "SUBSCRIBE subscription options"}, // retain handling 3
	} {
		_, err := decodeWhole(t, tc.raw, tc.v)
		var pe *packet.Error
		if !errors.As(err, &pe) || pe.Field != tc.field {
			t.Errorf("% X: error %v, want field %q", tc.raw, err, tc.field)
		}
	}
}
