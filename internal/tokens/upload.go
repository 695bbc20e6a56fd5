package tokens

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/turnstilemq/turnstile/internal/auth"
)

// The $SYS topics of token mode (tokens.md §5).
const (
	TopicUpload        = "$SYS/uploadToken"
	TopicExpireNotice  = "$SYS/tokenExpireNotice"
	TopicInvalidNotice = "$SYS/tokenInvalidNotice"
)

// errNotTokenLogin: an upload on a connection that did not log in with tokens.
var errNotTokenLogin = &InvalidError{InvalidForged, "tokens: upload on a connection that did not log in with tokens"}

// VerifyUpload verifies a $SYS/uploadToken payload, {"token": "…", "type": "R"|"W"|"RW"} (the
// key "Token" is accepted too), for the connection whose identity is current, at now
// (tokens.md §6). The token is verified as a new credential and must be of the same AccessKey
// and vhost as current's tokens. On success it returns a new identity: current with that type's
// token replaced (Generation+1, grants, expiry and credentials recomputed). On failure it
// returns the $SYS/tokenInvalidNotice code (1 forged or unparsable, 2 expired, 3 revoked,
// 5 type mismatch, 8 signature invalid, -1 AccessKey or owner no longer valid) and an error that
// never contains the token.
func (s *Service) VerifyUpload(current *auth.Identity, payload []byte, now time.Time) (*auth.Identity, InvalidCode, error) {
	if len(payload) > MaxUploadBytes {
		return nil, InvalidForged, fmt.Errorf("%w: upload payload over %d bytes", ErrMalformed, MaxUploadBytes)
	}
	var body struct {
		Token  *string `json:"token"`
		TokenU *string `json:"Token"`
		Type   string  `json:"type"`
	}
	if err := json.Unmarshal(payload, &body); err != nil {
		return nil, InvalidForged, fmt.Errorf("%w: upload payload is not JSON", ErrMalformed)
	}
	tok := body.Token
	if tok == nil {
		tok = body.TokenU
	} else if body.TokenU != nil && *body.TokenU != *tok {
		return nil, InvalidForged, fmt.Errorf("%w: upload payload has two different tokens", ErrMalformed)
	}
	if tok == nil || *tok == "" {
		return nil, InvalidForged, fmt.Errorf("%w: upload payload has no token", ErrMalformed)
	}
	if body.Type != TypeR && body.Type != TypeW && body.Type != TypeRW {
		return nil, InvalidType, fmt.Errorf("%w: upload type must be R, W or RW", ErrType)
	}
	akid, ok := tokenAccessKey(current)
	if !ok {
		return nil, InvalidForged, errNotTokenLogin
	}
	t, err := s.Verify(*tok, akid, current.Vhost, body.Type, now)
	if err != nil {
		return nil, CodeOf(err), err
	}
	ak, ok := s.aks.get(akid)
	if !ok {
		return nil, InvalidAccount, ErrAccount
	}
	// The other tokens keep their place; their facts come from the identity, never re-verified.
	next := *current
	next.Creds = slices.DeleteFunc(slices.Clone(current.Creds), func(c auth.CredentialRef) bool { return c.Type == body.Type })
	fresh := tokenIdentity(&ak, []*Token{t})
	next.Creds = append(next.Creds, fresh.Creds...)
	slices.SortStableFunc(next.Creds, func(a, b auth.CredentialRef) int { return typeOrder(a.Type) - typeOrder(b.Type) })
	next.Grants = grantsOf(next.Creds)
	next.Expiry = time.Time{}
	for _, c := range next.Creds {
		if next.Expiry.IsZero() || c.Expiry.Before(next.Expiry) {
			next.Expiry = c.Expiry
		}
	}
	next.Tags = slices.Clone(current.Tags)
	next.Generation = current.Generation + 1
	s.log.Info("tokens: token uploaded", "access_key_id", akid, "vhost", current.Vhost, "user", current.User,
		"jti", t.JTI, "kid", t.KID, "type", body.Type, "generation", next.Generation)
	return &next, 0, nil
}

// tokenAccessKey returns the AccessKey of a token login: every token credential's Subject.
func tokenAccessKey(id *auth.Identity) (string, bool) {
	if id == nil || id.Method != ProviderName || id.GrantsSource != auth.GrantsToken || len(id.Creds) == 0 {
		return "", false
	}
	akid := id.Creds[0].Subject
	for _, c := range id.Creds {
		if c.Kind != CredToken || c.Subject != akid || akid == "" {
			return "", false
		}
	}
	return akid, true
}

// ExpireNotice returns the payload of $SYS/tokenExpireNotice: {"expireTime": <ms>, "type": typ}.
func ExpireNotice(exp time.Time, typ string) []byte {
	b, _ := json.Marshal(struct {
		ExpireTime int64  `json:"expireTime"`
		Type       string `json:"type"`
	}{exp.UnixMilli(), typ})
	return b
}

// InvalidNotice returns the payload of $SYS/tokenInvalidNotice: {"code": code, "type": typ}.
func InvalidNotice(code int, typ string) []byte {
	b, _ := json.Marshal(struct {
		Code int    `json:"code"`
		Type string `json:"type"`
	}{code, typ})
	return b
}

// ParseUploadType is a helper for logs and metrics: the type of an upload payload, "" if none.
func ParseUploadType(payload []byte) string {
	if len(payload) > MaxUploadBytes {
		return ""
	}
	var b struct {
		Type string `json:"type"`
	}
	if json.Unmarshal(payload, &b) != nil {
		return ""
	}
	switch b.Type {
	case TypeR, TypeW, TypeRW:
		return b.Type
	}
	return ""
}
