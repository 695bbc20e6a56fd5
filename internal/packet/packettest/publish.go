package packettest

import "github.com/turnstilemq/turnstile/internal/packet"

// Publish is the PUBLISH table (3.3).
var Publish = []Case{
	{
		Name:    "3.3 3.1.1 QoS 0",
		Version: packet.V311,
		Raw: []byte{
			0x30, 7, // PUBLISH, QoS 0
			0, 3, 'a', '/', 'b', // topic name
			'h', 'i', // payload
		},
		Packet: &packet.Publish{Topic: "a/b", Payload: []byte("hi")},
	},
	{
		Name:    "3.3.1 3.1.1 QoS 1 with DUP and RETAIN",
		Version: packet.V311,
		Raw: []byte{
			0x3B, 9, // DUP, QoS 1, RETAIN
			0, 3, 'a', '/', 'b',
			0, 7, // packet identifier
			'h', 'i',
		},
		Packet: &packet.Publish{Dup: true, QoS: 1, Retain: true, Topic: "a/b", PacketID: 7, Payload: []byte("hi")},
	},
	{
		Name:    "3.3.3 3.1.1 QoS 2 with an empty payload",
		Version: packet.V311,
		Raw:     []byte{0x34, 7, 0, 3, 'a', '/', 'b', 0x12, 0x34},
		Packet:  &packet.Publish{QoS: 2, Topic: "a/b", PacketID: 0x1234},
	},
	{
		Name:    "3.3.2.3 5.0 QoS 1 with properties",
		Version: packet.V5,
		Raw: []byte{
			0x32, 45,
			0, 1, 't',
			0, 1,
			37,      // property length
			0x01, 1, // payload format indicator
			0x02, 0, 0, 0, 60, // message expiry interval
			0x03, 0, 4, 'j', 's', 'o', 'n', // content type
			0x08, 0, 5, 'r', 'e', 'p', 'l', 'y', // response topic
			0x09, 0, 2, 0xAB, 0xCD, // correlation data
			0x23, 0, 3, // topic alias
			0x26, 0, 1, 'a', 0, 1, 'b', // user property
			'{', '}',
		},
		Packet: &packet.Publish{
			QoS: 1, Topic: "t", PacketID: 1,
			Props: packet.Properties{
				PayloadFormat: 1, HasPayloadFormat: true,
				MessageExpiry: 60, HasMessageExpiry: true,
				ContentType: "json", ResponseTopic: "reply", CorrelationData: []byte{0xAB, 0xCD},
				TopicAlias: 3, HasTopicAlias: true,
				User: []packet.UserProperty{{Key: "a", Value: "b"}},
			},
			Payload: []byte("{}"),
		},
	},
	{
		Name:    "3.3.2.3 5.0 QoS 0 without properties",
		Version: packet.V5,
		Raw:     []byte{0x30, 6, 0, 1, 't', 0, 'x', 'y'},
		Packet:  &packet.Publish{Topic: "t", Payload: []byte("xy")},
	},
	{
		Name:    "3.3.2.3.4 5.0 empty topic name with a topic alias",
		Version: packet.V5,
		Raw:     []byte{0x30, 7, 0, 0, 3, 0x23, 0, 1, 'z'},
		Packet:  &packet.Publish{Props: packet.Properties{TopicAlias: 1, HasTopicAlias: true}, Payload: []byte("z")},
	},
	{
		Name:    "MQTT-3.3.4-4 5.0 several subscription identifiers",
		Version: packet.V5,
		Raw: []byte{
			0x30, 9, 0, 1, 't',
			5,
			0x0B, 1, // subscription identifier 1
			0x0B, 0x80, 0x01, // subscription identifier 128
		},
		Packet: &packet.Publish{Topic: "t", Props: packet.Properties{SubscriptionIDs: []uint32{1, 128}}},
	},
	{
		Name:    "3.3.2.3.2 5.0 payload format 1 with UTF-8 payload",
		Version: packet.V5,
		Raw:     []byte{0x30, 12, 0, 1, 't', 2, 0x01, 1, 'h', 0xC3, 0xA9, 'l', 'l', 'o'},
		Packet:  &packet.Publish{Topic: "t", Props: packet.Properties{PayloadFormat: 1, HasPayloadFormat: true}, Payload: []byte("héllo")},
	},

	// Refused.
	{
		Name:    "MQTT-3.3.1-4 QoS 3 is malformed",
		Version: packet.V311,
		Raw:     []byte{0x36, 7, 0, 3, 'a', '/', 'b', 0, 1},
		WantErr: packet.MalformedPacket,
	},
	{
		Name:    "MQTT-3.3.1-2 DUP with QoS 0 is malformed",
		Version: packet.V311,
		Raw:     []byte{0x38, 5, 0, 3, 'a', '/', 'b'},
		WantErr: packet.MalformedPacket,
	},
	{
		Name:    "MQTT-3.3.2-2 topic name with + is TopicNameInvalid",
		Version: packet.V311,
		Raw:     []byte{0x30, 5, 0, 3, 'a', '/', '+'},
		WantErr: packet.TopicNameInvalid,
	},
	{
		Name:    "MQTT-3.3.2-2 5.0 topic name with # is TopicNameInvalid",
		Version: packet.V5,
		Raw:     []byte{0x30, 4, 0, 1, '#', 0},
		WantErr: packet.TopicNameInvalid,
	},
	{
		Name:    "MQTT-2.2.1-3 QoS 1 with packet identifier 0 is a protocol error",
		Version: packet.V311,
		Raw:     []byte{0x32, 5, 0, 1, 't', 0, 0},
		WantErr: packet.ProtocolError,
	},
	{
		Name:    "MQTT-2.2.1-3 QoS 2 without packet identifier is malformed",
		Version: packet.V311,
		Raw:     []byte{0x34, 4, 0, 1, 't', 0},
		WantErr: packet.MalformedPacket,
	},
	{
		Name:    "MQTT-4.7.3-1 3.1.1 empty topic name is malformed",
		Version: packet.V311,
		Raw:     []byte{0x30, 3, 0, 0, 'x'},
		WantErr: packet.MalformedPacket,
	},
	{
		Name:    "MQTT-3.3.2-1 5.0 empty topic name without a topic alias is a protocol error",
		Version: packet.V5,
		Raw:     []byte{0x30, 3, 0, 0, 0},
		WantErr: packet.ProtocolError,
	},
	{
		Name:    "MQTT-3.3.2-8 topic alias 0 is a protocol error",
		Version: packet.V5,
		Raw:     []byte{0x30, 7, 0, 1, 't', 3, 0x23, 0, 0},
		WantErr: packet.ProtocolError,
	},
	{
		Name:    "3.3.2.3.2 payload format 1 with a payload that is not UTF-8 is PayloadFormatInvalid",
		Version: packet.V5,
		Raw:     []byte{0x30, 7, 0, 1, 't', 2, 0x01, 1, 0xFF},
		WantErr: packet.PayloadFormatInvalid,
	},
	{
		Name:    "MQTT-1.5.4-1 topic name with a surrogate is malformed",
		Version: packet.V311,
		Raw:     []byte{0x30, 5, 0, 3, 0xED, 0xBF, 0xBF},
		WantErr: packet.MalformedPacket,
	},
	{
		Name:    "MQTT-1.5.4-2 topic name with U+0000 is malformed",
		Version: packet.V311,
		Raw:     []byte{0x30, 5, 0, 3, 'a', 0, 'b'},
		WantErr: packet.MalformedPacket,
	},
	{
		Name:    "1.5.4 topic name length past the end is malformed",
		Version: packet.V311,
		Raw:     []byte{0x30, 4, 0, 9, 'a', 'b'},
		WantErr: packet.MalformedPacket,
	},
	{
		Name:    "2.2.2.2 session expiry interval in PUBLISH is malformed",
		Version: packet.V5,
		Raw:     []byte{0x30, 9, 0, 1, 't', 5, 0x11, 0, 0, 0, 1},
		WantErr: packet.MalformedPacket,
	},
	{
		Name:    "3.3.2.3.9 content type twice is a protocol error",
		Version: packet.V5,
		Raw:     []byte{0x30, 12, 0, 1, 't', 8, 0x03, 0, 1, 'a', 0x03, 0, 1, 'b'},
		WantErr: packet.ProtocolError,
	},
	{
		Name:    "3.3.2.3.8 subscription identifier 0 is a protocol error",
		Version: packet.V5,
		Raw:     []byte{0x30, 6, 0, 1, 't', 2, 0x0B, 0},
		WantErr: packet.ProtocolError,
	},
	{
		Name:    "MQTT-3.3.2-14 response topic with a wildcard is a protocol error",
		Version: packet.V5,
		Raw:     []byte{0x30, 9, 0, 1, 't', 5, 0x08, 0, 2, 'a', '+'},
		WantErr: packet.ProtocolError,
	},
	{
		Name:    "MQTT-1.5.5-1 property length of five bytes is malformed",
		Version: packet.V5,
		Raw:     []byte{0x30, 8, 0, 1, 't', 0x80, 0x80, 0x80, 0x80, 0x01},
		WantErr: packet.MalformedPacket,
	},
	{
		Name:    "MQTT-1.5.5-1 subscription identifier not in its shortest form is malformed",
		Version: packet.V5,
		Raw:     []byte{0x30, 7, 0, 1, 't', 3, 0x0B, 0x81, 0x00},
		WantErr: packet.MalformedPacket,
	},
	{
		Name:    "2.2.2.2 unknown property 0x7F is malformed",
		Version: packet.V5,
		Raw:     []byte{0x30, 6, 0, 1, 't', 2, 0x7F, 0},
		WantErr: packet.MalformedPacket,
	},
	{
		Name:    "1.5.7 user property without a value is malformed",
		Version: packet.V5,
		Raw:     []byte{0x30, 9, 0, 1, 't', 5, 0x26, 0, 1, 'k', 0},
		WantErr: packet.MalformedPacket,
	},
}
