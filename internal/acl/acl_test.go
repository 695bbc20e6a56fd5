package acl

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/turnstilemq/turnstile/internal/auth"
)

func ident(user, vhost string) *auth.Identity { return &auth.Identity{User: user, Vhost: vhost} }

// denied returns the rule that refused, "" when err is nil; it fails on any other error.
func denied(t *testing.T, err error) string {
	t.Helper()
	if err == nil {
		return ""
	}
	var d *Denial
	if !errors.As(err, &d) {
		t.Fatalf("error %v is not a *Denial", err)
	}
	return d.Rule
}

// RabbitMQ semantics: unanchored search; "" and "^$" match nothing; ".*" everything.
func TestMatcherRabbitMQSemantics(t *testing.T) {
	tests := []struct {
		re, name string
		want     bool
	}{
		{"", "mqtt.default", false},
		{"", "", false},
		{"^$", "mqtt.default", false},
		{"^$", "", false},
		{".*", "mqtt.default", true},
		{".*", "", true},
		{".*", "a\nb", true},
		{"^.*", "a\nb", true},
		{".*$", "a\nb", true},
		{"^.*$", "a\nb", false}, // '.' stops at a newline: not special-cased
		{"^.*$", "mqtt.default", true},
		{"default", "mqtt.default", true}, // unanchored
		{"mqtt", "mqtt.default", true},
		{"^default", "mqtt.default", false},
		{"^mqtt\\.default$", "mqtt.default", true},
		{"^mqtt\\.default$", "mqtt.defaultx", false},
		{"^mqtt\\.", "mqtt.client-1", true},
		{"amq\\.", "mqtt.default", false},
		{"x|default", "mqtt.default", true},
	}
	for _, tt := range tests {
		m, err := compileMatcher(tt.re)
		if err != nil {
			t.Fatalf("compileMatcher(%q): %v", tt.re, err)
		}
		if got := m.match(tt.name); got != tt.want {
			t.Errorf("match(%q, %q) = %v, want %v", tt.re, tt.name, got, tt.want)
		}
		if tt.re != "" && tt.re != "^$" {
			// Apart from RabbitMQ's empty special case, the answer is regexp.MatchString's.
			if ref := regexp.MustCompile(tt.re).MatchString(tt.name); ref != tt.want {
				t.Errorf("regexp.MatchString(%q, %q) = %v, the table says %v", tt.re, tt.name, ref, tt.want)
			}
		}
	}
}

func TestSetPermissionBadRegexNamesField(t *testing.T) {
	c := NewChecker(true)
	for _, tt := range []struct {
		p     Permission
		field string
	}{
		{Permission{User: "u", Vhost: "/", Configure: "(", Write: ".*", Read: ".*"}, "configure"},
		{Permission{User: "u", Vhost: "/", Configure: ".*", Write: "[", Read: ".*"}, "write"},
		{Permission{User: "u", Vhost: "/", Configure: ".*", Write: ".*", Read: "a{2,1}"}, "read"},
	} {
		err := c.SetPermission(tt.p)
		if err == nil || !strings.Contains(err.Error(), ": "+tt.field+": ") {
			t.Errorf("SetPermission(%+v) = %v, want an error naming %q", tt.p, err, tt.field)
		}
	}
	for _, p := range []Permission{{Vhost: "/"}, {User: "u"}} {
		if err := c.SetPermission(p); !errors.Is(err, ErrEmptyName) {
			t.Errorf("SetPermission(%+v) = %v, want ErrEmptyName", p, err)
		}
	}
	for _, p := range []TopicPermission{
		{User: "u", Vhost: "/", Exchange: DefaultExchange, Write: "(", Read: ".*"},
		{User: "u", Vhost: "/", Exchange: DefaultExchange, Write: ".*", Read: "^a/{client_id}("},
	} {
		err := c.SetTopicPermission(p)
		if err == nil {
			t.Errorf("SetTopicPermission(%+v) = nil, want an error", p)
		}
	}
	if err := c.SetTopicPermission(TopicPermission{User: "u", Vhost: "/", Write: ".*"}); !errors.Is(err, ErrEmptyName) {
		t.Errorf("empty exchange: %v, want ErrEmptyName", err)
	}
	if c.Generation() != 0 || len(c.Permissions()) != 0 || len(c.TopicPermissions()) != 0 {
		t.Errorf("a refused change changed the checker: gen %d", c.Generation())
	}
}

// With permission_check_enabled = false, any client with access may publish and subscribe;
// with true, LavinMQ's three rules apply.
func TestLavinMQRules(t *testing.T) {
	tests := []struct {
		name                     string
		perm                     *Permission // nil: no entry
		clientID                 string
		pubOn, subOn             string // denial rule with the check enabled
		pubOff, subOff, noAccess bool
	}{
		{name: "full", perm: &Permission{Configure: ".*", Write: ".*", Read: ".*"}, clientID: "c1"},
		{name: "no entry", clientID: "c1", pubOn: RuleVhostAccess, subOn: RuleVhostAccess, noAccess: true},
		{name: "empty regexes", perm: &Permission{}, clientID: "c1", pubOn: RuleWrite, subOn: RuleRead},
		{name: "^$", perm: &Permission{Configure: "^$", Write: "^$", Read: "^$"}, clientID: "c1", pubOn: RuleWrite, subOn: RuleRead},
		{name: "read only", perm: &Permission{Read: ".*"}, clientID: "c1", pubOn: RuleWrite, subOn: RuleWriteSession},
		{name: "write only", perm: &Permission{Write: ".*"}, clientID: "c1", subOn: RuleRead},
		{
			name: "write on mqtt.default, not the session queue", clientID: "c1",
			perm:  &Permission{Write: "^mqtt\\.default$", Read: "^mqtt\\.default$"},
			subOn: RuleWriteSession,
		},
		{
			name: "write on own session queue only", clientID: "c1",
			perm: &Permission{Write: "^mqtt\\.(default|c1)$", Read: "^mqtt\\.default$"},
		},
		{
			name: "write on another client's queue", clientID: "c2",
			perm:  &Permission{Write: "^mqtt\\.(default|c1)$", Read: "^mqtt\\.default$"},
			subOn: RuleWriteSession,
		},
		{name: "unanchored", perm: &Permission{Write: "default|c1", Read: "default"}, clientID: "c1"},
		{name: "configure is never checked", perm: &Permission{Configure: "", Write: ".*", Read: ".*"}, clientID: "c1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, enabled := range []bool{true, false} {
				c := NewChecker(enabled)
				if tt.perm != nil {
					p := *tt.perm
					p.User, p.Vhost = "u", "/"
					if err := c.SetPermission(p); err != nil {
						t.Fatal(err)
					}
				}
				if got := c.HasAccess("u", "/"); got != !tt.noAccess {
					t.Errorf("HasAccess = %v", got)
				}
				id := ident("u", "/")
				wantPub, wantSub := tt.pubOn, tt.subOn
				if !enabled && !tt.noAccess { // without an entry there is no access, checked or not
					wantPub, wantSub = "", ""
				}
				if got := denied(t, c.CanPublish(id, tt.clientID, "a/b")); got != wantPub {
					t.Errorf("enabled=%v: CanPublish denied by %q, want %q", enabled, got, wantPub)
				}
				if got := denied(t, c.CanSubscribe(id, tt.clientID, "a/#")); got != wantSub {
					t.Errorf("enabled=%v: CanSubscribe denied by %q, want %q", enabled, got, wantSub)
				}
			}
		})
	}
}

func TestHasAccessIsPerVhost(t *testing.T) {
	c := NewChecker(false)
	must(t, c.SetPermission(Permission{User: "u", Vhost: "a"}))
	if !c.HasAccess("u", "a") || c.HasAccess("u", "b") || c.HasAccess("v", "a") {
		t.Error("HasAccess does not follow the (user, vhost) entries")
	}
	// The identity's user and vhost are the ones checked.
	c = NewChecker(true)
	must(t, c.SetPermission(Permission{User: "u", Vhost: "a", Write: ".*", Read: ".*"}))
	if err := c.CanPublish(ident("u", "b"), "c", "t"); err == nil {
		t.Error("a permission on vhost a allowed a publish in vhost b")
	}
	if err := c.CanPublish(ident("v", "a"), "c", "t"); err == nil {
		t.Error("u's permission allowed v to publish")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestTopicPermissions(t *testing.T) {
	type check struct {
		user, clientID string
		sub            bool
		topic          string
		want           string // denial rule, "" allowed
	}
	tests := []struct {
		name        string
		write, read string
		exchange    string // default mqtt.default
		checks      []check
	}{
		{
			name: "plain", write: "^sensors/", read: "^(sensors|alerts)/",
			checks: []check{
				{"u", "c", false, "sensors/1", ""},
				{"u", "c", false, "other/sensors/1", RuleTopicWrite},
				{"u", "c", true, "alerts/#", ""},
				{"u", "c", true, "#", RuleTopicRead},
				{"u", "c", true, "+/x", RuleTopicRead},
			},
		},
		{
			name: "unanchored", write: "sensors", read: "sensors",
			checks: []check{{"u", "c", false, "a/sensors/b", ""}, {"u", "c", true, "x/sensors/#", ""}},
		},
		{
			name: "empty and ^$ deny", write: "", read: "^$",
			checks: []check{{"u", "c", false, "a", RuleTopicWrite}, {"u", "c", true, "a", RuleTopicRead}},
		},
		{
			name: "username", write: "^users/{username}/", read: "^users/{username}/",
			checks: []check{
				{"u", "c", false, "users/u/x", ""},
				{"u", "c", false, "users/v/x", RuleTopicWrite},
				{"u", "c", true, "users/u/#", ""},
				{"u", "c", true, "users/+/#", RuleTopicRead},
			},
		},
		{
			name: "vhost", write: "^{vhost}/", read: "^{vhost}/",
			checks: []check{{"u", "c", false, "//x", ""}, {"u", "c", false, "/x", RuleTopicWrite}},
		},
		{
			name: "client_id", write: "^devices/{client_id}/", read: "^devices/{client_id}/",
			checks: []check{
				{"u", "dev1", false, "devices/dev1/temp", ""},
				{"u", "dev2", false, "devices/dev1/temp", RuleTopicWrite},
				{"u", "dev1", true, "devices/dev1/#", ""},
				{"u", "dev1", true, "devices/+/#", RuleTopicRead},
			},
		},
		{
			// A client id full of regex metacharacters is inserted escaped: ".*" is the
			// literal ".*", not "anything". RabbitMQ would insert it raw.
			name: "client_id with metacharacters", write: "^devices/{client_id}/", read: "^devices/{client_id}$",
			checks: []check{
				{"u", ".*", false, "devices/.*/temp", ""},
				{"u", ".*", false, "devices/dev1/temp", RuleTopicWrite},
				{"u", "a|b", false, "devices/a|b/t", ""},
				{"u", "a|b", false, "devices/a/t", RuleTopicWrite},
				{"u", "a|b", false, "b/", RuleTopicWrite},
				{"u", `x\E.*\Q`, false, `devices/x\E.*\Q/t`, ""},
				{"u", `x\E.*\Q`, false, `devices/xyz/t`, RuleTopicWrite},
				{"u", "(.)[^]{1,}$?", false, "devices/(.)[^]{1,}$?/t", ""},
				{"u", "(.)[^]{1,}$?", false, "devices/x/t", RuleTopicWrite},
				{"u", ".*", true, "devices/.*", ""},
				{"u", ".*", true, "devices/abc", RuleTopicRead},
			},
		},
		{
			name: "all three", write: "^{vhost}/{username}/{client_id}$", read: ".*",
			checks: []check{{"u", "c", false, "//u/c", ""}, {"u", "c", false, "//u/d", RuleTopicWrite}},
		},
		{
			name: "other exchanges are not checked", write: "", read: "", exchange: "amq.topic",
			checks: []check{{"u", "c", false, "a", ""}, {"u", "c", true, "a", ""}},
		},
		{
			name: "other users are not restricted", write: "", read: "",
			checks: []check{{"v", "c", false, "a", ""}, {"v", "c", true, "a", ""}},
		},
	}
	for _, tt := range tests {
		for _, enabled := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/enabled=%v", tt.name, enabled), func(t *testing.T) {
				c := NewChecker(enabled)
				for _, u := range []string{"u", "v"} {
					must(t, c.SetPermission(Permission{User: u, Vhost: "/", Write: ".*", Read: ".*"}))
				}
				ex := tt.exchange
				if ex == "" {
					ex = DefaultExchange
				}
				must(t, c.SetTopicPermission(TopicPermission{User: "u", Vhost: "/", Exchange: ex, Write: tt.write, Read: tt.read}))
				for _, ck := range tt.checks {
					id := ident(ck.user, "/")
					var err error
					if ck.sub {
						err = c.CanSubscribe(id, ck.clientID, ck.topic)
					} else {
						err = c.CanPublish(id, ck.clientID, ck.topic)
					}
					if got := denied(t, err); got != ck.want {
						t.Errorf("%+v: denied by %q, want %q", ck, got, ck.want)
					}
				}
			})
		}
	}
}

func TestAppendQuoteMetaIsQuoteMeta(t *testing.T) {
	for _, s := range []string{"", "abc", `\.+*?()|[]{}^$`, "a.b*c", "ünï/cødé", "x\x00y"} {
		if got := string(appendQuoteMeta(nil, s)); got != regexp.QuoteMeta(s) {
			t.Errorf("appendQuoteMeta(%q) = %q, want %q", s, got, regexp.QuoteMeta(s))
		}
	}
}

func TestParseTemplate(t *testing.T) {
	if parseTemplate("^a/b$") != nil {
		t.Error("a rule without variables was parsed as a template")
	}
	r := rule{parts: parseTemplate("{client_id}/{username}-{vhost}{client_id}x{other}")}
	if got := string(r.expand(nil, "u", "v", "c")); got != "c/u-vcx{other}" {
		t.Errorf("expand = %q", got)
	}
}

func TestExprCacheBounded(t *testing.T) {
	c := NewChecker(false)
	c.cache.init(8 * cacheShards)
	must(t, c.SetPermission(Permission{User: "u", Vhost: "/", Configure: ".*", Write: ".*", Read: ".*"}))
	must(t, c.SetTopicPermission(TopicPermission{User: "u", Vhost: "/", Exchange: DefaultExchange, Write: "^{client_id}/", Read: ".*"}))
	for i := range 1000 {
		id := fmt.Sprint(i)
		if err := c.CanPublish(ident("u", "/"), id, id+"/t"); err != nil {
			t.Fatalf("client %s: %v", id, err)
		}
		if n := c.cache.len(); n > 8*cacheShards {
			t.Fatalf("cache holds %d entries, bound %d", n, 8*cacheShards)
		}
	}
	if n := c.cache.len(); n == 0 {
		t.Error("nothing cached")
	}
}

func TestGrants(t *testing.T) {
	c := NewChecker(false)
	must(t, c.SetPermission(Permission{User: "u", Vhost: "/", Write: ".*", Read: ".*"}))
	id := ident("u", "/")
	id.Grants = []auth.Grant{
		{Action: "write", Pattern: "a/+/c"},
		{Action: "write", Pattern: "b/#"},
		{Action: "read", Pattern: "a/#"},
		{Action: "read", Pattern: "x/+"},
		{Action: "read", Pattern: "#"},
	}
	pubs := []struct {
		topic string
		ok    bool
	}{
		{"a/b/c", true}, {"a/b/d", false}, {"b", true}, {"b/x/y", true},
		{"x/y", false}, // only read grants cover x/+
		{"$SYS/x", false},
	}
	for _, p := range pubs {
		if got := c.CanPublish(id, "c", p.topic) == nil; got != p.ok {
			t.Errorf("CanPublish(%q) allowed = %v, want %v", p.topic, got, p.ok)
		}
	}
	// "#" covers every filter except those starting with '$'.
	subs := []struct {
		filter string
		ok     bool
	}{
		{"a/b/+", true}, {"anything/#", true}, {"$SYS/x", false}, {"$share/g/q/#", true},
	}
	for _, s := range subs {
		if got := c.CanSubscribe(id, "c", s.filter) == nil; got != s.ok {
			t.Errorf("CanSubscribe(%q) allowed = %v, want %v", s.filter, got, s.ok)
		}
	}
	// Empty, non-nil grants: nothing is allowed.
	none := ident("u", "/")
	none.Grants = []auth.Grant{}
	if got := denied(t, c.CanPublish(none, "c", "a")); got != RuleGrant {
		t.Errorf("empty grants: publish denied by %q", got)
	}
	if got := denied(t, c.CanSubscribe(none, "c", "a")); got != RuleGrant {
		t.Errorf("empty grants: subscribe denied by %q", got)
	}
	// Grants come in addition to the stored permissions, not instead.
	c2 := NewChecker(true)
	must(t, c2.SetPermission(Permission{User: "u", Vhost: "/", Write: "", Read: ".*"}))
	if got := denied(t, c2.CanPublish(id, "c", "a/b/c")); got != RuleWrite {
		t.Errorf("grant overrode the permission: denied by %q", got)
	}
}

func TestCoversFilter(t *testing.T) {
	tests := []struct {
		pattern, filter string
		want            bool
	}{
		{"a/#", "a/b/+", true},
		{"a/+", "a/#", false},
		{"#", "$SYS/x", false},
		{"+/x", "$SYS/x", false},
		{"$SYS/#", "$SYS/x", true},
		{"$SYS/+", "$SYS/x", true},
		{"#", "#", true},
		{"#", "+/a", true}, // "+" matches no '$' topic
		{"+", "+", true},
		{"+", "a", true},
		{"+", "#", false},
		{"a", "a", true},
		{"a", "+", false},
		{"a", "b", false},
		{"a", "a/b", false},
		{"a/b", "a", false},
		{"a/#", "a", true}, // "a/#" matches "a"
		{"a/#", "a/#", true},
		{"a/#", "#", false},
		{"a/+/#", "a/#", false}, // "a/#" matches "a"
		{"a/+/#", "a/x", true},
		{"a/+/#", "a/+", true},
		{"a/+", "a/+", true},
		{"a/+", "a/b", true},
		{"a/+", "a/b/c", false},
		{"a/+/c", "a/+/c", true},
		{"a/+/c", "a/b/+", false},
		{"a/+/c", "a/b/c", true}, // tokens.md §4: a/+/c covers a/b/c and a/+/c, not a/#
		{"a/+/c", "a/#", false},
		{"a/#", "a/b/+", true}, // tokens.md §4
		{"+/+", "/finance", true},
		{"a//b", "a//b", true},
		{"a/+/b", "a//b", true},
		{"a", "", false},
		{"", "a", false},
	}
	for _, tt := range tests {
		if got := coversFilter(tt.pattern, tt.filter); got != tt.want {
			t.Errorf("coversFilter(%q, %q) = %v, want %v", tt.pattern, tt.filter, got, tt.want)
		}
	}
}

func TestDeletes(t *testing.T) {
	c := NewChecker(true)
	for _, u := range []string{"u", "v"} {
		for _, vh := range []string{"a", "b"} {
			must(t, c.SetPermission(Permission{User: u, Vhost: vh, Write: ".*", Read: ".*"}))
			must(t, c.SetTopicPermission(TopicPermission{User: u, Vhost: vh, Exchange: DefaultExchange, Write: "^x", Read: "^x"}))
			must(t, c.SetTopicPermission(TopicPermission{User: u, Vhost: vh, Exchange: "amq.topic", Write: "^x", Read: "^x"}))
		}
	}
	if n := len(c.Permissions()); n != 4 {
		t.Fatalf("%d permissions", n)
	}
	if n := len(c.TopicPermissions()); n != 8 {
		t.Fatalf("%d topic permissions", n)
	}

	if !c.DeletePermission("u", "a") || c.DeletePermission("u", "a") {
		t.Error("DeletePermission did not report the removal once")
	}
	if c.HasAccess("u", "a") {
		t.Error("access after DeletePermission")
	}
	if _, ok := c.Permission("u", "a"); ok {
		t.Error("Permission found after delete")
	}

	if !c.DeleteTopicPermission("u", "b", DefaultExchange) || c.DeleteTopicPermission("u", "b", DefaultExchange) {
		t.Error("DeleteTopicPermission(exchange) did not report the removal once")
	}
	if err := c.CanPublish(ident("u", "b"), "c", "y"); err != nil {
		t.Errorf("topic restriction remains after delete: %v", err)
	}
	if !c.DeleteTopicPermission("u", "b", "") || c.DeleteTopicPermission("u", "b", "") {
		t.Error("DeleteTopicPermission(all) did not report the removal once")
	}
	if c.DeleteTopicPermission("nobody", "b", "") {
		t.Error("DeleteTopicPermission reported removing nothing")
	}

	c.DeleteUser("v")
	for _, p := range c.Permissions() {
		if p.User == "v" {
			t.Errorf("DeleteUser left %+v", p)
		}
	}
	for _, p := range c.TopicPermissions() {
		if p.User == "v" {
			t.Errorf("DeleteUser left %+v", p)
		}
	}
	c.DeleteVhost("a")
	want := []Permission{{User: "u", Vhost: "b", Write: ".*", Read: ".*"}}
	if got := c.Permissions(); !slices.Equal(got, want) {
		t.Errorf("Permissions = %+v, want %+v", got, want)
	}
	if got := c.TopicPermissions(); len(got) != 0 {
		t.Errorf("TopicPermissions = %+v", got)
	}
}

func TestListingsSorted(t *testing.T) {
	c := NewChecker(false)
	must(t, c.Apply(
		[]Permission{{User: "b", Vhost: "2"}, {User: "a", Vhost: "2"}, {User: "z", Vhost: "1"}},
		[]TopicPermission{
			{User: "b", Vhost: "1", Exchange: "y"}, {User: "b", Vhost: "1", Exchange: "x"},
			{User: "a", Vhost: "2", Exchange: "x"}, {User: "c", Vhost: "1", Exchange: "x"},
		}))
	var got []string
	for _, p := range c.Permissions() {
		got = append(got, p.Vhost+"/"+p.User)
	}
	if want := []string{"1/z", "2/a", "2/b"}; !slices.Equal(got, want) {
		t.Errorf("Permissions order %v, want %v", got, want)
	}
	got = nil
	for _, p := range c.TopicPermissions() {
		got = append(got, p.Vhost+"/"+p.User+"/"+p.Exchange)
	}
	if want := []string{"1/b/x", "1/b/y", "1/c/x", "2/a/x"}; !slices.Equal(got, want) {
		t.Errorf("TopicPermissions order %v, want %v", got, want)
	}
	if g := c.Generation(); g != 1 {
		t.Errorf("Apply made %d generations, want 1", g)
	}
}

func TestGenerationAndOnChange(t *testing.T) {
	c := NewChecker(true)
	var calls atomic.Int64
	var seen atomic.Uint64
	c.OnChange(func() {
		calls.Add(1)
		seen.Store(c.Generation())
		// Callbacks run outside the locks: reading and even changing the rules must not deadlock.
		_ = c.Permissions()
		_ = c.HasAccess("u", "/")
	})
	step := func(what string, change func(), wantChange bool) {
		t.Helper()
		g, n := c.Generation(), calls.Load()
		change()
		if wantChange {
			if c.Generation() != g+1 || calls.Load() != n+1 || seen.Load() != g+1 {
				t.Errorf("%s: generation %d→%d, callbacks %d→%d, seen %d", what, g, c.Generation(), n, calls.Load(), seen.Load())
			}
		} else if c.Generation() != g || calls.Load() != n {
			t.Errorf("%s: no-op changed generation %d→%d or ran callbacks", what, g, c.Generation())
		}
	}
	p := Permission{User: "u", Vhost: "/", Write: ".*", Read: ".*"}
	step("set", func() { must(t, c.SetPermission(p)) }, true)
	step("set again", func() { must(t, c.SetPermission(p)) }, true)
	step("bad set", func() { _ = c.SetPermission(Permission{User: "u", Vhost: "/", Write: "("}) }, false)
	tp := TopicPermission{User: "u", Vhost: "/", Exchange: DefaultExchange, Write: ".*", Read: ".*"}
	step("topic set", func() { must(t, c.SetTopicPermission(tp)) }, true)
	step("topic delete", func() { c.DeleteTopicPermission("u", "/", "") }, true)
	step("topic delete nothing", func() { c.DeleteTopicPermission("u", "/", "") }, false)
	step("delete", func() { c.DeletePermission("u", "/") }, true)
	step("delete nothing", func() { c.DeletePermission("u", "/") }, false)
	step("delete user nothing", func() { c.DeleteUser("u") }, false)
	must(t, c.SetPermission(p))
	step("delete user", func() { c.DeleteUser("u") }, true)
	must(t, c.SetPermission(p))
	step("delete vhost", func() { c.DeleteVhost("/") }, true)
	step("apply nothing", func() { must(t, c.Apply(nil, nil)) }, false)
}

// A change applies to the next check: nothing is cached per identity.
func TestLiveChange(t *testing.T) {
	c := NewChecker(true)
	id := ident("u", "/")
	must(t, c.SetPermission(Permission{User: "u", Vhost: "/", Write: ".*", Read: ".*"}))
	if err := c.CanPublish(id, "c", "a"); err != nil {
		t.Fatal(err)
	}
	must(t, c.SetPermission(Permission{User: "u", Vhost: "/", Write: "^$", Read: ".*"}))
	if c.CanPublish(id, "c", "a") == nil {
		t.Error("narrowed permission still allows the next publish")
	}
	must(t, c.SetTopicPermission(TopicPermission{User: "u", Vhost: "/", Exchange: DefaultExchange, Write: ".*", Read: "^b/"}))
	if c.CanSubscribe(id, "c", "a/#") == nil {
		t.Error("new topic permission does not apply to the next subscribe")
	}
}

func TestConcurrent(t *testing.T) {
	c := NewChecker(true)
	var changes atomic.Int64
	c.OnChange(func() { changes.Add(1) })
	var stop atomic.Bool
	var writers, readers sync.WaitGroup
	for w := range 4 {
		writers.Go(func() {
			u := fmt.Sprint("u", w)
			for i := 0; !stop.Load() || i < 200; i++ {
				switch i % 5 {
				case 0:
					_ = c.SetPermission(Permission{User: u, Vhost: "/", Write: ".*", Read: ".*"})
				case 1:
					_ = c.SetTopicPermission(TopicPermission{User: u, Vhost: "/", Exchange: DefaultExchange, Write: "^{client_id}/", Read: ".*"})
				case 2:
					c.DeleteTopicPermission(u, "/", "")
				case 3:
					c.DeleteUser(u)
				case 4:
					_ = c.Permissions()
					_ = c.TopicPermissions()
				}
			}
		})
	}
	for r := range 8 {
		readers.Go(func() {
			id := ident(fmt.Sprint("u", r%4), "/")
			cid := fmt.Sprint("c", r)
			for range 20000 {
				_ = c.CanPublish(id, cid, cid+"/x")
				_ = c.CanSubscribe(id, cid, cid+"/#")
				_ = c.HasAccess(id.User, "/")
			}
		})
	}
	readers.Wait()
	stop.Store(true)
	writers.Wait()
	if c.Generation() != uint64(changes.Load()) {
		t.Errorf("generation %d, callbacks %d", c.Generation(), changes.Load())
	}
}

func TestCanPublishAllocs(t *testing.T) {
	c := NewChecker(true)
	must(t, c.SetPermission(Permission{User: "u", Vhost: "/", Write: "^mqtt\\.", Read: ".*"}))
	must(t, c.SetTopicPermission(TopicPermission{User: "u", Vhost: "/", Exchange: DefaultExchange, Write: "^sensors/[a-z0-9]+/", Read: ".*"}))
	id := ident("u", "/")
	id.Grants = []auth.Grant{{Action: "read", Pattern: "#"}, {Action: "write", Pattern: "sensors/#"}}
	for _, topic := range []string{"sensors/dev1/temp", "other/x"} {
		if n := testing.AllocsPerRun(1000, func() { _ = c.CanPublish(id, "dev1", topic) }); n != 0 {
			t.Errorf("CanPublish(%q) allocates %v times, want 0", topic, n)
		}
	}
	// Templated rules allocate nothing either once the expansion is cached (a goal, not a promise).
	must(t, c.SetTopicPermission(TopicPermission{User: "u", Vhost: "/", Exchange: DefaultExchange, Write: "^sensors/{client_id}/", Read: ".*"}))
	if n := testing.AllocsPerRun(1000, func() { _ = c.CanPublish(id, "dev1", "sensors/dev1/temp") }); n != 0 {
		t.Logf("templated CanPublish allocates %v times", n)
	}
	if n := testing.AllocsPerRun(1000, func() { _ = c.CanSubscribe(id, "dev1", "sensors/#") }); n != 0 {
		t.Logf("CanSubscribe allocates %v times", n)
	}
}

func TestDenialError(t *testing.T) {
	c := NewChecker(true)
	must(t, c.SetPermission(Permission{User: "u", Vhost: "/", Configure: ".*", Write: ".*", Read: "^$"}))
	err := c.CanSubscribe(ident("u", "/"), "c", "a")
	if err == nil || err.Error() != "acl: subscribe refused by read on mqtt.default" {
		t.Errorf("error %v", err)
	}
	var d *Denial
	if !errors.As(err, &d) || d.Action != Subscribe || d.Rule != RuleRead {
		t.Errorf("denial %+v", d)
	}
}

func benchChecker(b *testing.B, write string) (*Checker, *auth.Identity) {
	c := NewChecker(true)
	for i := range 1000 {
		u := fmt.Sprint("user", i)
		if err := c.SetPermission(Permission{User: u, Vhost: "/", Configure: ".*", Write: "^mqtt\\.", Read: ".*"}); err != nil {
			b.Fatal(err)
		}
		if err := c.SetTopicPermission(TopicPermission{User: u, Vhost: "/", Exchange: DefaultExchange, Write: write, Read: ".*"}); err != nil {
			b.Fatal(err)
		}
	}
	return c, ident("user500", "/")
}

func BenchmarkCanPublish(b *testing.B) {
	for _, bc := range []struct{ name, write string }{
		{"plain", "^devices/[^/]+/"},
		{"template", "^devices/{client_id}/"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			c, id := benchChecker(b, bc.write)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := c.CanPublish(id, "dev-42", "devices/dev-42/temp"); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
	b.Run("no topic permission", func(b *testing.B) {
		c := NewChecker(true)
		if err := c.SetPermission(Permission{User: "u", Vhost: "/", Write: ".*", Read: ".*"}); err != nil {
			b.Fatal(err)
		}
		id := ident("u", "/")
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := c.CanPublish(id, "dev-42", "devices/dev-42/temp"); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}

func BenchmarkCanSubscribe(b *testing.B) {
	c, id := benchChecker(b, "^devices/{client_id}/")
	id.Grants = []auth.Grant{{Action: "read", Pattern: "devices/#"}}
	b.ReportAllocs()
	for b.Loop() {
		if err := c.CanSubscribe(id, "dev-42", "devices/dev-42/+"); err != nil {
			b.Fatal(err)
		}
	}
}
