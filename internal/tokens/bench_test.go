package tokens

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/turnstilemq/turnstile/internal/auth"
)

func quietEnv(b *testing.B) *env {
	e := newEnv(b, func(o *Options) {
		o.ApplyRate, o.QueryRate = -1, -1
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	})
	return e
}

// BenchmarkApplyTokenCore: issuing and signing, without HTTP.
func BenchmarkApplyTokenCore(b *testing.B) {
	e := quietEnv(b)
	res := []string{"devices/dev1/#", "devices/+/status"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.s.ApplyToken(e.akid, "mqtt-1", res, TypeRW, t0.Add(time.Hour)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkApplyTokenHTTP: a signed RPC request through the handler (signature check, nonce,
// rate, issue, JSON).
func BenchmarkApplyTokenHTTP(b *testing.B) {
	e := quietEnv(b)
	h := Handler(e.s)
	b.ReportAllocs()
	for b.Loop() {
		p := e.rpcParams(b, "POST", "ApplyToken", e.secret, map[string]string{"InstanceId": "mqtt-1",
			"Resources": "devices/dev1/#", "Actions": "R,W", "ExpireTime": "1772373600000"})
		req := httptest.NewRequest("POST", "/", strings.NewReader(p.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatal(w.Body.String())
		}
	}
}

// BenchmarkTokenLogin: the provider's work for a CONNECT with an R and a W token.
func BenchmarkTokenLogin(b *testing.B) {
	e := quietEnv(b)
	r := e.apply(b, TypeR, time.Hour, "devices/dev1/#")
	w := e.apply(b, TypeW, time.Hour, "devices/dev1/telemetry")
	p := e.s.Provider()
	c := &auth.Credentials{Username: "Token|" + e.akid + "|mqtt-1", Password: []byte("R|" + r.Token + "|W|" + w.Token), ClientID: "c"}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if d, _, err := p.Authenticate(ctx, c); d != auth.Allow {
			b.Fatal(err)
		}
	}
}
