package packet

// kindWill stands for the Will Properties of CONNECT in the property tables; packet types use their Type.
const kindWill Type = 0

// propKinds says, for each property identifier, which packets may carry it (table 2.2.2.2): bit t is
// set for packet Type t, bit 0 for the Will Properties.
var propKinds = [PropSharedSubAvailable + 1]uint16{
	PropPayloadFormat:        1<<kindWill | 1<<PUBLISH,
	PropMessageExpiry:        1<<kindWill | 1<<PUBLISH,
	PropContentType:          1<<kindWill | 1<<PUBLISH,
	PropResponseTopic:        1<<kindWill | 1<<PUBLISH,
	PropCorrelationData:      1<<kindWill | 1<<PUBLISH,
	PropSubscriptionID:       1<<PUBLISH | 1<<SUBSCRIBE,
	PropSessionExpiry:        1<<CONNECT | 1<<CONNACK | 1<<DISCONNECT,
	PropAssignedClientID:     1 << CONNACK,
	PropServerKeepAlive:      1 << CONNACK,
	PropAuthMethod:           1<<CONNECT | 1<<CONNACK | 1<<AUTH,
	PropAuthData:             1<<CONNECT | 1<<CONNACK | 1<<AUTH,
	PropRequestProblemInfo:   1 << CONNECT,
	PropWillDelay:            1 << kindWill,
	PropRequestResponseInfo:  1 << CONNECT,
	PropResponseInfo:         1 << CONNACK,
	PropServerReference:      1<<CONNACK | 1<<DISCONNECT,
	PropReasonString:         1<<CONNACK | 1<<PUBACK | 1<<PUBREC | 1<<PUBREL | 1<<PUBCOMP | 1<<SUBACK | 1<<UNSUBACK | 1<<DISCONNECT | 1<<AUTH,
	PropReceiveMaximum:       1<<CONNECT | 1<<CONNACK,
	PropTopicAliasMaximum:    1<<CONNECT | 1<<CONNACK,
	PropTopicAlias:           1 << PUBLISH,
	PropMaximumQoS:           1 << CONNACK,
	PropRetainAvailable:      1 << CONNACK,
	PropUser:                 1<<kindWill | 1<<CONNECT | 1<<CONNACK | 1<<PUBLISH | 1<<PUBACK | 1<<PUBREC | 1<<PUBREL | 1<<PUBCOMP | 1<<SUBSCRIBE | 1<<SUBACK | 1<<UNSUBSCRIBE | 1<<UNSUBACK | 1<<DISCONNECT | 1<<AUTH,
	PropMaximumPacketSize:    1<<CONNECT | 1<<CONNACK,
	PropWildcardSubAvailable: 1 << CONNACK,
	PropSubIDAvailable:       1 << CONNACK,
	PropSharedSubAvailable:   1 << CONNACK,
}

// propNames name the properties in errors.
var propNames = [PropSharedSubAvailable + 1]string{
	PropPayloadFormat:        "payload format indicator",
	PropMessageExpiry:        "message expiry interval",
	PropContentType:          "content type",
	PropResponseTopic:        "response topic",
	PropCorrelationData:      "correlation data",
	PropSubscriptionID:       "subscription identifier",
	PropSessionExpiry:        "session expiry interval",
	PropAssignedClientID:     "assigned client identifier",
	PropServerKeepAlive:      "server keep alive",
	PropAuthMethod:           "authentication method",
	PropAuthData:             "authentication data",
	PropRequestProblemInfo:   "request problem information",
	PropWillDelay:            "will delay interval",
	PropRequestResponseInfo:  "request response information",
	PropResponseInfo:         "response information",
	PropServerReference:      "server reference",
	PropReasonString:         "reason string",
	PropReceiveMaximum:       "receive maximum",
	PropTopicAliasMaximum:    "topic alias maximum",
	PropTopicAlias:           "topic alias",
	PropMaximumQoS:           "maximum QoS",
	PropRetainAvailable:      "retain available",
	PropUser:                 "user property",
	PropMaximumPacketSize:    "maximum packet size",
	PropWildcardSubAvailable: "wildcard subscription available",
	PropSubIDAvailable:       "subscription identifier available",
	PropSharedSubAvailable:   "shared subscription available",
}

// propIDs is propKinds turned around: for each kind, the set of identifiers it may carry (bit id).
var propIDs = func() (ids [AUTH + 1]uint64) {
	for id, kinds := range propKinds {
		for k := range ids {
			if kinds&(1<<k) != 0 {
				ids[k] |= 1 << id
			}
		}
	}
	return ids
}()

func kindName(k Type) string {
	if k == kindWill {
		return "Will Properties"
	}
	return k.String()
}

// decodeProps reads a Property Length and the properties after it (2.2.2) into p, for packet kind k.
// A property not allowed for k, or a value of the wrong type, is a Malformed Packet (2.2.2.2); a second
// copy of any property other than User Property and Subscription Identifier, or a value out of range,
// is a Protocol Error (the "It is a Protocol Error to include ... more than once" rules of 3.x.2.x).
func decodeProps(r *reader, p *Properties, k Type, field string) error {
	n, err := r.varInt(field)
	if err != nil {
		return err
	}
	if n > r.left() {
		return errorf(MalformedPacket, field, "property length %d past the end of the packet", n)
	}
	end := r.i + n
	pr := reader{b: r.b[:end], i: r.i}
	r.i = end
	var seen uint64
	for pr.i < end {
		id := pr.b[pr.i]
		pr.i++
		if int(id) >= len(propKinds) || propKinds[id]&(1<<k) == 0 {
			return errorf(MalformedPacket, field, "property 0x%02X not allowed in %s (2.2.2.2)", id, kindName(k))
		}
		name := propNames[id]
		if seen&(1<<id) != 0 && id != PropUser && id != PropSubscriptionID {
			return errorf(ProtocolError, name, "included more than once")
		}
		seen |= 1 << id
		switch id {
		case PropPayloadFormat:
			// Only 0 and 1 are defined, but unlike the flags below no range rule is given, and the
			// server forwards the value unaltered [MQTT-3.3.2-4]; payloads are checked for 1 only.
			p.PayloadFormat, err = pr.u8(name)
			p.HasPayloadFormat = true
		case PropMessageExpiry:
			p.MessageExpiry, err = pr.u32(name)
			p.HasMessageExpiry = true
		case PropContentType:
			p.ContentType, err = pr.str(name)
		case PropResponseTopic:
			var b []byte
			if b, err = pr.strBytes(name); err == nil {
				switch {
				case len(b) == 0: // a Topic Name has at least one character [MQTT-4.7.3-1]
					err = errorf(ProtocolError, name, "empty [MQTT-4.7.3-1]")
				case hasWildcard(b):
					err = errorf(ProtocolError, name, "contains a wildcard [MQTT-3.3.2-14]")
				default:
					p.ResponseTopic = string(b)
				}
			}
		case PropCorrelationData:
			p.CorrelationData, err = pr.bin(name)
		case PropSubscriptionID:
			var v int
			if v, err = pr.varInt(name); err == nil {
				if v == 0 { // 3.3.2.3.8, 3.8.2.1.2
					err = errorf(ProtocolError, name, "value 0")
				}
				p.SubscriptionIDs = append(p.SubscriptionIDs, uint32(v))
			}
		case PropSessionExpiry:
			p.SessionExpiry, err = pr.u32(name)
			p.HasSessionExpiry = true
		case PropAssignedClientID:
			p.AssignedClientID, err = pr.str(name)
		case PropServerKeepAlive:
			p.ServerKeepAlive, err = pr.u16(name)
			p.HasServerKeepAlive = true
		case PropAuthMethod:
			p.AuthMethod, err = pr.str(name)
		case PropAuthData:
			p.AuthData, err = pr.bin(name)
		case PropRequestProblemInfo:
			p.RequestProblemInfo, err = boolByte(&pr, name)
			p.HasRequestProblemInfo = true
		case PropWillDelay:
			p.WillDelay, err = pr.u32(name)
			p.HasWillDelay = true
		case PropRequestResponseInfo:
			p.RequestResponseInfo, err = boolByte(&pr, name)
			p.HasRequestResponseInfo = true
		case PropResponseInfo:
			p.ResponseInfo, err = pr.str(name)
		case PropServerReference:
			p.ServerReference, err = pr.str(name)
		case PropReasonString:
			p.ReasonString, err = pr.str(name)
		case PropReceiveMaximum:
			p.ReceiveMaximum, err = nonZero16(&pr, name)
			p.HasReceiveMaximum = true
		case PropTopicAliasMaximum:
			p.TopicAliasMaximum, err = pr.u16(name)
			p.HasTopicAliasMaximum = true
		case PropTopicAlias:
			p.TopicAlias, err = nonZero16(&pr, name) // [MQTT-3.3.2-8]
			p.HasTopicAlias = true
		case PropMaximumQoS:
			p.MaximumQoS, err = boolByte(&pr, name)
			p.HasMaximumQoS = true
		case PropRetainAvailable:
			p.RetainAvailable, err = boolByte(&pr, name)
			p.HasRetainAvailable = true
		case PropUser:
			var u UserProperty
			if u.Key, err = pr.str(name); err == nil {
				if u.Value, err = pr.str(name); err == nil {
					p.User = append(p.User, u)
				}
			}
		case PropMaximumPacketSize:
			var v uint32
			if v, err = pr.u32(name); err == nil && v == 0 {
				err = errorf(ProtocolError, name, "value 0")
			}
			p.MaximumPacketSize = v
			p.HasMaximumPacketSize = true
		case PropWildcardSubAvailable:
			p.WildcardSubAvailable, err = boolByte(&pr, name)
			p.HasWildcardSubAvailable = true
		case PropSubIDAvailable:
			p.SubIDAvailable, err = boolByte(&pr, name)
			p.HasSubIDAvailable = true
		case PropSharedSubAvailable:
			p.SharedSubAvailable, err = boolByte(&pr, name)
			p.HasSharedSubAvailable = true
		}
		if err != nil {
			return err
		}
	}
	// "It is a Protocol Error to include Authentication Data if there is no Authentication Method"
	// (3.1.2.11.10, 3.2.2.3.18, 3.15.2.2.3). An empty method counts as none: it names nothing.
	if p.AuthData != nil && p.AuthMethod == "" {
		return errorf(ProtocolError, propNames[PropAuthData], "without an authentication method")
	}
	return nil
}

// boolByte reads a Byte property whose only values are 0 and 1; anything else is a Protocol Error.
func boolByte(r *reader, name string) (byte, error) {
	v, err := r.u8(name)
	if err == nil && v > 1 {
		err = errorf(ProtocolError, name, "value %d, want 0 or 1", v)
	}
	return v, err
}

// nonZero16 reads a Two Byte Integer property for which 0 is a Protocol Error.
func nonZero16(r *reader, name string) (uint16, error) {
	v, err := r.u16(name)
	if err == nil && v == 0 {
		err = errorf(ProtocolError, name, "value 0")
	}
	return v, err
}

// propsSize is the size of the properties of p that kind k may carry, without the Property Length.
// Empty strings and nil byte slices are absent; scalars are present when their Has flag is set.
func propsSize(p *Properties, k Type) int {
	a := propIDs[k]
	n := 0
	if a&(1<<PropPayloadFormat) != 0 && p.HasPayloadFormat {
		n += 2
	}
	if a&(1<<PropMessageExpiry) != 0 && p.HasMessageExpiry {
		n += 5
	}
	if a&(1<<PropContentType) != 0 && p.ContentType != "" {
		n += 1 + strSize(p.ContentType)
	}
	if a&(1<<PropResponseTopic) != 0 && p.ResponseTopic != "" {
		n += 1 + strSize(p.ResponseTopic)
	}
	if a&(1<<PropCorrelationData) != 0 && p.CorrelationData != nil {
		n += 1 + binSize(p.CorrelationData)
	}
	if a&(1<<PropSubscriptionID) != 0 {
		for _, id := range p.SubscriptionIDs {
			n += 1 + varIntSize(int(id))
		}
	}
	if a&(1<<PropSessionExpiry) != 0 && p.HasSessionExpiry {
		n += 5
	}
	if a&(1<<PropAssignedClientID) != 0 && p.AssignedClientID != "" {
		n += 1 + strSize(p.AssignedClientID)
	}
	if a&(1<<PropServerKeepAlive) != 0 && p.HasServerKeepAlive {
		n += 3
	}
	if a&(1<<PropAuthMethod) != 0 && p.AuthMethod != "" {
		n += 1 + strSize(p.AuthMethod)
	}
	if a&(1<<PropAuthData) != 0 && p.AuthData != nil {
		n += 1 + binSize(p.AuthData)
	}
	if a&(1<<PropRequestProblemInfo) != 0 && p.HasRequestProblemInfo {
		n += 2
	}
	if a&(1<<PropWillDelay) != 0 && p.HasWillDelay {
		n += 5
	}
	if a&(1<<PropRequestResponseInfo) != 0 && p.HasRequestResponseInfo {
		n += 2
	}
	if a&(1<<PropResponseInfo) != 0 && p.ResponseInfo != "" {
		n += 1 + strSize(p.ResponseInfo)
	}
	if a&(1<<PropServerReference) != 0 && p.ServerReference != "" {
		n += 1 + strSize(p.ServerReference)
	}
	if a&(1<<PropReasonString) != 0 && p.ReasonString != "" {
		n += 1 + strSize(p.ReasonString)
	}
	if a&(1<<PropReceiveMaximum) != 0 && p.HasReceiveMaximum {
		n += 3
	}
	if a&(1<<PropTopicAliasMaximum) != 0 && p.HasTopicAliasMaximum {
		n += 3
	}
	if a&(1<<PropTopicAlias) != 0 && p.HasTopicAlias {
		n += 3
	}
	if a&(1<<PropMaximumQoS) != 0 && p.HasMaximumQoS {
		n += 2
	}
	if a&(1<<PropRetainAvailable) != 0 && p.HasRetainAvailable {
		n += 2
	}
	if a&(1<<PropUser) != 0 {
		for _, u := range p.User {
			n += 1 + strSize(u.Key) + strSize(u.Value)
		}
	}
	if a&(1<<PropMaximumPacketSize) != 0 && p.HasMaximumPacketSize {
		n += 5
	}
	if a&(1<<PropWildcardSubAvailable) != 0 && p.HasWildcardSubAvailable {
		n += 2
	}
	if a&(1<<PropSubIDAvailable) != 0 && p.HasSubIDAvailable {
		n += 2
	}
	if a&(1<<PropSharedSubAvailable) != 0 && p.HasSharedSubAvailable {
		n += 2
	}
	return n
}

// appendProps appends the Property Length size and the properties counted by propsSize(p, k).
func appendProps(dst []byte, p *Properties, k Type, size int) []byte {
	dst = appendVarInt(dst, size)
	if size == 0 {
		return dst
	}
	a := propIDs[k]
	if a&(1<<PropPayloadFormat) != 0 && p.HasPayloadFormat {
		dst = append(dst, PropPayloadFormat, p.PayloadFormat)
	}
	if a&(1<<PropMessageExpiry) != 0 && p.HasMessageExpiry {
		dst = appendU32(append(dst, PropMessageExpiry), p.MessageExpiry)
	}
	if a&(1<<PropContentType) != 0 && p.ContentType != "" {
		dst = appendString(append(dst, PropContentType), p.ContentType)
	}
	if a&(1<<PropResponseTopic) != 0 && p.ResponseTopic != "" {
		dst = appendString(append(dst, PropResponseTopic), p.ResponseTopic)
	}
	if a&(1<<PropCorrelationData) != 0 && p.CorrelationData != nil {
		dst = appendBinary(append(dst, PropCorrelationData), p.CorrelationData)
	}
	if a&(1<<PropSubscriptionID) != 0 {
		for _, id := range p.SubscriptionIDs {
			dst = appendVarInt(append(dst, PropSubscriptionID), int(id))
		}
	}
	if a&(1<<PropSessionExpiry) != 0 && p.HasSessionExpiry {
		dst = appendU32(append(dst, PropSessionExpiry), p.SessionExpiry)
	}
	if a&(1<<PropAssignedClientID) != 0 && p.AssignedClientID != "" {
		dst = appendString(append(dst, PropAssignedClientID), p.AssignedClientID)
	}
	if a&(1<<PropServerKeepAlive) != 0 && p.HasServerKeepAlive {
		dst = appendU16(append(dst, PropServerKeepAlive), p.ServerKeepAlive)
	}
	if a&(1<<PropAuthMethod) != 0 && p.AuthMethod != "" {
		dst = appendString(append(dst, PropAuthMethod), p.AuthMethod)
	}
	if a&(1<<PropAuthData) != 0 && p.AuthData != nil {
		dst = appendBinary(append(dst, PropAuthData), p.AuthData)
	}
	if a&(1<<PropRequestProblemInfo) != 0 && p.HasRequestProblemInfo {
		dst = append(dst, PropRequestProblemInfo, p.RequestProblemInfo)
	}
	if a&(1<<PropWillDelay) != 0 && p.HasWillDelay {
		dst = appendU32(append(dst, PropWillDelay), p.WillDelay)
	}
	if a&(1<<PropRequestResponseInfo) != 0 && p.HasRequestResponseInfo {
		dst = append(dst, PropRequestResponseInfo, p.RequestResponseInfo)
	}
	if a&(1<<PropResponseInfo) != 0 && p.ResponseInfo != "" {
		dst = appendString(append(dst, PropResponseInfo), p.ResponseInfo)
	}
	if a&(1<<PropServerReference) != 0 && p.ServerReference != "" {
		dst = appendString(append(dst, PropServerReference), p.ServerReference)
	}
	if a&(1<<PropReasonString) != 0 && p.ReasonString != "" {
		dst = appendString(append(dst, PropReasonString), p.ReasonString)
	}
	if a&(1<<PropReceiveMaximum) != 0 && p.HasReceiveMaximum {
		dst = appendU16(append(dst, PropReceiveMaximum), p.ReceiveMaximum)
	}
	if a&(1<<PropTopicAliasMaximum) != 0 && p.HasTopicAliasMaximum {
		dst = appendU16(append(dst, PropTopicAliasMaximum), p.TopicAliasMaximum)
	}
	if a&(1<<PropTopicAlias) != 0 && p.HasTopicAlias {
		dst = appendU16(append(dst, PropTopicAlias), p.TopicAlias)
	}
	if a&(1<<PropMaximumQoS) != 0 && p.HasMaximumQoS {
		dst = append(dst, PropMaximumQoS, p.MaximumQoS)
	}
	if a&(1<<PropRetainAvailable) != 0 && p.HasRetainAvailable {
		dst = append(dst, PropRetainAvailable, p.RetainAvailable)
	}
	if a&(1<<PropUser) != 0 {
		for _, u := range p.User {
			dst = appendString(appendString(append(dst, PropUser), u.Key), u.Value)
		}
	}
	if a&(1<<PropMaximumPacketSize) != 0 && p.HasMaximumPacketSize {
		dst = appendU32(append(dst, PropMaximumPacketSize), p.MaximumPacketSize)
	}
	if a&(1<<PropWildcardSubAvailable) != 0 && p.HasWildcardSubAvailable {
		dst = append(dst, PropWildcardSubAvailable, p.WildcardSubAvailable)
	}
	if a&(1<<PropSubIDAvailable) != 0 && p.HasSubIDAvailable {
		dst = append(dst, PropSubIDAvailable, p.SubIDAvailable)
	}
	if a&(1<<PropSharedSubAvailable) != 0 && p.HasSharedSubAvailable {
		dst = append(dst, PropSharedSubAvailable, p.SharedSubAvailable)
	}
	return dst
}

// withProps is the size of a property block of size n together with its Property Length.
func withProps(n int) int { return varIntSize(n) + n }
