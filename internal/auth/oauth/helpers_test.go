package oauth_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/turnstilemq/turnstile/internal/auth"
	"github.com/turnstilemq/turnstile/internal/auth/oauth"
	"github.com/turnstilemq/turnstile/internal/auth/oauth/oauthtest"
	"github.com/turnstilemq/turnstile/internal/clock"
)

var epoch = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// quiet swallows the provider's warnings (refresh failures are the point of several tests).
var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// env is an identity provider and a verifier on one fake clock.
type env struct {
	idp *oauthtest.Server
	p   *oauth.Provider
	clk *clock.Fake
	ctx context.Context
}

// newEnv starts an identity provider and a provider for it (not started: see start). mutate
// adjusts the options first.
func newEnv(t *testing.T, mutate func(*oauth.Options), idpOpts ...oauthtest.Option) *env {
	t.Helper()
	clk := clock.NewFake(epoch)
	idp := oauthtest.New(t, append([]oauthtest.Option{oauthtest.WithClock(clk)}, idpOpts...)...)
	o := idp.Options()
	o.Clock = clk
	o.Logger = quiet
	if mutate != nil {
		mutate(&o)
	}
	p, err := oauth.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return &env{idp: idp, p: p, clk: clk, ctx: context.Background()}
}

// start runs Start and fails the test if no key arrived.
func (e *env) start(t *testing.T) {
	t.Helper()
	if err := e.p.Start(e.ctx); err != nil {
		t.Fatal(err)
	}
	if e.p.Stats().Keys == 0 {
		t.Fatal("no keys after Start")
	}
}

func (e *env) verify(tok string) (*auth.Identity, error) {
	return e.p.Verify(e.ctx, []byte(tok), "/", e.clk.Now())
}

// mustVerify verifies tok and fails the test on error.
func (e *env) mustVerify(t *testing.T, tok string) *auth.Identity {
	t.Helper()
	id, err := e.verify(tok)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return id
}

// wantRefused checks that err wraps want and says nothing of the token.
func wantRefused(t *testing.T, tok string, err, want error) {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted, want %v", want)
	}
	if !errors.Is(err, want) {
		t.Fatalf("error %q, want one wrapping %q", err, want)
	}
	noToken(t, err.Error(), tok)
}

// noToken fails when msg contains the token or any of its three parts.
func noToken(t *testing.T, msg, tok string) {
	t.Helper()
	if tok == "" {
		return
	}
	if strings.Contains(msg, tok) {
		t.Fatalf("message contains the token: %q", msg)
	}
	for _, part := range strings.Split(tok, ".") {
		if len(part) >= 8 && strings.Contains(msg, part) {
			t.Fatalf("message contains part of the token: %q", msg)
		}
	}
}

func ptr[T any](v T) *T { return &v }
