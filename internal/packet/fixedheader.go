package packet

import (
	"errors"
	"io"
)

// ErrIncomplete is returned by DecodeFixedHeader when the buffer ends before the fixed header does.
// Partial reads are normal: read more bytes and try again.
var ErrIncomplete = errors.New("packet: incomplete")

const (
	fieldFixedHeader     = "fixed header"
	fieldRemainingLength = "remaining length"
)

// checkFlags validates the packet type and the reserved flag bits of the first byte (2.1.2, 2.1.3).
// PUBLISH flags carry DUP, QoS and RETAIN; they are checked by DecodePublish.
func checkFlags(t Type, flags byte) error {
	switch t {
	case 0:
		// Type 0 is reserved and forbidden (2.1.2).
		return errorf(MalformedPacket, fieldFixedHeader, "reserved packet type 0")
	case PUBLISH:
		return nil
	case PUBREL, SUBSCRIBE, UNSUBSCRIBE:
		if flags != 0x2 {
			// [MQTT-2.1.3-1] (5.0), [MQTT-2.2.2-1] (3.1.1); [MQTT-3.6.1-1], [MQTT-3.8.1-1], [MQTT-3.10.1-1]
			return errorf(MalformedPacket, fieldFixedHeader, "flags 0x%X for %s, want 0x2 [MQTT-2.1.3-1]", flags, t)
		}
	default:
		if t > AUTH || flags != 0 {
			// [MQTT-2.1.3-1] (5.0), [MQTT-2.2.2-1] (3.1.1)
			return errorf(MalformedPacket, fieldFixedHeader, "flags 0x%X for %s, want 0x0 [MQTT-2.1.3-1]", flags, t)
		}
	}
	return nil
}

// ReadFixedHeader reads a fixed header from r (2.1.1). It checks that the packet type is not 0, that the
// reserved flag bits are those of table 2-2 (PUBLISH flags are checked by DecodePublish), and that the
// Remaining Length is a Variable Byte Integer of at most four bytes in its shortest form [MQTT-1.5.5-1].
// Such failures are an *Error with Code MalformedPacket and Field "fixed header" or "remaining length".
//
// io.EOF is returned unwrapped when r ends before the first byte; io.ErrUnexpectedEOF when it ends
// inside the header. Other read errors are returned as they are.
//
// The caller checks h.Remaining against its Maximum Packet Size before reading or allocating the body.
func ReadFixedHeader(r io.ByteReader) (FixedHeader, error) {
	b, err := r.ReadByte()
	if err != nil {
		return FixedHeader{}, err
	}
	h := FixedHeader{Type: Type(b >> 4), Flags: b & 0x0F}
	if err := checkFlags(h.Type, h.Flags); err != nil {
		return FixedHeader{}, err
	}
	var n, shift int
	for i := 0; i < 4; i++ {
		c, err := r.ReadByte()
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return FixedHeader{}, err
		}
		n |= int(c&0x7F) << shift
		if c < 0x80 {
			if c == 0 && i > 0 {
				return FixedHeader{}, errNonMinimal(fieldRemainingLength)
			}
			h.Remaining = n
			return h, nil
		}
		shift += 7
	}
	return FixedHeader{}, errVarIntTooLong(fieldRemainingLength)
}

// DecodeFixedHeader is ReadFixedHeader over a buffer. It returns the header and the number of bytes it
// took, or ErrIncomplete when b ends before the header does. The type and flags are checked as soon as
// the first byte is there, so a bad first byte fails without waiting for more.
func DecodeFixedHeader(b []byte) (FixedHeader, int, error) {
	if len(b) == 0 {
		return FixedHeader{}, 0, ErrIncomplete
	}
	h := FixedHeader{Type: Type(b[0] >> 4), Flags: b[0] & 0x0F}
	if err := checkFlags(h.Type, h.Flags); err != nil {
		return FixedHeader{}, 0, err
	}
	n, size, err := decodeVarInt(b[1:], fieldRemainingLength)
	if err != nil {
		return FixedHeader{}, 0, err
	}
	h.Remaining = n
	return h, 1 + size, nil
}

// decodeVarInt decodes a Variable Byte Integer (1.5.5) from the start of b, returning its value and
// size. It returns ErrIncomplete when b ends inside the integer.
func decodeVarInt(b []byte, field string) (value, size int, err error) {
	var n, shift int
	for i := 0; i < 4; i++ {
		if i >= len(b) {
			return 0, 0, ErrIncomplete
		}
		c := b[i]
		n |= int(c&0x7F) << shift
		if c < 0x80 {
			if c == 0 && i > 0 {
				return 0, 0, errNonMinimal(field)
			}
			return n, i + 1, nil
		}
		shift += 7
	}
	return 0, 0, errVarIntTooLong(field)
}

func errVarIntTooLong(field string) error {
	// At most four bytes (1.5.5).
	return errorf(MalformedPacket, field, "variable byte integer longer than 4 bytes [MQTT-1.5.5-1]")
}

func errNonMinimal(field string) error {
	// "The encoded value MUST use the minimum number of bytes necessary to represent the value"
	return errorf(MalformedPacket, field, "variable byte integer not in its shortest form [MQTT-1.5.5-1]")
}

// varIntSize is the number of bytes of the Variable Byte Integer encoding of n (1.5.5), as appendVarInt
// writes it. Values above MaxRemainingLength take more than four bytes, which no decoder accepts.
func varIntSize(n int) int {
	s := 1
	for n >= 0x80 {
		n >>= 7
		s++
	}
	return s
}

// appendVarInt appends n as a Variable Byte Integer in its shortest form. n must be in
// 0..MaxRemainingLength; larger values come out longer than four bytes, which decoders reject (Validate
// reports them); negative values are written as 0.
func appendVarInt(dst []byte, n int) []byte {
	if n < 0 {
		n = 0
	}
	for n >= 0x80 {
		dst = append(dst, byte(n)|0x80)
		n >>= 7
	}
	return append(dst, byte(n))
}

// appendFixedHeader appends the first byte and the Remaining Length.
func appendFixedHeader(dst []byte, t Type, flags byte, remaining int) []byte {
	return appendVarInt(append(dst, byte(t)<<4|flags), remaining)
}
