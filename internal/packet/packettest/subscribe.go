package packettest

import "github.com/turnstilemq/turnstile/internal/packet"

// Subscribe is the SUBSCRIBE table (3.8).
var Subscribe = []Case{
	{
		Name:    "MQTT-3.8.1-1 3.1.1 two filters",
		Version: packet.V311,
		Raw: []byte{
			0x82, 14, // SUBSCRIBE, flags 0010
			0, 10, // packet identifier
			0, 3, 'a', '/', 'b', 1, // filter, QoS 1
			0, 3, 'c', '/', '#', 2, // filter, QoS 2
		},
		Packet: &packet.Subscribe{PacketID: 10, Subscriptions: []packet.Subscription{
			{Filter: "a/b", QoS: 1}, {Filter: "c/#", QoS: 2},
		}},
	},
	{
		Name:    "3.8.3.1 5.0 subscription options and identifier",
		Version: packet.V5,
		Raw: []byte{
			0x82, 20,
			0, 11,
			9,       // property length
			0x0B, 5, // subscription identifier
			0x26, 0, 1, 'k', 0, 1, 'v', // user property
			0, 1, 'x', 0x2E, // QoS 2, no local, retain as published, retain handling 2
			0, 1, 'y', 0x10, // QoS 0, retain handling 1
		},
		Packet: &packet.Subscribe{
			PacketID: 11,
			Props:    packet.Properties{SubscriptionIDs: []uint32{5}, User: []packet.UserProperty{{Key: "k", Value: "v"}}},
			Subscriptions: []packet.Subscription{
				{Filter: "x", QoS: 2, NoLocal: true, RetainAsPublished: true, RetainHandling: 2},
				{Filter: "y", RetainHandling: 1},
			},
		},
	},
	{
		Name:    "MQTT-4.7.1-2 filter syntax is left to the broker (SUBACK 0x8F)",
		Version: packet.V5,
		Raw:     []byte{0x82, 9, 0, 12, 0, 0, 3, 'a', '#', 'b', 0},
		Packet:  &packet.Subscribe{PacketID: 12, Subscriptions: []packet.Subscription{{Filter: "a#b"}}},
	},

	// Refused.
	{
		Name:    "MQTT-3.8.3-3 3.1.1 SUBSCRIBE without filters is malformed",
		Version: packet.V311,
		Raw:     []byte{0x82, 2, 0, 1},
		WantErr: packet.MalformedPacket,
	},
	{
		Name:    "MQTT-3.8.3-2 5.0 SUBSCRIBE without filters is a protocol error",
		Version: packet.V5,
		Raw:     []byte{0x82, 3, 0, 1, 0},
		WantErr: packet.ProtocolError,
	},
	{
		Name:    "MQTT-3-8.3-4 3.1.1 reserved option bits are malformed",
		Version: packet.V311,
		Raw:     []byte{0x82, 6, 0, 1, 0, 1, 'a', 0x04},
		WantErr: packet.MalformedPacket,
	},
	{
		Name:    "MQTT-3-8.3-4 3.1.1 QoS 3 is malformed",
		Version: packet.V311,
		Raw:     []byte{0x82, 6, 0, 1, 0, 1, 'a', 0x03},
		WantErr: packet.MalformedPacket,
	},
	{
		Name:    "MQTT-3.8.3-5 5.0 reserved option bits 6 and 7 are malformed",
		Version: packet.V5,
		Raw:     []byte{0x82, 7, 0, 1, 0, 0, 1, 'a', 0x40},
		WantErr: packet.MalformedPacket,
	},
	{
		Name:    "3.8.3.1 5.0 QoS 3 is a protocol error",
		Version: packet.V5,
		Raw:     []byte{0x82, 7, 0, 1, 0, 0, 1, 'a', 0x03},
		WantErr: packet.ProtocolError,
	},
	{
		Name:    "3.8.3.1 retain handling 3 is a protocol error",
		Version: packet.V5,
		Raw:     []byte{0x82, 7, 0, 1, 0, 0, 1, 'a', 0x30},
		WantErr: packet.ProtocolError,
	},
	{
		Name:    "3.8.2.1.2 subscription identifier 0 is a protocol error",
		Version: packet.V5,
		Raw:     []byte{0x82, 9, 0, 1, 2, 0x0B, 0, 0, 1, 'a', 0},
		WantErr: packet.ProtocolError,
	},
	{
		Name:    "3.8.2.1.2 two subscription identifiers are a protocol error",
		Version: packet.V5,
		Raw:     []byte{0x82, 11, 0, 1, 4, 0x0B, 1, 0x0B, 2, 0, 1, 'a', 0},
		WantErr: packet.ProtocolError,
	},
	{
		Name:    "MQTT-3.8.1-1 flags 0000 are malformed",
		Version: packet.V311,
		Raw:     []byte{0x80, 6, 0, 1, 0, 1, 'a', 0},
		WantErr: packet.MalformedPacket,
	},
	{
		Name:    "MQTT-2.2.1-3 packet identifier 0 is a protocol error",
		Version: packet.V311,
		Raw:     []byte{0x82, 6, 0, 0, 0, 1, 'a', 0},
		WantErr: packet.ProtocolError,
	},
	{
		Name:    "MQTT-3.8.3-1 filter that is not UTF-8 is malformed",
		Version: packet.V311,
		Raw:     []byte{0x82, 6, 0, 1, 0, 1, 0xC0, 0},
		WantErr: packet.MalformedPacket,
	},
	{
		Name:    "3.8.3 filter without its options byte is malformed",
		Version: packet.V311,
		Raw:     []byte{0x82, 5, 0, 1, 0, 1, 'a'},
		WantErr: packet.MalformedPacket,
	},
	{
		Name:    "2.2.2.2 reason string in SUBSCRIBE is malformed",
		Version: packet.V5,
		Raw:     []byte{0x82, 11, 0, 1, 4, 0x1F, 0, 1, 'r', 0, 1, 'a', 0},
		WantErr: packet.MalformedPacket,
	},
}

// Suback is the SUBACK table (3.9).
var Suback = []Case{
	{
		Name:    "MQTT-3.9.3-2 3.1.1 granted QoS and failure",
		Version: packet.V311,
		Raw:     []byte{0x90, 5, 0, 10, 0x00, 0x01, 0x80},
		Packet:  &packet.Suback{PacketID: 10, ReasonCodes: []packet.ReasonCode{packet.Success, packet.GrantedQoS1, packet.UnspecifiedError}},
	},
	{
		Name:    "3.9.3 5.0 reason codes with a reason string",
		Version: packet.V5,
		Raw:     []byte{0x90, 11, 0, 10, 5, 0x1F, 0, 2, 'o', 'k', 0x02, 0x8F, 0xA2},
		Packet: &packet.Suback{PacketID: 10, Props: packet.Properties{ReasonString: "ok"},
			ReasonCodes: []packet.ReasonCode{packet.GrantedQoS2, packet.TopicFilterInvalid, packet.WildcardSubscriptionsNotSupported}},
	},
	{
		Name:       "MQTT-3.9.3-2 3.1.1 failure codes are written as 0x80",
		Version:    packet.V311,
		Raw:        []byte{0x90, 5, 0, 10, 0x02, 0x80, 0x80},
		Packet:     &packet.Suback{PacketID: 10, ReasonCodes: []packet.ReasonCode{packet.GrantedQoS2, packet.NotAuthorized, packet.TopicFilterInvalid}},
		EncodeOnly: true,
	},
	{
		Name:    "MQTT-3.9.3-2 3.1.1 return code 0x03 is malformed",
		Version: packet.V311,
		Raw:     []byte{0x90, 3, 0, 1, 0x03},
		WantErr: packet.MalformedPacket,
	},
	{
		Name:    "MQTT-3.9.3-2 5.0 reason code 0x03 is a protocol error",
		Version: packet.V5,
		Raw:     []byte{0x90, 4, 0, 1, 0, 0x03},
		WantErr: packet.ProtocolError,
	},
	{
		Name:    "MQTT-3.8.4-6 3.1.1 SUBACK without return codes is malformed",
		Version: packet.V311,
		Raw:     []byte{0x90, 2, 0, 1},
		WantErr: packet.MalformedPacket,
	},
}

// Unsubscribe is the UNSUBSCRIBE table (3.10).
var Unsubscribe = []Case{
	{
		Name:    "MQTT-3.10.1-1 3.1.1 two filters",
		Version: packet.V311,
		Raw:     []byte{0xA2, 10, 0, 3, 0, 3, 'a', '/', 'b', 0, 1, 'c'},
		Packet:  &packet.Unsubscribe{PacketID: 3, Filters: []string{"a/b", "c"}},
	},
	{
		Name:    "3.10.2.1 5.0 with a user property",
		Version: packet.V5,
		Raw:     []byte{0xA2, 13, 0, 4, 7, 0x26, 0, 1, 'k', 0, 1, 'v', 0, 1, 'a'},
		Packet:  &packet.Unsubscribe{PacketID: 4, Props: packet.Properties{User: []packet.UserProperty{{Key: "k", Value: "v"}}}, Filters: []string{"a"}},
	},
	{
		Name:    "MQTT-3.10.3-2 3.1.1 UNSUBSCRIBE without filters is malformed",
		Version: packet.V311,
		Raw:     []byte{0xA2, 2, 0, 1},
		WantErr: packet.MalformedPacket,
	},
	{
		Name:    "MQTT-3.10.3-2 5.0 UNSUBSCRIBE without filters is a protocol error",
		Version: packet.V5,
		Raw:     []byte{0xA2, 3, 0, 1, 0},
		WantErr: packet.ProtocolError,
	},
	{
		Name:    "MQTT-3.10.1-1 flags 0000 are malformed",
		Version: packet.V311,
		Raw:     []byte{0xA0, 5, 0, 1, 0, 1, 'a'},
		WantErr: packet.MalformedPacket,
	},
	{
		Name:    "MQTT-3.10.3-1 filter with U+0000 is malformed",
		Version: packet.V311,
		Raw:     []byte{0xA2, 5, 0, 1, 0, 1, 0},
		WantErr: packet.MalformedPacket,
	},
	{
		Name:    "MQTT-2.2.1-3 packet identifier 0 is a protocol error",
		Version: packet.V5,
		Raw:     []byte{0xA2, 6, 0, 0, 0, 0, 1, 'a'},
		WantErr: packet.ProtocolError,
	},
	{
		Name:    "2.2.2.2 subscription identifier in UNSUBSCRIBE is malformed",
		Version: packet.V5,
		Raw:     []byte{0xA2, 8, 0, 1, 2, 0x0B, 1, 0, 1, 'a'},
		WantErr: packet.MalformedPacket,
	},
}

// Unsuback is the UNSUBACK table (3.11).
var Unsuback = []Case{
	{
		Name:    "3.11 3.1.1 packet identifier only",
		Version: packet.V311,
		Raw:     []byte{0xB0, 2, 0, 3},
		Packet:  &packet.Unsuback{PacketID: 3},
	},
	{
		Name:    "MQTT-3.11.3-1 5.0 one reason code per filter",
		Version: packet.V5,
		Raw:     []byte{0xB0, 5, 0, 3, 0, 0x00, 0x11},
		Packet:  &packet.Unsuback{PacketID: 3, ReasonCodes: []packet.ReasonCode{packet.Success, packet.NoSubscriptionExisted}},
	},
	{
		Name:       "3.11 3.1.1 writes no reason codes",
		Version:    packet.V311,
		Raw:        []byte{0xB0, 2, 0, 3},
		Packet:     &packet.Unsuback{PacketID: 3, ReasonCodes: []packet.ReasonCode{packet.NoSubscriptionExisted}},
		EncodeOnly: true,
	},
	{
		Name:    "3.11 3.1.1 a payload is malformed",
		Version: packet.V311,
		Raw:     []byte{0xB0, 3, 0, 3, 0},
		WantErr: packet.MalformedPacket,
	},
	{
		Name:    "MQTT-3.11.3-2 reason code 0x01 is a protocol error",
		Version: packet.V5,
		Raw:     []byte{0xB0, 4, 0, 3, 0, 0x01},
		WantErr: packet.ProtocolError,
	},
	{
		Name:    "MQTT-3.11.3-1 5.0 UNSUBACK without reason codes is a protocol error",
		Version: packet.V5,
		Raw:     []byte{0xB0, 3, 0, 3, 0},
		WantErr: packet.ProtocolError,
	},
}
