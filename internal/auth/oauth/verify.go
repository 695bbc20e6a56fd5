package oauth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/turnstilemq/turnstile/internal/auth"
)

// Verification failures. Verify wraps exactly one of them, with a detail that names claims,
// algorithms and key ids, never the token.
var (
	ErrTokenMalformed = errors.New("malformed token")
	ErrTokenTooLarge  = errors.New("token too large")
	ErrAlgorithm      = errors.New("algorithm refused")
	ErrNoKeyID        = errors.New("token has no kid")
	ErrUnknownKeyID   = errors.New("unknown kid")
	ErrSignature      = errors.New("bad signature")
	ErrExpired        = errors.New("token expired")
	ErrNotYetValid    = errors.New("token not yet valid")
	ErrIssuedInFuture = errors.New("token issued in the future")
	ErrIssuer         = errors.New("wrong issuer")
	ErrAudience       = errors.New("wrong audience")
	ErrClaim          = errors.New("missing or invalid claim")
)

// claims are the verified payload. Registered claims are checked for type; the rest stay raw
// for the scope mapping and the preferred user name.
type claims struct {
	raw           map[string]json.RawMessage
	iss, sub, jti string
	aud           []string
	exp           time.Time
	nbf, iat      time.Time // zero when absent
}

// Verify checks token and maps it to an identity on vhost, judged at now: size, shape,
// algorithm (allow-listed and fitting the key), kid (required for asymmetric algorithms, known
// or fetched once), signature, then exp (required), nbf, iat, iss and aud, all with the one
// leeway. It is what Authenticate uses, and what the broker calls for AUTH re-authentication
// and $SYS/uploadToken. The error wraps one of the Err* values of this package; it never
// contains the token.
//
// The identity's Scoped is nil when no scope grants anything on vhost: the token is good but
// gives no access there (acl.Admits refuses it, CONNACK 0x87 / return code 5).
func (p *Provider) Verify(ctx context.Context, token []byte, vhost string, now time.Time) (*auth.Identity, error) {
	c, kid, err := p.verify(ctx, token, now)
	if err != nil {
		return nil, err
	}
	user := ""
	for _, name := range p.o.PreferredUsernameClaims {
		if s, ok := stringClaim(c.raw, name); ok && s != "" {
			user = s
			break
		}
	}
	if user == "" {
		return nil, fmt.Errorf("oauth: %w: none of the preferred user name claims (%s) is a non-empty string", ErrClaim, strings.Join(p.o.PreferredUsernameClaims, ", "))
	}
	tags, grants := p.mapScopes(c.raw)
	return &auth.Identity{
		User:         user,
		Subject:      c.sub,
		Issuer:       c.iss,
		Vhost:        vhost,
		Tags:         tags,
		Method:       "oauth",
		GrantsSource: auth.GrantsOAuth,
		Scoped:       scopedFor(grants, vhost),
		NotBefore:    c.nbf,
		Expiry:       c.exp,
		Creds: []auth.CredentialRef{{
			Kind: "jwt", ID: c.jti, KeyID: kid, Subject: c.sub, Expiry: c.exp, Hash: sha256.Sum256(token),
		}},
	}, nil
}

// verify checks the token and returns its claims and kid.
func (p *Provider) verify(ctx context.Context, token []byte, now time.Time) (*claims, string, error) {
	switch {
	case len(token) == 0:
		return nil, "", fmt.Errorf("oauth: %w: empty", ErrTokenMalformed)
	case len(token) > p.o.MaxTokenSize:
		return nil, "", fmt.Errorf("oauth: %w: %d bytes, at most %d", ErrTokenTooLarge, len(token), p.o.MaxTokenSize)
	case bytes.Count(token, []byte{'.'}) != 2:
		return nil, "", fmt.Errorf("oauth: %w: not three dot-separated parts", ErrTokenMalformed)
	}
	jws, err := jose.ParseSignedCompact(string(token), p.algs)
	if err != nil {
		var ua *jose.ErrUnexpectedSignatureAlgorithm
		if errors.As(err, &ua) {
			return nil, "", fmt.Errorf("oauth: %w: %s is not allowed (allowed: %s)", ErrAlgorithm, quoteField(string(ua.Got)), strings.Join(p.o.Algorithms, ", "))
		}
		return nil, "", fmt.Errorf("oauth: %w: %s", ErrTokenMalformed, libError(err))
	}
	if len(jws.Signatures) != 1 {
		return nil, "", fmt.Errorf("oauth: %w: %d signatures", ErrTokenMalformed, len(jws.Signatures))
	}
	h := jws.Signatures[0].Protected
	alg, kid := h.Algorithm, h.KeyID
	var key any
	if strings.HasPrefix(alg, "HS") {
		// Only reachable with a shared secret configured (Validate). Never under a kid of the
		// JWKS: whatever the kid names is an asymmetric key, and HMAC under it is the
		// RS/HS confusion attack, refused even though the secret would not verify it.
		if kid != "" && p.keys.has(kid) {
			return nil, "", fmt.Errorf("oauth: %w: %s does not fit key %s (%s)", ErrAlgorithm, alg, quoteField(kid), p.keys.get(kid)[0].kty)
		}
		key = p.o.HMACSecret
	} else {
		if kid == "" {
			return nil, "", fmt.Errorf("oauth: %w", ErrNoKeyID)
		}
		keys, err := p.keys.lookup(ctx, kid)
		if err != nil {
			return nil, "", err
		}
		for i := range keys {
			if keys[i].fits(alg) {
				key = keys[i].pub
				break
			}
		}
		if key == nil {
			return nil, "", fmt.Errorf("oauth: %w: %s does not fit key %s (%s)", ErrAlgorithm, alg, quoteField(kid), keys[0].kty)
		}
	}
	payload, err := jws.Verify(key)
	if err != nil {
		return nil, "", fmt.Errorf("oauth: %w (alg %s, kid %s)", ErrSignature, alg, quoteField(kid))
	}
	c, err := parseClaims(payload)
	if err != nil {
		return nil, "", err
	}
	if err := p.checkClaims(c, now); err != nil {
		return nil, "", err
	}
	return c, kid, nil
}

// checkClaims applies the time, issuer and audience rules with the one leeway.
func (p *Provider) checkClaims(c *claims, now time.Time) error {
	lw := p.o.Leeway
	if c.exp.IsZero() {
		return fmt.Errorf("oauth: %w: exp is required", ErrClaim)
	}
	if now.After(c.exp.Add(lw)) {
		return fmt.Errorf("oauth: %w at %s (leeway %s)", ErrExpired, c.exp.UTC().Format(time.RFC3339), lw)
	}
	if !c.nbf.IsZero() && now.Before(c.nbf.Add(-lw)) {
		return fmt.Errorf("oauth: %w: nbf %s (leeway %s)", ErrNotYetValid, c.nbf.UTC().Format(time.RFC3339), lw)
	}
	if !c.iat.IsZero() && now.Before(c.iat.Add(-lw)) {
		return fmt.Errorf("oauth: %w: iat %s (leeway %s)", ErrIssuedInFuture, c.iat.UTC().Format(time.RFC3339), lw)
	}
	if strings.TrimRight(c.iss, "/") != strings.TrimRight(p.o.Issuer, "/") {
		return fmt.Errorf("oauth: %w: iss %s", ErrIssuer, quoteField(c.iss))
	}
	if p.o.VerifyAud {
		want := p.o.Audience
		if want == "" {
			want = p.o.ResourceServerID
		}
		if want == "" {
			return fmt.Errorf("oauth: %w: verify_aud is set but neither audience nor resource_server_id is", ErrAudience)
		}
		found := false
		for _, a := range c.aud {
			if a == want {
				found = true
				break
			}
		}
		if !found {
			return fmt.Errorf("oauth: %w: aud does not contain %s", ErrAudience, quoteField(want))
		}
	}
	return nil
}

// parseClaims decodes the verified payload: a JSON object whose registered claims have their
// registered types (RFC 7519 4.1).
func parseClaims(payload []byte) (*claims, error) {
	c := &claims{}
	if err := json.Unmarshal(payload, &c.raw); err != nil || c.raw == nil {
		return nil, fmt.Errorf("oauth: %w: the payload is not a JSON object", ErrTokenMalformed)
	}
	var err error
	for _, s := range []struct {
		name string
		dst  *string
	}{{"iss", &c.iss}, {"sub", &c.sub}, {"jti", &c.jti}} {
		if v, ok := c.raw[s.name]; ok {
			if err := json.Unmarshal(v, s.dst); err != nil {
				return nil, fmt.Errorf("oauth: %w: %s is not a string", ErrClaim, s.name)
			}
		}
	}
	if v, ok := c.raw["aud"]; ok {
		var one string
		if json.Unmarshal(v, &one) == nil {
			c.aud = []string{one}
		} else if err := json.Unmarshal(v, &c.aud); err != nil {
			return nil, fmt.Errorf("oauth: %w: aud is neither a string nor an array of strings", ErrClaim)
		}
	}
	if c.exp, err = dateClaim(c.raw, "exp"); err != nil {
		return nil, err
	}
	if c.nbf, err = dateClaim(c.raw, "nbf"); err != nil {
		return nil, err
	}
	if c.iat, err = dateClaim(c.raw, "iat"); err != nil {
		return nil, err
	}
	return c, nil
}

// dateClaim reads a NumericDate (seconds since the epoch, possibly fractional); zero when absent.
func dateClaim(raw map[string]json.RawMessage, name string) (time.Time, error) {
	v, ok := raw[name]
	if !ok || string(v) == "null" {
		return time.Time{}, nil
	}
	var f float64
	if err := json.Unmarshal(v, &f); err != nil || math.IsNaN(f) || f < 0 || f > 1<<40 {
		return time.Time{}, fmt.Errorf("oauth: %w: %s is not a NumericDate", ErrClaim, name)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC(), nil
}

// stringClaim returns the claim name when it is a string.
func stringClaim(raw map[string]json.RawMessage, name string) (string, bool) {
	v, ok := raw[name]
	if !ok {
		return "", false
	}
	var s string
	if json.Unmarshal(v, &s) != nil {
		return "", false
	}
	return s, true
}

// libError keeps the go-jose error text, which names what is wrong with the structure and
// never repeats the input, cut to a line.
func libError(err error) string {
	s := strings.TrimPrefix(err.Error(), "go-jose/go-jose: ")
	if len(s) > 120 {
		s = s[:120] + "…"
	}
	return s
}
