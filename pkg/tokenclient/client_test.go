package tokenclient_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"go/build"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/turnstilemq/turnstile/internal/clock"
	"github.com/turnstilemq/turnstile/internal/tokens"
	"github.com/turnstilemq/turnstile/pkg/tokenclient"
	"github.com/turnstilemq/turnstile/pkg/tokensign"
)

type owners struct{}

func (owners) UserID(name string) (string, bool) { return "id-" + name, name == "app" }
func (owners) HasAccess(user, vhost string) bool { return user == "app" && vhost == "iot" }

type rig struct {
	svc    *tokens.Service
	clk    *clock.Fake
	srv    *httptest.Server
	down   atomic.Bool // the service answers 503
	cfg    tokenclient.Config
	applys atomic.Int64
}

func newRig(t *testing.T) *rig {
	t.Helper()
	r := &rig{clk: clock.NewFake(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))}
	key := make([]byte, 32)
	rand.Read(key)
	svc, err := tokens.New(tokens.Options{Clock: r.clk, MasterKey: key, Owners: owners{},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	r.svc = svc
	h := tokens.Handler(svc)
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if r.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		body, _ := io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(body))
		if strings.Contains(string(body)+req.URL.RawQuery, "Action=ApplyToken") {
			r.applys.Add(1)
		}
		h.ServeHTTP(w, req)
	}))
	t.Cleanup(r.srv.Close)
	id, secret, err := svc.CreateAccessKey("app", "iot")
	if err != nil {
		t.Fatal(err)
	}
	r.cfg = tokenclient.Config{Endpoint: r.srv.URL, AccessKeyID: id, AccessKeySecret: secret, InstanceID: "iot",
		Now: r.clk.Now, HTTPClient: r.srv.Client()}
	return r
}

func (r *rig) client(t *testing.T, tweak func(*tokenclient.Config)) *tokenclient.Client {
	t.Helper()
	cfg := r.cfg
	if tweak != nil {
		tweak(&cfg)
	}
	c, err := tokenclient.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestClientActions(t *testing.T) {
	r := newRig(t)
	for _, tweak := range []func(*tokenclient.Config){
		nil,
		func(c *tokenclient.Config) { c.UseGET = true },
		func(c *tokenclient.Config) { c.SignatureMethod = tokensign.HMACSHA256 },
	} {
		c := r.client(t, tweak)
		ctx := context.Background()
		tok, err := c.ApplyToken(ctx, []string{"b/#", "a/+"}, tokenclient.ActionsRW, r.clk.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if tok.Type() != "RW" || strings.Join(tok.Resources, ",") != "a/+,b/#" || !tok.ExpireAt.Equal(r.clk.Now().Add(time.Hour)) {
			t.Fatalf("token %+v", tok)
		}
		if _, err := r.svc.Verify(tok.Token, r.cfg.AccessKeyID, "iot", "RW", r.clk.Now()); err != nil {
			t.Fatalf("the service refuses its own token: %v", err)
		}
		if ok, err := c.QueryToken(ctx, tok.Token); !ok || err != nil {
			t.Fatalf("query: %v %v", ok, err)
		}
		if err := c.RevokeToken(ctx, tok.Token); err != nil {
			t.Fatal(err)
		}
		if ok, err := c.QueryToken(ctx, tok.Token); ok || err != nil {
			t.Fatalf("query after revoke: %v %v", ok, err)
		}
	}
	// A refusal comes back as an *APIError with the service's code.
	c := r.client(t, nil)
	_, err := c.ApplyToken(context.Background(), []string{"a/#/b"}, "R", r.clk.Now().Add(time.Hour))
	var ae *tokenclient.APIError
	if !asAPIError(err, &ae) || ae.Code != "ParameterCheckFailed" || ae.Status != 400 || ae.RequestID == "" || tokenclient.Unreachable(err) {
		t.Fatalf("refusal: %v", err)
	}
	bad := r.client(t, func(c *tokenclient.Config) { c.AccessKeySecret = "wrong" })
	if _, err := bad.QueryToken(context.Background(), "x"); !asAPIError(err, &ae) || ae.Code != "SignatureDoesNotMatch" {
		t.Fatalf("wrong secret: %v", err)
	}
	capped, err := c.ApplyToken(context.Background(), []string{"a"}, "W", r.clk.Now().Add(40*24*time.Hour))
	if err != nil || !strings.Contains(capped.Note, "capped") || !capped.ExpireAt.Equal(r.clk.Now().Add(30*24*time.Hour)) {
		t.Fatalf("capped: %+v %v", capped, err)
	}
	if tokenclient.Password(tokenclient.Token{Token: "r", Actions: "R"}, tokenclient.Token{Token: "w", Actions: "R,W"}) != "R|r|RW|w" ||
		tokenclient.Username("AK", "iot") != "Token|AK|iot" {
		t.Fatal("CONNECT helpers")
	}
}

func asAPIError(err error, target **tokenclient.APIError) bool {
	e, ok := err.(*tokenclient.APIError)
	if ok {
		*target = e
	}
	return ok
}

func TestClientCacheRefreshAndFallback(t *testing.T) {
	r := newRig(t)
	path := filepath.Join(t.TempDir(), "cache.json")
	c := r.client(t, func(c *tokenclient.Config) {
		c.CacheFile = path
		c.Lifetime = time.Hour
		c.RefreshBefore = 10 * time.Minute
	})
	ctx := context.Background()
	t1, fromCache, err := c.Get(ctx, []string{"b", "a"}, "R")
	if err != nil || fromCache || r.applys.Load() != 1 {
		t.Fatalf("first Get: %v %v %d", fromCache, err, r.applys.Load())
	}
	// The same permission set, in any order, is served from the cache.
	t2, fromCache, err := c.Get(ctx, []string{"a", "b", "a"}, "R")
	if err != nil || !fromCache || t2.Token != t1.Token || r.applys.Load() != 1 {
		t.Fatalf("second Get: %v %v", fromCache, err)
	}
	// Another permission set is another entry.
	if t3, _, _ := c.Get(ctx, []string{"a", "b"}, "W"); t3.Token == t1.Token || r.applys.Load() != 2 {
		t.Fatal("W shares R's token")
	}
	// The file: mode 0600, JSON, both entries.
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("cache file: %v %v", st, err)
	}
	var f struct {
		Version int
		Tokens  map[string]json.RawMessage
	}
	b, _ := os.ReadFile(path)
	if json.Unmarshal(b, &f) != nil || f.Version != 1 || len(f.Tokens) != 2 {
		t.Fatalf("cache file content: %s", b)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".tokencache-*")); len(leftovers) != 0 {
		t.Fatalf("temporary files left: %v", leftovers)
	}
	// Within the refresh lead, Get applies for a new token.
	r.clk.Advance(51 * time.Minute)
	t4, fromCache, err := c.Get(ctx, []string{"a", "b"}, "R")
	if err != nil || fromCache || t4.Token == t1.Token || r.applys.Load() != 3 {
		t.Fatalf("refresh: %v %v", fromCache, err)
	}
	// A restarted application server finds the cache.
	c2 := r.client(t, func(c *tokenclient.Config) { c.CacheFile = path })
	if cached, ok := c2.Cached([]string{"b", "a"}, "R"); !ok || cached.Token != t4.Token {
		t.Fatal("cache not reloaded")
	}
	// The service down: the cached token still valid is handed out, even within the lead.
	r.down.Store(true)
	r.clk.Advance(55 * time.Minute)
	t5, fromCache, err := c2.Get(ctx, []string{"a", "b"}, "R")
	if err != nil || !fromCache || t5.Token != t4.Token {
		t.Fatalf("fallback: %v %v", fromCache, err)
	}
	// Nothing valid cached: the error.
	if _, _, err := c2.Get(ctx, []string{"z"}, "R"); err == nil || !tokenclient.Unreachable(err) {
		t.Fatalf("down, nothing cached: %v", err)
	}
	r.clk.Advance(10 * time.Minute) // past t4's expiry
	if _, _, err := c2.Get(ctx, []string{"a", "b"}, "R"); err == nil {
		t.Fatal("an expired cached token was handed out")
	}
	// Unreachable (connection refused) counts too.
	r.down.Store(false)
	r.srv.Close()
	if _, _, err := c2.Get(ctx, []string{"a"}, "R"); err == nil || !tokenclient.Unreachable(err) {
		t.Fatalf("closed server: %v", err)
	}
}

func TestClientRevokeDropsCacheAndRefreshDue(t *testing.T) {
	r := newRig(t)
	c := r.client(t, func(c *tokenclient.Config) { c.Lifetime = time.Hour; c.RefreshBefore = 5 * time.Minute })
	ctx := context.Background()
	t1, _, _ := c.Get(ctx, []string{"a"}, "R")
	if err := c.RevokeToken(ctx, t1.Token); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Cached([]string{"a"}, "R"); ok {
		t.Fatal("revoked token still cached")
	}
	t2, fromCache, _ := c.Get(ctx, []string{"a"}, "R")
	if fromCache || t2.Token == t1.Token {
		t.Fatal("Get served a revoked token")
	}
	r.clk.Advance(56 * time.Minute)
	if err := c.RefreshDue(ctx); err != nil {
		t.Fatal(err)
	}
	t3, ok := c.Cached([]string{"a"}, "R")
	if !ok || t3.Token == t2.Token || !t3.ExpireAt.After(r.clk.Now().Add(50*time.Minute)) {
		t.Fatal("RefreshDue did not refresh")
	}
}

func TestClientConfigAndBound(t *testing.T) {
	for _, cfg := range []tokenclient.Config{
		{},
		{Endpoint: "ftp://x", AccessKeyID: "a", AccessKeySecret: "s", InstanceID: "i"},
		{Endpoint: "http://x", AccessKeyID: "a", AccessKeySecret: "s", InstanceID: "i", SignatureMethod: "HMAC-MD5"},
	} {
		if _, err := tokenclient.New(cfg); err == nil {
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
	r := newRig(t)
	c := r.client(t, func(c *tokenclient.Config) { c.MaxEntries = 2 })
	ctx := context.Background()
	for i, res := range []string{"a", "b", "c"} {
		r.clk.Advance(time.Second)
		if _, _, err := c.Get(ctx, []string{res}, "R"); err != nil {
			t.Fatal(i, err)
		}
	}
	if _, ok := c.Cached([]string{"a"}, "R"); ok {
		t.Fatal("the oldest entry was not evicted")
	}
	if _, ok := c.Cached([]string{"c"}, "R"); !ok {
		t.Fatal("the newest entry was evicted")
	}
}

// The package is importable by other modules: nothing under internal/.
func TestNoInternalImports(t *testing.T) {
	for _, dir := range []string{".", "../tokensign"} {
		pkg, err := build.ImportDir(dir, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range pkg.Imports {
			if strings.Contains(imp, "/internal/") || strings.HasPrefix(imp, "internal/") {
				t.Errorf("%s imports %s", pkg.ImportPath, imp)
			}
		}
	}
}
