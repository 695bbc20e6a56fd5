package topic

import (
	"strings"
	"sync"
)

// Retained is the index of retained messages of one vhost, keyed by topic
// name: a trie by level, so that matching a subscription's filter walks only
// the branches the filter can reach.
//
// Retained is safe for concurrent use. Match and Range collect their results
// under the read lock and call fn after releasing it, so fn may call back
// into r.
type Retained[T any] struct {
	mu    sync.RWMutex
	root  rnode[T]
	count int
}

type rnode[T any] struct {
	parent   *rnode[T]
	key      string
	children map[string]*rnode[T]

	has  bool
	name string // the full topic name, when has
	v    T
}

// entry is one result collected under the lock.
type entry[T any] struct {
	name string
	v    T
}

// NewRetained returns an empty index.
func NewRetained[T any]() *Retained[T] {
	return &Retained[T]{}
}

// Set inserts or replaces the retained message for name. name is assumed
// valid (ValidName); an empty name is ignored.
func (r *Retained[T]) Set(name string, v T) {
	if name == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	n := &r.root
	for f, more := name, true; more; {
		var level string
		level, f, more = nextLevel(f)
		c := n.children[level]
		if c == nil {
			if n.children == nil {
				n.children = make(map[string]*rnode[T])
			}
			level = strings.Clone(level)
			c = &rnode[T]{parent: n, key: level}
			n.children[level] = c
		}
		n = c
	}
	if !n.has {
		r.count++
		n.has = true
		n.name = name
	}
	n.v = v
}

// find returns the node for name, or nil. mu held.
func (r *Retained[T]) find(name string) *rnode[T] {
	if name == "" {
		return nil
	}
	n := &r.root
	for f, more := name, true; more && n != nil; {
		var level string
		level, f, more = nextLevel(f)
		n = n.children[level]
	}
	return n
}

// Delete removes the retained message for name and reports whether there was
// one. Nodes left empty are pruned.
func (r *Retained[T]) Delete(name string) bool { return r.DeleteIf(name, nil) }

// DeleteIf removes the retained message for name when match (nil: any) accepts it, and reports
// whether it did: a sweep removes an expired message without removing a newer one set since.
func (r *Retained[T]) DeleteIf(name string, match func(T) bool) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.find(name)
	if n == nil || !n.has || (match != nil && !match(n.v)) {
		return false
	}
	var zero T
	n.has, n.name, n.v = false, "", zero
	r.count--
	for n != &r.root && !n.has && len(n.children) == 0 {
		p := n.parent
		delete(p.children, n.key)
		if len(p.children) == 0 {
			p.children = nil
		}
		n.parent = nil
		n = p
	}
	return true
}

// Get returns the retained message for name.
func (r *Retained[T]) Get(name string) (T, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if n := r.find(name); n != nil && n.has {
		return n.v, true
	}
	var zero T
	return zero, false
}

// Len returns the number of retained messages.
func (r *Retained[T]) Len() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.count
}

// Match calls fn for each retained message whose name matches filter, by the
// rules of the package-level Match, including [MQTT-4.7.2-1]: a filter
// starting with a wildcard skips names starting with '$'. It stops when fn
// returns false. The order is unspecified.
//
// Match walks the trie level by level: only a '#' visits a whole subtree.
// filter is assumed valid (ValidFilter); an empty filter matches nothing.
func (r *Retained[T]) Match(filter string, fn func(name string, v T) bool) {
	if filter == "" {
		return
	}
	r.mu.RLock()
	found := r.match(&r.root, filter, true, nil)
	r.mu.RUnlock()
	for _, e := range found {
		if !fn(e.name, e.v) {
			return
		}
	}
}

// match appends the entries below n matching filter; more is false once every
// level of the filter has been consumed. At the root, wildcards skip levels
// starting with '$' [MQTT-4.7.2-1]. mu held (read).
func (r *Retained[T]) match(n *rnode[T], filter string, more bool, dst []entry[T]) []entry[T] {
	if !more {
		if n.has {
			dst = append(dst, entry[T]{n.name, n.v})
		}
		return dst
	}
	root := n == &r.root
	level, rest, restMore := nextLevel(filter)
	switch level {
	case "#":
		// [MQTT-4.7.1-2] the parent level ("sport/#" matches "sport") and
		// every level below it.
		if n.has {
			dst = append(dst, entry[T]{n.name, n.v})
		}
		for k, c := range n.children {
			if root && strings.HasPrefix(k, "$") {
				continue // [MQTT-4.7.2-1]
			}
			dst = c.all(dst)
		}
	case "+":
		// [MQTT-4.7.1-3] exactly one level, which may be empty.
		for k, c := range n.children {
			if root && strings.HasPrefix(k, "$") {
				continue // [MQTT-4.7.2-1]
			}
			dst = r.match(c, rest, restMore, dst)
		}
	default:
		if c := n.children[level]; c != nil {
			dst = r.match(c, rest, restMore, dst)
		}
	}
	return dst
}

// all appends every entry at or below n. mu held (read).
func (n *rnode[T]) all(dst []entry[T]) []entry[T] {
	if n.has {
		dst = append(dst, entry[T]{n.name, n.v})
	}
	for _, c := range n.children {
		dst = c.all(dst)
	}
	return dst
}

// Range calls fn for every retained message, for snapshots; it stops when fn
// returns false. The order is unspecified; fn sees the entries as they were
// when Range began.
func (r *Retained[T]) Range(fn func(name string, v T) bool) {
	r.mu.RLock()
	found := make([]entry[T], 0, r.count)
	found = r.root.all(found)
	r.mu.RUnlock()
	for _, e := range found {
		if !fn(e.name, e.v) {
			return
		}
	}
}
