package broker

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/turnstilemq/turnstile/internal/auth"
	"github.com/turnstilemq/turnstile/internal/clock"
	"github.com/turnstilemq/turnstile/internal/event"
	"github.com/turnstilemq/turnstile/internal/packet"
	"github.com/turnstilemq/turnstile/internal/store"
)

// Authenticator turns CONNECT credentials into an identity: the authentication chain. Its
// errors wrap auth.ErrBadCredentials, auth.ErrNotAuthorized or auth.ErrRateLimited.
type Authenticator interface {
	Authenticate(ctx context.Context, c *auth.Credentials) (*auth.Identity, error)
}

// Authorizer judges each action of an identity against the current policy (acl.Checker).
type Authorizer interface {
	// Admits reports whether the identity may use its vhost at all.
	Admits(id *auth.Identity) bool
	CanPublish(id *auth.Identity, clientID, topic string) error
	CanSubscribe(id *auth.Identity, clientID, filter string) error
	// ReceiveCovered reports whether every topic filter can match is provably readable by id,
	// so that messages on a subscription to it need no check; CanReceive is the check
	// otherwise, per delivered topic (memoized per session, reset when Generation changes).
	ReceiveCovered(id *auth.Identity, filter string) bool
	CanReceive(id *auth.Identity, clientID, topic string) error
	// Generation changes with every change of the policy.
	Generation() uint64
}

// Standing tells whether an identity's subject is still in good standing at an instant: not
// deleted, revoked or banned. reason is a will suppression reason of package event.
type Standing interface {
	Revoked(id *auth.Identity, at time.Time) (reason string, revoked bool)
}

// Limits are the configured bounds of every connection and session.
type Limits struct {
	MaxInflight        int   // outbound QoS 1/2 messages unacknowledged per session
	MaxPacket          int   // largest packet accepted, bytes
	MaxConnect         int   // largest CONNECT accepted, bytes (before login); 0 = MaxPacket
	MaxPreauthBytes    int64 // memory all CONNECTs being read may claim together; 0 = 64 MiB
	MaxKeepalive       int   // seconds; 0 = no cap
	ReceiveMax         int   // inbound QoS 1/2 messages in flight per client
	MaxQueued          int   // per-session queue, messages
	MaxQueuedBytes     int   // per-session queue and per-connection output, bytes
	MaxTopicAlias      int   // Topic Alias Maximum accepted from v5 clients
	MaxSessionExpiry   int64 // seconds; 0 = no cap
	RetainAvailable    bool
	AllowEmptyClientID bool

	// What one client, vhost or source may hold (docs/security.md, "Limits"); 0 is no limit.
	MaxConnections      int // connected clients, every vhost together
	MaxSubscriptions    int // subscriptions of one session
	MaxSessionsPerVhost int // max-sessions of a vhost that has none of its own
	MaxRetainedPerVhost int // max-retained of a vhost that has none of its own
	// ConnectRate and ConnectBurst bound the CONNECTs of one source address (an IPv4 address,
	// the /64 of an IPv6 address): a bucket of ConnectBurst tokens refilled at ConnectRate per
	// second. ConnectRate 0 turns it off; unix sockets are exempt, and loopback addresses when
	// ConnectRateExemptLoopback is set.
	ConnectRate               float64
	ConnectBurst              int
	ConnectRateExemptLoopback bool
}

// Quotas are the limits set per vhost and per user (package directory): "max-connections",
// "max-sessions" and "max-retained" of a vhost, "max-connections" of a user. A negative value
// is no limit; set is false when none is set. They are read on every CONNECT and every retained
// PUBLISH of a new topic, so they must not block.
type Quotas interface {
	VhostLimit(vhost, name string) (value int64, set bool)
	UserLimit(user, name string) (value int64, set bool)
}

// Bans tells whether a client is banned (package ban): by client id, by user name (bare,
// without "vhost:"), or by source address. why describes the ban, for the log.
type Bans interface {
	Banned(clientID, user string, addr netip.Addr, at time.Time) (why string, banned bool)
}

// Options is everything a Server is built from. The composition root (package app) fills it
// from the configuration; tests fill it directly.
type Options struct {
	Limits       Limits
	DefaultVhost string   // vhost of a user name without a "vhost:" prefix
	Vhosts       []string // the vhosts that exist at start (AddVhost adds more)

	Authenticator Authenticator // required
	Authorizer    Authorizer    // required
	Standing      Standing      // nil: every subject is in good standing
	Quotas        Quotas        // nil: no vhost or user limits, only the defaults of Limits
	Bans          Bans          // nil: nobody is banned

	Store       store.Store // nil: state lives in memory only
	Logger      *slog.Logger
	Clock       clock.Clock    // nil: the system clock
	Observer    event.Observer // nil: events go nowhere
	SysInterval time.Duration  // $SYS/broker/... period; 0 turns it off
	Version     string         // reported in $SYS/broker/version

	// Credentials re-authenticates live connections (MQTT 5 AUTH) and takes token uploads on
	// $SYS/uploadToken; nil offers neither (AUTH is then a protocol error, and a CONNECT with
	// an Authentication Method gets 0x8C).
	Credentials Credentials
	Lifecycle   Lifecycle
}

// Credentials is what the broker asks of the credential providers for a live connection.
type Credentials interface {
	// AcceptsMethod reports whether an MQTT 5 Authentication Method is offered (3.1.2.11.9).
	AcceptsMethod(method string) bool
	// Reauthenticate verifies the Authentication Data of an AUTH 0x19 like a new credential and
	// returns the identity it proves, for current's connection (same vhost).
	Reauthenticate(ctx context.Context, current *auth.Identity, method string, data []byte, now time.Time) (*auth.Identity, error)
	// Upload verifies a $SYS/uploadToken payload for current's connection and returns the
	// identity with the new token, or the $SYS/tokenInvalidNotice code of the refusal.
	Upload(ctx context.Context, current *auth.Identity, payload []byte, now time.Time) (*auth.Identity, int, error)
}

// Lifecycle configures what happens to credentials that expire or are replaced on a live
// connection (docs/wills.md, will-and-expiry.md §4).
type Lifecycle struct {
	// Leeway is the clock skew allowed past a credential's expiry, the same everywhere.
	Leeway time.Duration
	// DenyOnly keeps a connection whose credential expired, refusing everything it asks
	// (EMQX's disconnect_after_expire = false); by default it is disconnected.
	DenyOnly bool
	// ExpiryCode is the DISCONNECT reason at expiry: 0 means 0xA0 Maximum connect time.
	ExpiryCode packet.ReasonCode
	// SuppressWillOnReauthFailure drops the will of a connection closed for a failed
	// re-authentication or upload; by default it is published under the old credential.
	SuppressWillOnReauthFailure bool
	// NoticeLead is how long before a token expires $SYS/tokenExpireNotice is sent (clamped to
	// half the token's lifetime); 0 means 5 minutes.
	NoticeLead time.Duration
	// UploadsPerMinute bounds $SYS/uploadToken per connection; more closes it. 0 means 6.
	UploadsPerMinute int
}

// Listener names a listener for Serve and tells the broker what its connections carry beyond
// net.Conn. The broker knows nothing of TLS or WebSocket: the composition root fills Inspect.
type Listener struct {
	Name string // "tcp", "tls", "ws", "wss", "unix": logged, and passed to authentication
	// Inspect returns what the listener knows about a connection (nil: nothing). It is called
	// once the connection's CONNECT has been read, so a TLS handshake is complete.
	Inspect func(net.Conn) ConnMeta
	// SubscribedNotices sends $SYS/tokenExpireNotice and $SYS/tokenInvalidNotice only to a
	// connection that subscribed to them; by default they are pushed, as Alibaba does.
	SubscribedNotices bool
}

// ConnMeta is what a listener knows about one connection.
type ConnMeta struct {
	PeerCN        string // the verified client certificate's Common Name, "" without one
	BrowserOrigin string // the Origin header of a WebSocket upgrade: a web page opened it
}
