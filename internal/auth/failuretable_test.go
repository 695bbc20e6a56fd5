package auth

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"
)

// TestFailureTableMatchesModel drives a small failureTable and a plain model (a slice in
// most-recently-touched order) with the same random operations and compares their contents after
// each one: the keys, their order and their counts. Entries are reused through the free list, so
// this also catches one that keeps anything of the key it held before.
func TestFailureTableMatchesModel(t *testing.T) {
	const size, interval = 4, time.Second
	type entry struct {
		key int
		failureState
	}
	var model []entry // most recently touched first
	find := func(k int) int { return slices.IndexFunc(model, func(e entry) bool { return e.key == k }) }
	touch := func(i int) { e := model[i]; model = slices.Insert(slices.Delete(model, i, i+1), 0, e) }
	tab := newFailureTable[int](size)
	now := time.Unix(1e9, 0)
	rng := rand.New(rand.NewPCG(1, 2))
	for step := range 20000 {
		now = now.Add(time.Duration(rng.IntN(300)) * time.Millisecond)
		k := rng.IntN(7)
		switch op := rng.IntN(4); op {
		case 0, 1: // add +1 or -1
			n := 1 - 2*op
			i := find(k)
			if i < 0 {
				if n > 0 {
					if len(model) >= size {
						model = model[:len(model)-1]
					}
					model = slices.Insert(model, 0, entry{key: k})
					i = 0
				}
			}
			if i >= 0 {
				e := &model[i].failureState
				e.decay(now, interval)
				e.failures = max(e.failures+n, 0)
				e.changed = now
				if e.failures == 0 && !e.slot.After(now) {
					model = slices.Delete(model, i, i+1)
				} else {
					touch(i)
				}
			}
			tab.add(k, now, interval, n)
		case 2: // count
			want := 0
			if i := find(k); i >= 0 {
				e := &model[i].failureState
				e.decay(now, interval)
				if e.failures == 0 && !e.slot.After(now) {
					model = slices.Delete(model, i, i+1)
				} else {
					want = e.failures
					touch(i)
				}
			}
			if got := tab.count(k, now, interval); got != want {
				t.Fatalf("step %d: count(%d) = %d, model %d", step, k, got, want)
			}
		case 3: // clear
			if i := find(k); i >= 0 {
				model = slices.Delete(model, i, i+1)
			}
			tab.clear(k)
		}
		var got []entry
		if tab.lru.next != nil {
			for e := tab.lru.next; e != &tab.lru; e = e.next {
				got = append(got, entry{e.key, e.failureState})
			}
		}
		if len(got) != len(tab.m) || !slices.Equal(got, model) {
			t.Fatalf("step %d: table %v (map %d), model %v", step, got, len(tab.m), model)
		}
		for _, e := range got {
			if tab.m[e.key] == nil || tab.m[e.key].key != e.key {
				t.Fatalf("step %d: map entry of %d is wrong", step, e.key)
			}
		}
	}
	if tab.nfree == 0 || tab.nfree > maxFreeEntries {
		t.Fatalf("%d entries kept for reuse", tab.nfree)
	}
}

// TestSuccessfulLoginCountsWithoutAllocating: putting an attempt on record and taking it back
// when it succeeds, what every password login does, reuses the table entries: no allocation.
func TestSuccessfulLoginCountsWithoutAllocating(t *testing.T) {
	rl, _ := newTestLimiter(RateLimitPolicy{})
	a := netip.MustParseAddr("192.0.2.7")
	login := func() {
		_, at, err := rl.reserve(a, "alice", false)
		if err != nil {
			t.Fatal(err)
		}
		rl.finish(at, true, false)
	}
	login()
	if n := testing.AllocsPerRun(100, login); n != 0 && !raceEnabled {
		t.Fatalf("a successful login's count allocates %v times", n)
	}
	if s, p := rl.Len(); s != 0 || p != 0 {
		t.Fatalf("Len = %d, %d after successful logins", s, p)
	}
}
