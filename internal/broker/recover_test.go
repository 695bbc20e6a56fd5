package broker

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"

	"github.com/turnstilemq/turnstile/internal/store"
)

// BenchmarkStartup100k measures broker start-up on a store holding 100,000 queued messages: 100
// offline persistent sessions with 1,000 queued 64-byte messages each.
func BenchmarkStartup100k(b *testing.B) {
	dir := b.TempDir()
	st, err := store.Open(dir, store.Options{Fsync: store.FsyncInterval, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	payload := make([]byte, 64)
	var id uint64
	for s := range 100 {
		cid := fmt.Sprintf("client-%d", s)
		st.PutSession(&store.SessionRecord{Vhost: DefaultVhost, ClientID: cid, Version: 5, ExpiryInterval: expiryNever,
			DisconnectedAt: 1, Subscriptions: []store.SubscriptionRecord{{Filter: "load/#", QoS: 1}}})
		for q := range 1000 {
			id++
			st.PutMessage(id, &store.MessageRecord{Topic: fmt.Sprintf("load/%d", q), Payload: payload, QoS: 1})
			st.PutQueueEntry(DefaultVhost, cid, &store.QueueEntry{Seq: uint64(q + 1), MsgID: id, QoS: 1})
		}
	}
	if err := st.Close(); err != nil {
		b.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	b.ResetTimer()
	for range b.N {
		st, err := store.Open(dir, store.Options{Logger: log})
		if err != nil {
			b.Fatal(err)
		}
		o := testOptions(b, "")
		o.Store = st
		srv, err := New(o)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if st := srv.Vhost(DefaultVhost).Stats(); st.Sessions != 100 {
			b.Fatalf("recovered %d sessions, want 100", st.Sessions)
		}
		srv.Close(context.Background())
		st.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/startup")
}
