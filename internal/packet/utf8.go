package packet

import "encoding/binary"

const (
	lsb8 = 0x0101010101010101
	msb8 = 0x8080808080808080
)

// validString reports whether b may be the content of a UTF-8 Encoded String (1.5.4): well-formed
// UTF-8 as restated in RFC 3629, so no surrogates U+D800..U+DFFF [MQTT-1.5.4-1], and no U+0000
// [MQTT-1.5.4-2]. It does not allocate.
func validString(b []byte) bool { return validUTF8(b, true) }

// validCharData reports whether b is well-formed UTF-8 (RFC 3629), the rule for a payload marked with
// Payload Format Indicator 1 (3.3.2.3.2). U+0000 is allowed there.
func validCharData(b []byte) bool { return validUTF8(b, false) }

// validUTF8 checks well-formedness per RFC 3629 / Unicode table 3-7: no overlong forms, no surrogates,
// nothing above U+10FFFF; with noNUL, also no 0x00 byte. ASCII runs are checked eight bytes at a time.
func validUTF8(b []byte, noNUL bool) bool {
	i := 0
	for i < len(b) {
		// Fast path: eight ASCII bytes, none of them zero when noNUL.
		if i+8 <= len(b) {
			w := binary.LittleEndian.Uint64(b[i:])
			if w&msb8 == 0 && (!noNUL || (w-lsb8)&^w&msb8 == 0) {
				i += 8
				continue
			}
		}
		c := b[i]
		if c < 0x80 {
			if c == 0 && noNUL {
				return false
			}
			i++
			continue
		}
		switch {
		case c < 0xC2: // continuation byte as a lead, or overlong 2-byte form (C0, C1)
			return false
		case c < 0xE0: // U+0080..U+07FF
			if i+1 >= len(b) || b[i+1]&0xC0 != 0x80 {
				return false
			}
			i += 2
		case c < 0xF0: // U+0800..U+FFFF
			if i+2 >= len(b) {
				return false
			}
			c1, c2 := b[i+1], b[i+2]
			if c1&0xC0 != 0x80 || c2&0xC0 != 0x80 {
				return false
			}
			if c == 0xE0 && c1 < 0xA0 { // overlong
				return false
			}
			if c == 0xED && c1 >= 0xA0 { // U+D800..U+DFFF [MQTT-1.5.4-1]
				return false
			}
			i += 3
		case c < 0xF5: // U+10000..U+10FFFF
			if i+3 >= len(b) {
				return false
			}
			c1, c2, c3 := b[i+1], b[i+2], b[i+3]
			if c1&0xC0 != 0x80 || c2&0xC0 != 0x80 || c3&0xC0 != 0x80 {
				return false
			}
			if c == 0xF0 && c1 < 0x90 { // overlong
				return false
			}
			if c == 0xF4 && c1 >= 0x90 { // above U+10FFFF
				return false
			}
			i += 4
		default: // F5..FF never appear in UTF-8
			return false
		}
	}
	return true
}

// hasWildcard reports whether a topic name contains '+' or '#' [MQTT-3.3.2-2], [MQTT-4.7.0-1].
func hasWildcard(s []byte) bool {
	for _, c := range s {
		if c == '+' || c == '#' {
			return true
		}
	}
	return false
}
