package tokens

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/turnstilemq/turnstile/internal/topic"
)

// Token types: the spelling of CONNECT passwords and $SYS payloads (tokens.md §4, §5). The API
// spells them "R", "W" and "R,W".
const (
	TypeR  = "R"
	TypeW  = "W"
	TypeRW = "RW"
)

// Claims are what a token asserts (tokens.md §7). Exp and Iat are Unix seconds.
type Claims struct {
	Vhost     string   `json:"vhost"`     // the InstanceId
	AKID      string   `json:"akid"`      // the AccessKey it was issued to
	Resources []string `json:"resources"` // topic filters, sorted
	Actions   string   `json:"actions"`   // TypeR, TypeW or TypeRW
	Exp       int64    `json:"exp"`
	Iat       int64    `json:"iat"`
	JTI       string   `json:"jti"`
}

// Expiry returns exp as a time.
func (c *Claims) Expiry() time.Time { return time.Unix(c.Exp, 0) }

// Token is a verified token's public facts: never its bytes.
type Token struct {
	Claims
	KID  string
	Hash [32]byte // SHA-256 of the token
}

// InvalidCode is a $SYS/tokenInvalidNotice code (tokens.md §5). 0 is none.
type InvalidCode int

const (
	InvalidForged    InvalidCode = 1  // token forged or cannot be parsed
	InvalidExpired   InvalidCode = 2  // token expired
	InvalidRevoked   InvalidCode = 3  // token revoked
	InvalidResource  InvalidCode = 4  // resource (topic) does not match the token
	InvalidType      InvalidCode = 5  // action or permission type does not match the token
	InvalidSignature InvalidCode = 8  // signature invalid
	InvalidAccount   InvalidCode = -1 // account permission invalid
)

// InvalidError is why a token was refused, with its notice code. The message never contains the
// token.
type InvalidError struct {
	Code InvalidCode
	msg  string
}

func (e *InvalidError) Error() string { return e.msg }

// The refusals; verification wraps them with the detail (errors.Is works, CodeOf finds the code).
var (
	ErrMalformed = &InvalidError{InvalidForged, "tokens: token forged or unparsable"}
	ErrNotIssued = &InvalidError{InvalidForged, "tokens: token not issued to this AccessKey and instance"}
	ErrExpired   = &InvalidError{InvalidExpired, "tokens: token expired"}
	ErrRevoked   = &InvalidError{InvalidRevoked, "tokens: token revoked"}
	ErrType      = &InvalidError{InvalidType, "tokens: token type does not match"}
	ErrSignature = &InvalidError{InvalidSignature, "tokens: token signature invalid"}
	ErrAccount   = &InvalidError{InvalidAccount, "tokens: the AccessKey or its owner is no longer valid"}
)

// CodeOf returns the notice code of a token refusal, InvalidForged for any other error, 0 for nil.
func CodeOf(err error) InvalidCode {
	if err == nil {
		return 0
	}
	var ie *InvalidError
	if errors.As(err, &ie) {
		return ie.Code
	}
	return InvalidForged
}

// HashToken returns the SHA-256 of a token: what may be kept to recognise it again.
func HashToken(tok string) [32]byte { return sha256.Sum256([]byte(tok)) }

func newJTI() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// sign serialises the claims as a compact JWS signed by the active key.
func (k *keyring) sign(c *Claims) (string, string, error) {
	sk := k.signer()
	opts := (&jose.SignerOptions{}).WithType("JWT").WithHeader(jose.HeaderKey("kid"), sk.rec.KID)
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: sk.priv}, opts)
	if err != nil {
		return "", "", fmt.Errorf("tokens: signer: %w", err)
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return "", "", err
	}
	jws, err := s.Sign(payload)
	if err != nil {
		return "", "", fmt.Errorf("tokens: signing: %w", err)
	}
	tok, err := jws.CompactSerialize()
	return tok, sk.rec.KID, err
}

// parse checks a token's form and signature and returns its facts. It checks neither expiry,
// revocation nor whom it belongs to.
func (k *keyring) parse(tok string) (*Token, error) {
	if len(tok) == 0 || len(tok) > MaxTokenBytes {
		return nil, fmt.Errorf("%w: length %d", ErrMalformed, len(tok))
	}
	jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil || len(jws.Signatures) != 1 {
		return nil, fmt.Errorf("%w: not a compact EdDSA JWS", ErrMalformed)
	}
	kid := jws.Signatures[0].Header.KeyID
	pub, ok := k.lookup(kid)
	if !ok {
		return nil, fmt.Errorf("%w: unknown signing key", ErrSignature)
	}
	payload, err := jws.Verify(pub)
	if err != nil {
		return nil, ErrSignature
	}
	t := &Token{KID: kid, Hash: HashToken(tok)}
	if err := json.Unmarshal(payload, &t.Claims); err != nil {
		return nil, fmt.Errorf("%w: claims", ErrMalformed)
	}
	if err := t.Claims.check(); err != nil {
		return nil, err
	}
	return t, nil
}

func (c *Claims) check() error {
	switch {
	case c.Vhost == "":
		return fmt.Errorf("%w: vhost claim missing", ErrMalformed)
	case c.AKID == "":
		return fmt.Errorf("%w: akid claim missing", ErrMalformed)
	case c.JTI == "":
		return fmt.Errorf("%w: jti claim missing", ErrMalformed)
	case c.Exp <= 0:
		return fmt.Errorf("%w: exp claim missing", ErrMalformed)
	case c.Actions != TypeR && c.Actions != TypeW && c.Actions != TypeRW:
		return fmt.Errorf("%w: actions claim invalid", ErrMalformed)
	case len(c.Resources) == 0 || len(c.Resources) > MaxResources:
		return fmt.Errorf("%w: resources claim has %d filters", ErrMalformed, len(c.Resources))
	}
	for _, r := range c.Resources {
		if topic.ValidFilter(r) != nil {
			return fmt.Errorf("%w: resources claim holds an invalid filter", ErrMalformed)
		}
	}
	return nil
}

// ParseResources splits and validates the API's Resources parameter (tokens.md §2): at most 100
// comma-separated MQTT topic filters (wildcards allowed). It returns them sorted, without
// duplicates. Errors name the parameter and the position, never more.
func ParseResources(s string) ([]string, error) {
	if s == "" {
		return nil, &ParamError{"Resources", "empty"}
	}
	var out []string
	start, n := 0, 0
	for i := 0; i <= len(s); i++ {
		if i < len(s) && s[i] != ',' {
			continue
		}
		n++
		if n > MaxResources {
			return nil, &ParamError{"Resources", fmt.Sprintf("more than %d topic filters", MaxResources)}
		}
		r := s[start:i]
		start = i + 1
		if err := topic.ValidFilter(r); err != nil {
			return nil, &ParamError{"Resources", fmt.Sprintf("filter %d: %v", n, err)}
		}
		out = append(out, r)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// ParseActions maps the API's Actions parameter ("R", "W", "R,W") to a token type.
func ParseActions(s string) (string, error) {
	switch s {
	case "R":
		return TypeR, nil
	case "W":
		return TypeW, nil
	case "R,W":
		return TypeRW, nil
	}
	return "", &ParamError{"Actions", `must be "R", "W" or "R,W"`}
}

// ParamError names the request parameter that is wrong, and why.
type ParamError struct{ Param, Msg string }

func (e *ParamError) Error() string { return e.Param + ": " + e.Msg }
