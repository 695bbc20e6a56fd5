package broker_test

// Read permission holds for every message delivered (issue 11): a subscription whose filter
// passes a topic read rule by its text does not make every topic it matches readable. The two
// attacks, with real clients: a wildcard level under a regex that excludes some names, and a
// client id of "+" under ^devices/{client_id}/.

import (
	"testing"

	"github.com/turnstilemq/turnstile/internal/config"
)

func TestReadPermissionEveryDelivery(t *testing.T) {
	t.Parallel()
	addr, srv := startBroker(t, func(c *config.Config) { c.MQTT.AllowAnonymous = false })
	addUser(t, srv, "ops", "pw")
	grantAll(t, srv, "ops", "/")
	addUser(t, srv, "s", "pw")
	grantAll(t, srv, "s", "/")
	setTopicPerm(t, srv, "s", "/", ".*", "^sensors/[^b/][^/]*/") // every sensor but those starting with b
	addUser(t, srv, "dev", "pw")
	grantAll(t, srv, "dev", "/")
	setTopicPerm(t, srv, "dev", "/", ".*", "^devices/{client_id}/")

	ops := connectV5(t, addr, login("ops", "ops", "pw"))
	ops.pub("sensors/bob/t", 1, true, "bob retained") // retained before anyone subscribes
	ops.pub("sensors/alice/t", 1, true, "alice retained")

	// The filter passes the rule by its text ("sensors/+/" matches [^b/][^/]*); each topic is
	// then checked: bob's messages, retained or live, never arrive, in 5.0 or 3.1.1.
	s5 := connectV5(t, addr, login("s5", "s", "pw"))
	s5.mustSub("sensors/+/#")
	s5.expectFrom("sensors/alice/t", "alice retained")
	s3 := connectV3(t, addr, "s3", true, v3Login("s", "pw"))
	if code := s3.subscribe("sensors/+/#", 1); code != 1 {
		t.Fatalf("3.1.1 SUBACK %#x", code)
	}
	s3.expectFrom("sensors/alice/t", "alice retained")
	ops.mustPub("sensors/bob/t", "bob live")
	ops.mustPub("sensors/carol/t", "carol live")
	s5.expectFrom("sensors/carol/t", "carol live") // bob's, published first, was not delivered
	s3.expectFrom("sensors/carol/t", "carol live")
	s5.expectNoMsg()

	// A client id of "+" (valid MQTT) gets nothing from a rule naming {client_id}: escaped it
	// would still pass "devices/+/#" by its text and read every device.
	plus := connectV5(t, addr, login("+", "dev", "pw"))
	if code := plus.sub("devices/+/#"); code != rcNotAuthorized {
		t.Fatalf("client id '+' subscribing to devices/+/#: SUBACK %#x, want 0x87", code)
	}
	own := connectV5(t, addr, login("d1", "dev", "pw"))
	own.mustSub("devices/d1/#")
	ops.mustPub("devices/d2/state", "not yours")
	ops.mustPub("devices/d1/state", "yours")
	own.expectFrom("devices/d1/state", "yours")
	plus.expectNoMsg()
}
