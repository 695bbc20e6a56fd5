package tokens

import (
	"bytes"
	"crypto/rand"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/turnstilemq/turnstile/internal/clock"
	"github.com/turnstilemq/turnstile/internal/logbuf"
	"github.com/turnstilemq/turnstile/internal/store"
)

// memRecords is store.Records in memory.
type memRecords struct {
	mu sync.Mutex
	m  map[string]map[string][]byte
}

var _ store.Records = (*memRecords)(nil)

func newMemRecords() *memRecords { return &memRecords{m: map[string]map[string][]byte{}} }

func (r *memRecords) PutRecord(ns, key string, val []byte) store.Ticket {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m[ns] == nil {
		r.m[ns] = map[string][]byte{}
	}
	r.m[ns][key] = bytes.Clone(val)
	return 0
}

func (r *memRecords) DeleteRecord(ns, key string) store.Ticket {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.m[ns], key)
	return 0
}

func (r *memRecords) LoadRecords(ns string, fn func(key string, val []byte) error) error {
	r.mu.Lock()
	keys := slices.Sorted(maps.Keys(r.m[ns]))
	vals := make([][]byte, len(keys))
	for i, k := range keys {
		vals[i] = bytes.Clone(r.m[ns][k])
	}
	r.mu.Unlock()
	for i, k := range keys {
		if err := fn(k, vals[i]); err != nil {
			return err
		}
	}
	return nil
}

// contains reports whether any stored key or value holds s.
func (r *memRecords) contains(s string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range r.m {
		for k, v := range m {
			if strings.Contains(k, s) || bytes.Contains(v, []byte(s)) {
				return true
			}
		}
	}
	return false
}

func (r *memRecords) count(ns string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.m[ns])
}

// fakeOwners is Owners over a map of users and a set of (user, vhost) accesses.
type fakeOwners struct {
	mu     sync.Mutex
	ids    map[string]string
	access map[[2]string]bool
}

func newOwners() *fakeOwners {
	return &fakeOwners{ids: map[string]string{}, access: map[[2]string]bool{}}
}

func (o *fakeOwners) add(user, id string, vhosts ...string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.ids[user] = id
	for _, v := range vhosts {
		o.access[[2]string{user, v}] = true
	}
}

func (o *fakeOwners) del(user string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.ids, user)
}

func (o *fakeOwners) revokeAccess(user, vhost string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.access, [2]string{user, vhost})
}

func (o *fakeOwners) UserID(name string) (string, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	id, ok := o.ids[name]
	return id, ok
}

func (o *fakeOwners) HasAccess(user, vhost string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.access[[2]string{user, vhost}]
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// env is a service with its fakes: user "alice" (id u1) with access to vhost "mqtt-1", one
// AccessKey of hers.
type env struct {
	s      *Service
	o      Options
	clk    *clock.Fake
	st     *memRecords
	owners *fakeOwners
	logs   *logbuf.Buffer
	akid   string
	secret string
}

func newEnv(t testing.TB, tweak ...func(*Options)) *env {
	t.Helper()
	e := &env{clk: clock.NewFake(t0), st: newMemRecords(), owners: newOwners(), logs: &logbuf.Buffer{}}
	e.owners.add("alice", "u1", "mqtt-1")
	key := make([]byte, MasterKeySize)
	rand.Read(key)
	e.o = Options{Clock: e.clk, Store: e.st, MasterKey: key, Owners: e.owners,
		Logger: slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	for _, f := range tweak {
		f(&e.o)
	}
	e.s = e.reopen(t)
	var err error
	e.akid, e.secret, err = e.s.CreateAccessKey("alice", "mqtt-1")
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// reopen makes a new Service over the same store, master key and clock: a restart.
func (e *env) reopen(t testing.TB) *Service {
	t.Helper()
	s, err := New(e.o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// apply issues a token or fails the test.
func (e *env) apply(t testing.TB, typ string, ttl time.Duration, resources ...string) *Issued {
	t.Helper()
	iss, err := e.s.ApplyToken(e.akid, "mqtt-1", resources, typ, e.clk.Now().Add(ttl))
	if err != nil {
		t.Fatal(err)
	}
	return iss
}
