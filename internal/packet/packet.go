package packet

// Type is the MQTT control packet type, the high nibble of the fixed header (2.1.2).
type Type byte

// Control packet types.
const (
	CONNECT     Type = 1
	CONNACK     Type = 2
	PUBLISH     Type = 3
	PUBACK      Type = 4
	PUBREC      Type = 5
	PUBREL      Type = 6
	PUBCOMP     Type = 7
	SUBSCRIBE   Type = 8
	SUBACK      Type = 9
	UNSUBSCRIBE Type = 10
	UNSUBACK    Type = 11
	PINGREQ     Type = 12
	PINGRESP    Type = 13
	DISCONNECT  Type = 14
	AUTH        Type = 15
)

var typeNames = [...]string{"RESERVED", "CONNECT", "CONNACK", "PUBLISH", "PUBACK", "PUBREC", "PUBREL",
	"PUBCOMP", "SUBSCRIBE", "SUBACK", "UNSUBSCRIBE", "UNSUBACK", "PINGREQ", "PINGRESP", "DISCONNECT", "AUTH"}

func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return "INVALID"
}

// Version is the protocol level byte of CONNECT (3.1.2.2).
type Version byte

// Protocol versions.
const (
	V31  Version = 3 // MQTT 3.1, protocol name "MQIsdp"
	V311 Version = 4 // MQTT 3.1.1, protocol name "MQTT"
	V5   Version = 5 // MQTT 5.0, protocol name "MQTT"
)

func (v Version) String() string {
	switch v {
	case V31:
		return "3.1"
	case V311:
		return "3.1.1"
	case V5:
		return "5.0"
	}
	return "unknown"
}

// Limits of the encoding.
const (
	MaxRemainingLength = 268435455 // four bytes of variable byte integer (2.2.3) [MQTT-1.5.5-1]
	MaxPacketSize      = MaxRemainingLength + 5
	MaxStringLength    = 65535
)

// FixedHeader is the first 2 to 5 bytes of every packet (2.1.1).
type FixedHeader struct {
	Type      Type
	Flags     byte // low nibble
	Remaining int  // Remaining Length: bytes after the fixed header
}

// Size is the number of bytes the fixed header itself takes.
func (h FixedHeader) Size() int { return 1 + varIntSize(h.Remaining) }

// Packet is any decoded control packet.
type Packet interface {
	Type() Type
}

// Connect is the CONNECT packet (3.1).
type Connect struct {
	ProtocolName string  // "MQTT" or "MQIsdp"
	Version      Version // protocol level
	CleanStart   bool    // Clean Start (v5) or Clean Session (3.1.1)
	KeepAlive    uint16  // seconds
	Props        Properties
	ClientID     string
	Will         *Will // nil when the Will Flag is 0
	UsernameFlag bool
	Username     string
	PasswordFlag bool
	Password     []byte
}

// Will is the Will Message carried by CONNECT (3.1.2.5, 3.1.3.2).
type Will struct {
	QoS     byte
	Retain  bool
	Props   Properties // Will Properties (v5): Will Delay Interval, Message Expiry, Content Type, ...
	Topic   string
	Payload []byte
}

// Connack is the CONNACK packet (3.2). For 3.1/3.1.1 the ReasonCode is mapped with ConnackReturnCode311.
type Connack struct {
	SessionPresent bool
	ReasonCode     ReasonCode
	Props          Properties
}

// Publish is the PUBLISH packet (3.3). Payload aliases the decoded buffer.
type Publish struct {
	Dup      bool
	QoS      byte
	Retain   bool
	Topic    string
	PacketID uint16 // only for QoS > 0
	Props    Properties
	Payload  []byte
}

// Puback is the PUBACK packet (3.4).
type Puback struct {
	PacketID   uint16
	ReasonCode ReasonCode
	Props      Properties
}

// Pubrec is the PUBREC packet (3.5).
type Pubrec struct {
	PacketID   uint16
	ReasonCode ReasonCode
	Props      Properties
}

// Pubrel is the PUBREL packet (3.6).
type Pubrel struct {
	PacketID   uint16
	ReasonCode ReasonCode
	Props      Properties
}

// Pubcomp is the PUBCOMP packet (3.7).
type Pubcomp struct {
	PacketID   uint16
	ReasonCode ReasonCode
	Props      Properties
}

// Subscription is one topic filter with its options in a SUBSCRIBE (3.8.3.1).
type Subscription struct {
	Filter            string
	QoS               byte
	NoLocal           bool
	RetainAsPublished bool
	RetainHandling    byte
}

// Subscribe is the SUBSCRIBE packet (3.8).
type Subscribe struct {
	PacketID      uint16
	Props         Properties // Subscription Identifier, User Properties
	Subscriptions []Subscription
}

// Suback is the SUBACK packet (3.9). For 3.1.1 the codes are 0x00, 0x01, 0x02 or 0x80.
type Suback struct {
	PacketID    uint16
	Props       Properties
	ReasonCodes []ReasonCode
}

// Unsubscribe is the UNSUBSCRIBE packet (3.10).
type Unsubscribe struct {
	PacketID uint16
	Props    Properties
	Filters  []string
}

// Unsuback is the UNSUBACK packet (3.11). 3.1.1 has no reason codes; they are not encoded there.
type Unsuback struct {
	PacketID    uint16
	Props       Properties
	ReasonCodes []ReasonCode
}

// Pingreq is the PINGREQ packet (3.12).
type Pingreq struct{}

// Pingresp is the PINGRESP packet (3.13).
type Pingresp struct{}

// Disconnect is the DISCONNECT packet (3.14).
type Disconnect struct {
	ReasonCode ReasonCode
	Props      Properties
}

// Auth is the AUTH packet (3.15), MQTT 5 only.
type Auth struct {
	ReasonCode ReasonCode
	Props      Properties
}

func (*Connect) Type() Type     { return CONNECT }
func (*Connack) Type() Type     { return CONNACK }
func (*Publish) Type() Type     { return PUBLISH }
func (*Puback) Type() Type      { return PUBACK }
func (*Pubrec) Type() Type      { return PUBREC }
func (*Pubrel) Type() Type      { return PUBREL }
func (*Pubcomp) Type() Type     { return PUBCOMP }
func (*Subscribe) Type() Type   { return SUBSCRIBE }
func (*Suback) Type() Type      { return SUBACK }
func (*Unsubscribe) Type() Type { return UNSUBSCRIBE }
func (*Unsuback) Type() Type    { return UNSUBACK }
func (*Pingreq) Type() Type     { return PINGREQ }
func (*Pingresp) Type() Type    { return PINGRESP }
func (*Disconnect) Type() Type  { return DISCONNECT }
func (*Auth) Type() Type        { return AUTH }
