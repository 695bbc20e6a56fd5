package packettest

import "github.com/turnstilemq/turnstile/internal/packet"

// Connack is the CONNACK table (3.2).
var Connack = []Case{
	{
		Name:    "3.2 3.1.1 connection accepted",
		Version: packet.V311,
		Raw:     []byte{0x20, 2, 0x00, 0x00},
		Packet:  &packet.Connack{},
	},
	{
		Name:    "MQTT-3.2.2-2 3.1.1 session present",
		Version: packet.V311,
		Raw:     []byte{0x20, 2, 0x01, 0x00},
		Packet:  &packet.Connack{SessionPresent: true},
	},
	{
		Name:    "3.2.2.3 3.1.1 return code 5 is NotAuthorized",
		Version: packet.V311,
		Raw:     []byte{0x20, 2, 0x00, 0x05},
		Packet:  &packet.Connack{ReasonCode: packet.NotAuthorized},
	},
	{
		Name:    "3.2.2.3 3.1.1 return code 4 is BadUserNameOrPassword",
		Version: packet.V311,
		Raw:     []byte{0x20, 2, 0x00, 0x04},
		Packet:  &packet.Connack{ReasonCode: packet.BadUserNameOrPassword},
	},
	{
		Name:       "3.2.2.3 3.1.1 ServerBusy is written as return code 3",
		Version:    packet.V311,
		Raw:        []byte{0x20, 2, 0x00, 0x03},
		Packet:     &packet.Connack{ReasonCode: packet.ServerBusy},
		EncodeOnly: true,
	},
	{
		Name:    "3.2.2.3 5.0 success with properties",
		Version: packet.V5,
		Raw: []byte{
			0x20, 33,
			0x00,                      // acknowledge flags
			0x00,                      // reason code
			30,                        // property length
			0x12, 0, 3, 'a', 'b', 'c', // assigned client identifier
			0x13, 0, 30, // server keep alive
			0x21, 0, 100, // receive maximum
			0x22, 0, 10, // topic alias maximum
			0x24, 1, // maximum QoS
			0x25, 0, // retain available
			0x27, 0, 1, 0, 0, // maximum packet size 65536
			0x28, 1, // wildcard subscription available
			0x29, 0, // subscription identifiers available
			0x2A, 1, // shared subscription available
		},
		Packet: &packet.Connack{Props: packet.Properties{
			AssignedClientID: "abc",
			ServerKeepAlive:  30, HasServerKeepAlive: true,
			ReceiveMaximum: 100, HasReceiveMaximum: true,
			TopicAliasMaximum: 10, HasTopicAliasMaximum: true,
			MaximumQoS: 1, HasMaximumQoS: true,
			HasRetainAvailable: true,
			MaximumPacketSize:  65536, HasMaximumPacketSize: true,
			WildcardSubAvailable: 1, HasWildcardSubAvailable: true,
			HasSubIDAvailable:  true,
			SharedSubAvailable: 1, HasSharedSubAvailable: true,
		}},
	},
	{
		Name:    "3.2.2.2 5.0 not authorized with a reason string",
		Version: packet.V5,
		Raw:     []byte{0x20, 12, 0x00, 0x87, 9, 0x1F, 0, 6, 'b', 'a', 'n', 'n', 'e', 'd'},
		Packet:  &packet.Connack{ReasonCode: packet.NotAuthorized, Props: packet.Properties{ReasonString: "banned"}},
	},
	{
		Name:    "3.2.2.3.16 5.0 server moved with a server reference",
		Version: packet.V5,
		Raw:     []byte{0x20, 10, 0x00, 0x9D, 7, 0x1C, 0, 4, 'h', 'o', 's', 't'},
		Packet:  &packet.Connack{ReasonCode: packet.ServerMoved, Props: packet.Properties{ServerReference: "host"}},
	},

	// Refused.
	{
		Name:    "MQTT-3.2.2-1 reserved acknowledge flags are malformed",
		Version: packet.V311,
		Raw:     []byte{0x20, 2, 0x02, 0x00},
		WantErr: packet.MalformedPacket,
	},
	{
		Name:    "3.2.2.3 3.1.1 return code 6 is malformed",
		Version: packet.V311,
		Raw:     []byte{0x20, 2, 0x00, 0x06},
		WantErr: packet.MalformedPacket,
	},
	{
		Name:    "MQTT-3.2.2-6 session present with a failure is a protocol error",
		Version: packet.V5,
		Raw:     []byte{0x20, 3, 0x01, 0x80, 0},
		WantErr: packet.ProtocolError,
	},
	{
		Name:    "3.2.2.2 reason code 0x04 is not a CONNACK code",
		Version: packet.V5,
		Raw:     []byte{0x20, 3, 0x00, 0x04, 0},
		WantErr: packet.ProtocolError,
	},
	{
		Name:    "3.2.2.3.4 maximum QoS 2 is a protocol error",
		Version: packet.V5,
		Raw:     []byte{0x20, 5, 0x00, 0x00, 2, 0x24, 2},
		WantErr: packet.ProtocolError,
	},
	{
		Name:    "3.2.2.3.5 retain available twice is a protocol error",
		Version: packet.V5,
		Raw:     []byte{0x20, 7, 0x00, 0x00, 4, 0x25, 1, 0x25, 1},
		WantErr: packet.ProtocolError,
	},
	{
		Name:    "MQTT-2.2.2-1 5.0 CONNACK without a property length is malformed",
		Version: packet.V5,
		Raw:     []byte{0x20, 2, 0x00, 0x00},
		WantErr: packet.MalformedPacket,
	},
	{
		Name:    "MQTT-2.1.3-1 CONNACK flags 0001 are malformed",
		Version: packet.V311,
		Raw:     []byte{0x21, 2, 0x00, 0x00},
		WantErr: packet.MalformedPacket,
	},
}

// Puback is the PUBACK table (3.4).
var Puback = []Case{
	{
		Name:    "3.4 3.1.1 packet identifier only",
		Version: packet.V311,
		Raw:     []byte{0x40, 2, 0, 1},
		Packet:  &packet.Puback{PacketID: 1},
	},
	{
		Name:    "3.4.2.1 5.0 remaining length 2 is Success without properties",
		Version: packet.V5,
		Raw:     []byte{0x40, 2, 0, 1},
		Packet:  &packet.Puback{PacketID: 1},
	},
	{
		Name:       "3.4.2.2 5.0 reason code without property length",
		Version:    packet.V5,
		Raw:        []byte{0x40, 3, 0, 1, 0x10},
		Packet:     &packet.Puback{PacketID: 1, ReasonCode: packet.NoMatchingSubscribers},
		DecodeOnly: true,
	},
	{
		Name:    "3.4.2.2 5.0 reason code with property length 0",
		Version: packet.V5,
		Raw:     []byte{0x40, 4, 0, 1, 0x10, 0},
		Packet:  &packet.Puback{PacketID: 1, ReasonCode: packet.NoMatchingSubscribers},
	},
	{
		Name:    "3.4.2.2.2 5.0 not authorized with a reason string",
		Version: packet.V5,
		Raw:     []byte{0x40, 9, 0, 2, 0x87, 5, 0x1F, 0, 2, 'n', 'o'},
		Packet:  &packet.Puback{PacketID: 2, ReasonCode: packet.NotAuthorized, Props: packet.Properties{ReasonString: "no"}},
	},
	{
		Name:    "3.4.2.2.3 5.0 success with a user property is not the short form",
		Version: packet.V5,
		Raw:     []byte{0x40, 11, 0, 3, 0x00, 7, 0x26, 0, 1, 'a', 0, 1, 'b'},
		Packet:  &packet.Puback{PacketID: 3, Props: packet.Properties{User: []packet.UserProperty{{Key: "a", Value: "b"}}}},
	},

	// Refused.
	{
		Name:    "MQTT-3.4.2-1 reason code 0x92 is not a PUBACK code",
		Version: packet.V5,
		Raw:     []byte{0x40, 4, 0, 1, 0x92, 0},
		WantErr: packet.ProtocolError,
	},
	{
		Name:    "3.4 3.1.1 PUBACK of 3 bytes is malformed",
		Version: packet.V311,
		Raw:     []byte{0x40, 3, 0, 1, 0},
		WantErr: packet.MalformedPacket,
	},
	{
		Name:    "3.4 PUBACK of 1 byte is malformed",
		Version: packet.V5,
		Raw:     []byte{0x40, 1, 0},
		WantErr: packet.MalformedPacket,
	},
	{
		Name:    "2.2.2.2 topic alias in PUBACK is malformed",
		Version: packet.V5,
		Raw:     []byte{0x40, 7, 0, 1, 0x00, 3, 0x23, 0, 1},
		WantErr: packet.MalformedPacket,
	},
	{
		Name:    "3.4.2.2.2 reason string twice is a protocol error",
		Version: packet.V5,
		Raw:     []byte{0x40, 12, 0, 1, 0x00, 8, 0x1F, 0, 1, 'a', 0x1F, 0, 1, 'b'},
		WantErr: packet.ProtocolError,
	},
	{
		Name:    "3.4 bytes after the properties are malformed",
		Version: packet.V5,
		Raw:     []byte{0x40, 5, 0, 1, 0x00, 0, 0xFF},
		WantErr: packet.MalformedPacket,
	},
}

// Pubrec is the PUBREC table (3.5).
var Pubrec = []Case{
	{
		Name:    "3.5 3.1.1 packet identifier only",
		Version: packet.V311,
		Raw:     []byte{0x50, 2, 0, 5},
		Packet:  &packet.Pubrec{PacketID: 5},
	},
	{
		Name:    "3.5.2.1 5.0 unspecified error",
		Version: packet.V5,
		Raw:     []byte{0x50, 4, 0, 5, 0x80, 0},
		Packet:  &packet.Pubrec{PacketID: 5, ReasonCode: packet.UnspecifiedError},
	},
	{
		Name:       "3.5.2.2 5.0 quota exceeded without property length",
		Version:    packet.V5,
		Raw:        []byte{0x50, 3, 0, 5, 0x97},
		Packet:     &packet.Pubrec{PacketID: 5, ReasonCode: packet.QuotaExceeded},
		DecodeOnly: true,
	},
	{
		Name:    "MQTT-3.5.2-1 reason code 0x92 is not a PUBREC code",
		Version: packet.V5,
		Raw:     []byte{0x50, 4, 0, 5, 0x92, 0},
		WantErr: packet.ProtocolError,
	},
}

// Pubrel is the PUBREL table (3.6).
var Pubrel = []Case{
	{
		Name:    "MQTT-3.6.1-1 3.1.1 flags 0010",
		Version: packet.V311,
		Raw:     []byte{0x62, 2, 0, 5},
		Packet:  &packet.Pubrel{PacketID: 5},
	},
	{
		Name:    "3.6.2.1 5.0 remaining length 2 is Success",
		Version: packet.V5,
		Raw:     []byte{0x62, 2, 0, 5},
		Packet:  &packet.Pubrel{PacketID: 5},
	},
	{
		Name:    "3.6.2.1 5.0 packet identifier not found",
		Version: packet.V5,
		Raw:     []byte{0x62, 4, 0, 5, 0x92, 0},
		Packet:  &packet.Pubrel{PacketID: 5, ReasonCode: packet.PacketIdentifierNotFound},
	},
	{
		Name:    "MQTT-3.6.2-1 reason code 0x80 is not a PUBREL code",
		Version: packet.V5,
		Raw:     []byte{0x62, 4, 0, 5, 0x80, 0},
		WantErr: packet.ProtocolError,
	},
	{
		Name:    "MQTT-3.6.1-1 flags 0000 are malformed",
		Version: packet.V311,
		Raw:     []byte{0x60, 2, 0, 5},
		WantErr: packet.MalformedPacket,
	},
}

// Pubcomp is the PUBCOMP table (3.7).
var Pubcomp = []Case{
	{
		Name:    "3.7 3.1.1 packet identifier only",
		Version: packet.V311,
		Raw:     []byte{0x70, 2, 0, 5},
		Packet:  &packet.Pubcomp{PacketID: 5},
	},
	{
		Name:    "3.7.2.2 5.0 packet identifier not found with a reason string",
		Version: packet.V5,
		Raw:     []byte{0x70, 9, 0, 5, 0x92, 5, 0x1F, 0, 2, 'i', 'd'},
		Packet:  &packet.Pubcomp{PacketID: 5, ReasonCode: packet.PacketIdentifierNotFound, Props: packet.Properties{ReasonString: "id"}},
	},
	{
		Name:    "MQTT-3.7.2-1 reason code 0x10 is not a PUBCOMP code",
		Version: packet.V5,
		Raw:     []byte{0x70, 4, 0, 5, 0x10, 0},
		WantErr: packet.ProtocolError,
	},
	{
		Name:    "MQTT-2.1.3-1 PUBCOMP flags 0010 are malformed",
		Version: packet.V5,
		Raw:     []byte{0x72, 2, 0, 5},
		WantErr: packet.MalformedPacket,
	},
}

// Pingreq is the PINGREQ table (3.12).
var Pingreq = []Case{
	{Name: "3.12 3.1.1", Version: packet.V311, Raw: []byte{0xC0, 0}, Packet: &packet.Pingreq{}},
	{Name: "3.12 5.0", Version: packet.V5, Raw: []byte{0xC0, 0}, Packet: &packet.Pingreq{}},
	{Name: "3.12 a body is malformed", Version: packet.V311, Raw: []byte{0xC0, 1, 0}, WantErr: packet.MalformedPacket},
	{Name: "MQTT-2.1.3-1 flags 0001 are malformed", Version: packet.V5, Raw: []byte{0xC1, 0}, WantErr: packet.MalformedPacket},
}

// Pingresp is the PINGRESP table (3.13).
var Pingresp = []Case{
	{Name: "3.13 3.1.1", Version: packet.V311, Raw: []byte{0xD0, 0}, Packet: &packet.Pingresp{}},
	{Name: "3.13 5.0", Version: packet.V5, Raw: []byte{0xD0, 0}, Packet: &packet.Pingresp{}},
	{Name: "3.13 a body is malformed", Version: packet.V5, Raw: []byte{0xD0, 1, 0}, WantErr: packet.MalformedPacket},
}

// Disconnect is the DISCONNECT table (3.14).
var Disconnect = []Case{
	{Name: "3.14 3.1.1 has no body", Version: packet.V311, Raw: []byte{0xE0, 0}, Packet: &packet.Disconnect{}},
	{Name: "3.14.2.1 5.0 remaining length 0 is Normal disconnection", Version: packet.V5, Raw: []byte{0xE0, 0}, Packet: &packet.Disconnect{}},
	{
		Name:       "3.14.2.2 5.0 reason code without property length",
		Version:    packet.V5,
		Raw:        []byte{0xE0, 1, 0x04},
		Packet:     &packet.Disconnect{ReasonCode: packet.DisconnectWithWill},
		DecodeOnly: true,
	},
	{
		Name:    "3.14.2.1 5.0 disconnect with will message",
		Version: packet.V5,
		Raw:     []byte{0xE0, 2, 0x04, 0},
		Packet:  &packet.Disconnect{ReasonCode: packet.DisconnectWithWill},
	},
	{
		Name:    "3.14.2.2 5.0 use another server with properties",
		Version: packet.V5,
		Raw: []byte{
			0xE0, 15,
			0x9C, // use another server
			13,
			0x11, 0, 0, 0, 0, // session expiry interval 0
			0x1C, 0, 1, 's', // server reference
			0x1F, 0, 1, 'r', // reason string
		},
		Packet: &packet.Disconnect{ReasonCode: packet.UseAnotherServer, Props: packet.Properties{
			HasSessionExpiry: true, ServerReference: "s", ReasonString: "r",
		}},
	},
	{Name: "3.14 3.1.1 a body is malformed", Version: packet.V311, Raw: []byte{0xE0, 1, 0}, WantErr: packet.MalformedPacket},
	{Name: "MQTT-3.14.1-1 reserved flags are malformed", Version: packet.V5, Raw: []byte{0xE1, 0}, WantErr: packet.MalformedPacket},
	{Name: "MQTT-3.14.2-1 reason code 0x01 is a protocol error", Version: packet.V5, Raw: []byte{0xE0, 1, 0x01}, WantErr: packet.ProtocolError},
	{Name: "2.2.2.2 topic alias in DISCONNECT is malformed", Version: packet.V5, Raw: []byte{0xE0, 5, 0x00, 3, 0x23, 0, 1}, WantErr: packet.MalformedPacket},
}

// Auth is the AUTH table (3.15).
var Auth = []Case{
	{Name: "3.15.2.1 remaining length 0 is Success", Version: packet.V5, Raw: []byte{0xF0, 0}, Packet: &packet.Auth{}},
	{
		Name:    "3.15.2.2 continue authentication",
		Version: packet.V5,
		Raw: []byte{
			0xF0, 16,
			0x18, // continue authentication
			14,
			0x15, 0, 5, 'S', 'C', 'R', 'A', 'M', // authentication method
			0x16, 0, 3, 1, 2, 3, // authentication data
		},
		Packet: &packet.Auth{ReasonCode: packet.ContinueAuthentication, Props: packet.Properties{AuthMethod: "SCRAM", AuthData: []byte{1, 2, 3}}},
	},
	{
		Name:    "3.15.2.1 re-authenticate",
		Version: packet.V5,
		Raw:     []byte{0xF0, 10, 0x19, 8, 0x15, 0, 5, 'S', 'C', 'R', 'A', 'M'},
		Packet:  &packet.Auth{ReasonCode: packet.ReAuthenticate, Props: packet.Properties{AuthMethod: "SCRAM"}},
	},
	{
		Name:       "3.15 AUTH is not written before 5.0",
		Version:    packet.V311,
		Raw:        []byte{},
		Packet:     &packet.Auth{ReasonCode: packet.ContinueAuthentication, Props: packet.Properties{AuthMethod: "SCRAM"}},
		EncodeOnly: true,
	},
	{Name: "2.1.2 AUTH before 5.0 is malformed", Version: packet.V311, Raw: []byte{0xF0, 0}, WantErr: packet.MalformedPacket},
	{
		Name:    "MQTT-3.15.2-1 reason code 0x04 is a protocol error",
		Version: packet.V5,
		Raw:     []byte{0xF0, 10, 0x04, 8, 0x15, 0, 5, 'S', 'C', 'R', 'A', 'M'},
		WantErr: packet.ProtocolError,
	},
	{Name: "3.15.2.2.2 AUTH without an authentication method is a protocol error", Version: packet.V5, Raw: []byte{0xF0, 2, 0x18, 0}, WantErr: packet.ProtocolError},
	{Name: "MQTT-3.15.1-1 reserved flags are malformed", Version: packet.V5, Raw: []byte{0xF1, 0}, WantErr: packet.MalformedPacket},
}
