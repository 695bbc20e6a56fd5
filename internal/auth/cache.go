package auth

import (
	"container/list"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"sync"
	"time"
)

// Verification cache defaults.
const (
	DefaultCacheTTL  = 30 * time.Second
	DefaultCacheSize = 10000
)

// verifyCache remembers successful password verifications for a short time, so that a reconnect
// storm does not run bcrypt once per client. An entry is the HMAC-SHA256, under a random key
// drawn per process, of (user, password, algorithm, stored hash): the cache holds no password
// and nothing that can be checked against one offline, and a new password (a new hash) misses.
//
// Each field is length-prefixed rather than NUL-separated: MQTT passwords are binary data and
// may contain NUL, so separators alone would not make the encoding injective.
//
// Entries expire ttl after the verification (a hit does not extend them). The cache holds at
// most max entries; when full, the oldest is dropped. Because every entry lives exactly ttl,
// insertion order is expiry order, and the list is both.
type verifyCache struct {
	ttl time.Duration
	max int

	secret [32]byte // the per-process HMAC key

	mu      sync.Mutex
	entries map[[sha256.Size]byte]*list.Element
	order   list.List // of *cacheEntry, newest at the front
}

type cacheEntry struct {
	key     [sha256.Size]byte
	expires time.Time
}

func newVerifyCache(ttl time.Duration, max int) *verifyCache {
	c := &verifyCache{ttl: ttl, max: max, entries: make(map[[sha256.Size]byte]*list.Element)}
	if _, err := rand.Read(c.secret[:]); err != nil { // never fails on supported platforms
		panic("auth: no randomness for the verification cache key: " + err.Error())
	}
	return c
}

// sum computes the cache key, outside the lock.
func (c *verifyCache) sum(user string, pw []byte, alg, stored string) [sha256.Size]byte {
	return credentialSum(&c.secret, user, pw, alg, stored)
}

// credentialSum is the HMAC-SHA256 under secret of the length-prefixed user, password,
// algorithm and stored hash: a name for one credential check that reveals nothing of it.
func credentialSum(secret *[32]byte, user string, pw []byte, alg, stored string) (k [sha256.Size]byte) {
	mac := hmac.New(sha256.New, secret[:])
	var n [4]byte
	field := func(b []byte) {
		binary.BigEndian.PutUint32(n[:], uint32(len(b)))
		mac.Write(n[:])
		mac.Write(b)
	}
	field([]byte(user))
	field(pw)
	field([]byte(alg))
	field([]byte(stored))
	mac.Sum(k[:0])
	return k
}

// hit reports whether this exact (user, password, hash) verified successfully within ttl of now.
func (c *verifyCache) hit(user string, pw []byte, alg, stored string, now time.Time) bool {
	k := c.sum(user, pw, alg, stored)
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[k]
	if !ok {
		return false
	}
	if !now.Before(e.Value.(*cacheEntry).expires) {
		c.remove(e)
		return false
	}
	return true
}

// add records a successful verification at now.
func (c *verifyCache) add(user string, pw []byte, alg, stored string, now time.Time) {
	k := c.sum(user, pw, alg, stored)
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[k]; ok {
		c.remove(e)
	}
	// Drop what has expired (the back of the list), then the oldest while full.
	for e := c.order.Back(); e != nil && (len(c.entries) >= c.max || !now.Before(e.Value.(*cacheEntry).expires)); e = c.order.Back() {
		c.remove(e)
	}
	c.entries[k] = c.order.PushFront(&cacheEntry{key: k, expires: now.Add(c.ttl)})
}

// remove drops e; mu held.
func (c *verifyCache) remove(e *list.Element) {
	delete(c.entries, e.Value.(*cacheEntry).key)
	c.order.Remove(e)
}

// len returns the number of entries, expired ones included.
func (c *verifyCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
