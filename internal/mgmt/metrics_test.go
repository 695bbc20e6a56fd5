package mgmt

import (
	"os"
	"strings"

	"github.com/eclipse/paho.golang/paho"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/turnstilemq/turnstile/internal/acl"
)

// testMetricsMove scrapes /metrics before and after real clients connect, publish, are refused
// and denied, and checks that every counter and gauge moved as it should.
func testMetricsMove(e *env) {
	t := e.t
	e.addUser("mu")
	if err := e.dir.SetPermission(acl.Permission{User: "mu", Vhost: "/", Configure: ".*", Write: ".*", Read: ".*"}); err != nil {
		t.Fatal(err)
	}
	if err := e.dir.SetTopicPermission(acl.TopicPermission{User: "mu", Vhost: "/", Exchange: acl.DefaultExchange,
		Write: "^m/", Read: ".*"}); err != nil {
		t.Fatal(err)
	}
	// Connections of earlier subtests are closed by their cleanups; wait until they are gone.
	eventually(t, "no connections", func() bool { return len(e.srv.Connections("")) == 0 })
	before := e.scrape()

	// An offline session that queues QoS 1 and drops QoS 0.
	off := e.mustConnect(&paho.Connect{ClientID: "m-offline", CleanStart: true,
		Properties: &paho.ConnectProperties{SessionExpiryInterval: u32(600)}})
	off.subscribe("m/#", 1)
	off.conn.Close()
	eventually(t, "m-offline offline", func() bool {
		ss, _ := e.srv.Sessions("/")
		for _, s := range ss {
			if s.ClientID == "m-offline" {
				return !s.Connected
			}
		}
		return false
	})
	sub := e.mustConnect(&paho.Connect{ClientID: "m-sub", CleanStart: true})
	sub.subscribe("m/#", 0)
	pub := e.mustConnect(&paho.Connect{ClientID: "m-pub", CleanStart: true,
		Username: "mu", UsernameFlag: true, Password: []byte(pw("mu")), PasswordFlag: true})
	pub.publish("m/1", 1, false, "one")
	pub.publish("m/2", 0, false, "two") // dropped for the offline session: QoS 0
	pub.publish("m/r", 1, true, "retained")
	if code := pub.publish("forbidden/x", 1, false, "no"); code != 0x87 {
		t.Fatalf("publish outside the topic permission: PUBACK 0x%02X, want 0x87", code)
	}
	for range 3 {
		sub.expectMsg()
	}
	if _, err := e.connect(&paho.Connect{ClientID: "m-bad", CleanStart: true,
		Username: "mu", UsernameFlag: true, Password: []byte("wrong"), PasswordFlag: true}); err == nil {
		t.Fatal("a wrong password connected")
	}
	after := e.scrape()

	delta := func(series string) float64 {
		if _, ok := after[series]; !ok {
			t.Fatalf("series %s not exposed", series)
		}
		return after[series] - before[series]
	}
	for _, c := range []struct {
		series   string
		min, max float64
	}{
		{`turnstile_connects_total`, 3, 3},
		{`turnstile_connections`, 2, 2},
		{`turnstile_vhost_connections{vhost="/"}`, 2, 2},
		{`turnstile_connects_refused_total{reason="bad_user_name_or_password"}`, 1, 1},
		{`turnstile_authentication_failures_total{reason="bad_user_name_or_password"}`, 1, 1},
		{`turnstile_authorization_denials_total{action="publish"}`, 1, 1},
		{`turnstile_authorization_denials_total{action="subscribe"}`, 0, 0},
		{`turnstile_received_messages_total{vhost="/"}`, 4, 4},
		{`turnstile_sent_messages_total{vhost="/"}`, 3, 3},
		{`turnstile_received_bytes_total{vhost="/"}`, 30, 1e6},
		{`turnstile_sent_bytes_total{vhost="/"}`, 30, 1e6},
		{`turnstile_dropped_messages_total{reason="offline_qos0",vhost="/"}`, 1, 1},
		{`turnstile_retained_messages{vhost="/"}`, 1, 1},
		{`turnstile_subscriptions{vhost="/"}`, 2, 2},
		{`turnstile_queued_messages{vhost="/"}`, 2, 2},
		{`turnstile_sessions{vhost="/"}`, 3, 3},
		{`turnstile_store_commit_latency_seconds_count`, 1, 1e6},
	} {
		if d := delta(c.series); d < c.min || d > c.max {
			t.Errorf("%s moved by %v, want %v..%v", c.series, d, c.min, c.max)
		}
	}
	if after[`turnstile_build_info{version="`+e.srv.Overview().Version+`"}`] != 1 {
		t.Errorf("turnstile_build_info missing")
	}
	if after[`turnstile_store_commit_latency_seconds_bucket{le="+Inf"}`] != after[`turnstile_store_commit_latency_seconds_count`] {
		t.Errorf("histogram +Inf bucket differs from the count")
	}
}

// testMetricNames lints every metric with promlint (through testutil.GatherAndLint) and checks
// that each is named turnstile_… and listed in docs/api.md, so a naming mistake or an
// undocumented metric fails the build.
func testMetricNames(e *env) {
	t := e.t
	problems, err := testutil.GatherAndLint(e.reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("metric %s: %s", p.Metric, p.Text)
	}
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("../../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	if len(mfs) < 15 {
		t.Fatalf("only %d metric families gathered", len(mfs))
	}
	for _, mf := range mfs {
		name := mf.GetName()
		if !strings.HasPrefix(name, "turnstile_") {
			t.Errorf("metric %s: not named turnstile_…", name)
		}
		if !strings.Contains(string(doc), "`"+name+"`") {
			t.Errorf("metric %s is not listed in docs/api.md", name)
		}
	}
}

// testCollectorPedantic: the collector is a checked one; a pedantic registry fails to gather
// if Collect sends a metric that Describe did not announce, or an inconsistent one.
func testCollectorPedantic(e *env) {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(newCollector(e.h))
	if _, err := reg.Gather(); err != nil {
		e.t.Fatal(err)
	}
}
