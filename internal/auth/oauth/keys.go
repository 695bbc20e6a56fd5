package oauth

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/sync/singleflight"

	"github.com/turnstilemq/turnstile/internal/clock"
)

// Refresh triggers and results, the labels of jwks_refresh_total{trigger,result}.
const (
	TriggerStart      = "start"       // the first fetch, by Start
	TriggerPeriodic   = "periodic"    // the refresh loop, per TTL or max-age
	TriggerUnknownKid = "unknown_kid" // a token named a kid not in the cache
	TriggerManual     = "manual"      // Refresh

	ResultOK          = "ok"
	ResultError       = "error"
	ResultRateLimited = "rate_limited" // an unknown kid within UnknownKidFloor of the last such refresh: no fetch
)

var (
	triggers = [...]string{TriggerStart, TriggerPeriodic, TriggerUnknownKid, TriggerManual}
	results  = [...]string{ResultOK, ResultError, ResultRateLimited}
)

// verifyKey is one usable public key of the JWKS.
type verifyKey struct {
	kid string
	alg string // the JWK's "alg", "" when it names none
	kty string // "RSA", "EC", "OKP": for error messages
	pub any    // *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey
}

// fits reports whether the key may verify a token signed with alg: the algorithm's family must
// be the key's type (RSA for RS/PS, the matching curve for ES, Ed25519 for EdDSA) and, when the
// JWK names an algorithm, the same one. HMAC never fits a JWKS key.
func (k *verifyKey) fits(alg string) bool {
	if k.alg != "" && k.alg != alg {
		return false
	}
	switch alg {
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
		_, ok := k.pub.(*rsa.PublicKey)
		return ok
	case "ES256", "ES384", "ES512":
		pk, ok := k.pub.(*ecdsa.PublicKey)
		if !ok {
			return false
		}
		want := map[string]elliptic.Curve{"ES256": elliptic.P256(), "ES384": elliptic.P384(), "ES512": elliptic.P521()}[alg]
		return pk.Curve == want
	case "EdDSA":
		_, ok := k.pub.(ed25519.PublicKey)
		return ok
	}
	return false
}

// keyMap is an immutable snapshot of the JWKS by kid. Several keys may share a kid (an RSA and
// an EC key, say); the token's alg picks one.
type keyMap map[string][]verifyKey

// counters are the refresh counters, by trigger and result.
type counters struct {
	refresh    [len(triggers)][len(results)]atomic.Uint64
	unknownKid atomic.Uint64
}

func (c *counters) add(trigger, result string) {
	ti, ri := -1, -1
	for i, t := range triggers {
		if t == trigger {
			ti = i
		}
	}
	for i, r := range results {
		if r == result {
			ri = i
		}
	}
	if ti >= 0 && ri >= 0 {
		c.refresh[ti][ri].Add(1)
	}
}

// keySet is the cache of signing keys and the loop that refreshes it.
type keySet struct {
	o     *Options
	clk   clock.Clock
	log   *slog.Logger
	keys  atomic.Pointer[keyMap]
	sf    singleflight.Group
	stats counters

	ctx    context.Context // cancelled by close: ends fetches in flight
	cancel context.CancelFunc

	mu          sync.Mutex
	jwksURI     string    // from discovery, "" until discovered (or after a failed fetch)
	lastUnknown time.Time // last refresh caused by an unknown kid
	ttl         time.Duration
	lastOK      time.Time
	failures    int // consecutive failed fetches
	started     bool
	closed      bool
	timer       clock.Timer
	ticks       sync.WaitGroup // refresh-loop runs in progress
}

func newKeySet(o *Options) *keySet {
	ks := &keySet{o: o, clk: o.Clock, log: o.Logger, ttl: o.JWKSCacheTTL}
	ks.ctx, ks.cancel = context.WithCancel(context.Background())
	ks.keys.Store(&keyMap{})
	return ks
}

// get returns the keys of kid, nil when unknown. Lock-free.
func (ks *keySet) get(kid string) []verifyKey { return (*ks.keys.Load())[kid] }

// has reports whether kid names a key of the cache.
func (ks *keySet) has(kid string) bool { return len(ks.get(kid)) > 0 }

// lookup returns the keys of kid. An unknown kid costs one refresh, shared by every caller that
// waits for it (single-flight), and at most one per UnknownKidFloor; the caller waits for it
// until ctx is done.
func (ks *keySet) lookup(ctx context.Context, kid string) ([]verifyKey, error) {
	if k := ks.get(kid); k != nil {
		return k, nil
	}
	ks.stats.unknownKid.Add(1)
	ch := ks.sf.DoChan("fetch", func() (any, error) { return nil, ks.fetchForUnknownKid() })
	select {
	case <-ch:
	case <-ctx.Done():
		return nil, fmt.Errorf("oauth: waiting for the JWKS: %w", ctx.Err())
	}
	if k := ks.get(kid); k != nil {
		return k, nil
	}
	return nil, fmt.Errorf("oauth: %w %s", ErrUnknownKeyID, quoteField(kid))
}

// fetchForUnknownKid fetches unless an unknown kid caused a fetch less than UnknownKidFloor ago.
func (ks *keySet) fetchForUnknownKid() error {
	ks.mu.Lock()
	now := ks.clk.Now()
	if !ks.lastUnknown.IsZero() && now.Sub(ks.lastUnknown) < ks.o.UnknownKidFloor {
		ks.mu.Unlock()
		ks.stats.add(TriggerUnknownKid, ResultRateLimited)
		return errRateLimited
	}
	ks.lastUnknown = now
	ks.mu.Unlock()
	return ks.fetch(TriggerUnknownKid)
}

var errRateLimited = errors.New("oauth: unknown-kid refresh rate limited")

// refresh fetches now, joining a fetch already in flight.
func (ks *keySet) refresh(ctx context.Context, trigger string) error {
	ch := ks.sf.DoChan("fetch", func() (any, error) { return nil, ks.fetch(trigger) })
	select {
	case r := <-ch:
		return r.Err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// fetch loads the JWKS and, when it yields at least one usable key, replaces the cache. A
// failure keeps the cache as it is: known keys go on verifying while the endpoint is down.
func (ks *keySet) fetch(trigger string) error {
	ctx, cancel := context.WithTimeout(ks.ctx, fetchTimeout)
	defer cancel()
	keys, ttl, err := ks.load(ctx)
	ks.mu.Lock()
	if err != nil {
		ks.failures++
		ks.mu.Unlock()
		ks.stats.add(trigger, ResultError)
		ks.log.Warn("oauth: JWKS refresh failed; the cached keys stay in use", "trigger", trigger, "error", err)
		return err
	}
	ks.failures = 0
	ks.ttl = ttl
	ks.lastOK = ks.clk.Now()
	ks.keys.Store(&keys)
	ks.mu.Unlock()
	ks.stats.add(trigger, ResultOK)
	return nil
}

// load reads the JWKS from the file, the configured URL or the discovered one, and returns its
// usable keys and how long to keep them.
func (ks *keySet) load(ctx context.Context) (keyMap, time.Duration, error) {
	if ks.o.JWKSFile != "" {
		body, err := readFileLimited(ks.o.JWKSFile, maxJWKSBody)
		if err != nil {
			return nil, 0, fmt.Errorf("jwks_file: %w", err)
		}
		keys, err := ks.parseJWKS(body)
		if err != nil {
			return nil, 0, fmt.Errorf("jwks_file %s: %w", ks.o.JWKSFile, err)
		}
		return keys, ks.o.JWKSCacheTTL, nil
	}
	uri := ks.o.JWKSURL
	if uri == "" {
		var err error
		if uri, err = ks.discover(ctx); err != nil {
			return nil, 0, err
		}
	}
	body, hdr, err := get(ctx, ks.o.HTTPClient, uri, maxJWKSBody)
	if err == nil {
		var keys keyMap
		if keys, err = ks.parseJWKS(body); err == nil {
			return keys, ks.ttlFrom(hdr), nil
		}
	}
	if ks.o.JWKSURL == "" {
		ks.mu.Lock()
		ks.jwksURI = "" // discover again next time: the provider may have moved its keys
		ks.mu.Unlock()
	}
	return nil, 0, fmt.Errorf("JWKS %s: %w", uri, err)
}

// discover returns jwks_uri from the issuer's OIDC discovery document, cached once found.
func (ks *keySet) discover(ctx context.Context) (string, error) {
	ks.mu.Lock()
	uri := ks.jwksURI
	ks.mu.Unlock()
	if uri != "" {
		return uri, nil
	}
	where := strings.TrimRight(ks.o.Issuer, "/") + "/.well-known/openid-configuration"
	body, _, err := get(ctx, ks.o.HTTPClient, where, maxDiscoveryBody)
	if err != nil {
		return "", fmt.Errorf("discovery %s: %w", where, err)
	}
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return "", fmt.Errorf("discovery %s: not a JSON document: %w", where, err)
	}
	if doc.JWKSURI == "" {
		return "", fmt.Errorf("discovery %s: no jwks_uri", where)
	}
	if err := checkURL(doc.JWKSURI); err != nil {
		return "", fmt.Errorf("discovery %s: jwks_uri: %w", where, err)
	}
	if doc.Issuer != "" && strings.TrimRight(doc.Issuer, "/") != strings.TrimRight(ks.o.Issuer, "/") {
		// OIDC Discovery 4.3 wants them equal; multi-tenant providers (Azure AD's "common")
		// publish a template instead, so this is worth a line in the log, not a refusal: iss is
		// checked on every token anyway.
		ks.log.Warn("oauth: the discovery document names another issuer", "configured", ks.o.Issuer, "discovered", doc.Issuer)
	}
	ks.mu.Lock()
	ks.jwksURI = doc.JWKSURI
	ks.mu.Unlock()
	return doc.JWKSURI, nil
}

// ttlFrom returns the refresh interval: Cache-Control max-age when present, else the configured
// TTL, held within [MinJWKSRefresh, MaxJWKSRefresh] either way.
func (ks *keySet) ttlFrom(h http.Header) time.Duration {
	for _, v := range h.Values("Cache-Control") {
		for _, d := range strings.Split(v, ",") {
			d = strings.TrimSpace(d)
			name, val, ok := strings.Cut(d, "=")
			if !ok || !strings.EqualFold(strings.TrimSpace(name), "max-age") {
				continue
			}
			secs, err := strconv.ParseInt(strings.Trim(strings.TrimSpace(val), `"`), 10, 64)
			if err != nil || secs < 0 {
				continue
			}
			return clampRefresh(time.Duration(min(secs, int64(MaxJWKSRefresh/time.Second))) * time.Second)
		}
	}
	return ks.o.JWKSCacheTTL
}

// parseJWKS returns the usable signing keys of a JWKS document. A key that cannot be used is
// skipped with a log line rather than failing the set: one exotic key must not hide the others.
// Skipped: keys without kid, for encryption (use "enc"), symmetric keys (a JWKS is public, an
// "oct" key in it is no secret), private keys, RSA keys under 2048 bits. A set with no usable
// key is an error, so that it never replaces a working cache.
func (ks *keySet) parseJWKS(body []byte) (keyMap, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("not a JWKS document: %w", err)
	}
	if len(doc.Keys) > maxJWKSKeys {
		return nil, fmt.Errorf("%d keys, at most %d accepted", len(doc.Keys), maxJWKSKeys)
	}
	keys := keyMap{}
	skip := func(i int, kid, why string) {
		ks.log.Warn("oauth: JWKS key skipped", "index", i, "kid", kid, "reason", why)
	}
	for i, raw := range doc.Keys {
		var peek struct {
			Kid string `json:"kid"`
			Kty string `json:"kty"`
			Use string `json:"use"`
		}
		if err := json.Unmarshal(raw, &peek); err != nil {
			skip(i, "", "not a JSON object")
			continue
		}
		kid := peek.Kid
		switch {
		case kid == "":
			skip(i, kid, "no kid")
			continue
		case peek.Use != "" && peek.Use != "sig":
			skip(i, kid, "use is "+quoteField(peek.Use)+", not sig")
			continue
		case peek.Kty != "RSA" && peek.Kty != "EC" && peek.Kty != "OKP":
			skip(i, kid, "key type "+quoteField(peek.Kty)+" is not RSA, EC or OKP")
			continue
		}
		var jwk jose.JSONWebKey
		if err := jwk.UnmarshalJSON(raw); err != nil {
			skip(i, kid, err.Error())
			continue
		}
		if !jwk.Valid() || !jwk.IsPublic() {
			skip(i, kid, "not a valid public key")
			continue
		}
		k := verifyKey{kid: kid, alg: jwk.Algorithm, kty: peek.Kty, pub: jwk.Key}
		switch pk := jwk.Key.(type) {
		case *rsa.PublicKey:
			if pk.N.BitLen() < minRSABits {
				skip(i, kid, fmt.Sprintf("RSA key of %d bits, at least %d required", pk.N.BitLen(), minRSABits))
				continue
			}
		case *ecdsa.PublicKey, ed25519.PublicKey:
		default:
			skip(i, kid, fmt.Sprintf("unsupported key %T", jwk.Key))
			continue
		}
		keys[kid] = append(keys[kid], k)
	}
	if len(keys) == 0 {
		return nil, errors.New("no usable signing key")
	}
	return keys, nil
}

// get fetches uri with client, bounded by ctx (which carries the fetch timeout) and by limit
// bytes of body. It refuses a non-200 answer and a redirect to a URL that checkURL refuses.
func get(ctx context.Context, client *http.Client, uri string, limit int64) ([]byte, http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, uri, nil)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	if resp.Request != nil && resp.Request.URL != nil {
		if err := checkURL(resp.Request.URL.String()); err != nil {
			return nil, nil, fmt.Errorf("redirected: %w", err)
		}
	}
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		return nil, nil, fmt.Errorf("HTTP status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, nil, err
	}
	if int64(len(body)) > limit {
		return nil, nil, fmt.Errorf("response larger than %d bytes", limit)
	}
	return body, resp.Header, nil
}

func readFileLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, io.LimitReader(f, limit+1)); err != nil {
		return nil, err
	}
	if int64(buf.Len()) > limit {
		return nil, fmt.Errorf("larger than %d bytes", limit)
	}
	return buf.Bytes(), nil
}

// start fetches once, then arms the refresh loop. A failed first fetch is logged and retried by
// the loop: the broker starts while the identity provider is down, and tokens are refused (or
// their kid fetched on demand) until keys arrive.
func (ks *keySet) start(ctx context.Context) error {
	ks.mu.Lock()
	if ks.closed || ks.started {
		ks.mu.Unlock()
		return errors.New("oauth: Start called twice or after Close")
	}
	ks.started = true
	ks.mu.Unlock()
	_ = ks.refresh(ctx, TriggerStart)
	ks.schedule()
	return nil
}

// schedule arms the next periodic refresh: after the TTL when the last fetch succeeded, after
// a backoff (15 s doubling, at most 5 min and never more than the TTL) while fetches fail.
func (ks *keySet) schedule() {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if ks.closed {
		return
	}
	d := ks.ttl
	if ks.failures > 0 {
		d = min(15*time.Second<<min(ks.failures-1, 5), 5*time.Minute, ks.ttl)
	}
	ks.timer = ks.clk.AfterFunc(d, ks.tick)
}

func (ks *keySet) tick() {
	ks.mu.Lock()
	if ks.closed {
		ks.mu.Unlock()
		return
	}
	ks.ticks.Add(1)
	ks.mu.Unlock()
	defer ks.ticks.Done()
	_ = ks.refresh(ks.ctx, TriggerPeriodic)
	ks.schedule()
}

// close stops the loop, ends a fetch in flight and waits for the loop to return.
func (ks *keySet) close() {
	ks.mu.Lock()
	ks.closed = true
	if ks.timer != nil {
		ks.timer.Stop()
	}
	ks.mu.Unlock()
	ks.cancel()
	ks.ticks.Wait()
}

// quoteField quotes an untrusted header or claim value for a message, cut to 64 bytes so that
// a hostile token cannot fill a log line.
func quoteField(s string) string {
	const limit = 64
	if len(s) > limit {
		return strconv.Quote(s[:limit]) + "…"
	}
	return strconv.Quote(s)
}
