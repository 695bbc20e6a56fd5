package packet

import "encoding/binary"

// Encoding. Size and Append work for every packet type and version; Append allocates nothing when dst
// has room for Size bytes, so a writer can append many packets into one buffer. For versions before 5
// properties and 5.0-only fields (reason codes of acknowledgements, Subscription Options other than QoS)
// are left out.
//
// Append trusts its input, as the decoders are the validators: it writes the fields it is given, only
// leaving out properties the packet type may not carry (table 2.2.2.2), empty string properties and nil
// byte-slice properties. A string or byte slice longer than 65,535 bytes is cut to that length, and a
// packet larger than MaxPacketSize gets a Remaining Length no decoder accepts; check Size against the
// peer's Maximum Packet Size before sending.

// Size returns the encoded size of p for version v, fixed header included. It is 0 for a nil packet and
// for AUTH before MQTT 5 (see Append).
func Size(p Packet, v Version) int {
	switch p := p.(type) {
	case *Connect:
		return p.Size(v)
	case *Connack:
		return p.Size(v)
	case *Publish:
		return p.Size(v)
	case *Puback:
		return p.Size(v)
	case *Pubrec:
		return p.Size(v)
	case *Pubrel:
		return p.Size(v)
	case *Pubcomp:
		return p.Size(v)
	case *Subscribe:
		return p.Size(v)
	case *Suback:
		return p.Size(v)
	case *Unsubscribe:
		return p.Size(v)
	case *Unsuback:
		return p.Size(v)
	case *Pingreq:
		return p.Size(v)
	case *Pingresp:
		return p.Size(v)
	case *Disconnect:
		return p.Size(v)
	case *Auth:
		return p.Size(v)
	}
	return 0
}

// Append appends the encoding of p for version v to dst and returns the extended buffer.
//
//   - CONNECT is written for v: protocol name "MQIsdp" for V31, "MQTT" otherwise, and level v;
//     c.ProtocolName and c.Version are not consulted.
//   - CONNACK for 3.1/3.1.1 carries ConnackReturnCode311(ReasonCode).
//   - SUBACK for 3.1.1 writes every code of 0x80 or more as 0x80 (Failure); UNSUBACK writes no codes.
//   - PUBACK, PUBREC, PUBREL, PUBCOMP, DISCONNECT and AUTH for 5.0 use the short form (no reason code,
//     no properties) when the reason is Success and there are no properties [MQTT-3.4.2-1]; otherwise
//     the reason code and a Property Length, even when zero.
//   - DISCONNECT before 5.0 has no body. AUTH does not exist before 5.0: nothing is appended.
//
// A nil p appends nothing.
func Append(dst []byte, p Packet, v Version) []byte {
	switch p := p.(type) {
	case *Connect:
		return p.Append(dst, v)
	case *Connack:
		return p.Append(dst, v)
	case *Publish:
		return p.Append(dst, v)
	case *Puback:
		return p.Append(dst, v)
	case *Pubrec:
		return p.Append(dst, v)
	case *Pubrel:
		return p.Append(dst, v)
	case *Pubcomp:
		return p.Append(dst, v)
	case *Subscribe:
		return p.Append(dst, v)
	case *Suback:
		return p.Append(dst, v)
	case *Unsubscribe:
		return p.Append(dst, v)
	case *Unsuback:
		return p.Append(dst, v)
	case *Pingreq:
		return p.Append(dst, v)
	case *Pingresp:
		return p.Append(dst, v)
	case *Disconnect:
		return p.Append(dst, v)
	case *Auth:
		return p.Append(dst, v)
	}
	return dst
}

// total is the full size of a packet with the given Remaining Length.
func total(remaining int) int { return 1 + varIntSize(remaining) + remaining }

func clip(n int) int { return min(n, MaxStringLength) }

// strSize is the encoded size of a UTF-8 Encoded String (1.5.4).
func strSize(s string) int { return 2 + clip(len(s)) }

// binSize is the encoded size of Binary Data (1.5.6).
func binSize(b []byte) int { return 2 + clip(len(b)) }

func appendU16(dst []byte, v uint16) []byte { return binary.BigEndian.AppendUint16(dst, v) }

func appendU32(dst []byte, v uint32) []byte { return binary.BigEndian.AppendUint32(dst, v) }

func appendString(dst []byte, s string) []byte {
	n := clip(len(s))
	return append(appendU16(dst, uint16(n)), s[:n]...)
}

func appendBinary(dst []byte, b []byte) []byte {
	n := clip(len(b))
	return append(appendU16(dst, uint16(n)), b[:n]...)
}

func b2i(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// --- CONNECT (3.1)

func protocolName(v Version) string {
	if v == V31 {
		return "MQIsdp"
	}
	return "MQTT"
}

func (c *Connect) hasUsername() bool { return c.UsernameFlag || c.Username != "" }
func (c *Connect) hasPassword() bool { return c.PasswordFlag || len(c.Password) > 0 }

func (c *Connect) remaining(v Version) (n, props, willProps int) {
	n = strSize(protocolName(v)) + 1 + 1 + 2 // name, level, flags, keep alive
	if v == V5 {
		props = propsSize(&c.Props, CONNECT)
		n += withProps(props)
	}
	n += strSize(c.ClientID)
	if w := c.Will; w != nil {
		if v == V5 {
			willProps = propsSize(&w.Props, kindWill)
			n += withProps(willProps)
		}
		n += strSize(w.Topic) + binSize(w.Payload)
	}
	if c.hasUsername() {
		n += strSize(c.Username)
	}
	if c.hasPassword() {
		n += binSize(c.Password)
	}
	return n, props, willProps
}

// Size returns the encoded size of c for version v.
func (c *Connect) Size(v Version) int {
	n, _, _ := c.remaining(v)
	return total(n)
}

// Append appends c encoded for version v (see the package function Append). The User Name and Password
// flags are set when the flag fields are true or the values are non-empty.
func (c *Connect) Append(dst []byte, v Version) []byte {
	n, props, willProps := c.remaining(v)
	dst = appendFixedHeader(dst, CONNECT, 0, n)
	dst = appendString(dst, protocolName(v))
	var flags byte
	if c.CleanStart {
		flags |= 0x02
	}
	if w := c.Will; w != nil {
		flags |= 0x04 | (w.QoS&0x03)<<3 | b2i(w.Retain)<<5
	}
	if c.hasPassword() {
		flags |= 0x40
	}
	if c.hasUsername() {
		flags |= 0x80
	}
	dst = append(dst, byte(v), flags)
	dst = appendU16(dst, c.KeepAlive)
	if v == V5 {
		dst = appendProps(dst, &c.Props, CONNECT, props)
	}
	dst = appendString(dst, c.ClientID)
	if w := c.Will; w != nil {
		if v == V5 {
			dst = appendProps(dst, &w.Props, kindWill, willProps)
		}
		dst = appendString(dst, w.Topic)
		dst = appendBinary(dst, w.Payload)
	}
	if c.hasUsername() {
		dst = appendString(dst, c.Username)
	}
	if c.hasPassword() {
		dst = appendBinary(dst, c.Password)
	}
	return dst
}

// --- CONNACK (3.2)

func (c *Connack) remaining(v Version) (n, props int) {
	if v != V5 {
		return 2, 0
	}
	props = propsSize(&c.Props, CONNACK)
	return 2 + withProps(props), props
}

// Size returns the encoded size of c for version v.
func (c *Connack) Size(v Version) int {
	n, _ := c.remaining(v)
	return total(n)
}

// Append appends c encoded for version v; before 5.0 the reason code is mapped with ConnackReturnCode311.
func (c *Connack) Append(dst []byte, v Version) []byte {
	n, props := c.remaining(v)
	dst = appendFixedHeader(dst, CONNACK, 0, n)
	if v != V5 {
		return append(dst, b2i(c.SessionPresent), ConnackReturnCode311(c.ReasonCode))
	}
	dst = append(dst, b2i(c.SessionPresent), byte(c.ReasonCode))
	return appendProps(dst, &c.Props, CONNACK, props)
}

// --- PUBLISH (3.3)

// publishBase is the Remaining Length of a PUBLISH before its properties: the topic, the
// packet identifier (QoS 1 and 2) and the payload.
func publishBase(topic string, qos byte, payload []byte) int {
	n := strSize(topic) + len(payload)
	if qos > 0 {
		n += 2
	}
	return n
}

// appendPublishStart appends a PUBLISH's fixed header, topic and packet identifier (written
// only for QoS 1 and 2); the properties (5.0) and the payload follow.
func appendPublishStart(dst []byte, topic string, pid uint16, qos byte, dup, retain bool, remaining int) []byte {
	dst = appendFixedHeader(dst, PUBLISH, (qos&0x03)<<1|b2i(dup)<<3|b2i(retain), remaining)
	dst = appendString(dst, topic)
	if qos > 0 {
		dst = appendU16(dst, pid)
	}
	return dst
}

func (p *Publish) remaining(v Version) (n, props int) {
	n = publishBase(p.Topic, p.QoS, p.Payload)
	if v == V5 {
		props = propsSize(&p.Props, PUBLISH)
		n += withProps(props)
	}
	return n, props
}

// Size returns the encoded size of p for version v.
func (p *Publish) Size(v Version) int {
	n, _ := p.remaining(v)
	return total(n)
}

// Append appends p encoded for version v. It allocates nothing when dst has room for p.Size(v) bytes.
// The packet identifier is written only for QoS 1 and 2.
func (p *Publish) Append(dst []byte, v Version) []byte {
	n, props := p.remaining(v)
	dst = appendPublishStart(dst, p.Topic, p.PacketID, p.QoS, p.Dup, p.Retain, n)
	if v == V5 {
		dst = appendProps(dst, &p.Props, PUBLISH, props)
	}
	return append(dst, p.Payload...)
}

// PublishHead is a PUBLISH without properties, what most deliveries are: it encodes exactly as a
// Publish with the same fields and zero Props, without a Publish's 344 bytes to fill in for each
// delivery (the broker's fan-out encodes one per subscriber).
type PublishHead struct {
	Topic    string
	Payload  []byte
	PacketID uint16 // only for QoS > 0
	QoS      byte
	Dup      bool
	Retain   bool
}

func (p *PublishHead) remaining(v Version) int {
	n := publishBase(p.Topic, p.QoS, p.Payload)
	if v == V5 {
		n++ // Property Length 0 (3.3.2.3.1)
	}
	return n
}

// Size returns the encoded size of p for version v.
func (p *PublishHead) Size(v Version) int { return total(p.remaining(v)) }

// Append appends p encoded for version v; it allocates nothing when dst has room for p.Size(v)
// bytes. The packet identifier is written only for QoS 1 and 2.
func (p *PublishHead) Append(dst []byte, v Version) []byte {
	dst = appendPublishStart(dst, p.Topic, p.PacketID, p.QoS, p.Dup, p.Retain, p.remaining(v))
	if v == V5 {
		dst = append(dst, 0) // Property Length 0
	}
	return append(dst, p.Payload...)
}

// --- PUBACK, PUBREC, PUBREL, PUBCOMP (3.4 to 3.7)

func (a *Ack) remaining(v Version, t Type) (n, props int) {
	if v != V5 {
		return 2, 0
	}
	props = propsSize(&a.Props, t)
	if a.ReasonCode == Success && props == 0 { // short form (3.4.2.1)
		return 2, 0
	}
	return 3 + withProps(props), props
}

func (a *Ack) size(v Version, t Type) int {
	n, _ := a.remaining(v, t)
	return total(n)
}

func (a *Ack) append(dst []byte, v Version, t Type, flags byte) []byte {
	n, props := a.remaining(v, t)
	dst = appendFixedHeader(dst, t, flags, n)
	dst = appendU16(dst, a.PacketID)
	if n == 2 {
		return dst
	}
	dst = append(dst, byte(a.ReasonCode))
	return appendProps(dst, &a.Props, t, props)
}

// Size returns the encoded size of p for version v.
func (p *Puback) Size(v Version) int { return (*Ack)(p).size(v, PUBACK) }

// Append appends p encoded for version v.
func (p *Puback) Append(dst []byte, v Version) []byte { return (*Ack)(p).append(dst, v, PUBACK, 0) }

// Size returns the encoded size of p for version v.
func (p *Pubrec) Size(v Version) int { return (*Ack)(p).size(v, PUBREC) }

// Append appends p encoded for version v.
func (p *Pubrec) Append(dst []byte, v Version) []byte { return (*Ack)(p).append(dst, v, PUBREC, 0) }

// Size returns the encoded size of p for version v.
func (p *Pubrel) Size(v Version) int { return (*Ack)(p).size(v, PUBREL) }

// Append appends p encoded for version v, with the fixed header flags 0010 [MQTT-3.6.1-1].
func (p *Pubrel) Append(dst []byte, v Version) []byte { return (*Ack)(p).append(dst, v, PUBREL, 0x02) }

// Size returns the encoded size of p for version v.
func (p *Pubcomp) Size(v Version) int { return (*Ack)(p).size(v, PUBCOMP) }

// Append appends p encoded for version v.
func (p *Pubcomp) Append(dst []byte, v Version) []byte { return (*Ack)(p).append(dst, v, PUBCOMP, 0) }

// --- SUBSCRIBE, SUBACK (3.8, 3.9)

func (s *Subscribe) remaining(v Version) (n, props int) {
	n = 2
	if v == V5 {
		props = propsSize(&s.Props, SUBSCRIBE)
		n += withProps(props)
	}
	for i := range s.Subscriptions {
		n += strSize(s.Subscriptions[i].Filter) + 1
	}
	return n, props
}

// Size returns the encoded size of s for version v.
func (s *Subscribe) Size(v Version) int {
	n, _ := s.remaining(v)
	return total(n)
}

// Append appends s encoded for version v, with the fixed header flags 0010 [MQTT-3.8.1-1]. Before 5.0
// only the QoS of each Subscription is written.
func (s *Subscribe) Append(dst []byte, v Version) []byte {
	n, props := s.remaining(v)
	dst = appendFixedHeader(dst, SUBSCRIBE, 0x02, n)
	dst = appendU16(dst, s.PacketID)
	if v == V5 {
		dst = appendProps(dst, &s.Props, SUBSCRIBE, props)
	}
	for i := range s.Subscriptions {
		sub := &s.Subscriptions[i]
		opts := sub.QoS & 0x03
		if v == V5 {
			opts |= b2i(sub.NoLocal)<<2 | b2i(sub.RetainAsPublished)<<3 | (sub.RetainHandling&0x03)<<4
		}
		dst = append(appendString(dst, sub.Filter), opts)
	}
	return dst
}

func (s *Suback) remaining(v Version) (n, props int) {
	n = 2 + len(s.ReasonCodes)
	if v == V5 {
		props = propsSize(&s.Props, SUBACK)
		n += withProps(props)
	}
	return n, props
}

// Size returns the encoded size of s for version v.
func (s *Suback) Size(v Version) int {
	n, _ := s.remaining(v)
	return total(n)
}

// Append appends s encoded for version v. Before 5.0 a code of 0x80 or more is written as 0x80.
func (s *Suback) Append(dst []byte, v Version) []byte {
	n, props := s.remaining(v)
	dst = appendFixedHeader(dst, SUBACK, 0, n)
	dst = appendU16(dst, s.PacketID)
	if v == V5 {
		dst = appendProps(dst, &s.Props, SUBACK, props)
		for _, c := range s.ReasonCodes {
			dst = append(dst, byte(c))
		}
		return dst
	}
	for _, c := range s.ReasonCodes {
		dst = append(dst, byte(min(c, UnspecifiedError))) // [MQTT-3.9.3-2] (3.1.1): 0x80 is Failure
	}
	return dst
}

// --- UNSUBSCRIBE, UNSUBACK (3.10, 3.11)

func (u *Unsubscribe) remaining(v Version) (n, props int) {
	n = 2
	if v == V5 {
		props = propsSize(&u.Props, UNSUBSCRIBE)
		n += withProps(props)
	}
	for _, f := range u.Filters {
		n += strSize(f)
	}
	return n, props
}

// Size returns the encoded size of u for version v.
func (u *Unsubscribe) Size(v Version) int {
	n, _ := u.remaining(v)
	return total(n)
}

// Append appends u encoded for version v, with the fixed header flags 0010 [MQTT-3.10.1-1].
func (u *Unsubscribe) Append(dst []byte, v Version) []byte {
	n, props := u.remaining(v)
	dst = appendFixedHeader(dst, UNSUBSCRIBE, 0x02, n)
	dst = appendU16(dst, u.PacketID)
	if v == V5 {
		dst = appendProps(dst, &u.Props, UNSUBSCRIBE, props)
	}
	for _, f := range u.Filters {
		dst = appendString(dst, f)
	}
	return dst
}

func (u *Unsuback) remaining(v Version) (n, props int) {
	if v != V5 {
		return 2, 0
	}
	props = propsSize(&u.Props, UNSUBACK)
	return 2 + withProps(props) + len(u.ReasonCodes), props
}

// Size returns the encoded size of u for version v.
func (u *Unsuback) Size(v Version) int {
	n, _ := u.remaining(v)
	return total(n)
}

// Append appends u encoded for version v. Before 5.0 it is the packet identifier alone.
func (u *Unsuback) Append(dst []byte, v Version) []byte {
	n, props := u.remaining(v)
	dst = appendFixedHeader(dst, UNSUBACK, 0, n)
	dst = appendU16(dst, u.PacketID)
	if v != V5 {
		return dst
	}
	dst = appendProps(dst, &u.Props, UNSUBACK, props)
	for _, c := range u.ReasonCodes {
		dst = append(dst, byte(c))
	}
	return dst
}

// --- PINGREQ, PINGRESP (3.12, 3.13)

// Size returns 2.
func (*Pingreq) Size(Version) int { return 2 }

// Append appends a PINGREQ.
func (*Pingreq) Append(dst []byte, _ Version) []byte { return append(dst, byte(PINGREQ)<<4, 0) }

// Size returns 2.
func (*Pingresp) Size(Version) int { return 2 }

// Append appends a PINGRESP.
func (*Pingresp) Append(dst []byte, _ Version) []byte { return append(dst, byte(PINGRESP)<<4, 0) }

// --- DISCONNECT, AUTH (3.14, 3.15)

// reasonRemaining is the Remaining Length of a DISCONNECT or AUTH: 0 for Success without properties
// (3.14.2.1, 3.15.2.1), else the reason code and the properties.
func reasonRemaining(rc ReasonCode, p *Properties, t Type) (n, props int) {
	props = propsSize(p, t)
	if rc == Success && props == 0 {
		return 0, 0
	}
	return 1 + withProps(props), props
}

func (d *Disconnect) remaining(v Version) (n, props int) {
	if v != V5 {
		return 0, 0
	}
	return reasonRemaining(d.ReasonCode, &d.Props, DISCONNECT)
}

// Size returns the encoded size of d for version v.
func (d *Disconnect) Size(v Version) int {
	n, _ := d.remaining(v)
	return total(n)
}

// Append appends d encoded for version v; before 5.0 a DISCONNECT has no body.
func (d *Disconnect) Append(dst []byte, v Version) []byte {
	n, props := d.remaining(v)
	dst = appendFixedHeader(dst, DISCONNECT, 0, n)
	if n == 0 {
		return dst
	}
	return appendProps(append(dst, byte(d.ReasonCode)), &d.Props, DISCONNECT, props)
}

// Size returns the encoded size of a for version v, 0 before 5.0 (AUTH does not exist there).
func (a *Auth) Size(v Version) int {
	if v != V5 {
		return 0
	}
	n, _ := reasonRemaining(a.ReasonCode, &a.Props, AUTH)
	return total(n)
}

// Append appends a encoded for 5.0. Before 5.0 AUTH does not exist and nothing is appended.
func (a *Auth) Append(dst []byte, v Version) []byte {
	if v != V5 {
		return dst
	}
	n, props := reasonRemaining(a.ReasonCode, &a.Props, AUTH)
	dst = appendFixedHeader(dst, AUTH, 0, n)
	if n == 0 {
		return dst
	}
	return appendProps(append(dst, byte(a.ReasonCode)), &a.Props, AUTH, props)
}
