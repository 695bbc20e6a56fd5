// Package bench is Turnstile's MQTT load generator, behind `turnstile bench`. It drives any broker
// over raw connections with packets encoded once, at start, by package packet: a publisher only
// rewrites the timestamp, sequence number and packet identifier bytes of its pre-encoded PUBLISH
// and writes them in batches, and a subscriber parses what it receives in place. So the figures
// measure the broker, not a client library.
//
// Every payload starts with 16 bytes: the send time (nanoseconds on the bench's clock, see
// clock), the publisher's index and its sequence number. Subscribers turn them into latency
// (a fixed-bucket Histogram, no allocation per message) and into gaps and duplicates per
// publisher.
//
// It imports the codec only, never the broker: tests start a broker in-process, bench/compare
// runs the same scenarios against Turnstile, Mosquitto and Mochi.
package bench
