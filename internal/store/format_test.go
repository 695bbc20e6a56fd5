package store

import (
	"encoding/binary"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"
)

func subsOf(r SessionRecord) []string {
	var out []string
	for _, s := range r.Subscriptions {
		out = append(out, fmt.Sprintf("%s|%s|%d|%d", s.Group, s.Filter, s.QoS, s.ID))
	}
	slices.Sort(out)
	return out
}

// Subscriptions are records of their own: put, replaced, deleted one by one, loaded with
// their session, removed with it, and never mixed up between sessions whose ids are prefixes
// of each other.
func TestSubscriptionRecords(t *testing.T) {
	dir := t.TempDir()
	s, _ := openTest(t, dir, FsyncAlways)
	for _, cid := range []string{"a", "ab", ""} {
		s.PutSession(&SessionRecord{Vhost: "v", ClientID: cid, Version: 5, ExpiryInterval: 60})
	}
	s.PutSubscription("v", "a", &SubscriptionRecord{Filter: "x/#", QoS: 1, ID: 7})
	s.PutSubscription("v", "a", &SubscriptionRecord{Filter: "x/#", Group: "g", QoS: 2})
	s.PutSubscription("v", "a", &SubscriptionRecord{Filter: "y", QoS: 0})
	s.PutSubscription("v", "ab", &SubscriptionRecord{Filter: "z", QoS: 2, NoLocal: true, RetainAsPublished: true, RetainHandling: 2})
	s.PutSubscription("v", "a", &SubscriptionRecord{Filter: "x/#", QoS: 2, ID: 8}) // replaces
	s.DeleteSubscription("v", "a", "", "y")
	s.PutSubscription("w", "a", &SubscriptionRecord{Filter: "orphan"}) // no session "w"/"a"

	check := func(s *DB) {
		t.Helper()
		got := map[string][]string{}
		for _, r := range loadAllSessions(t, s) {
			got[r.ClientID] = subsOf(r)
		}
		want := map[string][]string{"": nil, "a": {"g|x/#|2|0", "|x/#|2|8"}, "ab": {"|z|2|0"}}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("sessions' subscriptions %v, want %v", got, want)
		}
	}
	check(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, _ := openTest(t, dir, FsyncAlways)
	check(s2)

	// PutSession writes the subscriptions it is given and leaves the stored ones.
	s2.PutSession(&SessionRecord{Vhost: "v", ClientID: "ab", Version: 4, Subscriptions: []SubscriptionRecord{{Filter: "new", QoS: 1}, {Filter: "z", QoS: 0}}})
	s2.PutSession(&SessionRecord{Vhost: "v", ClientID: "a", Version: 4})
	s2.DeleteSession("v", "")
	got := map[string][]string{}
	for _, r := range loadAllSessions(t, s2) {
		got[r.ClientID] = subsOf(r)
	}
	if want := map[string][]string{"a": {"g|x/#|2|0", "|x/#|2|8"}, "ab": {"|new|1|0", "|z|0|0"}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("after PutSession: %v, want %v", got, want)
	}
	s2.DeleteSession("v", "a")
	s2.PutSession(&SessionRecord{Vhost: "v", ClientID: "a"})
	for _, r := range loadAllSessions(t, s2) {
		if r.ClientID == "a" && len(r.Subscriptions) != 0 {
			t.Fatalf("a deleted session's subscriptions came back: %v", subsOf(r))
		}
	}
}

// writeLegacy turns dir into a format 1 store: version 1 session records carrying their
// subscriptions, no format key.
func writeLegacy(t *testing.T, dir string, sessions []SessionRecord) {
	t.Helper()
	s, _ := openTest(t, dir, FsyncAlways)
	b := s.pdb.NewBatch()
	for i := range sessions {
		r := &sessions[i]
		_ = b.Set(sessionKey(r.Vhost, r.ClientID), appendSessionV1(nil, r), nil)
	}
	_ = b.Delete(formatKey, nil)
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
	b.Close()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func storedFormat(t *testing.T, s *DB) uint64 {
	t.Helper()
	v, closer, err := s.pdb.Get(formatKey)
	if err != nil {
		t.Fatalf("format key: %v", err)
	}
	defer closer.Close()
	f, _ := binary.Uvarint(v)
	return f
}

// A store of format 1 (sessions carrying their subscriptions) is upgraded in place at Open:
// the sessions load with the same subscriptions, now records of their own, and the format
// key says 2. An interrupted upgrade (some records converted, no format key) is finished.
func TestFormatUpgradeFromLegacy(t *testing.T) {
	sessions := []SessionRecord{
		{Vhost: "v", ClientID: "a", Version: 5, ExpiryInterval: 60, User: "alice", Subscriptions: manySubscriptions(300),
			Will: &WillRecord{Topic: "w", Payload: []byte("bye"), DueAt: 5}},
		{Vhost: "v", ClientID: "ab", Version: 4, Subscriptions: []SubscriptionRecord{}},
		{Vhost: "w", ClientID: "c", Version: 3, Subscriptions: manySubscriptions(2)},
	}
	for _, interrupted := range []bool{false, true} {
		t.Run(fmt.Sprint("interrupted=", interrupted), func(t *testing.T) {
			dir := t.TempDir()
			writeLegacy(t, dir, sessions)
			if interrupted {
				// Convert the first session as an upgrade would, leave the others.
				pdb, err := pebble.Open(dir, &pebble.Options{})
				if err != nil {
					t.Fatal(err)
				}
				b := pdb.NewBatch()
				r := sessions[0]
				_ = b.Set(sessionKey(r.Vhost, r.ClientID), appendSession(nil, &r), nil)
				for _, sr := range r.Subscriptions {
					_ = b.Set(subscriptionKey(r.Vhost, r.ClientID, sr.Group, sr.Filter), appendSubscription(nil, &sr), nil)
				}
				if err := b.Commit(pebble.Sync); err != nil {
					t.Fatal(err)
				}
				b.Close()
				pdb.Close()
			}
			s, lb := openTest(t, dir, FsyncAlways)
			if !strings.Contains(lb.String(), `msg="store format upgraded"`) || !strings.Contains(lb.String(), "from=1 to=2") {
				t.Fatalf("upgrade not logged:\n%s", lb.String())
			}
			if f := storedFormat(t, s); f != formatCurrent {
				t.Fatalf("format after upgrade %d", f)
			}
			got := loadAllSessions(t, s)
			if len(got) != len(sessions) {
				t.Fatalf("%d sessions after upgrade", len(got))
			}
			for i := range got {
				if !reflect.DeepEqual(subsOf(got[i]), subsOf(sessions[i])) {
					t.Fatalf("session %s: subscriptions changed by the upgrade", got[i].ClientID)
				}
				if got[i].User != sessions[i].User || !reflect.DeepEqual(got[i].Will, sessions[i].Will) {
					t.Fatalf("session %s changed by the upgrade: %+v", got[i].ClientID, got[i])
				}
			}
			// Every session record is version 2 now.
			if err := s.scan([]byte{kindSession}, []byte{kindSession + 1}, func(k, v []byte) error {
				if v[0] != sessionVersion {
					return fmt.Errorf("record %x still version %d", k, v[0])
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s2, lb2 := openTest(t, dir, FsyncAlways)
			if strings.Contains(lb2.String(), "upgraded") {
				t.Fatal("upgraded twice")
			}
			if got := loadAllSessions(t, s2); !reflect.DeepEqual(subsOf(got[0]), subsOf(sessions[0])) {
				t.Fatal("subscriptions lost after the upgrade and a restart")
			}
		})
	}
}

// A new store is written with the current format; a store of a newer format is refused with
// a message naming the directory and both versions.
func TestFormatVersionChecked(t *testing.T) {
	dir := t.TempDir()
	s, _ := openTest(t, dir, FsyncAlways)
	if f := storedFormat(t, s); f != formatCurrent {
		t.Fatalf("new store has format %d", f)
	}
	b := s.pdb.NewBatch()
	_ = b.Set(formatKey, binary.AppendUvarint(nil, formatCurrent+1), nil)
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
	b.Close()
	s.Close()
	_, err := Open(dir, quietOptions(FsyncAlways))
	if err == nil {
		t.Fatal("a store of a newer format opened")
	}
	for _, want := range []string{dir, fmt.Sprintf("format %d", formatCurrent+1), fmt.Sprintf("up to %d", formatCurrent), "newer version"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q lacks %q", err, want)
		}
	}
	// Nothing was left running or locked: it opens once the key is put back.
	pdb, err := pebble.Open(dir, &pebble.Options{})
	if err != nil {
		t.Fatalf("the refused store is still locked: %v", err)
	}
	_ = pdb.Set(formatKey, binary.AppendUvarint(nil, formatCurrent), pebble.Sync)
	pdb.Close()
	s2, _ := openTest(t, dir, FsyncAlways)
	s2.Close()
}
