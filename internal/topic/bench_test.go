package topic

import (
	"fmt"
	"strconv"
	"testing"
)

// benchIndex builds an index of n subscriptions laid out like a fleet of
// devices: most filters are per device, some use wildcards in the middle,
// some are shared, and a few catch everything.
func benchIndex(n int) *Index {
	x := NewIndex()
	o := newOwners(n)
	for i := range n {
		site, dev := strconv.Itoa(i%100), strconv.Itoa(i)
		s := Subscription{Owner: o[i], QoS: 1}
		switch i % 10 {
		case 0, 1, 2, 3, 4, 5:
			s.Filter = "site/" + site + "/device/" + dev + "/+"
		case 6:
			s.Filter = "site/" + site + "/device/" + dev + "/#"
		case 7:
			s.Filter = "site/+/device/" + dev + "/status"
		case 8:
			s.Filter = "site/" + site + "/device/+/temp"
			s.Group = "workers" + strconv.Itoa(i%4)
		case 9:
			s.Filter = "site/" + site + "/device/" + dev + "/+/+"
		}
		x.Subscribe(s)
	}
	for i := range 3 {
		x.Subscribe(Subscription{Owner: o[i], Filter: "#"})
		x.Subscribe(Subscription{Owner: o[i], Filter: "site/#"})
		x.Subscribe(Subscription{Owner: o[i], Filter: "$SYS/#"})
	}
	return x
}

func benchNames(n int) []string {
	names := make([]string, 1024)
	for j := range names {
		d := (j * 7919) % n
		names[j] = fmt.Sprintf("site/%d/device/%d/temp", d%100, d)
	}
	return names
}

func BenchmarkIndexMatch(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("subs=%dk", n/1000), func(b *testing.B) {
			x := benchIndex(n)
			names := benchNames(n)
			dst := make([]*Subscription, 0, 1024)
			matched := 0
			b.ReportAllocs()
			b.ResetTimer()
			i := 0
			for b.Loop() {
				dst = x.Match(names[i&1023], dst[:0])
				matched += len(dst)
				i++
			}
			b.ReportMetric(float64(matched)/float64(i), "matches/op")
		})
	}
}

// BenchmarkIndexMatchParallel measures Match from many goroutines, as the
// broker calls it: read lock plus atomic round-robin counters.
func BenchmarkIndexMatchParallel(b *testing.B) {
	x := benchIndex(100_000)
	names := benchNames(100_000)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		dst := make([]*Subscription, 0, 1024)
		i := 0
		for pb.Next() {
			dst = x.Match(names[i&1023], dst[:0])
			i++
		}
	})
}

func BenchmarkIndexSubscribe(b *testing.B) {
	x := NewIndex()
	o := newOwners(1024)
	filters := make([]string, 1024)
	for i := range filters {
		filters[i] = fmt.Sprintf("site/%d/device/%d/+", i%100, i)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		k := i & 1023
		x.Subscribe(Subscription{Owner: o[k], Filter: filters[k]})
		x.Unsubscribe(o[k], "", filters[k])
		i++
	}
}

func BenchmarkMatchFunc(b *testing.B) {
	cases := []struct{ name, filter, topic string }{
		{"exact", "site/42/device/4242/temp", "site/42/device/4242/temp"},
		{"plus", "site/+/device/+/temp", "site/42/device/4242/temp"},
		{"hash", "site/42/#", "site/42/device/4242/temp"},
		{"miss", "site/43/device/+/temp", "site/42/device/4242/temp"},
		{"dollar", "#", "$SYS/broker/uptime"},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				Match(c.filter, c.topic)
			}
		})
	}
}

func BenchmarkRetainedMatch(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		r := NewRetained[int]()
		for i := range n {
			r.Set(fmt.Sprintf("site/%d/device/%d/temp", i%100, i), i)
		}
		r.Set("$SYS/broker/uptime", 0)
		filters := []struct{ name, filter string }{
			{"exact", "site/42/device/4242/temp"},
			{"plus", "site/42/device/+/temp"}, // n/100 results
			{"hash", "site/42/#"},             // n/100 results
			{"plus-first", "+/42/device/4242/temp"},
			{"miss", "site/42/device/x/+"},
		}
		for _, f := range filters {
			b.Run(fmt.Sprintf("retained=%dk/%s", n/1000, f.name), func(b *testing.B) {
				matched := 0
				calls := 0
				b.ReportAllocs()
				for b.Loop() {
					r.Match(f.filter, func(string, int) bool { matched++; return true })
					calls++
				}
				b.ReportMetric(float64(matched)/float64(calls), "matches/op")
			})
		}
	}
}

func BenchmarkRetainedGet(b *testing.B) {
	r := NewRetained[int]()
	for i := range 100_000 {
		r.Set(fmt.Sprintf("site/%d/device/%d/temp", i%100, i), i)
	}
	b.ReportAllocs()
	for b.Loop() {
		r.Get("site/42/device/4242/temp")
	}
}
