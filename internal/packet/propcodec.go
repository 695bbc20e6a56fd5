package packet

// AppendProperties appends the Property Length and the properties of p that packet type t may
// carry, in the wire encoding (2.2.2). Stores use it to keep a message's properties as bytes.
func AppendProperties(dst []byte, p *Properties, t Type) []byte {
	return appendProps(dst, p, t, propsSize(p, t))
}

// DecodeProperties decodes bytes written by AppendProperties for packet type t. Byte slices in
// the result alias b; the whole of b must be consumed.
func DecodeProperties(b []byte, t Type) (Properties, error) {
	var p Properties
	r := reader{b: b}
	if err := decodeProps(&r, &p, t, "properties"); err != nil {
		return Properties{}, err
	}
	if err := r.end("properties"); err != nil {
		return Properties{}, err
	}
	return p, nil
}
