package broker_test

// OAuth2 / JWT logins through the whole program, with an in-process OpenID Connect provider
// (oauthtest) and real paho clients: will-and-expiry.md §5, scenarios A4–A8, B16–B23, D29–D32.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/turnstilemq/turnstile/internal/app"
	"github.com/turnstilemq/turnstile/internal/auth/oauth/oauthtest"
	"github.com/turnstilemq/turnstile/internal/broker"
	"github.com/turnstilemq/turnstile/internal/clock"
	"github.com/turnstilemq/turnstile/internal/config"
	"github.com/turnstilemq/turnstile/internal/event"
	"github.com/turnstilemq/turnstile/internal/packet"
)

// fullScope gives every permission on vhost "/", with resource_server_id "turnstile".
const fullScope = "turnstile.read:%2F/* turnstile.write:%2F/* turnstile.configure:%2F/*"

// oauthBroker starts a Turnstile with auth_backends = local,oauth against idp, no leeway (the
// scenarios name exact instants), anonymous access for the watchers, and mods.
func oauthBroker(t *testing.T, idp *oauthtest.Server, clk clock.Clock, mods ...func(*config.Config)) (string, *testBroker) {
	t.Helper()
	return startBrokerOpts(t, func(cfg *config.Config) {
		cfg.Main.AuthBackends = "local,oauth"
		cfg.OAuth.Issuer = idp.Issuer()
		cfg.OAuth.ResourceServerID = "turnstile"
		cfg.OAuth.Audience = oauthtest.DefaultAudience
		cfg.OAuth.Leeway = 0
		cfg.Mgmt.Port = 1
		for _, m := range mods {
			m(cfg)
		}
	}, app.Options{Clock: clk})
}

// jwtPassword is a v5 CONNECT with the token as the password (LavinMQ's way).
func jwtPassword(id, tok string) *paho.Connect {
	return &paho.Connect{ClientID: id, CleanStart: true, KeepAlive: 30, Username: "jwt", UsernameFlag: true,
		Password: []byte(tok), PasswordFlag: true}
}

// jwtMethod is a v5 CONNECT with Authentication Method "jwt" and the token as its data. It asks
// for problem information, as a client does by default (paho.golang sends Request Problem
// Information 0 for a false field).
func jwtMethod(id, tok string) *paho.Connect {
	return &paho.Connect{ClientID: id, CleanStart: true, KeepAlive: 30,
		Properties: &paho.ConnectProperties{AuthMethod: "jwt", AuthData: []byte(tok), RequestProblemInfo: true}}
}

func withWill(cp *paho.Connect, topic string, delay uint32) *paho.Connect {
	cp.WillMessage = &paho.WillMessage{Topic: topic, Payload: []byte("gone " + cp.ClientID), QoS: 1}
	if delay > 0 {
		cp.WillProperties = &paho.WillProperties{WillDelayInterval: u32p(delay)}
		if cp.Properties == nil {
			cp.Properties = &paho.ConnectProperties{}
		}
		cp.Properties.SessionExpiryInterval = u32p(3600)
		cp.CleanStart = false
	}
	return cp
}

// reauth sends AUTH 0x19 with method and token and returns the server's answer (AUTH or
// DISCONNECT), or fails the test when there is none.
func (c *v5Client) reauth(method, tok string) *paho.AuthResponse {
	c.t.Helper()
	ctx, cancel := ctxTimeout()
	defer cancel()
	r, err := c.c.Authenticate(ctx, &paho.Auth{ReasonCode: byte(packet.ReAuthenticate),
		Properties: &paho.AuthProperties{AuthMethod: method, AuthData: []byte(tok)}})
	if err != nil && r == nil {
		// The client library returns nothing when the server closed right after DISCONNECT.
		return &paho.AuthResponse{ReasonCode: c.expectServerDisconnect()}
	}
	return r
}

func userProp(props paho.UserProperties, key string) string {
	for _, p := range props {
		if p.Key == key {
			return p.Value
		}
	}
	return ""
}

// TestB16_ConnectWithMethodJWT: CONNECT with Authentication Method jwt → CONNACK 0x00 echoing
// the method [MQTT-4.12.0-5], with the credential's expiry as a User Property.
func TestB16_ConnectWithMethodJWT(t *testing.T) {
	t.Parallel()
	idp := oauthtest.New(t)
	addr, _ := oauthBroker(t, idp, nil)
	exp := time.Now().Add(time.Hour).Truncate(time.Second)
	c := connectV5(t, addr, jwtMethod("b16", idp.Token(map[string]any{"scope": fullScope, "exp": exp})))
	if c.ack.Properties == nil || c.ack.Properties.AuthMethod != "jwt" {
		t.Fatalf("CONNACK properties %+v: want Authentication Method jwt", c.ack.Properties)
	}
	if got := userProp(c.ack.Properties.User, broker.PropCredentialExpiresAt); got != strconv.FormatInt(exp.Unix(), 10) {
		t.Fatalf("x-credential-expires-at = %q, want %d", got, exp.Unix())
	}
	c.mustPub("b16/x", "ok")
	// A method that is not offered is refused with 0x8C [MQTT-4.12.0-1].
	bad := jwtMethod("b16-bad", "x")
	bad.Properties.AuthMethod = "SCRAM-SHA-256"
	r, err := tryConnectV5(t, addr, bad)
	if code := connackCode(t, r, err); code != byte(packet.BadAuthenticationMethod) {
		t.Fatalf("unknown method: CONNACK %#x, want 0x8C", code)
	}
	// An invalid token under the method is 0x87 (enhanced authentication, 4.12), as the
	// password it is 0x86.
	r, err = tryConnectV5(t, addr, jwtMethod("b16-inv", idp.Token(map[string]any{"scope": fullScope, "iss": "https://other"})))
	if code := connackCode(t, r, err); code != byte(packet.NotAuthorized) {
		t.Fatalf("bad token under the method: CONNACK %#x, want 0x87", code)
	}
	r, err = tryConnectV5(t, addr, jwtPassword("b16-pw", idp.Token(map[string]any{"scope": fullScope, "iss": "https://other"})))
	if code := connackCode(t, r, err); code != byte(packet.BadUserNameOrPassword) {
		t.Fatalf("bad token as password: CONNACK %#x, want 0x86", code)
	}
}

// TestB17_ReauthExtendsAndNarrows: AUTH 0x19 with a later-exp token of the same subject → AUTH
// 0x00 with the new expiry; no disconnect at the old exp; the new grants apply at once and a
// subscription they no longer allow is removed.
func TestB17_ReauthExtendsAndNarrows(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(time.Now())
	idp := oauthtest.New(t, oauthtest.WithClock(clk))
	addr, _ := oauthBroker(t, idp, clk)
	w := watcher(t, addr, "b17-w", "#")
	old := idp.Token(map[string]any{"scope": fullScope, "exp": clk.Now().Add(time.Minute)})
	c := connectV5(t, addr, jwtMethod("b17", old))
	c.mustSub("open/#")
	c.mustSub("secret/#")

	// The new token allows reading open/ only, and lives an hour.
	narrow := "turnstile.read:%2F/mqtt.default/open%2F* turnstile.write:%2F/* turnstile.configure:%2F/*"
	newExp := clk.Now().Add(time.Hour).Truncate(time.Second)
	r := c.reauth("jwt", idp.Token(map[string]any{"scope": narrow, "exp": newExp}))
	if !r.Success || r.ReasonCode != 0 {
		t.Fatalf("re-authentication: %+v, want AUTH 0x00", r)
	}
	if r.Properties == nil || userProp(r.Properties.User, broker.PropCredentialExpiresAt) != strconv.FormatInt(newExp.Unix(), 10) {
		t.Fatalf("AUTH success properties %+v: want the new expiry", r.Properties)
	}
	// A client that asked for no problem information gets AUTH without User Properties
	// [MQTT-3.1.2-29].
	quiet := jwtMethod("b17-quiet", old)
	quiet.Properties.RequestProblemInfo = false
	q := connectV5(t, addr, quiet)
	if r := q.reauth("jwt", idp.Token(map[string]any{"scope": fullScope, "exp": newExp})); !r.Success ||
		r.Properties != nil && len(r.Properties.User) != 0 {
		t.Fatalf("re-authentication with Request Problem Information 0: %+v, want AUTH 0x00 without User Properties", r)
	}
	// Past the old exp: no disconnect.
	clk.Advance(2 * time.Minute)
	clk.Wait()
	w.mustPub("open/x", "still here")
	c.expectFrom("open/x", "still here")
	// The removed subscription delivers nothing more.
	w.mustPub("secret/x", "not for you")
	w.expectFrom("open/x", "still here")
	w.expectFrom("secret/x", "not for you")
	c.expectNoMsg()
}

// TestB18_ReauthOtherSubject: AUTH 0x19 with a different sub → DISCONNECT 0x87, and the will is
// published as the old principal (will_on_reauth_failure = publish), or suppressed when
// configured so.
func TestB18_ReauthOtherSubject(t *testing.T) {
	t.Parallel()
	idp := oauthtest.New(t)
	for _, suppress := range []bool{false, true} {
		t.Run(fmt.Sprintf("suppress=%v", suppress), func(t *testing.T) {
			addr, srv := oauthBroker(t, idp, nil, func(cfg *config.Config) {
				if suppress {
					cfg.MQTT.WillOnReauthFailure = "suppress"
				}
			})
			w := watcher(t, addr, "b18-w", "will/#")
			c := connectV5(t, addr, withWill(jwtMethod("b18", idp.Token(map[string]any{"scope": fullScope, "sub": "alice"})), "will/b18", 0))
			r := c.reauth("jwt", idp.Token(map[string]any{"scope": fullScope, "sub": "mallory"}))
			if r.ReasonCode != byte(packet.NotAuthorized) {
				t.Fatalf("re-authentication as another subject: %#x, want DISCONNECT 0x87", r.ReasonCode)
			}
			if suppress {
				w.expectNoMsg()
				eventually(t, "the will suppressed", func() bool { return srv.WillsSuppressed(event.WillReauthFailed) == 1 })
				return
			}
			w.expectFrom("will/b18", "gone b18")
			pub := srv.events.find(event.WillPublished, "b18")
			if len(pub) != 1 || pub[0].Identity.Subject != "alice" {
				t.Fatalf("will published as %+v, want as alice (the old principal)", pub)
			}
		})
	}
}

// TestB19_ReauthOtherMethod and TestB21: AUTH with another method → DISCONNECT 0x8C; AUTH from a
// client that connected without a method → DISCONNECT 0x82 [MQTT-4.12.0-7].
func TestB19_B21_ReauthMethodRules(t *testing.T) {
	t.Parallel()
	idp := oauthtest.New(t)
	addr, _ := oauthBroker(t, idp, nil)
	c := connectV5(t, addr, jwtMethod("b19", idp.Token(map[string]any{"scope": fullScope})))
	if r := c.reauth("other", idp.Token(map[string]any{"scope": fullScope})); r.ReasonCode != byte(packet.BadAuthenticationMethod) {
		t.Fatalf("B19: AUTH with method other: %#x, want DISCONNECT 0x8C", r.ReasonCode)
	}
	p := connectV5(t, addr, jwtPassword("b21", idp.Token(map[string]any{"scope": fullScope})))
	if r := p.reauth("jwt", idp.Token(map[string]any{"scope": fullScope})); r.ReasonCode != byte(packet.ProtocolError) {
		t.Fatalf("B21: AUTH without a method at CONNECT: %#x, want DISCONNECT 0x82", r.ReasonCode)
	}
}

// TestB20_ReauthBadTokens: AUTH with an expired, a badly signed or an unknown-kid token →
// DISCONNECT 0x87; the unknown kid costs exactly one JWKS refresh.
func TestB20_ReauthBadTokens(t *testing.T) {
	t.Parallel()
	idp := oauthtest.New(t)
	addr, _ := oauthBroker(t, idp, nil)
	stranger := oauthtest.NewKey(t, "RS256", "never-published")
	for name, tok := range map[string]string{
		"expired":      idp.Token(map[string]any{"scope": fullScope, "exp": time.Now().Add(-time.Hour)}),
		"badly signed": idp.Token(map[string]any{"scope": fullScope}, oauthtest.WithKey(stranger), oauthtest.WithKid("rsa-1")),
		"unknown kid":  idp.Token(map[string]any{"scope": fullScope}, oauthtest.WithKey(stranger)),
	} {
		c := connectV5(t, addr, jwtMethod("b20-"+strings.ReplaceAll(name, " ", "-"), idp.Token(map[string]any{"scope": fullScope})))
		before := idp.JWKSFetches()
		if r := c.reauth("jwt", tok); r.ReasonCode != byte(packet.NotAuthorized) {
			t.Fatalf("%s token: %#x, want DISCONNECT 0x87", name, r.ReasonCode)
		}
		if name == "unknown kid" {
			if n := idp.JWKSFetches() - before; n != 1 {
				t.Fatalf("unknown kid: %d JWKS fetches, want exactly 1", n)
			}
		}
	}
}

// TestB22_InterleavedPackets: packets before the AUTH are judged by the previous principal,
// packets after its success by the new one (4.12.1). A raw client sends them back to back.
func TestB22_InterleavedPackets(t *testing.T) {
	t.Parallel()
	idp := oauthtest.New(t)
	addr, _ := oauthBroker(t, idp, nil)
	oldScope := "turnstile.read:%2F/* turnstile.write:%2F/mqtt.default/a%2F* turnstile.configure:%2F/*"
	newScope := "turnstile.read:%2F/* turnstile.write:%2F/mqtt.default/b%2F* turnstile.configure:%2F/*"
	r := dialRaw(t, addr, packet.V5)
	cp := &packet.Connect{Version: packet.V5, ClientID: "b22", CleanStart: true, KeepAlive: 30}
	cp.Props.AuthMethod, cp.Props.AuthData = "jwt", []byte(idp.Token(map[string]any{"scope": oldScope}))
	r.send(packet.Append(nil, cp, packet.V5))
	if ack := expect[*packet.Connack](r); ack.ReasonCode != 0 {
		t.Fatalf("CONNACK %#x", ack.ReasonCode)
	}
	pub := func(pid uint16, topic string) []byte {
		return packet.Append(nil, &packet.Publish{QoS: 1, PacketID: pid, Topic: topic, Payload: []byte("x")}, packet.V5)
	}
	auth := &packet.Auth{ReasonCode: packet.ReAuthenticate}
	auth.Props.AuthMethod, auth.Props.AuthData = "jwt", []byte(idp.Token(map[string]any{"scope": newScope}))
	r.send(pub(1, "a/1"), packet.Append(nil, auth, packet.V5), pub(2, "a/2"), pub(3, "b/3"))
	want := map[uint16]packet.ReasonCode{1: packet.NoMatchingSubscribers, 2: packet.NotAuthorized, 3: packet.NoMatchingSubscribers}
	sawAuth := false
	for len(want) > 0 {
		switch p := r.next().p.(type) {
		case *packet.Auth:
			if len(want) != 2 || p.ReasonCode != packet.Success {
				t.Fatalf("AUTH %#x after %d acks: want AUTH 0x00 right after the first PUBACK", p.ReasonCode, 3-len(want))
			}
			sawAuth = true
		case *packet.Puback:
			if code, ok := want[p.PacketID]; !ok || p.ReasonCode != code {
				t.Fatalf("PUBACK %d: %#x, want %#x", p.PacketID, p.ReasonCode, code)
			}
			delete(want, p.PacketID)
		default:
			t.Fatalf("unexpected %T", p)
		}
	}
	if !sawAuth {
		t.Fatal("no AUTH success")
	}
}

// TestB23_ReauthRacesExpiry: the expiry timer of the old token comes due in the same tick as a
// successful re-authentication (the fake clock holds it back until the AUTH succeeded): the
// generation guard makes it a no-op, so the connection stays.
func TestB23_ReauthRacesExpiry(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(time.Now())
	idp := oauthtest.New(t, oauthtest.WithClock(clk))
	addr, srv := oauthBroker(t, idp, clk)
	exp := clk.Now().Add(time.Minute)
	c := connectV5(t, addr, jwtMethod("b23", idp.Token(map[string]any{"scope": fullScope, "exp": exp})))
	c.mustSub("b23/#")
	clk.Hold()
	clk.Set(exp) // the old token's timer is due, held
	if r := c.reauth("jwt", idp.Token(map[string]any{"scope": fullScope, "exp": exp.Add(time.Hour)})); !r.Success {
		t.Fatalf("re-authentication at the expiry instant: %+v", r)
	}
	clk.Release()
	clk.Wait()
	select {
	case d := <-c.discs:
		t.Fatalf("disconnected (%#x) although the re-authentication won", d.ReasonCode)
	case <-time.After(quiet):
	}
	c.mustPub("b23/x", "alive")
	c.expectFrom("b23/x", "alive")
	if n := len(srv.events.find(event.Reauthenticated, "b23")); n != 1 {
		t.Fatalf("%d re-authentication events, want 1", n)
	}
}

// TestA4_ExpiryDisconnectsAndEarnsWill: a token expires on a live connection with no refresh:
// v5 gets DISCONNECT 0xA0 with a Reason String, 3.1.1 a TCP close; both wills are delivered,
// earned at exp (not at the timer's firing).
func TestA4_ExpiryDisconnectsAndEarnsWill(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(time.Now())
	idp := oauthtest.New(t, oauthtest.WithClock(clk))
	addr, srv := oauthBroker(t, idp, clk)
	w := watcher(t, addr, "a4-w", "will/#")
	exp := clk.Now().Add(time.Minute).Truncate(time.Second)
	tok := idp.Token(map[string]any{"scope": fullScope, "exp": exp})
	c5 := connectV5(t, addr, withWill(jwtPassword("a4-5", tok), "will/a4-5", 0))
	c3 := connectV3(t, addr, "a4-3", true, func(o *mqtt.ClientOptions) {
		o.SetUsername("jwt").SetPassword(tok)
		o.SetWill("will/a4-3", "gone a4-3", 1, false)
	})
	clk.Set(exp.Add(3 * time.Second)) // the timer fires 3 s late
	clk.Wait()
	select {
	case d := <-c5.discs:
		if d.ReasonCode != byte(packet.MaximumConnectTime) || d.Properties == nil || !strings.Contains(d.Properties.ReasonString, "expired") {
			t.Fatalf("v5 DISCONNECT %#x %+v, want 0xA0 with a Reason String", d.ReasonCode, d.Properties)
		}
	case <-time.After(waitTimeout):
		t.Fatal("v5: no DISCONNECT at expiry")
	}
	c3.expectLost()
	got := map[string]bool{}
	for range 2 {
		m := w.expectMsg()
		got[m.Topic] = true
	}
	if !got["will/a4-5"] || !got["will/a4-3"] {
		t.Fatalf("wills delivered: %v", got)
	}
	for _, id := range []string{"a4-5", "a4-3"} {
		ev := srv.events.find(event.WillPublished, id)
		if len(ev) != 1 || !ev[0].EarnedAt.Equal(exp) {
			t.Fatalf("%s: will events %+v, want earned at exp %v", id, ev, exp)
		}
	}
}

// TestA5_LateTimerNeverExtendsAccess: with the expiry timer held back, a PUBLISH after exp is
// refused (v5 PUBACK 0x87; 3.1.1 close); the will is still delivered, earned at exp.
func TestA5_LateTimerNeverExtendsAccess(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(time.Now())
	idp := oauthtest.New(t, oauthtest.WithClock(clk))
	addr, srv := oauthBroker(t, idp, clk)
	w := watcher(t, addr, "a5-w", "will/#")
	exp := clk.Now().Add(time.Minute).Truncate(time.Second)
	tok := idp.Token(map[string]any{"scope": fullScope, "exp": exp})
	c5 := connectV5(t, addr, withWill(jwtPassword("a5-5", tok), "will/a5-5", 0))
	c3 := connectV3(t, addr, "a5-3", true, func(o *mqtt.ClientOptions) {
		o.SetUsername("jwt").SetPassword(tok)
		o.SetWill("will/a5-3", "gone a5-3", 1, false)
	})
	clk.Hold() // the scheduler is late
	clk.Set(exp.Add(time.Second))
	if code := c5.tryPub("a5/x", 1, false, "too late"); code != byte(packet.NotAuthorized) {
		t.Fatalf("v5 PUBLISH at exp+1s: PUBACK %#x, want 0x87", code)
	}
	c3.c.Publish("a5/x", 1, false, "too late")
	c3.expectLost()
	w.expectFrom("will/a5-3", "gone a5-3")
	clk.Release()
	clk.Wait()
	w.expectFrom("will/a5-5", "gone a5-5")
	for _, id := range []string{"a5-5", "a5-3"} {
		if ev := srv.events.find(event.WillPublished, id); len(ev) != 1 || !ev[0].EarnedAt.Equal(exp) {
			t.Fatalf("%s: will events %+v, want earned at exp", id, ev)
		}
	}
}

// TestA6_RotationIsNotRevocation: connected with kid A, the JWKS is replaced by kid B only;
// publishing works until exp, and a dropped socket still delivers the will.
func TestA6_RotationIsNotRevocation(t *testing.T) {
	t.Parallel()
	idp := oauthtest.New(t)
	addr, srv := oauthBroker(t, idp, nil)
	w := watcher(t, addr, "a6-w", "will/#")
	c := connectV5(t, addr, withWill(jwtPassword("a6", idp.Token(map[string]any{"scope": fullScope})), "will/a6", 0))
	idp.Rotate("RS256", "rsa-2")
	// A new login with an old-key token is refused once the keys were refreshed...
	srv.app.OAuth().Refresh(context.Background())
	r, err := tryConnectV5(t, addr, jwtPassword("a6-new", idp.Token(map[string]any{"scope": fullScope}, oauthtest.WithKey(idp.RSA()))))
	if code := connackCode(t, r, err); code != byte(packet.BadUserNameOrPassword) {
		t.Fatalf("a token of a dropped key at CONNECT: %#x, want 0x86", code)
	}
	// ... but the live connection keeps working, and its will goes out.
	c.mustPub("a6/x", "after rotation")
	c.drop()
	w.expectFrom("will/a6", "gone a6")
}

// TestA7_KeyCompromise: an administrator revokes kid A: every connection authenticated with A
// gets DISCONNECT 0x98 at once, no will is published, and the audit says revoked.
func TestA7_KeyCompromise(t *testing.T) {
	t.Parallel()
	idp := oauthtest.New(t)
	addr, srv := oauthBroker(t, idp, nil)
	w := watcher(t, addr, "a7-w", "will/#")
	a := connectV5(t, addr, withWill(jwtPassword("a7-a", idp.Token(map[string]any{"scope": fullScope})), "will/a7-a", 0))
	b := connectV5(t, addr, withWill(jwtPassword("a7-b", idp.Token(map[string]any{"scope": fullScope})), "will/a7-b", 0))
	ec := connectV5(t, addr, withWill(jwtPassword("a7-ec", idp.Token(map[string]any{"scope": fullScope}, oauthtest.WithKey(idp.EC()))), "will/a7-ec", 0))
	revokeAPI(t, srv, map[string]any{"kid": "rsa-1"})
	for _, c := range []*v5Client{a, b} {
		if code := c.expectServerDisconnect(); code != byte(packet.AdministrativeAction) {
			t.Fatalf("%s: DISCONNECT %#x, want 0x98", c.id, code)
		}
	}
	w.expectNoMsg()
	ec.mustPub("a7/x", "the other key is fine")
	if n := srv.WillsSuppressed(event.WillRevoked); n != 2 {
		t.Fatalf("%d wills suppressed as revoked, want 2", n)
	}
	// A token of the revoked key is refused at CONNECT.
	r, err := tryConnectV5(t, addr, jwtPassword("a7-again", idp.Token(map[string]any{"scope": fullScope})))
	if code := connackCode(t, r, err); code != byte(packet.BadUserNameOrPassword) {
		t.Fatalf("revoked key at CONNECT: %#x, want 0x86", code)
	}
}

// TestA8_RevokedBeforeDelayedWill: the jti is revoked after the socket dropped, before its
// 30 s delayed will: the will is suppressed.
func TestA8_RevokedBeforeDelayedWill(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(time.Now())
	idp := oauthtest.New(t, oauthtest.WithClock(clk))
	addr, srv := oauthBroker(t, idp, clk)
	w := watcher(t, addr, "a8-w", "will/#")
	c := connectV5(t, addr, withWill(jwtPassword("a8", idp.Token(map[string]any{"scope": fullScope, "jti": "a8-jti"})), "will/a8", 30))
	c.drop()
	eventually(t, "the session offline", func() bool { return vhostClients(srv, "/") == 1 })
	revokeAPI(t, srv, map[string]any{"jti": "a8-jti"})
	clk.Advance(31 * time.Second)
	clk.Wait()
	w.expectNoMsg()
	eventually(t, "the will suppressed as revoked", func() bool { return srv.WillsSuppressed(event.WillRevoked) == 1 })
}

// TestD29_ConcurrentNewKid: 500 concurrent CONNECTs with a token of a kid not yet published:
// one JWKS fetch, and all succeed once the key is published.
func TestD29_ConcurrentNewKid(t *testing.T) {
	t.Parallel()
	idp := oauthtest.New(t)
	addr, _ := oauthBroker(t, idp, nil)
	connectV5(t, addr, jwtPassword("d29-warm", idp.Token(map[string]any{"scope": fullScope}))) // keys cached
	k := oauthtest.NewKey(t, "ES256", "fresh")
	idp.AddKey(k)
	tok := idp.Token(map[string]any{"scope": fullScope}, oauthtest.WithKey(k))
	before := idp.JWKSFetches()
	const n = 500
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A fleet comes from many addresses: 250 of 127.0.0.0/8, two clients each (from
			// one address, 500 logins at once would meet the login limiter, docs/security.md).
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 1, byte(i%250+1))}, Timeout: waitTimeout}
			conn, err := d.Dial("tcp", addr)
			if err != nil {
				errs <- err
				return
			}
			c, err := tryConnectV5Conn(t, conn, jwtPassword(fmt.Sprintf("d29-%d", i), tok))
			if err != nil || c.ack == nil || c.ack.ReasonCode != 0 {
				errs <- fmt.Errorf("client %d: %v %+v", i, err, c.ack)
				return
			}
			c.drop()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := idp.JWKSFetches() - before; got != 1 {
		t.Fatalf("%d JWKS fetches for 500 CONNECTs with a new kid, want 1", got)
	}
}

// TestD30_RandomKidsRateLimited: tokens with random kids cost at most one JWKS fetch per 30 s.
func TestD30_RandomKidsRateLimited(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(time.Now())
	idp := oauthtest.New(t, oauthtest.WithClock(clk))
	addr, _ := oauthBroker(t, idp, clk)
	connectV5(t, addr, jwtPassword("d30-warm", idp.Token(map[string]any{"scope": fullScope})))
	before := idp.JWKSFetches()
	stranger := oauthtest.NewKey(t, "EdDSA", "x")
	for i := range 6 { // few enough that the login limiter does not slow this address down
		tok := idp.Token(map[string]any{"scope": fullScope}, oauthtest.WithKey(stranger), oauthtest.WithKid(fmt.Sprintf("random-%d", i)))
		r, err := tryConnectV5(t, addr, jwtPassword(fmt.Sprintf("d30-%d", i), tok))
		if code := connackCode(t, r, err); code != byte(packet.BadUserNameOrPassword) {
			t.Fatalf("random kid: %#x, want 0x86", code)
		}
	}
	if got := idp.JWKSFetches() - before; got > 1 {
		t.Fatalf("%d JWKS fetches for 6 random kids within 30 s, want at most 1", got)
	}
	clk.Advance(31 * time.Second)
	tok := idp.Token(map[string]any{"scope": fullScope}, oauthtest.WithKey(stranger), oauthtest.WithKid("random-late"))
	tryConnectV5(t, addr, jwtPassword("d30-late", tok))
	if got := idp.JWKSFetches() - before; got > 2 {
		t.Fatalf("%d JWKS fetches after 31 s, want at most 2", got)
	}
}

// TestD31_EndpointDown: with the JWKS endpoint down, cached keys keep verifying; live
// connections and wills are unaffected.
func TestD31_EndpointDown(t *testing.T) {
	t.Parallel()
	idp := oauthtest.New(t)
	addr, _ := oauthBroker(t, idp, nil)
	w := watcher(t, addr, "d31-w", "will/#")
	live := connectV5(t, addr, withWill(jwtPassword("d31-live", idp.Token(map[string]any{"scope": fullScope})), "will/d31-live", 0))
	idp.Down()
	connectV5(t, addr, jwtPassword("d31-new", idp.Token(map[string]any{"scope": fullScope}))).mustPub("d31/x", "cached key")
	live.mustPub("d31/y", "still up")
	live.drop()
	w.expectFrom("will/d31-live", "gone d31-live")
}

// TestD32_NoneAndHMACConfusion: alg none, and HS256 signed with the RSA public key under an RSA
// kid, are refused at CONNECT.
func TestD32_NoneAndHMACConfusion(t *testing.T) {
	t.Parallel()
	idp := oauthtest.New(t)
	addr, _ := oauthBroker(t, idp, nil)
	for name, tok := range map[string]string{
		"alg none":      idp.Token(map[string]any{"scope": fullScope}, oauthtest.Unsigned()),
		"HS256 RSA key": idp.Token(map[string]any{"scope": fullScope}, oauthtest.WithHMAC(idp.RSA().PublicPEM()), oauthtest.WithKid("rsa-1")),
	} {
		r, err := tryConnectV5(t, addr, jwtPassword("d32", tok))
		if code := connackCode(t, r, err); code != byte(packet.BadUserNameOrPassword) {
			t.Fatalf("%s: CONNACK %#x, want 0x86", name, code)
		}
	}
}

// TestUploadTokenJWT: a 3.1.1 JWT client refreshes without reconnecting on $SYS/uploadToken:
// PUBACK only after the swap, the connection survives its old exp; nobody sees the upload.
func TestUploadTokenJWT(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(time.Now())
	idp := oauthtest.New(t, oauthtest.WithClock(clk))
	addr, _ := oauthBroker(t, idp, clk)
	spy := watcher(t, addr, "up-spy", "#")
	sysSpy := watcher(t, addr, "up-sys", "$SYS/#")
	exp := clk.Now().Add(time.Minute)
	c := connectV3(t, addr, "up3", true, func(o *mqtt.ClientOptions) {
		o.SetUsername("jwt").SetPassword(idp.Token(map[string]any{"scope": fullScope, "exp": exp}))
	})
	payload, _ := json.Marshal(map[string]string{"token": idp.Token(map[string]any{"scope": fullScope, "exp": exp.Add(time.Hour)})})
	c.wait("upload", c.c.Publish("$SYS/uploadToken", 1, false, payload))
	clk.Set(exp.Add(time.Minute))
	clk.Wait()
	c.pub("up/x", 1, false, "refreshed")
	spy.expectFrom("up/x", "refreshed")
	sysSpy.expectNoMsg()
}

// revokeAPI posts a revocation through the management API as guest.
func revokeAPI(t *testing.T, srv *testBroker, body map[string]any) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", srv.app.URL()+"/api/oauth/revocations", bytes.NewReader(b))
	req.SetBasicAuth("guest", "guest")
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 201 {
		t.Fatalf("POST /api/oauth/revocations %s: %d", b, res.StatusCode)
	}
}

// oauthtestServer is an identity provider minting tokens on clk.
func oauthtestServer(t *testing.T, clk clock.Clock) *oauthtest.Server {
	return oauthtest.New(t, oauthtest.WithClock(clk))
}

// TestA14_PendingWillSurvivesRestart: a JWT client with a 30 s delayed will loses its
// connection; its token expires 10 s later; Turnstile restarts before the will is due. After
// the restart the will is published at its time, authorized against the identity proven at
// CONNECT (restored from the store: the token's scopes, not a local user, allow the topic) and
// earned at the loss. A scan of every file of the store finds neither the token nor its
// signature, and the session keeps its owner: another subject cannot take the client id.
func TestA14_PendingWillSurvivesRestart(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(time.Now())
	idp := oauthtest.New(t, oauthtest.WithClock(clk))
	dir := t.TempDir()
	inDir := func(c *config.Config) { c.Main.DataDir = dir }
	addr, srv := oauthBroker(t, idp, clk, inDir)
	tok := idp.Token(map[string]any{"scope": fullScope, "sub": "a14-device", "jti": "a14-jti",
		"exp": clk.Now().Add(10 * time.Second)})
	cp := withWill(jwtPassword("a14", tok), "will/a14", 30)
	cp.Properties.SessionExpiryInterval = u32p(60)
	c := connectV5(t, addr, cp)
	lost := clk.Now()
	c.drop()
	eventually(t, "the session offline", func() bool { return vhostClients(srv, "/") == 0 })

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Close(ctx); err != nil {
		t.Fatal(err)
	}
	signature := tok[strings.LastIndexByte(tok, '.')+1:]
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(data, []byte(tok)) || bytes.Contains(data, []byte(signature)) {
			t.Fatalf("%s holds the token", path)
		}
		return nil
	})

	clk.Advance(5 * time.Second)
	addr, srv = oauthBroker(t, idp, clk, inDir)
	w := watcher(t, addr, "a14-w", "will/#")
	other := idp.Token(map[string]any{"scope": fullScope, "sub": "someone-else"})
	thief, err := tryConnectV5(t, addr, withWill(jwtPassword("a14", other), "will/a14", 30))
	if code := connackCode(t, thief, err); code != byte(packet.NotAuthorized) {
		t.Fatalf("another subject taking the restored session's client id: CONNACK %#x, want 0x87", code)
	}
	w.expectNoMsg()
	clk.Set(lost.Add(31 * time.Second))
	clk.Wait()
	if m := w.expectMsg(); m.Topic != "will/a14" {
		t.Fatalf("got %q", m.Topic)
	}
	ev := srv.events.find(event.WillPublished, "a14")
	if len(ev) != 1 || !ev[0].EarnedAt.Equal(lost) || ev[0].Identity == nil || ev[0].Identity.Subject != "a14-device" {
		t.Fatalf("will events %+v, want one earned at %v by subject a14-device", ev, lost)
	}
}
