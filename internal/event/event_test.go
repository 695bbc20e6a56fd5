package event

import "testing"

func TestMultiAndCounters(t *testing.T) {
	var m Multi
	var c Counters
	var seen []Kind
	m.Observe(Event{Kind: Connected}) // no observers yet: nothing happens
	m.Add(&c)
	m.Add(Func(func(e Event) { seen = append(seen, e.Kind) }))
	m.Observe(Event{Kind: Connected})
	m.Observe(Event{Kind: LoginFailed, Reason: ReasonBadCredentials})
	m.Observe(Event{Kind: LoginFailed, Reason: ReasonBadCredentials})
	m.Observe(Event{Kind: Denied, Action: "publish"})
	m.Observe(Event{Kind: WillSuppressed, Reason: WillRevoked})
	if len(seen) != 5 {
		t.Fatalf("second observer saw %d events, want 5", len(seen))
	}
	if c.Total(Connected) != 1 || c.Total(LoginFailed) != 2 {
		t.Fatalf("totals: connected %d login_failed %d", c.Total(Connected), c.Total(LoginFailed))
	}
	if got := c.ByReason(LoginFailed)[ReasonBadCredentials]; got != 2 {
		t.Fatalf("login_failed{bad_credentials} = %d, want 2", got)
	}
	if got := c.ByReason(Denied)["publish"]; got != 1 {
		t.Fatalf("denied{publish} = %d, want 1", got)
	}
	if got := c.ByReason(WillSuppressed)[WillRevoked]; got != 1 {
		t.Fatalf("will_suppressed{revoked} = %d", got)
	}
	if Kind(200).String() != "unknown" || WillPublished.String() != "will_published" {
		t.Fatal("kind names")
	}
}
