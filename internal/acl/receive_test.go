package acl

import (
	"testing"

	"github.com/turnstilemq/turnstile/internal/auth"
)

// TestReadPermissionPerTopic: a filter that passes a read rule by its text does not make every
// topic it matches readable. The two attacks of issue 11: a client id "+" under
// ^devices/{client_id}/ and a wildcard level under a regex that excludes some names.
func TestReadPermissionPerTopic(t *testing.T) {
	c := NewChecker(false)
	for _, p := range []Permission{{User: "u", Vhost: "/", Configure: ".*", Write: ".*", Read: ".*"},
		{User: "s", Vhost: "/", Configure: ".*", Write: ".*", Read: ".*"},
		{User: "free", Vhost: "/", Configure: ".*", Write: ".*", Read: ".*"}} {
		if err := c.SetPermission(p); err != nil {
			t.Fatal(err)
		}
	}
	c.SetTopicPermission(TopicPermission{User: "u", Vhost: "/", Exchange: DefaultExchange, Write: ".*", Read: "^devices/{client_id}/"})
	c.SetTopicPermission(TopicPermission{User: "s", Vhost: "/", Exchange: DefaultExchange, Write: ".*", Read: "^sensors/[^b/][^/]*/"})
	u := &auth.Identity{User: "u", Vhost: "/"}
	s := &auth.Identity{User: "s", Vhost: "/"}
	free := &auth.Identity{User: "free", Vhost: "/"}

	// A client id with a wildcard or a level separator gets nothing from a rule that names
	// {client_id}: escaped, "+" would still pass "devices/+/#" by its text, and "a/b" would
	// reach into client "a"'s subtree.
	if err := c.CanSubscribe(u, "+", "devices/+/#"); err == nil {
		t.Fatal("client id '+' subscribed to devices/+/# under ^devices/{client_id}/")
	}
	if err := c.CanReceive(u, "+", "devices/victim/state"); err == nil {
		t.Fatal("client id '+' may read another device's topic")
	}
	if err := c.CanReceive(u, "a/b", "devices/a/b/state"); err == nil {
		t.Fatal("client id 'a/b' may read inside client a's subtree")
	}
	c.SetTopicPermission(TopicPermission{User: "u", Vhost: "/", Exchange: DefaultExchange, Write: "^devices/{client_id}/", Read: "^devices/{client_id}/"})
	if err := c.CanPublish(u, "a/b", "devices/a/b/cmd"); err == nil {
		t.Fatal("client id 'a/b' may publish inside client a's subtree")
	}
	if err := c.CanPublish(u, "#", "devices/#/cmd"); err == nil {
		t.Fatal("client id '#' may publish under a templated rule")
	}
	if err := c.CanPublish(u, "a", "devices/a/b/cmd"); err != nil {
		t.Fatalf("client a in its own subtree: %v", err)
	}
	// A wildcard filter under a templated rule is checked per message.
	if err := c.CanSubscribe(u, "dev1", "devices/dev1/#"); err != nil {
		t.Fatalf("CanSubscribe own subtree: %v", err)
	}
	if c.ReceiveCovered(u, "devices/+/#") {
		t.Fatal("a wildcard filter under a templated rule claimed to be covered")
	}
	if err := c.CanReceive(u, "dev1", "devices/dev1/state"); err != nil {
		t.Fatalf("own topic: %v", err)
	}

	if err := c.CanSubscribe(s, "c", "sensors/+/#"); err != nil {
		t.Fatalf("CanSubscribe sensors/+/#: %v", err)
	}
	if c.ReceiveCovered(s, "sensors/+/#") {
		t.Fatal("sensors/+/# claimed to be covered by a rule that excludes names starting with b")
	}
	if err := c.CanReceive(s, "c", "sensors/bob/t"); err == nil {
		t.Fatal("sensors/bob/t delivered under ^sensors/[^b/][^/]*/")
	}
	if err := c.CanReceive(s, "c", "sensors/alice/t"); err != nil {
		t.Fatalf("sensors/alice/t: %v", err)
	}

	// Covered without a check per message: no topic rule, a filter without wildcards, a
	// rule that matches everything.
	if !c.ReceiveCovered(free, "a/#") || !c.ReceiveCovered(s, "sensors/alice/t") {
		t.Fatal("ReceiveCovered too strict")
	}
	oauth := &auth.Identity{User: "o", Vhost: "/", GrantsSource: auth.GrantsOAuth,
		Scoped: &auth.ScopedPermissions{Read: ".*", Write: ".*", TopicRead: "^sensors/a.*$"}}
	if c.ReceiveCovered(oauth, "sensors/#") || c.CanReceive(oauth, "c", "sensors/b/1") == nil || c.CanReceive(oauth, "c", "sensors/a/1") != nil {
		t.Fatal("OAuth2 topic scope not applied per message")
	}
}

func BenchmarkCanReceiveTemplated(b *testing.B) {
	c := NewChecker(false)
	c.SetPermission(Permission{User: "u", Vhost: "/", Configure: ".*", Write: ".*", Read: ".*"})
	c.SetTopicPermission(TopicPermission{User: "u", Vhost: "/", Exchange: DefaultExchange, Write: ".*", Read: "^devices/{client_id}/"})
	id := &auth.Identity{User: "u", Vhost: "/"}
	b.ReportAllocs()
	for b.Loop() {
		c.CanReceive(id, "dev1", "devices/dev1/state")
	}
}
