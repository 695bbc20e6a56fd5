package topic

import (
	"strings"
	"sync"
	"sync/atomic"
)

// Subscription is one entry of an Index. The index stores a pointer to a copy;
// an entry is never mutated after insertion (a replacement inserts a new copy),
// so the pointers returned by Index.Match may be read without a lock.
type Subscription struct {
	Owner             any    // identity of the subscriber, compared with ==; the broker passes a pointer
	Filter            string // the filter, WITHOUT the $share/{group}/ prefix
	Group             string // shared-subscription group (ShareName); "" when not shared
	QoS               byte
	NoLocal           bool
	RetainAsPublished bool
	RetainHandling    byte
	ID                uint32 // subscription identifier; 0 = none
	// Check, when set, must return true for a topic before a message on it is delivered on
	// this subscription (the broker's read permission per message); nil delivers everything.
	// The index never calls it.
	Check func(topic string) bool
}

// Index is the subscription index of one vhost: a trie keyed by topic level.
// Literal levels live in a map per node; the '+' and '#' children are kept
// apart, so a Match walks only the branches that can match.
//
// An Index is safe for concurrent use. Match runs under the read lock; the
// round-robin counters of shared groups are atomic.
//
// Owners must be comparable (a pointer is); they are compared with == and
// used as map keys. Filters are assumed valid (ValidFilter); the index does
// not validate them.
type Index struct {
	// Prefer, if set before the Index is used, is consulted by Match when it
	// picks the member of a shared group: members for which it returns false
	// are skipped, unless it returns false for all of them. It is called with
	// the index's read lock held, so it must not call back into the Index.
	Prefer func(owner any) bool

	mu     sync.RWMutex
	root   node
	count  int
	owners map[any]map[subKey]*Subscription // owner → its entries, for Subscriptions
}

// subKey identifies an entry among one owner's subscriptions.
type subKey struct{ group, filter string }

// node is one level of the trie. A node is reached by the filter levels from
// the root; subs and groups hold the entries whose filter ends here.
type node struct {
	parent *node
	key    string // the level that leads here from parent: a literal, "+" or "#"

	children map[string]*node // literal levels
	plus     *node            // '+' child
	hash     *node            // '#' child

	subs   bucket   // non-shared subscriptions
	groups []*group // shared groups, at most a few per filter
}

func (n *node) empty() bool {
	return len(n.subs.subs) == 0 && len(n.groups) == 0 &&
		len(n.children) == 0 && n.plus == nil && n.hash == nil
}

// group is one shared subscription: a ShareName on the filter of its node.
type group struct {
	name    string
	members bucket
	next    atomic.Uint64 // round-robin position
}

// bucketMapMin is the size above which a bucket keeps a map from owner to
// position, so that many subscribers of one filter cost O(1) each to replace
// or remove. Below it a scan of the slice is cheaper.
const bucketMapMin = 16

// bucket is a set of entries with distinct owners, as a slice (for Match)
// plus, once large, a map from owner to slice index. Removal swaps the last
// entry in, so order is not kept.
type bucket struct {
	subs []*Subscription
	pos  map[any]int
}

func (b *bucket) find(owner any) int {
	if b.pos != nil {
		if i, ok := b.pos[owner]; ok {
			return i
		}
		return -1
	}
	for i, s := range b.subs {
		if s.Owner == owner {
			return i
		}
	}
	return -1
}

// put inserts s or replaces the entry of the same owner in place.
func (b *bucket) put(s *Subscription) (existed bool) {
	if i := b.find(s.Owner); i >= 0 {
		b.subs[i] = s
		return true
	}
	b.subs = append(b.subs, s)
	switch {
	case b.pos != nil:
		b.pos[s.Owner] = len(b.subs) - 1
	case len(b.subs) > bucketMapMin:
		b.pos = make(map[any]int, len(b.subs))
		for i, e := range b.subs {
			b.pos[e.Owner] = i
		}
	}
	return false
}

func (b *bucket) remove(owner any) bool {
	i := b.find(owner)
	if i < 0 {
		return false
	}
	last := len(b.subs) - 1
	if i != last {
		b.subs[i] = b.subs[last]
		if b.pos != nil {
			b.pos[b.subs[i].Owner] = i
		}
	}
	b.subs[last] = nil
	b.subs = b.subs[:last]
	if b.pos != nil {
		delete(b.pos, owner)
		if len(b.subs) <= bucketMapMin/2 {
			b.pos = nil
		}
	}
	if len(b.subs) == 0 {
		b.subs = nil
	}
	return true
}

// NewIndex returns an empty index.
func NewIndex() *Index {
	return &Index{owners: make(map[any]map[subKey]*Subscription)}
}

// nextLevel splits s at its first '/': the level, and the rest after the
// separator; more is false when s has no '/'.
func nextLevel(s string) (level, rest string, more bool) {
	i := strings.IndexByte(s, '/')
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+1:], true
}

// Subscribe inserts s, or replaces the entry with the same (Owner, Group,
// Filter); existed reports a replacement. s.Filter must not carry the
// "$share/{group}/" prefix (see ParseShared).
func (x *Index) Subscribe(s Subscription) (existed bool) {
	e := new(Subscription)
	*e = s
	x.mu.Lock()
	defer x.mu.Unlock()

	n := &x.root
	for f, more := s.Filter, true; more; {
		var level string
		level, f, more = nextLevel(f)
		n = n.child(level)
	}
	if s.Group == "" {
		existed = n.subs.put(e)
	} else {
		g := n.group(s.Group)
		if g == nil {
			g = &group{name: s.Group}
			n.groups = append(n.groups, g)
		}
		existed = g.members.put(e)
	}
	if !existed {
		x.count++
	}
	if x.owners == nil {
		x.owners = make(map[any]map[subKey]*Subscription) // a zero Index works too
	}
	m := x.owners[s.Owner]
	if m == nil {
		m = make(map[subKey]*Subscription)
		x.owners[s.Owner] = m
	}
	m[subKey{s.Group, s.Filter}] = e
	return existed
}

// child returns the child of n for level, creating it.
func (n *node) child(level string) *node {
	var c *node
	switch level {
	case "+":
		if n.plus == nil {
			n.plus = &node{parent: n, key: level}
		}
		return n.plus
	case "#":
		if n.hash == nil {
			n.hash = &node{parent: n, key: level}
		}
		return n.hash
	}
	if c = n.children[level]; c == nil {
		if n.children == nil {
			n.children = make(map[string]*node)
		}
		level = strings.Clone(level) // do not pin the caller's whole filter
		c = &node{parent: n, key: level}
		n.children[level] = c
	}
	return c
}

// lookup returns the child of n for level, or nil.
func (n *node) lookup(level string) *node {
	switch level {
	case "+":
		return n.plus
	case "#":
		return n.hash
	}
	return n.children[level]
}

func (n *node) group(name string) *group {
	for _, g := range n.groups {
		if g.name == name {
			return g
		}
	}
	return nil
}

// Unsubscribe removes the entry for (owner, group, filter) and reports whether
// it existed. Nodes left empty are pruned.
func (x *Index) Unsubscribe(owner any, group, filter string) bool {
	x.mu.Lock()
	defer x.mu.Unlock()

	n := &x.root
	for f, more := filter, true; more && n != nil; {
		var level string
		level, f, more = nextLevel(f)
		n = n.lookup(level)
	}
	if n == nil {
		return false
	}
	if group == "" {
		if !n.subs.remove(owner) {
			return false
		}
	} else {
		gi := -1
		for i, g := range n.groups {
			if g.name == group {
				gi = i
				break
			}
		}
		if gi < 0 || !n.groups[gi].members.remove(owner) {
			return false
		}
		if len(n.groups[gi].members.subs) == 0 {
			last := len(n.groups) - 1
			n.groups[gi] = n.groups[last]
			n.groups[last] = nil
			n.groups = n.groups[:last]
			if last == 0 {
				n.groups = nil
			}
		}
	}
	x.count--
	if m := x.owners[owner]; m != nil {
		delete(m, subKey{group, filter})
		if len(m) == 0 {
			delete(x.owners, owner)
		}
	}
	x.prune(n)
	return true
}

// prune removes n and its ancestors while they are empty. mu held.
func (x *Index) prune(n *node) {
	for n != &x.root && n.empty() {
		p := n.parent
		switch n.key {
		case "+":
			p.plus = nil
		case "#":
			p.hash = nil
		default:
			delete(p.children, n.key)
			if len(p.children) == 0 {
				p.children = nil
			}
		}
		n.parent = nil
		n = p
	}
}

// Match appends to dst every non-shared subscription whose filter matches
// name, plus exactly one member of each matching shared group (round-robin
// across its members, per group), and returns dst. When x.Prefer is non-nil
// the round-robin choice skips members for which Prefer returns false, unless
// none returns true.
//
// The same owner may appear several times (overlapping filters); the caller
// de-duplicates. Match does not allocate when dst has enough capacity. name
// is assumed valid (ValidName); an empty name matches nothing.
func (x *Index) Match(name string, dst []*Subscription) []*Subscription {
	if name == "" {
		return dst
	}
	x.mu.RLock()
	// [MQTT-4.7.2-1] a filter starting with a wildcard does not match a name
	// starting with '$': skip the root's '+' and '#' children.
	dst = x.match(&x.root, name, true, name[0] == '$', dst)
	x.mu.RUnlock()
	return dst
}

// match appends the entries below n that match the levels in name. more is
// false once every level of the name has been consumed. mu held (read).
func (x *Index) match(n *node, name string, more, noWild bool, dst []*Subscription) []*Subscription {
	if !more {
		// The name ends at n: entries here match, and so do those of n's
		// '#' child, since '#' also matches its parent level ("sport/#"
		// matches "sport", §4.7.1.2).
		dst = x.collect(n, dst)
		if n.hash != nil {
			dst = x.collect(n.hash, dst)
		}
		return dst
	}
	level, rest, restMore := nextLevel(name)
	if !noWild {
		if n.hash != nil {
			dst = x.collect(n.hash, dst) // [MQTT-4.7.1-2] '#' matches all that remains
		}
		if n.plus != nil {
			dst = x.match(n.plus, rest, restMore, false, dst) // [MQTT-4.7.1-3] '+' matches one level, even empty
		}
	}
	if c := n.children[level]; c != nil {
		dst = x.match(c, rest, restMore, false, dst)
	}
	return dst
}

// collect appends the entries whose filter ends at n: every non-shared one and
// one member of each group. mu held (read).
func (x *Index) collect(n *node, dst []*Subscription) []*Subscription {
	dst = append(dst, n.subs.subs...)
	for _, g := range n.groups {
		if s := x.pick(g); s != nil {
			dst = append(dst, s)
		}
	}
	return dst
}

// pick chooses the member of g that receives the next message: round-robin,
// skipping members that Prefer rejects unless it rejects them all. mu held
// (read); the counter is atomic because readers run concurrently.
func (x *Index) pick(g *group) *Subscription {
	m := g.members.subs
	n := uint64(len(m))
	if n == 0 {
		return nil
	}
	start := g.next.Add(1) - 1
	if x.Prefer == nil {
		return m[start%n]
	}
	for i := range n {
		s := m[(start+i)%n]
		if x.Prefer(s.Owner) {
			if i > 0 {
				// Continue after the chosen member, so that skipped members
				// do not hand their turns to the next one in line.
				g.next.Add(i)
			}
			return s
		}
	}
	return m[start%n]
}

// Len returns the number of subscriptions, shared members counted
// individually.
func (x *Index) Len() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.count
}

// Subscriptions returns a copy of every subscription of owner, for session
// listing and cleanup. The order is unspecified.
func (x *Index) Subscriptions(owner any) []Subscription {
	x.mu.RLock()
	defer x.mu.RUnlock()
	m := x.owners[owner]
	if len(m) == 0 {
		return nil
	}
	out := make([]Subscription, 0, len(m))
	for _, s := range m {
		out = append(out, *s)
	}
	return out
}
