package acl

import (
	"fmt"
	"testing"

	"github.com/turnstilemq/turnstile/internal/auth"
)

func oauthIdent(user string, sp *auth.ScopedPermissions) *auth.Identity {
	return &auth.Identity{User: user, Vhost: "/", Method: "oauth", GrantsSource: auth.GrantsOAuth, Scoped: sp}
}

// An OAuth2 identity is judged by its scopes only: Scoped replaces the stored permissions and
// topic permissions of its user name, with the same rules (LavinMQ's three with the check
// enabled; topic rules always).
func TestOAuthScopedPermissions(t *testing.T) {
	type check struct {
		sub      bool
		clientID string
		topic    string
		on, off  string // denial rule with the permission check enabled, disabled; "" allowed
	}
	tests := []struct {
		name   string
		sp     *auth.ScopedPermissions
		checks []check
	}{
		{
			name: "no scope on the vhost", sp: nil,
			checks: []check{
				{false, "c1", "a", RuleVhostAccess, RuleVhostAccess},
				{true, "c1", "a/#", RuleVhostAccess, RuleVhostAccess},
			},
		},
		{
			name: "nothing granted", sp: &auth.ScopedPermissions{Configure: "^$", Write: "^$", Read: "^$"},
			checks: []check{
				{false, "c1", "a", RuleWrite, ""},
				{true, "c1", "a/#", RuleRead, ""},
			},
		},
		{
			name: "LavinMQ publish example", sp: &auth.ScopedPermissions{Configure: "^$", Write: `^mqtt\.default$`, Read: "^$"},
			checks: []check{
				{false, "c1", "a", "", ""},
				{true, "c1", "a/#", RuleRead, ""},
			},
		},
		{
			name: "read without write on the session queue", sp: &auth.ScopedPermissions{Configure: "^$", Write: `^mqtt\.default$`, Read: `^mqtt\.default$`},
			checks: []check{{true, "c1", "a/#", RuleWriteSession, ""}},
		},
		{
			name: "LavinMQ subscribe example", sp: &auth.ScopedPermissions{Configure: "^$", Write: `^mqtt\..*$`, Read: `^mqtt\.default$`},
			checks: []check{{true, "c1", "a/#", "", ""}, {false, "c1", "a", "", ""}},
		},
		{
			name: "own session queue only", sp: &auth.ScopedPermissions{Write: `^(?:mqtt\.default|mqtt\.dev1)$`, Read: ".*"},
			checks: []check{{true, "dev1", "a/#", "", ""}, {true, "dev2", "a/#", RuleWriteSession, ""}},
		},
		{
			name: "topic rules apply with the check on or off", sp: &auth.ScopedPermissions{Write: ".*", Read: ".*", TopicWrite: `^sensors/.*$`, TopicRead: `^(?:sensors/.*|alerts/#)$`},
			checks: []check{
				{false, "c1", "sensors/1/t", "", ""},
				{false, "c1", "other/sensors/1", RuleTopicWrite, RuleTopicWrite},
				{true, "c1", "sensors/+/t", "", ""},
				{true, "c1", "alerts/#", "", ""},
				{true, "c1", "alerts/x", RuleTopicRead, RuleTopicRead},
				{true, "c1", "$share/g/sensors/#", "", ""},
				{true, "c1", "$share/g/other/#", RuleTopicRead, RuleTopicRead},
			},
		},
		{
			name: "a regex that does not compile denies", sp: &auth.ScopedPermissions{Write: "(", Read: ".*", TopicRead: "["},
			checks: []check{{false, "c1", "a", RuleWrite, ""}, {true, "c1", "a", RuleWriteSession, RuleTopicRead}},
		},
	}
	for _, tt := range tests {
		for _, enabled := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/enabled=%v", tt.name, enabled), func(t *testing.T) {
				c := NewChecker(enabled)
				id := oauthIdent("u", tt.sp)
				for _, ck := range tt.checks {
					var err error
					if ck.sub {
						err = c.CanSubscribe(id, ck.clientID, ck.topic)
					} else {
						err = c.CanPublish(id, ck.clientID, ck.topic)
					}
					want := ck.on
					if !enabled {
						want = ck.off
					}
					if got := denied(t, err); got != want {
						t.Errorf("%+v: denied by %q, want %q", ck, got, want)
					}
				}
			})
		}
	}
}

// The stored permissions of the identity's user name are never used for an OAuth2 identity:
// neither to allow (a local user "alice" with full rights) nor to deny (a restrictive topic
// permission, or no entry at all).
func TestOAuthIgnoresStoredPermissions(t *testing.T) {
	c := NewChecker(true)
	must(t, c.SetPermission(Permission{User: "alice", Vhost: "/", Configure: ".*", Write: ".*", Read: ".*"}))
	must(t, c.SetTopicPermission(TopicPermission{User: "alice", Vhost: "/", Exchange: DefaultExchange, Write: "^nothing$", Read: "^nothing$"}))

	narrow := oauthIdent("alice", &auth.ScopedPermissions{Write: "^$", Read: "^$"})
	if denied(t, c.CanPublish(narrow, "c", "a")) != RuleWrite || denied(t, c.CanSubscribe(narrow, "c", "a")) != RuleRead {
		t.Error("alice's stored permissions let a narrow token through")
	}
	if c.Admits(oauthIdent("alice", nil)) {
		t.Error("alice's permission entry admitted a token without scopes on the vhost")
	}
	wide := oauthIdent("alice", &auth.ScopedPermissions{Write: ".*", Read: ".*"})
	if err := c.CanPublish(wide, "c", "a"); err != nil {
		t.Errorf("alice's topic permission restricted a token: %v", err)
	}
	if err := c.CanSubscribe(wide, "c", "a/#"); err != nil {
		t.Errorf("alice's topic permission restricted a token: %v", err)
	}
	nobody := oauthIdent("nobody", &auth.ScopedPermissions{Write: ".*", Read: ".*"})
	if !c.Admits(nobody) || c.CanPublish(nobody, "c", "a") != nil || c.CanSubscribe(nobody, "c", "a") != nil {
		t.Error("a token for a user without a permission entry was refused")
	}
	// Credential grants still narrow.
	nobody.Grants = []auth.Grant{{Action: "write", Pattern: "x/#"}, {Action: "read", Pattern: "x/#"}}
	if denied(t, c.CanPublish(nobody, "c", "a")) != RuleGrant || denied(t, c.CanSubscribe(nobody, "c", "a/#")) != RuleGrant {
		t.Error("grants did not narrow an OAuth2 identity")
	}
	if c.CanPublish(nobody, "c", "x/1") != nil {
		t.Error("a grant did not allow")
	}
}

// A publish by an OAuth2 identity allocates nothing once its regexes are compiled.
func TestOAuthCanPublishAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector (sync.Pool drops items)")
	}
	c := NewChecker(true)
	id := oauthIdent("u", &auth.ScopedPermissions{Configure: "^$", Write: `^(?:mqtt\.default|mqtt\..*)$`, Read: `^mqtt\.default$`, TopicWrite: `^(?:sensors/.*|alerts/.*)$`})
	for _, topic := range []string{"sensors/dev1/temp", "other/x"} {
		_ = c.CanPublish(id, "dev1", topic) // compile and cache
		if n := testing.AllocsPerRun(1000, func() { _ = c.CanPublish(id, "dev1", topic) }); n != 0 {
			t.Errorf("CanPublish(%q) allocates %v times, want 0", topic, n)
		}
	}
}

func BenchmarkCanPublishOAuth(b *testing.B) {
	c := NewChecker(true)
	for _, bc := range []struct {
		name string
		sp   auth.ScopedPermissions
	}{
		{"anchored write, topic rule", auth.ScopedPermissions{Write: `^(?:mqtt\.default|mqtt\..*)$`, Read: ".*", TopicWrite: `^devices/.*$`}},
		{"wildcard, no topic rule", auth.ScopedPermissions{Write: ".*", Read: ".*"}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			id := oauthIdent("u", &bc.sp)
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
}
