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
	// AuthMethod and AuthData are the MQTT 5 Authentication Method and Data of CONNECT (or of
	// an AUTH re-authentication), "" and nil when absent (3.1.2.11.9, 3.1.2.11.10).
	AuthMethod string
	AuthData   []byte
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

// Grant is a permission carried by the credential itself (a token's topics), as opposed to the
// user's stored permissions. Grants are fixed for the life of the credential.
type Grant struct {
	Action  string // "read" or "write"
	Pattern string // MQTT topic filter the grant covers
}

// Issuers of subjects that are not JWTs.
const (
	IssuerLocal = "local" // a local user: Subject is the user's ID
)

// Identity is the immutable result of a successful login: who the client is, in which vhost,
// with which tags and credential-scoped grants, until when. Nothing changes an Identity once the
// chain has returned it: a re-authentication replaces it whole (with a higher Generation). It
// holds no secret: never a password, a hash or a token, only the token's id and key id, so it
// may be stored with a session and logged.
//
// Authorization is judged later, at each action, against the current policy; the credential is
// never verified again (docs/design.md, "Identity and authorization").
type Identity struct {
	User string // the name permissions are matched by (local user name, or the JWT's preferred claim)
	// Subject and Issuer are the stable identity: they own sessions. For a local user Issuer is
	// IssuerLocal and Subject the user's ID, so a user deleted and created again under the same
	// name is a different subject. For a JWT they are its sub and iss.
	Subject string
	Issuer  string
	Vhost   string
	Tags    []Tag
	Method  string // provider that allowed it: "local", "anonymous", "cert", "oauth", "token"
	// GrantsSource says where the permissions of this identity come from besides the user's
	// stored permissions: "" for none, GrantsOAuth when the credential's scopes replace the
	// stored permissions (Scoped), GrantsToken when token resources narrow them (Grants).
	GrantsSource string
	Grants       []Grant            // topic filters a token allows; nil: no narrowing
	Scoped       *ScopedPermissions // with GrantsOAuth: the permissions the scopes give; nil: none
	// NotBefore and Expiry bound the credential's validity; zero means unbounded (local users).
	// With several credentials (Alibaba's R and W tokens) Expiry is the earliest.
	NotBefore, Expiry time.Time
	// Creds names the verified credentials behind this identity (never their bytes), for
	// revocation by id, subject or key.
	Creds []CredentialRef
	// Generation counts re-authentications of one connection: 0 at CONNECT, +1 for each
	// successful AUTH or token upload.
	Generation uint64
	Loopback   bool
	// Remote and ClientID are the address the credential was presented from and the client id
	// of the CONNECT it was presented with (invalid and "" when unknown: an API login, a session
	// recovered from the store). Bans on an address or a client id are judged against them, at
	// CONNECT and when a will earned by this identity is sent.
	Remote   netip.Addr
	ClientID string
}

// Where an identity's permissions come from (Identity.GrantsSource).
const (
	GrantsOAuth = "oauth" // OAuth2 scopes replace the stored permissions
	GrantsToken = "token" // token resources narrow the stored permissions of the token's owner
)

// ScopedPermissions are the permissions an OAuth2 token's scopes give on the identity's vhost,
// in RabbitMQ's regex form, so that package acl applies them as it applies stored ones:
// Configure, Write and Read are matched against resource names ("mqtt.default",
// "mqtt.<client_id>"); TopicWrite and TopicRead, built from the scopes' routing-key parts, are
// matched against MQTT topics and filters ("" = no topic restriction). Unlike stored topic
// permissions they take no {variables}. "" or "^$" in Configure, Write or Read denies.
type ScopedPermissions struct {
	Configure, Write, Read string
	TopicWrite, TopicRead  string
}

// CredentialRef names one verified credential without any of its bytes.
type CredentialRef struct {
	Kind    string    // "jwt", "token", or "signature" (an Alibaba Signature-mode login: Subject only)
	Type    string    // token type for Alibaba tokens: "R", "W" or "RW"; "" otherwise
	ID      string    // jti
	KeyID   string    // kid of the signing key
	Subject string    // the credential's own subject (for revocation by subject)
	Expiry  time.Time // this credential's exp
	// Hash is the SHA-256 of the credential, to recognise the same token again; never the token.
	Hash [32]byte
	// Resources are an Alibaba token's topic filters, so that the identity's grants can be
	// recomputed when one of its tokens is replaced ($SYS/uploadToken); nil otherwise.
	Resources []string
}

// HasCredentialID reports whether one of the identity's credentials has id jti.
func (id *Identity) HasCredentialID(jti string) bool {
	for i := range id.Creds {
		if id.Creds[i].ID == jti {
			return true
		}
	}
	return false
}

// HasKeyID reports whether one of the identity's credentials was signed with key kid.
func (id *Identity) HasKeyID(kid string) bool {
	for i := range id.Creds {
		if id.Creds[i].KeyID == kid {
			return true
		}
	}
	return false
}

// Owner is the key of the subject that owns a session: Issuer and Subject, or the user name for
// an identity without a subject.
func (id *Identity) Owner() string {
	if id.Subject == "" {
		return id.Issuer + "\x00user:" + id.User
	}
	return id.Issuer + "\x00" + id.Subject
}

// ValidAt reports whether the credential is valid at t, given the clock skew leeway allowed:
// NotBefore - leeway <= t < Expiry + leeway (a JWT is not accepted on or after its exp, RFC 7519
// 4.1.4). An identity without bounds is always valid.
func (id *Identity) ValidAt(t time.Time, leeway time.Duration) bool {
	if !id.NotBefore.IsZero() && t.Before(id.NotBefore.Add(-leeway)) {
		return false
	}
	return id.Expiry.IsZero() || t.Before(id.Expiry.Add(leeway))
}

// Expires reports whether the credential has an expiry.
func (id *Identity) Expires() bool { return !id.Expiry.IsZero() }

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
	//
	// The Identity that comes with Allow is the caller's: a new one for each call, sharing no
	// slice with anything the provider keeps. The chain completes it (vhost, method, remote
	// address, client id) in place instead of copying it, one allocation less per login.
	Authenticate(ctx context.Context, c *Credentials) (Decision, *Identity, error)
}

// BearerProvider is a Provider whose credentials are bearer tokens: values issued or signed
// under a key (a JWT, a token of the token service, an AccessKey signature) that cannot be
// guessed. The chain's rate limiter counts such an attempt only when it fails, so that many
// devices behind one address presenting distinct tokens at once are not taken for a guessing
// attack, while a flood of bad tokens is slowed like any other failures ([RateLimiter]).
type BearerProvider interface {
	Provider
	// Bearer reports whether c is a credential of this provider's bearer kind. It looks at the
	// credential's shape only and verifies nothing.
	Bearer(c *Credentials) bool
}

// Failures the connection layer maps to CONNACK codes.
var (
	// ErrBadCredentials: no provider allowed the credentials (v5 0x86, 3.1.1 return code 4).
	ErrBadCredentials = errors.New("bad user name or password")
	// ErrNotAuthorized: the identity may not use the vhost, or the address may not log in as this
	// user (v5 0x87, 3.1.1 return code 5).
	ErrNotAuthorized = errors.New("not authorized")
	// ErrRateLimited: the login limiter refused the attempt without checking its credentials
	// (too many attempts from its address, or of its user name from its address): the client may
	// try again later (v5 0x9F, 3.1.1 return code 3, HTTP 429). It never comes with
	// ErrBadCredentials.
	ErrRateLimited = errors.New("login rate limited")
)
