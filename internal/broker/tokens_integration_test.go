package broker_test

// Alibaba-compatible token logins through the whole program with real clients:
// will-and-expiry.md §5 C24–C28, and the broker rows of tokens.md §5 and §7.

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/turnstilemq/turnstile/internal/app"
	"github.com/turnstilemq/turnstile/internal/clock"
	"github.com/turnstilemq/turnstile/internal/config"
	"github.com/turnstilemq/turnstile/internal/event"
	"github.com/turnstilemq/turnstile/internal/packet"
	"github.com/turnstilemq/turnstile/internal/tokens"
)

// tokenEnv is a Turnstile with the token service on, an owner user with full permissions on
// "/", and an AccessKey of that owner.
type tokenEnv struct {
	t    *testing.T
	addr string
	srv  *testBroker
	svc  *tokens.Service
	clk  *clock.Fake
	akid string
}

func startTokens(t *testing.T, mods ...func(*config.Config)) *tokenEnv {
	t.Helper()
	clk := clock.NewFake(time.Now())
	addr, srv := startBrokerOpts(t, func(cfg *config.Config) {
		cfg.Tokens.Port = 1
		cfg.OAuth.Leeway = 0 // expiry at exp exactly
		for _, m := range mods {
			m(cfg)
		}
	}, app.Options{Clock: clk})
	addUser(t, srv, "owner", "pw")
	grantAll(t, srv, "owner", "/")
	svc := srv.app.Tokens()
	akid, _, err := svc.CreateAccessKey("owner", "/")
	if err != nil {
		t.Fatal(err)
	}
	return &tokenEnv{t: t, addr: addr, srv: srv, svc: svc, clk: clk, akid: akid}
}

// apply issues a token of typ for resources, living d.
func (e *tokenEnv) apply(typ string, d time.Duration, resources ...string) *tokens.Issued {
	e.t.Helper()
	is, err := e.svc.ApplyToken(e.akid, "/", resources, typ, e.clk.Now().Add(d))
	if err != nil {
		e.t.Fatal(err)
	}
	return is
}

func (e *tokenEnv) user() string { return "Token|" + e.akid + "|/" }

// v5 connects a paho.golang device with password pairs ("RW|tok", ...).
func (e *tokenEnv) v5(id, password string, will string) (*v5Client, error) {
	cp := &paho.Connect{ClientID: id, CleanStart: true, KeepAlive: 30, Username: e.user(), UsernameFlag: true,
		Password: []byte(password), PasswordFlag: true}
	if will != "" {
		cp.WillMessage = &paho.WillMessage{Topic: will, Payload: []byte("gone " + id), QoS: 1}
	}
	return tryConnectV5(e.t, e.addr, cp)
}

// v3 connects a paho.mqtt.golang 3.1.1 device as Alibaba's samples do (clean session).
func (e *tokenEnv) v3(id, password, will string) *v3Client {
	return connectV3(e.t, e.addr, id, true, func(o *mqtt.ClientOptions) {
		o.SetUsername(e.user()).SetPassword(password)
		if will != "" {
			o.SetWill(will, "gone "+id, 1, false)
		}
	})
}

func upload(tok, typ string) []byte {
	b, _ := json.Marshal(map[string]string{"token": tok, "type": typ})
	return b
}

type notice struct {
	Code       int    `json:"code"`
	ExpireTime int64  `json:"expireTime"`
	Type       string `json:"type"`
}

func decodeNotice(t *testing.T, payload []byte) notice {
	t.Helper()
	var n notice
	if err := json.Unmarshal(payload, &n); err != nil {
		t.Fatalf("notice %q: %v", payload, err)
	}
	return n
}

// TestTokenLoginAndRights: both CONNECT forms; a bad token is 0x86 / return code 4; publishing
// needs a W token matching the topic and subscribing an R token covering the filter (tokens.md
// §4); the owner's own permissions bound what a token allows.
func TestTokenLoginAndRights(t *testing.T) {
	t.Parallel()
	e := startTokens(t)
	w := watcher(t, e.addr, "tok-watch", "#")
	rw := e.apply(tokens.TypeRW, time.Hour, "dev/1/#")
	c, err := e.v5("GID_t@@@1", "RW|"+rw.Token, "")
	if err != nil {
		t.Fatalf("token login: %v", err)
	}
	c.mustPub("dev/1/t", "ok")
	w.expectFrom("dev/1/t", "ok")
	if code := c.tryPub("dev/2/t", 1, false, "not mine"); code != byte(packet.NotAuthorized) {
		t.Fatalf("publish outside the token's resources: %#x, want 0x87", code)
	}
	if code := c.sub("dev/1/+"); code != 1 && code != 0 {
		t.Fatalf("subscribe to a covered filter: %#x", code)
	}
	if code := c.sub("dev/#"); code != byte(packet.NotAuthorized) {
		t.Fatalf("subscribe to dev/# with a dev/1/# token: %#x, want 0x87 (not covered)", code)
	}
	// R and W tokens side by side.
	r, wt := e.apply(tokens.TypeR, time.Hour, "dev/9/#"), e.apply(tokens.TypeW, time.Hour, "dev/9/out")
	c2, err := e.v5("GID_t@@@9", "R|"+r.Token+"|W|"+wt.Token, "")
	if err != nil {
		t.Fatal(err)
	}
	c2.mustSub("dev/9/#")
	c2.mustPub("dev/9/out", "w")
	if code := c2.tryPub("dev/9/other", 1, false, "x"); code != byte(packet.NotAuthorized) {
		t.Fatalf("W token elsewhere: %#x", code)
	}
	// Signature mode: the AccessKey owner's permissions.
	// A tampered token: 0x86 / return code 4.
	bad := rw.Token[:len(rw.Token)-4] + "AAAA"
	if c, err := e.v5("GID_t@@@bad", "RW|"+bad, ""); connackCode(t, c, err) != byte(packet.BadUserNameOrPassword) {
		t.Fatalf("tampered token: CONNACK %#x, want 0x86", c.ack.ReasonCode)
	}
	if c3, err := tryConnectV3(t, e.addr, "GID_t@@@bad3", true, v3Login(e.user(), "RW|"+bad)); err == nil || c3.returnCode() != 4 {
		t.Fatalf("tampered token over 3.1.1: return code %d, want 4", c3.returnCode())
	}
}

// TestC24_ValidUpload: a valid upload at QoS 1 → PUBACK after the swap; the expiry moves; a '#'
// and a '$SYS/#' subscriber see nothing; nothing is retained.
func TestC24_ValidUpload(t *testing.T) {
	t.Parallel()
	e := startTokens(t)
	spy := watcher(t, e.addr, "c24-spy", "#")
	sys := watcher(t, e.addr, "c24-sys", "$SYS/#")
	first := e.apply(tokens.TypeRW, 2*time.Minute, "dev/c24/#")
	for _, v := range []string{"5", "3"} {
		id := "GID_c24@@@" + v
		next := e.apply(tokens.TypeRW, time.Hour, "dev/c24/#")
		if v == "5" {
			c, err := e.v5(id, "RW|"+first.Token, "")
			if err != nil {
				t.Fatal(err)
			}
			if code := c.tryPub("$SYS/uploadToken", 1, false, string(upload(next.Token, "RW"))); code != 0 {
				t.Fatalf("v5 upload: PUBACK %#x, want 0", code)
			}
			defer c.mustPub("dev/c24/v5", "after")
		} else {
			c := e.v3(id, "RW|"+first.Token, "")
			c.wait("upload", c.c.Publish("$SYS/uploadToken", 1, false, upload(next.Token, "RW")))
			defer c.pub("dev/c24/v3", 1, false, "after")
		}
	}
	// Past the first token's exp: both still connected, on the uploaded token.
	e.clk.Advance(3 * time.Minute)
	e.clk.Wait()
	sys.expectNoMsg()
	spy.expectNoMsg()
	if rs, _ := e.srv.Retained("/", "#", 0); len(rs) != 0 {
		t.Fatalf("the upload was retained: %+v", rs)
	}
	if n := len(e.srv.events.find(event.TokenUploaded, "")); n != 2 {
		t.Fatalf("%d upload events, want 2", n)
	}
}

// TestC25_C26_BadUploads: an invalid, foreign-subject or retained upload is refused: v5 PUBACK
// 0x87 and the old token stays; 3.1.1 gets $SYS/tokenInvalidNotice with the code, then the
// connection closes, and its will is published (will_on_reauth_failure = publish).
func TestC25_C26_BadUploads(t *testing.T) {
	t.Parallel()
	e := startTokens(t)
	w := watcher(t, e.addr, "c25-w", "dev/+/will")
	good := e.apply(tokens.TypeRW, time.Hour, "dev/c25/#")
	c, err := e.v5("GID_c25@@@5", "RW|"+good.Token, "")
	if err != nil {
		t.Fatal(err)
	}
	// Another owner's token (another AccessKey) is another subject.
	addUser(t, e.srv, "other", "pw")
	grantAll(t, e.srv, "other", "/")
	otherAK, _, _ := e.svc.CreateAccessKey("other", "/")
	foreign, err := e.svc.ApplyToken(otherAK, "/", []string{"dev/c25/#"}, tokens.TypeRW, e.clk.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	for name, p := range map[string]struct {
		payload []byte
		retain  bool
	}{
		"garbage":         {[]byte(`{"token":"not-a-token","type":"RW"}`), false},
		"another subject": {upload(foreign.Token, "RW"), false},
		"retained":        {upload(e.apply(tokens.TypeRW, time.Hour, "dev/c25/#").Token, "RW"), true},
	} {
		if code := c.tryPub("$SYS/uploadToken", 1, p.retain, string(p.payload)); code != byte(packet.NotAuthorized) {
			t.Fatalf("%s upload: PUBACK %#x, want 0x87", name, code)
		}
	}
	c.mustPub("dev/c25/x", "old token still works")

	notices := make(chan mqtt.Message, 4)
	c3 := e.v3("GID_c25@@@3", "RW|"+good.Token, "dev/c25/will")
	c3.c.Subscribe("$SYS/#", 0, nil) // push mode: the notice arrives even without this
	c3.c.AddRoute("$SYS/tokenInvalidNotice", func(_ mqtt.Client, m mqtt.Message) { notices <- m })
	c3.c.Publish("$SYS/uploadToken", 1, false, []byte(`{"token":"forged","type":"RW"}`))
	select {
	case m := <-notices:
		if n := decodeNotice(t, m.Payload()); n.Code != 1 || n.Type != "RW" {
			t.Fatalf("notice %+v, want code 1 type RW", n)
		}
	case <-time.After(waitTimeout):
		t.Fatal("3.1.1: no $SYS/tokenInvalidNotice for a bad upload")
	}
	c3.expectLost()
	w.expectFrom("dev/c25/will", "gone GID_c25@@@3")
}

// TestC27_UploadFlood: more uploads than token_uploads_per_minute close the connection.
func TestC27_UploadFlood(t *testing.T) {
	t.Parallel()
	e := startTokens(t, func(cfg *config.Config) { cfg.MQTT.TokenUploadsPerMinute = 3 })
	tok := e.apply(tokens.TypeRW, time.Hour, "dev/c27/#")
	c, err := e.v5("GID_c27@@@1", "RW|"+tok.Token, "")
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if code := c.tryPub("$SYS/uploadToken", 1, false, string(upload(tok.Token, "RW"))); code != 0 {
			t.Fatalf("upload within the limit: %#x", code)
		}
	}
	ctx, cancel := ctxTimeout()
	defer cancel()
	go c.c.Publish(ctx, &paho.Publish{Topic: "$SYS/uploadToken", QoS: 1, Payload: upload(tok.Token, "RW")}) // never acknowledged
	if code := c.expectServerDisconnect(); code != byte(packet.MessageRateTooHigh) {
		t.Fatalf("upload flood: DISCONNECT %#x, want 0x96", code)
	}
}

// TestC28_ExpireNotice: $SYS/tokenExpireNotice is sent once at exp − lead: pushed in push mode,
// only to a subscriber in subscribed mode, never to another client.
func TestC28_ExpireNotice(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"push", "subscribed"} {
		t.Run(mode, func(t *testing.T) {
			e := startTokens(t, func(cfg *config.Config) {
				cfg.Tokens.NoticeLead = time.Minute
				if mode == "subscribed" {
					cfg.Tokens.SubscribedNotices = "tcp"
				}
			})
			spy := watcher(t, e.addr, "c28-spy", "$SYS/#")
			tok := e.apply(tokens.TypeR, 10*time.Minute, "dev/c28/#")
			quietDev, err := e.v5("GID_c28@@@quiet", "R|"+tok.Token, "") // does not subscribe
			if err != nil {
				t.Fatal(err)
			}
			subDev, err := e.v5("GID_c28@@@sub", "R|"+tok.Token, "")
			if err != nil {
				t.Fatal(err)
			}
			subDev.mustSub("$SYS/tokenExpireNotice")
			e.clk.Advance(9*time.Minute + time.Second) // exp − lead passed
			e.clk.Wait()
			m := subDev.expectMsg()
			if n := decodeNotice(t, m.Payload); m.Topic != "$SYS/tokenExpireNotice" || n.ExpireTime != tok.Expiry.UnixMilli() || n.Type != "R" {
				t.Fatalf("notice on %q: %+v, want expireTime %d type R", m.Topic, n, tok.Expiry.UnixMilli())
			}
			if mode == "push" {
				if m := quietDev.expectMsg(); m.Topic != "$SYS/tokenExpireNotice" {
					t.Fatalf("push mode: %q", m.Topic)
				}
			} else {
				quietDev.expectNoMsg()
			}
			e.clk.Advance(10 * time.Second) // once only
			e.clk.Wait()
			subDev.expectNoMsg()
			spy.expectNoMsg() // never to another client
		})
	}
}

// TestTokenExpiryAndRevoke (tokens.md §7): at exp → $SYS/tokenInvalidNotice {"code":2}, then
// DISCONNECT 0xA0, and the will is published; RevokeToken → notice code 3 and DISCONNECT 0x98
// at once on every connection holding the token, and the will is suppressed; QueryToken
// reflects both.
func TestTokenExpiryAndRevoke(t *testing.T) {
	t.Parallel()
	e := startTokens(t)
	w := watcher(t, e.addr, "ter-w", "dev/+/will/#")
	short := e.apply(tokens.TypeRW, 2*time.Minute, "dev/x/#")
	c, err := e.v5("GID_x@@@exp", "RW|"+short.Token, "dev/x/will/exp")
	if err != nil {
		t.Fatal(err)
	}
	e.clk.Set(short.Expiry)
	e.clk.Wait()
	m := c.expectMsg()
	if n := decodeNotice(t, m.Payload); m.Topic != "$SYS/tokenInvalidNotice" || n.Code != 2 {
		t.Fatalf("at expiry: %q %+v, want tokenInvalidNotice code 2", m.Topic, n)
	}
	if code := c.expectServerDisconnect(); code != byte(packet.MaximumConnectTime) {
		t.Fatalf("at expiry: DISCONNECT %#x, want 0xA0", code)
	}
	w.expectFrom("dev/x/will/exp", "gone GID_x@@@exp")
	if ok, _, _ := e.svc.QueryToken(e.akid, "/", short.Token); ok {
		t.Fatal("QueryToken: an expired token is valid")
	}

	long := e.apply(tokens.TypeRW, time.Hour, "dev/x/#")
	a, _ := e.v5("GID_x@@@a", "RW|"+long.Token, "dev/x/will/a")
	b := e.v3("GID_x@@@b", "RW|"+long.Token, "dev/x/will/b")
	bNotices := make(chan mqtt.Message, 2)
	b.c.AddRoute("$SYS/tokenInvalidNotice", func(_ mqtt.Client, m mqtt.Message) { bNotices <- m })
	if err := e.svc.RevokeToken(e.akid, "/", long.Token); err != nil {
		t.Fatal(err)
	}
	if n := decodeNotice(t, a.expectMsg().Payload); n.Code != 3 {
		t.Fatalf("revoked: notice %+v, want code 3", n)
	}
	if code := a.expectServerDisconnect(); code != byte(packet.AdministrativeAction) {
		t.Fatalf("revoked: DISCONNECT %#x, want 0x98", code)
	}
	select {
	case m := <-bNotices:
		if n := decodeNotice(t, m.Payload()); n.Code != 3 {
			t.Fatalf("3.1.1 revoked notice %+v", n)
		}
	case <-time.After(waitTimeout):
		t.Fatal("3.1.1: no revocation notice")
	}
	b.expectLost()
	w.expectNoMsg()
	if n := e.srv.WillsSuppressed(event.WillRevoked); n != 2 {
		t.Fatalf("%d wills suppressed, want 2", n)
	}
	if ok, code, _ := e.svc.QueryToken(e.akid, "/", long.Token); ok || code != 3 {
		t.Fatalf("QueryToken after revocation: %v code %d, want false code 3", ok, code)
	}
	if c, err := e.v5("GID_x@@@again", "RW|"+long.Token, ""); connackCode(t, c, err) != byte(packet.BadUserNameOrPassword) {
		t.Fatal("a revoked token logged in again")
	}
}

// TestUploadNarrowsSubscriptions (tokens.md §6): an upload with fewer resources removes the
// subscriptions the new token no longer covers, at once.
func TestUploadNarrowsSubscriptions(t *testing.T) {
	t.Parallel()
	e := startTokens(t)
	owner := connectV5(t, e.addr, login("narrow-pub", "owner", "pw"))
	wide := e.apply(tokens.TypeR, time.Hour, "dev/n/#")
	c, err := e.v5("GID_n@@@1", "R|"+wide.Token, "")
	if err != nil {
		t.Fatal(err)
	}
	c.mustSub("dev/n/a/#")
	c.mustSub("dev/n/b/#")
	narrow := e.apply(tokens.TypeR, time.Hour, "dev/n/a/#")
	if code := c.tryPub("$SYS/uploadToken", 1, false, string(upload(narrow.Token, "R"))); code != 0 {
		t.Fatalf("upload: %#x", code)
	}
	owner.mustPub("dev/n/b/x", "gone")
	owner.mustPub("dev/n/a/x", "kept")
	if m := c.expectMsg(); m.Topic != "dev/n/a/x" {
		t.Fatalf("after narrowing got %q first, want dev/n/a/x (dev/n/b/# removed)", m.Topic)
	}
	if !strings.HasPrefix(e.user(), "Token|") {
		t.Fatal("user name form")
	}
}

// TestTokenFleetBehindOneAddress: 40 devices behind one address (one NAT) log in at once, each
// with its own token and so all under the one user name "Token|<AccessKeyId>|<instance>". A
// token cannot be guessed, so the login limiter counts such attempts only when they fail: every
// device is let in (before, the limiter took them for guesses of one user name: delayed, then
// refused with 0x9F). Bad tokens from that address are still counted and then refused with
// 0x9F, never answered as a wrong password.
func TestTokenFleetBehindOneAddress(t *testing.T) {
	t.Parallel()
	e := startTokens(t)
	const devices = 40
	pws := make([]string, devices)
	for i := range pws {
		pws[i] = "RW|" + e.apply("RW", time.Hour, "fleet/#").Token
	}
	type result struct {
		code byte
		err  error
	}
	results := make(chan result, devices)
	for i := range devices {
		go func() {
			c, err := e.v5(fmt.Sprintf("fleet-%d", i), pws[i], "")
			r := result{err: err}
			if c != nil && c.ack != nil {
				r.code = c.ack.ReasonCode
			}
			results <- r
		}()
	}
	for range devices {
		if r := <-results; r.err != nil || r.code != 0 {
			t.Errorf("a device of the fleet: CONNACK 0x%02X, %v; want 0x00", r.code, r.err)
		}
	}

	// Bad tokens are failures like any other: counted as they fail. A burst of them is checked
	// (each is answered 0x86: a token cannot be guessed, so checking them in parallel teaches an
	// attacker nothing), and the next burst from that address is slowed and refused with 0x9F.
	forged := 0
	burst := func(n int) map[byte]int {
		codes := make(chan byte, n)
		for range n {
			forged++
			pw := fmt.Sprintf("RW|forged-%d", forged) // distinct: identical attempts in flight are one (flight.go)
			go func() {
				c, _ := e.v5("forger-"+pw[3:], pw, "")
				if c == nil || c.ack == nil {
					codes <- 0xFF
					return
				}
				codes <- c.ack.ReasonCode
			}()
		}
		got := map[byte]int{}
		for range n {
			got[<-codes]++
		}
		return got
	}
	if got := burst(12); got[byte(packet.BadUserNameOrPassword)] != 12 {
		t.Fatalf("a first burst of 12 bad tokens: %v; want 12 × 0x86", got)
	}
	// (One of the second burst is delayed by 5 s, past the test client's patience: 0xFF here.)
	if got := burst(6); got[byte(packet.ConnectionRateExceeded)] < 4 || got[0] != 0 {
		t.Fatalf("a second burst of 6 bad tokens after 12 failures: %v; want 0x9F for at least 4", got)
	}
}
