package broker

import (
	"cmp"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/turnstilemq/turnstile/internal/auth"
	"github.com/turnstilemq/turnstile/internal/event"

	"github.com/turnstilemq/turnstile/internal/packet"
	"github.com/turnstilemq/turnstile/internal/topic"
)

// readConnect reads the first packet, which must be CONNECT [MQTT-3.1.0-1], and handles it.
func (c *client) readConnect() error {
	h, err := packet.ReadFixedHeader(&c.in)
	if err != nil {
		return err
	}
	if h.Type != packet.CONNECT {
		return errNotConnect // closed without CONNACK [MQTT-3.1.0-1]
	}
	// Before login a client costs almost nothing: a CONNECT larger than max_connect_size is
	// refused before its body is read, and every CONNECT in progress counts against one budget
	// for the whole server.
	if m := c.srv.limits.MaxConnect; m > 0 && h.Size()+h.Remaining > m {
		c.version = peekVersion(&c.in)
		if c.version == packet.V5 {
			c.sendConnack(&packet.Connack{ReasonCode: packet.PacketTooLarge}) // 3.2.2.2
		}
		return &packet.Error{Code: packet.PacketTooLarge, Field: "CONNECT", Err: errors.New("larger than max_connect_size")}
	}
	if !c.srv.preauth.reserve(h.Remaining) {
		c.version = peekVersion(&c.in)
		return c.refuse(packet.ServerBusy, "the memory for connections not yet authenticated is in use")
	}
	body, err := c.readBody(h)
	c.srv.preauth.release(h.Remaining)
	if err != nil {
		return err
	}
	var cp packet.Connect // on the worker's stack: what the connection keeps of it is copied out
	if err := packet.DecodeConnect(body, &cp); err != nil {
		var code packet.ReasonCode
		if !errors.As(err, &code) {
			code = packet.MalformedPacket
		}
		switch {
		case code == packet.UnsupportedProtocolVersion:
			// CONNACK return code 1 in the 3.1.1 form, which every version understands [MQTT-3.1.2-2].
			c.version = packet.V311
			c.sendConnack(&packet.Connack{ReasonCode: code})
		case cp.Version == packet.V5:
			// The codec returns what it read up to the error, so a v5 client learns why: a server
			// may answer a malformed CONNECT with a CONNACK reason code [MQTT-4.13.1-1].
			c.version = packet.V5
			c.sendConnack(&packet.Connack{ReasonCode: code})
		}
		return err
	}
	return c.handleConnect(&cp)
}

// peekVersion reads the protocol level of a CONNECT whose fixed header was read, without
// consuming it: "MQTT" level 5 is v5; anything else answers as 3.1.1 would be answered.
func peekVersion(r *inReader) packet.Version {
	if b, err := r.Peek(7); err == nil && b[0] == 0 && b[1] == 4 && string(b[2:6]) == "MQTT" && b[6] == byte(packet.V5) {
		return packet.V5
	}
	return packet.V311
}

// refuse answers CONNECT with a failure CONNACK (the connection then closes [MQTT-3.2.2-7])
// for a reason other than the client's credentials or rights.
func (c *client) refuse(code packet.ReasonCode, why string) error {
	return c.refuseAs(event.Refused, code, labelOf(code), why, "")
}

// refuseAs answers CONNECT with a failure CONNACK and reports it as an event of kind k.
func (c *client) refuseAs(k event.Kind, code packet.ReasonCode, reason, why, user string) error {
	c.srv.observe(event.Event{Kind: k, Listener: c.listener, Remote: c.remote, ClientID: cmp.Or(c.clientID, c.askedID), User: user,
		Code: byte(code), Reason: reason, Detail: why})
	c.sendConnack(&packet.Connack{ReasonCode: code}) // 3.1.1 return codes are mapped by the codec
	return &packet.Error{Code: code, Field: "CONNECT", Err: errors.New(why)}
}

// labelOf turns a reason code's name into a label: "quota exceeded" becomes "quota_exceeded".
func labelOf(code packet.ReasonCode) string { return event.CodeLabel(byte(code)) }

func (c *client) handleConnect(cp *packet.Connect) error {
	lim := &c.srv.limits
	c.version = cp.Version
	v5 := c.version == packet.V5
	ack := &packet.Connack{}

	id := cp.ClientID
	if id == "" {
		switch {
		case c.version == packet.V31:
			return c.refuse(packet.ClientIdentifierNotValid, "MQTT 3.1 requires a client identifier")
		case !lim.AllowEmptyClientID:
			return c.refuse(packet.ClientIdentifierNotValid, "empty client identifier not allowed")
		case !v5 && !cp.CleanStart:
			return c.refuse(packet.ClientIdentifierNotValid, "empty client identifier with clean session 0") // [MQTT-3.1.3-8]
		}
		id = newClientID() // [MQTT-3.1.3-6]
		if v5 {
			ack.Props.AssignedClientID = id // [MQTT-3.2.2-16]
		}
	}
	if v5 && cp.Props.AuthMethod != "" {
		if cred := c.srv.opts.Credentials; cred == nil || !cred.AcceptsMethod(cp.Props.AuthMethod) {
			// An Authentication Method that is not offered [MQTT-4.12.0-1].
			return c.refuseAs(event.LoginFailed, packet.BadAuthenticationMethod, event.ReasonBadCredentials,
				"unsupported authentication method", cp.Username)
		}
		c.authMethod = cp.Props.AuthMethod
	}

	ka := cp.KeepAlive
	if m := lim.MaxKeepalive; m > 0 && (ka == 0 || int(ka) > m) {
		if !v5 {
			// 3.1.1 cannot be told another keep alive; refuse as mosquitto does.
			return c.refuse(packet.ClientIdentifierNotValid, "keep alive above max_keepalive")
		}
		ka = uint16(m) // Server Keep Alive [MQTT-3.2.2-21]
		ack.Props.ServerKeepAlive, ack.Props.HasServerKeepAlive = ka, true
	}

	var w *will
	if cp.Will != nil {
		if err := topic.ValidName(cp.Will.Topic); err != nil {
			return c.refuse(packet.TopicNameInvalid, "will topic: "+err.Error())
		}
		if isReserved(cp.Will.Topic) {
			// $SYS is the server's; $SYS/uploadToken least of all (will-and-expiry.md A1).
			return c.refuseAs(event.LoginFailed, packet.NotAuthorized, event.ReasonNotAuthorized, "will on a $SYS topic", cp.Username)
		}
		if cp.Will.Retain && !lim.RetainAvailable {
			return c.refuse(packet.RetainNotSupported, "will retain not available") // [MQTT-3.2.2-12]
		}
		w = &will{msg: &Message{Topic: cp.Will.Topic, Payload: cp.Will.Payload, QoS: cp.Will.QoS, Retain: cp.Will.Retain}}
		if v5 {
			wp := &cp.Will.Props
			w.msg.Props = forwardProps(wp)
			w.delay = time.Duration(wp.WillDelay) * time.Second
			w.expiryInterval, w.hasExpiry = wp.MessageExpiry, wp.HasMessageExpiry
		}
	}

	// Session Expiry Interval: v5 property (absent = 0), or 3.1.1 Clean Session = 0 = never.
	var expiry uint32
	switch {
	case v5:
		expiry = cp.Props.SessionExpiry
	case !cp.CleanStart:
		expiry = expiryNever
	}
	if m := lim.MaxSessionExpiry; m > 0 && int64(expiry) > m {
		expiry = uint32(m)
		if v5 {
			ack.Props.SessionExpiry, ack.Props.HasSessionExpiry = expiry, true // 3.2.2.3.2: the value in force
		}
	}

	c.receiveMax = 65535
	if v5 {
		p := &cp.Props
		if p.HasReceiveMaximum {
			c.receiveMax = p.ReceiveMaximum
		}
		if p.HasMaximumPacketSize {
			c.maxPacketOut = p.MaximumPacketSize
		}
		// Request Problem Information 0: no Reason String or User Property on any packet but
		// PUBLISH, CONNACK and DISCONNECT [MQTT-3.1.2-29].
		c.noProblemInfo = p.HasRequestProblemInfo && p.RequestProblemInfo == 0
		if p.HasTopicAliasMaximum && p.TopicAliasMaximum > 0 {
			c.out.aliasMax = p.TopicAliasMaximum
			c.out.aliases = make(map[string]uint16)
		}
		if lim.ReceiveMax < 65535 {
			ack.Props.ReceiveMaximum, ack.Props.HasReceiveMaximum = uint16(lim.ReceiveMax), true
		}
		if lim.MaxPacket < packet.MaxPacketSize {
			ack.Props.MaximumPacketSize, ack.Props.HasMaximumPacketSize = uint32(lim.MaxPacket), true
		}
		if lim.MaxTopicAlias > 0 {
			ack.Props.TopicAliasMaximum, ack.Props.HasTopicAliasMaximum = uint16(lim.MaxTopicAlias), true
		}
		if !lim.RetainAvailable {
			ack.Props.RetainAvailable, ack.Props.HasRetainAvailable = 0, true
		}
	}

	c.askedID = id
	if err := c.admitEarly(cp.Username, id); err != nil { // connect rate, bans (limits.go)
		return err
	}
	ident, v, code, why := c.authenticate(cp, id)
	if code == packet.Success {
		// A credential revoked (its jti, key or subject) or a subject banned is refused although
		// it verified: the policy is the current one.
		if r, revoked := c.srv.standing(ident); revoked {
			code, why = packet.BadUserNameOrPassword, "credential revoked ("+r+")"
			if r == event.WillBanned {
				code, why = packet.Banned, "banned"
			}
		}
	}
	if code != packet.Success {
		c.srv.logRefused(c, id, why) // never the password; once per source a minute (loginlog.go)
		reason := event.ReasonBadCredentials
		switch {
		case code == packet.NotAuthorized:
			reason = event.ReasonNotAuthorized
		case strings.Contains(why, "credential revoked"):
			reason = event.ReasonRevoked
		case strings.Contains(why, auth.ErrRateLimited.Error()):
			reason = event.ReasonRateLimited
		}
		if code == packet.BadUserNameOrPassword && c.authMethod != "" {
			code = packet.NotAuthorized // enhanced authentication refuses with 0x87 (4.12)
		}
		return c.refuseAs(event.LoginFailed, code, reason, why, cp.Username)
	}
	if w != nil {
		w.identity, w.clientID = ident, id
	}
	c.ident.Store(ident)
	if v5 {
		c.connackCredential(ack, c.authMethod)
	}
	c.connectedAt = c.srv.now()
	c.clientID = id
	c.keepAlive = time.Duration(ka) * time.Second
	c.vhost = v
	if c.keepAlive > 0 {
		now := time.Now()
		c.deadlineSet = now.UnixNano()
		c.conn.SetReadDeadline(now.Add(c.keepAlive * 3 / 2)) // [MQTT-3.1.2-24]
	} else {
		c.conn.SetReadDeadline(time.Time{})
		tcpKeepAlive(c.conn)
	}
	if err := v.connect(c, cp.CleanStart, expiry, w, ack); err != nil {
		c.vhost = nil // never attached: cleanup has nothing to detach
		c.srv.logRefused(c, id, err.Error())
		if errors.Is(err, errOtherOwner) {
			// [MQTT-3.1.4-2]: another subject's session is neither taken over nor disclosed.
			return c.refuseAs(event.LoginFailed, packet.NotAuthorized, event.ReasonNotAuthorized, err.Error(), cp.Username)
		}
		return c.refuseConnect(err, cp.Username) // a limit or a ban (limits.go); else 0x89 (3.1.1: 3)
	}
	c.authMu.Lock()
	c.armCredentialLocked()
	c.authMu.Unlock()
	c.logf(slog.LevelInfo, "client connected", "protocol", c.version.String(), "clean_start", cp.CleanStart,
		"keepalive", ka, "session_present", ack.SessionPresent)
	c.srv.observe(event.Event{Kind: event.Connected, Listener: c.listener, Remote: c.remote, Vhost: v.name,
		ClientID: id, User: ident.User, Identity: ident})
	return nil
}
