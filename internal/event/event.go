package event

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/turnstilemq/turnstile/internal/auth"
)

// Kind is what happened.
type Kind uint8

const (
	// Connected: a CONNECT was accepted (CONNACK 0x00).
	Connected Kind = iota + 1
	// LoginFailed: a login (MQTT CONNECT, or a management API request) was refused because of
	// its credentials or its identity's rights: Reason says which (see the Reason constants).
	LoginFailed
	// Refused: a CONNECT was refused for another reason (a limit, a protocol error, a bad
	// client id); Code is the CONNACK reason code.
	Refused
	// Denied: an action of a connected client was not authorized (Action, Topic).
	Denied
	// Disconnected: a connection that had connected ended; Reason says why.
	Disconnected
	// WillPublished: a Last Will was published (Topic, EarnedAt).
	WillPublished
	// WillSuppressed: a Last Will was discarded without being published; Reason says why.
	WillSuppressed
	// Reauthenticated: a live connection proved a new credential (MQTT 5 AUTH, or a token
	// upload); Identity is the new one.
	Reauthenticated
	// TokenUploaded: a $SYS/uploadToken replaced a connection's token.
	TokenUploaded
	// LoginDelayed: the login limiter delayed a login attempt before checking its credentials
	// (User, Remote; Detail says how long). Refusals by the limiter are LoginFailed events with
	// ReasonRateLimited.
	LoginDelayed
	// LimitExceeded: an action of a connected client was refused by a limit (Reason: the limit,
	// one of the Limit constants; Topic: the filter or topic). A CONNECT refused by a limit is a
	// Refused event whose Reason is the limit.
	LimitExceeded
	// Banned: a ban was added (ClientID, User or Remote: what it matches; Reason: what it
	// matches by; Detail: the ban, with who added it).
	Banned
	numKinds
)

var kindNames = [numKinds]string{"", "connected", "login_failed", "refused", "denied", "disconnected",
	"will_published", "will_suppressed", "reauthenticated", "token_uploaded", "login_delayed", "limit_exceeded", "banned"}

func (k Kind) String() string {
	if k < numKinds {
		return kindNames[k]
	}
	return "unknown"
}

// Reasons of LoginFailed events.
const (
	ReasonBadCredentials = "bad_credentials" // no provider accepted the credentials
	ReasonNotAuthorized  = "not_authorized"  // proven, but not allowed (vhost, loopback-only user, will topic)
	ReasonRateLimited    = "rate_limited"    // the login limiter delayed or refused the attempt
	ReasonRevoked        = "revoked"         // the credential, its key or its subject is revoked
	ReasonReauthFailed   = "reauth_failed"   // an AUTH re-authentication or a token upload failed
)

// Limits, the Reason of Refused events of CONNECTs refused by a limit and of LimitExceeded
// events (docs/security.md, "Limits" and "Bans").
const (
	LimitMaxConnections      = "max_connections"       // [mqtt] max_connections, every vhost together
	LimitVhostMaxConnections = "vhost_max_connections" // a vhost's max-connections
	LimitUserMaxConnections  = "user_max_connections"  // a user's max-connections
	LimitVhostMaxSessions    = "vhost_max_sessions"    // a vhost's max-sessions
	LimitVhostMaxRetained    = "vhost_max_retained"    // a vhost's max-retained (LimitExceeded)
	LimitMaxSubscriptions    = "max_subscriptions"     // [mqtt] max_subscriptions_per_client (LimitExceeded)
	LimitConnectRate         = "connect_rate"          // [mqtt] max_connect_rate per source address
	ReasonBanned             = "banned"                // a CONNECT refused by a ban
)

// Reasons of WillSuppressed events (will-and-expiry.md §4).
const (
	WillNotAuthorized  = "not_authorized"  // current policy does not let the earning identity publish there
	WillRevoked        = "revoked"         // the credential, its key or its subject was revoked
	WillDeletedSubject = "deleted_subject" // the user was deleted (or re-created: another subject)
	WillBanned         = "banned"          // the client, user or address is banned
	WillSessionResumed = "session_resumed" // the session was resumed within the Will Delay [MQTT-3.1.3-9]
	WillDiscarded      = "discarded"       // an administrator or the server ended the session without its will
	WillReauthFailed   = "reauth_failed"   // will_on_reauth_failure = suppress, after a failed re-authentication
)

// Event is one thing that happened. Fields that do not apply to a Kind are zero.
type Event struct {
	Kind     Kind
	Time     time.Time
	Listener string // "tcp", "tls", "ws", "wss", "unix", "mgmt"
	Remote   string // the peer's address
	Vhost    string
	ClientID string
	User     string         // the user name presented (LoginFailed) or proven
	Identity *auth.Identity // the proven identity, nil before login succeeds
	Code     byte           // the MQTT reason code sent, when one was
	Reason   string         // a short machine-friendly reason (the constants above, or a close reason)
	Detail   string         // a human explanation for logs; never a secret
	Action   string         // Denied: "publish" or "subscribe"
	Topic    string         // Denied: the topic or filter; wills: the will topic
	EarnedAt time.Time      // wills: when the will was earned (will-and-expiry.md §4)
}

// Observer receives events. Observe runs on the reporting goroutine, outside the engine's
// locks; it must return quickly and must not keep a pointer into e (Identity is immutable and
// may be kept).
type Observer interface {
	Observe(e Event)
}

// Func adapts a function to an Observer.
type Func func(Event)

// Observe calls f(e).
func (f Func) Observe(e Event) { f(e) }

// Nop is an Observer that does nothing.
var Nop Observer = Func(func(Event) {})

// Multi sends every event to each observer in order. Observers can be added while events
// flow.
type Multi struct {
	list atomic.Pointer[[]Observer]
	mu   sync.Mutex // serialises Add
}

// Add appends an observer.
func (m *Multi) Add(o Observer) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var next []Observer
	if cur := m.list.Load(); cur != nil {
		next = append(next, *cur...)
	}
	next = append(next, o)
	m.list.Store(&next)
}

// Observe implements Observer.
func (m *Multi) Observe(e Event) {
	if l := m.list.Load(); l != nil {
		for _, o := range *l {
			o.Observe(e)
		}
	}
}
