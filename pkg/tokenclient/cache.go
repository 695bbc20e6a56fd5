package tokenclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// cacheKey is the permission set: actions and the sorted resources.
func cacheKey(resources []string, actions string) string {
	return actions + "|" + strings.Join(resources, ",")
}

// Cached returns the cached token for the permission set if it is still valid now (whatever
// the refresh lead).
func (c *Client) Cached(resources []string, actions string) (Token, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.cache[cacheKey(normalize(resources), actions)]
	if !ok || !c.now().Before(t.ExpireAt) {
		return Token{}, false
	}
	return t, true
}

func (c *Client) keyLock(key string) *sync.Mutex {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.inflight[key]
	if m == nil {
		m = &sync.Mutex{}
		c.inflight[key] = m
	}
	return m
}

// Get returns a token for the permission set: the cached one while it is valid for longer than
// the refresh lead, otherwise a new one applied for Config.Lifetime and cached. When the token
// service cannot be reached (see Unreachable), Get returns the cached token that is still
// valid, with a nil error; fromCache tells whether the token came from the cache. A refusal of
// the service (a 4xx answer) is returned as an error.
func (c *Client) Get(ctx context.Context, resources []string, actions string) (tok Token, fromCache bool, err error) {
	res := normalize(resources)
	key := cacheKey(res, actions)
	l := c.keyLock(key)
	l.Lock()
	defer l.Unlock()
	now := c.now()
	c.mu.Lock()
	cached, ok := c.cache[key]
	c.mu.Unlock()
	if ok && now.Add(c.cfg.RefreshBefore).Before(cached.ExpireAt) {
		return cached, true, nil
	}
	fresh, err := c.ApplyToken(ctx, res, actions, now.Add(c.cfg.Lifetime))
	if err != nil {
		if ok && now.Before(cached.ExpireAt) && Unreachable(err) {
			return cached, true, nil // local disaster recovery
		}
		return Token{}, false, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.putLocked(key, fresh)
	if err := c.saveLocked(); err != nil {
		return fresh, false, err
	}
	return fresh, false, nil
}

// RefreshDue applies for new tokens for every cached permission set whose token expires within
// the refresh lead, and drops expired entries. Call it periodically to keep the cache warm; it
// returns the first error met.
func (c *Client) RefreshDue(ctx context.Context) error {
	now := c.now()
	c.mu.Lock()
	var due []Token
	for _, t := range c.cache {
		if !now.Add(c.cfg.RefreshBefore).Before(t.ExpireAt) {
			due = append(due, t)
		}
	}
	c.mu.Unlock()
	var first error
	for _, t := range due {
		if _, _, err := c.Get(ctx, t.Resources, t.Actions); err != nil && first == nil {
			first = err
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, t := range c.cache {
		if !now.Before(t.ExpireAt) {
			delete(c.cache, k)
		}
	}
	if err := c.saveLocked(); err != nil && first == nil {
		first = err
	}
	return first
}

// putLocked adds an entry, evicting expired entries, then the soonest to expire, beyond
// MaxEntries. mu held.
func (c *Client) putLocked(key string, t Token) {
	c.cache[key] = t
	if len(c.cache) <= c.cfg.MaxEntries {
		return
	}
	now := c.now()
	for k, v := range c.cache {
		if !now.Before(v.ExpireAt) {
			delete(c.cache, k)
		}
	}
	for len(c.cache) > c.cfg.MaxEntries {
		var soonest string
		for k, v := range c.cache {
			if k != key && (soonest == "" || v.ExpireAt.Before(c.cache[soonest].ExpireAt)) {
				soonest = k
			}
		}
		delete(c.cache, soonest)
	}
}

type cacheFile struct {
	Version int              `json:"version"`
	Tokens  map[string]Token `json:"tokens"`
}

func (c *Client) loadCache() error {
	b, err := os.ReadFile(c.cfg.CacheFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("tokenclient: cache: %w", err)
	}
	var f cacheFile
	if err := json.Unmarshal(b, &f); err != nil || f.Version != 1 {
		return fmt.Errorf("tokenclient: cache %s is not a version 1 cache file", c.cfg.CacheFile)
	}
	now := c.now()
	for _, t := range f.Tokens {
		if t.Token != "" && now.Before(t.ExpireAt) {
			t.Resources = normalize(t.Resources)
			c.putLocked(cacheKey(t.Resources, t.Actions), t)
		}
	}
	return nil
}

// saveLocked writes the cache file atomically: a temporary file of mode 0600 in the same
// directory, synced, then renamed over the old one. mu held.
func (c *Client) saveLocked() error {
	if c.cfg.CacheFile == "" {
		return nil
	}
	b, err := json.Marshal(cacheFile{Version: 1, Tokens: c.cache})
	if err != nil {
		return err
	}
	dir := filepath.Dir(c.cfg.CacheFile)
	f, err := os.CreateTemp(dir, ".tokencache-*")
	if err != nil {
		return fmt.Errorf("tokenclient: cache: %w", err)
	}
	tmp := f.Name()
	err = f.Chmod(0o600)
	if err == nil {
		_, err = f.Write(b)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, c.cfg.CacheFile)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("tokenclient: writing the cache: %w", err)
	}
	return nil
}
