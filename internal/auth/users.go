package auth

import (
	"crypto/rand"
	"encoding/hex"
	"slices"
	"strings"
	"sync"
)

// User is a local user as stored: a name, a password hash with its algorithm, and tags. An empty
// PasswordHash means the user cannot log in with a password (certificate login still works).
type User struct {
	// ID tells users of the same name apart over time: it is drawn when the user is first
	// created and kept by every change (a new password, new tags, a re-import), so a user deleted
	// and created again under the same name is a different subject and inherits nothing.
	ID            string
	Name          string
	HashAlgorithm string // see AlgBcrypt and friends; "" reads as MD5 (RabbitMQ's default)
	PasswordHash  string
	Tags          []Tag
}

// HasTag reports whether u carries tag t.
func (u *User) HasTag(t Tag) bool { return slices.Contains(u.Tags, t) }

func (u User) clone() User {
	u.Tags = slices.Clone(u.Tags)
	return u
}

// NewUser hashes password with h and returns a user with the given tags.
func NewUser(name string, password []byte, h Hasher, tags ...Tag) (User, error) {
	alg, hash, err := h.Hash(password)
	if err != nil {
		return User{}, err
	}
	return User{Name: name, HashAlgorithm: alg, PasswordHash: hash, Tags: slices.Clone(tags)}, nil
}

// DefaultUser returns the default user ([main] default_user / default_password, guest/guest
// unless configured): an administrator with a bcrypt hash at the default cost. The caller puts
// it into the registry when the store holds no users yet, and grants it full permissions on "/".
func DefaultUser(name, password string) (User, error) {
	return NewUser(name, []byte(password), Hasher{}, TagAdministrator)
}

// Users is the registry of local users, safe for concurrent use; the zero value is empty and
// ready. It keeps copies: changing a
// User after Put or after Get does not change the registry.
type Users struct {
	mu      sync.RWMutex
	users   map[string]User
	version uint64 // bumped by every change
}

// NewUsers returns an empty registry.
func NewUsers() *Users { return &Users{users: make(map[string]User)} }

// NewUserID draws a new user ID.
func NewUserID() string {
	var b [12]byte
	rand.Read(b[:]) // never fails on supported platforms
	return hex.EncodeToString(b[:])
}

// Put adds or replaces the user named u.Name and returns the user as stored. A user without an
// ID keeps the ID of the user it replaces, or gets a new one when the name is new.
func (r *Users) Put(u User) User {
	u = u.clone()
	r.mu.Lock()
	if r.users == nil {
		r.users = make(map[string]User)
	}
	if u.ID == "" {
		if old, ok := r.users[u.Name]; ok && old.ID != "" {
			u.ID = old.ID
		} else {
			u.ID = NewUserID()
		}
	}
	r.users[u.Name] = u
	r.version++
	r.mu.Unlock()
	return u.clone()
}

// Delete removes the named user and reports whether it existed.
func (r *Users) Delete(name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.users[name]; !ok {
		return false
	}
	delete(r.users, name)
	r.version++
	return true
}

// Get returns a copy of the named user.
func (r *Users) Get(name string) (User, bool) {
	r.mu.RLock()
	u, ok := r.users[name]
	r.mu.RUnlock()
	if !ok {
		return User{}, false
	}
	return u.clone(), true
}

// List returns copies of all users, sorted by name.
func (r *Users) List() []User {
	r.mu.RLock()
	out := make([]User, 0, len(r.users))
	for _, u := range r.users {
		out = append(out, u.clone())
	}
	r.mu.RUnlock()
	slices.SortFunc(out, func(a, b User) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Len returns the number of users.
func (r *Users) Len() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.users)
}

// Version is a change counter: it grows with every Put and every Delete that removed a user, so
// a caller can tell whether the registry changed since it last looked (to persist or export it).
func (r *Users) Version() uint64 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.version
}
