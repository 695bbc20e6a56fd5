package bench

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/turnstilemq/turnstile/internal/packet"
)

// Read buffer sizes: subscribers receive bulk traffic; publishers and idle connections read only
// acknowledgements, and 5,000 idle connections must not cost the bench 64 KiB each.
const (
	subReadBuffer  = 64 << 10
	pubReadBuffer  = 8 << 10
	idleReadBuffer = 512

	handshakeTimeout = 10 * time.Second
)

// Offsets in the payload of every bench message.
const (
	offStamp = 0  // int64: send time on the bench clock, nanoseconds
	offPub   = 8  // uint32: publisher index
	offSeq   = 12 // uint32: publisher's sequence number, from 0
)

// clock is the time base written into payloads: the wall clock read once at start plus the
// monotonic time elapsed since, so differences inside one process are monotonic (immune to clock
// steps) and stamps from another bench process on the same host are comparable to within the
// skew of the two start readings.
type clock struct {
	start time.Time
	epoch int64
}

func newClock() *clock {
	now := time.Now()
	return &clock{start: now, epoch: now.UnixNano()}
}

func (c *clock) now() int64 { return c.epoch + int64(time.Since(c.start)) }

// dialer opens bench connections: TCP or TLS, then CONNECT and CONNACK.
type dialer struct {
	cfg    *Config
	logins *logins
	clk    *clock
	addr   string
	tls    *tls.Config
	keep   uint16 // Keep Alive sent in CONNECT, seconds
	runID  string
}

func newDialer(cfg *Config, clk *clock, runID string) (*dialer, error) {
	d := &dialer{cfg: cfg, clk: clk, addr: net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)), runID: runID}
	var err error
	if d.logins, err = newLogins(cfg); err != nil {
		return nil, err
	}
	// Long enough that no connection needs a PINGREQ during the run and its drain; brokers that
	// cap keep alive (mosquitto's max_keepalive) refuse 0 for 3.1.1 clients.
	d.keep = uint16(min(2*(cfg.Duration+cfg.Drain)/time.Second+60, 65535))
	if cfg.TLS {
		d.tls = &tls.Config{ServerName: cfg.Host, InsecureSkipVerify: cfg.Insecure} //nolint:gosec // asked for with --insecure
		if cfg.CAFile != "" {
			pem, err := os.ReadFile(cfg.CAFile)
			if err != nil {
				return nil, fmt.Errorf("cafile: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("cafile %s: no PEM certificate found", cfg.CAFile)
			}
			d.tls.RootCAs = pool
		}
	}
	return d, nil
}

// conn is one MQTT connection of the bench. Its reader is used by one goroutine; writes are
// serialised by wmu because a publisher's writer and its reader (sending PUBREL) share the socket.
type conn struct {
	nc      net.Conn
	tr      stampReader
	rd      *bufio.Reader
	v       packet.Version
	id      string
	discard int    // bytes of the last packet still to drop from rd
	scratch []byte // body of a packet larger than rd's buffer

	// receiveMax is the server's Receive Maximum (v5 CONNACK), 0 when it sent none.
	receiveMax int

	wmu sync.Mutex
}

// connect dials and completes CONNECT/CONNACK for clientID, with a clean session, logging in
// as connection i (see Config.Users and Config.Credentials).
func (d *dialer) connect(ctx context.Context, i int, clientID string, readBuf int) (*conn, error) {
	return d.connectSession(ctx, i, clientID, readBuf, false)
}

// connectSession is connect with a choice of a persistent session (clean session 0, and for 5.0
// a Session Expiry Interval of an hour).
func (d *dialer) connectSession(ctx context.Context, i int, clientID string, readBuf int, persistent bool) (*conn, error) {
	// No TCP keep-alive: the MQTT keep alive covers the connection, and Go's default (on, 15 s)
	// costs four setsockopt calls per connection, CPU that the load generator takes from the
	// broker it measures when both share the machine.
	nd := net.Dialer{Timeout: handshakeTimeout, KeepAlive: -1}
	nc, err := nd.DialContext(ctx, "tcp", d.addr)
	if err != nil {
		return nil, err
	}
	if d.tls != nil {
		tc := tls.Client(nc, d.tls)
		hctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
		err := tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			nc.Close()
			return nil, fmt.Errorf("tls: %w", err)
		}
		nc = tc
	}
	c := d.newConn(nc, clientID, readBuf)
	nc.SetDeadline(time.Now().Add(handshakeTimeout))
	if err := c.write(d.connectPacket(i, clientID, persistent)); err != nil {
		nc.Close()
		return nil, fmt.Errorf("CONNECT: %w", err)
	}
	h, body, err := c.next()
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("waiting for CONNACK: %w", err)
	}
	if c.receiveMax, err = d.checkConnack(h, body); err != nil {
		nc.Close()
		return nil, err
	}
	nc.SetDeadline(time.Time{})
	return c, nil
}

// newConn wraps an open socket.
func (d *dialer) newConn(nc net.Conn, clientID string, readBuf int) *conn {
	c := &conn{nc: nc, tr: stampReader{r: nc, clk: d.clk}, v: packet.Version(d.cfg.Version), id: clientID}
	c.rd = bufio.NewReaderSize(&c.tr, readBuf)
	return c
}

// connectPacket encodes the CONNECT of connection i.
func (d *dialer) connectPacket(i int, clientID string, persistent bool) []byte {
	v := packet.Version(d.cfg.Version)
	user, pw := d.logins.at(i)
	cp := &packet.Connect{
		Version:    v,
		CleanStart: !persistent,
		KeepAlive:  d.keep,
		ClientID:   clientID,
		Username:   user,
		Password:   []byte(pw),
	}
	if v == packet.V5 {
		// Let the broker keep as many QoS 1/2 messages in flight to us as it likes.
		cp.Props.ReceiveMaximum, cp.Props.HasReceiveMaximum = 65535, true
		if persistent {
			cp.Props.SessionExpiry, cp.Props.HasSessionExpiry = 3600, true
		}
	}
	return cp.Append(nil, v)
}

// checkConnack checks that the broker's first packet is a CONNACK that accepts the connection,
// and returns the server's Receive Maximum (v5), 0 when it sent none.
func (d *dialer) checkConnack(h packet.FixedHeader, body []byte) (receiveMax int, err error) {
	p, err := packet.Decode(h, body, packet.Version(d.cfg.Version))
	if err != nil {
		return 0, fmt.Errorf("CONNACK: %w", err)
	}
	ack, ok := p.(*packet.Connack)
	if !ok {
		return 0, fmt.Errorf("got %s instead of CONNACK", h.Type)
	}
	if ack.ReasonCode != packet.Success {
		return 0, fmt.Errorf("CONNACK refused: %v", ack.ReasonCode)
	}
	if ack.Props.HasReceiveMaximum {
		receiveMax = int(ack.Props.ReceiveMaximum)
	}
	return receiveMax, nil
}

// stampReader notes when each read from the socket returned: every packet in those bytes
// arrived then, so a reader needs one clock reading per read call, not one per packet.
type stampReader struct {
	r   io.Reader
	clk *clock
	at  int64
}

func (s *stampReader) Read(b []byte) (int, error) {
	n, err := s.r.Read(b)
	s.at = s.clk.now()
	return n, err
}

// readAt is the bench-clock time at which the bytes of the last packet returned by next were
// read from the socket.
func (c *conn) readAt() int64 { return c.tr.at }

// write writes b whole; safe from any goroutine.
func (c *conn) write(b []byte) error {
	c.wmu.Lock()
	_, err := c.nc.Write(b)
	c.wmu.Unlock()
	return err
}

// buffered is the number of bytes read from the socket and not yet returned by next: when it is
// 0, the next call blocks.
func (c *conn) buffered() int { return c.rd.Buffered() - c.discard }

// next reads one packet. The body aliases the read buffer and is valid until the next call.
func (c *conn) next() (packet.FixedHeader, []byte, error) {
	if c.discard > 0 {
		c.rd.Discard(c.discard) // within the buffered bytes: never blocks
		c.discard = 0
	}
	h, err := packet.ReadFixedHeader(c.rd)
	if err != nil {
		return h, nil, err
	}
	if h.Remaining <= c.rd.Size() {
		body, err := c.rd.Peek(h.Remaining)
		if err != nil {
			return h, nil, unexpectedEOF(err)
		}
		c.discard = h.Remaining
		return h, body, nil
	}
	if cap(c.scratch) < h.Remaining {
		c.scratch = make([]byte, h.Remaining)
	}
	body := c.scratch[:h.Remaining]
	if _, err := io.ReadFull(c.rd, body); err != nil {
		return h, nil, unexpectedEOF(err)
	}
	return h, body, nil
}

func unexpectedEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// subscribe subscribes to filter and waits for the SUBACK.
func (c *conn) subscribe(filter string, qos byte) error {
	s := &packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: filter, QoS: qos}}}
	c.nc.SetDeadline(time.Now().Add(handshakeTimeout))
	defer c.nc.SetDeadline(time.Time{})
	if err := c.write(s.Append(nil, c.v)); err != nil {
		return fmt.Errorf("SUBSCRIBE: %w", err)
	}
	for {
		h, body, err := c.next()
		if err != nil {
			return fmt.Errorf("waiting for SUBACK: %w", err)
		}
		if h.Type != packet.SUBACK {
			continue // nothing is published on bench topics before the run starts
		}
		p, err := packet.Decode(h, body, c.v)
		if err != nil {
			return fmt.Errorf("SUBACK: %w", err)
		}
		codes := p.(*packet.Suback).ReasonCodes
		if len(codes) != 1 || codes[0].IsError() {
			return fmt.Errorf("SUBACK refused %s: %v", filter, codes)
		}
		if byte(codes[0]) < qos {
			return fmt.Errorf("SUBACK granted QoS %d for %s, asked %d", codes[0], filter, qos)
		}
		return nil
	}
}

// ping sends PINGREQ and waits for PINGRESP, to prove an idle connection is still open.
func (c *conn) ping(timeout time.Duration) error {
	c.nc.SetDeadline(time.Now().Add(timeout))
	defer c.nc.SetDeadline(time.Time{})
	if err := c.write((&packet.Pingreq{}).Append(nil, c.v)); err != nil {
		return err
	}
	for {
		h, _, err := c.next()
		if err != nil {
			return err
		}
		if h.Type == packet.PINGRESP {
			return nil
		}
	}
}

// close sends DISCONNECT (best effort) and closes the socket.
func (c *conn) close() {
	c.nc.SetWriteDeadline(time.Now().Add(time.Second))
	c.write((&packet.Disconnect{}).Append(nil, c.v))
	c.nc.Close()
}

// errMalformed is a packet from the broker that the bench cannot parse.
var errMalformed = errors.New("malformed packet from the broker")

// parsePublish finds the packet identifier and the payload of a PUBLISH body in place, without
// allocating (packet.DecodePublish copies the topic into a string). It checks only what it needs.
func parsePublish(flags byte, body []byte, v packet.Version) (qos byte, pid uint16, payload []byte, err error) {
	qos = flags >> 1 & 0x03
	if len(body) < 2 {
		return 0, 0, nil, errMalformed
	}
	i := 2 + int(binary.BigEndian.Uint16(body))
	if qos > 0 {
		if i+2 > len(body) {
			return 0, 0, nil, errMalformed
		}
		pid = binary.BigEndian.Uint16(body[i:])
		i += 2
	}
	if v == packet.V5 {
		n, size := 0, 0
		for shift := 0; ; shift += 7 {
			if i+size >= len(body) || size == 4 {
				return 0, 0, nil, errMalformed
			}
			b := body[i+size]
			size++
			n |= int(b&0x7F) << shift
			if b < 0x80 {
				break
			}
		}
		i += size + n
	}
	if i > len(body) || qos == 3 {
		return 0, 0, nil, errMalformed
	}
	return qos, pid, body[i:], nil
}

// ackID reads the packet identifier and, for v5, the reason code of PUBACK, PUBREC, PUBREL or
// PUBCOMP (the short form has no reason code: Success).
func ackID(body []byte) (uint16, packet.ReasonCode, error) {
	if len(body) < 2 {
		return 0, 0, errMalformed
	}
	var code packet.ReasonCode
	if len(body) > 2 {
		code = packet.ReasonCode(body[2])
	}
	return binary.BigEndian.Uint16(body), code, nil
}

// ackTemplate is an acknowledgement packet encoded once; appendAck copies it with a new id.
type ackTemplate struct {
	b      []byte
	pidOff int
}

func newAckTemplate(t packet.Type, v packet.Version) ackTemplate {
	var p packet.Packet
	switch t {
	case packet.PUBACK:
		p = &packet.Puback{PacketID: 1}
	case packet.PUBREC:
		p = &packet.Pubrec{PacketID: 1}
	case packet.PUBREL:
		p = &packet.Pubrel{PacketID: 1}
	default:
		p = &packet.Pubcomp{PacketID: 1}
	}
	b := packet.Append(nil, p, v)
	_, n, err := packet.DecodeFixedHeader(b)
	if err != nil {
		panic(err) // our own encoding
	}
	return ackTemplate{b: b, pidOff: n}
}

func (a *ackTemplate) append(dst []byte, pid uint16) []byte {
	n := len(dst)
	dst = append(dst, a.b...)
	binary.BigEndian.PutUint16(dst[n+a.pidOff:], pid)
	return dst
}

// publishTemplate is a PUBLISH encoded once, with the offsets a publisher rewrites per message.
type publishTemplate struct {
	b          []byte
	payloadOff int
	pidOff     int // -1 for QoS 0
}

func newPublishTemplate(topic string, qos byte, size int, pubIndex uint32, v packet.Version) (publishTemplate, error) {
	payload := make([]byte, size)
	for i := MinSize; i < size; i++ {
		payload[i] = 'a' + byte(i%26)
	}
	binary.BigEndian.PutUint32(payload[offPub:], pubIndex)
	p := &packet.Publish{QoS: qos, Topic: topic, Payload: payload}
	if qos > 0 {
		p.PacketID = 1
	}
	b := p.Append(nil, v)
	h, n, err := packet.DecodeFixedHeader(b)
	if err != nil {
		return publishTemplate{}, err
	}
	var check packet.Publish // the codec must read back what it wrote
	if err := packet.DecodePublish(h, b[n:], v, &check); err != nil {
		return publishTemplate{}, fmt.Errorf("PUBLISH template: %w", err)
	}
	t := publishTemplate{b: b, payloadOff: len(b) - size, pidOff: -1}
	if qos > 0 {
		t.pidOff = n + 2 + len(topic) // [MQTT-3.3.2-1]: topic name, then packet identifier
	}
	return t, nil
}
