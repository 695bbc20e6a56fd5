package broker_test

// Attacks on the login limiter through the whole program (docs/security.md, "Logins"): password
// guesses in parallel from one address, the owner logging in from another address meanwhile, and
// a correct login from the attacked address, with real clients (paho.golang v5, paho.mqtt.golang
// 3.1.1) and raw CONNECTs where a client library would not send 40 in parallel.

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/turnstilemq/turnstile/internal/app"
	"github.com/turnstilemq/turnstile/internal/auth"
	"github.com/turnstilemq/turnstile/internal/clock"
	"github.com/turnstilemq/turnstile/internal/event"
	"github.com/turnstilemq/turnstile/internal/packet"
)

// dialFrom dials addr from the local address local ("127.0.0.2": every 127/8 address is
// loopback on Linux, so a test can play several source addresses).
func dialFrom(t *testing.T, local, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: waitTimeout}
	if local != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(local)}
	}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, local, err)
	}
	return conn
}

// rawLoginConnect builds CONNECT with a user name and a password (clean start, keep alive 30).
func rawLoginConnect(v packet.Version, id, user, password string) []byte {
	flags := byte(0x02 | 0x80 | 0x40)
	body := [][]byte{mstr("MQTT"), {byte(v), flags}, be16(30)}
	if v == packet.V5 {
		body = append(body, withLen(nil))
	}
	body = append(body, mstr(id), mstr(user), mstr(password))
	return frame(0x10, body...)
}

// loginResult is how one raw login attempt ended: the CONNACK's code (v5 reason code, or the
// 3.1.1 return code) and when it came, measured from the start of the attack.
type loginResult struct {
	code byte
	at   time.Duration
	err  error
}

// rawLogin sends one CONNECT from local and waits for the CONNACK.
func rawLogin(t *testing.T, local, addr string, v packet.Version, id, user, password string, start time.Time) loginResult {
	conn := dialFrom(t, local, addr)
	defer conn.Close()
	c := &rawClient{t: t, conn: conn, v: v}
	c.rd = newReader(conn)
	c.send(rawLoginConnect(v, id, user, password))
	p, err := c.read(15 * time.Second)
	if err != nil {
		return loginResult{err: err, at: time.Since(start)}
	}
	ack, ok := p.p.(*packet.Connack)
	if !ok {
		return loginResult{err: fmt.Errorf("got %s, want CONNACK", p), at: time.Since(start)}
	}
	code := byte(ack.ReasonCode)
	if v != packet.V5 {
		code = packet.ConnackReturnCode311(ack.ReasonCode) // the decoder maps 3.1.1 codes to reason codes
	}
	return loginResult{code: code, at: time.Since(start)}
}

// addProdUser creates a local user hashed at bcrypt's default cost, as in production (each
// checked guess costs what it costs there), with full permissions on vhost "/".
func addProdUser(t *testing.T, b *testBroker, name, password string) {
	t.Helper()
	u, err := auth.NewUser(name, []byte(password), auth.Hasher{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Dir().PutUser(u); err != nil {
		t.Fatal(err)
	}
	grantAll(t, b, name, "/")
}

// guessAttack sends n wrong passwords for user in parallel from local and returns the results,
// sorted by the time of their answer.
func guessAttack(t *testing.T, addr, local, user string, n int) []loginResult {
	t.Helper()
	start := time.Now()
	out := make([]loginResult, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			out[i] = rawLogin(t, local, addr, packet.V5, fmt.Sprintf("guess-%d", i), user, fmt.Sprintf("guess-%d", i), start)
		})
	}
	wg.Wait()
	sort.Slice(out, func(i, j int) bool { return out[i].at < out[j].at })
	return out
}

// TestLoginGuessingAttack is the attack of issue 11 kept as a test: 40 password guesses in
// parallel from one address. Before the fix all 40 passwords were checked within 1.3 s. Now
// attempts are counted when they start: after a handful, each further guess waits twice as long
// as the one before, and a guess that would wait more than 5 s is refused at once with 0x9F
// Connection rate exceeded, its password never checked. The owner, logging in from another
// address during the attack, is not slowed at all; a correct login from the attacked address is
// delayed or refused with 0x9F (3.1.1: return code 3), never answered as a bad password.
func TestLoginGuessingAttack(t *testing.T) {
	t.Parallel()
	addr, b := startBroker(t, secure)
	addProdUser(t, b, "alice", "correct horse battery staple")

	const n = 40
	results := guessAttack(t, addr, "127.0.0.1", "alice", n)
	checked, refused := 0, 0
	var lastChecked time.Duration
	for _, r := range results {
		switch {
		case r.err != nil:
			t.Fatalf("guess: %v", r.err)
		case r.code == byte(packet.BadUserNameOrPassword):
			checked++
			lastChecked = r.at
		case r.code == byte(packet.ConnectionRateExceeded):
			refused++
		default:
			t.Fatalf("guess answered %#x", r.code)
		}
	}
	t.Logf("%d parallel guesses: %d passwords checked (the last after %v), %d refused with 0x9F", n, checked, lastChecked.Round(time.Millisecond), refused)
	// 5 attempts are free, then delays of 0.1, 0.2, 0.4, 0.8, 1.6 s (3.1 s in all) fit under
	// the 5 s cap: at most 10 guesses are checked, and the last of them not before 3 s.
	if checked > 10 || refused < n-10 {
		t.Fatalf("%d of %d parallel guesses were checked, want at most 10", checked, n)
	}
	if checked > 5 && lastChecked < 3*time.Second {
		t.Fatalf("the %d checked guesses were answered within %v: not slowed", checked, lastChecked)
	}

	// The owner, from another address, is not slowed by the attacker's failures: the limiter
	// does not delay its login (no LoginDelayed event), which takes what bcrypt takes.
	delayed := b.app.Counters().Total(event.LoginDelayed)
	if delayed != uint64(checked-5) {
		t.Fatalf("%d login delays reported, want %d (every checked guess after the 5th)", delayed, checked-5)
	}
	start := time.Now()
	c := connectV5From(t, "127.0.0.2", addr, &paho.Connect{ClientID: "owner", CleanStart: true, KeepAlive: 30,
		Username: "alice", UsernameFlag: true, Password: []byte("correct horse battery staple"), PasswordFlag: true})
	t.Logf("the owner's login from another address during the attack took %v", time.Since(start).Round(time.Millisecond))
	if n := b.app.Counters().Total(event.LoginDelayed); n != delayed {
		t.Fatalf("the owner's login from another address was delayed by the limiter")
	}
	c.disconnect(0)

	// A correct login from the attacked address: delayed, or refused as a rate limit; never a
	// bad password (a client such as MQTT.js stops reconnecting on that).
	r := rawLogin(t, "127.0.0.1", addr, packet.V5, "owner-at-attacked", "alice", "correct horse battery staple", time.Now())
	t.Logf("a correct v5 login from the attacked address: CONNACK %#x after %v", r.code, r.at.Round(time.Millisecond))
	if r.err != nil || (r.code != 0 && r.code != byte(packet.ConnectionRateExceeded)) {
		t.Fatalf("correct v5 login from the attacked address: code %#x, %v; want 0x00 or 0x9F", r.code, r.err)
	}
	r = rawLogin(t, "127.0.0.1", addr, packet.V311, "owner-at-attacked-3", "alice", "correct horse battery staple", time.Now())
	if r.err != nil || (r.code != 0 && r.code != 3) {
		t.Fatalf("correct 3.1.1 login from the attacked address: return code %d, %v; want 0 or 3", r.code, r.err)
	}
	// The same with real clients: paho.golang (v5) and paho.mqtt.golang (3.1.1).
	if code := v5LoginFrom(t, "127.0.0.1", addr, "owner-paho5", "alice", "correct horse battery staple"); code != 0 && code != 0x9F {
		t.Fatalf("paho.golang correct login from the attacked address: %#x, want 0x00 or 0x9F", code)
	}
	if rc := v3LoginFrom(t, "127.0.0.1", addr, "owner-paho3", "alice", "correct horse battery staple"); rc != 0 && rc != 3 {
		t.Fatalf("paho.mqtt.golang correct login from the attacked address: return code %d, want 0 or 3", rc)
	}

	// Every checked guess, delay and refusal was an event.
	cnt := b.app.Counters()
	if f := cnt.ByReason(event.LoginFailed); f[event.ReasonBadCredentials] < uint64(checked) || f[event.ReasonRateLimited] < uint64(refused) {
		t.Fatalf("login failures by reason %v; want %d bad credentials and %d rate limited", f, checked, refused)
	}
}

// connectV5From is connectV5 over a connection from the local address local.
func connectV5From(t *testing.T, local, addr string, cp *paho.Connect) *v5Client {
	t.Helper()
	c := &v5Client{t: t, id: cp.ClientID, conn: dialFrom(t, local, addr), msgs: make(chan *paho.Publish, 64),
		discs: make(chan *paho.Disconnect, 4)}
	c.c = paho.NewClient(paho.ClientConfig{Conn: c.conn,
		OnServerDisconnect: func(d *paho.Disconnect) {
			select {
			case c.discs <- d:
			default:
			}
		}})
	t.Cleanup(func() { c.conn.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	ack, err := c.c.Connect(ctx, cp)
	c.ack = ack
	if err != nil {
		t.Fatalf("v5 connect %q from %s: %v (connack %+v)", cp.ClientID, local, err, ack)
	}
	return c
}

// v5LoginFrom connects a paho.golang v5 client from local with a user name and a password and
// returns the CONNACK reason code.
func v5LoginFrom(t *testing.T, local, addr, id, user, password string) byte {
	t.Helper()
	conn := dialFrom(t, local, addr)
	defer conn.Close()
	c := paho.NewClient(paho.ClientConfig{Conn: conn})
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	ack, err := c.Connect(ctx, &paho.Connect{ClientID: id, CleanStart: true, KeepAlive: 30, Username: user, UsernameFlag: true,
		Password: []byte(password), PasswordFlag: true})
	if ack == nil {
		t.Fatalf("v5 login from %s: no CONNACK: %v", local, err)
	}
	if ack.ReasonCode == 0 {
		c.Disconnect(&paho.Disconnect{})
	}
	return ack.ReasonCode
}

// v3LoginFrom connects a paho.mqtt.golang 3.1.1 client from local with a user name and a
// password and returns the CONNACK return code.
func v3LoginFrom(t *testing.T, local, addr, id, user, password string) byte {
	t.Helper()
	o := mqtt.NewClientOptions().AddBroker("tcp://" + addr).SetProtocolVersion(4).SetClientID(id).
		SetUsername(user).SetPassword(password).SetAutoReconnect(false).SetConnectRetry(false).
		SetConnectTimeout(15 * time.Second).
		SetCustomOpenConnectionFn(func(u *url.URL, _ mqtt.ClientOptions) (net.Conn, error) {
			d := net.Dialer{Timeout: waitTimeout, LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
			return d.Dial("tcp", u.Host)
		})
	c := mqtt.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(20 * time.Second) {
		t.Fatal("3.1.1 connect timed out")
	}
	defer c.Disconnect(0)
	return tok.(*mqtt.ConnectToken).ReturnCode()
}

func newReader(c net.Conn) *bufio.Reader { return bufio.NewReader(c) }

// TestLoginGuessingSustained measures the guessing rate an attacker sustains from one address
// with 8 connections in a loop for 4 s: before the fix 17 passwords were checked and every other
// attempt (46,788 of them, unthrottled) was answered 0x86 as if it had been; now at most the 10
// of the first burst are checked and the rest are refused with 0x9F at once. Each connection
// pauses 2 ms between attempts, so that the test does not starve the package's other tests.
func TestLoginGuessingSustained(t *testing.T) {
	t.Parallel()
	addr, b := startBroker(t, secure)
	addProdUser(t, b, "alice", "correct horse battery staple")
	const window = 4 * time.Second
	start := time.Now()
	var mu sync.Mutex
	checked, refused := 0, 0
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := 0; time.Since(start) < window; i++ {
				time.Sleep(2 * time.Millisecond)
				r := rawLogin(t, "127.0.0.1", addr, packet.V5, fmt.Sprintf("g-%d-%d", w, i), "alice", fmt.Sprintf("wrong-%d-%d", w, i), start)
				mu.Lock()
				switch {
				case r.err != nil:
					t.Errorf("guess: %v", r.err)
				case r.at > window:
				case r.code == byte(packet.BadUserNameOrPassword):
					checked++
				case r.code == byte(packet.ConnectionRateExceeded):
					refused++
				default:
					t.Errorf("guess answered %#x", r.code)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	t.Logf("sustained guessing for %v: %d passwords checked (%.1f per second), %d refused with 0x9F",
		window, checked, float64(checked)/window.Seconds(), refused)
	if checked > 10 {
		t.Fatalf("%d guesses checked in %v, want at most 10", checked, window)
	}
}

// logCounter is a slog handler that counts records by message and level.
type logCounter struct {
	mu    sync.Mutex
	n     map[string]int
	attrs map[string][]slog.Attr // of the last record of each message
}

func newLogCounter() *logCounter {
	return &logCounter{n: map[string]int{}, attrs: map[string][]slog.Attr{}}
}

func (l *logCounter) Enabled(context.Context, slog.Level) bool { return true }
func (l *logCounter) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logCounter) WithGroup(string) slog.Handler            { return l }
func (l *logCounter) Handle(_ context.Context, r slog.Record) error {
	var attrs []slog.Attr
	r.Attrs(func(a slog.Attr) bool { attrs = append(attrs, a); return true })
	l.mu.Lock()
	l.n[r.Level.String()+" "+r.Message]++
	l.attrs[r.Message] = attrs
	l.mu.Unlock()
	return nil
}

func (l *logCounter) count(key string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n[key]
}

func (l *logCounter) attr(msg, key string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, a := range l.attrs[msg] {
		if a.Key == key {
			return a.Value.String()
		}
	}
	return ""
}

// TestLoginRefusalLogIsBounded: a client looping on a wrong password wrote a WARN line per
// refusal (tens of thousands in a few seconds). Now the first refusal of a source is logged, the
// rest of the minute is counted, and the count is logged once when the minute ends; every
// refusal is still an event.
func TestLoginRefusalLogIsBounded(t *testing.T) {
	t.Parallel()
	logs := newLogCounter()
	clk := clock.NewFake(time.Now())
	addr, b := startBrokerWith(t, app.Options{Logger: slog.New(logs), Clock: clk}, "", secure)
	addUser(t, b, "alice", "pw")
	grantAll(t, b, "alice", "/")
	// Eight connections in a loop, as a misconfigured fleet behind one address would.
	start := time.Now()
	var mu sync.Mutex
	attempts := 0
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := 0; time.Since(start) < 2*time.Second; i++ {
				time.Sleep(2 * time.Millisecond) // spare the package's other tests
				if r := rawLogin(t, "127.0.0.1", addr, packet.V5, fmt.Sprintf("loop-%d-%d", w, i), "alice", "wrong", start); r.err != nil {
					t.Error(r.err)
					return
				}
				mu.Lock()
				attempts++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	failed := b.app.Counters().Total(event.LoginFailed)
	t.Logf("%d refused logins in 2 s from one address: %d WARN lines", attempts, logs.count("WARN login refused"))
	if n := logs.count("WARN login refused"); n != 1 {
		t.Fatalf("%d WARN lines for %d refusals from one source, want 1", n, attempts)
	}
	if failed != uint64(attempts) {
		t.Fatalf("%d LoginFailed events for %d refusals", failed, attempts)
	}
	// Another source is logged on its own.
	rawLogin(t, "127.0.0.2", addr, packet.V5, "other-source", "alice", "wrong", start)
	if n := logs.count("WARN login refused"); n != 2 {
		t.Fatalf("another source: %d WARN lines, want 2", n)
	}
	clk.Advance(time.Minute)
	eventually(t, "the summary", func() bool { return logs.count("WARN login refusals suppressed") == 1 })
	if got := logs.attr("login refusals suppressed", "count"); got != fmt.Sprint(attempts-1) {
		t.Fatalf("summary count %s, want %d", got, attempts-1)
	}
}

// TestLoginPoolIsNotAnAttack: a connection pool (or a fleet behind one NAT address) opens 30
// connections at once with the same correct password, at the default bcrypt cost. Identical
// attempts in progress are checked and counted once (auth/flight.go), so every one is let in:
// counted one by one at their start they would have looked like 30 guesses (the 12th and later
// were refused with 0x9F before). 3.1.1 and 5.0 clients mixed.
func TestLoginPoolIsNotAnAttack(t *testing.T) {
	t.Parallel()
	addr, srv := startBroker(t, nil)
	addProdUser(t, srv, "pool", "pool-secret")
	const n = 30
	codes := make([]byte, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if i%2 == 0 {
				codes[i] = v5LoginFrom(t, "127.0.0.9", addr, fmt.Sprintf("pool-%d", i), "pool", "pool-secret")
			} else {
				codes[i] = v3LoginFrom(t, "127.0.0.9", addr, fmt.Sprintf("pool-%d", i), "pool", "pool-secret")
			}
		})
	}
	wg.Wait()
	for i, c := range codes {
		if c != 0 {
			t.Fatalf("connection %d of the pool: CONNACK %#x, want 0 (all: %v)", i, c, codes)
		}
	}
}
