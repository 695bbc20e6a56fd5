package mgmt

import (
	"strings"
	"testing"
	"time"
)

func TestRouteMatch(t *testing.T) {
	for _, c := range []struct {
		pattern, path string
		want          map[string]string // nil: no match
	}{
		{"/api/vhosts/{name}", "/api/vhosts/%2F", map[string]string{"name": "/"}},
		{"/api/vhosts/{name}", "/api/vhosts/a%2Fb", map[string]string{"name": "a/b"}},
		{"/api/vhosts/{name}", "/api/vhosts/a/b", nil},
		{"/api/vhosts/{name}", "/api/vhosts/", nil},
		{"/api/vhosts/{name}", "/api/vhosts", nil},
		{"/api/vhosts/{name}", "/api/vhosts/%zz", nil},
		{"/api/permissions/{vhost}/{user}", "/api/permissions/%2F/a%20b", map[string]string{"vhost": "/", "user": "a b"}},
		{"/api/retained/{vhost}/{topic...}", "/api/retained/%2F/a/b/c", map[string]string{"vhost": "/", "topic": "a/b/c"}},
		{"/api/retained/{vhost}/{topic...}", "/api/retained/%2F/a//b/", map[string]string{"vhost": "/", "topic": "a//b/"}},
		{"/api/retained/{vhost}/{topic...}", "/api/retained/%2F/%2Fa%2B", map[string]string{"vhost": "/", "topic": "/a+"}},
		{"/api/retained/{vhost}/{topic...}", "/api/retained/%2F", nil},
		{"/api/retained/{vhost}/{topic...}", "/api/retained/%2F/", nil},
		{"/api/connections/{name...}", "/api/connections/1.2.3.4%3A5%20-%3E%20%2Ftmp%2Fs", map[string]string{"name": "1.2.3.4:5 -> /tmp/s"}},
	} {
		rt := &route{pattern: c.pattern, segs: strings.Split(strings.TrimPrefix(c.pattern, "/"), "/")}
		got, ok := rt.match(strings.Split(strings.TrimPrefix(c.path, "/"), "/"))
		if ok != (c.want != nil) {
			t.Errorf("%s on %s: match %v, want %v", c.pattern, c.path, ok, c.want != nil)
			continue
		}
		for k, v := range c.want {
			if got[k] != v {
				t.Errorf("%s on %s: %s = %q, want %q", c.pattern, c.path, k, got[k], v)
			}
		}
	}
}

func TestRates(t *testing.T) {
	now := time.Unix(1000, 0)
	r := newRates()
	r.now = func() time.Time { return now }
	if got := r.observe("k", counters{100, 0, 10, 0}); got != [numCounters]float64{} {
		t.Fatalf("first sample: %v, want zero rates", got)
	}
	now = now.Add(2 * time.Second)
	if got := r.observe("k", counters{300, 0, 14, 0}); got[cRecvOct] != 100 || got[cPublish] != 2 {
		t.Fatalf("after 2s: %v, want 100 B/s and 2 msg/s", got)
	}
	now = now.Add(4 * time.Second) // 6 s after the first sample: it becomes the older one
	if got := r.observe("k", counters{900, 0, 20, 0}); got[cRecvOct] != 800.0/6 {
		t.Fatalf("after 6s: %v", got)
	}
	now = now.Add(5 * time.Second)
	if got := r.observe("k", counters{900, 0, 20, 0}); got[cRecvOct] != 0 {
		t.Fatalf("idle for 5s: %v, want 0", got)
	}
	now = now.Add(time.Second)
	if got := r.observe("k", counters{5, 0, 0, 0}); got[cRecvOct] != 0 {
		t.Fatalf("a counter that went down (a new connection with the same name): %v, want 0", got)
	}
	now = now.Add(time.Hour)
	r.observe("other", counters{})
	if _, ok := r.m["k"]; ok {
		t.Fatal("a key not seen for an hour was kept")
	}
}

func TestTagList(t *testing.T) {
	for in, want := range map[string]string{
		`"administrator"`:                          "administrator",
		`"administrator, monitoring,,"`:            "administrator|monitoring",
		`["management", "policymaker,monitoring"]`: "management|policymaker|monitoring",
		`""`: "",
		`[]`: "",
	} {
		var tl tagList
		if err := tl.UnmarshalJSON([]byte(in)); err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if got := strings.Join(tl, "|"); got != want {
			t.Errorf("%s: %q, want %q", in, got, want)
		}
	}
	var tl tagList
	if err := tl.UnmarshalJSON([]byte(`{}`)); err == nil || !strings.HasPrefix(err.Error(), "tags:") {
		t.Fatalf("an object as tags: %v", err)
	}
}
