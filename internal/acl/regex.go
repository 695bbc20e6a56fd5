package acl

import (
	"hash/maphash"
	"regexp"
	"strings"
	"sync"
)

// matcher is a compiled permission regex with RabbitMQ's special cases decided once.
type matcher struct {
	kind matchKind
	re   *regexp.Regexp // kind == matchRegexp
}

type matchKind uint8

const (
	matchNever  matchKind = iota // "" and "^$": nothing (RabbitMQ special-cases "")
	matchAlways                  // ".*", "^.*", ".*$": everything, without running the regexp
	matchRegexp
)

// compileMatcher compiles a permission regex.
func compileMatcher(src string) (matcher, error) {
	switch src {
	case "", "^$":
		return matcher{kind: matchNever}, nil
	case ".*", "^.*", ".*$":
		// Each has an empty match at the start or the end of any string; "^.*$" is not here,
		// since without the s flag '.' stops at a newline.
		return matcher{kind: matchAlways}, nil
	}
	re, err := regexp.Compile(src)
	if err != nil {
		return matcher{}, err
	}
	return matcher{kind: matchRegexp, re: re}, nil
}

// match reports whether the regex matches s, unanchored.
func (m matcher) match(s string) bool {
	switch m.kind {
	case matchAlways:
		return true
	case matchRegexp:
		return m.re.MatchString(s)
	}
	return false
}

// variable is a topic-permission template variable.
type variable uint8

const (
	varNone variable = iota
	varUsername
	varVhost
	varClientID
)

var variables = [...]struct {
	name string
	v    variable
}{
	{"{username}", varUsername},
	{"{vhost}", varVhost},
	{"{client_id}", varClientID},
}

// part is a literal run of a template, or one variable.
type part struct {
	lit string
	v   variable
}

// rule is a compiled topic-permission regex: a plain matcher, or a template expanded per check.
type rule struct {
	matcher
	parts []part // nil: not templated
}

// compileRule compiles a topic-permission regex. A templated one is checked by compiling it
// raw and once expanded with sample values, so that a template that cannot compile is refused
// when set, not at every check.
func compileRule(src string) (rule, error) {
	parts := parseTemplate(src)
	if parts == nil {
		m, err := compileMatcher(src)
		return rule{matcher: m}, err
	}
	if _, err := regexp.Compile(src); err != nil {
		return rule{}, err
	}
	r := rule{parts: parts}
	if _, err := regexp.Compile(string(r.expand(nil, "user", "vhost", "client"))); err != nil {
		return rule{}, err
	}
	return r, nil
}

// parseTemplate splits src at its variables, or returns nil when it has none.
func parseTemplate(src string) []part {
	var parts []part
	rest := src
	for {
		at, which := -1, variable(0)
		var name string
		for _, x := range variables {
			if i := strings.Index(rest, x.name); i >= 0 && (at < 0 || i < at) {
				at, which, name = i, x.v, x.name
			}
		}
		if at < 0 {
			break
		}
		if at > 0 {
			parts = append(parts, part{lit: rest[:at]})
		}
		parts = append(parts, part{v: which})
		rest = rest[at+len(name):]
	}
	if parts == nil {
		return nil
	}
	if rest != "" {
		parts = append(parts, part{lit: rest})
	}
	return parts
}

// expand appends the template's source with each variable replaced by its value, escaped as
// regexp.QuoteMeta does.
func (r *rule) expand(dst []byte, user, vhost, clientID string) []byte {
	for _, p := range r.parts {
		switch p.v {
		case varNone:
			dst = append(dst, p.lit...)
		case varUsername:
			dst = appendQuoteMeta(dst, user)
		case varVhost:
			dst = appendQuoteMeta(dst, vhost)
		case varClientID:
			dst = appendQuoteMeta(dst, clientID)
		}
	}
	return dst
}

// substitutable reports whether the user name and client id may be put into the template. A
// value with a topic level separator or a wildcard ('/', '+', '#') or NUL could reach into
// another client's subtree even escaped: "^devices/{client_id}/" with client id "a/b" would
// allow "devices/a/b/...", inside client "a"'s "devices/a/". Such a client gets nothing from
// a rule that names it; rules without the variable apply as usual. {vhost} is exempt: vhost
// names are chosen by administrators (and the default vhost is "/").
func (r *rule) substitutable(user, clientID string) bool {
	for _, p := range r.parts {
		switch {
		case p.v == varUsername && strings.ContainsAny(user, unsafeInTopic):
			return false
		case p.v == varClientID && strings.ContainsAny(clientID, unsafeInTopic):
			return false
		}
	}
	return true
}

// unsafeInTopic are the characters a substituted value may not hold (substitutable).
const unsafeInTopic = "/+#\x00"

// appendQuoteMeta appends regexp.QuoteMeta(s) to dst without allocating a string.
func appendQuoteMeta(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(`\.+*?()|[]{}^$`, s[i]) >= 0 {
			dst = append(dst, '\\')
		}
		dst = append(dst, s[i])
	}
	return dst
}

// defaultCacheSize bounds the cache of compiled template expansions.
const defaultCacheSize = 4096

// cacheShards spreads the cache over several locks, so that checks on many cores do not all
// bounce one RWMutex's cache line.
const cacheShards = 16

// exprCache holds compiled expansions of templated topic-permission regexes and the regexes
// of OAuth2 identities' scopes (auth.ScopedPermissions), keyed by their source, so it never
// goes stale when rules change. It is bounded: a shard that is full is emptied and refills
// with what is in use. A nil entry records an expansion that did
// not compile (it denies).
type exprCache struct {
	seed   maphash.Seed
	shards [cacheShards]cacheShard
}

type cacheShard struct {
	mu  sync.RWMutex
	m   map[string]*regexp.Regexp
	max int
	_   [40]byte // keep shards on separate cache lines
}

func (x *exprCache) init(size int) {
	x.seed = maphash.MakeSeed()
	for i := range x.shards {
		x.shards[i].m = make(map[string]*regexp.Regexp)
		x.shards[i].max = max(1, size/cacheShards)
	}
}

// get returns the compiled form of src, compiling it on a miss.
func (x *exprCache) get(src []byte) *regexp.Regexp {
	sh := &x.shards[maphash.Bytes(x.seed, src)%cacheShards]
	sh.mu.RLock()
	re, ok := sh.m[string(src)] // no allocation: the compiler keys the lookup by src's bytes
	sh.mu.RUnlock()
	if ok {
		return re
	}
	s := string(src)
	re, err := regexp.Compile(s)
	if err != nil {
		re = nil
	}
	sh.mu.Lock()
	if len(sh.m) >= sh.max {
		clear(sh.m)
	}
	sh.m[s] = re
	sh.mu.Unlock()
	return re
}

// getString is get for a string: the compiled form of src, compiled on a miss. A hit
// allocates nothing.
func (x *exprCache) getString(src string) *regexp.Regexp {
	sh := &x.shards[maphash.String(x.seed, src)%cacheShards]
	sh.mu.RLock()
	re, ok := sh.m[src]
	sh.mu.RUnlock()
	if ok {
		return re
	}
	re, err := regexp.Compile(src)
	if err != nil {
		re = nil
	}
	sh.mu.Lock()
	if len(sh.m) >= sh.max {
		clear(sh.m)
	}
	sh.m[src] = re
	sh.mu.Unlock()
	return re
}

// len reports the number of cached expansions.
func (x *exprCache) len() int {
	n := 0
	for i := range x.shards {
		sh := &x.shards[i]
		sh.mu.RLock()
		n += len(sh.m)
		sh.mu.RUnlock()
	}
	return n
}
