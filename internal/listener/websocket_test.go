package listener

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func newWS(t *testing.T, cfg *tls.Config, opts WSOptions) net.Listener {
	t.Helper()
	ln, err := WebSocket("127.0.0.1:0", cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

func wsURL(ln net.Listener, secure bool, path string) string {
	if secure {
		return "wss://" + ln.Addr().String() + path
	}
	return "ws://" + ln.Addr().String() + path
}

type wsDial struct {
	url      string
	protos   []string
	header   http.Header
	tls      *tls.Config
	writeBuf int
}

func (d wsDial) dial() (*websocket.Conn, *http.Response, error) {
	dialer := websocket.Dialer{
		Subprotocols:     d.protos,
		TLSClientConfig:  d.tls,
		HandshakeTimeout: 5 * time.Second,
		WriteBufferSize:  d.writeBuf,
	}
	c, resp, err := dialer.Dial(d.url, d.header)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	return c, resp, err
}

// accept returns the next connection from ln or fails after 5s.
func accept(t *testing.T, ln net.Listener) net.Conn {
	t.Helper()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := ln.Accept()
		ch <- res{c, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatal(r.err)
		}
		t.Cleanup(func() { r.c.Close() })
		return r.c
	case <-time.After(5 * time.Second):
		t.Fatal("Accept timed out")
		return nil
	}
}

// pair dials ln with the mqtt subprotocol and returns both ends.
func pair(t *testing.T, ln net.Listener, d wsDial) (*websocket.Conn, net.Conn) {
	t.Helper()
	if d.url == "" {
		d.url = wsURL(ln, false, "/mqtt")
	}
	if d.protos == nil {
		d.protos = []string{"mqtt"}
	}
	cc, _, err := d.dial()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	sc := accept(t, ln)
	return cc, sc
}

func TestWebSocketSubprotocol(t *testing.T) {
	ln := newWS(t, nil, WSOptions{})
	url := wsURL(ln, false, "/mqtt")
	ok := []struct {
		name   string
		protos []string
		header http.Header
		want   string
	}{
		{"mqtt", []string{"mqtt"}, nil, "mqtt"},
		{"mqtt among others", []string{"wamp", "mqtt"}, nil, "mqtt"},
		{"mqtt on a second header line", nil, http.Header{"Sec-Websocket-Protocol": {"wamp", "mqtt"}}, "mqtt"},
		// MQTT 3.1 clients (MQTT.js with protocolVersion 3, Paho JavaScript) offer only this.
		{"mqttv3.1 alone", []string{"mqttv3.1"}, nil, "mqttv3.1"},
		{"mqtt preferred to mqttv3.1", []string{"mqttv3.1", "mqtt"}, nil, "mqtt"},
	}
	for _, tt := range ok {
		t.Run(tt.name, func(t *testing.T) {
			cc, resp, err := wsDial{url: url, protos: tt.protos, header: tt.header}.dial()
			if err != nil {
				t.Fatal(err)
			}
			defer cc.Close()
			accept(t, ln)
			// [MQTT-6.0.0-4]: the server answers with one subprotocol the client offered.
			if got := resp.Header.Values("Sec-Websocket-Protocol"); len(got) != 1 || got[0] != tt.want {
				t.Errorf("Sec-WebSocket-Protocol = %q, want [%s]", got, tt.want)
			}
			if cc.Subprotocol() != tt.want {
				t.Errorf("negotiated %q", cc.Subprotocol())
			}
		})
	}
	refused := []struct {
		name   string
		protos []string
	}{
		{"none", nil},
		{"other only", []string{"wamp"}},
		{"mqttv3", []string{"mqttv3"}},
		{"wrong case", []string{"MQTT"}},
	}
	for _, tt := range refused {
		t.Run("refused "+tt.name+" [MQTT-6.0.0-3]", func(t *testing.T) {
			cc, resp, err := wsDial{url: url, protos: tt.protos}.dial()
			if err == nil {
				cc.Close()
				t.Fatal("upgraded without the mqtt subprotocol")
			}
			if resp == nil || resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("response %v, err %v; want 400", resp, err)
			}
		})
	}
}

func TestWebSocketRefusals(t *testing.T) {
	ln := newWS(t, nil, WSOptions{AllowedOrigins: []string{"https://dash.example.com", "app.example.com"}})

	resp, err := http.Get("http://" + ln.Addr().String() + "/mqtt")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUpgradeRequired || resp.Header.Get("Upgrade") != "websocket" {
		t.Errorf("plain GET: %d Upgrade=%q, want 426 websocket", resp.StatusCode, resp.Header.Get("Upgrade"))
	}

	if _, resp, err := (wsDial{url: wsURL(ln, false, "/other"), protos: []string{"mqtt"}}).dial(); err == nil || resp == nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("wrong path: %v %v, want 404", resp, err)
	}

	origins := []struct {
		origin string
		want   int // 0: upgraded
	}{
		{"", 0},
		{"http://" + ln.Addr().String(), 0},
		{"https://dash.example.com", 0},
		{"HTTPS://Dash.Example.com", 0},
		{"http://app.example.com", 0},
		{"https://app.example.com", 0},
		{"http://dash.example.com", http.StatusForbidden},
		{"https://dash.example.com:444", http.StatusForbidden},
		{"http://app.example.com:8080", http.StatusForbidden},
		{"http://app.example.com.evil.net", http.StatusForbidden},
		{"https://evil.example", http.StatusForbidden},
		{"http://localhost:1", http.StatusForbidden},
		{"null", http.StatusForbidden},
	}
	for _, tt := range origins {
		t.Run("origin "+tt.origin, func(t *testing.T) {
			var h http.Header
			if tt.origin != "" {
				h = http.Header{"Origin": {tt.origin}}
			}
			cc, resp, err := wsDial{url: wsURL(ln, false, "/mqtt"), protos: []string{"mqtt"}, header: h}.dial()
			if tt.want == 0 {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				defer cc.Close()
				sc := accept(t, ln)
				if got := WebSocketOrigin(wrapped{sc}); got != tt.origin {
					t.Errorf("WebSocketOrigin = %q, want %q", got, tt.origin)
				}
				return
			}
			if err == nil {
				cc.Close()
				t.Fatal("upgraded")
			}
			if resp == nil || resp.StatusCode != tt.want {
				t.Fatalf("response %v, err %v; want %d", resp, err, tt.want)
			}
		})
	}

	for _, bad := range [][]string{{""}, {"https://x.example/path"}, {"x.example/path"}, {"user@x.example"}} {
		if ln, err := WebSocket("127.0.0.1:0", nil, WSOptions{AllowedOrigins: bad}); err == nil {
			ln.Close()
			t.Errorf("AllowedOrigins %q accepted", bad)
		}
	}
	star := newWS(t, nil, WSOptions{AllowedOrigins: []string{"*"}})
	cc, _, err := wsDial{url: wsURL(star, false, "/mqtt"), protos: []string{"mqtt"}, header: http.Header{"Origin": {"https://anything.example"}}}.dial()
	if err != nil {
		t.Fatalf("origin with * allowed: %v", err)
	}
	cc.Close()
	accept(t, star)
}

func TestWebSocketStream(t *testing.T) {
	ln := newWS(t, nil, WSOptions{})
	cc, sc := pair(t, ln, wsDial{header: http.Header{"X-Forwarded-For": {"203.0.113.7"}}})
	sc.SetDeadline(time.Now().Add(10 * time.Second))

	if sc.RemoteAddr().String() != cc.LocalAddr().String() {
		t.Errorf("RemoteAddr = %v, want the client socket %v", sc.RemoteAddr(), cc.LocalAddr())
	}
	if !IsLoopback(sc.RemoteAddr()) {
		t.Errorf("IsLoopback(%v) = false", sc.RemoteAddr())
	}
	if sc.LocalAddr().String() != ln.Addr().String() {
		t.Errorf("LocalAddr = %v, want %v", sc.LocalAddr(), ln.Addr())
	}
	if PeerCN(sc) != "" || WebSocketOrigin(sc) != "" {
		t.Error("PeerCN or WebSocketOrigin set on a plain ws conn without Origin")
	}

	// A CONNECT (client id "abcd") and a PINGREQ; the bytes only need to be
	// recognisable.
	connect := []byte{0x10, 0x10, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x02, 0x00, 0x3c, 0x00, 0x04, 'a', 'b', 'c', 'd'}
	pingreq := []byte{0xc0, 0x00}
	readExactly := func(want []byte) {
		t.Helper()
		got := make([]byte, len(want))
		if _, err := io.ReadFull(sc, got); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("read %x, want %x", got, want)
		}
	}

	// [MQTT-6.0.0-2] a packet split across two messages.
	cc.WriteMessage(websocket.BinaryMessage, connect[:5])
	cc.WriteMessage(websocket.BinaryMessage, connect[5:])
	readExactly(connect)

	// [MQTT-6.0.0-2] two packets in one message.
	cc.WriteMessage(websocket.BinaryMessage, append(append([]byte{}, pingreq...), connect...))
	readExactly(pingreq)
	readExactly(connect)

	// An empty message between packets is skipped.
	cc.WriteMessage(websocket.BinaryMessage, nil)
	cc.WriteMessage(websocket.BinaryMessage, pingreq)
	readExactly(pingreq)

	// Ping control frames are answered without disturbing the stream.
	pong := make(chan struct{}, 1)
	cc.SetPongHandler(func(string) error { pong <- struct{}{}; return nil })
	cc.WriteControl(websocket.PingMessage, []byte("p"), time.Now().Add(time.Second))
	cc.WriteMessage(websocket.BinaryMessage, pingreq)
	readExactly(pingreq)

	// Server writes: one binary message per Write [MQTT-6.0.0-1].
	for _, msg := range [][]byte{{0x20, 0x02, 0x00, 0x00}, {0xd0, 0x00}, bytes.Repeat([]byte{7}, 70000)} {
		if n, err := sc.Write(msg); err != nil || n != len(msg) {
			t.Fatalf("Write = %d, %v", n, err)
		}
		cc.SetReadDeadline(time.Now().Add(5 * time.Second))
		typ, got, err := cc.ReadMessage()
		if err != nil || typ != websocket.BinaryMessage || !bytes.Equal(got, msg) {
			t.Fatalf("client got type %d, %d bytes, %v; want binary %d bytes", typ, len(got), err, len(msg))
		}
	}
	select {
	case <-pong:
	case <-time.After(5 * time.Second):
		t.Fatal("no pong to the client's ping")
	}
}

func TestWebSocketFragmentedMessage(t *testing.T) {
	// A small client write buffer makes gorilla send one message as a
	// first frame and continuation frames.
	ln := newWS(t, nil, WSOptions{})
	cc, sc := pair(t, ln, wsDial{writeBuf: 8})
	sc.SetDeadline(time.Now().Add(10 * time.Second))
	want := []byte("0123456789abcdefghijklmnopqrstuvwxyz")
	w, err := cc.NextWriter(websocket.BinaryMessage)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(want)
	w.Close()
	got := make([]byte, len(want))
	if _, err := io.ReadFull(sc, got); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("read %q, %v; want %q", got, err, want)
	}
}

// TestWebSocketReadFullArbitrarySizes sends messages of random sizes and
// reads them back with io.ReadFull in chunks of unrelated random sizes.
func TestWebSocketReadFullArbitrarySizes(t *testing.T) {
	ln := newWS(t, nil, WSOptions{})
	cc, sc := pair(t, ln, wsDial{})
	sc.SetDeadline(time.Now().Add(10 * time.Second))

	rng := rand.New(rand.NewPCG(1, 2))
	var sent bytes.Buffer
	for range 300 {
		msg := make([]byte, rng.IntN(3000))
		for i := range msg {
			msg[i] = byte(rng.Uint32())
		}
		sent.Write(msg)
	}
	go func() {
		b := sent.Bytes()
		r := rand.New(rand.NewPCG(3, 4))
		for len(b) > 0 {
			n := min(r.IntN(5000), len(b))
			if err := cc.WriteMessage(websocket.BinaryMessage, b[:n]); err != nil {
				return
			}
			b = b[n:]
		}
	}()
	var got bytes.Buffer
	for got.Len() < sent.Len() {
		n := min(1+rng.IntN(4100), sent.Len()-got.Len())
		buf := make([]byte, n)
		if _, err := io.ReadFull(sc, buf); err != nil {
			t.Fatalf("after %d bytes: %v", got.Len(), err)
		}
		got.Write(buf)
	}
	if !bytes.Equal(got.Bytes(), sent.Bytes()) {
		t.Fatal("stream differs from what was sent")
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) && errors.As(err, &ne) && ne.Timeout()
}

func TestWebSocketDeadlines(t *testing.T) {
	ln := newWS(t, nil, WSOptions{})

	t.Run("read", func(t *testing.T) {
		_, sc := pair(t, ln, wsDial{})
		sc.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		start := time.Now()
		_, err := sc.Read(make([]byte, 10))
		if !isTimeout(err) {
			t.Fatalf("Read = %v, want a timeout", err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("timed out after %v", d)
		}
		if _, err := sc.Read(make([]byte, 10)); err == nil {
			t.Error("Read after a timeout succeeded")
		}
	})

	t.Run("past deadline", func(t *testing.T) {
		_, sc := pair(t, ln, wsDial{})
		sc.SetDeadline(time.Now().Add(-time.Second))
		if _, err := sc.Read(make([]byte, 1)); !isTimeout(err) {
			t.Fatalf("Read = %v, want a timeout", err)
		}
		if _, err := sc.Write([]byte{1}); !isTimeout(err) {
			t.Fatalf("Write = %v, want a timeout", err)
		}
	})

	t.Run("write", func(t *testing.T) {
		_, sc := pair(t, ln, wsDial{}) // the client never reads
		sc.SetWriteDeadline(time.Now().Add(300 * time.Millisecond))
		chunk := make([]byte, 1<<20)
		start := time.Now()
		var err error
		for i := 0; i < 1000 && err == nil; i++ {
			_, err = sc.Write(chunk)
		}
		if !isTimeout(err) {
			t.Fatalf("Write = %v, want a timeout", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("timed out after %v", d)
		}
	})

	t.Run("write deadline from another goroutine", func(t *testing.T) {
		_, sc := pair(t, ln, wsDial{})
		errc := make(chan error, 1)
		go func() {
			chunk := make([]byte, 1<<20)
			for {
				if _, err := sc.Write(chunk); err != nil {
					errc <- err
					return
				}
			}
		}()
		time.Sleep(200 * time.Millisecond) // let the writer block on a full socket
		sc.SetWriteDeadline(time.Now())
		select {
		case err := <-errc:
			if !isTimeout(err) {
				t.Fatalf("Write = %v, want a timeout", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("blocked Write not released by SetWriteDeadline")
		}
	})
}

func TestWebSocketClosing(t *testing.T) {
	ln := newWS(t, nil, WSOptions{MaxMessageSize: 1024})

	t.Run("text frame closes with 1003 [MQTT-6.0.0-1]", func(t *testing.T) {
		cc, sc := pair(t, ln, wsDial{})
		cc.WriteMessage(websocket.TextMessage, []byte("hello"))
		sc.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := sc.Read(make([]byte, 10)); !errors.Is(err, ErrTextFrame) {
			t.Fatalf("Read = %v, want ErrTextFrame", err)
		}
		cc.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, _, err := cc.ReadMessage()
		if !websocket.IsCloseError(err, websocket.CloseUnsupportedData) {
			t.Fatalf("client got %v, want close 1003", err)
		}
		if _, err := sc.Read(make([]byte, 10)); !errors.Is(err, ErrTextFrame) {
			t.Errorf("second Read = %v, want ErrTextFrame again", err)
		}
		sc.Close() // harmless after the internal close
	})

	t.Run("message over the limit closes with 1009", func(t *testing.T) {
		cc, sc := pair(t, ln, wsDial{})
		cc.WriteMessage(websocket.BinaryMessage, make([]byte, 1025))
		sc.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadAll(sc); !errors.Is(err, websocket.ErrReadLimit) {
			t.Fatalf("Read = %v, want ErrReadLimit", err)
		}
		cc.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, _, err := cc.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseMessageTooBig) {
			t.Fatalf("client got %v, want close 1009", err)
		}
	})

	t.Run("message at the limit passes", func(t *testing.T) {
		cc, sc := pair(t, ln, wsDial{})
		cc.WriteMessage(websocket.BinaryMessage, make([]byte, 1024))
		sc.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(sc, make([]byte, 1024)); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("peer close is EOF", func(t *testing.T) {
		cc, sc := pair(t, ln, wsDial{})
		cc.WriteMessage(websocket.BinaryMessage, []byte{0xe0, 0x00})
		cc.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
		sc.SetReadDeadline(time.Now().Add(5 * time.Second))
		got, err := io.ReadAll(sc)
		if err != nil || !bytes.Equal(got, []byte{0xe0, 0x00}) {
			t.Fatalf("ReadAll = %x, %v; want e000 then EOF", got, err)
		}
	})

	t.Run("peer drops the socket is EOF", func(t *testing.T) {
		cc, sc := pair(t, ln, wsDial{})
		cc.UnderlyingConn().Close()
		sc.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := sc.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("Read = %v, want EOF", err)
		}
	})

	t.Run("Close sends close 1000 and fails later calls", func(t *testing.T) {
		cc, sc := pair(t, ln, wsDial{})
		if err := sc.Close(); err != nil {
			t.Fatal(err)
		}
		cc.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, _, err := cc.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
			t.Fatalf("client got %v, want close 1000", err)
		}
		if _, err := sc.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
			t.Errorf("Read after Close = %v, want net.ErrClosed", err)
		}
		if _, err := sc.Write([]byte{1}); !errors.Is(err, net.ErrClosed) {
			t.Errorf("Write after Close = %v, want net.ErrClosed", err)
		}
		if err := sc.Close(); !errors.Is(err, net.ErrClosed) {
			t.Errorf("second Close = %v, want net.ErrClosed", err)
		}
	})

	t.Run("Close unblocks Read", func(t *testing.T) {
		_, sc := pair(t, ln, wsDial{})
		errc := make(chan error, 1)
		go func() {
			_, err := sc.Read(make([]byte, 1))
			errc <- err
		}()
		time.Sleep(50 * time.Millisecond)
		sc.Close()
		select {
		case err := <-errc:
			if !errors.Is(err, net.ErrClosed) {
				t.Errorf("Read = %v, want net.ErrClosed", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Read not unblocked by Close")
		}
	})
}

// TestWebSocketConcurrentUse runs a reader, a writer and deadline setters at
// once, for the race detector.
func TestWebSocketConcurrentUse(t *testing.T) {
	ln := newWS(t, nil, WSOptions{})
	cc, sc := pair(t, ln, wsDial{})
	var wg sync.WaitGroup
	const n = 200
	wg.Go(func() { // client echoes
		for range n {
			typ, m, err := cc.ReadMessage()
			if err != nil {
				return
			}
			cc.WriteMessage(typ, m)
		}
	})
	wg.Go(func() {
		for range n {
			sc.SetWriteDeadline(time.Now().Add(5 * time.Second))
			if _, err := sc.Write([]byte{0xd0, 0x00}); err != nil {
				t.Error(err)
				return
			}
		}
	})
	wg.Go(func() {
		for range n {
			sc.SetDeadline(time.Now().Add(5 * time.Second))
		}
	})
	if _, err := io.ReadFull(sc, make([]byte, 2*n)); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
}

func TestWebSocketCloseListener(t *testing.T) {
	before := runtime.NumGoroutine()

	t.Run("Close unblocks Accept", func(t *testing.T) {
		ln, err := WebSocket("127.0.0.1:0", nil, WSOptions{})
		if err != nil {
			t.Fatal(err)
		}
		errc := make(chan error, 1)
		go func() {
			_, err := ln.Accept()
			errc <- err
		}()
		time.Sleep(50 * time.Millisecond)
		if err := ln.Close(); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-errc:
			if !errors.Is(err, net.ErrClosed) {
				t.Fatalf("Accept = %v, want net.ErrClosed", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Close did not unblock Accept")
		}
		if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
			t.Errorf("Accept after Close = %v", err)
		}
		if err := ln.Close(); !errors.Is(err, net.ErrClosed) {
			t.Errorf("second Close = %v, want net.ErrClosed", err)
		}
		if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
			c.Close()
			t.Error("still listening after Close")
		}
	})

	t.Run("Close closes queued and idle connections", func(t *testing.T) {
		ln, err := WebSocket("127.0.0.1:0", nil, WSOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// One accepted conn, closed by the "broker".
		cc1, sc1 := pair(t, ln, wsDial{})
		sc1.Close()
		cc1.Close()
		// One upgraded and queued but never accepted: Close must close it.
		cc2, _, err := wsDial{url: wsURL(ln, false, "/mqtt"), protos: []string{"mqtt"}}.dial()
		if err != nil {
			t.Fatal(err)
		}
		defer cc2.Close()
		// One HTTP connection that never sends a request.
		idle, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer idle.Close()
		time.Sleep(50 * time.Millisecond) // let the upgrade reach the queue
		if err := ln.Close(); err != nil {
			t.Fatal(err)
		}
		cc2.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, _, err := cc2.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
			t.Errorf("queued connection: %v, want close 1000", err)
		}
		idle.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := idle.Read(make([]byte, 1)); err != io.EOF {
			t.Errorf("idle connection: %v, want EOF", err)
		}
	})

	// No goroutine outlives Close: the HTTP server's, the handlers', and
	// none per connection (wsConn starts none).
	deadline := time.Now().Add(5 * time.Second)
	for {
		now := runtime.NumGoroutine()
		if now <= before {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("goroutines: %d before, %d after Close\n%s", before, now, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestWebSocketTLS(t *testing.T) {
	p := newPKI(t)
	cfg, _, err := TLSConfig(TLSOptions{CertFile: p.certFile, KeyFile: p.keyFile, CAFile: p.caFile})
	if err != nil {
		t.Fatal(err)
	}
	ln := newWS(t, cfg, WSOptions{})
	if cfg.NextProtos != nil {
		t.Error("WebSocket modified the caller's tls.Config")
	}

	t.Run("client certificate", func(t *testing.T) {
		ccfg := p.clientConfig()
		ccfg.ServerName = "127.0.0.1"
		ccfg.Certificates = []tls.Certificate{p.client("alice")}
		cc, sc := pair(t, ln, wsDial{url: wsURL(ln, true, "/mqtt"), tls: ccfg})
		if cc.Subprotocol() != "mqtt" {
			t.Errorf("subprotocol %q", cc.Subprotocol())
		}
		if got := PeerCN(wrapped{sc}); got != "alice" {
			t.Errorf("PeerCN = %q, want alice", got)
		}
		st, ok := TLSState(sc)
		if !ok || st.Version != tls.VersionTLS13 || st.NegotiatedProtocol == "h2" {
			t.Errorf("TLSState = %v version %x proto %q", ok, st.Version, st.NegotiatedProtocol)
		}
		sc.SetDeadline(time.Now().Add(5 * time.Second))
		cc.WriteMessage(websocket.BinaryMessage, []byte{0xc0, 0x00})
		if _, err := io.ReadFull(sc, make([]byte, 2)); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("no client certificate", func(t *testing.T) {
		_, sc := pair(t, ln, wsDial{url: wsURL(ln, true, "/mqtt"), tls: p.clientConfig()})
		if got := PeerCN(sc); got != "" {
			t.Errorf("PeerCN = %q, want \"\"", got)
		}
	})

	t.Run("plain ws to a wss port fails", func(t *testing.T) {
		cc, _, err := wsDial{url: wsURL(ln, false, "/mqtt"), protos: []string{"mqtt"}}.dial()
		if err == nil {
			cc.Close()
			t.Fatal("plain ws upgraded on the TLS listener")
		}
	})

	t.Run("h2 not offered", func(t *testing.T) {
		ccfg := p.clientConfig()
		ccfg.NextProtos = []string{"h2", "http/1.1"}
		c, err := tls.Dial("tcp", ln.Addr().String(), ccfg)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if got := c.ConnectionState().NegotiatedProtocol; got != "http/1.1" {
			t.Errorf("ALPN = %q, want http/1.1", got)
		}
	})
}

func TestWebSocketOptionErrors(t *testing.T) {
	for _, o := range []WSOptions{{Path: "mqtt"}, {MaxMessageSize: -1}} {
		if ln, err := WebSocket("127.0.0.1:0", nil, o); err == nil {
			ln.Close()
			t.Errorf("WebSocket(%+v) succeeded", o)
		}
	}
	if ln, err := WebSocket("127.0.0.1:0", &tls.Config{}, WSOptions{}); err == nil {
		ln.Close()
		t.Error("WebSocket accepted a tls.Config without a certificate")
	}
}
