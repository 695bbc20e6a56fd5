package audit

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/turnstilemq/turnstile/internal/auth"
	"github.com/turnstilemq/turnstile/internal/event"
	"github.com/turnstilemq/turnstile/internal/logbuf"
)

func TestJSONLinesWithoutSecrets(t *testing.T) {
	var w logbuf.Buffer
	l := New(&w, 0)
	at := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	id := &auth.Identity{User: "alice", Subject: "u-1", Issuer: auth.IssuerLocal, Method: "oauth",
		Creds: []auth.CredentialRef{{Kind: "jwt", ID: "jti-9", KeyID: "k1", Hash: [32]byte{1}}}}
	l.Observe(event.Event{Kind: event.LoginFailed, Time: at, Listener: "tcp", Remote: "10.0.0.1:5", User: "mallory",
		Code: 0x86, Reason: event.ReasonBadCredentials})
	l.Observe(event.Event{Kind: event.WillSuppressed, Time: at, Vhost: "/", ClientID: "c1", Identity: id,
		Reason: event.WillRevoked, Topic: "status/c1", EarnedAt: at.Add(-time.Second)})
	l.Close()
	lines := strings.Split(strings.TrimSpace(w.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines, want 2:\n%s", len(lines), w.String())
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(lines[1]), &got); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{"event": "will_suppressed", "user": "alice", "sub": "u-1", "jti": "jti-9",
		"kid": "k1", "reason": "revoked", "earned_at": "2026-12-03T09:59:59Z"} {
		if got[k] != want {
			t.Errorf("%s = %v, want %v", k, got[k], want)
		}
	}
	if strings.Contains(w.String(), "Hash") || strings.Contains(w.String(), "password") {
		t.Fatalf("the audit log carries credential material:\n%s", w.String())
	}
}

// blockingWriter holds every write until released.
type blockingWriter struct{ release chan struct{} }

func (w blockingWriter) Write(p []byte) (int, error) { <-w.release; return len(p), nil }

func TestFullQueueDropsAndCounts(t *testing.T) {
	w := blockingWriter{release: make(chan struct{})}
	l := New(w, 2)
	for range 10 {
		l.Observe(event.Event{Kind: event.Connected}) // never blocks, whatever the writer does
	}
	if d := l.Dropped(); d < 7 {
		t.Fatalf("dropped %d, want at least 7 of 10 with a queue of 2 and a stuck writer", d)
	}
	close(w.release)
	l.Close()
}
