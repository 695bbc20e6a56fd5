package topic

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
)

// owner is a stand-in for the broker's session pointer.
type owner struct{ id int }

func newOwners(n int) []*owner {
	o := make([]*owner, n)
	for i := range o {
		o[i] = &owner{i}
	}
	return o
}

// filters returns the filters of subs, sorted.
func filters(subs []*Subscription) []string {
	var out []string
	for _, s := range subs {
		out = append(out, s.Filter)
	}
	slices.Sort(out)
	return out
}

func TestIndexMatchSpecTable(t *testing.T) {
	for _, tt := range matchTests {
		x := NewIndex()
		x.Subscribe(Subscription{Owner: &owner{}, Filter: tt.filter})
		got := len(x.Match(tt.name, nil)) == 1
		if got != tt.want {
			t.Errorf("[%s] Index with %q matching %q = %v, want %v", tt.id, tt.filter, tt.name, got, tt.want)
		}
	}
}

func TestIndexMatchAllSpecFiltersAtOnce(t *testing.T) {
	x := NewIndex()
	o := &owner{}
	seen := map[string]bool{}
	for _, tt := range matchTests {
		if !seen[tt.filter] {
			seen[tt.filter] = true
			x.Subscribe(Subscription{Owner: o, Filter: tt.filter})
		}
	}
	for _, tt := range matchTests {
		var want []string
		for f := range seen {
			if Match(f, tt.name) {
				want = append(want, f)
			}
		}
		slices.Sort(want)
		if got := filters(x.Match(tt.name, nil)); !slices.Equal(got, want) {
			t.Errorf("[%s] Match(%q) = %q, want %q", tt.id, tt.name, got, want)
		}
	}
}

func TestIndexSubscribeReplaces(t *testing.T) {
	x := NewIndex()
	o := &owner{1}
	if x.Subscribe(Subscription{Owner: o, Filter: "a/+", QoS: 0}) {
		t.Fatal("first Subscribe reported a replacement")
	}
	if !x.Subscribe(Subscription{Owner: o, Filter: "a/+", QoS: 2, ID: 7}) {
		t.Fatal("[MQTT-3.8.4-3] second Subscribe of the same filter did not report a replacement")
	}
	if x.Len() != 1 {
		t.Fatalf("[MQTT-3.8.4-3] Len = %d after a replacement, want 1", x.Len())
	}
	got := x.Match("a/b", nil)
	if len(got) != 1 || got[0].QoS != 2 || got[0].ID != 7 {
		t.Fatalf("[MQTT-3.8.4-3] Match after replacement = %+v, want the new entry", got)
	}
	// Same filter, other owner or other group: distinct entries.
	if x.Subscribe(Subscription{Owner: &owner{2}, Filter: "a/+"}) {
		t.Error("another owner's subscription reported a replacement")
	}
	if x.Subscribe(Subscription{Owner: o, Filter: "a/+", Group: "g"}) {
		t.Error("a shared subscription reported replacing a non-shared one")
	}
	if !x.Subscribe(Subscription{Owner: o, Filter: "a/+", Group: "g", QoS: 1}) {
		t.Error("a shared subscription did not report its replacement")
	}
	if x.Len() != 3 {
		t.Errorf("Len = %d, want 3", x.Len())
	}
	subs := x.Subscriptions(o)
	if len(subs) != 2 {
		t.Fatalf("Subscriptions = %+v, want 2 entries", subs)
	}
	for _, s := range subs {
		if s.Group == "g" && s.QoS != 1 || s.Group == "" && s.QoS != 2 {
			t.Errorf("Subscriptions returned a stale entry %+v", s)
		}
	}
}

func TestIndexEntriesAreImmutable(t *testing.T) {
	x := NewIndex()
	o := &owner{}
	s := Subscription{Owner: o, Filter: "a", QoS: 1}
	x.Subscribe(s)
	old := x.Match("a", nil)[0]
	s.QoS = 2 // the caller's value is copied
	if old.QoS != 1 {
		t.Fatal("the index shares the caller's Subscription")
	}
	x.Subscribe(s)
	if old.QoS != 1 {
		t.Fatal("a replacement mutated the previous entry")
	}
	if got := x.Match("a", nil)[0]; got == old || got.QoS != 2 {
		t.Fatalf("replacement: got %p %+v, old %p", got, got, old)
	}
}

func TestIndexUnsubscribePrunes(t *testing.T) {
	x := NewIndex()
	o := newOwners(3)
	subs := []Subscription{
		{Owner: o[0], Filter: "a/b/c"},
		{Owner: o[1], Filter: "a/b/c"},
		{Owner: o[0], Filter: "a/+/c"},
		{Owner: o[0], Filter: "a/#"},
		{Owner: o[0], Filter: "#"},
		{Owner: o[2], Filter: "a/b/c", Group: "g"},
		{Owner: o[1], Filter: "a/b/c", Group: "g"},
		{Owner: o[1], Filter: "a/b/c", Group: "h"},
		{Owner: o[0], Filter: "/"},
		{Owner: o[0], Filter: "$SYS/+"},
	}
	for _, s := range subs {
		x.Subscribe(s)
	}
	if x.Len() != len(subs) {
		t.Fatalf("Len = %d, want %d", x.Len(), len(subs))
	}
	if x.Unsubscribe(o[2], "", "a/b/c") {
		t.Error("Unsubscribe of an absent (owner, filter) reported true")
	}
	if x.Unsubscribe(o[0], "g", "a/b/c") {
		t.Error("Unsubscribe of an absent group member reported true")
	}
	if x.Unsubscribe(o[0], "", "a/b") || x.Unsubscribe(o[0], "", "a/b/c/d") || x.Unsubscribe(o[0], "", "x") {
		t.Error("Unsubscribe of an absent filter reported true")
	}
	for i, s := range subs {
		if !x.Unsubscribe(s.Owner, s.Group, s.Filter) {
			t.Fatalf("Unsubscribe(%v, %q, %q) = false", s.Owner, s.Group, s.Filter)
		}
		if x.Unsubscribe(s.Owner, s.Group, s.Filter) {
			t.Fatalf("second Unsubscribe(%v, %q, %q) = true", s.Owner, s.Group, s.Filter)
		}
		if x.Len() != len(subs)-i-1 {
			t.Fatalf("Len = %d, want %d", x.Len(), len(subs)-i-1)
		}
	}
	if !x.root.empty() {
		t.Errorf("root not pruned: children=%v plus=%v hash=%v", x.root.children, x.root.plus, x.root.hash)
	}
	if len(x.owners) != 0 {
		t.Errorf("owner index not emptied: %v", x.owners)
	}
	if got := x.Match("a/b/c", nil); len(got) != 0 {
		t.Errorf("Match after unsubscribing everything = %v", got)
	}
}

func TestIndexUnsubscribeKeepsSiblings(t *testing.T) {
	x := NewIndex()
	o := &owner{}
	x.Subscribe(Subscription{Owner: o, Filter: "a/b"})
	x.Subscribe(Subscription{Owner: o, Filter: "a/b/c"})
	x.Subscribe(Subscription{Owner: o, Filter: "a/+"})
	x.Unsubscribe(o, "", "a/b")
	if got := filters(x.Match("a/b/c", nil)); !slices.Equal(got, []string{"a/b/c"}) {
		t.Errorf("a/b/c after removing a/b: %q", got)
	}
	if got := filters(x.Match("a/b", nil)); !slices.Equal(got, []string{"a/+"}) {
		t.Errorf("a/b after removing a/b: %q", got)
	}
	x.Unsubscribe(o, "", "a/b/c")
	if a := x.root.children["a"]; a == nil || a.children["b"] != nil || a.plus == nil {
		t.Errorf("pruning removed too much or too little: %+v", a)
	}
}

func TestIndexOverlappingFilters(t *testing.T) {
	x := NewIndex()
	o := newOwners(2)
	for _, f := range []string{"a/b/c", "a/+/c", "a/#", "+/b/#", "#", "a/b/+", "a/b", "+/+/+"} {
		x.Subscribe(Subscription{Owner: o[0], Filter: f})
	}
	x.Subscribe(Subscription{Owner: o[1], Filter: "a/b/c"})
	got := filters(x.Match("a/b/c", nil))
	want := []string{"#", "+/+/+", "+/b/#", "a/#", "a/+/c", "a/b/+", "a/b/c", "a/b/c"}
	if !slices.Equal(got, want) {
		t.Errorf("Match(a/b/c) = %q, want %q (each overlapping entry once)", got, want)
	}
	// Appends to dst.
	dst := []*Subscription{{Filter: "keep"}}
	if got := x.Match("a/b", dst); len(got) != 5 || got[0].Filter != "keep" {
		t.Errorf("Match(a/b, dst) = %q, want dst kept plus #, +/b/#, a/#, a/b", filters(got))
	}
}

func TestIndexDollarTopics(t *testing.T) {
	x := NewIndex()
	o := &owner{}
	for _, f := range []string{"#", "+/monitor/Clients", "+/#", "$SYS/#", "$SYS/monitor/+", "$share-not/x"} {
		x.Subscribe(Subscription{Owner: o, Filter: f})
	}
	x.Subscribe(Subscription{Owner: o, Filter: "#", Group: "g"})
	got := filters(x.Match("$SYS/monitor/Clients", nil))
	if want := []string{"$SYS/#", "$SYS/monitor/+"}; !slices.Equal(got, want) {
		t.Errorf("[MQTT-4.7.2-1] Match($SYS/monitor/Clients) = %q, want %q", got, want)
	}
	got = filters(x.Match("a/monitor/Clients", nil))
	if want := []string{"#", "#", "+/#", "+/monitor/Clients"}; !slices.Equal(got, want) {
		t.Errorf("Match(a/monitor/Clients) = %q, want %q", got, want)
	}
}

func TestIndexSharedRoundRobin(t *testing.T) {
	const members, rounds = 5, 100
	x := NewIndex()
	o := newOwners(members + 1)
	for i := range members {
		x.Subscribe(Subscription{Owner: o[i], Filter: "jobs/+", Group: "workers"})
	}
	x.Subscribe(Subscription{Owner: o[0], Filter: "jobs/#", Group: "workers"}) // another shared subscription
	x.Subscribe(Subscription{Owner: o[members], Filter: "jobs/+"})             // non-shared
	count := map[any]int{}
	for i := range members * rounds {
		got := x.Match(fmt.Sprintf("jobs/%d", i), nil)
		var shared int
		for _, s := range got {
			if s.Group == "workers" && s.Filter == "jobs/+" {
				shared++
				count[s.Owner]++
			}
		}
		if shared != 1 {
			t.Fatalf("[MQTT-4.8.2] message %d went to %d members of the group, want 1", i, shared)
		}
		if len(got) != 3 {
			t.Fatalf("Match = %q, want one per shared subscription plus the non-shared one", filters(got))
		}
	}
	for i := range members {
		if count[o[i]] != rounds {
			t.Errorf("member %d got %d of %d messages, want %d (round-robin)", i, count[o[i]], members*rounds, rounds)
		}
	}
}

func TestIndexSharedGroupsAreIndependent(t *testing.T) {
	x := NewIndex()
	o := newOwners(4)
	x.Subscribe(Subscription{Owner: o[0], Filter: "t", Group: "g1"})
	x.Subscribe(Subscription{Owner: o[1], Filter: "t", Group: "g1"})
	x.Subscribe(Subscription{Owner: o[2], Filter: "t", Group: "g2"})
	x.Subscribe(Subscription{Owner: o[3], Filter: "t", Group: "g2"})
	for range 10 {
		got := x.Match("t", nil)
		if len(got) != 2 || got[0].Group == got[1].Group {
			t.Fatalf("[MQTT-4.8.2] each group gets one copy: got %+v", got)
		}
	}
}

func TestIndexSharedPrefer(t *testing.T) {
	const members, msgs = 6, 600
	o := newOwners(members)
	online := map[any]bool{o[0]: true, o[2]: true, o[3]: true} // 1, 4, 5 offline
	x := NewIndex()
	x.Prefer = func(owner any) bool { return online[owner] }
	for i := range members {
		x.Subscribe(Subscription{Owner: o[i], Filter: "t/#", Group: "g"})
	}
	count := map[any]int{}
	for range msgs {
		got := x.Match("t/x", nil)
		if len(got) != 1 {
			t.Fatalf("Match = %d entries, want 1", len(got))
		}
		count[got[0].Owner]++
	}
	for i := range members {
		want := 0
		if online[o[i]] {
			want = msgs / len(online) // skipped members do not hand their turn to one neighbour
		}
		if count[o[i]] != want {
			t.Errorf("member %d (online %v) got %d messages, want %d", i, online[o[i]], count[o[i]], want)
		}
	}
}

func TestIndexSharedPreferNone(t *testing.T) {
	const members, rounds = 3, 50
	o := newOwners(members)
	x := NewIndex()
	x.Prefer = func(any) bool { return false }
	for i := range members {
		x.Subscribe(Subscription{Owner: o[i], Filter: "t", Group: "g"})
	}
	count := map[any]int{}
	for range members * rounds {
		got := x.Match("t", nil)
		if len(got) != 1 {
			t.Fatalf("Match = %d entries, want 1 even when no member is preferred", len(got))
		}
		count[got[0].Owner]++
	}
	for i := range members {
		if count[o[i]] != rounds {
			t.Errorf("member %d got %d, want %d (plain round-robin when none is preferred)", i, count[o[i]], rounds)
		}
	}
}

func TestIndexSharedMemberLeaves(t *testing.T) {
	x := NewIndex()
	o := newOwners(3)
	for i := range 3 {
		x.Subscribe(Subscription{Owner: o[i], Filter: "t", Group: "g"})
	}
	x.Unsubscribe(o[1], "g", "t")
	for range 10 {
		got := x.Match("t", nil)
		if len(got) != 1 || got[0].Owner == o[1] {
			t.Fatalf("Match after a member left = %+v", got)
		}
	}
	x.Unsubscribe(o[0], "g", "t")
	x.Unsubscribe(o[2], "g", "t")
	if got := x.Match("t", nil); len(got) != 0 {
		t.Fatalf("Match after the group emptied = %+v", got)
	}
	if !x.root.empty() {
		t.Error("empty group's node not pruned")
	}
}

// TestIndexLargeBucket crosses bucketMapMin both ways.
func TestIndexLargeBucket(t *testing.T) {
	const n = 200
	x := NewIndex()
	o := newOwners(n)
	for i := range n {
		x.Subscribe(Subscription{Owner: o[i], Filter: "alerts"})
		x.Subscribe(Subscription{Owner: o[i], Filter: "alerts", Group: "g"})
	}
	for i := range n {
		if !x.Subscribe(Subscription{Owner: o[i], Filter: "alerts", QoS: 1}) {
			t.Fatalf("replacement %d not found", i)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	perm := r.Perm(n)
	for k, i := range perm {
		if !x.Unsubscribe(o[i], "", "alerts") {
			t.Fatalf("Unsubscribe(%d) = false", i)
		}
		got := x.Match("alerts", nil)
		if len(got) != n-k-1+1 {
			t.Fatalf("after %d removals Match = %d entries, want %d", k+1, len(got), n-k)
		}
		for _, s := range got {
			if s.Group == "" && (s.Owner == o[i] || s.QoS != 1) {
				t.Fatalf("stale entry %+v", s)
			}
		}
	}
	for i := range n {
		if !x.Unsubscribe(o[i], "g", "alerts") {
			t.Fatalf("Unsubscribe(%d, g) = false", i)
		}
	}
	if x.Len() != 0 || !x.root.empty() {
		t.Errorf("Len = %d, root empty %v", x.Len(), x.root.empty())
	}
}

func TestIndexSubscriptions(t *testing.T) {
	x := NewIndex()
	o := newOwners(2)
	x.Subscribe(Subscription{Owner: o[0], Filter: "a/#", QoS: 1, ID: 3})
	x.Subscribe(Subscription{Owner: o[0], Filter: "b", Group: "g", NoLocal: true})
	x.Subscribe(Subscription{Owner: o[1], Filter: "a/#"})
	got := x.Subscriptions(o[0])
	slices.SortFunc(got, func(a, b Subscription) int { return strings.Compare(a.Filter, b.Filter) })
	want := []Subscription{
		{Owner: o[0], Filter: "a/#", QoS: 1, ID: 3},
		{Owner: o[0], Filter: "b", Group: "g", NoLocal: true},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Subscriptions = %+v, want %+v", got, want)
	}
	if got := x.Subscriptions(&owner{}); got != nil {
		t.Errorf("Subscriptions of an unknown owner = %+v", got)
	}
	// The result is a copy.
	for i := range got {
		got[i].QoS = 2
	}
	for _, s := range x.Subscriptions(o[0]) {
		if s.QoS == 2 {
			t.Error("Subscriptions returned shared storage")
		}
	}
}

func TestIndexMatchAllocs(t *testing.T) {
	x := NewIndex()
	o := newOwners(40)
	online := map[any]bool{o[1]: true}
	x.Prefer = func(owner any) bool { return online[owner] }
	for i, f := range []string{"a/b/c", "a/+/c", "a/#", "#", "+/+/+", "a/b/+", "x/y"} {
		for j := range 5 {
			x.Subscribe(Subscription{Owner: o[i*5+j], Filter: f})
		}
	}
	for j := range 5 {
		x.Subscribe(Subscription{Owner: o[j], Filter: "a/b/#", Group: "g"})
		x.Subscribe(Subscription{Owner: o[j], Filter: "+/b/c", Group: "h"})
	}
	dst := make([]*Subscription, 0, 128)
	var n int
	allocs := testing.AllocsPerRun(1000, func() {
		n = len(x.Match("a/b/c", dst[:0]))
	})
	if allocs != 0 {
		t.Errorf("Index.Match allocates %v times per run with a large enough dst, want 0", allocs)
	}
	if n != 32 {
		t.Errorf("Match(a/b/c) = %d entries, want 32", n)
	}
	allocs = testing.AllocsPerRun(1000, func() { x.Match("$SYS/b/c", dst[:0]) })
	if allocs != 0 {
		t.Errorf("Index.Match($SYS/...) allocates %v times per run, want 0", allocs)
	}
}

func TestIndexMatchEmptyName(t *testing.T) {
	x := NewIndex()
	x.Subscribe(Subscription{Owner: &owner{}, Filter: "#"})
	if got := x.Match("", nil); len(got) != 0 {
		t.Errorf("[MQTT-4.7.3-1] Match(\"\") = %+v, want nothing", got)
	}
}

// TestIndexMatchRandom compares Index.Match with Match over random filters.
func TestIndexMatchRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	for range 50 {
		var data []byte
		for range 200 {
			data = append(data, byte(r.Uint32()))
		}
		checkIndexAgainstMatch(t, data)
	}
}

func TestIndexConcurrent(t *testing.T) {
	const writers, readers, ops = 4, 4, 2000
	x := NewIndex()
	o := newOwners(writers)
	var online sync.Map
	x.Prefer = func(owner any) bool { _, ok := online.Load(owner); return ok }
	x.Subscribe(Subscription{Owner: &owner{-1}, Filter: "#"})
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 1))
			for i := range ops {
				f := fmt.Sprintf("s/%d/+/%d", r.IntN(10), r.IntN(10))
				g := ""
				if i%3 == 0 {
					g = "g"
				}
				x.Subscribe(Subscription{Owner: o[w], Filter: f, Group: g, QoS: byte(i % 3)})
				if i%2 == 0 {
					online.Store(o[w], true)
				} else {
					online.Delete(o[w])
				}
				x.Unsubscribe(o[w], g, fmt.Sprintf("s/%d/+/%d", r.IntN(10), r.IntN(10)))
				_ = x.Subscriptions(o[w])
			}
		})
	}
	for rd := range readers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(rd), 2))
			dst := make([]*Subscription, 0, 64)
			for range ops {
				name := fmt.Sprintf("s/%d/x/%d", r.IntN(10), r.IntN(10))
				dst = x.Match(name, dst[:0])
				for _, s := range dst {
					if !Match(s.Filter, name) {
						t.Errorf("Match(%q) returned %q", name, s.Filter)
					}
				}
				_ = x.Len()
			}
		})
	}
	wg.Wait()
	total := 0
	for _, ow := range o {
		total += len(x.Subscriptions(ow))
	}
	if total+1 != x.Len() {
		t.Errorf("Len = %d, owners hold %d", x.Len(), total+1)
	}
	for _, ow := range o {
		for _, s := range x.Subscriptions(ow) {
			x.Unsubscribe(ow, s.Group, s.Filter)
		}
	}
	x.Unsubscribe(x.Match("a", nil)[0].Owner, "", "#")
	if x.Len() != 0 || !x.root.empty() {
		t.Errorf("after removing all: Len = %d, root empty %v", x.Len(), x.root.empty())
	}
}
