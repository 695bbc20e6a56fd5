package listener

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// ErrTextFrame is returned by Read on a WebSocket connection when the peer
// sent a text message. MQTT travels only in binary messages; the connection
// is closed with status 1003 [MQTT-6.0.0-1].
var ErrTextFrame = errors.New("listener: websocket text message received; MQTT needs binary [MQTT-6.0.0-1]")

// wsConn is an upgraded WebSocket connection seen as a byte stream.
//
// Read returns the payload bytes of successive binary messages as one stream:
// MQTT packets need not align with messages or frames [MQTT-6.0.0-2]. Write
// sends each call as one binary message in a single frame [MQTT-6.0.0-1].
// Ping and close control frames are answered inside Read.
//
// Deadlines behave as on a net.Conn, with one difference: gorilla/websocket
// makes any read or write error permanent, so after a timeout the connection
// cannot be read (or written) again and must be closed. The broker closes on
// timeouts anyway.
//
// Methods may be called from several goroutines: Reads are serialised, and so
// are Writes. SetWriteDeadline from another goroutine also applies to a
// Write in progress, except in a narrow race with a Write that is just
// starting; Close always unblocks both.
type wsConn struct {
	ws     *websocket.Conn
	remote net.Addr
	local  net.Addr
	tls    *tls.ConnectionState // nil on plain ws
	origin string

	maxMessage int64 // read limit per message

	rmu     sync.Mutex // serialises Read; guards r and readErr
	r       io.Reader  // current message, nil between messages
	readErr error      // sticky: gorilla panics on repeated reads after an error

	wmu sync.Mutex // serialises Write

	dmu       sync.Mutex // guards wDeadline
	wDeadline time.Time

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

var _ net.Conn = (*wsConn)(nil)

func newWSConn(ws *websocket.Conn, r *http.Request, maxMessage int64) *wsConn {
	ws.SetReadLimit(maxMessage)
	c := &wsConn{
		ws: ws,
		// The socket's peer, never X-Forwarded-For or similar headers.
		remote:     ws.RemoteAddr(),
		local:      ws.LocalAddr(),
		origin:     r.Header.Get("Origin"),
		maxMessage: maxMessage,
	}
	if r.TLS != nil {
		st := *r.TLS
		c.tls = &st
	}
	return c
}

// Read reads bytes from the stream of binary messages.
func (c *wsConn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if c.readErr != nil {
		return 0, c.readErr
	}
	if len(p) == 0 {
		return 0, nil
	}
	for {
		if c.r == nil {
			typ, r, err := c.ws.NextReader()
			if err != nil {
				c.readErr = c.mapErr("read", err)
				return 0, c.readErr
			}
			if typ != websocket.BinaryMessage {
				// [MQTT-6.0.0-1] any other data frame: close the connection.
				c.shutdown(websocket.CloseUnsupportedData, "MQTT needs binary messages")
				c.readErr = ErrTextFrame
				return 0, c.readErr
			}
			c.r = r
		}
		n, err := c.r.Read(p)
		if err == io.EOF { // end of this message; the stream goes on
			c.r = nil
			if n > 0 {
				return n, nil
			}
			continue
		}
		if err != nil {
			c.readErr = c.mapErr("read", err)
			return n, c.readErr
		}
		if n > 0 {
			return n, nil
		}
	}
}

// Write sends p as one binary message in one frame.
func (c *wsConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closed.Load() {
		return 0, c.opErr("write", net.ErrClosed)
	}
	if len(p) == 0 {
		return 0, nil
	}
	c.dmu.Lock()
	d := c.wDeadline
	c.dmu.Unlock()
	c.ws.SetWriteDeadline(d) // gorilla applies it to the socket per frame
	if err := c.ws.WriteMessage(websocket.BinaryMessage, p); err != nil {
		return 0, c.mapErr("write", err)
	}
	return len(p), nil
}

// Close sends a normal-closure close frame (waiting at most a second for an
// in-progress Write to finish) and closes the socket. The close frame is not
// awaited from the peer.
func (c *wsConn) Close() error {
	first := false
	c.closeOnce.Do(func() {
		first = true
		c.closeErr = c.closeSocket(websocket.CloseNormalClosure, "")
	})
	if !first {
		return c.opErr("close", net.ErrClosed)
	}
	return c.closeErr
}

// shutdown closes the connection with a status other than normal.
func (c *wsConn) shutdown(code int, text string) {
	c.closeOnce.Do(func() { c.closeErr = c.closeSocket(code, text) })
}

func (c *wsConn) closeSocket(code int, text string) error {
	c.closed.Store(true)
	msg := websocket.FormatCloseMessage(code, text)
	_ = c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(wsCloseGrace))
	return c.ws.Close()
}

func (c *wsConn) LocalAddr() net.Addr  { return c.local }
func (c *wsConn) RemoteAddr() net.Addr { return c.remote }

func (c *wsConn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

func (c *wsConn) SetReadDeadline(t time.Time) error {
	if c.closed.Load() {
		return c.opErr("set", net.ErrClosed)
	}
	return c.ws.SetReadDeadline(t)
}

func (c *wsConn) SetWriteDeadline(t time.Time) error {
	if c.closed.Load() {
		return c.opErr("set", net.ErrClosed)
	}
	c.dmu.Lock()
	c.wDeadline = t
	c.dmu.Unlock()
	// Reach a Write that is already blocked on the socket; the next Write
	// hands the deadline to gorilla, which sets it again per frame.
	return c.ws.UnderlyingConn().SetWriteDeadline(t)
}

// mapErr turns gorilla's errors into what a net.Conn user expects: io.EOF
// when the peer closed normally or dropped the socket, net.ErrClosed after
// Close, and os.ErrDeadlineExceeded (as a timeout net.Error) on deadlines.
func (c *wsConn) mapErr(op string, err error) error {
	if c.closed.Load() {
		return c.opErr(op, net.ErrClosed)
	}
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		switch ce.Code {
		case websocket.CloseNormalClosure, websocket.CloseGoingAway,
			websocket.CloseNoStatusReceived, websocket.CloseAbnormalClosure:
			return io.EOF
		}
		return fmt.Errorf("listener: websocket closed by peer: %w", err)
	}
	if errors.Is(err, websocket.ErrReadLimit) {
		return fmt.Errorf("listener: websocket message over %d bytes: %w", c.maxMessage, err)
	}
	if errors.Is(err, websocket.ErrCloseSent) {
		return c.opErr(op, net.ErrClosed)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return c.opErr(op, os.ErrDeadlineExceeded)
	}
	return c.opErr(op, err)
}

func (c *wsConn) opErr(op string, err error) error {
	return &net.OpError{Op: op, Net: "websocket", Source: c.local, Addr: c.remote, Err: err}
}

// WebSocketOrigin returns the Origin header of the upgrade request behind a
// WebSocket connection from this package (looking through NetConn()
// wrappers): "" for non-browser clients and for other kinds of connection.
// A browser's connection to a loopback listener may come from any web page
// the user opens (DNS rebinding defeats the same-host check), so the auth
// layer may want to deny loopback-only privileges when it is not "".
func WebSocketOrigin(c net.Conn) string {
	if w, ok := unwrap(c).(*wsConn); ok {
		return w.origin
	}
	return ""
}
