package store

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
)

func manySubscriptions(n int) []SubscriptionRecord {
	subs := make([]SubscriptionRecord, n)
	for i := range subs {
		subs[i] = SubscriptionRecord{
			Filter: fmt.Sprintf("sensors/%d/+/temp", i), QoS: byte(i % 3), NoLocal: i%2 == 0,
			RetainAsPublished: i%3 == 0, RetainHandling: byte(i % 3), ID: uint32(i * 7919),
		}
		if i%5 == 0 {
			subs[i].Group = "g" + fmt.Sprint(i)
		}
	}
	return subs
}

// fullIdentity sets every field of an identity record.
func fullIdentity() *IdentityRecord {
	return &IdentityRecord{
		User: "alice", Subject: "u-42", Issuer: "local", Vhost: "prod", Method: "oauth", GrantsSource: "oauth",
		Tags:      []string{"management", "monitoring"},
		Grants:    []GrantRecord{{Action: "publish", Pattern: "a/+/b"}, {Action: "subscribe", Pattern: "#"}},
		Scoped:    &ScopedRecord{Configure: "^$", Write: "^mqtt\\.", Read: ".*", TopicWrite: "a\\..*", TopicRead: ""},
		NotBefore: 1_700_000_000_000_000_000, Expiry: math.MaxInt64,
		Creds: []CredentialRecord{{Kind: "jwt", Type: "", ID: "jti-1", KeyID: "kid-9", Subject: "svc", Expiry: -1,
			Hash: [32]byte{0: 0xde, 1: 0xad, 31: 0xff}}, {}},
		Generation: math.MaxUint64,
	}
}

// sessionCases round-trip in the current encoding (version 2: no subscriptions).
var sessionCases = []struct {
	name string
	r    SessionRecord
}{
	{"zero", SessionRecord{}},
	{"user", SessionRecord{Version: 5, User: "alice", ExpiryInterval: 3600, DisconnectedAt: 1_700_000_000_000_000_000}},
	{"will nil fields", SessionRecord{Version: 5, Will: &WillRecord{Topic: "w"}}},
	{"will empty fields", SessionRecord{Version: 5, Will: &WillRecord{Topic: "", Payload: []byte{}, Props: []byte{}}}},
	{"delayed will", SessionRecord{Version: 5, DisconnectedAt: -1, Will: &WillRecord{
		Topic: "clients/x/status", Payload: []byte("gone\x00\xff"), QoS: 1, Retain: true, Props: []byte{0x01, 0x01},
		Delay: 30, ExpiryInterval: 60, HasExpiry: true, DueAt: math.MaxInt64, EarnedAt: 1_700_000_000_000_000_001}}},
	{"identity", SessionRecord{Version: 5, User: "alice", Identity: fullIdentity()}},
	{"empty identity", SessionRecord{Version: 4, Identity: &IdentityRecord{Tags: []string{}, Grants: []GrantRecord{}, Scoped: &ScopedRecord{}, Creds: []CredentialRecord{}}}},
	{"will with its identity", SessionRecord{Version: 5, Identity: &IdentityRecord{User: "bob"}, Will: &WillRecord{Topic: "w", Identity: fullIdentity(), EarnedAt: 7}}},
	{"utf-8 and odd bytes", SessionRecord{Version: 3, User: "ünï\x00", Identity: &IdentityRecord{User: "çødé/🚀", Tags: []string{"\xff"}}}},
}

// legacySessionCases are version 1 records, which carried their subscriptions: they still
// decode.
var legacySessionCases = []struct {
	name string
	r    SessionRecord
}{
	{"empty subscriptions", SessionRecord{Version: 4, Subscriptions: []SubscriptionRecord{}}},
	{"one subscription", SessionRecord{Version: 5, User: "alice", ExpiryInterval: 3600, DisconnectedAt: 1_700_000_000_000_000_000,
		Subscriptions: []SubscriptionRecord{{Filter: "a/#", Group: "", QoS: 2, NoLocal: true, RetainAsPublished: true, RetainHandling: 2, ID: math.MaxUint32}}}},
	{"many subscriptions", SessionRecord{Version: 5, ExpiryInterval: math.MaxUint32, Subscriptions: manySubscriptions(1000)}},
	{"delayed will", SessionRecord{Version: 5, DisconnectedAt: -1, Will: &WillRecord{
		Topic: "clients/x/status", Payload: []byte("gone"), QoS: 1, Retain: true, Delay: 30, DueAt: 99}}},
	{"utf-8 and odd bytes", SessionRecord{Version: 3, Subscriptions: []SubscriptionRecord{{Filter: "ünï/çødé/🚀", QoS: 255, RetainHandling: 255}}}},
}

var messageCases = []MessageRecord{
	{},
	{Topic: "t", Payload: []byte{}, Props: []byte{}},
	{Topic: "a/b/c", Payload: bytes.Repeat([]byte{0xAB}, 70_000), QoS: 2, Retain: true, Props: []byte{0x02, 0, 0, 0, 10}, Expiry: 1_700_000_000_123_456_789},
	{Topic: "neg", Expiry: -5},
}

var queueCases = []QueueEntry{
	{},
	{MsgID: 1, SubIDs: []uint32{}},
	{MsgID: math.MaxUint64, QoS: 2, Retain: true, SubIDs: []uint32{1, 268_435_455, math.MaxUint32}, State: 2, PacketID: math.MaxUint16},
	{MsgID: 42, QoS: 1, State: 1, PacketID: 7},
}

func TestRecordRoundTrip(t *testing.T) {
	for _, c := range sessionCases {
		t.Run("session/"+c.name, func(t *testing.T) {
			var got SessionRecord
			if err := decodeSession(appendSession(nil, &c.r), &got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c.r) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", got, c.r)
			}
		})
	}
	for _, c := range legacySessionCases {
		t.Run("session v1/"+c.name, func(t *testing.T) {
			var got SessionRecord
			if err := decodeSession(appendSessionV1(nil, &c.r), &got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c.r) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", got, c.r)
			}
		})
	}
	for _, sub := range manySubscriptions(50) {
		got := SubscriptionRecord{Filter: sub.Filter, Group: sub.Group} // in the key
		if err := decodeSubscription(appendSubscription(nil, &sub), &got); err != nil {
			t.Fatalf("subscription %+v: %v", sub, err)
		}
		if got != sub {
			t.Fatalf("subscription: got %+v want %+v", got, sub)
		}
	}
	for i, m := range messageCases {
		var got MessageRecord
		if err := decodeMessage(appendMessage(nil, &m), &got); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Fatalf("message %d: got %+v want %+v", i, got, m)
		}
	}
	for i, e := range queueCases {
		got := QueueEntry{Seq: e.Seq} // Seq lives in the key
		if err := decodeQueueEntry(appendQueueEntry(nil, &e), &got); err != nil {
			t.Fatalf("queue entry %d: %v", i, err)
		}
		if !reflect.DeepEqual(got, e) {
			t.Fatalf("queue entry %d: got %+v want %+v", i, got, e)
		}
	}
}

// Every truncation of every record fails with a DecodeError naming a field, never a panic.
func TestDecodeTruncatedNamesField(t *testing.T) {
	check := func(t *testing.T, what string, enc []byte, decode func([]byte) error) {
		step := max(1, len(enc)/3000) // large records: a sample of cuts keeps -race fast
		for cut := 0; cut < len(enc); cut += step {
			err := decode(enc[:cut])
			var de *DecodeError
			if !errors.As(err, &de) || de.Field == "" || de.Record == "" {
				t.Fatalf("%s cut at %d/%d: err = %v, want a DecodeError naming the field", what, cut, len(enc), err)
			}
			if cut > 0 && !errors.Is(err, errTruncated) {
				t.Fatalf("%s cut at %d/%d: err = %v, want truncated", what, cut, len(enc), err)
			}
		}
	}
	for _, c := range sessionCases {
		check(t, "session "+c.name, appendSession(nil, &c.r), func(b []byte) error { return decodeSession(b, &SessionRecord{}) })
	}
	for _, c := range legacySessionCases {
		check(t, "session v1 "+c.name, appendSessionV1(nil, &c.r), func(b []byte) error { return decodeSession(b, &SessionRecord{}) })
	}
	for _, sub := range manySubscriptions(7) {
		check(t, "subscription", appendSubscription(nil, &sub), func(b []byte) error { return decodeSubscription(b, &SubscriptionRecord{}) })
	}
	for i, m := range messageCases[:2] {
		check(t, fmt.Sprint("message ", i), appendMessage(nil, &m), func(b []byte) error { return decodeMessage(b, &MessageRecord{}) })
	}
	for i, e := range queueCases {
		check(t, fmt.Sprint("queue entry ", i), appendQueueEntry(nil, &e), func(b []byte) error { return decodeQueueEntry(b, &QueueEntry{}) })
	}

	// The field named is the one cut.
	sess := SessionRecord{Version: 5, User: "", Subscriptions: []SubscriptionRecord{{Filter: "first/filter"}, {Filter: "second/filter", ID: 9}},
		Will: &WillRecord{Topic: "will/topic", Payload: []byte("bye"), DueAt: 123456789}}
	encS := appendSessionV1(nil, &sess)
	sess2 := SessionRecord{Version: 5, User: "u", Will: &WillRecord{Topic: "will/topic", EarnedAt: 1 << 40,
		Identity: &IdentityRecord{User: "will-user", Creds: []CredentialRecord{{ID: "cred-id"}}}},
		Identity: &IdentityRecord{User: "sess-user", Tags: []string{"tag-a", "tag-b"}, Scoped: &ScopedRecord{Read: "read-re"}}}
	encS2 := appendSession(nil, &sess2)
	dec := func(b []byte) error { return decodeSession(b, &SessionRecord{}) }
	msg := MessageRecord{Topic: "msg/topic", Payload: []byte("payload"), Expiry: 1 << 40}
	encM := appendMessage(nil, &msg)
	qe := QueueEntry{MsgID: 5, SubIDs: []uint32{1, 2, 300_000}, State: 1, PacketID: 1234}
	encQ := appendQueueEntry(nil, &qe)
	for _, c := range []struct {
		enc    []byte
		cut    int
		decode func([]byte) error
		record string
		field  string
	}{
		{encS, 0, func(b []byte) error { return decodeSession(b, &SessionRecord{}) }, "SessionRecord", "version"},
		{encS, 1, func(b []byte) error { return decodeSession(b, &SessionRecord{}) }, "SessionRecord", "Version"},
		{encS, bytes.Index(encS, []byte("second")) + 3, func(b []byte) error { return decodeSession(b, &SessionRecord{}) }, "SessionRecord", "Subscriptions[1].Filter"},
		{encS, bytes.Index(encS, []byte("will/topic")) + 2, func(b []byte) error { return decodeSession(b, &SessionRecord{}) }, "SessionRecord", "Will.Topic"},
		{encS, bytes.Index(encS, []byte("bye")) + 1, func(b []byte) error { return decodeSession(b, &SessionRecord{}) }, "SessionRecord", "Will.Payload"},
		{encS, len(encS) - 2, func(b []byte) error { return decodeSession(b, &SessionRecord{}) }, "SessionRecord", "Will.DueAt"},
		{encS, len(encS) - 1, func(b []byte) error { return decodeSession(b, &SessionRecord{}) }, "SessionRecord", "User"},
		{encS2, bytes.Index(encS2, []byte("will-user")) + 1, dec, "SessionRecord", "Will.Identity.User"},
		{encS2, bytes.Index(encS2, []byte("cred-id")) + 1, dec, "SessionRecord", "Will.Identity.Creds[0].ID"},
		{encS2, bytes.Index(encS2, []byte("cred-id")) + 11, dec, "SessionRecord", "Will.Identity.Creds[0].Hash"},
		{encS2, bytes.Index(encS2, []byte("sess-user")) - 1, dec, "SessionRecord", "Identity.User"},
		{encS2, bytes.Index(encS2, []byte("tag-b")) + 2, dec, "SessionRecord", "Identity.Tags[1].value"},
		{encS2, bytes.Index(encS2, []byte("read-re")) + 2, dec, "SessionRecord", "Identity.Scoped.Read"},
		{encS2, len(encS2) - 1, dec, "SessionRecord", "Identity.Generation"},
		{encM, bytes.Index(encM, []byte("payload")) + 4, func(b []byte) error { return decodeMessage(b, &MessageRecord{}) }, "MessageRecord", "Payload"},
		{encM, len(encM) - 1, func(b []byte) error { return decodeMessage(b, &MessageRecord{}) }, "MessageRecord", "Expiry"},
		{encQ, len(encQ) - 2 - 1 - 1, func(b []byte) error { return decodeQueueEntry(b, &QueueEntry{}) }, "QueueEntry", "SubIDs[2].value"},
		{encQ, len(encQ) - 1, func(b []byte) error { return decodeQueueEntry(b, &QueueEntry{}) }, "QueueEntry", "PacketID"},
	} {
		err := c.decode(c.enc[:c.cut])
		var de *DecodeError
		if !errors.As(err, &de) || de.Record != c.record || de.Field != c.field {
			t.Errorf("cut at %d: err = %v, want field %s.%s", c.cut, err, c.record, c.field)
			continue
		}
		if want := "store: decoding " + c.record + "." + c.field + ": truncated"; err.Error() != want {
			t.Errorf("cut at %d: message %q, want %q", c.cut, err.Error(), want)
		}
	}
}

func TestDecodeRejects(t *testing.T) {
	enc := appendMessage(nil, &MessageRecord{Topic: "t"})
	for _, c := range []struct {
		name  string
		b     []byte
		field string
	}{
		{"unknown version", append([]byte{2}, enc[1:]...), "version"},
		{"trailing bytes", append(append([]byte(nil), enc...), 0), "end"},
		{"unknown flags", func() []byte { b := append([]byte(nil), enc...); b[len(b)-3] = 0x80; return b }(), "Retain"},
		{"huge length", []byte{1, 0xff, 0xff, 0xff, 0xff, 0x0f}, "Topic"},
		{"varint overflow", []byte{1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, "Topic"},
	} {
		var de *DecodeError
		if err := decodeMessage(c.b, &MessageRecord{}); !errors.As(err, &de) || de.Field != c.field {
			t.Errorf("%s: err = %v, want field %s", c.name, err, c.field)
		}
	}
	// A list count larger than what is left is refused before allocating.
	var de *DecodeError
	if err := decodeSession([]byte{1, 5, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f}, &SessionRecord{}); !errors.As(err, &de) || de.Field != "Subscriptions" {
		t.Errorf("huge subscription count: err = %v", err)
	}
	if err := decodeSession(append(appendSession(nil, &SessionRecord{})[:4], 2), &SessionRecord{}); !errors.As(err, &de) || de.Field != "Will" {
		t.Errorf("bad will presence: err = %v", err)
	}
	if err := decodeSession(append(appendSession(nil, &SessionRecord{}), 2), &SessionRecord{}); !errors.As(err, &de) || de.Field != "end" {
		t.Errorf("trailing byte after the identity presence: err = %v", err)
	}
	if err := decodeSession(append(appendSession(nil, &SessionRecord{})[:len(appendSession(nil, &SessionRecord{}))-1], 2), &SessionRecord{}); !errors.As(err, &de) || de.Field != "Identity" {
		t.Errorf("bad identity presence: err = %v", err)
	}
	if err := decodeSession([]byte{3, 5, 0, 0, 0, 0, 0}, &SessionRecord{}); !errors.As(err, &de) || de.Field != "version" {
		t.Errorf("session record of a newer version: err = %v", err)
	}
}

func TestKeysArePrefixFree(t *testing.T) {
	// The queue range of client "a" must not contain keys of "ab", of vhost "v" + "a" vs "va", etc.
	type sc struct{ v, c string }
	all := []sc{{"v", "a"}, {"v", "ab"}, {"va", ""}, {"", "va"}, {"v", "a/b"}, {"v", "a:b"}, {"v", "a\x00"}, {"v\x01a", ""}, {"v", "\xff\xff"}}
	for _, x := range all {
		p := clientPrefix(kindQueue, x.v, x.c, 0)
		lo, hi := p, prefixEnd(p)
		for _, y := range all {
			for _, seq := range []uint64{0, 1, math.MaxUint64} {
				k := queueKey(y.v, y.c, seq)
				in := bytes.Compare(k, lo) >= 0 && bytes.Compare(k, hi) < 0
				if in != (x == y) {
					t.Fatalf("key of %q/%q seq %d in range of %q/%q: %v", y.v, y.c, seq, x.v, x.c, in)
				}
				v, c, s, err := parseQueueKey(k)
				if err != nil || v != y.v || c != y.c || s != seq {
					t.Fatalf("parse %x: %q %q %d %v", k, v, c, s, err)
				}
			}
		}
	}
	// Big-endian: numeric order is key order.
	if bytes.Compare(queueKey("v", "c", 255), queueKey("v", "c", 256)) >= 0 || bytes.Compare(messageKey(1<<40), messageKey(1<<41)) >= 0 {
		t.Fatal("numbers do not sort in key order")
	}
	v, topic, err := parseRetainedKey(retainedKey("vh", "a/b/"))
	if err != nil || v != "vh" || topic != "a/b/" {
		t.Fatalf("retained key: %q %q %v", v, topic, err)
	}
	if _, _, err := parseRetainedKey([]byte{kindRetained, 9, 'x'}); err == nil || !strings.Contains(err.Error(), "key.vhost") {
		t.Fatalf("bad retained key: %v", err)
	}
}

func FuzzDecodeSession(f *testing.F) {
	for _, c := range sessionCases {
		f.Add(appendSession(nil, &c.r))
	}
	for _, c := range legacySessionCases[:2] {
		f.Add(appendSessionV1(nil, &c.r))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var r SessionRecord
		if err := decodeSession(b, &r); err != nil {
			return
		}
		enc := appendSession
		if b[0] == 1 {
			enc = appendSessionV1
		}
		var r2 SessionRecord
		if err := decodeSession(enc(nil, &r), &r2); err != nil || !reflect.DeepEqual(r, r2) {
			t.Fatalf("re-encoding a decoded record: %v\n%+v\n%+v", err, r, r2)
		}
	})
}

func FuzzDecodeQueueEntry(f *testing.F) {
	for _, e := range queueCases {
		f.Add(appendQueueEntry(nil, &e))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var e QueueEntry
		if err := decodeQueueEntry(b, &e); err != nil {
			return
		}
		var e2 QueueEntry
		if err := decodeQueueEntry(appendQueueEntry(nil, &e), &e2); err != nil || !reflect.DeepEqual(e, e2) {
			t.Fatalf("re-encoding a decoded entry: %v", err)
		}
	})
}

// The identity snapshot never holds a secret. Its record types have exactly these fields (a
// new field fails here, so that it is reviewed), and a record encodes to exactly the values
// put in, each with its length, and nothing else.
func TestIdentityRecordHoldsOnlyWhatIsPutIn(t *testing.T) {
	for typ, want := range map[reflect.Type][]string{
		reflect.TypeFor[IdentityRecord](): {"User", "Subject", "Issuer", "Vhost", "Method", "GrantsSource", "Tags",
			"Grants", "Scoped", "NotBefore", "Expiry", "Creds", "Generation"},
		reflect.TypeFor[GrantRecord]():      {"Action", "Pattern"},
		reflect.TypeFor[ScopedRecord]():     {"Configure", "Write", "Read", "TopicWrite", "TopicRead"},
		reflect.TypeFor[CredentialRecord](): {"Kind", "Type", "ID", "KeyID", "Subject", "Expiry", "Hash"},
	} {
		var got []string
		for f := range typ.Fields() {
			got = append(got, f.Name)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s fields %v, want %v: review that a new field holds no secret, then update this test", typ.Name(), got, want)
		}
	}

	var hash [32]byte
	for i := range hash {
		hash[i] = byte(0xC0 + i%16)
	}
	id := &IdentityRecord{User: "user", Subject: "subject", Issuer: "issuer", Vhost: "vhost", Method: "method",
		GrantsSource: "source", Tags: []string{"tag"}, Grants: []GrantRecord{{Action: "act", Pattern: "pat"}},
		Scoped:    &ScopedRecord{Configure: "cfg", Write: "wr", Read: "rd", TopicWrite: "tw", TopicRead: "tr"},
		NotBefore: 1, Expiry: 2,
		Creds:      []CredentialRecord{{Kind: "jwt", Type: "RW", ID: "jti", KeyID: "kid", Subject: "sub", Expiry: 3, Hash: hash}},
		Generation: 4,
	}
	str := func(s string) []byte { return append([]byte{byte(len(s))}, s...) }
	want := bytes.Join([][]byte{
		{1}, // present
		str("user"), str("subject"), str("issuer"), str("vhost"), str("method"), str("source"),
		{2}, str("tag"), // one tag
		{2}, str("act"), str("pat"), // one grant
		{1}, str("cfg"), str("wr"), str("rd"), str("tw"), str("tr"), // scoped
		{2}, {4}, // NotBefore 1, Expiry 2 (zig-zag)
		{2}, str("jwt"), str("RW"), str("jti"), str("kid"), str("sub"), {6}, hash[:], // one credential, Expiry 3
		{4}, // Generation
	}, nil)
	if got := appendIdentity(nil, id); !bytes.Equal(got, want) {
		t.Fatalf("identity encodes to\n%x\nwant exactly the values put in:\n%x", got, want)
	}
	if got := appendIdentity(nil, &IdentityRecord{}); !bytes.Equal(got, []byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}) {
		t.Fatalf("an empty identity encodes to %x: something besides its fields", got)
	}

	// Stored in a session, the value holds the identity as encoded above and nothing more.
	s, _ := openTest(t, t.TempDir(), FsyncAlways)
	wait(t, s, s.PutSession(&SessionRecord{Vhost: "v", ClientID: "c", Version: 5, Identity: id}))
	v, closer, err := s.pdb.Get(sessionKey("v", "c"))
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Close()
	if wantV := append([]byte{sessionVersion, 5, 0, 0, 0, 0}, want...); !bytes.Equal(v, wantV) {
		t.Fatalf("stored session value\n%x\nwant\n%x", v, wantV)
	}
}
