package oauthtest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/turnstilemq/turnstile/internal/auth/oauth"
	"github.com/turnstilemq/turnstile/internal/clock"
)

// DefaultAudience is the aud of the tokens a Server mints, and the Audience of its Options.
const DefaultAudience = "turnstile"

// Key is a signing key with its kid and the algorithm it signs with.
type Key struct {
	Kid     string
	Alg     string // RS256, ES256, ES384 or EdDSA
	Private crypto.Signer
}

// Public returns the public half.
func (k *Key) Public() crypto.PublicKey { return k.Private.Public() }

// PublicPEM returns the public key as PEM (PKIX), the bytes an HS/RS confusion attack signs
// with.
func (k *Key) PublicPEM() []byte {
	der, err := x509.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		panic(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// JWK returns the public JWK the server publishes for k.
func (k *Key) JWK() jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.Public(), KeyID: k.Kid, Algorithm: k.Alg, Use: "sig"}
}

// NewKey generates a key for alg (RS256 and the other RS/PS algorithms: RSA 2048; ES256: P-256;
// ES384: P-384; ES512: P-521; EdDSA: Ed25519) under kid.
func NewKey(t testing.TB, alg, kid string) *Key {
	t.Helper()
	var priv crypto.Signer
	var err error
	switch alg {
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	case "ES256":
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "ES384":
		priv, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "ES512":
		priv, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	case "EdDSA":
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	default:
		t.Fatalf("oauthtest: no key type for algorithm %q", alg)
	}
	if err != nil {
		t.Fatalf("oauthtest: generating a %s key: %v", alg, err)
	}
	return &Key{Kid: kid, Alg: alg, Private: priv}
}

// Server is the in-process identity provider.
type Server struct {
	t     testing.TB
	srv   *httptest.Server
	clock clock.Clock

	rsa, ec, ed *Key

	mu       sync.Mutex
	keys     []*Key // the JWKS, in order
	down     bool
	maxAge   int           // Cache-Control max-age in seconds; < 0: no header
	hold     chan struct{} // non-nil: JWKS responses wait until it is closed
	jwksPath string

	jwksFetches, discoveryFetches atomic.Int64
}

// Option configures New.
type Option func(*config)

type config struct {
	clock clock.Clock
	tls   bool
}

// WithClock makes the default iat and exp of minted tokens follow c (default: the system
// clock). Pass the same clock.Fake to the verifier's Options.
func WithClock(c clock.Clock) Option { return func(o *config) { o.clock = c } }

// WithTLS serves over https (httptest's certificate; Options().HTTPClient trusts it).
func WithTLS() Option { return func(o *config) { o.tls = true } }

// New starts a provider on 127.0.0.1 with three keys: "rsa-1" (RS256), "ec-1" (ES256) and
// "ed-1" (EdDSA), all in the JWKS. It stops when the test ends.
func New(t testing.TB, opts ...Option) *Server {
	t.Helper()
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	s := &Server{t: t, clock: clock.Or(cfg.clock), maxAge: -1, jwksPath: "/jwks"}
	s.rsa = NewKey(t, "RS256", "rsa-1")
	s.ec = NewKey(t, "ES256", "ec-1")
	s.ed = NewKey(t, "EdDSA", "ed-1")
	s.keys = []*Key{s.rsa, s.ec, s.ed}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", s.serveDiscovery)
	mux.HandleFunc("GET /jwks", s.serveJWKS)
	if cfg.tls {
		s.srv = httptest.NewTLSServer(mux)
	} else {
		s.srv = httptest.NewServer(mux)
	}
	t.Cleanup(s.Close)
	return s
}

// Close releases held requests and stops the server (also done when the test ends).
func (s *Server) Close() {
	s.mu.Lock()
	if s.hold != nil {
		close(s.hold)
		s.hold = nil
	}
	s.mu.Unlock()
	s.srv.Close()
}

// Issuer is the issuer URL (also the discovery base): http://127.0.0.1:<port>.
func (s *Server) Issuer() string { return s.srv.URL }

// JWKSURL is the URL of the key set.
func (s *Server) JWKSURL() string { return s.srv.URL + s.jwksPath }

// Client is an HTTP client for the server (it trusts the TLS certificate WithTLS uses).
func (s *Server) Client() *http.Client { return s.srv.Client() }

// Options returns verifier options for this server: oauth.DefaultOptions with Issuer, Audience
// DefaultAudience (verify_aud on) and the server's HTTP client. The test sets Clock, scopes and
// the rest as it needs.
func (s *Server) Options() oauth.Options {
	o := oauth.DefaultOptions()
	o.Issuer = s.Issuer()
	o.Audience = DefaultAudience
	o.HTTPClient = s.Client()
	return o
}

// RSA, EC and Ed return the keys generated at start.
func (s *Server) RSA() *Key { return s.rsa }
func (s *Server) EC() *Key  { return s.ec }
func (s *Server) Ed() *Key  { return s.ed }

// Keys returns the keys the JWKS publishes now.
func (s *Server) Keys() []*Key {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.keys)
}

// SetKeys replaces the JWKS with keys (none: an empty set).
func (s *Server) SetKeys(keys ...*Key) {
	s.mu.Lock()
	s.keys = slices.Clone(keys)
	s.mu.Unlock()
}

// AddKey publishes k beside the keys already published.
func (s *Server) AddKey(k *Key) {
	s.mu.Lock()
	s.keys = append(s.keys, k)
	s.mu.Unlock()
}

// Rotate generates a new key for alg under kid and makes it the only key of the JWKS (the old
// ones are dropped, as a provider that rotates does). It returns the new key.
func (s *Server) Rotate(alg, kid string) *Key {
	k := NewKey(s.t, alg, kid)
	s.SetKeys(k)
	return k
}

// Down makes every request fail with 503 until Up.
func (s *Server) Down() { s.setDown(true) }

// Up ends Down.
func (s *Server) Up() { s.setDown(false) }

func (s *Server) setDown(d bool) {
	s.mu.Lock()
	s.down = d
	s.mu.Unlock()
}

// SetMaxAge sends Cache-Control: max-age=<seconds> with the JWKS; negative: no header.
func (s *Server) SetMaxAge(seconds int) {
	s.mu.Lock()
	s.maxAge = seconds
	s.mu.Unlock()
}

// Hold makes JWKS requests wait (counted as they arrive) until the returned release is called
// (or the server closes). Release is idempotent.
func (s *Server) Hold() (release func()) {
	ch := make(chan struct{})
	s.mu.Lock()
	s.hold = ch
	s.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			if s.hold == ch {
				s.hold = nil
				close(ch)
			}
			s.mu.Unlock()
		})
	}
}

// JWKSFetches is the number of JWKS requests received, failed ones included.
func (s *Server) JWKSFetches() int64 { return s.jwksFetches.Load() }

// DiscoveryFetches is the number of discovery requests received.
func (s *Server) DiscoveryFetches() int64 { return s.discoveryFetches.Load() }

func (s *Server) serveDiscovery(w http.ResponseWriter, r *http.Request) {
	s.discoveryFetches.Add(1)
	s.mu.Lock()
	down := s.down
	s.mu.Unlock()
	if down {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"issuer":                                s.Issuer(),
		"jwks_uri":                              s.JWKSURL(),
		"id_token_signing_alg_values_supported": []string{"RS256", "ES256", "EdDSA"},
	})
}

func (s *Server) serveJWKS(w http.ResponseWriter, r *http.Request) {
	s.jwksFetches.Add(1)
	s.mu.Lock()
	hold := s.hold
	s.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-r.Context().Done():
			return
		}
	}
	s.mu.Lock()
	down, maxAge := s.down, s.maxAge
	set := jose.JSONWebKeySet{}
	for _, k := range s.keys {
		set.Keys = append(set.Keys, k.JWK())
	}
	s.mu.Unlock()
	if down {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if maxAge >= 0 {
		w.Header().Set("Cache-Control", fmt.Sprintf("public, max-age=%d", maxAge))
	}
	_ = json.NewEncoder(w).Encode(set)
}

// TokenOption changes how Token signs.
type TokenOption func(*tokenConfig)

type tokenConfig struct {
	key      *Key
	kid      *string
	alg      string
	hmac     []byte
	unsigned bool
	headers  map[string]any
}

// WithKey signs with k (kid and alg from k). Default: the RSA key.
func WithKey(k *Key) TokenOption { return func(c *tokenConfig) { c.key = k } }

// WithKid puts kid in the header instead of the key's ("" leaves kid out).
func WithKid(kid string) TokenOption { return func(c *tokenConfig) { c.kid = &kid } }

// WithAlg signs with alg instead of the key's own (RS384 with the RSA key, say).
func WithAlg(alg string) TokenOption { return func(c *tokenConfig) { c.alg = alg } }

// WithHMAC signs with HS256 (or WithAlg's HS384/HS512) under secret; the kid is the key's
// unless WithKid changes it. With the RSA key's PublicPEM as secret this is the HS/RS confusion
// attack.
func WithHMAC(secret []byte) TokenOption { return func(c *tokenConfig) { c.hmac = secret } }

// Unsigned makes an "alg":"none" token with an empty signature.
func Unsigned() TokenOption { return func(c *tokenConfig) { c.unsigned = true } }

// WithHeader adds a protected header parameter.
func WithHeader(name string, value any) TokenOption {
	return func(c *tokenConfig) {
		if c.headers == nil {
			c.headers = map[string]any{}
		}
		c.headers[name] = value
	}
}

// Claims returns the default claims Token starts from: iss, sub "user-1", aud DefaultAudience,
// iat now, exp in one hour, a random jti.
func (s *Server) Claims() map[string]any {
	now := s.clock.Now()
	var jti [8]byte
	_, _ = rand.Read(jti[:])
	return map[string]any{
		"iss": s.Issuer(),
		"sub": "user-1",
		"aud": DefaultAudience,
		"iat": now.Unix(),
		"exp": now.Add(time.Hour).Unix(),
		"jti": hex.EncodeToString(jti[:]),
	}
}

// Token mints a token: the default Claims overlaid with claims (a nil value removes a claim;
// time.Time values become NumericDates), signed with the RSA key unless options say otherwise.
func (s *Server) Token(claims map[string]any, opts ...TokenOption) string {
	s.t.Helper()
	c := tokenConfig{key: s.rsa}
	for _, o := range opts {
		o(&c)
	}
	all := s.Claims()
	for k, v := range claims {
		switch v := v.(type) {
		case nil:
			delete(all, k)
		case time.Time:
			all[k] = v.Unix()
		default:
			all[k] = v
		}
	}
	payload, err := json.Marshal(all)
	if err != nil {
		s.t.Fatalf("oauthtest: claims: %v", err)
	}
	kid := c.key.Kid
	if c.kid != nil {
		kid = *c.kid
	}
	alg := c.key.Alg
	if c.alg != "" {
		alg = c.alg
	}
	if c.unsigned {
		h := map[string]any{"alg": "none", "typ": "JWT"}
		if kid != "" {
			h["kid"] = kid
		}
		maps.Copy(h, c.headers)
		hb, _ := json.Marshal(h)
		enc := base64.RawURLEncoding
		return enc.EncodeToString(hb) + "." + enc.EncodeToString(payload) + "."
	}
	var sk jose.SigningKey
	if c.hmac != nil {
		if c.alg == "" {
			alg = "HS256"
		}
		sk = jose.SigningKey{Algorithm: jose.SignatureAlgorithm(alg), Key: c.hmac}
	} else {
		sk = jose.SigningKey{Algorithm: jose.SignatureAlgorithm(alg), Key: c.key.Private}
	}
	so := (&jose.SignerOptions{}).WithType("JWT")
	if kid != "" {
		so = so.WithHeader("kid", kid)
	}
	for k, v := range c.headers {
		so = so.WithHeader(jose.HeaderKey(k), v)
	}
	signer, err := jose.NewSigner(sk, so)
	if err != nil {
		s.t.Fatalf("oauthtest: signer for %s: %v", alg, err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		s.t.Fatalf("oauthtest: signing: %v", err)
	}
	tok, err := jws.CompactSerialize()
	if err != nil {
		s.t.Fatalf("oauthtest: serializing: %v", err)
	}
	return tok
}
