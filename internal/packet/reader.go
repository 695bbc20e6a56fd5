package packet

import "encoding/binary"

// reader walks a packet body. Every read is bounds-checked and a short read is a Malformed Packet
// naming the field, so no input can make the decoder panic.
type reader struct {
	b []byte
	i int
}

func (r *reader) left() int { return len(r.b) - r.i }

func errShort(field string) error {
	return errorf(MalformedPacket, field, "packet ends inside the field")
}

func (r *reader) u8(field string) (byte, error) {
	if r.i >= len(r.b) {
		return 0, errShort(field)
	}
	c := r.b[r.i]
	r.i++
	return c, nil
}

// u16 reads a Two Byte Integer (1.5.2).
func (r *reader) u16(field string) (uint16, error) {
	if r.left() < 2 {
		return 0, errShort(field)
	}
	v := binary.BigEndian.Uint16(r.b[r.i:])
	r.i += 2
	return v, nil
}

// u32 reads a Four Byte Integer (1.5.3).
func (r *reader) u32(field string) (uint32, error) {
	if r.left() < 4 {
		return 0, errShort(field)
	}
	v := binary.BigEndian.Uint32(r.b[r.i:])
	r.i += 4
	return v, nil
}

// varInt reads a Variable Byte Integer (1.5.5).
func (r *reader) varInt(field string) (int, error) {
	v, n, err := decodeVarInt(r.b[r.i:], field)
	if err == ErrIncomplete {
		return 0, errShort(field)
	}
	if err != nil {
		return 0, err
	}
	r.i += n
	return v, nil
}

// bin reads Binary Data (1.5.6): a Two Byte length and that many bytes. The result aliases the body;
// it is non-nil even when empty.
func (r *reader) bin(field string) ([]byte, error) {
	n, err := r.u16(field)
	if err != nil {
		return nil, err
	}
	if int(n) > r.left() {
		return nil, errorf(MalformedPacket, field, "length %d past the end of the packet", n)
	}
	b := r.b[r.i : r.i+int(n) : r.i+int(n)]
	r.i += int(n)
	return b, nil
}

// strBytes reads a UTF-8 Encoded String (1.5.4) and checks it without copying.
func (r *reader) strBytes(field string) ([]byte, error) {
	b, err := r.bin(field)
	if err != nil {
		return nil, err
	}
	if !validString(b) {
		// [MQTT-1.5.4-1] well-formed, no surrogates; [MQTT-1.5.4-2] no U+0000
		return nil, errorf(MalformedPacket, field, "invalid UTF-8 or U+0000 [MQTT-1.5.4-1] [MQTT-1.5.4-2]")
	}
	return b, nil
}

// str reads a UTF-8 Encoded String and copies it.
func (r *reader) str(field string) (string, error) {
	b, err := r.strBytes(field)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// rest returns the unread bytes, nil when there are none.
func (r *reader) rest() []byte {
	if r.i >= len(r.b) {
		return nil
	}
	b := r.b[r.i:len(r.b):len(r.b)]
	r.i = len(r.b)
	return b
}

// end reports trailing bytes as a Malformed Packet.
func (r *reader) end(field string) error {
	if r.i != len(r.b) {
		return errorf(MalformedPacket, field, "%d unexpected bytes at the end of the packet", len(r.b)-r.i)
	}
	return nil
}
