package oauth

import (
	"encoding/json"
	"regexp"
	"slices"
	"testing"

	"github.com/turnstilemq/turnstile/internal/auth"
)

func TestGlobMatch(t *testing.T) {
	for _, tt := range []struct {
		g, s string
		want bool
	}{
		{"*", "", true}, {"*", "/", true}, {"*", "prod", true},
		{"/", "/", true}, {"/", "prod", false},
		{"prod", "prod", true}, {"prod", "production", false},
		{"prod*", "production", true}, {"prod*", "pro", false},
		{"*-eu", "prod-eu", true}, {"*-eu", "prod-us", false},
		{"a*b*c", "aXbYc", true}, {"a*b*c", "abc", true}, {"a*b*c", "acb", false},
		{"a*a*a", "aaaa", true}, {"**", "x", true},
		{".*", "prod", false}, // regex characters are literal in a glob
		{"t/*", "t/a/b", true},
	} {
		if got := globMatch(tt.g, tt.s); got != tt.want {
			t.Errorf("globMatch(%q, %q) = %v, want %v", tt.g, tt.s, got, tt.want)
		}
	}
}

func TestGlobsRegex(t *testing.T) {
	for _, tt := range []struct {
		globs []string
		want  string
		match []string
		miss  []string
	}{
		{nil, "^$", nil, []string{"mqtt.default", ""}},
		{[]string{"*"}, ".*", []string{"mqtt.default", "x"}, nil},
		{[]string{"mqtt.default", "*"}, ".*", nil, nil},
		{[]string{"mqtt.default"}, `^mqtt\.default$`, []string{"mqtt.default"}, []string{"mqttXdefault", "mqtt.default2", "x.mqtt.default"}},
		{[]string{"mqtt.*"}, `^mqtt\..*$`, []string{"mqtt.default", "mqtt.dev1"}, []string{"amq.topic", "mqtt"}},
		{[]string{"a+b(c)", "x|y"}, `^(?:a\+b\(c\)|x\|y)$`, []string{"a+b(c)", "x|y"}, []string{"aab(c)", "x", "y"}},
		{[]string{"a", "a"}, "^a$", []string{"a"}, nil},
		{[]string{"sensors/*", "alerts/#"}, `^(?:sensors/.*|alerts/#)$`, []string{"sensors/1/t", "alerts/#"}, []string{"alerts/1"}},
	} {
		got := globsRegex(tt.globs)
		if got != tt.want {
			t.Errorf("globsRegex(%q) = %q, want %q", tt.globs, got, tt.want)
			continue
		}
		re := regexp.MustCompile(got)
		for _, s := range tt.match {
			if !re.MatchString(s) {
				t.Errorf("%q does not match %q", got, s)
			}
		}
		for _, s := range tt.miss {
			if got != "^$" && re.MatchString(s) {
				t.Errorf("%q matches %q", got, s)
			}
		}
	}
}

// The grammar of lavinmq-mqtt.md §4 (RabbitMQ's): prefix filter, tags, three kinds, URL-decoded
// parts, globs, OR-ed grants, ^$ for a kind without one, the routing-key part as topic rules.
func TestScopeGrammar(t *testing.T) {
	type want struct {
		tags   []auth.Tag
		scoped *auth.ScopedPermissions // nil: no access to the vhost
	}
	sp := func(c, w, r, tw, tr string) *auth.ScopedPermissions {
		return &auth.ScopedPermissions{Configure: c, Write: w, Read: r, TopicWrite: tw, TopicRead: tr}
	}
	tests := []struct {
		name   string
		scopes []string
		prefix string
		vhost  string
		want   want
	}{
		{
			name: "LavinMQ publish example", prefix: "mq.", vhost: "/",
			scopes: []string{"mq.write:%2F/mqtt.default"},
			want:   want{scoped: sp("^$", `^mqtt\.default$`, "^$", "", "")},
		},
		{
			name: "LavinMQ subscribe example", prefix: "mq.", vhost: "/",
			scopes: []string{"mq.read:%2F/mqtt.default", "mq.write:%2F/mqtt.*"},
			want:   want{scoped: sp("^$", `^mqtt\..*$`, `^mqtt\.default$`, "", "")},
		},
		{
			name: "prefix filters and strips", prefix: "mq.", vhost: "/",
			scopes: []string{"other.read:*/*", "read:*/*", "mq.read:*/*", "openid", "profile"},
			want:   want{scoped: sp("^$", "^$", ".*", "", "")},
		},
		{
			name: "no prefix: every scope", prefix: "", vhost: "prod",
			scopes: []string{"configure:prod/*", "write:prod/*", "read:prod/*", "openid"},
			want:   want{scoped: sp(".*", ".*", ".*", "", "")},
		},
		{
			name: "tags: known ones, once", prefix: "mq.", vhost: "/",
			scopes: []string{"mq.tag:administrator", "mq.tag:monitoring", "mq.tag:administrator", "mq.tag:superuser", "tag:management"},
			want:   want{tags: []auth.Tag{auth.TagAdministrator, auth.TagMonitoring}},
		},
		{
			name: "other vhost: no access", prefix: "", vhost: "dev",
			scopes: []string{"read:prod/*", "write:prod/*"},
			want:   want{},
		},
		{
			name: "vhost glob", prefix: "", vhost: "prod-eu",
			scopes: []string{"read:prod-*/*", "write:*-us/*", "write:*/mqtt.default"},
			want:   want{scoped: sp("^$", `^mqtt\.default$`, ".*", "", "")},
		},
		{
			name: "several grants of a kind are OR-ed", prefix: "", vhost: "v",
			scopes: []string{"write:v/mqtt.default", "write:v/mqtt.dev1", "write:*/mqtt.dev2"},
			want:   want{scoped: sp("^$", `^(?:mqtt\.default|mqtt\.dev1|mqtt\.dev2)$`, "^$", "", "")},
		},
		{
			name: "URL-decoded vhost and resource, '+' kept", prefix: "", vhost: "a/b+c",
			scopes: []string{"read:a%2Fb+c/x%2Ey", "write:a%2fb%2Bc/q%20r"},
			want:   want{scoped: sp("^$", `^q r$`, `^x\.y$`, "", "")},
		},
		{
			name: "routing-key part feeds topic rules", prefix: "", vhost: "/",
			scopes: []string{"write:%2F/mqtt.default/sensors%2F*", "write:%2F/*/alerts%2F*", "read:%2F/mqtt.default/sensors%2F%23"},
			want:   want{scoped: sp("^$", ".*", `^mqtt\.default$`, `^(?:sensors/.*|alerts/.*)$`, `^sensors/#$`)},
		},
		{
			name: "a matching grant without a routing key leaves the topic open", prefix: "", vhost: "/",
			scopes: []string{"write:%2F/mqtt.default/sensors%2F*", "write:%2F/mqtt.*", "read:*/*/x", "read:%2F/mqtt.default"},
			want:   want{scoped: sp("^$", `^(?:mqtt\.default|mqtt\..*)$`, ".*", "", "")},
		},
		{
			name: "routing keys of grants on other resources are not topic rules", prefix: "", vhost: "/",
			scopes: []string{"write:%2F/mqtt.default", "write:%2F/amq.topic/x", "configure:%2F/mqtt.default/y"},
			want:   want{scoped: sp(`^mqtt\.default$`, `^(?:mqtt\.default|amq\.topic)$`, "^$", "", "")},
		},
		{
			name: "malformed scopes are ignored", prefix: "", vhost: "/",
			scopes: []string{"read", "read:", "read:%2F", "read:%2F/a/b/c", "read:%2F/", "read:/x", "read:%ZZ/x", "delete:%2F/x", "write:%2F/ok"},
			want:   want{scoped: sp("^$", "^ok$", "^$", "", "")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tags, grants := parseScopes(tt.scopes, tt.prefix)
			if !slices.Equal(tags, tt.want.tags) {
				t.Errorf("tags %v, want %v", tags, tt.want.tags)
			}
			got := scopedFor(grants, tt.vhost)
			switch {
			case got == nil && tt.want.scoped == nil:
			case got == nil || tt.want.scoped == nil:
				t.Fatalf("scoped %+v, want %+v", got, tt.want.scoped)
			case *got != *tt.want.scoped:
				t.Errorf("scoped\n got %+v\nwant %+v", *got, *tt.want.scoped)
			}
			if got != nil {
				for _, re := range []string{got.Configure, got.Write, got.Read, got.TopicWrite, got.TopicRead} {
					if _, err := regexp.Compile(re); err != nil {
						t.Errorf("%q does not compile: %v", re, err)
					}
				}
			}
		})
	}
}

// Where scopes come from: scope (string or array), resource_access.<id>.roles, and the
// additional keys (string, array, or object keyed by resource_server_id).
func TestCollectScopes(t *testing.T) {
	raw := func(js string) map[string]json.RawMessage {
		var m map[string]json.RawMessage
		if err := json.Unmarshal([]byte(js), &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	for _, tt := range []struct {
		name       string
		rsid       string
		additional []string
		claims     string
		want       []string
	}{
		{"scope string", "", nil, `{"scope":"a b  c"}`, []string{"a", "b", "c"}},
		{"scope array", "", nil, `{"scope":["a","b c"]}`, []string{"a", "b", "c"}},
		{"scope of another type", "", nil, `{"scope":42}`, nil},
		{"scope object is not read", "", nil, `{"scope":{"x":"a"}}`, nil},
		{"resource_access", "mq", nil, `{"resource_access":{"mq":{"roles":["r1","r2"]},"other":{"roles":["no"]}}}`, []string{"r1", "r2"}},
		{"resource_access without an id", "", nil, `{"resource_access":{"mq":{"roles":["r1"]}}}`, nil},
		{"additional string and array", "", []string{"scp", "roles"}, `{"scp":"s1 s2","roles":["r1"]}`, []string{"s1", "s2", "r1"}},
		{"additional object keyed by id", "mq", []string{"perms"}, `{"perms":{"mq":["p1","p2"],"other":["no"]}}`, []string{"p1", "p2"}},
		{"additional object, no id: every key", "", []string{"perms"}, `{"perms":{"b":"p2","a":["p1"]}}`, []string{"p1", "p2"}},
		{"all sources, in order", "mq", []string{"extra"}, `{"scope":"s","resource_access":{"mq":{"roles":["r"]}},"extra":"e"}`, []string{"r", "s", "e"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := &Provider{o: Options{ResourceServerID: tt.rsid, AdditionalScopesKeys: tt.additional}}
			if got := p.collectScopes(raw(tt.claims)); !slices.Equal(got, tt.want) {
				t.Errorf("scopes %q, want %q", got, tt.want)
			}
		})
	}
}

func TestPrefixDefault(t *testing.T) {
	empty := ""
	custom := "rabbitmq."
	for _, tt := range []struct {
		rsid   string
		prefix *string
		want   string
	}{
		{"", nil, ""}, {"mq", nil, "mq."}, {"mq", &empty, ""}, {"mq", &custom, "rabbitmq."}, {"", &custom, "rabbitmq."},
	} {
		p := &Provider{o: Options{ResourceServerID: tt.rsid, ScopePrefix: tt.prefix}}
		if got := p.prefix(); got != tt.want {
			t.Errorf("rsid %q prefix %v: %q, want %q", tt.rsid, tt.prefix, got, tt.want)
		}
	}
}
