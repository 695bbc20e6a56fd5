package packet

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestValidString(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		ok   bool // as a UTF-8 Encoded String
		data bool // as UTF-8 character data (payload format 1)
	}{
		{"empty", "", true, true},
		{"ASCII", "sensors/room-1/temp", true, true},
		{"long ASCII crosses the 8-byte path", strings.Repeat("abcdefgh", 9) + "xyz", true, true},
		{"two-byte", "héllo", true, true},
		{"three-byte", "温度/センサー", true, true},
		{"four-byte", "emoji 😀", true, true},
		{"U+FEFF is kept, not stripped [MQTT-1.5.4-3]", "\uFEFFa", true, true},
		{"U+FFFF non-character is well-formed", "\uFFFF", true, true},
		{"U+10FFFF is the last code point", "\U0010FFFF", true, true},
		{"MQTT-1.5.4-2 U+0000 first", "\x00abc", false, true},
		{"MQTT-1.5.4-2 U+0000 inside an 8-byte run", "abcdefg\x00ijklmnop", false, true},
		{"MQTT-1.5.4-2 U+0000 at the end", "abcdefghijklmnop\x00", false, true},
		{"MQTT-1.5.4-1 U+D800 surrogate", "\xED\xA0\x80", false, false},
		{"MQTT-1.5.4-1 U+DFFF surrogate", "a\xED\xBF\xBF", false, false},
		{"U+D7FF just below the surrogates", "\xED\x9F\xBF", true, true},
		{"overlong two-byte C0 80", "\xC0\x80", false, false},
		{"overlong two-byte C1 BF", "\xC1\xBF", false, false},
		{"overlong three-byte", "\xE0\x80\xAF", false, false},
		{"overlong four-byte", "\xF0\x80\x80\xAF", false, false},
		{"above U+10FFFF", "\xF4\x90\x80\x80", false, false},
		{"F5 lead", "\xF5\x80\x80\x80", false, false},
		{"FF byte", "abcdefgh\xFF", false, false},
		{"lone continuation", "\x80", false, false},
		{"cut two-byte", "a\xC3", false, false},
		{"cut three-byte", "\xE6\xB8", false, false},
		{"cut four-byte", "\xF0\x9F\x98", false, false},
		{"bad continuation", "\xC3\x28", false, false},
		{"bad third byte", "\xE6\xB8\x28", false, false},
		{"bad fourth byte", "\xF0\x9F\x98\x28", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := validString([]byte(tc.in)); got != tc.ok {
				t.Errorf("validString(%q) = %v, want %v", tc.in, got, tc.ok)
			}
			if got := validCharData([]byte(tc.in)); got != tc.data {
				t.Errorf("validCharData(%q) = %v, want %v", tc.in, got, tc.data)
			}
		})
	}
}

func TestValidStringDoesNotAllocate(t *testing.T) {
	b := []byte(strings.Repeat("sensors/room-1/temperature/", 4) + "温度")
	if n := testing.AllocsPerRun(100, func() { validString(b) }); n != 0 {
		t.Fatalf("validString allocates %v times", n)
	}
}

// FuzzValidUTF8 checks the hand-written validator against the standard library, which implements the
// same RFC 3629 rules (no surrogates, nothing above U+10FFFF, no overlong forms).
func FuzzValidUTF8(f *testing.F) {
	for _, s := range []string{"", "abc", "héllo", "\xED\xA0\x80", "\x00", "\xF4\x90\x80\x80", "abcdefgh\xC3", "😀😀😀😀"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		want := utf8.Valid(b)
		if got := validCharData(b); got != want {
			t.Fatalf("validCharData(% X) = %v, want %v", b, got, want)
		}
		if got, want := validString(b), want && bytes.IndexByte(b, 0) < 0; got != want {
			t.Fatalf("validString(% X) = %v, want %v", b, got, want)
		}
	})
}

func TestVarInt(t *testing.T) {
	for _, n := range []int{0, 1, 127, 128, 16383, 16384, 2097151, 2097152, MaxRemainingLength} {
		b := appendVarInt(nil, n)
		if len(b) != varIntSize(n) {
			t.Errorf("%d: %d bytes, varIntSize says %d", n, len(b), varIntSize(n))
		}
		got, size, err := decodeVarInt(b, "test")
		if err != nil || got != n || size != len(b) {
			t.Errorf("%d: decoded %d (%d bytes), %v", n, got, size, err)
		}
	}
	if varIntSize(MaxRemainingLength+1) != 5 || len(appendVarInt(nil, MaxRemainingLength+1)) != 5 {
		t.Errorf("a value past the maximum must not fit in four bytes")
	}
}

// TestPropertyTable checks propKinds against table 2.2.2.2 row counts: how many packets (and the Will
// Properties) may carry each property.
func TestPropertyTable(t *testing.T) {
	want := map[byte]int{
		PropPayloadFormat: 2, PropMessageExpiry: 2, PropContentType: 2, PropResponseTopic: 2,
		PropCorrelationData: 2, PropSubscriptionID: 2, PropSessionExpiry: 3, PropAssignedClientID: 1,
		PropServerKeepAlive: 1, PropAuthMethod: 3, PropAuthData: 3, PropRequestProblemInfo: 1,
		PropWillDelay: 1, PropRequestResponseInfo: 1, PropResponseInfo: 1, PropServerReference: 2,
		PropReasonString: 9, PropReceiveMaximum: 2, PropTopicAliasMaximum: 2, PropTopicAlias: 1,
		PropMaximumQoS: 1, PropRetainAvailable: 1, PropUser: 14, PropMaximumPacketSize: 2,
		PropWildcardSubAvailable: 1, PropSubIDAvailable: 1, PropSharedSubAvailable: 1,
	}
	for id, kinds := range propKinds {
		n := 0
		for k := 0; k < 16; k++ {
			if kinds&(1<<k) != 0 {
				n++
			}
		}
		if n != want[byte(id)] {
			t.Errorf("property 0x%02X (%s) allowed in %d kinds, want %d", id, propNames[id], n, want[byte(id)])
		}
		if (propNames[id] == "") != (kinds == 0) {
			t.Errorf("property 0x%02X: name %q for kinds %b", id, propNames[id], kinds)
		}
	}
}
