package tokens

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/turnstilemq/turnstile/internal/clock"
	"github.com/turnstilemq/turnstile/internal/topic"
)

// Service is the token service: AccessKeys, signing keys, tokens and revocations. Its methods
// are the core the HTTP API, the MQTT login and the management API call; they are safe for
// concurrent use.
type Service struct {
	o       Options
	clk     clock.Clock
	log     *slog.Logger
	seal    *sealer
	keys    keyring
	aks     accessKeys
	revoker Revoker
	guard   *guard

	hookMu       sync.RWMutex
	revokeHooks  []func(jti string)
	akDeleteHook []func(id string)
}

// New loads the service's state from o.Store (signing keys, AccessKeys, revocations) and makes a
// signing key when there is none. It fails when the master key is missing or cannot decrypt what
// the store holds.
func New(o Options) (*Service, error) {
	o.defaults()
	if o.Owners == nil {
		return nil, errors.New("tokens: Options.Owners is required")
	}
	seal, err := newSealer(o.MasterKey)
	if err != nil {
		return nil, err
	}
	s := &Service{o: o, clk: o.Clock, log: o.Logger, seal: seal}
	s.keys = keyring{st: o.Store, seal: seal}
	if err := s.keys.load(s.clk.Now(), o.MaxLifetime); err != nil {
		return nil, err
	}
	s.aks = accessKeys{max: o.MaxAccessKeys, st: o.Store, seal: seal}
	if err := s.aks.load(); err != nil {
		return nil, err
	}
	s.revoker = o.Revoker
	if s.revoker == nil {
		rs, err := NewRevocationSet(o.Store, o.MaxRevocations, s.clk.Now)
		if err != nil {
			return nil, err
		}
		s.revoker = rs
	}
	s.guard = newGuard(&s.o)
	return s, nil
}

// Handler returns the HTTP API of s (api.go): mount it on the [tokens] listener.
func Handler(s *Service) http.Handler { return s.handler() }

// CreateAccessKey makes an AccessKey for user on vhost and returns its id and secret. The secret
// is returned only here: it is stored encrypted and never listed. The user must exist and have
// access to the vhost.
func (s *Service) CreateAccessKey(user, vhost string) (id, secret string, err error) {
	if user == "" || vhost == "" {
		return "", "", errors.New("tokens: user and vhost are required")
	}
	uid, ok := s.o.Owners.UserID(user)
	if !ok {
		return "", "", ErrUnknownUser
	}
	if !s.o.Owners.HasAccess(user, vhost) {
		return "", "", ErrNoVhostAccess
	}
	id, secret, err = s.aks.create(user, uid, vhost, s.clk.Now())
	if err == nil {
		s.log.Info("tokens: AccessKey created", "access_key_id", id, "user", user, "vhost", vhost)
	}
	return id, secret, err
}

// ListAccessKeys returns every AccessKey, sorted by id, without secrets.
func (s *Service) ListAccessKeys() []AccessKey { return s.aks.list() }

// DeleteAccessKey deletes an AccessKey: its requests and every token issued to it fail from now
// on. The hooks registered with OnAccessKeyDelete then run, so the broker can disconnect the
// clients logged in with it (their auth.CredentialRef.Subject is the AccessKey's id).
func (s *Service) DeleteAccessKey(id string) error {
	if !s.aks.delete(id) {
		return ErrUnknownAccessKey
	}
	s.guard.forget(id)
	s.log.Info("tokens: AccessKey deleted", "access_key_id", id)
	s.hookMu.RLock()
	hooks := s.akDeleteHook
	s.hookMu.RUnlock()
	for _, fn := range hooks {
		fn(id)
	}
	return nil
}

// OnRevoke registers fn to run after each token revocation, once it is in force, with the
// token's jti, in the revoking goroutine: the broker sends $SYS/tokenInvalidNotice code 3 and
// DISCONNECT 0x98 to every connection holding it (tokens.md §7).
func (s *Service) OnRevoke(fn func(jti string)) {
	s.hookMu.Lock()
	s.revokeHooks = append(s.revokeHooks, fn)
	s.hookMu.Unlock()
}

// OnAccessKeyDelete registers fn to run after an AccessKey is deleted, with its id.
func (s *Service) OnAccessKeyDelete(fn func(id string)) {
	s.hookMu.Lock()
	s.akDeleteHook = append(s.akDeleteHook, fn)
	s.hookMu.Unlock()
}

// RotateKey makes a new active signing key. Tokens signed by older keys keep verifying until the
// longest token such a key can have signed has expired (Options.MaxLifetime after it retired).
func (s *Service) RotateKey() SigningKey {
	now := s.clk.Now()
	s.keys.mu.Lock()
	s.keys.pruneLocked(now, s.o.MaxLifetime)
	sk := s.keys.rotateLocked(now)
	s.keys.mu.Unlock()
	s.log.Info("tokens: signing key rotated", "kid", sk.rec.KID)
	return SigningKey{KID: sk.rec.KID, Created: sk.rec.Created, Active: true}
}

// RemoveKey deletes a retired signing key at once (a compromised key): every token it signed
// fails verification from now on. The active key cannot be removed.
func (s *Service) RemoveKey(kid string) error {
	if err := s.keys.remove(kid); err != nil {
		return err
	}
	s.log.Warn("tokens: signing key removed", "kid", kid)
	return nil
}

// SigningKeys lists the signing keys, oldest first, without their private parts.
func (s *Service) SigningKeys() []SigningKey { return s.keys.list() }

// Issued is the result of ApplyToken.
type Issued struct {
	Token  string // the token: hand it to the client, never log or store it
	JTI    string
	KID    string
	Expiry time.Time // the token's exp
	// Capped is set when the asked expiry was beyond Options.MaxLifetime and was lowered.
	Capped bool
}

// ownerOK reports whether the AccessKey's owner is still the user it was made for (not deleted,
// not deleted and created again), and still has access to its vhost.
func (s *Service) ownerOK(r *accessKeyRecord) bool {
	uid, ok := s.o.Owners.UserID(r.User)
	return ok && uid == r.UserID && s.o.Owners.HasAccess(r.User, r.Vhost)
}

// ApplyToken issues a token for the AccessKey akid on instance, for the resources (valid topic
// filters, at most 100) and the type (TypeR, TypeW, TypeRW), expiring at expireAt: at least
// 60 s ahead, and capped at Options.MaxLifetime (or refused, with RejectLongExpiry). The
// request's signature is the caller's business.
func (s *Service) ApplyToken(akid, instance string, resources []string, typ string, expireAt time.Time) (*Issued, error) {
	ak, ok := s.aks.get(akid)
	if !ok {
		return nil, apiErr(http.StatusNotFound, CodeAccessKeyNotFound, "AccessKeyId: not found")
	}
	if instance != ak.Vhost {
		return nil, apiErr(http.StatusForbidden, CodeInstancePermission, "InstanceId: the AccessKey is not bound to this instance")
	}
	if !s.ownerOK(&ak) {
		return nil, apiErr(http.StatusBadRequest, CodePermission, "the AccessKey's owner has no access to the instance")
	}
	if len(resources) == 0 || len(resources) > MaxResources {
		return nil, apiErr(http.StatusBadRequest, CodeParameter, fmt.Sprintf("Resources: 1 to %d topic filters", MaxResources))
	}
	for i, r := range resources {
		if err := topic.ValidFilter(r); err != nil {
			return nil, apiErr(http.StatusBadRequest, CodeParameter, fmt.Sprintf("Resources: filter %d: %v", i+1, err))
		}
	}
	resources = slices.Compact(slices.Sorted(slices.Values(resources)))
	if typ != TypeR && typ != TypeW && typ != TypeRW {
		return nil, apiErr(http.StatusBadRequest, CodeParameter, `Actions: must be "R", "W" or "R,W"`)
	}
	now := s.clk.Now()
	if expireAt.Before(now.Add(DefaultMinLifetime)) {
		return nil, apiErr(http.StatusBadRequest, CodeParameter, "ExpireTime: must be at least 60 s after the current time")
	}
	capped := false
	if max := now.Add(s.o.MaxLifetime); expireAt.After(max) {
		if s.o.RejectLongExpiry {
			return nil, apiErr(http.StatusBadRequest, CodeParameter, fmt.Sprintf("ExpireTime: more than %v after the current time", s.o.MaxLifetime))
		}
		expireAt, capped = max, true
	}
	c := &Claims{Vhost: instance, AKID: akid, Resources: resources, Actions: typ,
		Exp: expireAt.Unix(), Iat: now.Unix(), JTI: newJTI()}
	tok, kid, err := s.keys.sign(c)
	if err != nil {
		return nil, apiErr(http.StatusInternalServerError, CodeInternal, "token generation failed")
	}
	if len(tok) > MaxTokenBytes {
		return nil, apiErr(http.StatusBadRequest, CodeParameter, fmt.Sprintf("Resources: the token would exceed %d bytes", MaxTokenBytes))
	}
	s.log.Info("tokens: token issued", "access_key_id", akid, "vhost", instance, "jti", c.JTI, "kid", kid,
		"type", typ, "exp", c.Expiry(), "capped", capped)
	return &Issued{Token: tok, JTI: c.JTI, KID: kid, Expiry: c.Expiry(), Capped: capped}, nil
}

// Verify checks a token for a login or an upload: its signature and form, that it was issued to
// AccessKey akid for vhost, that its type is typ ("" for any), that it is neither revoked nor
// expired at now, and that the AccessKey and its owner are still valid. The error is an
// *InvalidError (see CodeOf) and never contains the token.
func (s *Service) Verify(tok, akid, vhost, typ string, now time.Time) (*Token, error) {
	t, err := s.keys.parse(tok)
	if err != nil {
		return nil, err
	}
	if t.AKID != akid || t.Vhost != vhost {
		return nil, ErrNotIssued
	}
	if typ != "" && t.Actions != typ {
		return nil, ErrType
	}
	if err := s.liveness(t, now); err != nil {
		return nil, err
	}
	return t, nil
}

// liveness: revocation, expiry, AccessKey and owner.
func (s *Service) liveness(t *Token, now time.Time) error {
	if s.revoker.TokenRevoked(t.JTI) {
		return ErrRevoked
	}
	if !now.Before(t.Expiry().Add(s.o.Leeway)) { // not accepted on or after exp (RFC 7519 4.1.4)
		return ErrExpired
	}
	ak, ok := s.aks.get(t.AKID)
	if !ok || ak.Vhost != t.Vhost || !s.ownerOK(&ak) {
		return ErrAccount
	}
	return nil
}

// sameOwner reports whether the token t was issued to an AccessKey of the owner of caller, on
// caller's vhost: an application server may check and revoke the tokens of its owner's keys.
func (s *Service) sameOwner(caller *accessKeyRecord, t *Token) bool {
	if t.Vhost != caller.Vhost {
		return false
	}
	if t.AKID == caller.ID {
		return true
	}
	ak, ok := s.aks.get(t.AKID)
	return ok && ak.UserID == caller.UserID && ak.Vhost == caller.Vhost
}

// QueryToken reports whether tok is valid now (signature, expiry, revocation, AccessKey and
// owner), as seen by AccessKey akid on instance. A token of another instance or owner is
// reported invalid. The error is an *APIError for a bad request.
func (s *Service) QueryToken(akid, instance, tok string) (bool, InvalidCode, error) {
	ak, ok := s.aks.get(akid)
	if !ok {
		return false, 0, apiErr(http.StatusNotFound, CodeAccessKeyNotFound, "AccessKeyId: not found")
	}
	if instance != ak.Vhost {
		return false, 0, apiErr(http.StatusForbidden, CodeInstancePermission, "InstanceId: the AccessKey is not bound to this instance")
	}
	if tok == "" {
		return false, 0, apiErr(http.StatusBadRequest, CodeParameter, "Token: missing")
	}
	t, err := s.keys.parse(tok)
	if err != nil {
		return false, CodeOf(err), nil
	}
	if !s.sameOwner(&ak, t) {
		return false, InvalidForged, nil
	}
	if err := s.liveness(t, s.clk.Now()); err != nil {
		return false, CodeOf(err), nil
	}
	return true, 0, nil
}

// RevokeToken revokes tok, a token of an AccessKey of akid's owner on instance, until its exp,
// then runs the OnRevoke hooks. Revoking an expired or already revoked token succeeds and does
// nothing more.
func (s *Service) RevokeToken(akid, instance, tok string) error {
	ak, ok := s.aks.get(akid)
	if !ok {
		return apiErr(http.StatusNotFound, CodeAccessKeyNotFound, "AccessKeyId: not found")
	}
	if instance != ak.Vhost {
		return apiErr(http.StatusForbidden, CodeInstancePermission, "InstanceId: the AccessKey is not bound to this instance")
	}
	if tok == "" {
		return apiErr(http.StatusBadRequest, CodeParameter, "Token: missing")
	}
	t, err := s.keys.parse(tok)
	if err != nil {
		return &APIError{Status: http.StatusBadRequest, Code: CodeParameter, Message: "Token: forged or unparsable", invalid: CodeOf(err)}
	}
	if !s.sameOwner(&ak, t) {
		return &APIError{Status: http.StatusBadRequest, Code: CodePermission, Message: "Token: not issued to this owner's AccessKeys on this instance", invalid: InvalidForged}
	}
	if !s.clk.Now().Before(t.Expiry()) || s.revoker.TokenRevoked(t.JTI) {
		return nil
	}
	if err := s.revoker.RevokeToken(t.JTI, t.Expiry()); err != nil {
		s.log.Error("tokens: revocation failed", "jti", t.JTI, "err", err)
		return &APIError{Status: http.StatusServiceUnavailable, Code: CodeRevokeFailed, Message: "revocation failed"}
	}
	s.log.Info("tokens: token revoked", "access_key_id", akid, "vhost", instance, "jti", t.JTI, "kid", t.KID)
	s.hookMu.RLock()
	hooks := s.revokeHooks
	s.hookMu.RUnlock()
	for _, fn := range hooks {
		fn(t.JTI)
	}
	return nil
}

// AccessKeyValid reports whether the AccessKey exists and its owner is still the same subject
// with access to its vhost: what a token or signature login depends on, judged now.
func (s *Service) AccessKeyValid(id string) bool {
	r, ok := s.aks.get(id)
	return ok && s.ownerOK(&r)
}
