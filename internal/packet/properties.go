package packet

// Property identifiers of MQTT 5.0 (2.2.2.2).
const (
	PropPayloadFormat        byte = 0x01
	PropMessageExpiry        byte = 0x02
	PropContentType          byte = 0x03
	PropResponseTopic        byte = 0x08
	PropCorrelationData      byte = 0x09
	PropSubscriptionID       byte = 0x0B
	PropSessionExpiry        byte = 0x11
	PropAssignedClientID     byte = 0x12
	PropServerKeepAlive      byte = 0x13
	PropAuthMethod           byte = 0x15
	PropAuthData             byte = 0x16
	PropRequestProblemInfo   byte = 0x17
	PropWillDelay            byte = 0x18
	PropRequestResponseInfo  byte = 0x19
	PropResponseInfo         byte = 0x1A
	PropServerReference      byte = 0x1C
	PropReasonString         byte = 0x1F
	PropReceiveMaximum       byte = 0x21
	PropTopicAliasMaximum    byte = 0x22
	PropTopicAlias           byte = 0x23
	PropMaximumQoS           byte = 0x24
	PropRetainAvailable      byte = 0x25
	PropUser                 byte = 0x26
	PropMaximumPacketSize    byte = 0x27
	PropWildcardSubAvailable byte = 0x28
	PropSubIDAvailable       byte = 0x29
	PropSharedSubAvailable   byte = 0x2A
)

// UserProperty is a name/value pair (2.2.2.2, 0x26). Order is preserved and duplicates are allowed.
type UserProperty struct {
	Key, Value string
}

// Properties holds every MQTT 5.0 property. Scalars have a Has… flag because zero is a meaningful
// value for most of them. Which properties a packet may carry is checked on decode: a property
// not allowed for the packet is a Malformed Packet (2.2.2.2), and a duplicate of any property other
// than User Property and Subscription Identifier (PUBLISH) is a Protocol Error ("It is a Protocol
// Error to include ... more than once", 3.x.2.x). Empty strings and nil byte slices count as absent
// when encoding; a CorrelationData or AuthData that is present but empty decodes as a non-nil empty
// slice.
type Properties struct {
	PayloadFormat    byte // 0 unspecified bytes, 1 UTF-8 [MQTT-3.3.2-4]
	HasPayloadFormat bool

	MessageExpiry    uint32 // seconds
	HasMessageExpiry bool

	ContentType     string
	ResponseTopic   string
	CorrelationData []byte

	// SubscriptionIDs: one in SUBSCRIBE (1..268435455), possibly several in PUBLISH (server to client).
	SubscriptionIDs []uint32

	SessionExpiry    uint32
	HasSessionExpiry bool

	AssignedClientID string

	ServerKeepAlive    uint16
	HasServerKeepAlive bool

	AuthMethod string
	AuthData   []byte

	RequestProblemInfo    byte // 0 or 1
	HasRequestProblemInfo bool

	WillDelay    uint32
	HasWillDelay bool

	RequestResponseInfo    byte // 0 or 1
	HasRequestResponseInfo bool

	ResponseInfo    string
	ServerReference string
	ReasonString    string

	ReceiveMaximum    uint16 // never 0: a 0 is a Protocol Error (3.1.2.11.3, 3.2.2.3.3)
	HasReceiveMaximum bool

	TopicAliasMaximum    uint16
	HasTopicAliasMaximum bool

	TopicAlias    uint16 // 0 is a Protocol Error [MQTT-3.3.2-8]
	HasTopicAlias bool

	MaximumQoS    byte // 0 or 1
	HasMaximumQoS bool

	RetainAvailable    byte
	HasRetainAvailable bool

	User []UserProperty

	MaximumPacketSize    uint32 // never 0
	HasMaximumPacketSize bool

	WildcardSubAvailable    byte
	HasWildcardSubAvailable bool

	SubIDAvailable    byte
	HasSubIDAvailable bool

	SharedSubAvailable    byte
	HasSharedSubAvailable bool
}
