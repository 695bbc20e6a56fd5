package broker_test

// Shared harness of the integration tests: a whole broker on an ephemeral 127.0.0.1 port, and
// three kinds of client to talk to it:
//
//   - v5Client, a paho.golang MQTT 5.0 client over a net.Conn dialled here (so a test can drop it);
//   - v3Client, a paho.mqtt.golang MQTT 3.1.1 client (its net.Conn is captured the same way);
//   - rawClient, a TCP connection that writes hand-made bytes (built by the small encoder at the
//     end of this file, independent of package packet's encoder) and decodes the replies with
//     package packet, for malformed packets and flow-control abuse that real clients refuse to send.
//
// Every wait is bounded by waitTimeout; quiet is how long a test watches to prove that something
// does not arrive.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/turnstilemq/turnstile/internal/app"
	"github.com/turnstilemq/turnstile/internal/broker"
	"github.com/turnstilemq/turnstile/internal/config"
	"github.com/turnstilemq/turnstile/internal/directory"
	"github.com/turnstilemq/turnstile/internal/event"
	"github.com/turnstilemq/turnstile/internal/packet"
)

const (
	waitTimeout = 5 * time.Second        // the longest any single wait may take
	quiet       = 300 * time.Millisecond // how long to watch for something that must not arrive
)

// ---------------------------------------------------------------------------------------------
// Broker

// testBroker is a whole Turnstile started through the composition root, seen as its broker:
// the broker's methods, plus the directory for user and permission changes. Close stops the
// whole program (broker, listeners, store), so a test can start another on the same data
// directory.
type testBroker struct {
	*broker.Server
	app    *app.App
	stop   func(ctx context.Context) error
	events *eventRecorder // every event the program reported
}

// eventRecorder keeps the events of a test's program.
type eventRecorder struct {
	mu     sync.Mutex
	events []event.Event
}

func (r *eventRecorder) Observe(e event.Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

// find returns the events of kind k for client id (any client when id is "").
func (r *eventRecorder) find(k event.Kind, id string) []event.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []event.Event
	for _, e := range r.events {
		if e.Kind == k && (id == "" || e.ClientID == id) {
			out = append(out, e)
		}
	}
	return out
}

// Dir is the directory of users, vhosts and permissions.
func (b *testBroker) Dir() *directory.Directory { return b.app.Directory() }

// Denied returns the authorization denials reported so far: publishes (wills included) and
// subscribes.
func (b *testBroker) Denied() (publish, subscribe uint64) {
	d := b.app.Counters().ByReason(event.Denied)
	return d["publish"], d["subscribe"]
}

// WillsSuppressed returns how many wills were suppressed for reason.
func (b *testBroker) WillsSuppressed(reason string) uint64 {
	return b.app.Counters().ByReason(event.WillSuppressed)[reason]
}

// Close stops the whole program and waits until it has stopped, or ctx is done.
func (b *testBroker) Close(ctx context.Context) error { return b.stop(ctx) }

// startBroker starts a Turnstile with the default configuration, $SYS off, changed by mod (may
// be nil), its MQTT TCP listener on an ephemeral port and the management API off. It is stopped
// when the test ends. Set TURNSTILE_TEST_LOG=1 to see the broker's debug log in the test output.
func startBroker(t *testing.T, mod func(*config.Config)) (string, *testBroker) {
	t.Helper()
	return startBrokerOpts(t, mod, app.Options{})
}

// startBrokerOpts is startBroker with program options (a fake clock, a logger, say).
func startBrokerOpts(t *testing.T, mod func(*config.Config), o app.Options) (string, *testBroker) {
	t.Helper()
	cfg := config.Default()
	cfg.MQTT.SysInterval = 0
	cfg.MQTT.AllowAnonymous = true // these tests are not about authentication
	cfg.MQTT.WSPort = 0
	cfg.Mgmt.Port = 0
	cfg.Main.DataDir = t.TempDir() // every integration test runs with the store, as a user would
	if mod != nil {
		mod(cfg)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if os.Getenv("TURNSTILE_TEST_LOG") != "" {
		w := &testLogWriter{t: t}
		t.Cleanup(w.stop) // registered first, so it runs after the broker has stopped
		log = slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	rec := &eventRecorder{}
	if o.Logger == nil {
		o.Logger = log
	}
	o.Ephemeral, o.Version = true, "test"
	o.Observers = append(o.Observers, rec)
	a, err := app.New(cfg, o)
	if err != nil {
		t.Fatalf("app.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var once sync.Once
	var stopErr error
	stop := func(wait context.Context) error {
		once.Do(func() {
			cancel()
			select {
			case stopErr = <-done:
			case <-wait.Done():
				stopErr = fmt.Errorf("the program did not stop: %w", wait.Err())
			}
		})
		return stopErr
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := stop(ctx); err != nil {
			t.Errorf("stopping the broker: %v", err)
		}
	})
	addr := ""
	if ad := a.Addr("tcp"); ad != nil {
		addr = ad.String()
	}
	return addr, &testBroker{Server: a.Broker(), app: a, stop: stop, events: rec}
}

// testLogWriter forwards the broker's log to t.Log until the test is over.
type testLogWriter struct {
	mu      sync.Mutex
	t       *testing.T
	stopped bool
}

func (w *testLogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.stopped {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (w *testLogWriter) stop() {
	w.mu.Lock()
	w.stopped = true
	w.mu.Unlock()
}

func stats(srv *testBroker) broker.SysStats { return srv.Vhost(broker.DefaultVhost).Stats() }

// eventually polls cond every 10ms until it holds or waitTimeout passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitConnected waits until exactly n clients are connected to the default vhost.
func waitConnected(t *testing.T, srv *testBroker, n int) {
	t.Helper()
	eventually(t, fmt.Sprintf("%d connected clients", n), func() bool { return stats(srv).ClientsConnected == n })
}

func ctxTimeout() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), waitTimeout)
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, waitTimeout)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	return conn
}

func u16p(v uint16) *uint16 { return &v }
func u32p(v uint32) *uint32 { return &v }
func bytep(v byte) *byte    { return &v }
func intp(v int) *int       { return &v }

// ---------------------------------------------------------------------------------------------
// MQTT 5.0 client: paho.golang

type v5Client struct {
	t     *testing.T
	id    string
	conn  net.Conn
	c     *paho.Client
	ack   *paho.Connack
	msgs  chan *paho.Publish
	discs chan *paho.Disconnect
}

// connectV5 connects a paho.golang client with cp (ClientID, CleanStart, Properties, Will...) and
// fails the test if the broker refuses it.
func connectV5(t *testing.T, addr string, cp *paho.Connect) *v5Client {
	t.Helper()
	c, err := tryConnectV5(t, addr, cp)
	if err != nil {
		t.Fatalf("v5 connect %q: %v (connack %+v)", cp.ClientID, err, c.ack)
	}
	return c
}

// tryConnectV5 is connectV5 returning the broker's refusal instead of failing.
func tryConnectV5(t *testing.T, addr string, cp *paho.Connect) (*v5Client, error) {
	t.Helper()
	c := &v5Client{
		t:     t,
		id:    cp.ClientID,
		conn:  dial(t, addr),
		msgs:  make(chan *paho.Publish, 8192),
		discs: make(chan *paho.Disconnect, 4),
	}
	pc := paho.ClientConfig{
		Conn: c.conn,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){
			func(pr paho.PublishReceived) (bool, error) {
				select {
				case c.msgs <- pr.Packet:
				default: // the buffer is far larger than any test needs
				}
				return true, nil
			},
		},
		OnServerDisconnect: func(d *paho.Disconnect) {
			select {
			case c.discs <- d:
			default:
			}
		},
	}
	if cp.Properties != nil && cp.Properties.AuthMethod != "" {
		pc.AuthHandler = noAuther{} // paho.golang needs one with an Authentication Method
	}
	c.c = paho.NewClient(pc)
	t.Cleanup(func() { c.conn.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	ack, err := c.c.Connect(ctx, cp)
	c.ack = ack
	if ack != nil && ack.Properties != nil && ack.Properties.AssignedClientID != "" {
		c.id = ack.Properties.AssignedClientID
	}
	return c, err
}

// noAuther is the AuthHandler of a client with one-step enhanced authentication: the server
// never continues an exchange.
type noAuther struct{}

func (noAuther) Authenticate(a *paho.Auth) *paho.Auth { return a }
func (noAuther) Authenticated()                       {}

// v5Connect is a paho.Connect with the usual test settings.
func v5Connect(id string, clean bool, sessionExpiry uint32) *paho.Connect {
	cp := &paho.Connect{ClientID: id, CleanStart: clean, KeepAlive: 30}
	if sessionExpiry > 0 {
		cp.Properties = &paho.ConnectProperties{SessionExpiryInterval: u32p(sessionExpiry)}
	}
	return cp
}

func (c *v5Client) subscribe(opts ...paho.SubscribeOptions) *paho.Suback {
	c.t.Helper()
	return c.subscribeWith(nil, opts...)
}

func (c *v5Client) subscribeWith(props *paho.SubscribeProperties, opts ...paho.SubscribeOptions) *paho.Suback {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	sa, err := c.c.Subscribe(ctx, &paho.Subscribe{Properties: props, Subscriptions: opts})
	if err != nil {
		c.t.Fatalf("%s: subscribe %+v: %v", c.id, opts, err)
	}
	return sa
}

func (c *v5Client) publish(p *paho.Publish) *paho.PublishResponse {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	r, err := c.c.Publish(ctx, p)
	if err != nil {
		c.t.Fatalf("%s: publish to %q: %v", c.id, p.Topic, err)
	}
	return r
}

func (c *v5Client) pub(topic string, qos byte, retain bool, payload string) {
	c.t.Helper()
	c.publish(&paho.Publish{Topic: topic, QoS: qos, Retain: retain, Payload: []byte(payload)})
}

// expectMsg waits for the next application message.
func (c *v5Client) expectMsg() *paho.Publish {
	c.t.Helper()
	select {
	case m := <-c.msgs:
		return m
	case <-time.After(waitTimeout):
		c.t.Fatalf("%s: no message within %v", c.id, waitTimeout)
		return nil
	}
}

// expectMsgs waits for n application messages.
func (c *v5Client) expectMsgs(n int) []*paho.Publish {
	c.t.Helper()
	out := make([]*paho.Publish, 0, n)
	timeout := time.After(waitTimeout)
	for len(out) < n {
		select {
		case m := <-c.msgs:
			out = append(out, m)
		case <-timeout:
			c.t.Fatalf("%s: got %d of %d messages within %v", c.id, len(out), n, waitTimeout)
		}
	}
	return out
}

// expectNoMsg proves that no application message arrives for a while.
func (c *v5Client) expectNoMsg() {
	c.t.Helper()
	select {
	case m := <-c.msgs:
		c.t.Fatalf("%s: unexpected message on %q: %q (retain=%v qos=%d)", c.id, m.Topic, m.Payload, m.Retain, m.QoS)
	case <-time.After(quiet):
	}
}

// expectServerDisconnect waits for a DISCONNECT from the server and returns its reason code.
func (c *v5Client) expectServerDisconnect() byte {
	c.t.Helper()
	select {
	case d := <-c.discs:
		return d.ReasonCode
	case <-time.After(waitTimeout):
		c.t.Fatalf("%s: no DISCONNECT from the server within %v", c.id, waitTimeout)
		return 0
	}
}

// drop closes the network connection without DISCONNECT.
func (c *v5Client) drop() { c.conn.Close() }

// disconnect sends DISCONNECT with code and closes the connection.
func (c *v5Client) disconnect(code byte) {
	c.t.Helper()
	if err := c.c.Disconnect(&paho.Disconnect{ReasonCode: code}); err != nil {
		c.t.Fatalf("%s: disconnect: %v", c.id, err)
	}
}

// ---------------------------------------------------------------------------------------------
// MQTT 3.1.1 client: paho.mqtt.golang

type v3Client struct {
	t    *testing.T
	id   string
	c    mqtt.Client
	tok  mqtt.Token
	conn atomic.Pointer[net.Conn]
	msgs chan mqtt.Message
	lost chan error
}

// connectV3 connects a paho.mqtt.golang 3.1.1 client; mod may change the options (SetWill...).
func connectV3(t *testing.T, addr, id string, clean bool, mod func(*mqtt.ClientOptions)) *v3Client {
	t.Helper()
	c, err := tryConnectV3(t, addr, id, clean, mod)
	if err != nil {
		t.Fatalf("3.1.1 connect %q: %v", id, err)
	}
	return c
}

// tryConnectV3 is connectV3 returning the refusal; the CONNACK return code is in c.returnCode().
func tryConnectV3(t *testing.T, addr, id string, clean bool, mod func(*mqtt.ClientOptions)) (*v3Client, error) {
	t.Helper()
	c := &v3Client{t: t, id: id, msgs: make(chan mqtt.Message, 8192), lost: make(chan error, 1)}
	o := mqtt.NewClientOptions().
		AddBroker("tcp://" + addr).
		SetProtocolVersion(4).
		SetClientID(id).
		SetCleanSession(clean).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetKeepAlive(30 * time.Second).
		SetConnectTimeout(waitTimeout).
		SetWriteTimeout(waitTimeout).
		SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) {
			select {
			case c.msgs <- m:
			default:
			}
		}).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			select {
			case c.lost <- err:
			default:
			}
		}).
		SetCustomOpenConnectionFn(func(u *url.URL, _ mqtt.ClientOptions) (net.Conn, error) {
			conn, err := net.DialTimeout("tcp", u.Host, waitTimeout)
			if err == nil {
				c.conn.Store(&conn)
			}
			return conn, err
		})
	if mod != nil {
		mod(o)
	}
	c.c = mqtt.NewClient(o)
	t.Cleanup(func() {
		if p := c.conn.Load(); p != nil {
			(*p).Close()
		}
		c.c.Disconnect(0)
	})
	c.tok = c.c.Connect()
	if !c.tok.WaitTimeout(waitTimeout) {
		return c, errors.New("connect timed out")
	}
	return c, c.tok.Error()
}

func (c *v3Client) returnCode() byte     { return c.tok.(*mqtt.ConnectToken).ReturnCode() }
func (c *v3Client) sessionPresent() bool { return c.tok.(*mqtt.ConnectToken).SessionPresent() }

func (c *v3Client) wait(what string, tok mqtt.Token) {
	c.t.Helper()
	if !tok.WaitTimeout(waitTimeout) {
		c.t.Fatalf("%s: %s timed out", c.id, what)
	}
	if err := tok.Error(); err != nil {
		c.t.Fatalf("%s: %s: %v", c.id, what, err)
	}
}

// subscribe subscribes to filter and returns the granted code from SUBACK.
func (c *v3Client) subscribe(filter string, qos byte) byte {
	c.t.Helper()
	tok := c.c.Subscribe(filter, qos, nil)
	c.wait("subscribe "+filter, tok)
	return tok.(*mqtt.SubscribeToken).Result()[filter]
}

func (c *v3Client) pub(topic string, qos byte, retain bool, payload any) {
	c.t.Helper()
	c.wait("publish to "+topic, c.c.Publish(topic, qos, retain, payload))
}

func (c *v3Client) expectMsg() mqtt.Message {
	c.t.Helper()
	select {
	case m := <-c.msgs:
		return m
	case <-time.After(waitTimeout):
		c.t.Fatalf("%s: no message within %v", c.id, waitTimeout)
		return nil
	}
}

func (c *v3Client) expectNoMsg() {
	c.t.Helper()
	select {
	case m := <-c.msgs:
		c.t.Fatalf("%s: unexpected message on %q: %q", c.id, m.Topic(), m.Payload())
	case <-time.After(quiet):
	}
}

// expectLost waits until the client notices that the broker closed its connection.
func (c *v3Client) expectLost() {
	c.t.Helper()
	select {
	case <-c.lost:
	case <-time.After(waitTimeout):
		c.t.Fatalf("%s: connection not closed within %v", c.id, waitTimeout)
	}
}

// drop closes the network connection under the client, without DISCONNECT.
func (c *v3Client) drop() {
	if p := c.conn.Load(); p != nil {
		(*p).Close()
	}
}

// disconnect sends DISCONNECT.
func (c *v3Client) disconnect() { c.c.Disconnect(250) }

// ---------------------------------------------------------------------------------------------
// Raw TCP client

type rawClient struct {
	t    *testing.T
	conn net.Conn
	rd   *bufio.Reader
	v    packet.Version
	last rawPacket // the packet read last, for tests that check its bytes
}

// rawPacket is one packet read from the broker: its header, body and decoded form.
type rawPacket struct {
	h    packet.FixedHeader
	body []byte
	p    packet.Packet
}

func (p rawPacket) String() string {
	return fmt.Sprintf("%s flags=%#x %x", p.h.Type, p.h.Flags, p.body)
}

func dialRaw(t *testing.T, addr string, v packet.Version) *rawClient {
	t.Helper()
	c := &rawClient{t: t, conn: dial(t, addr), v: v}
	c.rd = bufio.NewReader(c.conn)
	t.Cleanup(func() { c.conn.Close() })
	return c
}

func (c *rawClient) send(parts ...[]byte) {
	c.t.Helper()
	c.conn.SetWriteDeadline(time.Now().Add(waitTimeout))
	if _, err := c.conn.Write(bytes.Join(parts, nil)); err != nil {
		c.t.Fatalf("raw write: %v", err)
	}
}

// read reads one packet within d. The error is a net timeout when nothing arrived, io.EOF (or a
// reset) when the broker closed the connection.
func (c *rawClient) read(d time.Duration) (rawPacket, error) {
	c.conn.SetReadDeadline(time.Now().Add(d))
	h, err := packet.ReadFixedHeader(c.rd)
	if err != nil {
		return rawPacket{}, err
	}
	body := make([]byte, h.Remaining)
	if _, err := io.ReadFull(c.rd, body); err != nil {
		return rawPacket{}, err
	}
	p, err := packet.Decode(h, body, c.v)
	if err != nil {
		c.t.Fatalf("raw: broker sent a packet that does not decode: %s: %v", rawPacket{h: h, body: body}, err)
	}
	c.last = rawPacket{h: h, body: body, p: p}
	return c.last, nil
}

// next waits for the next packet.
func (c *rawClient) next() rawPacket {
	c.t.Helper()
	p, err := c.read(waitTimeout)
	if err != nil {
		c.t.Fatalf("raw: no packet: %v", err)
	}
	return p
}

// expect waits for the next packet and fails unless it is a T.
func expect[T packet.Packet](c *rawClient) T {
	c.t.Helper()
	p := c.next()
	v, ok := p.p.(T)
	if !ok {
		var want T
		c.t.Fatalf("raw: got %s, want %T", p, want)
	}
	return v
}

// expectNothing proves that no packet arrives for a while (and that the connection stays open).
func (c *rawClient) expectNothing() {
	c.t.Helper()
	p, err := c.read(quiet)
	if err == nil {
		c.t.Fatalf("raw: unexpected packet %s", p)
	}
	if !isTimeout(err) {
		c.t.Fatalf("raw: connection ended: %v", err)
	}
}

// expectClosed reads until the broker closes the connection and returns what came before.
func (c *rawClient) expectClosed() []rawPacket {
	c.t.Helper()
	var got []rawPacket
	deadline := time.Now().Add(waitTimeout)
	for {
		p, err := c.read(time.Until(deadline))
		if err == nil {
			got = append(got, p)
			continue
		}
		if isTimeout(err) {
			c.t.Fatalf("raw: connection still open after %v (received %v)", waitTimeout, got)
		}
		return got
	}
}

// expectDisconnect reads until the connection closes and checks that a v5 DISCONNECT with code
// was the last packet.
func (c *rawClient) expectDisconnect(code packet.ReasonCode) {
	c.t.Helper()
	got := c.expectClosed()
	if len(got) == 0 {
		c.t.Fatalf("raw: connection closed without DISCONNECT, want reason %v", code)
	}
	d, ok := got[len(got)-1].p.(*packet.Disconnect)
	if !ok {
		c.t.Fatalf("raw: last packet before close is %s, want DISCONNECT %v", got[len(got)-1], code)
	}
	if d.ReasonCode != code {
		c.t.Fatalf("raw: DISCONNECT reason %v, want %v", d.ReasonCode, code)
	}
}

// expectClosedSilently expects the connection to close with nothing sent first (3.1.1, or before
// CONNACK).
func (c *rawClient) expectClosedSilently() {
	c.t.Helper()
	if got := c.expectClosed(); len(got) != 0 {
		c.t.Fatalf("raw: got %v before the close, want nothing", got)
	}
}

// connect sends CONNECT and expects a successful CONNACK. props are v5 CONNECT properties as
// built by props(), nil for none.
func (c *rawClient) connect(id string, clean bool, keepAlive uint16, props []byte) *packet.Connack {
	c.t.Helper()
	c.send(rawConnect(c.v, id, clean, keepAlive, props))
	ack := expect[*packet.Connack](c)
	if ack.ReasonCode != packet.Success {
		c.t.Fatalf("raw: CONNACK %v", ack.ReasonCode)
	}
	return ack
}

// subscribe sends SUBSCRIBE with one filter and expects its SUBACK.
func (c *rawClient) subscribe(pid uint16, filter string, opts byte, props []byte) *packet.Suback {
	c.t.Helper()
	c.send(rawSubscribe(c.v, pid, props, rawSub{filter, opts}))
	sa := expect[*packet.Suback](c)
	if sa.PacketID != pid {
		c.t.Fatalf("raw: SUBACK for packet id %d, want %d", sa.PacketID, pid)
	}
	return sa
}

// expectPublish waits for the next packet and fails unless it is a PUBLISH.
func (c *rawClient) expectPublish() *packet.Publish {
	c.t.Helper()
	return expect[*packet.Publish](c)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// ---------------------------------------------------------------------------------------------
// Raw encoder: just enough of MQTT to write test packets, kept apart from package packet so that
// the tests do not share the broker's encoder and can write what it would refuse to.

func vbi(n int) []byte {
	var b []byte
	for {
		d := byte(n % 128)
		n /= 128
		if n > 0 {
			d |= 0x80
		}
		b = append(b, d)
		if n == 0 {
			return b
		}
	}
}

func be16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }
func be32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

// mstr is a UTF-8 Encoded String or Binary Data: a two-byte length and the bytes, unchecked.
func mstr(s string) []byte { return append(be16(uint16(len(s))), s...) }

// Properties, each one identifier and its value.
func pByte(id, v byte) []byte       { return []byte{id, v} }
func pU16(id byte, v uint16) []byte { return append([]byte{id}, be16(v)...) }
func pU32(id byte, v uint32) []byte { return append([]byte{id}, be32(v)...) }
func pVBI(id byte, v int) []byte    { return append([]byte{id}, vbi(v)...) }
func pStr(id byte, s string) []byte { return append([]byte{id}, mstr(s)...) }
func pUser(k, v string) []byte {
	return append(append([]byte{packet.PropUser}, mstr(k)...), mstr(v)...)
}
func props(ps ...[]byte) []byte { return bytes.Join(ps, nil) }
func withLen(p []byte) []byte   { return append(vbi(len(p)), p...) }
func frame(first byte, body ...[]byte) []byte {
	b := bytes.Join(body, nil)
	return append(append([]byte{first}, vbi(len(b))...), b...)
}

// rawConnect builds CONNECT for v (3.1.1 or 5.0) without will, user name or password.
func rawConnect(v packet.Version, id string, clean bool, keepAlive uint16, props []byte) []byte {
	var flags byte
	if clean {
		flags |= 0x02
	}
	body := [][]byte{mstr("MQTT"), {byte(v), flags}, be16(keepAlive)}
	if v == packet.V5 {
		body = append(body, withLen(props))
	}
	body = append(body, mstr(id))
	return frame(0x10, body...)
}

// rawPublish builds PUBLISH; pid is written only for QoS > 0, props only for v5.
func rawPublish(v packet.Version, qos byte, dup, retain bool, topic string, pid uint16, props []byte, payload []byte) []byte {
	first := byte(0x30) | qos<<1
	if dup {
		first |= 0x08
	}
	if retain {
		first |= 0x01
	}
	body := [][]byte{mstr(topic)}
	if qos > 0 {
		body = append(body, be16(pid))
	}
	if v == packet.V5 {
		body = append(body, withLen(props))
	}
	return frame(first, append(body, payload)...)
}

type rawSub struct {
	filter string
	opts   byte // QoS | No Local 0x04 | Retain As Published 0x08 | Retain Handling << 4
}

func rawSubscribe(v packet.Version, pid uint16, props []byte, subs ...rawSub) []byte {
	body := [][]byte{be16(pid)}
	if v == packet.V5 {
		body = append(body, withLen(props))
	}
	for _, s := range subs {
		body = append(body, mstr(s.filter), []byte{s.opts})
	}
	return frame(0x82, body...)
}

// rawAck builds PUBACK, PUBREC, PUBREL or PUBCOMP with reason Success (omitted, 3.4.2.1).
func rawAck(t packet.Type, pid uint16) []byte {
	first := byte(t) << 4
	if t == packet.PUBREL {
		first |= 0x02
	}
	return frame(first, be16(pid))
}
