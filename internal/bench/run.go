package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/turnstilemq/turnstile/internal/fdtable"
)

// pingTimeout bounds the liveness check of each held connection at the end of conn.
const pingTimeout = 5 * time.Second

// Run runs one bench. Progress lines (connecting, holding, draining) go to progress, which may be
// nil. It returns an error when the run could not start (bad configuration, a connection refused
// while setting up); failures during the run are counted in the Result instead. When ctx ends
// early, the run stops and the Result covers what was done, with Interrupted set.
func Run(ctx context.Context, cfg Config, progress io.Writer) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if progress == nil {
		progress = io.Discard
	}
	// The table of descriptors grown once, before the clock starts: a growth during a burst
	// stops the generator for an RCU grace period (package fdtable).
	fdtable.Grow(cfg.connections() + 64)
	var id [4]byte
	rand.Read(id[:])
	d, err := newDialer(&cfg, newClock(), hex.EncodeToString(id[:]))
	if err != nil {
		return nil, err
	}
	r := &Result{Scenario: cfg.Scenario, Clients: cfg.Clients, Publishers: cfg.publishers(),
		Subscribers: cfg.subscribers(), QoS: cfg.QoS, Size: cfg.Size, Version: cfg.Version, Rate: cfg.Rate,
		Offered: cfg.Rate * float64(cfg.publishers())}
	if cfg.Scenario == Conn {
		return r, runConn(ctx, &cfg, d, progress, r)
	}
	return r, runTraffic(ctx, &cfg, d, progress, r)
}

func (d *dialer) clientID(role string, i int) string {
	return fmt.Sprintf("tsb-%s-%s%d", d.runID, role, i)
}

// Parallel calls f(0..n-1) from at most workers goroutines. With abort, the first error stops
// the calls not yet started and is returned.
func Parallel(ctx context.Context, n, workers int, abort bool, f func(i int) error) error {
	var (
		next  atomic.Int64
		once  sync.Once
		first error
		wg    sync.WaitGroup
	)
	for range min(n, workers) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := f(i); err != nil && abort {
					once.Do(func() { first = err })
					next.Store(int64(n))
					return
				}
			}
		})
	}
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return first
}

// errs collects the errors of a run: a count and the first one.
type errs struct {
	n     int
	first error
}

func (e *errs) add(err error) {
	if err == nil {
		return
	}
	if e.n == 0 {
		e.first = err
	}
	e.n++
}

func (e *errs) into(r *Result) {
	r.Errors = e.n
	if e.first != nil {
		r.FirstError = e.first.Error()
	}
}

func runConn(ctx context.Context, cfg *Config, d *dialer, progress io.Writer, r *Result) error {
	var (
		conns  []*conn
		mu     sync.Mutex
		failed errs
	)
	defer func() {
		Parallel(context.Background(), len(conns), 256, false, func(i int) error {
			if conns[i] != nil {
				conns[i].close()
			}
			return nil
		})
	}()
	fail := func(i int, err error) {
		mu.Lock()
		failed.add(fmt.Errorf("connection %d: %w", i, err))
		mu.Unlock()
	}
	fmt.Fprintf(progress, "connecting %d clients, %d at a time\n", cfg.Clients, cfg.Concurrency)
	start := time.Now()
	total := new(Histogram)
	conns, connected, raw := d.rawConnect(ctx, cfg.Clients, cfg.Concurrency, func(took time.Duration) {
		mu.Lock()
		total.Record(took)
		mu.Unlock()
	}, fail)
	if !raw {
		conns = d.dialAll(ctx, cfg.Clients, cfg.Concurrency, total, fail)
		connected = time.Now()
	}
	elapsed := connected.Sub(start)
	r.Connects = int(total.Count())
	r.ConnectFailures = failed.n
	r.ConnectRate = float64(r.Connects) / elapsed.Seconds()
	r.Latency = summarise("connack", total)
	fmt.Fprintf(progress, "holding %d connections for %v\n", r.Connects, cfg.Duration)

	hold := time.NewTimer(cfg.Duration)
	select {
	case <-hold.C:
	case <-ctx.Done():
		hold.Stop()
		r.Interrupted = true
	}
	r.Seconds = time.Since(start.Add(elapsed)).Seconds()
	var alive atomic.Int64
	Parallel(context.Background(), len(conns), cfg.Concurrency, false, func(i int) error {
		if conns[i] == nil {
			return nil
		}
		if err := conns[i].ping(pingTimeout); err != nil {
			mu.Lock()
			failed.add(fmt.Errorf("connection %d lost while held: %w", i, err))
			mu.Unlock()
			return nil
		}
		alive.Add(1)
		return nil
	})
	r.Alive = int(alive.Load())
	failed.into(r)
	return nil
}

// dialAll opens n connections with connect, concurrency at a time, and records each one's
// CONNECT→CONNACK time into total; failed gets the connections that did not open.
func (d *dialer) dialAll(ctx context.Context, n, concurrency int, total *Histogram, failed func(i int, err error)) []*conn {
	conns := make([]*conn, n)
	// A histogram per worker slot: the connection workers share nothing while connecting.
	hists := make([]*Histogram, min(n, concurrency))
	idx := make(chan int, len(hists))
	for i := range hists {
		hists[i] = new(Histogram)
		idx <- i
	}
	Parallel(ctx, n, concurrency, false, func(i int) error {
		h := <-idx
		defer func() { idx <- h }()
		t0 := time.Now()
		c, err := d.connect(ctx, i, d.clientID("c", i), idleReadBuffer)
		if err != nil {
			failed(i, err)
			return nil
		}
		hists[h].Record(time.Since(t0))
		conns[i] = c
		return nil
	})
	for _, h := range hists {
		total.Merge(h)
	}
	return conns
}

func runTraffic(ctx context.Context, cfg *Config, d *dialer, progress io.Writer, r *Result) error {
	clk := d.clk
	npub, nsub := cfg.publishers(), cfg.subscribers()
	subs := make([]*subscriber, nsub)
	pubs := make([]*publisher, npub)
	var (
		closing atomic.Bool
		readers sync.WaitGroup
	)
	closeAll := func() {
		closing.Store(true)
		Parallel(context.Background(), nsub+npub, 64, false, func(i int) error {
			if i < nsub {
				if subs[i] != nil {
					subs[i].c.close()
				}
			} else if p := pubs[i-nsub]; p != nil {
				p.c.close()
			}
			return nil
		})
		readers.Wait()
	}
	defer func() {
		if !closing.Load() {
			closeAll()
		}
	}()

	fmt.Fprintf(progress, "connecting %d subscribers and %d publishers\n", nsub, npub)
	offline := cfg.Scenario == Offline
	persistent := cfg.Persistent || offline
	err := Parallel(ctx, nsub, cfg.Concurrency, true, func(i int) error {
		c, err := d.connectSession(ctx, i, d.clientID("s", i), subReadBuffer, persistent)
		if err != nil {
			return fmt.Errorf("subscriber %d: %w", i, err)
		}
		s := newSubscriber(c, npub)
		subs[i] = s
		if err := c.subscribe(cfg.subFilter(i), cfg.QoS); err != nil {
			return fmt.Errorf("subscriber %d: %w", i, err)
		}
		if offline { // the session stays; its queue fills while the subscriber is away
			c.close()
		}
		return nil
	})
	if err == nil {
		err = Parallel(ctx, npub, cfg.Concurrency, true, func(i int) error {
			c, err := d.connect(ctx, i, d.clientID("p", i), pubReadBuffer)
			if err != nil {
				return fmt.Errorf("publisher %d: %w", i, err)
			}
			p, err := newPublisher(c, clk, cfg, i)
			if err != nil {
				c.close()
				return fmt.Errorf("publisher %d: %w", i, err)
			}
			pubs[i] = p
			return nil
		})
	}
	if err != nil {
		return err
	}
	if !offline {
		for _, s := range subs {
			readers.Go(func() { s.run(&closing) })
		}
	}
	for _, p := range pubs {
		readers.Go(func() { p.read(&closing) })
	}

	// Publish (or, for sub, listen) for the duration.
	stop := make(chan struct{})
	var writers sync.WaitGroup
	start := time.Now()
	end := start.Add(cfg.Duration)
	for _, p := range pubs {
		writers.Go(func() { p.write(start, end, stop, &closing) })
	}
	written := make(chan struct{})
	go func() { writers.Wait(); close(written) }()
	fmt.Fprintf(progress, "running %s for %v\n", cfg.Scenario, cfg.Duration)
	until := time.NewTimer(cfg.Duration)
	defer until.Stop()
	if npub > 0 {
		// Writers end by themselves at end; one blocked in a write to a stalled broker is
		// given the drain time and then cut off by closing the connections.
		until.Reset(cfg.Duration + cfg.Drain + time.Second)
	}
	select {
	case <-written:
		if npub == 0 {
			<-until.C
		}
	case <-until.C:
	case <-ctx.Done():
		r.Interrupted = true
	}
	close(stop)
	window := time.Since(start)
	if npub > 0 {
		window = min(window, cfg.Duration)
	}
	r.Seconds = window.Seconds()

	// Drain: wait for the deliveries and acknowledgements still on their way.
	receivers := int64(cfg.receiversPerMessage())
	var sent int64
	for _, p := range pubs {
		sent += p.sent.Load()
	}
	expected := sent * receivers
	settled := func() bool {
		var got int64
		for _, s := range subs {
			got += s.received.Load()
		}
		if got < expected {
			return false
		}
		for _, p := range pubs {
			if p.inflight.Load() > 0 {
				return false
			}
		}
		return true
	}
	if offline && !r.Interrupted {
		// The subscribers come back to their sessions; the drain is timed from here.
		<-written
		fmt.Fprintf(progress, "reconnecting %d subscribers to drain their queues\n", nsub)
		drainStart := time.Now()
		err := Parallel(ctx, nsub, cfg.Concurrency, true, func(i int) error {
			c, err := d.connectSession(ctx, i, d.clientID("s", i), subReadBuffer, true)
			if err != nil {
				return fmt.Errorf("subscriber %d reconnecting: %w", i, err)
			}
			subs[i] = newSubscriber(c, npub)
			return nil
		})
		if err != nil {
			return err
		}
		for _, s := range subs {
			readers.Go(func() { s.run(&closing) })
		}
		deadline := drainStart.Add(cfg.Drain)
		for !settled() && time.Now().Before(deadline) && ctx.Err() == nil {
			time.Sleep(time.Millisecond)
		}
		r.DrainSeconds = time.Since(drainStart).Seconds()
	} else if npub > 0 && !r.Interrupted && !settled() {
		fmt.Fprintf(progress, "draining for up to %v\n", cfg.Drain)
		drainStart := time.Now()
		deadline := drainStart.Add(cfg.Drain)
		for !settled() && time.Now().Before(deadline) && ctx.Err() == nil {
			time.Sleep(time.Millisecond)
		}
		r.DrainSeconds = time.Since(drainStart).Seconds()
	}
	closeAll()
	<-written

	// Account.
	var e errs
	lat, ack := new(Histogram), new(Histogram)
	for _, p := range pubs {
		r.Sent += p.sent.Load()
		r.Skipped += p.skipped
		r.Acked += p.acked.Load()
		r.Rejected += p.rejected
		ack.Merge(p.hist)
		e.add(p.werr)
		e.add(p.rerr)
		if p.unknown > 0 {
			e.add(fmt.Errorf("publisher %d: %d acknowledgements for packet ids not in flight", p.index, p.unknown))
		}
	}
	for _, s := range subs {
		r.Received += s.received.Load()
		r.Gaps += s.gaps
		r.Duplicates += s.dups
		lat.Merge(s.hist)
		e.add(s.err)
	}
	r.Expected = r.Sent * receivers
	if cfg.Scenario == Sub {
		r.Expected = r.Received + r.Gaps
	}
	secs := window.Seconds()
	r.SentRate = float64(r.Sent) / secs
	r.ExpectedRate = float64(r.Expected) / secs
	r.ReceivedRate = float64(r.Received) / secs
	if offline && r.DrainSeconds > 0 {
		r.DrainRate = float64(r.Received) / r.DrainSeconds
	}
	if r.Expected > 0 {
		loss := max(0, float64(r.Expected-r.Received)) / float64(r.Expected) * 100
		if cfg.Scenario == Sub {
			loss = float64(r.Gaps) / float64(r.Expected) * 100
		}
		r.Loss = &loss
	}
	if cfg.Scenario == Pub {
		r.Latency = summarise("ack", ack)
	} else {
		r.Latency = summarise("end-to-end", lat)
		if cfg.QoS > 0 && npub > 0 {
			a := summarise("ack", ack)
			r.AckLatency = &a
		}
	}
	e.into(r)
	return nil
}
