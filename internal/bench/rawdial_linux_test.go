//go:build linux

package bench

import (
	"context"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/turnstilemq/turnstile/internal/packet"
)

// The conn scenario opens plain TCP connections with rawDial on Linux: every protocol version
// logs in against a real Turnstile, and the connections it hands to Go's poller answer PINGREQ.
func TestRawDialVersions(t *testing.T) {
	t.Parallel()
	port := startBroker(t)
	for _, v := range []byte{3, 4, 5} {
		cfg := testConfig(port, Conn, 40, 0)
		cfg.Version = v
		cfg.Duration = 50 * time.Millisecond
		cfg.Concurrency = 7 // not a multiple of the loops
		d, err := newDialer(&cfg, newClock(), "rawtest")
		if err != nil {
			t.Fatal(err)
		}
		if _, _, ok := d.rawConnect(context.Background(), 0, 1, nil, nil); !ok {
			t.Fatal("plain TCP on Linux does not use rawDial")
		}
		r := run(t, cfg)
		if r.Connects != 40 || r.ConnectFailures != 0 || r.Alive != 40 || r.Latency.Samples != 40 {
			t.Errorf("MQTT level %d: %d connects, %d failures (%s), %d alive, %d latency samples",
				v, r.Connects, r.ConnectFailures, r.FirstError, r.Alive, r.Latency.Samples)
		}
	}
}

// fakeBroker accepts connections and runs serve on each, after reading its CONNECT.
func fakeBroker(t *testing.T, serve func(c net.Conn)) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				h, err := packet.ReadFixedHeader(byteReader{c})
				if err != nil || h.Type != packet.CONNECT {
					return
				}
				if _, err := io.CopyN(io.Discard, c, int64(h.Remaining)); err != nil {
					return
				}
				serve(c)
			})
		}
	})
	return ln.Addr().(*net.TCPAddr).Port
}

type byteReader struct{ r io.Reader }

func (b byteReader) ReadByte() (byte, error) {
	var one [1]byte
	_, err := io.ReadFull(b.r, one[:])
	return one[0], err
}

// rawRun runs rawConnect alone and returns what it reported.
func rawRun(t *testing.T, ctx context.Context, port, n int) (ok int, errs []string) {
	t.Helper()
	cfg := testConfig(port, Conn, n, 0)
	d, err := newDialer(&cfg, newClock(), "rawtest")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	conns, _, _ := d.rawConnect(ctx, n, 4, func(time.Duration) {
		mu.Lock()
		ok++
		mu.Unlock()
	}, func(_ int, err error) {
		mu.Lock()
		errs = append(errs, err.Error())
		mu.Unlock()
	})
	open := 0
	for _, c := range conns {
		if c != nil {
			open++
			c.nc.Close()
		}
	}
	if open != ok || len(conns) != n || ok+len(errs) > n || ctx.Err() == nil && ok+len(errs) != n {
		t.Errorf("%d of %d connected, %d adopted, %d errors", ok, n, open, len(errs))
	}
	return ok, errs
}

// A CONNACK that arrives a byte at a time is read whole; one that refuses, a packet that is not a
// CONNACK, a close before any answer, bytes after the CONNACK (they would be lost in the hand-over
// to Go's poller) and a closed port are each counted as a failure naming it.
func TestRawDialAnswers(t *testing.T) {
	t.Parallel()
	connack := func(rc packet.ReasonCode) []byte {
		return (&packet.Connack{ReasonCode: rc}).Append(nil, packet.V311)
	}
	trickle := fakeBroker(t, func(c net.Conn) {
		for _, b := range connack(packet.Success) {
			c.Write([]byte{b})
			time.Sleep(5 * time.Millisecond)
		}
		io.Copy(io.Discard, c)
	})
	if ok, errs := rawRun(t, context.Background(), trickle, 6); ok != 6 {
		t.Errorf("CONNACK a byte at a time: %d of 6 connected, %v", ok, errs)
	}

	closedLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := closedLn.Addr().(*net.TCPAddr).Port
	closedLn.Close()
	for _, tc := range []struct {
		name string
		port int
		want string
	}{
		{"refused", fakeBroker(t, func(c net.Conn) { c.Write(connack(packet.NotAuthorized)) }), "CONNACK refused"},
		{"not a CONNACK", fakeBroker(t, func(c net.Conn) { c.Write((&packet.Pingresp{}).Append(nil, packet.V311)) }), "instead of CONNACK"},
		{"closed at once", fakeBroker(t, func(net.Conn) {}), "unexpected EOF"},
		{"more after CONNACK", fakeBroker(t, func(c net.Conn) {
			c.Write((&packet.Pingresp{}).Append(connack(packet.Success), packet.V311))
		}), "more after CONNACK"},
		{"closed port", closed, "connection refused"},
	} {
		ok, errs := rawRun(t, context.Background(), tc.port, 5)
		if ok != 0 || len(errs) != 5 || !strings.Contains(errs[0], tc.want) {
			t.Errorf("%s: %d connected, errors %v; want 5 errors with %q", tc.name, ok, errs, tc.want)
		}
	}
}

// A broker that never answers holds the dialer only until its context ends: the connections in
// flight fail, none is left open, and no more are started.
func TestRawDialCancelled(t *testing.T) {
	t.Parallel()
	silent := fakeBroker(t, func(c net.Conn) { io.Copy(io.Discard, c) })
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	ok, errs := rawRun(t, ctx, silent, 20)
	if ok != 0 || len(errs) != 4 {
		t.Errorf("%d connected, errors %v; want the 4 in flight to fail", ok, errs)
	}
	for _, e := range errs {
		if !strings.Contains(e, "context deadline exceeded") {
			t.Errorf("error %q", e)
		}
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("rawDial took %v after its context ended", took)
	}
}
