package topic

import (
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
)

// names returns the names r.Match(filter) reports, sorted.
func retainedNames[T any](r *Retained[T], filter string) []string {
	var out []string
	r.Match(filter, func(name string, _ T) bool { out = append(out, name); return true })
	slices.Sort(out)
	return out
}

func TestRetainedSetGetDelete(t *testing.T) {
	r := NewRetained[string]()
	if _, ok := r.Get("a"); ok {
		t.Fatal("Get on an empty index reported a value")
	}
	r.Set("a/b", "1")
	r.Set("a/b", "2") // replace
	r.Set("a", "3")
	r.Set("a/b/c", "4")
	r.Set("", "ignored") // [MQTT-4.7.3-1]
	if r.Len() != 3 {
		t.Fatalf("Len = %d, want 3", r.Len())
	}
	for name, want := range map[string]string{"a/b": "2", "a": "3", "a/b/c": "4"} {
		if v, ok := r.Get(name); !ok || v != want {
			t.Errorf("Get(%q) = %q, %v; want %q", name, v, ok, want)
		}
	}
	for _, name := range []string{"", "a/", "a/b/c/d", "b", "/a"} {
		if _, ok := r.Get(name); ok {
			t.Errorf("Get(%q) found a value", name)
		}
	}
	if r.Delete("a/b/c/d") || r.Delete("x") || r.Delete("") {
		t.Error("Delete of an absent name reported true")
	}
	if !r.Delete("a/b") || r.Delete("a/b") {
		t.Error("Delete(a/b) not exactly once")
	}
	if v, ok := r.Get("a/b/c"); !ok || v != "4" {
		t.Error("Delete(a/b) removed its child")
	}
	if r.Len() != 2 {
		t.Errorf("Len = %d, want 2", r.Len())
	}
	r.Delete("a/b/c")
	if a := r.root.children["a"]; a == nil || a.children != nil {
		t.Errorf("empty nodes not pruned below a: %+v", a)
	}
	r.Delete("a")
	if r.root.children != nil || r.Len() != 0 {
		t.Errorf("root not pruned: %v, Len %d", r.root.children, r.Len())
	}
}

func TestRetainedMatchSpecTable(t *testing.T) {
	for _, tt := range matchTests {
		r := NewRetained[int]()
		r.Set(tt.name, 1)
		got := len(retainedNames(r, tt.filter)) == 1
		if got != tt.want {
			t.Errorf("[%s] Retained %q matched by %q = %v, want %v", tt.id, tt.name, tt.filter, got, tt.want)
		}
	}
}

func TestRetainedMatch(t *testing.T) {
	r := NewRetained[int]()
	all := []string{
		"sport", "sport/", "sport/tennis", "sport/tennis/player1", "sport/tennis/player1/ranking",
		"sport/tennis/player2", "sport/golf", "/finance", "/", "finance",
		"$SYS/monitor/Clients", "$SYS", "$other/x", "a/$b",
	}
	for i, n := range all {
		r.Set(n, i)
	}
	tests := []struct {
		id     string
		filter string
		want   []string
	}{
		{"MQTT-4.7.2-1 # skips $ names", "#", []string{"/", "/finance", "a/$b", "finance", "sport", "sport/", "sport/golf", "sport/tennis", "sport/tennis/player1", "sport/tennis/player1/ranking", "sport/tennis/player2"}},
		{"MQTT-4.7.2-1 + skips $ names", "+", []string{"finance", "sport"}},
		{"MQTT-4.7.2-1 +/# skips $ names", "+/#", []string{"/", "/finance", "a/$b", "finance", "sport", "sport/", "sport/golf", "sport/tennis", "sport/tennis/player1", "sport/tennis/player1/ranking", "sport/tennis/player2"}},
		{"MQTT-4.7.2-1 $SYS/# reaches $SYS", "$SYS/#", []string{"$SYS", "$SYS/monitor/Clients"}},
		{"MQTT-4.7.2-1 $SYS/+/Clients", "$SYS/+/Clients", []string{"$SYS/monitor/Clients"}},
		{"MQTT-4.7.2-1 a/+ matches a/$b", "a/+", []string{"a/$b"}},
		{"MQTT-4.7.1-2 sport/# includes sport", "sport/#", []string{"sport", "sport/", "sport/golf", "sport/tennis", "sport/tennis/player1", "sport/tennis/player1/ranking", "sport/tennis/player2"}},
		{"MQTT-4.7.1-2 sport/tennis/player1/#", "sport/tennis/player1/#", []string{"sport/tennis/player1", "sport/tennis/player1/ranking"}},
		{"MQTT-4.7.1-3 sport/+", "sport/+", []string{"sport/", "sport/golf", "sport/tennis"}},
		{"MQTT-4.7.1-3 sport/tennis/+", "sport/tennis/+", []string{"sport/tennis/player1", "sport/tennis/player2"}},
		{"MQTT-4.7.1-3 +/+", "+/+", []string{"/", "/finance", "a/$b", "sport/", "sport/golf", "sport/tennis"}},
		{"MQTT-4.7.1-3 /+", "/+", []string{"/", "/finance"}},
		{"MQTT-4.7.1-3 +/tennis/#", "+/tennis/#", []string{"sport/tennis", "sport/tennis/player1", "sport/tennis/player1/ranking", "sport/tennis/player2"}},
		{"4.7.3 exact name", "sport/tennis", []string{"sport/tennis"}},
		{"4.7.3 absent name", "sport/tennis/player3", nil},
		{"4.7.3 empty filter", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			if got := retainedNames(r, tt.filter); !slices.Equal(got, tt.want) {
				t.Errorf("[%s] Match(%q) = %q, want %q", tt.id, tt.filter, got, tt.want)
			}
			// Same answer as the naive matcher.
			var want []string
			for _, n := range all {
				if Match(tt.filter, n) {
					want = append(want, n)
				}
			}
			slices.Sort(want)
			if !slices.Equal(want, tt.want) {
				t.Errorf("[%s] table disagrees with Match: %q", tt.id, want)
			}
		})
	}
}

func TestRetainedMatchValues(t *testing.T) {
	r := NewRetained[int]()
	r.Set("a/1", 1)
	r.Set("a/2", 2)
	r.Set("a/1", 10)
	got := map[string]int{}
	r.Match("a/+", func(n string, v int) bool { got[n] = v; return true })
	if want := map[string]int{"a/1": 10, "a/2": 2}; !maps.Equal(got, want) {
		t.Errorf("Match values = %v, want %v", got, want)
	}
	r.Delete("a/2")
	got = map[string]int{}
	r.Match("#", func(n string, v int) bool { got[n] = v; return true })
	if want := map[string]int{"a/1": 10}; !maps.Equal(got, want) {
		t.Errorf("after Delete, Match values = %v, want %v", got, want)
	}
}

func TestRetainedStopsEarly(t *testing.T) {
	r := NewRetained[int]()
	for i := range 10 {
		r.Set(fmt.Sprintf("t/%d", i), i)
	}
	calls := 0
	r.Match("t/+", func(string, int) bool { calls++; return calls < 3 })
	if calls != 3 {
		t.Errorf("Match called fn %d times after it returned false, want 3", calls)
	}
	calls = 0
	r.Range(func(string, int) bool { calls++; return false })
	if calls != 1 {
		t.Errorf("Range called fn %d times, want 1", calls)
	}
}

func TestRetainedCallbackMayReenter(t *testing.T) {
	r := NewRetained[int]()
	r.Set("a/b", 1)
	r.Set("a/c", 2)
	r.Match("a/+", func(n string, _ int) bool {
		r.Delete(n) // fn runs without the lock held
		r.Set(n+"/x", 3)
		return true
	})
	r.Range(func(n string, _ int) bool { r.Get(n); return true })
	if got := retainedNames(r, "#"); !slices.Equal(got, []string{"a/b/x", "a/c/x"}) {
		t.Errorf("after re-entrant calls: %q", got)
	}
}

func TestRetainedRange(t *testing.T) {
	r := NewRetained[int]()
	want := map[string]int{"$SYS/x": 1, "a": 2, "a/b": 3, "/": 4}
	for n, v := range want {
		r.Set(n, v)
	}
	got := map[string]int{}
	r.Range(func(n string, v int) bool { got[n] = v; return true })
	if !maps.Equal(got, want) {
		t.Errorf("Range = %v, want %v (including $ names)", got, want)
	}
}

func TestRetainedConcurrent(t *testing.T) {
	r := NewRetained[int]()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 2000 {
				n := fmt.Sprintf("s/%d/%d", w, i%50)
				if i%3 == 0 {
					r.Delete(n)
				} else {
					r.Set(n, i)
				}
			}
		})
		wg.Go(func() {
			for i := range 2000 {
				r.Match(fmt.Sprintf("s/+/%d", i%50), func(n string, _ int) bool {
					if !Match(fmt.Sprintf("s/+/%d", i%50), n) {
						t.Errorf("Match returned %q", n)
					}
					return true
				})
				r.Get(fmt.Sprintf("s/%d/%d", w, i%50))
				_ = r.Len()
			}
		})
	}
	wg.Wait()
	n := 0
	r.Range(func(string, int) bool { n++; return true })
	if n != r.Len() {
		t.Errorf("Range saw %d entries, Len = %d", n, r.Len())
	}
}
