package auth

import (
	"context"
	"errors"
	"net/netip"
	"time"
)

// Credentials is what a client presents at CONNECT, with what the listener knows of it.
type Credentials struct {
	Username string // bare user name: the "vhost:" prefix is already split off
	Vhost    string // the vhost asked for (prefix), or the default vhost
	Password []byte
	ClientID string
	Remote   netip.Addr // client address (PROXY-protocol source when enabled)
	Listener string     // "tcp", "tls", "ws", "wss", "unix"
	// PeerCN is the verified client certificate's Common Name, "" when there is none.
	PeerCN string
	// FromBrowser is set for a WebSocket whose upgrade carried an Origin header: a web page.
	// Through DNS rebinding a remote page can reach a loopback listener, so such a connection
	// never counts as loopback.
	FromBrowser bool
}

// Loopback reports whether the client connects from the loopback address range or a unix
// socket: the same test on every listener, TLS and WebSocket included. A browser's connection
// is never loopback (see FromBrowser).
func (c *Credentials) Loopback() bool {
	if c.FromBrowser {
		return false
	}
	return c.Listener == "unix" || (c.Remote.IsValid() && c.Remote.Unmap().IsLoopback())
}

// Decision is a provider's answer.
type Decision int

const (
	Abstain Decision = iota // not mine: ask the next provider
	Allow                   // proven: the Identity is the client's
	Deny                    // mine, and wrong: stop, refuse
)

// Tag is a user tag, in RabbitMQ's and LavinMQ's sense.
type Tag string

const (
	TagAdministrator Tag = "administrator"
	TagMonitoring    Tag = "monitoring"
	TagManagement    Tag = "management"
	TagImpersonator  Tag = "impersonator"
	TagPolicymaker   Tag = "policymaker"
)

// Grant is a permission carried by the credential itself (an OAuth2 scope, a token's topics),
// as opposed to the user's stored permissions. Grants are fixed for the life of the credential.
type Grant struct {
	Action  string // "read" or "write"
	Pattern string // MQTT topic filter the grant covers
}

// Identity is the immutable result of a successful login: who the client is, in which vhost,
// with which tags and credential-scoped grants, until when. Nothing in it changes after CONNECT;
// the will is authorized against it at send time, never by re-validating the credential.
type Identity struct {
	User     string
	Vhost    string
	Tags     []Tag
	Method   string    // provider that allowed it: "local", "anonymous", "cert", "oauth", "token"
	Expiry   time.Time // credential expiry; zero means none (local users)
	Grants   []Grant   // nil: permissions come from the user's stored permissions only
	Loopback bool
}

// Expired reports whether the credential has expired at now.
func (id *Identity) Expired(now time.Time) bool { return !id.Expiry.IsZero() && !now.Before(id.Expiry) }

// HasTag reports whether the identity carries tag t.
func (id *Identity) HasTag(t Tag) bool {
	for _, x := range id.Tags {
		if x == t {
			return true
		}
	}
	return false
}

// Provider is one link of the chain.
type Provider interface {
	Name() string
	// Authenticate answers Abstain, Allow (with the Identity) or Deny. An error is a failure of
	// the provider itself (a store or network error) and counts as Deny.
	Authenticate(ctx context.Context, c *Credentials) (Decision, *Identity, error)
}

// Failures the connection layer maps to CONNACK codes.
var (
	// ErrBadCredentials: no provider allowed the credentials (v5 0x86, 3.1.1 return code 4).
	ErrBadCredentials = errors.New("bad user name or password")
	// ErrNotAuthorized: the identity may not use the vhost, or the address may not log in as this
	// user (v5 0x87, 3.1.1 return code 5).
	ErrNotAuthorized = errors.New("not authorized")
	// ErrRateLimited: too many failed logins from this address or for this user; the answer is
	// delayed, then refused as ErrBadCredentials would be.
	ErrRateLimited = errors.New("login rate limited")
)
