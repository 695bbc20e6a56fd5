package store

import (
	"encoding/binary"
	"fmt"
)

// Key layout. One prefix byte per record kind; vhost and client id are length-prefixed
// (uvarint), so no key of one session is a prefix of another session's keys ("a" and "ab" have
// disjoint ranges) and no escaping is needed; numbers are big-endian fixed width, so iteration
// is in numeric order.
//
//	's' vhost clientID              -> SessionRecord (without Vhost, ClientID, Subscriptions)
//	'u' vhost clientID group filter(rest of key) -> SubscriptionRecord (without Filter, Group)
//	'q' vhost clientID seq(8)       -> QueueEntry (without Seq)
//	'i' vhost clientID pid(2)       -> version byte only
//	'm' id(8)                       -> MessageRecord
//	'r' vhost topic(rest of key)    -> MessageRecord (Topic included)
//	'd'                             -> the definitions document
//	'k' namespace key(rest of key)  -> an opaque record of a namespace (access keys, revocations, bans)
//	'v'                             -> the store format version (format.go)
//	't'                             -> the ticket of the last group commit (durable.go)
const (
	kindSession  = 's'
	kindQueue    = 'q'
	kindInbound  = 'i'
	kindMessage  = 'm'
	kindRetained = 'r'
	kindDefs     = 'd'
	kindRecord   = 'k'
	kindSub      = 'u'
	kindFormat   = 'v'
	kindTicket   = 't'
)

// clientPrefix is kind | len(vhost) vhost | len(clientID) clientID, with room for extra bytes.
func clientPrefix(kind byte, vhost, clientID string, extra int) []byte {
	b := make([]byte, 0, 1+2*binary.MaxVarintLen32+len(vhost)+len(clientID)+extra)
	b = append(b, kind)
	b = appendString(b, vhost)
	return appendString(b, clientID)
}

func sessionKey(vhost, clientID string) []byte { return clientPrefix(kindSession, vhost, clientID, 0) }

func subscriptionKey(vhost, clientID, group, filter string) []byte {
	b := clientPrefix(kindSub, vhost, clientID, binary.MaxVarintLen32+len(group)+len(filter))
	b = appendString(b, group)
	return append(b, filter...)
}

// parseSubscriptionKey returns the group and filter of a 'u' key.
func parseSubscriptionKey(key []byte) (group, filter string, err error) {
	_, _, rest, err := parseClientKey(key)
	if err != nil {
		return "", "", err
	}
	d := &decoder{rec: "key", b: rest}
	group = d.str("group")
	return group, string(d.b), d.err
}

func queueKey(vhost, clientID string, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(clientPrefix(kindQueue, vhost, clientID, 8), seq)
}

func inboundKey(vhost, clientID string, pid uint16) []byte {
	return binary.BigEndian.AppendUint16(clientPrefix(kindInbound, vhost, clientID, 2), pid)
}

func messageKey(id uint64) []byte {
	return binary.BigEndian.AppendUint64(append(make([]byte, 0, 9), kindMessage), id)
}

func retainedKey(vhost, topic string) []byte {
	b := make([]byte, 0, 1+binary.MaxVarintLen32+len(vhost)+len(topic))
	b = append(b, kindRetained)
	b = appendString(b, vhost)
	return append(b, topic...)
}

// prefixEnd returns the smallest key greater than every key that starts with p.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil // p is all 0xff: no upper bound (never happens: kinds are ASCII)
}

// kindBounds returns the key range of one record kind.
func kindBounds(kind byte) (lower, upper []byte) { return []byte{kind}, []byte{kind + 1} }

// keyReader takes a key apart; errors name the key part.
func keyReader(key []byte) *decoder { return &decoder{rec: "key", b: key[1:]} }

// parseClientKey returns the vhost, client id and the rest of a 's', 'u', 'q' or 'i' key.
func parseClientKey(key []byte) (vhost, clientID string, rest []byte, err error) {
	if len(key) == 0 {
		return "", "", nil, &DecodeError{Record: "key", Field: "kind", Err: errTruncated}
	}
	d := keyReader(key)
	vhost = d.str("vhost")
	clientID = d.str("clientID")
	return vhost, clientID, d.b, d.err
}

func parseQueueKey(key []byte) (vhost, clientID string, seq uint64, err error) {
	vhost, clientID, rest, err := parseClientKey(key)
	if err == nil && len(rest) != 8 {
		err = &DecodeError{Record: "key", Field: "seq", Err: fmt.Errorf("%d bytes, want 8", len(rest))}
	}
	if err != nil {
		return "", "", 0, err
	}
	return vhost, clientID, binary.BigEndian.Uint64(rest), nil
}

func parseInboundKey(key []byte) (pid uint16, err error) {
	_, _, rest, err := parseClientKey(key)
	if err == nil && len(rest) != 2 {
		err = &DecodeError{Record: "key", Field: "packetID", Err: fmt.Errorf("%d bytes, want 2", len(rest))}
	}
	if err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint16(rest), nil
}

func parseMessageKey(key []byte) (uint64, error) {
	if len(key) != 9 {
		return 0, &DecodeError{Record: "key", Field: "messageID", Err: fmt.Errorf("%d bytes, want 9", len(key))}
	}
	return binary.BigEndian.Uint64(key[1:]), nil
}

func parseRetainedKey(key []byte) (vhost, topic string, err error) {
	if len(key) == 0 {
		return "", "", &DecodeError{Record: "key", Field: "kind", Err: errTruncated}
	}
	d := keyReader(key)
	vhost = d.str("vhost")
	return vhost, string(d.b), d.err
}

// recordKey is kind | len(ns) ns | key.
func recordKey(ns, key string) []byte {
	b := make([]byte, 0, 1+binary.MaxVarintLen32+len(ns)+len(key))
	b = append(b, kindRecord)
	b = appendString(b, ns)
	return append(b, key...)
}

// recordPrefix is the key prefix of every record of namespace ns.
func recordPrefix(ns string) []byte {
	b := make([]byte, 0, 1+binary.MaxVarintLen32+len(ns))
	return appendString(append(b, kindRecord), ns)
}
