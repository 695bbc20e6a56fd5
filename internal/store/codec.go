package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Record encoding. Every value starts with its record version byte. Then, per record:
//
//	MessageRecord (1): Topic str | Payload bytes | QoS u8 | flags u8 (1 Retain) | Props bytes | Expiry varint
//	QueueEntry (1):    MsgID uvarint | QoS u8 | flags u8 (1 Retain) | SubIDs list(uvarint) | State u8 | PacketID uvarint
//	subscription (1):  QoS u8 | flags u8 (1 NoLocal, 2 RetainAsPublished) | RetainHandling u8 | ID uvarint
//	                   (vhost, client id, group and filter are in the key)
//	SessionRecord (2): Version u8 | ExpiryInterval uvarint | DisconnectedAt varint |
//	                   will presence u8 (0 or 1) [will | EarnedAt varint | identity] | User str | identity
//	SessionRecord (1): Version u8 | ExpiryInterval uvarint | DisconnectedAt varint |
//	                   Subscriptions list(Filter str | Group str | subscription without its version byte) |
//	                   will presence u8 (0 or 1) [will] | User str
//	                   (still read: written before subscriptions had records of their own)
//	will:              Topic str | Payload bytes | QoS u8 | flags u8 (1 Retain, 2 HasExpiry) | Props bytes |
//	                   Delay uvarint | ExpiryInterval uvarint | DueAt varint
//	identity:          presence u8 (0 or 1) [User str | Subject str | Issuer str | Vhost str | Method str |
//	                   GrantsSource str | Tags list(str) | Grants list(Action str | Pattern str) |
//	                   Scoped presence u8 [Configure str | Write str | Read str | TopicWrite str | TopicRead str] |
//	                   NotBefore varint | Expiry varint |
//	                   Creds list(Kind str | Type str | ID str | KeyID str | Subject str | Expiry varint | Hash 32 bytes) |
//	                   Generation uvarint]
//	inbound id (1):    nothing after the version byte
//
// str is uvarint(len) then the bytes. bytes and list are uvarint(n+1) then the n items, with 0
// meaning nil, so nil and empty survive a round trip. varint is zig-zag (encoding/binary).
// What a key already holds (vhost, client id, Seq, packet id, group, filter) is not repeated
// in the value, except the topic of a retained message, which shares MessageRecord's encoding.
const (
	recordVersion  = 1
	sessionVersion = 2
)

// Flag bits.
const (
	flagRetain    = 1 << 0 // MessageRecord, QueueEntry, will
	flagHasExpiry = 1 << 1 // will
	flagNoLocal   = 1 << 0 // subscription
	flagRAP       = 1 << 1 // subscription
)

// DecodeError reports a record that cannot be decoded, naming the record and the field.
type DecodeError struct {
	Record string // "SessionRecord", "QueueEntry", "MessageRecord", "key", ...
	Field  string // "Subscriptions[2].Filter", "Will.Payload", "version", ...
	Err    error
}

func (e *DecodeError) Error() string {
	return "store: decoding " + e.Record + "." + e.Field + ": " + e.Err.Error()
}

func (e *DecodeError) Unwrap() error { return e.Err }

var (
	errTruncated = errors.New("truncated")
	errOverflow  = errors.New("value out of range")
	errTrailing  = errors.New("trailing bytes")
	errFlags     = errors.New("unknown flag bits")
)

// ---- encoding ----

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendBytes(b, p []byte) []byte {
	if p == nil {
		return append(b, 0)
	}
	b = binary.AppendUvarint(b, uint64(len(p))+1)
	return append(b, p...)
}

func appendBool(flags byte, v bool, bit byte) byte {
	if v {
		flags |= bit
	}
	return flags
}

func appendMessage(b []byte, m *MessageRecord) []byte {
	b = append(b, recordVersion)
	b = appendString(b, m.Topic)
	b = appendBytes(b, m.Payload)
	b = append(b, m.QoS, appendBool(0, m.Retain, flagRetain))
	b = appendBytes(b, m.Props)
	return binary.AppendVarint(b, m.Expiry)
}

func appendQueueEntry(b []byte, e *QueueEntry) []byte {
	b = append(b, recordVersion)
	b = binary.AppendUvarint(b, e.MsgID)
	b = append(b, e.QoS, appendBool(0, e.Retain, flagRetain))
	if e.SubIDs == nil {
		b = append(b, 0)
	} else {
		b = binary.AppendUvarint(b, uint64(len(e.SubIDs))+1)
		for _, id := range e.SubIDs {
			b = binary.AppendUvarint(b, uint64(id))
		}
	}
	b = append(b, e.State)
	return binary.AppendUvarint(b, uint64(e.PacketID))
}

func appendSession(b []byte, r *SessionRecord) []byte {
	b = append(b, sessionVersion, r.Version)
	b = binary.AppendUvarint(b, uint64(r.ExpiryInterval))
	b = binary.AppendVarint(b, r.DisconnectedAt)
	w := r.Will
	if w == nil {
		b = append(b, 0)
	} else {
		b = append(b, 1)
		b = appendString(b, w.Topic)
		b = appendBytes(b, w.Payload)
		b = append(b, w.QoS, appendBool(appendBool(0, w.Retain, flagRetain), w.HasExpiry, flagHasExpiry))
		b = appendBytes(b, w.Props)
		b = binary.AppendUvarint(b, uint64(w.Delay))
		b = binary.AppendUvarint(b, uint64(w.ExpiryInterval))
		b = binary.AppendVarint(b, w.DueAt)
		b = binary.AppendVarint(b, w.EarnedAt)
		b = appendIdentity(b, w.Identity)
	}
	b = appendString(b, r.User)
	return appendIdentity(b, r.Identity)
}

// appendSessionV1 is the encoding of version 1, for tests of the conversion.
func appendSessionV1(b []byte, r *SessionRecord) []byte {
	b = append(b, 1, r.Version)
	b = binary.AppendUvarint(b, uint64(r.ExpiryInterval))
	b = binary.AppendVarint(b, r.DisconnectedAt)
	b = appendListLen(b, len(r.Subscriptions), r.Subscriptions == nil)
	for i := range r.Subscriptions {
		s := &r.Subscriptions[i]
		b = appendString(b, s.Filter)
		b = appendString(b, s.Group)
		b = appendSubscriptionOpts(b, s)
	}
	w := r.Will
	if w == nil {
		b = append(b, 0)
	} else {
		b = append(b, 1)
		b = appendString(b, w.Topic)
		b = appendBytes(b, w.Payload)
		b = append(b, w.QoS, appendBool(appendBool(0, w.Retain, flagRetain), w.HasExpiry, flagHasExpiry))
		b = appendBytes(b, w.Props)
		b = binary.AppendUvarint(b, uint64(w.Delay))
		b = binary.AppendUvarint(b, uint64(w.ExpiryInterval))
		b = binary.AppendVarint(b, w.DueAt)
	}
	return appendString(b, r.User)
}

func appendSubscriptionOpts(b []byte, s *SubscriptionRecord) []byte {
	b = append(b, s.QoS, appendBool(appendBool(0, s.NoLocal, flagNoLocal), s.RetainAsPublished, flagRAP), s.RetainHandling)
	return binary.AppendUvarint(b, uint64(s.ID))
}

// appendSubscription encodes a subscription's value; group and filter are in its key.
func appendSubscription(b []byte, s *SubscriptionRecord) []byte {
	return appendSubscriptionOpts(append(b, recordVersion), s)
}

// appendListLen writes a list's length: 0 for nil, n+1 otherwise.
func appendListLen(b []byte, n int, isNil bool) []byte {
	if isNil {
		return append(b, 0)
	}
	return binary.AppendUvarint(b, uint64(n)+1)
}

func appendIdentity(b []byte, id *IdentityRecord) []byte {
	if id == nil {
		return append(b, 0)
	}
	b = append(b, 1)
	for _, s := range [...]string{id.User, id.Subject, id.Issuer, id.Vhost, id.Method, id.GrantsSource} {
		b = appendString(b, s)
	}
	b = appendListLen(b, len(id.Tags), id.Tags == nil)
	for _, t := range id.Tags {
		b = appendString(b, t)
	}
	b = appendListLen(b, len(id.Grants), id.Grants == nil)
	for _, g := range id.Grants {
		b = appendString(appendString(b, g.Action), g.Pattern)
	}
	if sc := id.Scoped; sc == nil {
		b = append(b, 0)
	} else {
		b = append(b, 1)
		for _, s := range [...]string{sc.Configure, sc.Write, sc.Read, sc.TopicWrite, sc.TopicRead} {
			b = appendString(b, s)
		}
	}
	b = binary.AppendVarint(b, id.NotBefore)
	b = binary.AppendVarint(b, id.Expiry)
	b = appendListLen(b, len(id.Creds), id.Creds == nil)
	for i := range id.Creds {
		c := &id.Creds[i]
		for _, s := range [...]string{c.Kind, c.Type, c.ID, c.KeyID, c.Subject} {
			b = appendString(b, s)
		}
		b = binary.AppendVarint(b, c.Expiry)
		b = append(b, c.Hash[:]...)
	}
	return binary.AppendUvarint(b, id.Generation)
}

func identitySize(id *IdentityRecord) int {
	if id == nil {
		return 1
	}
	n := 48 + len(id.User) + len(id.Subject) + len(id.Issuer) + len(id.Vhost) + len(id.Method) + len(id.GrantsSource)
	for _, t := range id.Tags {
		n += 2 + len(t)
	}
	for _, g := range id.Grants {
		n += 4 + len(g.Action) + len(g.Pattern)
	}
	if sc := id.Scoped; sc != nil {
		n += 10 + len(sc.Configure) + len(sc.Write) + len(sc.Read) + len(sc.TopicWrite) + len(sc.TopicRead)
	}
	for i := range id.Creds {
		c := &id.Creds[i]
		n += 52 + len(c.Kind) + len(c.Type) + len(c.ID) + len(c.KeyID) + len(c.Subject)
	}
	return n
}

func sessionSize(r *SessionRecord) int {
	n := 32 + len(r.User) + identitySize(r.Identity)
	if w := r.Will; w != nil {
		n += 64 + len(w.Topic) + len(w.Payload) + len(w.Props) + identitySize(w.Identity)
	}
	return n
}

func messageSize(m *MessageRecord) int {
	return 32 + len(m.Topic) + len(m.Payload) + len(m.Props)
}

// ---- decoding ----

// decoder reads one record. The first error sticks; later reads return zero values.
type decoder struct {
	rec  string // record name for errors
	b    []byte
	err  error
	elem string // when set, field names are elem[idx].field (idx >= 0) or elem.field
	idx  int
}

func newDecoder(rec string, b []byte) *decoder {
	d, _ := newDecoderVersion(rec, b, recordVersion, recordVersion)
	return d
}

// newDecoderVersion reads the version byte, which must lie in [lo, hi].
func newDecoderVersion(rec string, b []byte, lo, hi byte) (*decoder, byte) {
	d := &decoder{rec: rec, b: b}
	v := d.u8("version")
	if d.err == nil && (v < lo || v > hi) {
		d.fail("version", fmt.Errorf("unknown record version %d", v))
	}
	return d, v
}

// within sets the element name for the fields read next and returns a function restoring
// the previous one.
func (d *decoder) within(elem string, idx int) func() {
	e, i := d.elem, d.idx
	d.elem, d.idx = elem, idx
	return func() { d.elem, d.idx = e, i }
}

// name is the current element's name, for nesting.
func (d *decoder) name() string {
	if d.idx >= 0 && d.elem != "" {
		return fmt.Sprintf("%s[%d]", d.elem, d.idx)
	}
	return d.elem
}

func (d *decoder) join(field string) string {
	if n := d.name(); n != "" {
		return n + "." + field
	}
	return field
}

func (d *decoder) fail(field string, err error) {
	if d.err != nil {
		return
	}
	switch {
	case d.elem != "" && d.idx >= 0:
		field = fmt.Sprintf("%s[%d].%s", d.elem, d.idx, field)
	case d.elem != "":
		field = d.elem + "." + field
	}
	d.err = &DecodeError{Record: d.rec, Field: field, Err: err}
}

func (d *decoder) u8(field string) byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) == 0 {
		d.fail(field, errTruncated)
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) flags(field string, allowed byte) byte {
	f := d.u8(field)
	if d.err == nil && f&^allowed != 0 {
		d.fail(field, errFlags)
	}
	return f
}

func (d *decoder) uvarint(field string) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		if n == 0 {
			d.fail(field, errTruncated)
		} else {
			d.fail(field, errOverflow)
		}
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) uvarintMax(field string, max uint64) uint64 {
	v := d.uvarint(field)
	if v > max {
		d.fail(field, errOverflow)
		return 0
	}
	return v
}

func (d *decoder) varint(field string) int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		if n == 0 {
			d.fail(field, errTruncated)
		} else {
			d.fail(field, errOverflow)
		}
		return 0
	}
	d.b = d.b[n:]
	return v
}

// span returns the next n bytes, checking the length before anything is allocated.
func (d *decoder) span(field string, n uint64) []byte {
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.fail(field, errTruncated)
		return nil
	}
	p := d.b[:n]
	d.b = d.b[n:]
	return p
}

func (d *decoder) str(field string) string {
	n := d.uvarint(field)
	return string(d.span(field, n))
}

// bytes returns a copy (values read from pebble are only valid until the iterator moves).
func (d *decoder) bytes(field string) []byte {
	n := d.uvarint(field)
	if d.err != nil || n == 0 {
		return nil
	}
	p := d.span(field, n-1)
	if d.err != nil {
		return nil
	}
	return append(make([]byte, 0, len(p)), p...)
}

// list reads a list length: -1 for nil. Every item takes at least one byte, so a count larger
// than what is left is refused before anything is allocated.
func (d *decoder) list(field string) int {
	n := d.uvarint(field)
	if d.err != nil || n == 0 {
		return -1
	}
	if n-1 > uint64(len(d.b)) {
		d.fail(field, errTruncated)
		return -1
	}
	return int(n - 1)
}

func (d *decoder) finish() error {
	if d.err == nil && len(d.b) > 0 {
		d.elem = ""
		d.fail("end", errTrailing)
	}
	return d.err
}

func decodeMessage(b []byte, m *MessageRecord) error {
	d := newDecoder("MessageRecord", b)
	m.Topic = d.str("Topic")
	m.Payload = d.bytes("Payload")
	m.QoS = d.u8("QoS")
	m.Retain = d.flags("Retain", flagRetain)&flagRetain != 0
	m.Props = d.bytes("Props")
	m.Expiry = d.varint("Expiry")
	return d.finish()
}

// decodeQueueEntry decodes the value of a queue entry; Seq comes from the key.
func decodeQueueEntry(b []byte, e *QueueEntry) error {
	d := newDecoder("QueueEntry", b)
	e.MsgID = d.uvarint("MsgID")
	e.QoS = d.u8("QoS")
	e.Retain = d.flags("Retain", flagRetain)&flagRetain != 0
	e.SubIDs = nil
	if n := d.list("SubIDs"); n >= 0 {
		e.SubIDs = make([]uint32, n)
		d.elem = "SubIDs"
		for i := range n {
			d.idx = i
			e.SubIDs[i] = uint32(d.uvarintMax("value", math.MaxUint32))
		}
		d.elem = ""
	}
	e.State = d.u8("State")
	e.PacketID = uint16(d.uvarintMax("PacketID", math.MaxUint16))
	return d.finish()
}

// decodeSession decodes the value of a session (version 1 or 2); Vhost and ClientID come
// from the key. Version 1 records carry their subscriptions; version 2 records' are records of
// their own.
func decodeSession(b []byte, r *SessionRecord) error {
	d, ver := newDecoderVersion("SessionRecord", b, 1, sessionVersion)
	r.Version = d.u8("Version")
	r.ExpiryInterval = uint32(d.uvarintMax("ExpiryInterval", math.MaxUint32))
	r.DisconnectedAt = d.varint("DisconnectedAt")
	r.Subscriptions = nil
	if ver == 1 {
		if n := d.list("Subscriptions"); n >= 0 {
			r.Subscriptions = make([]SubscriptionRecord, n)
			for i := range n {
				done := d.within("Subscriptions", i)
				s := &r.Subscriptions[i]
				s.Filter = d.str("Filter")
				s.Group = d.str("Group")
				d.subscriptionOpts(s)
				done()
			}
		}
	}
	r.Will = nil
	switch d.u8("Will") {
	case 0:
	case 1:
		w := &WillRecord{}
		done := d.within("Will", -1)
		w.Topic = d.str("Topic")
		w.Payload = d.bytes("Payload")
		w.QoS = d.u8("QoS")
		f := d.flags("flags", flagRetain|flagHasExpiry)
		w.Retain = f&flagRetain != 0
		w.HasExpiry = f&flagHasExpiry != 0
		w.Props = d.bytes("Props")
		w.Delay = uint32(d.uvarintMax("Delay", math.MaxUint32))
		w.ExpiryInterval = uint32(d.uvarintMax("ExpiryInterval", math.MaxUint32))
		w.DueAt = d.varint("DueAt")
		if ver >= 2 {
			w.EarnedAt = d.varint("EarnedAt")
			w.Identity = d.identity("Identity")
		}
		done()
		if d.err == nil {
			r.Will = w
		}
	default:
		d.fail("Will", errors.New("presence byte not 0 or 1"))
	}
	r.User = d.str("User")
	r.Identity = nil
	if ver >= 2 {
		r.Identity = d.identity("Identity")
	}
	return d.finish()
}

func (d *decoder) subscriptionOpts(s *SubscriptionRecord) {
	s.QoS = d.u8("QoS")
	f := d.flags("flags", flagNoLocal|flagRAP)
	s.NoLocal = f&flagNoLocal != 0
	s.RetainAsPublished = f&flagRAP != 0
	s.RetainHandling = d.u8("RetainHandling")
	s.ID = uint32(d.uvarintMax("ID", math.MaxUint32))
}

// decodeSubscription decodes a subscription's value; Filter and Group come from the key.
func decodeSubscription(b []byte, s *SubscriptionRecord) error {
	d := newDecoder("subscription", b)
	d.subscriptionOpts(s)
	return d.finish()
}

// identity reads an optional identity named field.
func (d *decoder) identity(field string) *IdentityRecord {
	switch d.u8(field) {
	case 0:
		return nil
	case 1:
	default:
		d.fail(field, errors.New("presence byte not 0 or 1"))
		return nil
	}
	done := d.within(d.join(field), -1)
	defer done()
	id := &IdentityRecord{}
	id.User = d.str("User")
	id.Subject = d.str("Subject")
	id.Issuer = d.str("Issuer")
	id.Vhost = d.str("Vhost")
	id.Method = d.str("Method")
	id.GrantsSource = d.str("GrantsSource")
	base := d.name()
	if n := d.list("Tags"); n >= 0 {
		id.Tags = make([]string, n)
		for i := range n {
			d.elem, d.idx = base+".Tags", i
			id.Tags[i] = d.str("value")
		}
		d.elem, d.idx = base, -1
	}
	if n := d.list("Grants"); n >= 0 {
		id.Grants = make([]GrantRecord, n)
		for i := range n {
			d.elem, d.idx = base+".Grants", i
			id.Grants[i] = GrantRecord{Action: d.str("Action"), Pattern: d.str("Pattern")}
		}
		d.elem, d.idx = base, -1
	}
	switch d.u8("Scoped") {
	case 0:
	case 1:
		d.elem = base + ".Scoped"
		id.Scoped = &ScopedRecord{Configure: d.str("Configure"), Write: d.str("Write"), Read: d.str("Read"),
			TopicWrite: d.str("TopicWrite"), TopicRead: d.str("TopicRead")}
		d.elem = base
	default:
		d.fail("Scoped", errors.New("presence byte not 0 or 1"))
	}
	id.NotBefore = d.varint("NotBefore")
	id.Expiry = d.varint("Expiry")
	if n := d.list("Creds"); n >= 0 {
		id.Creds = make([]CredentialRecord, n)
		for i := range n {
			d.elem, d.idx = base+".Creds", i
			c := &id.Creds[i]
			c.Kind = d.str("Kind")
			c.Type = d.str("Type")
			c.ID = d.str("ID")
			c.KeyID = d.str("KeyID")
			c.Subject = d.str("Subject")
			c.Expiry = d.varint("Expiry")
			copy(c.Hash[:], d.span("Hash", 32))
		}
		d.elem, d.idx = base, -1
	}
	id.Generation = d.uvarint("Generation")
	if d.err != nil {
		return nil
	}
	return id
}

// decodeInbound checks the value of an inbound packet id record.
func decodeInbound(b []byte) error {
	return newDecoder("inbound", b).finish()
}

var inboundValue = []byte{recordVersion}
