package topic

import (
	"slices"
	"strings"
	"testing"
)

// Fuzz inputs are decoded into filters and one name drawn from a small
// alphabet of levels, so that random inputs overlap and match often.
var fuzzLevels = []string{"a", "b", "", "$s", "+", "#", "a", "b"}

// decodeFuzz turns data into filters (wildcards kept) and a topic name
// (wildcards replaced by literals). Each byte: low 3 bits pick a level, bit 3
// ends the current filter, bits 4-5 pick the owner, bit 6 makes it shared.
type fuzzSub struct {
	filter string
	owner  int
	group  string
}

func decodeFuzz(data []byte) (subs []fuzzSub, name string) {
	var levels []string
	var nameLevels []string
	for i, c := range data {
		lv := fuzzLevels[c&7]
		if i < 6 && len(data) > 8 {
			// The first bytes make the name.
			switch lv {
			case "+":
				lv = "a"
			case "#":
				lv = "$s"
			}
			nameLevels = append(nameLevels, lv)
			continue
		}
		levels = append(levels, lv)
		if c&8 != 0 || i == len(data)-1 {
			f := strings.Join(levels, "/")
			levels = levels[:0]
			if ValidFilter(f) != nil {
				continue
			}
			s := fuzzSub{filter: f, owner: int(c>>4) & 3}
			if c&64 != 0 {
				s.group = "g"
			}
			subs = append(subs, s)
		}
	}
	name = strings.Join(nameLevels, "/")
	if name == "" {
		name = "a"
	}
	return subs, name
}

// checkIndexAgainstMatch builds an Index from data and checks Index.Match
// against the naive Match: every non-shared entry whose filter matches, and
// exactly one member of every matching shared subscription.
func checkIndexAgainstMatch(t *testing.T, data []byte) {
	t.Helper()
	subs, name := decodeFuzz(data)
	o := newOwners(4)
	x := NewIndex()
	type key struct {
		owner         int
		group, filter string
	}
	live := map[key]bool{}
	for i, s := range subs {
		k := key{s.owner, s.group, s.filter}
		if i%5 == 4 && live[k] {
			// Exercise Unsubscribe too.
			if !x.Unsubscribe(o[s.owner], s.group, s.filter) {
				t.Fatalf("Unsubscribe(%d, %q, %q) = false", s.owner, s.group, s.filter)
			}
			delete(live, k)
			continue
		}
		existed := x.Subscribe(Subscription{Owner: o[s.owner], Filter: s.filter, Group: s.group})
		if existed != live[k] {
			t.Fatalf("Subscribe(%v) existed = %v, want %v", k, existed, live[k])
		}
		live[k] = true
	}
	if x.Len() != len(live) {
		t.Fatalf("Len = %d, want %d", x.Len(), len(live))
	}
	var want []string
	wantShared := map[string]bool{} // filter of each matching shared subscription
	for k := range live {
		if !Match(k.filter, name) {
			continue
		}
		if k.group == "" {
			want = append(want, k.filter)
		} else {
			wantShared[k.filter] = true
		}
	}
	var got []string
	gotShared := map[string]int{}
	for _, s := range x.Match(name, nil) {
		if !live[key{s.Owner.(*owner).id, s.Group, s.Filter}] {
			t.Fatalf("Match(%q) returned a removed entry %+v", name, s)
		}
		if s.Group == "" {
			got = append(got, s.Filter)
		} else {
			gotShared[s.Filter]++
		}
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("Index.Match(%q) non-shared = %q, want %q (filters %+v)", name, got, want, subs)
	}
	for f := range wantShared {
		if gotShared[f] != 1 {
			t.Fatalf("Index.Match(%q): shared %q delivered %d times, want 1", name, f, gotShared[f])
		}
	}
	if len(gotShared) != len(wantShared) {
		t.Fatalf("Index.Match(%q): shared %v, want %v", name, gotShared, wantShared)
	}
}

func fuzzSeeds(f *testing.F) {
	f.Add([]byte{0, 1, 0, 1, 0, 1, 0x0c, 0x0d, 0x0a, 0x48, 0x05, 0x0d})
	f.Add([]byte{3, 0, 1, 2, 2, 2, 4, 4, 0x0d, 0x0d, 0x58, 0x05, 0x18, 0x2c})
	f.Add([]byte{2, 0, 2, 0, 0, 1, 0x04, 0x0e, 0x2f, 0x4c, 0x5d, 0x6d, 0x7e, 0x1b})
	f.Add([]byte("some arbitrary bytes to start from"))
}

func FuzzIndexMatch(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(checkIndexAgainstMatch)
}

// FuzzRetainedMatch stores the fuzz filters as names (wildcards made literal)
// and checks Retained.Match with each filter against the naive Match.
func FuzzRetainedMatch(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		subs, name := decodeFuzz(data)
		r := NewRetained[int]()
		names := map[string]bool{name: true}
		r.Set(name, 0)
		for i, s := range subs {
			n := strings.NewReplacer("+", "a", "#", "b").Replace(s.filter)
			if i%4 == 3 {
				if r.Delete(n) != names[n] {
					t.Fatalf("Delete(%q) disagrees with the model", n)
				}
				delete(names, n)
				continue
			}
			r.Set(n, i)
			names[n] = true
		}
		if r.Len() != len(names) {
			t.Fatalf("Len = %d, want %d", r.Len(), len(names))
		}
		for _, s := range subs {
			var want, got []string
			for n := range names {
				if Match(s.filter, n) {
					want = append(want, n)
				}
			}
			r.Match(s.filter, func(n string, _ int) bool { got = append(got, n); return true })
			slices.Sort(want)
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Fatalf("Retained.Match(%q) = %q, want %q", s.filter, got, want)
			}
		}
	})
}

// FuzzValid checks properties linking the validators and Match: a valid name
// is a valid filter that matches itself, and ParseShared agrees with
// ValidFilter.
func FuzzValid(f *testing.F) {
	for _, s := range []string{"a/b", "#", "+/x", "$share/g/a", "$SYS/x", "/", "a\x00", "\xff"} {
		f.Add(s, "a/b")
	}
	f.Fuzz(func(t *testing.T, s, name string) {
		if ValidName(s) == nil {
			if err := ValidFilter(s); err != nil {
				t.Fatalf("valid name %q is not a valid filter: %v", s, err)
			}
			if !Match(s, s) {
				t.Fatalf("valid name %q does not match itself", s)
			}
		}
		g, fl, shared, err := ParseShared(s)
		if !shared && (fl != s || err != nil) {
			t.Fatalf("ParseShared(%q) changed a non-shared filter", s)
		}
		if shared && err == nil {
			if ValidFilter(fl) != nil || g == "" || strings.ContainsAny(g, "/+#") {
				t.Fatalf("ParseShared(%q) = %q, %q accepted", s, g, fl)
			}
		}
		if ValidFilter(s) == nil && ValidName(name) == nil {
			Match(s, name) // must not panic
		}
	})
}
