package store

import (
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

func quietOptions(mode Fsync) Options {
	return Options{Fsync: mode, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

// BenchmarkGroupCommit: parallel writers, each PutQueueEntry waits for its ticket to be durable
// (as a QoS 1 PUBACK does). Reports writes/s and commits/s.
func BenchmarkGroupCommit(b *testing.B) {
	for _, mode := range []Fsync{FsyncAlways, FsyncInterval} {
		for _, par := range []int{1, 16} {
			b.Run(fmt.Sprintf("%s/goroutines=%dxGOMAXPROCS", mode, par), func(b *testing.B) {
				s, err := Open(b.TempDir(), quietOptions(mode))
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				var client atomic.Int64
				c0 := s.Commits()
				start := time.Now()
				b.SetParallelism(par)
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					cid := fmt.Sprintf("c%d", client.Add(1))
					done := make(chan struct{}, 1)
					notify := func() { done <- struct{}{} }
					e := QueueEntry{MsgID: 1, QoS: 1, SubIDs: []uint32{1}}
					for pb.Next() {
						e.Seq++
						e.MsgID++
						s.Notify(s.PutQueueEntry("v", cid, &e), notify)
						<-done
					}
				})
				b.StopTimer()
				el := time.Since(start).Seconds()
				commits := s.Commits() - c0
				b.ReportMetric(float64(b.N)/el, "writes/s")
				b.ReportMetric(float64(commits)/el, "commits/s")
				b.ReportMetric(float64(b.N)/float64(max(commits, 1)), "writes/commit")
			})
		}
	}
}

// BenchmarkRecovery100k: 100k messages and their queue entries (1,000 persistent sessions ×
// 100, 256-byte payloads) are written and the store closed; each iteration recovers a fresh
// copy of that directory: Open + LoadSessions + LoadQueue of every session. Reports
// ms/recovery (ms/open of it is pebble's Open with WAL replay), and separately ms to
// LoadMessage all 100k (what a broker does as it delivers).
func BenchmarkRecovery100k(b *testing.B) {
	const sessions, perSession = 1000, 100
	src := b.TempDir()
	s, err := Open(src, quietOptions(FsyncInterval))
	if err != nil {
		b.Fatal(err)
	}
	payload := make([]byte, 256)
	id := uint64(0)
	for c := range sessions {
		cid := fmt.Sprintf("client-%04d", c)
		s.PutSession(&SessionRecord{Vhost: "default", ClientID: cid, Version: 5, ExpiryInterval: 3600,
			Subscriptions: []SubscriptionRecord{{Filter: "sensors/+/temp", QoS: 1}, {Filter: "alerts/#", QoS: 2}}})
		for q := range perSession {
			id++
			s.PutMessage(id, &MessageRecord{Topic: fmt.Sprintf("sensors/%d/temp", q), Payload: payload, QoS: 1})
			s.PutQueueEntry("default", cid, &QueueEntry{Seq: uint64(q + 1), MsgID: id, QoS: 1, SubIDs: []uint32{7}})
		}
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	var openMS, recoverMS, msgMS float64
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		dir := filepath.Join(b.TempDir(), fmt.Sprint(i))
		copyDirB(b, src, dir)
		b.StartTimer()
		t0 := time.Now()
		s, err := Open(dir, quietOptions(FsyncAlways))
		if err != nil {
			b.Fatal(err)
		}
		openMS += float64(time.Since(t0).Microseconds()) / 1000
		var ids []string
		if err := s.LoadSessions(func(r *SessionRecord) error { ids = append(ids, r.ClientID); return nil }); err != nil {
			b.Fatal(err)
		}
		entries := 0
		var msgIDs []uint64
		for _, cid := range ids {
			if err := s.LoadQueue("default", cid, 0, 0, func(e *QueueEntry) error {
				entries++
				msgIDs = append(msgIDs, e.MsgID)
				return nil
			}); err != nil {
				b.Fatal(err)
			}
		}
		recoverMS += float64(time.Since(t0).Microseconds()) / 1000
		if len(ids) != sessions || entries != sessions*perSession {
			b.Fatalf("recovered %d sessions, %d entries", len(ids), entries)
		}
		t1 := time.Now()
		for _, id := range msgIDs {
			if _, err := s.LoadMessage(id); err != nil {
				b.Fatal(err)
			}
		}
		msgMS += float64(time.Since(t1).Microseconds()) / 1000
		b.StopTimer()
		_ = s.Close()
		b.StartTimer()
	}
	b.ReportMetric(openMS/float64(b.N), "ms/open")
	b.ReportMetric(recoverMS/float64(b.N), "ms/recovery")
	b.ReportMetric(msgMS/float64(b.N), "ms/load-100k-messages")
}

// BenchmarkSubscriptions100k: one persistent session subscribes to 100,000 filters, one
// PutSubscription each, each waited for until durable (as a SUBACK waits, fsync=always); then
// the store is reopened and LoadSessions returns them all. Reports the time per subscription,
// the WAL bytes written per subscription and the reopen + load time. (Before subscriptions had
// records of their own, each SUBSCRIBE rewrote the whole session: 20,000 took 43 s and wrote
// 6.8 GB.)
func BenchmarkSubscriptions100k(b *testing.B) {
	const n = 100_000
	for b.Loop() {
		dir := b.TempDir()
		s, err := Open(dir, quietOptions(FsyncAlways))
		if err != nil {
			b.Fatal(err)
		}
		wait(b, s, s.PutSession(&SessionRecord{Vhost: "default", ClientID: "c1", Version: 5, ExpiryInterval: 3600}))
		w0 := s.WALBytesWritten()
		start := time.Now()
		for i := range n {
			wait(b, s, s.PutSubscription("default", "c1", &SubscriptionRecord{Filter: fmt.Sprintf("sensors/%06d/+/temperature", i), QoS: 1}))
		}
		took := time.Since(start)
		wal := s.WALBytesWritten() - w0
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
		start = time.Now()
		s, err = Open(dir, quietOptions(FsyncAlways))
		if err != nil {
			b.Fatal(err)
		}
		var got int
		if err := s.LoadSessions(func(r *SessionRecord) error { got += len(r.Subscriptions); return nil }); err != nil {
			b.Fatal(err)
		}
		reload := time.Since(start)
		s.Close()
		if got != n {
			b.Fatalf("reloaded %d subscriptions, want %d", got, n)
		}
		b.ReportMetric(float64(took.Microseconds())/n, "µs/subscribe")
		b.ReportMetric(float64(wal)/n, "WAL-bytes/subscribe")
		b.ReportMetric(float64(wal)/1e6, "WAL-MB")
		b.ReportMetric(took.Seconds(), "s/100k")
		b.ReportMetric(float64(reload.Milliseconds()), "ms/reopen+load")
	}
}
