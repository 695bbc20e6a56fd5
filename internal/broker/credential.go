package broker

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/turnstilemq/turnstile/internal/auth"
	"github.com/turnstilemq/turnstile/internal/event"
	"github.com/turnstilemq/turnstile/internal/packet"
	"github.com/turnstilemq/turnstile/internal/topic"
)

// The credential lifecycle of a live connection (will-and-expiry.md §4): a credential that
// expires closes the connection (DISCONNECT 0xA0) at its expiry plus the leeway, and every
// action checks validity itself, so a late timer never extends access; MQTT 5 clients
// re-authenticate with AUTH 0x19, and any client can upload a new token on $SYS/uploadToken;
// a revocation closes the connections it matches at once (0x98) and discards their wills.
//
// The identity is replaced whole (Generation + 1) on the read loop, under authMu, which also
// orders the expiry timer's decision: a timer armed for an older generation does nothing.
// Lock order: client.authMu is taken under no other broker lock; under it a notice may take the
// session's mu and close takes out.mu (doc.go).

// Reserved topics of the token contract (tokens.md §5).
const (
	topicUploadToken   = "$SYS/uploadToken"
	topicExpireNotice  = "$SYS/tokenExpireNotice"
	topicInvalidNotice = "$SYS/tokenInvalidNotice"
	maxUploadSize      = 8 << 10

	// Notice codes of $SYS/tokenInvalidNotice (tokens.md §5).
	noticeExpired = 2
	noticeRevoked = 3
)

// PropCredentialExpiresAt is the User Property of CONNACK and AUTH that tells a v5 client when
// its credential expires, in Unix seconds.
const PropCredentialExpiresAt = "x-credential-expires-at"

var (
	errCredentialExpired = errors.New("credential expired")
	errReauthFailed      = errors.New("re-authentication failed")
	errRevoked           = errors.New("credential revoked")
	errUploadFlood       = errors.New("too many token uploads")
)

func (s *Server) leeway() time.Duration { return s.opts.Lifecycle.Leeway }

// expiredNow reports whether the connection's credential has expired (past the leeway). It
// costs nothing for an identity without an expiry.
func (c *client) expiredNow() bool {
	id := c.id()
	return id != nil && id.Expires() && !id.ValidAt(c.srv.now(), c.srv.leeway())
}

// armCredentialLocked (re)starts the connection's expiry timer and token expiry notice for its
// identity in force. authMu held, or the connection not yet shared.
func (c *client) armCredentialLocked() {
	stopTimer(&c.noticeTimer)
	c.armExpiryLocked()
	id := c.id()
	if id == nil || !id.Expires() {
		return
	}
	clk, gen := c.srv.clock, id.Generation
	now := clk.Now()
	if tok, ok := earliestToken(id); ok {
		lead := c.srv.opts.Lifecycle.NoticeLead
		if lead <= 0 {
			lead = 5 * time.Minute
		}
		if life := tok.Expiry.Sub(now); lead > life/2 {
			lead = life / 2 // clamped to half the lifetime (tokens.md §5)
		}
		c.noticeTimer = clk.AfterFunc(tok.Expiry.Add(-lead).Sub(now), func() {
			defer c.srv.recoverTimer("token expiry notice")
			c.authMu.Lock()
			defer c.authMu.Unlock()
			// A notice that fires late, at or after the expiry itself (a stalled timer, a clock
			// jump), is not sent: $SYS/tokenInvalidNotice code 2 follows instead.
			if cur := c.id(); cur.Generation == gen && !c.closed.Load() && c.srv.now().Before(tok.Expiry) {
				c.sendNotice(topicExpireNotice, expireNotice(tok.Expiry, tok.Type))
			}
		})
	}
}

// armExpiryLocked (re)starts the expiry timer at the credential's expiry plus the leeway.
// authMu held, or the connection not yet shared.
func (c *client) armExpiryLocked() {
	stopTimer(&c.expTimer)
	id := c.id()
	if id == nil || !id.Expires() {
		return
	}
	clk, gen := c.srv.clock, id.Generation
	c.expTimer = clk.AfterFunc(id.Expiry.Add(c.srv.leeway()).Sub(clk.Now()), func() {
		defer c.srv.recoverTimer("credential expiry")
		c.onExpiry(gen)
	})
}

// earliestToken is the Alibaba token of the identity that expires first.
func earliestToken(id *auth.Identity) (auth.CredentialRef, bool) {
	var best auth.CredentialRef
	found := false
	for _, cr := range id.Creds {
		if cr.Kind == "token" && !cr.Expiry.IsZero() && (!found || cr.Expiry.Before(best.Expiry)) {
			best, found = cr, true
		}
	}
	return best, found
}

// onExpiry runs when the credential of generation gen has passed its expiry and the leeway:
// the connection gets $SYS/tokenInvalidNotice {"code":2} (token logins), then DISCONNECT 0xA0
// with a Reason String, and its will is earned at the expiry instant. A re-authentication that
// won the race makes it a no-op.
func (c *client) onExpiry(gen uint64) {
	c.authMu.Lock()
	defer c.authMu.Unlock()
	id := c.id()
	if id == nil || id.Generation != gen || c.closed.Load() {
		return
	}
	if id.ValidAt(c.srv.now(), c.srv.leeway()) { // the timer ran early: not yet (strictly later)
		c.armExpiryLocked()
		return
	}
	if c.srv.opts.Lifecycle.DenyOnly {
		return // every action checks validity and is refused
	}
	if tok, ok := earliestToken(id); ok {
		c.sendNotice(topicInvalidNotice, invalidNotice(noticeExpired, tok.Type))
	}
	code := c.srv.opts.Lifecycle.ExpiryCode
	if code == 0 {
		code = packet.MaximumConnectTime
	}
	c.closeWith(errCredentialExpired, code, "credential expired")
}

// connackCredential adds to a v5 CONNACK what the client needs about its credential: the
// Authentication Method it used [MQTT-4.12.0-5], and when the credential expires.
func (c *client) connackCredential(ack *packet.Connack, method string) {
	ack.Props.AuthMethod = method
	if id := c.id(); id.Expires() {
		ack.Props.User = append(ack.Props.User, packet.UserProperty{Key: PropCredentialExpiresAt,
			Value: strconv.FormatInt(id.Expiry.Unix(), 10)})
	}
}

// swapIdentity makes next the connection's identity (and its session's) after a successful
// AUTH or upload: Generation + 1, timers re-armed, and the session's subscriptions judged again
// at once, those no longer permitted removed. It reports false when the connection is closing.
func (c *client) swapIdentity(next *auth.Identity) bool {
	c.authMu.Lock()
	cur := c.id()
	if c.closed.Load() {
		c.authMu.Unlock()
		return false
	}
	n := *next // next is fresh from the verifier and not shared yet
	n.Generation = cur.Generation + 1
	c.ident.Store(&n)
	c.armCredentialLocked()
	c.authMu.Unlock()
	if s := c.session(); s != nil {
		s.mu.Lock()
		s.setIdentityLocked(&n)
		c.srv.recheckSessionLocked(s)
		s.mu.Unlock()
	}
	c.srv.observe(event.Event{Kind: event.Reauthenticated, Listener: c.listener, Remote: c.remote, Vhost: c.vhost.name,
		ClientID: c.clientID, User: n.User, Identity: &n})
	return true
}

// failReauth ends the connection after a failed re-authentication or upload. The will is
// published under the old credential, earned now (it was valid until now), unless configured
// otherwise.
func (c *client) failReauth(code packet.ReasonCode, why string) {
	c.srv.observe(event.Event{Kind: event.LoginFailed, Listener: c.listener, Remote: c.remote, Vhost: c.vhost.name,
		ClientID: c.clientID, User: c.id().User, Identity: c.id(), Code: byte(code), Reason: event.ReasonReauthFailed, Detail: why})
	if c.srv.opts.Lifecycle.SuppressWillOnReauthFailure {
		c.discardWill(event.WillReauthFailed)
	}
	c.closeWith(errReauthFailed, code, why)
}

// handleAuth handles AUTH from the client: re-authentication, one step (4.12.1). A client that
// connected without an Authentication Method may not send AUTH [MQTT-4.12.0-7] (0x82); another
// method is 0x8C [MQTT-4.12.1-1]; a credential that fails, or proves another subject, is 0x87.
func (c *client) handleAuth(p *packet.Auth) error {
	if c.authMethod == "" {
		return &packet.Error{Code: packet.ProtocolError, Field: "AUTH", Err: errors.New("the connection has no authentication method")}
	}
	if p.ReasonCode != packet.ReAuthenticate {
		return &packet.Error{Code: packet.ProtocolError, Field: "AUTH reason code", Err: errors.New("only re-authentication (0x19) is expected")}
	}
	if p.Props.AuthMethod != c.authMethod {
		c.failReauth(packet.BadAuthenticationMethod, "AUTH with another authentication method")
		return nil
	}
	cred := c.srv.opts.Credentials
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()
	cur := c.id()
	next, err := cred.Reauthenticate(ctx, cur, p.Props.AuthMethod, p.Props.AuthData, c.srv.now())
	switch {
	case err != nil:
		c.failReauth(packet.NotAuthorized, "re-authentication: "+err.Error())
		return nil
	case next.Owner() != cur.Owner() || next.Vhost != cur.Vhost:
		c.failReauth(packet.NotAuthorized, "re-authentication proved another subject")
		return nil
	}
	if !c.swapIdentity(next) {
		return nil
	}
	reply := &packet.Auth{ReasonCode: packet.Success}
	reply.Props.AuthMethod = c.authMethod               // [MQTT-4.12.0-5]
	if id := c.id(); id.Expires() && !c.noProblemInfo { // AUTH may carry it only then [MQTT-3.1.2-29]
		reply.Props.User = []packet.UserProperty{{Key: PropCredentialExpiresAt, Value: strconv.FormatInt(id.Expiry.Unix(), 10)}}
	}
	c.send(reply)
	c.logf(slog.LevelInfo, "re-authenticated", "generation", c.id().Generation)
	return nil
}

// handleUpload takes a token upload on $SYS/uploadToken (tokens.md §6): intercepted before
// routing and authorization, never routed, retained, stored or logged. The acknowledgement
// leaves only after the identity was swapped. A bad upload is refused with PUBACK 0x87 on v5
// (the old credential stays until its own expiry); a 3.1.1 client gets $SYS/tokenInvalidNotice
// with the code and is closed.
func (c *client) handleUpload(p *packet.Publish) error {
	now := c.srv.now()
	if !c.uploads.allow(now, c.srv.opts.Lifecycle.UploadsPerMinute) {
		c.closeWith(errUploadFlood, packet.MessageRateTooHigh, "too many token uploads")
		return nil
	}
	var next *auth.Identity
	var code int
	var err error
	switch cred := c.srv.opts.Credentials; {
	case cred == nil:
		code, err = 1, errors.New("token uploads are not offered")
	case p.Retain:
		code, err = 1, errors.New("an upload must not be retained")
	case len(p.Payload) > maxUploadSize:
		code, err = 1, errors.New("upload too large")
	default:
		ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
		next, code, err = cred.Upload(ctx, c.id(), p.Payload, now)
		cancel()
		if err == nil && (next.Owner() != c.id().Owner() || next.Vhost != c.id().Vhost) {
			code, err = 5, errors.New("the uploaded token is for another subject")
		}
	}
	if err == nil && c.swapIdentity(next) {
		c.srv.observe(event.Event{Kind: event.TokenUploaded, Listener: c.listener, Remote: c.remote, Vhost: c.vhost.name,
			ClientID: c.clientID, User: c.id().User, Identity: c.id()})
		c.ackUpload(p, packet.Success)
		return nil
	}
	if err == nil {
		return nil // closing
	}
	c.logf(slog.LevelInfo, "token upload refused", "reason", err.Error(), "code", code)
	if c.version == packet.V5 {
		c.srv.observe(event.Event{Kind: event.LoginFailed, Listener: c.listener, Remote: c.remote, Vhost: c.vhost.name,
			ClientID: c.clientID, User: c.id().User, Identity: c.id(), Code: byte(packet.NotAuthorized),
			Reason: event.ReasonReauthFailed, Detail: "token upload: " + err.Error()})
		c.ackUpload(p, packet.NotAuthorized)
		return nil
	}
	c.sendNotice(topicInvalidNotice, invalidNotice(code, uploadType(p.Payload)))
	c.failReauth(0, "token upload: "+err.Error())
	return nil
}

// ackUpload answers an upload by its QoS, behind any acknowledgement still held.
func (c *client) ackUpload(p *packet.Publish, code packet.ReasonCode) {
	switch p.QoS {
	case 1:
		c.ack(0, packet.PUBACK, p.PacketID, code)
	case 2:
		if code.IsError() {
			c.releaseQoS2(p.PacketID) // a PUBREC with an error ends the flow (4.3.3)
		}
		c.ack(0, packet.PUBREC, p.PacketID, code)
	}
}

// uploadType is the "type" of an upload payload, for the notice answering it.
func uploadType(payload []byte) string {
	var v struct {
		Type string `json:"type"`
	}
	if json.Unmarshal(payload, &v) == nil && len(v.Type) <= 2 {
		return v.Type
	}
	return ""
}

// sendNotice delivers a token notice to this connection only: pushed without a subscription
// (Alibaba's behaviour), or, on a listener in subscribed mode, only when the session has a
// subscription matching the notice topic. It is an at-most-once QoS 0 PUBLISH.
func (c *client) sendNotice(name string, payload []byte) {
	if c.subscribedNotices {
		s := c.session()
		if s == nil || !s.subscribedTo(name) {
			return
		}
	}
	d := delivery{msg: &Message{Topic: name, Payload: payload}}
	c.writePublish(&d, 0, false, c.srv.now().UnixNano())
}

// subscribedTo reports whether one of the session's subscriptions matches topic name.
func (s *session) subscribedTo(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sub := range s.subs {
		if sub.Group == "" && topic.Match(sub.Filter, name) {
			return true
		}
	}
	return false
}

// isNoticeFilter reports whether filter names only token notices: a subscription to them is
// always allowed, since it only ever carries the connection's own notices (nothing is routed on
// these topics).
func isNoticeFilter(filter string) bool {
	return filter == topicExpireNotice || filter == topicInvalidNotice
}

// expireNotice is the payload of $SYS/tokenExpireNotice: {"expireTime": <ms>, "type": "R"}.
func expireNotice(exp time.Time, typ string) []byte {
	b, _ := json.Marshal(struct {
		ExpireTime int64  `json:"expireTime"`
		Type       string `json:"type"`
	}{exp.UnixMilli(), typ})
	return b
}

// invalidNotice is the payload of $SYS/tokenInvalidNotice: {"code": <int>, "type": "W"}.
func invalidNotice(code int, typ string) []byte {
	b, _ := json.Marshal(struct {
		Code int    `json:"code"`
		Type string `json:"type"`
	}{code, typ})
	return b
}

// RevokeWhere closes, at once, every live connection whose identity match selects: token logins
// first get $SYS/tokenInvalidNotice {"code":3}, then every one DISCONNECT 0x98, and its will is
// discarded (reason "revoked"), cluster-wide in a cluster. Pending wills of offline sessions
// are judged when they would be sent (Standing). It returns how many connections it closed.
func (s *Server) RevokeWhere(match func(*auth.Identity) bool, reason string) int {
	n := 0
	s.forEachClient(func(c *client) {
		id := c.id()
		if id == nil || !match(id) {
			return
		}
		c.authMu.Lock()
		if tok, ok := earliestToken(id); ok {
			c.sendNotice(topicInvalidNotice, invalidNotice(noticeRevoked, tok.Type))
		}
		c.discardWill(reason)
		c.closeWith(errRevoked, packet.AdministrativeAction, "credential revoked")
		c.authMu.Unlock()
		n++
	})
	return n
}

// CredentialExpiry returns the expiry of the credential with id jti held by a live connection,
// for a revocation that should last as long as the token could be used.
func (s *Server) CredentialExpiry(jti string) (time.Time, bool) {
	var exp time.Time
	found := false
	s.forEachClient(func(c *client) {
		if id := c.id(); id != nil {
			for _, cr := range id.Creds {
				if cr.ID == jti && cr.Expiry.After(exp) {
					exp, found = cr.Expiry, true
				}
			}
		}
	})
	return exp, found
}

// uploadWindow counts a connection's token uploads in the last minute. Read loop only.
type uploadWindow struct {
	start time.Time
	n     int
}

func (w *uploadWindow) allow(now time.Time, perMinute int) bool {
	if perMinute <= 0 {
		perMinute = 6
	}
	if now.Sub(w.start) >= time.Minute {
		w.start, w.n = now, 0
	}
	w.n++
	return w.n <= perMinute
}

// isReserved reports whether a PUBLISH topic is the server's own: $SYS and its children.
func isReserved(name string) bool { return name == "$SYS" || strings.HasPrefix(name, "$SYS/") }
