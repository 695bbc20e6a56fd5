package tokens

import (
	"context"
	"slices"
	"strings"

	"github.com/turnstilemq/turnstile/internal/auth"
	"github.com/turnstilemq/turnstile/pkg/tokensign"
)

// ProviderName is the auth provider's name, and the Method of the identities it allows.
const ProviderName = "token"

// User name prefixes of the two login modes (tokens.md §4).
const (
	PrefixToken     = "Token"
	PrefixSignature = "Signature"
)

// Kinds of auth.CredentialRef this package makes: a token (ID jti, KeyID kid, Subject the
// AccessKey id, Type, Expiry, Hash, Resources), and a Signature-mode login (Subject the AccessKey
// id, nothing else).
const (
	CredToken     = "token"
	CredSignature = "signature"
)

// Provider is the MQTT login with Alibaba's token and signature modes (tokens.md §4), as an
// auth.Provider:
//
//   - "Token|<AccessKeyId>|<InstanceId>" with the password "<type>|<token>" pairs joined by '|'
//     (types R, W, RW, each at most once, any order, a trailing '|' tolerated);
//   - "Signature|<AccessKeyId>|<InstanceId>" with the password
//     Base64(HMAC-SHA1(AccessKeySecret, ClientId)).
//
// It abstains on any other user name. A login it cannot verify is a Deny with
// auth.ErrBadCredentials (v5 CONNACK 0x86, 3.1.1 return code 4); if one token of several is
// invalid the whole login fails.
type Provider struct{ s *Service }

var _ auth.BearerProvider = (*Provider)(nil)

// Provider returns the service's auth provider.
func (s *Service) Provider() *Provider { return &Provider{s: s} }

// Name is "token".
func (p *Provider) Name() string { return ProviderName }

// Bearer reports whether c is a token or signature login (auth.BearerProvider): its password is
// a token issued under the service's key or an HMAC under an AccessKey secret, never guessable.
func (p *Provider) Bearer(c *auth.Credentials) bool {
	_, _, _, ok := splitUser(c.Username)
	return ok
}

func denied(reason string) (auth.Decision, *auth.Identity, error) {
	return auth.Deny, nil, &auth.Denial{Provider: ProviderName, Reason: reason, Err: auth.ErrBadCredentials}
}

// splitUser parses "<mode>|<AccessKeyId>|<InstanceId>"; ok is false when the name is not of
// this form (the provider abstains).
func splitUser(name string) (mode, akid, instance string, ok bool) {
	mode, rest, found := strings.Cut(name, "|")
	if !found || (mode != PrefixToken && mode != PrefixSignature) {
		return "", "", "", false
	}
	akid, instance, found = strings.Cut(rest, "|")
	if !found {
		return mode, "", "", true // ours, malformed: denied
	}
	return mode, akid, instance, true
}

// tokenPair is one "<type>|<token>" of a token-mode password.
type tokenPair struct{ typ, tok string }

// ParsePassword splits a token-mode password into (type, token) pairs: types R, W or RW, each
// at most once, every token non-empty, a single trailing '|' tolerated. The error names what is
// wrong, never a token.
func parsePassword(pw string) ([]tokenPair, string) {
	if pw == "" {
		return nil, "empty password"
	}
	pw = strings.TrimSuffix(pw, "|")
	parts := strings.Split(pw, "|")
	if len(parts)%2 != 0 || len(parts) > 6 {
		return nil, "password is not <type>|<token> pairs"
	}
	out := make([]tokenPair, 0, len(parts)/2)
	for i := 0; i < len(parts); i += 2 {
		typ, tok := parts[i], parts[i+1]
		if typ != TypeR && typ != TypeW && typ != TypeRW {
			return nil, "password names an unknown token type"
		}
		if tok == "" {
			return nil, "password has an empty token"
		}
		if slices.ContainsFunc(out, func(p tokenPair) bool { return p.typ == typ }) {
			return nil, "password names a token type twice"
		}
		out = append(out, tokenPair{typ, tok})
	}
	return out, ""
}

// Authenticate implements auth.Provider.
func (p *Provider) Authenticate(_ context.Context, c *auth.Credentials) (auth.Decision, *auth.Identity, error) {
	mode, akid, instance, ok := splitUser(c.Username)
	if !ok {
		return auth.Abstain, nil, nil
	}
	if akid == "" || instance == "" || strings.Contains(instance, "|") {
		return denied("user name is not " + mode + "|<AccessKeyId>|<InstanceId>")
	}
	if mode == PrefixSignature {
		return p.signature(c, akid, instance)
	}
	pairs, why := parsePassword(string(c.Password))
	if why != "" {
		return denied(why)
	}
	now := p.s.clk.Now()
	toks := make([]*Token, len(pairs))
	for i, pr := range pairs {
		t, err := p.s.Verify(pr.tok, akid, instance, pr.typ, now)
		if err != nil {
			return denied(pr.typ + " token: " + err.Error())
		}
		toks[i] = t
	}
	ak, ok := p.s.aks.get(akid)
	if !ok {
		return denied("AccessKey deleted")
	}
	return auth.Allow, tokenIdentity(&ak, toks), nil
}

// signature checks a Signature-mode login: the owner's permissions, no grants, no expiry.
func (p *Provider) signature(c *auth.Credentials, akid, instance string) (auth.Decision, *auth.Identity, error) {
	ak, found := p.s.aks.get(akid)
	secret := ak.Secret
	if !found {
		secret = "unknown AccessKey: the signature is computed anyway"
	}
	good := tokensign.Equal(tokensign.MQTTPassword(secret, c.ClientID), string(c.Password))
	switch {
	case !found:
		return denied("unknown AccessKey")
	case !good:
		return denied("signature does not match")
	case ak.Vhost != instance:
		return denied("the AccessKey is not bound to this instance")
	case !p.s.ownerOK(&ak):
		return denied("the AccessKey's owner no longer exists or has no access to the instance")
	}
	// The credential names its AccessKey (Subject), so that the broker can find the connections
	// of a deleted AccessKey; it has no id, no key, no expiry.
	return auth.Allow, &auth.Identity{User: ak.User, Subject: ak.UserID, Issuer: auth.IssuerLocal,
		Vhost: instance, Method: ProviderName, Loopback: c.Loopback(),
		Creds: []auth.CredentialRef{{Kind: CredSignature, Subject: ak.ID}}}, nil
}

// tokenIdentity builds the identity of a token login or upload: the owner, the vhost, one grant
// per resource and action, the earliest expiry, one CredentialRef per token (Subject: the
// AccessKey id; Resources: the token's filters).
func tokenIdentity(ak *accessKeyRecord, toks []*Token) *auth.Identity {
	id := &auth.Identity{User: ak.User, Subject: ak.UserID, Issuer: auth.IssuerLocal, Vhost: ak.Vhost,
		Method: ProviderName, GrantsSource: auth.GrantsToken}
	slices.SortFunc(toks, func(a, b *Token) int { return typeOrder(a.Actions) - typeOrder(b.Actions) })
	for _, t := range toks {
		id.Creds = append(id.Creds, auth.CredentialRef{Kind: CredToken, Type: t.Actions, ID: t.JTI, KeyID: t.KID,
			Subject: t.AKID, Expiry: t.Expiry(), Hash: t.Hash, Resources: slices.Clone(t.Resources)})
		if id.Expiry.IsZero() || t.Expiry().Before(id.Expiry) {
			id.Expiry = t.Expiry()
		}
	}
	id.Grants = grantsOf(id.Creds)
	return id
}

func typeOrder(t string) int {
	switch t {
	case TypeR:
		return 0
	case TypeW:
		return 1
	}
	return 2
}

// grantsOf returns the grants of a set of token credentials, without duplicates: "read" per
// resource of R and RW tokens, "write" per resource of W and RW tokens. Never nil, so that an
// identity without tokens is allowed nothing.
func grantsOf(creds []auth.CredentialRef) []auth.Grant {
	out := []auth.Grant{}
	add := func(action, pattern string) {
		g := auth.Grant{Action: action, Pattern: pattern}
		if !slices.Contains(out, g) {
			out = append(out, g)
		}
	}
	for _, c := range creds {
		for _, r := range c.Resources {
			if c.Type == TypeR || c.Type == TypeRW {
				add("read", r)
			}
			if c.Type == TypeW || c.Type == TypeRW {
				add("write", r)
			}
		}
	}
	return out
}
