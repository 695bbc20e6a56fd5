package packet

import (
	"bytes"
	"strings"
	"testing"
)

// TestPublishHeadEncodesAsPublish: a PublishHead encodes byte for byte as a Publish with the
// same fields and no properties, for every version, QoS and flag, and for remaining lengths on
// each side of the variable byte integer's steps (1.5.5), and what it encodes decodes back to
// those fields.
func TestPublishHeadEncodesAsPublish(t *testing.T) {
	for _, v := range []Version{V31, V311, V5} {
		for _, qos := range []byte{0, 1, 2} {
			for _, n := range []int{0, 1, 100, 127 - 12, 128, 16383 - 12, 16384, 70000} {
				for _, flags := range []struct{ dup, retain bool }{{false, false}, {true, false}, {false, true}, {true, true}} {
					h := PublishHead{Topic: "a/" + strings.Repeat("t", int(qos)), Payload: bytes.Repeat([]byte{7}, n),
						QoS: qos, Dup: flags.dup && qos > 0, Retain: flags.retain}
					if qos > 0 {
						h.PacketID = 0xBEEF
					}
					p := Publish{Topic: h.Topic, Payload: h.Payload, QoS: h.QoS, Dup: h.Dup, Retain: h.Retain, PacketID: h.PacketID}
					got, want := h.Append(nil, v), p.Append(nil, v)
					if !bytes.Equal(got, want) || h.Size(v) != len(want) {
						t.Fatalf("v%d qos %d n %d %+v: head encodes %d bytes (Size %d), Publish %d; differ: %v",
							v, qos, n, flags, len(got), h.Size(v), len(want), !bytes.Equal(got, want))
					}
					r := bytes.NewReader(got)
					fh, err := ReadFixedHeader(r)
					var d Publish
					if err == nil {
						err = DecodePublish(fh, got[len(got)-r.Len():], v, &d)
					}
					if err != nil || d.Topic != h.Topic || !bytes.Equal(d.Payload, h.Payload) || d.QoS != qos || d.PacketID != h.PacketID {
						t.Fatalf("v%d qos %d n %d: decodes to %+v, %v", v, qos, n, d, err)
					}
				}
			}
		}
	}
}
