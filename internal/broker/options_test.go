package broker

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/turnstilemq/turnstile/internal/auth"
	"github.com/turnstilemq/turnstile/internal/store"
)

// allowAll is the authenticator and authorizer of the in-package tests, which are about the
// engine, not about security: every login is the user "test", every action is allowed. The
// integration tests (package broker_test) run the real chain and permissions through package app.
type allowAll struct{}

func (allowAll) Authenticate(_ context.Context, c *auth.Credentials) (*auth.Identity, error) {
	return &auth.Identity{User: "test", Issuer: auth.IssuerLocal, Subject: "test-id", Vhost: c.Vhost, Method: "test"}, nil
}
func (allowAll) Admits(*auth.Identity) bool                        { return true }
func (allowAll) CanPublish(*auth.Identity, string, string) error   { return nil }
func (allowAll) CanSubscribe(*auth.Identity, string, string) error { return nil }
func (allowAll) ReceiveCovered(*auth.Identity, string) bool        { return true }
func (allowAll) CanReceive(*auth.Identity, string, string) error   { return nil }
func (allowAll) Generation() uint64                                { return 0 }

// testOptions are the options of an in-package test server with limits as configured by
// default, the vhost "/", and a store in dir ("" for none, closed when the test ends).
func testOptions(tb testing.TB, dir string) Options {
	tb.Helper()
	o := Options{
		Limits: Limits{MaxInflight: 65535, MaxPacket: 268435455, ReceiveMax: 1024, MaxQueued: 1000,
			MaxQueuedBytes: 16 << 20, MaxTopicAlias: 1024, RetainAvailable: true, AllowEmptyClientID: true},
		Vhosts:        []string{DefaultVhost},
		Authenticator: allowAll{},
		Authorizer:    allowAll{},
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if dir != "" {
		st, err := store.Open(dir, store.Options{Logger: o.Logger})
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { st.Close() })
		o.Store = st
	}
	return o
}

var pipeListener = Listener{Name: "pipe"}
