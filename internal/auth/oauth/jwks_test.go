package oauth_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/turnstilemq/turnstile/internal/auth/oauth"
	"github.com/turnstilemq/turnstile/internal/auth/oauth/oauthtest"
)

// Discovery at <issuer>/.well-known/openid-configuration finds jwks_uri; every generated key
// type verifies; the discovered URI is kept, not fetched again per refresh.
func TestDiscoveryAndEveryKeyType(t *testing.T) {
	e := newEnv(t, nil)
	e.start(t)
	if d, j := e.idp.DiscoveryFetches(), e.idp.JWKSFetches(); d != 1 || j != 1 {
		t.Fatalf("discovery %d, JWKS %d fetches after Start, want 1 and 1", d, j)
	}
	for _, k := range []*oauthtest.Key{e.idp.RSA(), e.idp.EC(), e.idp.Ed()} {
		id := e.mustVerify(t, e.idp.Token(nil, oauthtest.WithKey(k)))
		if id.Creds[0].KeyID != k.Kid {
			t.Errorf("%s: kid %q", k.Alg, id.Creds[0].KeyID)
		}
	}
	if err := e.p.Refresh(e.ctx); err != nil {
		t.Fatal(err)
	}
	if d, j := e.idp.DiscoveryFetches(), e.idp.JWKSFetches(); d != 1 || j != 2 {
		t.Fatalf("discovery %d, JWKS %d fetches after Refresh, want 1 and 2", d, j)
	}
	st := e.p.Stats()
	if st.Refresh(oauth.TriggerStart, oauth.ResultOK) != 1 || st.Refresh(oauth.TriggerManual, oauth.ResultOK) != 1 || st.Keys != 3 {
		t.Fatalf("stats %+v", st)
	}
}

// The issuer may end in "/" (Auth0): discovery and the iss check ignore it.
func TestIssuerTrailingSlash(t *testing.T) {
	e := newEnv(t, func(o *oauth.Options) { o.Issuer += "/" })
	e.start(t)
	e.mustVerify(t, e.idp.Token(nil))
	e.mustVerify(t, e.idp.Token(map[string]any{"iss": e.idp.Issuer() + "/"}))
}

// D29: 500 concurrent verifications with a new kid cost exactly one JWKS fetch, and all succeed
// once the key is published.
func TestD29ConcurrentNewKidOneFetch(t *testing.T) {
	e := newEnv(t, nil)
	e.start(t)
	before := e.idp.JWKSFetches()
	k := oauthtest.NewKey(t, "ES256", "new-kid")
	e.idp.AddKey(k)
	tok := e.idp.Token(nil, oauthtest.WithKey(k))

	release := e.idp.Hold() // the fetch waits, so that every verification overlaps it
	const n = 500
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { _, errs[i] = e.verify(tok) })
	}
	waitFor(t, "500 unknown-kid lookups and one fetch held", func() bool {
		return e.p.Stats().UnknownKid == n && e.idp.JWKSFetches() == before+1
	})
	release()
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("verification %d: %v", i, err)
		}
	}
	if got := e.idp.JWKSFetches() - before; got != 1 {
		t.Fatalf("%d JWKS fetches for one new kid, want 1", got)
	}
	if st := e.p.Stats(); st.Refresh(oauth.TriggerUnknownKid, oauth.ResultOK) != 1 {
		t.Fatalf("stats %+v", st)
	}
	// Known now: no more lookups.
	e.mustVerify(t, tok)
	if st := e.p.Stats(); st.UnknownKid != n {
		t.Fatalf("unknown kid counted %d, want %d", st.UnknownKid, n)
	}
}

// D30: tokens with random kids cause at most one fetch per UnknownKidFloor (30 s).
func TestD30RandomKidsOneFetchPerFloor(t *testing.T) {
	e := newEnv(t, nil)
	e.start(t)
	stranger := oauthtest.NewKey(t, "ES256", "unpublished")
	burst := func(n int) {
		t.Helper()
		for i := range n {
			tok := e.idp.Token(nil, oauthtest.WithKey(stranger), oauthtest.WithKid(fmt.Sprintf("random-%d-%d", e.clk.Now().Unix(), i)))
			_, err := e.verify(tok)
			wantRefused(t, tok, err, oauth.ErrUnknownKeyID)
		}
	}
	fetches := func() int64 { return e.idp.JWKSFetches() }
	base := fetches()
	burst(50)
	if got := fetches() - base; got != 1 {
		t.Fatalf("first burst: %d fetches, want 1", got)
	}
	e.clk.Advance(29 * time.Second)
	burst(50)
	if got := fetches() - base; got != 1 {
		t.Fatalf("29 s later: %d fetches, want still 1", got)
	}
	e.clk.Advance(time.Second)
	burst(50)
	if got := fetches() - base; got != 2 {
		t.Fatalf("30 s later: %d fetches, want 2", got)
	}
	st := e.p.Stats()
	if st.UnknownKid != 150 || st.Refresh(oauth.TriggerUnknownKid, oauth.ResultOK) != 2 || st.Refresh(oauth.TriggerUnknownKid, oauth.ResultRateLimited) != 148 {
		t.Fatalf("stats %+v", st)
	}
	// The known keys were never disturbed.
	e.mustVerify(t, e.idp.Token(nil))
}

// D31: with the JWKS endpoint down, cached keys keep verifying: through failed periodic
// refreshes, failed unknown-kid refreshes and an explicit Refresh. A JWKS that comes back empty
// does not empty the cache either.
func TestD31EndpointDownCachedKeysKeepVerifying(t *testing.T) {
	e := newEnv(t, func(o *oauth.Options) { o.JWKSCacheTTL = time.Minute })
	e.start(t)
	tok := e.idp.Token(map[string]any{"exp": epoch.Add(24 * time.Hour)})
	e.idp.Down()
	for i := range 5 {
		e.clk.Advance(5 * time.Minute) // past the TTL and any backoff: a periodic refresh runs
		e.clk.Wait()
		e.mustVerify(t, tok)
		if n := e.p.Stats().Refresh(oauth.TriggerPeriodic, oauth.ResultError); n != uint64(i+1) {
			t.Fatalf("round %d: %d failed periodic refreshes", i, n)
		}
	}
	if err := e.p.Refresh(e.ctx); err == nil {
		t.Fatal("Refresh succeeded while the endpoint is down")
	}
	_, err := e.verify(e.idp.Token(nil, oauthtest.WithKid("other")))
	wantRefused(t, "", err, oauth.ErrUnknownKeyID)
	e.mustVerify(t, tok)

	e.idp.Up()
	e.idp.SetKeys() // an empty set is a failure too: it never replaces a working cache
	if err := e.p.Refresh(e.ctx); err == nil {
		t.Fatal("an empty JWKS was accepted")
	}
	e.mustVerify(t, tok)
	if e.p.Stats().Keys != 3 {
		t.Fatalf("cache holds %d kids", e.p.Stats().Keys)
	}

	// Back up with keys: the loop recovers by itself.
	e.idp.SetKeys(e.idp.RSA())
	e.clk.Advance(5 * time.Minute)
	e.clk.Wait()
	if st := e.p.Stats(); st.Refresh(oauth.TriggerPeriodic, oauth.ResultOK) == 0 || st.Keys != 1 {
		t.Fatalf("after recovery: %+v", st)
	}
	e.mustVerify(t, tok)
}

// The loop refreshes once per TTL; Cache-Control max-age overrides it within bounds.
func TestPeriodicRefreshAndMaxAge(t *testing.T) {
	e := newEnv(t, func(o *oauth.Options) { o.JWKSCacheTTL = 10 * time.Minute })
	e.start(t)
	if ttl := e.p.Stats().RefreshTTL; ttl != 10*time.Minute {
		t.Fatalf("TTL %s", ttl)
	}
	base := e.idp.JWKSFetches()
	e.clk.Advance(10*time.Minute - time.Second)
	e.clk.Wait()
	if got := e.idp.JWKSFetches(); got != base {
		t.Fatalf("fetched before the TTL")
	}
	for _, tt := range []struct {
		maxAge int
		want   time.Duration
	}{
		{120, 2 * time.Minute},
		{5, oauth.MinJWKSRefresh},
		{10 << 20, oauth.MaxJWKSRefresh},
		{-1, 10 * time.Minute}, // no header: the configured TTL
	} {
		e.idp.SetMaxAge(tt.maxAge)
		e.clk.Advance(e.p.Stats().RefreshTTL)
		e.clk.Wait()
		if ttl := e.p.Stats().RefreshTTL; ttl != tt.want {
			t.Fatalf("max-age %d: TTL %s, want %s", tt.maxAge, ttl, tt.want)
		}
	}
	if got := e.idp.JWKSFetches() - base; got != 4 {
		t.Fatalf("%d periodic fetches, want 4", got)
	}
	// Close stops the loop.
	e.p.Close()
	before := e.idp.JWKSFetches()
	e.clk.Advance(48 * time.Hour)
	e.clk.Wait()
	if e.idp.JWKSFetches() != before {
		t.Fatal("the loop fetched after Close")
	}
	if err := e.p.Start(e.ctx); err == nil {
		t.Fatal("Start after Close succeeded")
	}
}

// Rotation: the provider replaces its keys; after the next refresh the new kid verifies and
// the dropped kid is unknown to new verifications.
func TestRotation(t *testing.T) {
	e := newEnv(t, nil)
	e.start(t)
	old := e.idp.Token(nil)
	nk := e.idp.Rotate("RS256", "rsa-2")
	e.mustVerify(t, old) // cached until the next refresh
	e.mustVerify(t, e.idp.Token(nil, oauthtest.WithKey(nk)))
	_, err := e.verify(old) // that unknown-kid fetch dropped rsa-1
	wantRefused(t, old, err, oauth.ErrUnknownKeyID)
}

// Without Start, the first token fetches the keys (as an unknown kid).
func TestLazyFirstFetch(t *testing.T) {
	e := newEnv(t, nil)
	e.mustVerify(t, e.idp.Token(nil))
	if e.idp.JWKSFetches() != 1 || e.p.Stats().Refresh(oauth.TriggerUnknownKid, oauth.ResultOK) != 1 {
		t.Fatalf("stats %+v", e.p.Stats())
	}
}

// jwks_url replaces discovery; jwks_file replaces HTTP.
func TestJWKSURLAndFile(t *testing.T) {
	e := newEnv(t, nil)
	o := e.idp.Options()
	o.JWKSURL = e.idp.JWKSURL()
	o.Clock = e.clk
	o.Logger = quiet
	p, err := oauth.New(o)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Verify(context.Background(), []byte(e.idp.Token(nil)), "/", e.clk.Now()); err != nil {
		t.Fatal(err)
	}
	if e.idp.DiscoveryFetches() != 0 || e.idp.JWKSFetches() != 1 {
		t.Fatalf("jwks_url: discovery %d, JWKS %d", e.idp.DiscoveryFetches(), e.idp.JWKSFetches())
	}

	set := jose.JSONWebKeySet{}
	for _, k := range e.idp.Keys() {
		set.Keys = append(set.Keys, k.JWK())
	}
	b, _ := json.Marshal(set)
	path := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	o = e.idp.Options()
	o.JWKSFile = path
	o.Clock = e.clk
	o.Logger = quiet
	e.idp.Down() // no HTTP at all
	pf, err := oauth.New(o)
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	if err := pf.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := pf.Verify(context.Background(), []byte(e.idp.Token(nil, oauthtest.WithKey(e.idp.Ed()))), "/", e.clk.Now()); err != nil {
		t.Fatal(err)
	}

	// A file that is not a JWKS leaves the cache as it was.
	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := pf.Refresh(context.Background()); err == nil {
		t.Fatal("a broken file was accepted")
	}
	if pf.Stats().Keys != 3 {
		t.Fatal("a broken file emptied the cache")
	}
}

// Keys that cannot verify are skipped, not fatal to the set: encryption keys, symmetric keys,
// RSA under 2048 bits, keys without kid.
func TestJWKSSkipsUnusableKeys(t *testing.T) {
	e := newEnv(t, nil)
	good := e.idp.RSA().JWK()
	enc := e.idp.EC().JWK()
	enc.Use = "enc"
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	doc := map[string]any{"keys": []any{
		good, enc,
		map[string]any{"kty": "oct", "kid": "sym", "k": "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"},
		jose.JSONWebKey{Key: &small.PublicKey, KeyID: "small", Use: "sig"},
		map[string]any{"kty": "EC", "crv": "P-256", "x": "zz", "y": "zz"},
		"not an object",
	}}
	b, _ := json.Marshal(doc)
	path := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	o := e.idp.Options()
	o.JWKSFile = path
	o.Clock = e.clk
	o.Logger = quiet
	p, err := oauth.New(o)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := p.Stats().Keys; n != 1 {
		t.Fatalf("%d usable kids, want 1 (rsa-1)", n)
	}
	_, err = p.Verify(context.Background(), []byte(e.idp.Token(nil, oauthtest.WithKey(e.idp.EC()))), "/", e.clk.Now())
	if !errors.Is(err, oauth.ErrUnknownKeyID) {
		t.Fatalf("an encryption key verified: %v", err)
	}
}

// A caller that gives up while the fetch is held gets its context's error; the fetch goes on
// for the others.
func TestLookupHonoursContext(t *testing.T) {
	e := newEnv(t, nil)
	release := e.idp.Hold()
	defer release()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := e.p.Verify(ctx, []byte(e.idp.Token(nil)), "/", e.clk.Now())
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v", err)
	}
	release()
	waitFor(t, "the held fetch to complete", func() bool { return e.p.Stats().Keys == 3 })
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// The whole path over https: discovery, JWKS and verification with the test server's
// certificate trusted by the client the options carry.
func TestHTTPS(t *testing.T) {
	e := newEnv(t, nil, oauthtest.WithTLS())
	if !strings.HasPrefix(e.idp.Issuer(), "https://") {
		t.Fatalf("issuer %s", e.idp.Issuer())
	}
	e.start(t)
	e.mustVerify(t, e.idp.Token(nil, oauthtest.WithHeader("typ", "at+jwt")))
}

// An identity provider that is down at start does not stop Start: the loop retries with
// backoff (15 s, then 30 s, …) and the keys arrive once it is back.
func TestStartWhileDown(t *testing.T) {
	e := newEnv(t, nil)
	e.idp.Down()
	if err := e.p.Start(e.ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
	if st := e.p.Stats(); st.Keys != 0 || st.Refresh(oauth.TriggerStart, oauth.ResultError) != 1 {
		t.Fatalf("stats %+v", st)
	}
	e.clk.Advance(15 * time.Second)
	e.clk.Wait()
	if n := e.p.Stats().Refresh(oauth.TriggerPeriodic, oauth.ResultError); n != 1 {
		t.Fatalf("%d retries after 15 s, want 1", n)
	}
	e.idp.Up()
	e.clk.Advance(29 * time.Second)
	e.clk.Wait()
	if e.p.Stats().Keys != 0 {
		t.Fatal("retried before the backoff elapsed")
	}
	e.clk.Advance(time.Second)
	e.clk.Wait()
	if st := e.p.Stats(); st.Keys != 3 || st.RefreshTTL != oauth.DefaultJWKSCacheTTL {
		t.Fatalf("after recovery: %+v", st)
	}
	e.mustVerify(t, e.idp.Token(nil))
}
