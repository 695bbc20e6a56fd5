// Package packet is Turnstile's MQTT codec: it turns bytes into typed packets and back for MQTT 3.1,
// 3.1.1 and 5.0, and validates them against the specification's normative statements.
//
// It owns the wire format only: fixed headers, Remaining Length, properties, reason codes, UTF-8 rules,
// reserved flags and topic-name syntax. It imports nothing from the network, the broker, auth or
// storage. Decoding errors carry the reason code that the connection layer sends (CONNACK or
// DISCONNECT for v5, a close for 3.1.1); find it with errors.As(err, &code).
//
// Reading: ReadFixedHeader or DecodeFixedHeader (ErrIncomplete on a partial buffer), a Maximum Packet
// Size check on the Remaining Length, then Decode, or DecodePublish into a reused Publish on the hot
// path. Writing: Size and Append, or Publish.Size and Publish.Append; Append allocates nothing when the
// buffer has room. Golden packets for tests are in the packettest subpackage.
package packet
