package packet_test

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/turnstilemq/turnstile/internal/packet"
	"github.com/turnstilemq/turnstile/internal/packet/packettest"
)

var fuzzVersions = [...]packet.Version{packet.V31, packet.V311, packet.V5}

func versionIndex(v packet.Version) byte {
	for i, fv := range fuzzVersions {
		if fv == v {
			return byte(i)
		}
	}
	return 0
}

// FuzzReadPacket feeds bytes to the codec as a connection would: whole through ReadFixedHeader and
// Decode, and split at a point through DecodeFixedHeader, which must answer ErrIncomplete or the same
// thing as for the whole buffer. Nothing may panic, and whatever decodes must re-encode and decode again
// to an equal packet.
func FuzzReadPacket(f *testing.F) {
	for _, tc := range packettest.All() {
		if len(tc.Raw) > 0 && !tc.EncodeOnly {
			f.Add(tc.Raw, versionIndex(tc.Version), uint16(len(tc.Raw)/2))
		}
	}
	f.Fuzz(func(t *testing.T, raw []byte, vi byte, split uint16) {
		v := fuzzVersions[int(vi)%len(fuzzVersions)]

		// Whole, through an io.ByteReader.
		r := bytes.NewReader(raw)
		rh, rerr := packet.ReadFixedHeader(r)
		h, n, err := packet.DecodeFixedHeader(raw)
		switch {
		case err == nil:
			if rerr != nil || rh != h || n != len(raw)-r.Len() || n != h.Size() {
				t.Fatalf("DecodeFixedHeader %+v (%d bytes), ReadFixedHeader %+v, %v", h, n, rh, rerr)
			}
		case err == packet.ErrIncomplete:
			if rerr != io.EOF && rerr != io.ErrUnexpectedEOF {
				t.Fatalf("DecodeFixedHeader incomplete, ReadFixedHeader %v", rerr)
			}
		default:
			if !errors.Is(err, packet.MalformedPacket) || !errors.Is(rerr, packet.MalformedPacket) {
				t.Fatalf("header errors %v and %v, want malformed", err, rerr)
			}
		}

		// Split: the first part alone is incomplete or already decided.
		cut := int(split) % (len(raw) + 1)
		sh, sn, serr := packet.DecodeFixedHeader(raw[:cut])
		switch {
		case serr == packet.ErrIncomplete:
		case serr == nil:
			if err != nil || sh != h || sn != n {
				t.Fatalf("split at %d: %+v (%d bytes), whole: %+v (%d bytes), %v", cut, sh, sn, h, n, err)
			}
		default:
			if err == nil || err.Error() != serr.Error() {
				t.Fatalf("split at %d: %v, whole: %v", cut, serr, err)
			}
		}

		if err != nil || h.Remaining > len(raw)-n {
			return
		}
		p, err := packet.Decode(h, raw[n:n+h.Remaining], v)
		intoMatchesDecode(t, h, raw[n:n+h.Remaining], v, p, err)
		if err != nil {
			var pe *packet.Error
			if !errors.As(err, &pe) {
				t.Fatalf("Decode error %v (%T) is not an *Error", err, err)
			}
			return
		}
		roundTrip(t, p, v)
	})
}

// roundTrip encodes p, checks Size, and decodes it again to an equal packet.
func roundTrip(t *testing.T, p packet.Packet, v packet.Version) {
	t.Helper()
	if c, ok := p.(*packet.Connect); ok {
		v = c.Version
	}
	b := packet.Append(nil, p, v)
	if size := packet.Size(p, v); size != len(b) {
		t.Fatalf("Size %d, Append wrote %d bytes for %#v", size, len(b), p)
	}
	h, n, err := packet.DecodeFixedHeader(b)
	if err != nil || n+h.Remaining != len(b) {
		t.Fatalf("re-encoded header %+v (%d bytes of %d): %v", h, n, len(b), err)
	}
	p2, err := packet.Decode(h, b[n:], v)
	if err != nil {
		t.Fatalf("re-decoding % X: %v\npacket %#v", b, err, p)
	}
	if !reflect.DeepEqual(p, p2) {
		t.Fatalf("round trip:\n got %#v\nwant %#v", p2, p)
	}
}

// FuzzPublishRoundTrip builds PUBLISH packets from fuzzed fields, encodes them and decodes them again:
// a packet that follows the rules must come back equal; one that does not must be refused, not panic.
func FuzzPublishRoundTrip(f *testing.F) {
	f.Add("a/b", []byte("hi"), byte(1), false, true, uint16(7), true, "json", uint16(0), uint32(0), byte(0))
	f.Add("", []byte{0xFF}, byte(0), false, false, uint16(0), true, "", uint16(3), uint32(5), byte(5))
	f.Add("t/#", []byte(nil), byte(2), true, false, uint16(1), false, "", uint16(0), uint32(0), byte(0))
	f.Fuzz(func(t *testing.T, topic string, payload []byte, qos byte, dup, retain bool, id uint16,
		v5 bool, contentType string, alias uint16, subID uint32, pfi byte) {
		v := packet.V311
		if v5 {
			v = packet.V5
		}
		p := &packet.Publish{Dup: dup, QoS: qos & 3, Retain: retain, Topic: topic, PacketID: id, Payload: payload}
		if p.QoS == 0 {
			p.PacketID = 0
		}
		if v5 {
			p.Props.ContentType = contentType
			p.Props.TopicAlias, p.Props.HasTopicAlias = alias, alias != 0 || pfi&2 != 0
			if subID != 0 {
				p.Props.SubscriptionIDs = []uint32{subID}
			}
			if pfi&4 != 0 {
				p.Props.PayloadFormat, p.Props.HasPayloadFormat = pfi&1, true
			}
		}
		b := p.Append(nil, v)
		if len(b) != p.Size(v) {
			t.Fatalf("Size %d, Append wrote %d", p.Size(v), len(b))
		}
		h, n, err := packet.DecodeFixedHeader(b)
		if err != nil {
			t.Fatalf("header of % X: %v", b, err)
		}
		var got packet.Publish
		err = packet.DecodePublish(h, b[n:], v, &got)
		valid := publishValid(p, v)
		if valid != (err == nil) {
			t.Fatalf("valid=%v but DecodePublish error %v for %#v", valid, err, p)
		}
		if err != nil {
			return
		}
		if len(p.Payload) == 0 {
			p.Payload = nil
		}
		if !reflect.DeepEqual(&got, p) {
			t.Fatalf("round trip:\n got %#v\nwant %#v", &got, p)
		}
	})
}

// publishValid restates the PUBLISH rules independently of the decoder.
func publishValid(p *packet.Publish, v packet.Version) bool {
	validStr := func(s string) bool { return utf8.ValidString(s) && !strings.ContainsRune(s, 0) }
	switch {
	case p.QoS == 3, p.Dup && p.QoS == 0, p.QoS > 0 && p.PacketID == 0:
		return false
	case len(p.Topic) > packet.MaxStringLength, len(p.Props.ContentType) > packet.MaxStringLength:
		return false
	case !validStr(p.Topic), strings.ContainsAny(p.Topic, "+#"):
		return false
	case p.Topic == "" && (v != packet.V5 || !p.Props.HasTopicAlias):
		return false
	}
	if v != packet.V5 {
		return true
	}
	switch {
	case !validStr(p.Props.ContentType):
		return false
	case p.Props.HasTopicAlias && p.Props.TopicAlias == 0:
		return false
	case len(p.Props.SubscriptionIDs) > 0 && p.Props.SubscriptionIDs[0] > packet.MaxRemainingLength:
		return false
	case p.Props.HasPayloadFormat && p.Props.PayloadFormat == 1 && !utf8.Valid(p.Payload):
		return false
	}
	return true
}
