package mgmt

// The harness of the API tests: a whole broker (store in t.TempDir(), MQTT on an ephemeral
// 127.0.0.1 port) with the API served by httptest over real HTTP, a set of users with each tag,
// and paho.golang MQTT 5.0 clients.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/bcrypt"

	"github.com/turnstilemq/turnstile/internal/acl"
	"github.com/turnstilemq/turnstile/internal/auth"
	"github.com/turnstilemq/turnstile/internal/ban"
	"github.com/turnstilemq/turnstile/internal/broker"
	"github.com/turnstilemq/turnstile/internal/config"
	"github.com/turnstilemq/turnstile/internal/directory"
	"github.com/turnstilemq/turnstile/internal/event"
	"github.com/turnstilemq/turnstile/internal/store"
)

const waitTimeout = 5 * time.Second

// The users every test has; each one's password is its name + "-pw".
const (
	uAdmin = "admin"   // administrator, permissions on "/"
	uMon   = "mon"     // monitoring
	uMgr   = "mgr"     // management, permissions on vhost "tenant" only
	uPlain = "plain"   // no tag, permissions on "/"
	uNone  = ""        // no credentials
	uBad   = "badpass" // admin's name with a wrong password (see do)
	uGhost = "ghost"   // a user that does not exist
)

func pw(user string) string { return user + "-pw" }

type env struct {
	t       *testing.T
	cfg     *config.Config
	log     *slog.Logger
	srv     *broker.Server
	dir     *directory.Directory
	chain   *auth.Chain
	count   *event.Counters
	commits *store.CommitHistogram
	h       *handler
	reg     *prometheus.Registry
	ts      *httptest.Server
	mqtt    string    // the broker's MQTT address; "" when started without a listener
	bans    *ban.List // the banned list, wired to the broker as package app wires it
}

// testChain is the authentication chain of the test program, as package app builds it from
// cfg: local users (with cfg's loopback-only default user), then anonymous access when on.
func testChain(t *testing.T, cfg *config.Config, users *auth.Users) *auth.Chain {
	t.Helper()
	restricted := ""
	if cfg.Main.DefaultUserOnlyLoopback {
		restricted = cfg.Main.DefaultUser
	}
	local, err := auth.NewLocal(users, auth.LocalOptions{DefaultUserOnlyLoopback: restricted,
		Hasher: auth.Hasher{BcryptCost: bcrypt.MinCost}})
	if err != nil {
		t.Fatal(err)
	}
	providers := []auth.Provider{local}
	if cfg.MQTT.AllowAnonymous {
		providers = append(providers, &auth.Anonymous{User: cfg.MQTT.AnonymousUser, Users: users, DefaultUserOnlyLoopback: restricted})
	}
	// The API tests make many failed logins from 127.0.0.1 on purpose; the limiter the program
	// runs (DefaultRateLimitPolicy) is proven by the login-limit tests, not here.
	return auth.NewChain(providers...).WithRateLimiter(auth.NewRateLimiter(auth.RateLimitPolicy{Threshold: 1 << 20, SourceThreshold: 1 << 20}, nil))
}

// startEnv starts a broker and the API, wired as package app wires them (app imports this
// package, so the test assembles the parts itself). mod changes the configuration (may be
// nil); listen says whether the broker gets an MQTT listener.
func startEnv(t *testing.T, mod func(*config.Config), listen bool) *env {
	t.Helper()
	cfg := config.Default()
	cfg.MQTT.Port = 0
	cfg.MQTT.WSPort = 0
	cfg.MQTT.SysInterval = 0
	cfg.MQTT.AllowAnonymous = true
	cfg.Main.DataDir = t.TempDir()
	cfg.Main.DefaultPassword = "" // no guest user: the tests make their own
	if mod != nil {
		mod(cfg)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if os.Getenv("TURNSTILE_TEST_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	commits := &store.CommitHistogram{}
	st, err := store.Open(cfg.Main.DataDir, store.Options{Logger: log, OnCommit: commits.Observe})
	if err != nil {
		t.Fatal(err)
	}
	dir := directory.New(directory.Options{Store: st, DefaultVhost: cfg.MQTT.DefaultVhost, AnonymousUser: cfg.MQTT.AnonymousUser,
		PermissionCheckEnabled: cfg.MQTT.PermissionCheckEnabled, Logger: log, Hasher: auth.Hasher{BcryptCost: bcrypt.MinCost}})
	if err := dir.Load(); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, cfg: cfg, dir: dir, count: &event.Counters{}, commits: commits, reg: prometheus.NewRegistry()}
	e.chain = testChain(t, cfg, dir.Users())
	if e.bans, err = ban.New(ban.Options{Store: st, Logger: log}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.bans.Close)
	m := &cfg.MQTT
	srv, err := broker.New(broker.Options{
		Limits: broker.Limits{MaxInflight: m.MaxInflightMessages, MaxPacket: m.MaxPacketSize, ReceiveMax: m.ReceiveMaximum,
			MaxQueued: m.MaxQueuedMessages, MaxQueuedBytes: int(m.MaxQueuedBytes), MaxTopicAlias: m.MaxTopicAlias,
			RetainAvailable: true, AllowEmptyClientID: true},
		DefaultVhost: m.DefaultVhost, Vhosts: dir.Vhosts(), Authenticator: e.chain, Authorizer: dir.Checker(),
		Standing: dir, Store: st, Logger: log, Observer: e.count, Version: "test", Quotas: dir, Bans: e.bans})
	if err != nil {
		t.Fatalf("broker.New: %v", err)
	}
	dir.SetHooks(directory.Hooks{VhostAdded: srv.AddVhost, VhostDeleted: func(n string) { srv.DeleteVhost(n) },
		UserDeleted: srv.DropSubject})
	dir.Checker().OnChange(srv.RecheckSubscriptions)
	e.srv = srv
	e.bans.OnBan(func(ban.Ban) { srv.EnforceBans() })
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		if err := srv.Close(ctx); err != nil {
			t.Errorf("broker Close: %v", err)
		}
		st.Close()
	})
	if listen {
		e.listen()
	}
	if _, err := dir.AddVhost("tenant"); err != nil {
		t.Fatal(err)
	}
	for _, u := range []struct {
		name string
		tags []auth.Tag
	}{{uAdmin, []auth.Tag{auth.TagAdministrator}}, {uMon, []auth.Tag{auth.TagMonitoring}},
		{uMgr, []auth.Tag{auth.TagManagement}}, {uPlain, nil}} {
		e.addUser(u.name, u.tags...)
	}
	for _, p := range []acl.Permission{{User: uAdmin, Vhost: "/"}, {User: uPlain, Vhost: "/"}, {User: uMgr, Vhost: "tenant"}} {
		p.Configure, p.Write, p.Read = ".*", ".*", ".*"
		if err := dir.SetPermission(p); err != nil {
			t.Fatal(err)
		}
	}
	e.log = log
	e.serveAPI(t)
	return e
}

// serveAPI builds the handler from e.cfg, on e.reg, and serves it.
func (e *env) serveAPI(t *testing.T) {
	e.h = newHandler(Options{Broker: e.srv, Directory: e.dir, Auth: e.chain, Counters: e.count, Observer: e.count, Commits: e.commits,
		Logger: e.log, Registry: e.reg, Bind: e.cfg.Mgmt.Bind, Bans: e.bans,
		AllowedHosts: strings.Split(e.cfg.Mgmt.AllowedHosts, ",")})
	e.h.rates.every = 0 // every request is a sample
	e.ts = httptest.NewServer(e.h)
	t.Cleanup(e.ts.Close)
}

// with returns e for a subtest: the helpers fail t.
func (e *env) with(t *testing.T) *env {
	c := *e
	c.t = t
	return &c
}

// handlerWith returns e with a second API over the same broker, its configuration changed by
// mod (its chain built from it), on a fresh registry; it is closed when e.t's test ends.
func (e *env) handlerWith(mod func(*config.Config)) *env {
	c := *e
	cfg := *e.cfg
	mod(&cfg)
	c.cfg, c.reg = &cfg, prometheus.NewRegistry()
	c.chain = testChain(e.t, &cfg, e.dir.Users())
	c.serveAPI(e.t)
	return &c
}

// listen gives the broker an MQTT listener on an ephemeral port.
func (e *env) listen() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.t.Fatal(err)
	}
	e.mqtt = ln.Addr().String()
	go e.srv.Serve(ln, broker.Listener{Name: "tcp"})
	eventually(e.t, "the broker listening", e.srv.Ready)
}

func (e *env) addUser(name string, tags ...auth.Tag) {
	e.t.Helper()
	u, err := auth.NewUser(name, []byte(pw(name)), auth.Hasher{BcryptCost: bcrypt.MinCost}, tags...)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.dir.PutUser(u); err != nil {
		e.t.Fatal(err)
	}
}

// response is what a request got.
type response struct {
	status int
	header http.Header
	body   []byte
}

// json decodes the body into v, failing the test when it is not JSON.
func (r response) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("response body %q: %v", r.body, err)
	}
}

// apiErr decodes an error body and checks its shape.
func (r response) apiErr(t *testing.T) errorBody {
	t.Helper()
	var b errorBody
	r.json(t, &b)
	if b.Error == "" || b.Reason == "" {
		t.Fatalf("error body %s: want both error and reason", r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("error Content-Type %q", ct)
	}
	return b
}

// do sends a request as user (uNone: no credentials; uBad: admin with a wrong password). body
// is sent as is when it is a string or []byte, else as JSON; nil sends none. mods change the
// request before it is sent.
func (e *env) do(method, path, user string, body any, mods ...func(*http.Request)) response {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, e.ts.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	switch user {
	case uNone:
	case uBad:
		req.SetBasicAuth(uAdmin, "wrong")
	default:
		req.SetBasicAuth(user, pw(user))
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, m := range mods {
		m(req)
	}
	res, err := e.ts.Client().Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return response{status: res.StatusCode, header: res.Header, body: data}
}

// must sends a request and fails the test unless the status is want.
func (e *env) must(want int, method, path, user string, body any, mods ...func(*http.Request)) response {
	e.t.Helper()
	r := e.do(method, path, user, body, mods...)
	if r.status != want {
		e.t.Fatalf("%s %s as %q: status %d, want %d; body %s", method, path, user, r.status, want, r.body)
	}
	return r
}

// scrape fetches /metrics and returns each sample line's value by series ("name{labels}").
func (e *env) scrape() map[string]float64 {
	e.t.Helper()
	r := e.must(200, "GET", "/metrics", uNone, nil)
	out := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(r.body))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			e.t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// mqttClient is a paho.golang MQTT 5.0 client.
type mqttClient struct {
	t     *testing.T
	c     *paho.Client
	conn  net.Conn
	msgs  chan *paho.Publish
	discs chan *paho.Disconnect
}

// connect connects a v5 client to the broker; cp.ClientID and the rest are the test's.
func (e *env) connect(cp *paho.Connect) (*mqttClient, error) {
	e.t.Helper()
	conn, err := net.DialTimeout("tcp", e.mqtt, waitTimeout)
	if err != nil {
		e.t.Fatal(err)
	}
	m := &mqttClient{t: e.t, conn: conn, msgs: make(chan *paho.Publish, 100), discs: make(chan *paho.Disconnect, 1)}
	m.c = paho.NewClient(paho.ClientConfig{
		Conn: conn,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			select {
			case m.msgs <- pr.Packet:
			default:
			}
			return true, nil
		}},
		OnServerDisconnect: func(d *paho.Disconnect) {
			select {
			case m.discs <- d:
			default:
			}
		},
	})
	e.t.Cleanup(func() { conn.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if cp.KeepAlive == 0 {
		cp.KeepAlive = 30
	}
	_, err = m.c.Connect(ctx, cp)
	return m, err
}

func (e *env) mustConnect(cp *paho.Connect) *mqttClient {
	e.t.Helper()
	m, err := e.connect(cp)
	if err != nil {
		e.t.Fatalf("connect %q: %v", cp.ClientID, err)
	}
	return m
}

func (m *mqttClient) subscribe(filter string, qos byte) {
	m.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if _, err := m.c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: filter, QoS: qos}}}); err != nil {
		m.t.Fatalf("subscribe %q: %v", filter, err)
	}
}

// publish publishes and returns the PUBACK's reason code (0 for QoS 0).
func (m *mqttClient) publish(topic string, qos byte, retain bool, payload string) byte {
	m.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	r, err := m.c.Publish(ctx, &paho.Publish{Topic: topic, QoS: qos, Retain: retain, Payload: []byte(payload)})
	if err != nil && (r == nil || r.ReasonCode < 0x80) {
		m.t.Fatalf("publish %q: %v", topic, err)
	}
	if r == nil {
		return 0
	}
	return r.ReasonCode
}

func (m *mqttClient) expectMsg() *paho.Publish {
	m.t.Helper()
	select {
	case p := <-m.msgs:
		return p
	case <-time.After(waitTimeout):
		m.t.Fatal("no message within the timeout")
		return nil
	}
}

func (m *mqttClient) expectDisconnect() byte {
	m.t.Helper()
	select {
	case d := <-m.discs:
		return d.ReasonCode
	case <-time.After(waitTimeout):
		m.t.Fatal("no DISCONNECT from the server within the timeout")
		return 0
	}
}
