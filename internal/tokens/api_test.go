package tokens

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/turnstilemq/turnstile/pkg/tokensign"
)

var nonceSeq atomic.Int64

// rpcParams returns the signed parameters of an RPC request made at the env's clock.
func (e *env) rpcParams(t testing.TB, method, action, secret string, extra map[string]string) url.Values {
	t.Helper()
	p := url.Values{}
	p.Set("Action", action)
	p.Set("Version", APIVersion)
	p.Set("Format", "JSON")
	p.Set("AccessKeyId", e.akid)
	p.Set("SignatureMethod", tokensign.HMACSHA1)
	p.Set("SignatureVersion", "1.0")
	p.Set("SignatureNonce", "n-"+strconv.FormatInt(nonceSeq.Add(1), 10))
	p.Set("Timestamp", e.clk.Now().UTC().Format(tokensign.TimestampLayout))
	for k, v := range extra {
		p.Set(k, v)
	}
	sig, err := tokensign.RPCSignature(method, p, secret)
	if err != nil {
		sig = "unsignable" // an unknown SignatureMethod, on purpose
	}
	p.Set("Signature", sig)
	return p
}

type rpcReply struct {
	Status      int
	RequestID   string `json:"RequestId"`
	Token       string
	ExpireTime  int64
	TokenStatus *bool
	Code        string
	Message     string
	raw         map[string]any
	legacyCode  int
}

func do(t *testing.T, h http.Handler, method, path string, p url.Values) rpcReply {
	t.Helper()
	var req *http.Request
	if method == http.MethodGet {
		req = httptest.NewRequest(method, path+"?"+p.Encode(), nil)
	} else {
		req = httptest.NewRequest(method, path, strings.NewReader(p.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	r := rpcReply{Status: w.Code}
	body, _ := io.ReadAll(w.Body)
	if err := json.Unmarshal(body, &r.raw); err != nil {
		t.Fatalf("%s %s: body %q is not JSON", method, path, body)
	}
	if strings.HasPrefix(path, "/token/") {
		var l struct {
			Code int `json:"code"`
		}
		json.Unmarshal(body, &l)
		r.legacyCode = l.Code
		return r // the legacy form's code is a number; legacyDo reads raw
	}
	json.Unmarshal(body, &r)
	if w.Header().Get("Content-Type") != "application/json; charset=utf-8" {
		t.Fatalf("Content-Type %q", w.Header().Get("Content-Type"))
	}
	return r
}

func (e *env) applyParams(t *testing.T, method string, ttl time.Duration) url.Values {
	return e.rpcParams(t, method, "ApplyToken", e.secret, map[string]string{
		"InstanceId": "mqtt-1", "Resources": "b/#,a/+/c", "Actions": "R,W",
		"ExpireTime": strconv.FormatInt(e.clk.Now().Add(ttl).UnixMilli(), 10)})
}

func TestRPCApplyQueryRevoke(t *testing.T) {
	e := newEnv(t)
	h := Handler(e.s)
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		r := do(t, h, method, "/", e.applyParams(t, method, time.Hour))
		if r.Status != 200 || r.Token == "" || r.RequestID == "" || r.ExpireTime != t0.Add(time.Hour).UnixMilli() || r.Code != "" {
			t.Fatalf("%s ApplyToken: %+v", method, r)
		}
		tk, err := e.s.Verify(r.Token, e.akid, "mqtt-1", TypeRW, t0)
		if err != nil || strings.Join(tk.Resources, ",") != "a/+/c,b/#" {
			t.Fatalf("issued token: %v %v", tk, err)
		}
		q := do(t, h, method, "/", e.rpcParams(t, method, "QueryToken", e.secret, map[string]string{"InstanceId": "mqtt-1", "Token": r.Token}))
		if q.Status != 200 || q.TokenStatus == nil || !*q.TokenStatus {
			t.Fatalf("QueryToken: %+v", q)
		}
		v := do(t, h, method, "/", e.rpcParams(t, method, "RevokeToken", e.secret, map[string]string{"InstanceId": "mqtt-1", "Token": r.Token}))
		if v.Status != 200 || v.RequestID == "" || len(v.raw) != 1 {
			t.Fatalf("RevokeToken: %+v", v)
		}
		q = do(t, h, method, "/", e.rpcParams(t, method, "QueryToken", e.secret, map[string]string{"InstanceId": "mqtt-1", "Token": r.Token}))
		if q.TokenStatus == nil || *q.TokenStatus {
			t.Fatalf("QueryToken after revoke: %+v", q)
		}
	}
	// HMAC-SHA256.
	p := e.applyParams(t, http.MethodGet, time.Hour)
	p.Set("SignatureMethod", tokensign.HMACSHA256)
	sig, _ := tokensign.RPCSignature(http.MethodGet, p, e.secret)
	p.Set("Signature", sig)
	if r := do(t, h, http.MethodGet, "/", p); r.Status != 200 || r.Token == "" {
		t.Fatalf("HMAC-SHA256: %+v", r)
	}
	// Query of garbage is "false", not an error.
	q := do(t, h, http.MethodGet, "/", e.rpcParams(t, "GET", "QueryToken", e.secret, map[string]string{"InstanceId": "mqtt-1", "Token": "x.y.z"}))
	if q.Status != 200 || q.TokenStatus == nil || *q.TokenStatus {
		t.Fatalf("QueryToken garbage: %+v", q)
	}
}

func TestRPCCapNote(t *testing.T) {
	e := newEnv(t)
	r := do(t, Handler(e.s), "GET", "/", e.applyParams(t, "GET", 40*24*time.Hour))
	if r.Status != 200 || !strings.Contains(r.Message, "capped") || r.ExpireTime != t0.Add(30*24*time.Hour).UnixMilli() {
		t.Fatalf("capped apply: %+v", r)
	}
}

// The request signature: tampering, stale timestamps, replays and wrong secrets are refused
// (tokens.md §3).
func TestRPCSignatureChecks(t *testing.T) {
	e := newEnv(t)
	h := Handler(e.s)
	check := func(name string, p url.Values, status int, code string) {
		t.Helper()
		r := do(t, h, "GET", "/", p)
		if r.Status != status || r.Code != code || r.RequestID == "" || r.Message == "" || r.Token != "" {
			t.Errorf("%s: %d %s %q, want %d %s", name, r.Status, r.Code, r.Message, status, code)
		}
	}
	p := e.applyParams(t, "GET", time.Hour)
	p.Set("Resources", "#")
	check("changed parameter", p, 400, CodeSignature)
	p = e.applyParams(t, "GET", time.Hour)
	p.Set("Extra", "x")
	check("added parameter", p, 400, CodeSignature)
	p = e.applyParams(t, "POST", time.Hour)
	check("signed for POST, sent as GET", p, 400, CodeSignature)
	check("wrong secret", e.rpcParams(t, "GET", "QueryToken", "wrong", map[string]string{"InstanceId": "mqtt-1", "Token": "t"}), 400, CodeSignature)
	p = e.applyParams(t, "GET", time.Hour)
	p.Set("AccessKeyId", "TKNOPE")
	check("unknown AccessKey", p, 404, CodeAccessKeyNotFound)

	// Timestamp window: ±5 min.
	stale := e.applyParams(t, "GET", time.Hour)
	e.clk.Advance(5*time.Minute + time.Second)
	check("stale timestamp", stale, 400, CodeTimestampExpired)
	future := e.applyParams(t, "GET", time.Hour)
	e.clk.Set(e.clk.Now()) // no-op; the clock never goes back, so sign ahead instead
	fp := future
	fp.Set("Timestamp", e.clk.Now().Add(6*time.Minute).UTC().Format(tokensign.TimestampLayout))
	sig, _ := tokensign.RPCSignature("GET", fp, e.secret)
	fp.Set("Signature", sig)
	check("future timestamp", fp, 400, CodeTimestampExpired)
	edge := e.applyParams(t, "GET", time.Hour)
	edge.Set("Timestamp", e.clk.Now().Add(-5*time.Minute).UTC().Format(tokensign.TimestampLayout))
	sig, _ = tokensign.RPCSignature("GET", edge, e.secret)
	edge.Set("Signature", sig)
	if r := do(t, h, "GET", "/", edge); r.Status != 200 {
		t.Fatalf("timestamp exactly 5 min old: %+v", r)
	}
	bad := e.applyParams(t, "GET", time.Hour)
	bad.Set("Timestamp", "2026-03-01 12:00:00")
	sig, _ = tokensign.RPCSignature("GET", bad, e.secret)
	bad.Set("Signature", sig)
	check("timestamp format", bad, 400, CodeTimestampFormat)

	// Nonce replay: the same signed request twice.
	p = e.applyParams(t, "GET", time.Hour)
	if r := do(t, h, "GET", "/", p); r.Status != 200 {
		t.Fatalf("first: %+v", r)
	}
	check("replay", p, 400, CodeNonceUsed)
	e.clk.Advance(4 * time.Minute)
	check("replay within the window", p, 400, CodeNonceUsed)
	e.clk.Advance(2 * time.Minute)
	check("replay after the window", p, 400, CodeTimestampExpired)
	// The same nonce with a fresh timestamp is refused while remembered.
	p.Set("Timestamp", e.clk.Now().UTC().Format(tokensign.TimestampLayout))
	sig, _ = tokensign.RPCSignature("GET", p, e.secret)
	p.Set("Signature", sig)
	check("nonce reused with a new timestamp", p, 400, CodeNonceUsed)
}

func TestRPCParameterChecks(t *testing.T) {
	e := newEnv(t)
	h := Handler(e.s)
	apply := func(extra map[string]string) url.Values {
		m := map[string]string{"InstanceId": "mqtt-1", "Resources": "a", "Actions": "R",
			"ExpireTime": strconv.FormatInt(t0.Add(time.Hour).UnixMilli(), 10)}
		for k, v := range extra {
			m[k] = v
		}
		return e.rpcParams(t, "GET", "ApplyToken", e.secret, m)
	}
	var many []string
	for i := range 101 {
		many = append(many, fmt.Sprintf("t/%d", i))
	}
	for name, c := range map[string]struct {
		p      url.Values
		status int
		code   string
	}{
		"Actions RW":              {apply(map[string]string{"Actions": "RW"}), 400, CodeParameter},
		"Actions W,R":             {apply(map[string]string{"Actions": "W,R"}), 400, CodeParameter},
		"101 resources":           {apply(map[string]string{"Resources": strings.Join(many, ",")}), 400, CodeParameter},
		"invalid filter":          {apply(map[string]string{"Resources": "a,b/#/c"}), 400, CodeParameter},
		"empty filter":            {apply(map[string]string{"Resources": "a,,b"}), 400, CodeParameter},
		"ExpireTime in seconds":   {apply(map[string]string{"ExpireTime": strconv.FormatInt(t0.Add(time.Hour).Unix(), 10)}), 400, CodeParameter},
		"ExpireTime not a number": {apply(map[string]string{"ExpireTime": "soon"}), 400, CodeParameter},
		"other instance":          {apply(map[string]string{"InstanceId": "mqtt-2"}), 403, CodeInstancePermission},
		"missing InstanceId":      {apply(map[string]string{"InstanceId": ""}), 400, CodeParameter},
		"wrong Version":           {apply(map[string]string{"Version": "2014-05-26"}), 400, CodeParameter},
		"unknown Action":          {apply(map[string]string{"Action": "DeleteInstance"}), 400, CodeAction},
		"XML":                     {apply(map[string]string{"Format": "XML"}), 400, CodeParameter},
		"SignatureMethod MD5":     {apply(map[string]string{"SignatureMethod": "HMAC-MD5"}), 400, CodeParameter},
		"SignatureVersion 2":      {apply(map[string]string{"SignatureVersion": "2.0"}), 400, CodeParameter},
		"long nonce":              {apply(map[string]string{"SignatureNonce": strings.Repeat("n", 200)}), 400, CodeParameter},
	} {
		r := do(t, h, "GET", "/", c.p)
		if r.Status != c.status || r.Code != c.code {
			t.Errorf("%s: %d %s %q, want %d %s", name, r.Status, r.Code, r.Message, c.status, c.code)
		}
	}
	// Owner without access: PermissionCheckFailed.
	e.owners.revokeAccess("alice", "mqtt-1")
	if r := do(t, h, "GET", "/", apply(nil)); r.Status != 400 || r.Code != CodePermission {
		t.Errorf("owner without access: %+v", r)
	}
	e.owners.del("alice")
	if r := do(t, h, "GET", "/", apply(nil)); r.Status != 403 || r.Code != CodeAccessKeyInactive {
		t.Errorf("owner deleted: %+v", r)
	}
}

func TestRPCTransportChecks(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.MaxBodyBytes = 1024 })
	h := Handler(e.s)
	p := e.applyParams(t, "POST", time.Hour)
	p.Set("Padding", strings.Repeat("p", 2000))
	if r := do(t, h, "POST", "/", p); r.Status != 413 {
		t.Errorf("large body: %+v", r)
	}
	if r := do(t, h, "GET", "/", p); r.Status != 414 {
		t.Errorf("large query: %+v", r)
	}
	p = e.applyParams(t, "GET", time.Hour)
	req := httptest.NewRequest("GET", "/?"+p.Encode()+"&Actions=W", nil)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != 400 || !strings.Contains(w.Body.String(), "more than once") {
		t.Errorf("duplicate parameter: %d %s", w.Code, w.Body)
	}
	req = httptest.NewRequest("PUT", "/", nil)
	w = httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != 405 || w.Header().Get("Allow") == "" {
		t.Errorf("PUT: %d", w.Code)
	}
	req = httptest.NewRequest("POST", "/", strings.NewReader("{}"))
	req.Header.Set("Content-Type", "application/json")
	w = httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != 415 {
		t.Errorf("JSON body: %d", w.Code)
	}
	// The legacy paths are off by default.
	if r := do(t, h, "GET", "/token/apply", url.Values{}); r.Status != 404 {
		t.Errorf("legacy off: %+v", r)
	}
}

// Alibaba's figures: 100/s ApplyToken and QueryToken, 5/s RevokeToken per AccessKey.
func TestRPCRateLimits(t *testing.T) {
	e := newEnv(t)
	h := Handler(e.s)
	for i := range 100 {
		if r := do(t, h, "GET", "/", e.rpcParams(t, "GET", "QueryToken", e.secret, map[string]string{"InstanceId": "mqtt-1", "Token": "x"})); r.Status != 200 {
			t.Fatalf("query %d: %+v", i, r)
		}
	}
	if r := do(t, h, "GET", "/", e.rpcParams(t, "GET", "QueryToken", e.secret, map[string]string{"InstanceId": "mqtt-1", "Token": "x"})); r.Status != 429 || r.Code != CodeThrottling {
		t.Fatalf("101st query: %+v", r)
	}
	// Apply has its own bucket.
	if r := do(t, h, "GET", "/", e.applyParams(t, "GET", time.Hour)); r.Status != 200 {
		t.Fatalf("apply after 100 queries: %+v", r)
	}
	tok := do(t, h, "GET", "/", e.applyParams(t, "GET", time.Hour)).Token
	for i := range 5 {
		if r := do(t, h, "GET", "/", e.rpcParams(t, "GET", "RevokeToken", e.secret, map[string]string{"InstanceId": "mqtt-1", "Token": tok})); r.Status != 200 {
			t.Fatalf("revoke %d: %+v", i, r)
		}
	}
	if r := do(t, h, "GET", "/", e.rpcParams(t, "GET", "RevokeToken", e.secret, map[string]string{"InstanceId": "mqtt-1", "Token": tok})); r.Status != 429 {
		t.Fatalf("6th revoke: %+v", r)
	}
	// Another AccessKey has its own buckets.
	ak2, sec2, _ := e.s.CreateAccessKey("alice", "mqtt-1")
	e2 := *e
	e2.akid = ak2
	if r := do(t, h, "GET", "/", e2.rpcParams(t, "GET", "RevokeToken", sec2, map[string]string{"InstanceId": "mqtt-1", "Token": tok})); r.Status != 200 {
		t.Fatalf("revoke with another key: %+v", r)
	}
	e.clk.Advance(200 * time.Millisecond) // one revoke's worth
	if r := do(t, h, "GET", "/", e.rpcParams(t, "GET", "RevokeToken", e.secret, map[string]string{"InstanceId": "mqtt-1", "Token": tok})); r.Status != 200 {
		t.Fatalf("revoke after refill: %+v", r)
	}
}

func TestNonceTableBounded(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.MaxNoncesPerKey = 3; o.QueryRate = -1 })
	h := Handler(e.s)
	q := func() rpcReply {
		return do(t, h, "GET", "/", e.rpcParams(t, "GET", "QueryToken", e.secret, map[string]string{"InstanceId": "mqtt-1", "Token": "x"}))
	}
	for range 3 {
		if r := q(); r.Status != 200 {
			t.Fatalf("%+v", r)
		}
	}
	if r := q(); r.Status != 429 {
		t.Fatalf("full nonce table: %+v", r)
	}
	e.clk.Advance(10*time.Minute + time.Second) // twice the window: the nonces are forgotten
	if r := q(); r.Status != 200 {
		t.Fatalf("after the window: %+v", r)
	}
	if n := e.s.guard.nonces; n != 1 {
		t.Fatalf("guard holds %d nonces, want 1", n)
	}
	e.s.DeleteAccessKey(e.akid)
	if n := e.s.guard.nonces; n != 0 {
		t.Fatalf("deleted key's nonces kept: %d", n)
	}
}

func TestNonceTableGlobalBound(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.MaxNonces = 2; o.QueryRate = -1 })
	h := Handler(e.s)
	ak2, sec2, _ := e.s.CreateAccessKey("alice", "mqtt-1")
	e2 := *e
	e2.akid = ak2
	for _, x := range []struct {
		e      *env
		secret string
	}{{e, e.secret}, {&e2, sec2}} {
		if r := do(t, h, "GET", "/", x.e.rpcParams(t, "GET", "QueryToken", x.secret, map[string]string{"InstanceId": "mqtt-1", "Token": "x"})); r.Status != 200 {
			t.Fatalf("%+v", r)
		}
	}
	if r := do(t, h, "GET", "/", e.rpcParams(t, "GET", "QueryToken", e.secret, map[string]string{"InstanceId": "mqtt-1", "Token": "x"})); r.Status != 429 {
		t.Fatalf("global bound: %+v", r)
	}
}
