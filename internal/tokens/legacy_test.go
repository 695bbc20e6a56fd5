package tokens

import (
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/turnstilemq/turnstile/pkg/tokensign"
)

type legacyReply struct {
	Status    int
	Success   bool   `json:"success"`
	Message   string `json:"message"`
	Code      int    `json:"code"`
	TokenData string `json:"tokenData"`
}

// legacySigned builds a legacy request as Alibaba's samples do: sign the fields, then add
// proxyType, accessKey and signature.
func (e *env) legacySigned(fields map[string]string, secret string) url.Values {
	p := url.Values{}
	for k, v := range fields {
		p.Set(k, v)
	}
	sig := tokensign.LegacyRequestSignature(p, secret)
	p.Set("proxyType", "MQTT")
	p.Set("accessKey", e.akid)
	p.Set("signature", sig)
	return p
}

func legacyDo(t *testing.T, e *env, path string, p url.Values) legacyReply {
	t.Helper()
	r := do(t, Handler(e.s), "POST", path, p)
	out := legacyReply{Status: r.Status}
	if v, ok := r.raw["success"].(bool); ok {
		out.Success = v
	}
	if v, ok := r.raw["message"].(string); ok {
		out.Message = v
	}
	out.Code = r.legacyCode
	if v, ok := r.raw["tokenData"].(string); ok {
		out.TokenData = v
	}
	return out
}

func TestLegacyAPI(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Legacy = true })
	applyFields := func(ttl time.Duration) map[string]string {
		return map[string]string{"resources": "a/+/c,b/#", "actions": "R", "serviceName": "mq",
			"expireTime": strconv.FormatInt(e.clk.Now().Add(ttl).UnixMilli(), 10), "instanceId": "mqtt-1"}
	}
	r := legacyDo(t, e, "/token/apply", e.legacySigned(applyFields(time.Hour), e.secret))
	if r.Status != 200 || !r.Success || r.Code != LegacyOK || r.TokenData == "" {
		t.Fatalf("apply: %+v", r)
	}
	tok := r.TokenData
	if _, err := e.s.Verify(tok, e.akid, "mqtt-1", TypeR, t0); err != nil {
		t.Fatal(err)
	}
	if r := legacyDo(t, e, "/token/query", e.legacySigned(map[string]string{"token": tok}, e.secret)); !r.Success || r.Code != LegacyOK {
		t.Fatalf("query: %+v", r)
	}
	if r := legacyDo(t, e, "/token/revoke", e.legacySigned(map[string]string{"token": tok}, e.secret)); !r.Success || r.Code != LegacyOK {
		t.Fatalf("revoke: %+v", r)
	}
	if r := legacyDo(t, e, "/token/query", e.legacySigned(map[string]string{"token": tok}, e.secret)); r.Success || r.Code != LegacyRevoked {
		t.Fatalf("query revoked: %+v", r)
	}
	if r := legacyDo(t, e, "/token/query", e.legacySigned(map[string]string{"token": "garbage"}, e.secret)); r.Success || r.Code != LegacyForged {
		t.Fatalf("query forged: %+v", r)
	}
	tok2 := legacyDo(t, e, "/token/apply", e.legacySigned(applyFields(2*time.Minute), e.secret)).TokenData
	e.clk.Advance(3 * time.Minute)
	if r := legacyDo(t, e, "/token/query", e.legacySigned(map[string]string{"token": tok2}, e.secret)); r.Success || r.Code != LegacyExpired {
		t.Fatalf("query expired: %+v", r)
	}
	if r := legacyDo(t, e, "/token/revoke", e.legacySigned(map[string]string{"token": "garbage"}, e.secret)); r.Success || r.Code != LegacyForged {
		t.Fatalf("revoke forged: %+v", r)
	}

	// Signature errors: 407.
	if r := legacyDo(t, e, "/token/apply", e.legacySigned(applyFields(time.Hour), "wrong")); r.Success || r.Code != LegacySignatureError {
		t.Fatalf("wrong secret: %+v", r)
	}
	p := e.legacySigned(applyFields(time.Hour), e.secret)
	p.Set("resources", "#")
	if r := legacyDo(t, e, "/token/apply", p); r.Code != LegacySignatureError {
		t.Fatalf("changed field: %+v", r)
	}
	// Parameter errors: 400.
	bad := applyFields(time.Hour)
	bad["actions"] = "RW"
	if r := legacyDo(t, e, "/token/apply", e.legacySigned(bad, e.secret)); r.Code != LegacyParamError {
		t.Fatalf("actions RW: %+v", r)
	}
	bad = applyFields(30 * time.Second)
	if r := legacyDo(t, e, "/token/apply", e.legacySigned(bad, e.secret)); r.Code != LegacyParamError {
		t.Fatalf("expireTime too soon: %+v", r)
	}
	delete(bad, "instanceId")
	if r := legacyDo(t, e, "/token/apply", e.legacySigned(bad, e.secret)); r.Code != LegacyParamError {
		t.Fatalf("missing instanceId: %+v", r)
	}
	// Generation failed: 409.
	other := applyFields(time.Hour)
	other["instanceId"] = "mqtt-2"
	if r := legacyDo(t, e, "/token/apply", e.legacySigned(other, e.secret)); r.Code != LegacyApplyFailed {
		t.Fatalf("other instance: %+v", r)
	}
	// The cap is said in the message.
	if r := legacyDo(t, e, "/token/apply", e.legacySigned(applyFields(45*24*time.Hour), e.secret)); !r.Success || r.Message == "success" {
		t.Fatalf("capped: %+v", r)
	}
}
