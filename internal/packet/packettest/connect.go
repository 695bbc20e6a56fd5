package packettest

import "github.com/turnstilemq/turnstile/internal/packet"

// Connect is the CONNECT table (3.1).
var Connect = []Case{
	{
		Name:    "3.1.2 3.1.1 minimal clean session",
		Version: packet.V311,
		Raw: []byte{
			0x10, 15, // CONNECT, remaining length
			0, 4, 'M', 'Q', 'T', 'T', // protocol name
			4,     // protocol level
			0x02,  // flags: clean session
			0, 60, // keep alive
			0, 3, 'c', 'i', 'd', // client identifier
		},
		Packet: &packet.Connect{ProtocolName: "MQTT", Version: packet.V311, CleanStart: true, KeepAlive: 60, ClientID: "cid"},
	},
	{
		Name:    "3.1 protocol name MQIsdp level 3",
		Version: packet.V31,
		Raw: []byte{
			0x10, 17,
			0, 6, 'M', 'Q', 'I', 's', 'd', 'p',
			3,
			0x02,
			0, 60,
			0, 3, 'c', 'i', 'd',
		},
		Packet: &packet.Connect{ProtocolName: "MQIsdp", Version: packet.V31, CleanStart: true, KeepAlive: 60, ClientID: "cid"},
	},
	{
		Name:    "3.1.3 3.1.1 will, user name and password in order [MQTT-3.1.3-1]",
		Version: packet.V311,
		Raw: []byte{
			0x10, 30,
			0, 4, 'M', 'Q', 'T', 'T', 4,
			0xEE, // user name, password, will retain, will QoS 1, will flag, clean session
			0, 10,
			0, 1, 'c', // client identifier
			0, 3, 'w', '/', 't', // will topic
			0, 3, 'b', 'y', 'e', // will payload
			0, 1, 'u', // user name
			0, 2, 'p', 'w', // password
		},
		Packet: &packet.Connect{
			ProtocolName: "MQTT", Version: packet.V311, CleanStart: true, KeepAlive: 10, ClientID: "c",
			Will:         &packet.Will{QoS: 1, Retain: true, Topic: "w/t", Payload: []byte("bye")},
			UsernameFlag: true, Username: "u", PasswordFlag: true, Password: []byte("pw"),
		},
	},
	{
		Name:    "3.1.2.11 5.0 properties and will properties",
		Version: packet.V5,
		Raw: []byte{
			0x10, 66,
			0, 4, 'M', 'Q', 'T', 'T', 5,
			0x86, // user name, will flag (QoS 0), clean start
			0, 30,
			25,                 // property length
			0x11, 0, 0, 0, 120, // session expiry interval
			0x17, 0, // request problem information
			0x21, 0, 10, // receive maximum
			0x22, 0, 5, // topic alias maximum
			0x26, 0, 1, 'k', 0, 1, 'v', // user property
			0x27, 0, 0, 0x10, 0, // maximum packet size 4096
			0, 3, 'c', 'i', 'd',
			14,      // will property length
			0x01, 1, // payload format indicator: UTF-8
			0x03, 0, 4, 't', 'e', 'x', 't', // content type
			0x18, 0, 0, 0, 5, // will delay interval
			0, 1, 'w', // will topic
			0, 2, 'h', 'i', // will payload
			0, 1, 'u', // user name
		},
		Packet: &packet.Connect{
			ProtocolName: "MQTT", Version: packet.V5, CleanStart: true, KeepAlive: 30,
			Props: packet.Properties{
				SessionExpiry: 120, HasSessionExpiry: true,
				HasRequestProblemInfo: true,
				ReceiveMaximum:        10, HasReceiveMaximum: true,
				TopicAliasMaximum: 5, HasTopicAliasMaximum: true,
				User:              []packet.UserProperty{{Key: "k", Value: "v"}},
				MaximumPacketSize: 4096, HasMaximumPacketSize: true,
			},
			ClientID: "cid",
			Will: &packet.Will{
				Props: packet.Properties{PayloadFormat: 1, HasPayloadFormat: true, ContentType: "text", WillDelay: 5, HasWillDelay: true},
				Topic: "w", Payload: []byte("hi"),
			},
			UsernameFlag: true, Username: "u",
		},
	},
	{
		Name:    "3.1.2.9 5.0 password without user name is allowed",
		Version: packet.V5,
		Raw: []byte{
			0x10, 16,
			0, 4, 'M', 'Q', 'T', 'T', 5,
			0x42, // password, clean start
			0, 0,
			0,    // no properties
			0, 0, // empty client identifier: the broker decides [MQTT-3.1.3-6]
			0, 1, 'p',
		},
		Packet: &packet.Connect{ProtocolName: "MQTT", Version: packet.V5, CleanStart: true, PasswordFlag: true, Password: []byte("p")},
	},
	{
		Name:    "3.1.2.11.9 5.0 authentication method and data",
		Version: packet.V5,
		Raw: []byte{
			0x10, 27,
			0, 4, 'M', 'Q', 'T', 'T', 5, 0x02, 0, 60,
			13,
			0x15, 0, 5, 'S', 'C', 'R', 'A', 'M', // authentication method
			0x16, 0, 2, 1, 2, // authentication data
			0, 1, 'c',
		},
		Packet: &packet.Connect{
			ProtocolName: "MQTT", Version: packet.V5, CleanStart: true, KeepAlive: 60, ClientID: "c",
			Props: packet.Properties{AuthMethod: "SCRAM", AuthData: []byte{1, 2}},
		},
	},

	// Refused.
	{
		Name:    "MQTT-3.1.2-2 protocol level 6 is UnsupportedProtocolVersion",
		Version: packet.V5,
		Raw:     []byte{0x10, 12, 0, 4, 'M', 'Q', 'T', 'T', 6, 0x02, 0, 60, 0, 0},
		WantErr: packet.UnsupportedProtocolVersion,
	},
	{
		Name:    "MQTT-3.1.2-2 MQIsdp with level 4 is UnsupportedProtocolVersion",
		Version: packet.V311,
		Raw:     []byte{0x10, 14, 0, 6, 'M', 'Q', 'I', 's', 'd', 'p', 4, 0x02, 0, 60, 0, 0},
		WantErr: packet.UnsupportedProtocolVersion,
	},
	{
		Name:    "MQTT-3.1.2-2 MQTT with level 3 is UnsupportedProtocolVersion",
		Version: packet.V31,
		Raw:     []byte{0x10, 12, 0, 4, 'M', 'Q', 'T', 'T', 3, 0x02, 0, 60, 0, 0},
		WantErr: packet.UnsupportedProtocolVersion,
	},
	{
		Name:    "MQTT-3.1.2-1 unknown protocol name is UnsupportedProtocolVersion",
		Version: packet.V311,
		Raw:     []byte{0x10, 12, 0, 4, 'M', 'Q', 'T', 'X', 4, 0x02, 0, 60, 0, 0},
		WantErr: packet.UnsupportedProtocolVersion,
	},
	{
		Name:    "MQTT-3.1.2-3 reserved flag 1 is malformed",
		Version: packet.V311,
		Raw:     []byte{0x10, 12, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x03, 0, 60, 0, 0},
		WantErr: packet.MalformedPacket,
	},
	{
		Name:    "MQTT-3.1.2-11 will QoS without will flag is malformed",
		Version: packet.V311,
		Raw:     []byte{0x10, 12, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x0A, 0, 60, 0, 0},
		WantErr: packet.MalformedPacket,
	},
	{
		Name:    "MQTT-3.1.2-13 will retain without will flag is malformed",
		Version: packet.V5,
		Raw:     []byte{0x10, 13, 0, 4, 'M', 'Q', 'T', 'T', 5, 0x22, 0, 60, 0, 0, 0},
		WantErr: packet.MalformedPacket,
	},
	{
		Name:    "MQTT-3.1.2-14 will QoS 3 is malformed",
		Version: packet.V311,
		Raw:     []byte{0x10, 18, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x1E, 0, 60, 0, 1, 'c', 0, 1, 't', 0, 0},
		WantErr: packet.MalformedPacket,
	},
	{
		Name:    "MQTT-3.1.2-22 3.1.1 password without user name is malformed",
		Version: packet.V311,
		Raw:     []byte{0x10, 16, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x42, 0, 60, 0, 1, 'c', 0, 1, 'p'},
		WantErr: packet.MalformedPacket,
	},
	{
		Name:    "MQTT-3.1.2-9 will flag without will topic is malformed",
		Version: packet.V311,
		Raw:     []byte{0x10, 13, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x06, 0, 60, 0, 1, 'c'},
		WantErr: packet.MalformedPacket,
	},
	{
		Name:    "MQTT-3.1.2-19 password flag without password is malformed",
		Version: packet.V5,
		Raw:     []byte{0x10, 14, 0, 4, 'M', 'Q', 'T', 'T', 5, 0x42, 0, 60, 0, 0, 1, 'c'},
		WantErr: packet.MalformedPacket,
	},
	{
		Name:    "MQTT-3.3.2-2 will topic with a wildcard is TopicNameInvalid",
		Version: packet.V311,
		Raw:     []byte{0x10, 20, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x06, 0, 60, 0, 1, 'c', 0, 3, 'a', '/', '#', 0, 0},
		WantErr: packet.TopicNameInvalid,
	},
	{
		Name:    "MQTT-4.7.3-1 5.0 empty will topic is TopicNameInvalid",
		Version: packet.V5,
		Raw:     []byte{0x10, 19, 0, 4, 'M', 'Q', 'T', 'T', 5, 0x06, 0, 60, 0, 0, 1, 'c', 0, 0, 0, 0, 0},
		WantErr: packet.TopicNameInvalid,
	},
	{
		Name:    "MQTT-1.5.4-2 client identifier with U+0000 is malformed",
		Version: packet.V311,
		Raw:     []byte{0x10, 13, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 60, 0, 1, 0},
		WantErr: packet.MalformedPacket,
	},
	{
		Name:    "MQTT-1.5.4-1 client identifier with a surrogate is malformed",
		Version: packet.V311,
		Raw:     []byte{0x10, 15, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 60, 0, 3, 0xED, 0xA0, 0x80},
		WantErr: packet.MalformedPacket,
	},
	{
		Name:    "MQTT-3.1.4-1 bytes after the payload are malformed",
		Version: packet.V311,
		Raw:     []byte{0x10, 14, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 60, 0, 1, 'c', 0xFF},
		WantErr: packet.MalformedPacket,
	},
	{
		Name:    "3.1.2.11.3 receive maximum 0 is a protocol error",
		Version: packet.V5,
		Raw:     []byte{0x10, 16, 0, 4, 'M', 'Q', 'T', 'T', 5, 0x02, 0, 60, 3, 0x21, 0, 0, 0, 0},
		WantErr: packet.ProtocolError,
	},
	{
		Name:    "3.1.2.11.2 session expiry interval twice is a protocol error",
		Version: packet.V5,
		Raw:     []byte{0x10, 23, 0, 4, 'M', 'Q', 'T', 'T', 5, 0x02, 0, 60, 10, 0x11, 0, 0, 0, 1, 0x11, 0, 0, 0, 2, 0, 0},
		WantErr: packet.ProtocolError,
	},
	{
		Name:    "2.2.2.2 topic alias in CONNECT is malformed",
		Version: packet.V5,
		Raw:     []byte{0x10, 16, 0, 4, 'M', 'Q', 'T', 'T', 5, 0x02, 0, 60, 3, 0x23, 0, 1, 0, 0},
		WantErr: packet.MalformedPacket,
	},
	{
		Name:    "3.1.2.11.10 authentication data without a method is a protocol error",
		Version: packet.V5,
		Raw:     []byte{0x10, 17, 0, 4, 'M', 'Q', 'T', 'T', 5, 0x02, 0, 60, 4, 0x16, 0, 1, 9, 0, 0},
		WantErr: packet.ProtocolError,
	},
	{
		Name:    "2.2.2.1 property length past the end is malformed",
		Version: packet.V5,
		Raw:     []byte{0x10, 13, 0, 4, 'M', 'Q', 'T', 'T', 5, 0x02, 0, 60, 9, 0x21, 0},
		WantErr: packet.MalformedPacket,
	},
	{
		Name:    "3.1.2.11.7 request problem information 2 is a protocol error",
		Version: packet.V5,
		Raw:     []byte{0x10, 15, 0, 4, 'M', 'Q', 'T', 'T', 5, 0x02, 0, 60, 2, 0x17, 2, 0, 0},
		WantErr: packet.ProtocolError,
	},
	{
		Name:    "3.1.2.11.4 maximum packet size 0 is a protocol error",
		Version: packet.V5,
		Raw:     []byte{0x10, 18, 0, 4, 'M', 'Q', 'T', 'T', 5, 0x02, 0, 60, 5, 0x27, 0, 0, 0, 0, 0, 0},
		WantErr: packet.ProtocolError,
	},
	{
		Name:    "3.1.3.2.3 will payload not UTF-8 with payload format 1 is PayloadFormatInvalid",
		Version: packet.V5,
		Raw:     []byte{0x10, 23, 0, 4, 'M', 'Q', 'T', 'T', 5, 0x06, 0, 60, 0, 0, 1, 'c', 2, 0x01, 1, 0, 1, 't', 0, 1, 0xFF},
		WantErr: packet.PayloadFormatInvalid,
	},
	{
		Name:    "MQTT-3.3.2-14 will response topic with a wildcard is a protocol error",
		Version: packet.V5,
		Raw:     []byte{0x10, 24, 0, 4, 'M', 'Q', 'T', 'T', 5, 0x06, 0, 60, 0, 0, 1, 'c', 4, 0x08, 0, 1, '#', 0, 1, 't', 0, 0},
		WantErr: packet.ProtocolError,
	},
	{
		Name:    "2.2.2.2 will delay in CONNECT properties is malformed",
		Version: packet.V5,
		Raw:     []byte{0x10, 18, 0, 4, 'M', 'Q', 'T', 'T', 5, 0x02, 0, 60, 5, 0x18, 0, 0, 0, 1, 0, 0},
		WantErr: packet.MalformedPacket,
	},
}
