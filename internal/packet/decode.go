package packet

// Decoding. Every decoder takes the packet body (the bytes after the fixed header) and checks it against
// the normative statements of MQTT 3.1.1 and 5.0; a failure is an *Error whose Code is the reason code
// the connection layer sends (or, for 3.1/3.1.1, the reason it closes) and whose Field names what failed.
// The fixed header flags are checked by ReadFixedHeader, DecodeFixedHeader and Decode; DecodePublish
// checks the PUBLISH flags itself.
//
// Byte slices in decoded packets (Payload, Password, Will payload, CorrelationData, AuthData) alias the
// body, so the body must not be reused while they are in use; strings are copied. Empty payloads and
// passwords decode as nil. Decoders other than DecodeConnect treat any version other than V5 as 3.1.1.

// codeSet is a set of reason codes, bit c of the 256.
type codeSet [4]uint64

func codes(cs ...ReasonCode) (s codeSet) {
	for _, c := range cs {
		s[c>>6] |= 1 << (c & 63)
	}
	return s
}

func (s *codeSet) has(c byte) bool { return s[c>>6]&(1<<(c&63)) != 0 }

// Reason codes each packet may carry in MQTT 5.0.
var (
	connackCodes = codes(Success, UnspecifiedError, MalformedPacket, ProtocolError, ImplementationSpecificError,
		UnsupportedProtocolVersion, ClientIdentifierNotValid, BadUserNameOrPassword, NotAuthorized, ServerUnavailable,
		ServerBusy, Banned, BadAuthenticationMethod, TopicNameInvalid, PacketTooLarge, QuotaExceeded,
		PayloadFormatInvalid, RetainNotSupported, QoSNotSupported, UseAnotherServer, ServerMoved,
		ConnectionRateExceeded) // 3.2.2.2
	pubackCodes = codes(Success, NoMatchingSubscribers, UnspecifiedError, ImplementationSpecificError, NotAuthorized,
		TopicNameInvalid, PacketIdentifierInUse, QuotaExceeded, PayloadFormatInvalid) // 3.4.2.1, 3.5.2.1
	pubrelCodes = codes(Success, PacketIdentifierNotFound) // 3.6.2.1, 3.7.2.1
	subackCodes = codes(Success, GrantedQoS1, GrantedQoS2, UnspecifiedError, ImplementationSpecificError,
		NotAuthorized, TopicFilterInvalid, PacketIdentifierInUse, QuotaExceeded, SharedSubscriptionsNotSupported,
		SubscriptionIdentifiersNotSupported, WildcardSubscriptionsNotSupported) // 3.9.3
	unsubackCodes = codes(Success, NoSubscriptionExisted, UnspecifiedError, ImplementationSpecificError,
		NotAuthorized, TopicFilterInvalid, PacketIdentifierInUse) // 3.11.3
	disconnectCodes = codes(Success, DisconnectWithWill, UnspecifiedError, MalformedPacket, ProtocolError,
		ImplementationSpecificError, NotAuthorized, ServerBusy, ServerShuttingDown, KeepAliveTimeout,
		SessionTakenOver, TopicFilterInvalid, TopicNameInvalid, ReceiveMaximumExceeded, TopicAliasInvalid,
		PacketTooLarge, MessageRateTooHigh, QuotaExceeded, AdministrativeAction, PayloadFormatInvalid,
		RetainNotSupported, QoSNotSupported, UseAnotherServer, ServerMoved, SharedSubscriptionsNotSupported,
		ConnectionRateExceeded, MaximumConnectTime, SubscriptionIdentifiersNotSupported,
		WildcardSubscriptionsNotSupported) // 3.14.2.1
	authCodes  = codes(Success, ContinueAuthentication, ReAuthenticate) // 3.15.2.1
	suback311  = codes(Success, GrantedQoS1, GrantedQoS2, UnspecifiedError)
	connack311 = [...]ReasonCode{Success, UnsupportedProtocolVersion, ClientIdentifierNotValid, ServerUnavailable, BadUserNameOrPassword, NotAuthorized}
)

// Decode decodes the body of a packet whose fixed header is h; body must be exactly h.Remaining bytes.
// v is the protocol version of the connection; CONNECT ignores it (it carries its own). The flags of h
// are checked as ReadFixedHeader does.
//
// For CONNECT, a partly decoded *Connect comes back together with the error once the protocol name and
// level were read, so the broker can answer in the client's version (a CONNACK 0x84, return code 1 for
// 3.1.1, on UnsupportedProtocolVersion). For every other type the packet is nil on error.
func Decode(h FixedHeader, body []byte, v Version) (Packet, error) {
	if err := checkBody(h, body); err != nil {
		return nil, err
	}
	switch h.Type {
	case CONNECT:
		c := new(Connect)
		named, err := decodeConnect(body, c)
		if !named {
			return nil, err
		}
		return c, err
	case CONNACK:
		return result(DecodeConnack(body, v))
	case PUBLISH:
		p := new(Publish)
		if err := DecodePublish(h, body, v, p); err != nil {
			return nil, err
		}
		return p, nil
	case PUBACK:
		return result(DecodePuback(body, v))
	case PUBREC:
		return result(DecodePubrec(body, v))
	case PUBREL:
		return result(DecodePubrel(body, v))
	case PUBCOMP:
		return result(DecodePubcomp(body, v))
	case SUBSCRIBE:
		return result(DecodeSubscribe(body, v))
	case SUBACK:
		return result(DecodeSuback(body, v))
	case UNSUBSCRIBE:
		return result(DecodeUnsubscribe(body, v))
	case UNSUBACK:
		return result(DecodeUnsuback(body, v))
	case PINGREQ:
		return result(DecodePingreq(body))
	case PINGRESP:
		return result(DecodePingresp(body))
	case DISCONNECT:
		d := new(Disconnect)
		if err := decodeDisconnect(body, v, d); err != nil {
			return nil, err
		}
		return d, nil
	case AUTH:
		return result(DecodeAuth(body, v))
	}
	return nil, errorf(MalformedPacket, fieldFixedHeader, "packet type %d", h.Type) // unreachable: checkFlags
}

// result turns a typed result into a Packet without the typed-nil trap.
func result[P Packet](p P, err error) (Packet, error) {
	if err != nil {
		return nil, err
	}
	return p, nil
}

// DecodeConnect decodes a CONNECT body (3.1) of any version into c, which it resets first. On
// error c holds what was read up to it: once the protocol name and level were read its Version is
// the level, so the broker can answer in the client's version (see Decode). The broker decodes
// into a value on its stack: a Connect is about 400 bytes, and it keeps only some fields of it.
func DecodeConnect(body []byte, c *Connect) error {
	*c = Connect{}
	_, err := decodeConnect(body, c)
	return err
}

// decodeConnect decodes a CONNECT body into c, which is zero; named reports whether the protocol
// name and level were read.
func decodeConnect(body []byte, c *Connect) (named bool, err error) {
	r := reader{b: body}
	name, err := r.strBytes("CONNECT protocol name")
	if err != nil {
		return false, err
	}
	level, err := r.u8("CONNECT protocol level")
	if err != nil {
		return false, err
	}
	c.Version = Version(level)
	switch {
	case string(name) == "MQTT" && (level == byte(V311) || level == byte(V5)):
		c.ProtocolName = "MQTT"
	case string(name) == "MQIsdp" && level == byte(V31):
		c.ProtocolName = "MQIsdp"
	default:
		// [MQTT-3.1.2-1], [MQTT-3.1.2-2]: CONNACK 0x84 (return code 1 for 3.1.1), then close.
		c.ProtocolName = string(name)
		return true, errorf(UnsupportedProtocolVersion, "CONNECT protocol level", "protocol %q level %d [MQTT-3.1.2-2]", name, level)
	}
	v5 := c.Version == V5

	flags, err := r.u8("CONNECT flags")
	if err != nil {
		return true, err
	}
	if flags&0x01 != 0 { // [MQTT-3.1.2-3]
		return true, errorf(MalformedPacket, "CONNECT flags", "reserved flag is 1 [MQTT-3.1.2-3]")
	}
	c.CleanStart = flags&0x02 != 0
	willFlag := flags&0x04 != 0
	willQoS := flags >> 3 & 0x03
	willRetain := flags&0x20 != 0
	c.PasswordFlag = flags&0x40 != 0
	c.UsernameFlag = flags&0x80 != 0
	if !willFlag {
		if willQoS != 0 { // [MQTT-3.1.2-11]
			return true, errorf(MalformedPacket, "CONNECT flags", "will QoS %d without will flag [MQTT-3.1.2-11]", willQoS)
		}
		if willRetain { // [MQTT-3.1.2-13] (5.0), [MQTT-3.1.2-15] (3.1.1)
			return true, errorf(MalformedPacket, "CONNECT flags", "will retain without will flag [MQTT-3.1.2-13]")
		}
	} else if willQoS == 3 { // [MQTT-3.1.2-14] (3.1.1), [MQTT-3.1.2-12] (5.0)
		return true, errorf(MalformedPacket, "CONNECT flags", "will QoS 3 [MQTT-3.1.2-14]")
	}
	if !v5 && c.PasswordFlag && !c.UsernameFlag { // [MQTT-3.1.2-22]; 5.0 allows a password alone
		return true, errorf(MalformedPacket, "CONNECT flags", "password flag without user name flag [MQTT-3.1.2-22]")
	}
	if c.KeepAlive, err = r.u16("CONNECT keep alive"); err != nil {
		return true, err
	}
	if v5 {
		if err := decodeProps(&r, &c.Props, CONNECT, "CONNECT properties"); err != nil {
			return true, err
		}
	}

	// Payload: Client Identifier, Will Properties, Will Topic, Will Payload, User Name, Password
	// [MQTT-3.1.3-1]. Any length of client identifier is accepted here; the broker decides.
	if c.ClientID, err = r.str("CONNECT client identifier"); err != nil { // [MQTT-3.1.3-3], [MQTT-3.1.3-4]
		return true, err
	}
	if willFlag { // [MQTT-3.1.2-9]
		w := &Will{QoS: willQoS, Retain: willRetain}
		if v5 {
			if err := decodeProps(&r, &w.Props, kindWill, "will properties"); err != nil {
				return true, err
			}
		}
		topic, err := r.strBytes("CONNECT will topic") // [MQTT-3.1.3-11] (5.0), [MQTT-3.1.3-10] (3.1.1)
		if err != nil {
			return true, err
		}
		if len(topic) == 0 { // [MQTT-4.7.3-1]
			code := MalformedPacket
			if v5 {
				code = TopicNameInvalid
			}
			return true, errorf(code, "CONNECT will topic", "empty [MQTT-4.7.3-1]")
		}
		if hasWildcard(topic) { // [MQTT-3.3.2-2], [MQTT-4.7.0-1]
			return true, errorf(TopicNameInvalid, "CONNECT will topic", "contains a wildcard [MQTT-3.3.2-2]")
		}
		w.Topic = string(topic)
		if w.Payload, err = r.bin("CONNECT will payload"); err != nil {
			return true, err
		}
		if len(w.Payload) == 0 {
			w.Payload = nil
		}
		// 3.1.3.2.3: the Server MAY validate a Will Message marked as UTF-8 and answer 0x99.
		if w.Props.HasPayloadFormat && w.Props.PayloadFormat == 1 && !validCharData(w.Payload) {
			return true, errorf(PayloadFormatInvalid, "CONNECT will payload", "not UTF-8 though the payload format indicator is 1")
		}
		c.Will = w
	}
	if c.UsernameFlag { // [MQTT-3.1.2-17] (5.0), [MQTT-3.1.2-19] (3.1.1)
		if c.Username, err = r.str("CONNECT user name"); err != nil { // [MQTT-3.1.3-12]
			return true, err
		}
	}
	if c.PasswordFlag { // [MQTT-3.1.2-19] (5.0), [MQTT-3.1.2-21] (3.1.1)
		if c.Password, err = r.bin("CONNECT password"); err != nil {
			return true, err
		}
		if len(c.Password) == 0 {
			c.Password = nil
		}
	}
	// Nothing may follow the fields the flags announce [MQTT-3.1.2-16], [MQTT-3.1.2-18], [MQTT-3.1.4-1].
	return true, r.end("CONNECT payload")
}

// DecodeConnack decodes a CONNACK body (3.2). For 3.1/3.1.1 the return code becomes the matching reason
// code (1 UnsupportedProtocolVersion, 2 ClientIdentifierNotValid, 3 ServerUnavailable,
// 4 BadUserNameOrPassword, 5 NotAuthorized); the reverse of ConnackReturnCode311.
func DecodeConnack(body []byte, v Version) (*Connack, error) {
	r := reader{b: body}
	flags, err := r.u8("CONNACK flags")
	if err != nil {
		return nil, err
	}
	if flags&^0x01 != 0 { // [MQTT-3.2.2-1]
		return nil, errorf(MalformedPacket, "CONNACK flags", "reserved bits 0x%02X [MQTT-3.2.2-1]", flags)
	}
	c := &Connack{SessionPresent: flags&0x01 != 0}
	code, err := r.u8("CONNACK reason code")
	if err != nil {
		return nil, err
	}
	if v == V5 {
		if !connackCodes.has(code) { // 3.2.2.2
			return nil, errorf(ProtocolError, "CONNACK reason code", "0x%02X is not a CONNACK reason code", code)
		}
		c.ReasonCode = ReasonCode(code)
		if err := decodeProps(&r, &c.Props, CONNACK, "CONNACK properties"); err != nil {
			return nil, err
		}
	} else {
		if int(code) >= len(connack311) { // 3.2.2.3: 6-255 reserved
			return nil, errorf(MalformedPacket, "CONNACK return code", "reserved return code %d", code)
		}
		c.ReasonCode = connack311[code]
	}
	if c.SessionPresent && c.ReasonCode != Success { // [MQTT-3.2.2-6] (5.0), [MQTT-3.2.2-4] (3.1.1)
		return nil, errorf(ProtocolError, "CONNACK flags", "session present with a failure code [MQTT-3.2.2-6]")
	}
	if err := r.end("CONNACK"); err != nil {
		return nil, err
	}
	return c, nil
}

const fieldTopicName = "PUBLISH topic name"

// DecodePublish decodes a PUBLISH (3.3) into the caller's p, overwriting all of it, so that the hot
// path allocates no Publish: the topic string is the only allocation when there are no properties.
// h supplies the DUP, QoS and RETAIN flags. On error the contents of p are unspecified.
//
// For 5.0 an empty topic name is accepted only with a Topic Alias (the broker resolves it); a Topic Alias
// larger than the connection's maximum, and a Subscription Identifier from a client [MQTT-3.3.4-6], are
// the broker's to refuse.
func DecodePublish(h FixedHeader, body []byte, v Version, p *Publish) error {
	*p = Publish{}
	if h.Type != PUBLISH {
		return errorf(MalformedPacket, fieldFixedHeader, "%s is not a PUBLISH", h.Type)
	}
	qos := h.Flags >> 1 & 0x03
	if qos == 3 { // [MQTT-3.3.1-4]
		return errorf(MalformedPacket, fieldFixedHeader, "PUBLISH QoS 3 [MQTT-3.3.1-4]")
	}
	p.Dup = h.Flags&0x08 != 0
	if p.Dup && qos == 0 { // [MQTT-3.3.1-2]
		return errorf(MalformedPacket, fieldFixedHeader, "PUBLISH DUP with QoS 0 [MQTT-3.3.1-2]")
	}
	p.QoS = qos
	p.Retain = h.Flags&0x01 != 0

	r := reader{b: body}
	topic, err := r.strBytes(fieldTopicName) // [MQTT-3.3.2-1]
	if err != nil {
		return err
	}
	if hasWildcard(topic) { // [MQTT-3.3.2-2]
		return errorf(TopicNameInvalid, fieldTopicName, "contains a wildcard [MQTT-3.3.2-2]")
	}
	if qos > 0 {
		if p.PacketID, err = r.u16("PUBLISH packet identifier"); err != nil {
			return err
		}
		if p.PacketID == 0 { // [MQTT-2.2.1-3] (5.0), [MQTT-2.3.1-1] (3.1.1)
			return errorf(ProtocolError, "PUBLISH packet identifier", "0 with QoS %d [MQTT-2.2.1-3]", qos)
		}
	}
	if v == V5 {
		if err := decodeProps(&r, &p.Props, PUBLISH, "PUBLISH properties"); err != nil {
			return err
		}
	}
	if len(topic) == 0 {
		if v != V5 { // [MQTT-4.7.3-1]
			return errorf(MalformedPacket, fieldTopicName, "empty [MQTT-4.7.3-1]")
		}
		if !p.Props.HasTopicAlias { // 3.3.2.3.4: an empty name needs a Topic Alias
			return errorf(ProtocolError, fieldTopicName, "empty without a topic alias [MQTT-3.3.2-1]")
		}
	} else {
		p.Topic = string(topic)
	}
	p.Payload = r.rest()
	// 3.3.2.3.2: the receiver MAY check a payload marked as UTF-8 and answer 0x99 (4.13).
	if p.Props.HasPayloadFormat && p.Props.PayloadFormat == 1 && !validCharData(p.Payload) {
		return errorf(PayloadFormatInvalid, "PUBLISH payload", "not UTF-8 though the payload format indicator is 1")
	}
	return nil
}

// Ack is the shape PUBACK, PUBREC, PUBREL and PUBCOMP share (3.4 to 3.7). A *Ack converts to
// *Puback, *Pubrec, *Pubrel or *Pubcomp, whose fields are the same.
type Ack struct {
	PacketID   uint16
	ReasonCode ReasonCode
	Props      Properties
}

type ackInfo struct {
	codes                 *codeSet
	id, code, props, body string
}

var ackInfos = [PUBCOMP + 1]ackInfo{
	PUBACK:  {&pubackCodes, "PUBACK packet identifier", "PUBACK reason code", "PUBACK properties", "PUBACK"},
	PUBREC:  {&pubackCodes, "PUBREC packet identifier", "PUBREC reason code", "PUBREC properties", "PUBREC"},
	PUBREL:  {&pubrelCodes, "PUBREL packet identifier", "PUBREL reason code", "PUBREL properties", "PUBREL"},
	PUBCOMP: {&pubrelCodes, "PUBCOMP packet identifier", "PUBCOMP reason code", "PUBCOMP properties", "PUBCOMP"},
}

// DecodeAck decodes the PUBACK, PUBREC, PUBREL or PUBCOMP whose fixed header is h (3.4 to 3.7)
// into a, checking what Decode checks. It allocates nothing for a packet without properties: the
// broker decodes every acknowledgement it receives into a value on its own stack, since a
// Properties makes each of these packets about 300 bytes (no allocation per message).
func DecodeAck(h FixedHeader, body []byte, v Version, a *Ack) error {
	*a = Ack{}
	if h.Type < PUBACK || h.Type > PUBCOMP {
		return errorf(MalformedPacket, fieldFixedHeader, "%s is not PUBACK, PUBREC, PUBREL or PUBCOMP", h.Type)
	}
	if err := checkBody(h, body); err != nil {
		return err
	}
	return decodeAck(body, v, h.Type, a)
}

// checkBody checks what Decode checks of every packet: the body has Remaining Length bytes, and
// the fixed header's flags are those of its type.
func checkBody(h FixedHeader, body []byte) error {
	if len(body) != h.Remaining {
		return errorf(MalformedPacket, fieldRemainingLength, "body of %d bytes, Remaining Length %d", len(body), h.Remaining)
	}
	return checkFlags(h.Type, h.Flags)
}

// decodeAck decodes the body of PUBACK, PUBREC, PUBREL or PUBCOMP (3.4 to 3.7) into a, which is
// zero.
func decodeAck(body []byte, v Version, t Type, a *Ack) error {
	in := &ackInfos[t]
	r := reader{b: body}
	var err error
	if a.PacketID, err = r.u16(in.id); err != nil {
		return err
	}
	if v != V5 || r.left() == 0 {
		// 3.1.1: the packet identifier only. 5.0: Remaining Length 2 means Success without
		// properties (3.4.2.1, 3.5.2.1, 3.6.2.1, 3.7.2.1).
		return r.end(in.body)
	}
	code, _ := r.u8(in.code)
	if !in.codes.has(code) { // [MQTT-3.4.2-1], [MQTT-3.5.2-1], [MQTT-3.6.2-1], [MQTT-3.7.2-1]
		return errorf(ProtocolError, in.code, "0x%02X is not a %s reason code", code, t)
	}
	a.ReasonCode = ReasonCode(code)
	if r.left() == 0 { // no Property Length: no properties (3.4.2.2)
		return nil
	}
	if err := decodeProps(&r, &a.Props, t, in.props); err != nil {
		return err
	}
	return r.end(in.body)
}

// newAck decodes the body of an acknowledgement of type t into a new P.
func newAck[P *Puback | *Pubrec | *Pubrel | *Pubcomp](body []byte, v Version, t Type) (P, error) {
	a := new(Ack)
	if err := decodeAck(body, v, t, a); err != nil {
		return nil, err
	}
	return P(a), nil
}

// DecodePuback decodes a PUBACK body (3.4).
func DecodePuback(body []byte, v Version) (*Puback, error) {
	return newAck[*Puback](body, v, PUBACK)
}

// DecodePubrec decodes a PUBREC body (3.5).
func DecodePubrec(body []byte, v Version) (*Pubrec, error) {
	return newAck[*Pubrec](body, v, PUBREC)
}

// DecodePubrel decodes a PUBREL body (3.6). Its only reason codes are 0x00 and 0x92.
func DecodePubrel(body []byte, v Version) (*Pubrel, error) {
	return newAck[*Pubrel](body, v, PUBREL)
}

// DecodePubcomp decodes a PUBCOMP body (3.7). Its only reason codes are 0x00 and 0x92.
func DecodePubcomp(body []byte, v Version) (*Pubcomp, error) {
	return newAck[*Pubcomp](body, v, PUBCOMP)
}

// DecodeSubscribe decodes a SUBSCRIBE body (3.8). Topic filters must be UTF-8 Encoded Strings; their
// syntax is the broker's to check (5.0 answers 0x8F per filter in SUBACK).
func DecodeSubscribe(body []byte, v Version) (*Subscribe, error) {
	r := reader{b: body}
	s := &Subscribe{}
	var err error
	if s.PacketID, err = r.u16("SUBSCRIBE packet identifier"); err != nil {
		return nil, err
	}
	if s.PacketID == 0 { // [MQTT-2.2.1-3] (5.0), [MQTT-2.3.1-1] (3.1.1)
		return nil, errorf(ProtocolError, "SUBSCRIBE packet identifier", "0 [MQTT-2.2.1-3]")
	}
	if v == V5 {
		if err := decodeProps(&r, &s.Props, SUBSCRIBE, "SUBSCRIBE properties"); err != nil {
			return nil, err
		}
		if len(s.Props.SubscriptionIDs) > 1 { // 3.8.2.1.2
			return nil, errorf(ProtocolError, propNames[PropSubscriptionID], "included more than once")
		}
	}
	for r.left() > 0 {
		var sub Subscription
		if sub.Filter, err = r.str("SUBSCRIBE topic filter"); err != nil { // [MQTT-3.8.3-1]
			return nil, err
		}
		opts, err := r.u8("SUBSCRIBE subscription options")
		if err != nil {
			return nil, err
		}
		sub.QoS = opts & 0x03
		if v == V5 {
			if opts&0xC0 != 0 { // [MQTT-3.8.3-5]
				return nil, errorf(MalformedPacket, "SUBSCRIBE subscription options", "reserved bits 0x%02X [MQTT-3.8.3-5]", opts)
			}
			if sub.QoS == 3 { // 3.8.3.1: "It is a Protocol Error if the Maximum QoS field has the value 3"
				return nil, errorf(ProtocolError, "SUBSCRIBE subscription options", "QoS 3")
			}
			sub.NoLocal = opts&0x04 != 0
			sub.RetainAsPublished = opts&0x08 != 0
			sub.RetainHandling = opts >> 4 & 0x03
			if sub.RetainHandling == 3 { // 3.8.3.1
				return nil, errorf(ProtocolError, "SUBSCRIBE subscription options", "retain handling 3")
			}
		} else if opts&0xFC != 0 || sub.QoS == 3 { // [MQTT-3-8.3-4]
			return nil, errorf(MalformedPacket, "SUBSCRIBE subscription options", "reserved bits or QoS 3 in 0x%02X [MQTT-3-8.3-4]", opts)
		}
		s.Subscriptions = append(s.Subscriptions, sub)
	}
	if len(s.Subscriptions) == 0 {
		if v == V5 { // [MQTT-3.8.3-2]
			return nil, errorf(ProtocolError, "SUBSCRIBE payload", "no topic filter [MQTT-3.8.3-2]")
		}
		return nil, errorf(MalformedPacket, "SUBSCRIBE payload", "no topic filter [MQTT-3.8.3-3]")
	}
	return s, nil
}

// DecodeSuback decodes a SUBACK body (3.9).
func DecodeSuback(body []byte, v Version) (*Suback, error) {
	r := reader{b: body}
	s := &Suback{}
	var err error
	if s.PacketID, err = r.u16("SUBACK packet identifier"); err != nil {
		return nil, err
	}
	set, code := &suback311, MalformedPacket // [MQTT-3.9.3-2] (3.1.1)
	if v == V5 {
		if err := decodeProps(&r, &s.Props, SUBACK, "SUBACK properties"); err != nil {
			return nil, err
		}
		set, code = &subackCodes, ProtocolError // [MQTT-3.9.3-2] (5.0)
	}
	rest := r.rest()
	if len(rest) == 0 { // one code per filter, and a SUBSCRIBE has at least one [MQTT-3.8.4-6]
		return nil, errorf(code, "SUBACK payload", "no reason code")
	}
	s.ReasonCodes = make([]ReasonCode, len(rest))
	for i, c := range rest {
		if !set.has(c) {
			return nil, errorf(code, "SUBACK reason code", "0x%02X is not a SUBACK reason code [MQTT-3.9.3-2]", c)
		}
		s.ReasonCodes[i] = ReasonCode(c)
	}
	return s, nil
}

// DecodeUnsubscribe decodes an UNSUBSCRIBE body (3.10).
func DecodeUnsubscribe(body []byte, v Version) (*Unsubscribe, error) {
	r := reader{b: body}
	u := &Unsubscribe{}
	var err error
	if u.PacketID, err = r.u16("UNSUBSCRIBE packet identifier"); err != nil {
		return nil, err
	}
	if u.PacketID == 0 { // [MQTT-2.2.1-3] (5.0), [MQTT-2.3.1-1] (3.1.1)
		return nil, errorf(ProtocolError, "UNSUBSCRIBE packet identifier", "0 [MQTT-2.2.1-3]")
	}
	if v == V5 {
		if err := decodeProps(&r, &u.Props, UNSUBSCRIBE, "UNSUBSCRIBE properties"); err != nil {
			return nil, err
		}
	}
	for r.left() > 0 {
		f, err := r.str("UNSUBSCRIBE topic filter") // [MQTT-3.10.3-1]
		if err != nil {
			return nil, err
		}
		u.Filters = append(u.Filters, f)
	}
	if len(u.Filters) == 0 { // [MQTT-3.10.3-2]
		code := MalformedPacket
		if v == V5 {
			code = ProtocolError
		}
		return nil, errorf(code, "UNSUBSCRIBE payload", "no topic filter [MQTT-3.10.3-2]")
	}
	return u, nil
}

// DecodeUnsuback decodes an UNSUBACK body (3.11). 3.1.1 has only the packet identifier.
func DecodeUnsuback(body []byte, v Version) (*Unsuback, error) {
	r := reader{b: body}
	u := &Unsuback{}
	var err error
	if u.PacketID, err = r.u16("UNSUBACK packet identifier"); err != nil {
		return nil, err
	}
	if v != V5 {
		if err := r.end("UNSUBACK"); err != nil {
			return nil, err
		}
		return u, nil
	}
	if err := decodeProps(&r, &u.Props, UNSUBACK, "UNSUBACK properties"); err != nil {
		return nil, err
	}
	rest := r.rest()
	if len(rest) == 0 { // one code per filter [MQTT-3.11.3-1]
		return nil, errorf(ProtocolError, "UNSUBACK payload", "no reason code")
	}
	u.ReasonCodes = make([]ReasonCode, len(rest))
	for i, c := range rest {
		if !unsubackCodes.has(c) { // [MQTT-3.11.3-2]
			return nil, errorf(ProtocolError, "UNSUBACK reason code", "0x%02X is not an UNSUBACK reason code [MQTT-3.11.3-2]", c)
		}
		u.ReasonCodes[i] = ReasonCode(c)
	}
	return u, nil
}

// DecodePingreq decodes a PINGREQ body (3.12), which is empty.
func DecodePingreq(body []byte) (*Pingreq, error) {
	if len(body) != 0 {
		return nil, errorf(MalformedPacket, "PINGREQ", "Remaining Length %d, want 0", len(body))
	}
	return &Pingreq{}, nil
}

// DecodePingresp decodes a PINGRESP body (3.13), which is empty.
func DecodePingresp(body []byte) (*Pingresp, error) {
	if len(body) != 0 {
		return nil, errorf(MalformedPacket, "PINGRESP", "Remaining Length %d, want 0", len(body))
	}
	return &Pingresp{}, nil
}

// DecodeDisconnect decodes the DISCONNECT whose fixed header is h (3.14) into d, checking what
// Decode checks; like DecodeAck it allocates nothing for a packet without properties. 3.1.1 has no
// body; in 5.0 Remaining Length 0 means Normal disconnection without properties, and 1 a reason
// code without properties (3.14.2.1, 3.14.2.2).
func DecodeDisconnect(h FixedHeader, body []byte, v Version, d *Disconnect) error {
	*d = Disconnect{}
	if h.Type != DISCONNECT {
		return errorf(MalformedPacket, fieldFixedHeader, "%s is not a DISCONNECT", h.Type)
	}
	if err := checkBody(h, body); err != nil {
		return err
	}
	return decodeDisconnect(body, v, d)
}

// decodeDisconnect decodes a DISCONNECT body into d, which is zero.
func decodeDisconnect(body []byte, v Version, d *Disconnect) error {
	if v != V5 {
		if len(body) != 0 {
			return errorf(MalformedPacket, "DISCONNECT", "Remaining Length %d, want 0", len(body))
		}
		return nil
	}
	r := reader{b: body}
	if r.left() == 0 {
		return nil
	}
	code, _ := r.u8("DISCONNECT reason code")
	if !disconnectCodes.has(code) { // [MQTT-3.14.2-1]
		return errorf(ProtocolError, "DISCONNECT reason code", "0x%02X is not a DISCONNECT reason code [MQTT-3.14.2-1]", code)
	}
	d.ReasonCode = ReasonCode(code)
	if r.left() == 0 {
		return nil
	}
	if err := decodeProps(&r, &d.Props, DISCONNECT, "DISCONNECT properties"); err != nil {
		return err
	}
	return r.end("DISCONNECT")
}

// DecodeAuth decodes an AUTH body (3.15), MQTT 5 only: for earlier versions packet type 15 is reserved
// and AUTH is a Malformed Packet. Remaining Length 0 means Success without properties (3.15.2.1);
// otherwise the Authentication Method is required (3.15.2.2.2).
func DecodeAuth(body []byte, v Version) (*Auth, error) {
	if v != V5 {
		return nil, errorf(MalformedPacket, fieldFixedHeader, "packet type 15 is reserved before MQTT 5")
	}
	a := &Auth{}
	r := reader{b: body}
	if r.left() == 0 {
		return a, nil
	}
	code, _ := r.u8("AUTH reason code")
	if !authCodes.has(code) { // [MQTT-3.15.2-1]
		return nil, errorf(ProtocolError, "AUTH reason code", "0x%02X is not an AUTH reason code [MQTT-3.15.2-1]", code)
	}
	a.ReasonCode = ReasonCode(code)
	if r.left() > 0 {
		if err := decodeProps(&r, &a.Props, AUTH, "AUTH properties"); err != nil {
			return nil, err
		}
		if err := r.end("AUTH"); err != nil {
			return nil, err
		}
	}
	if a.Props.AuthMethod == "" { // "It is a Protocol Error to omit the Authentication Method"
		return nil, errorf(ProtocolError, propNames[PropAuthMethod], "missing from AUTH")
	}
	return a, nil
}
