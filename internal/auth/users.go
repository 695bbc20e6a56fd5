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
//
// Beside each user it may keep a password [Verifier], which Get and List never return. A
// verifier stays only while the user keeps the ID and the hash it was made for: a Put that
// changes either drops it, and so does Delete.
type Users struct {
	mu        sync.RWMutex
	users     map[string]User
	verifiers map[string]Verifier // by user name; each made for the user as stored (Verifier.For)
	version   uint64              // bumped by every change of a user (not of a verifier)
	onChange  func(name string)   // see OnVerifierChange
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
	old, existed := r.users[u.Name]
	if u.ID == "" {
		if existed && old.ID != "" {
			u.ID = old.ID
		} else {
			u.ID = NewUserID()
		}
	}
	r.users[u.Name] = u
	r.version++
	dropped := false
	if _, ok := r.verifiers[u.Name]; ok && (u.ID != old.ID || u.HashAlgorithm != old.HashAlgorithm || u.PasswordHash != old.PasswordHash) {
		delete(r.verifiers, u.Name) // made for another subject or another password
		dropped = true
	}
	fn := r.onChange
	r.mu.Unlock()
	if dropped && fn != nil {
		fn(u.Name)
	}
	return u.clone()
}

// Delete removes the named user and reports whether it existed.
func (r *Users) Delete(name string) bool {
	r.mu.Lock()
	if _, ok := r.users[name]; !ok {
		r.mu.Unlock()
		return false
	}
	delete(r.users, name)
	r.version++
	_, dropped := r.verifiers[name]
	delete(r.verifiers, name)
	fn := r.onChange
	r.mu.Unlock()
	if dropped && fn != nil {
		fn(name)
	}
	return true
}

// SetVerifier keeps v beside the named user when v was made for that user as stored now (the
// same ID and hash, see Verifier.For), replacing any verifier the user had, and reports whether
// it did. A verifier made for a password or a subject that has meanwhile been replaced is
// refused, so a login that verified an old password never attaches it to a new one.
func (r *Users) SetVerifier(name string, v Verifier) bool {
	r.mu.Lock()
	u, ok := r.users[name]
	if !ok || !v.For(&u) {
		r.mu.Unlock()
		return false
	}
	if r.verifiers == nil {
		r.verifiers = make(map[string]Verifier)
	}
	r.verifiers[name] = v
	fn := r.onChange
	r.mu.Unlock()
	if fn != nil {
		fn(name)
	}
	return true
}

// Verifier returns the verifier kept beside the named user, for persistence.
func (r *Users) Verifier(name string) (Verifier, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	v, ok := r.verifiers[name]
	return v, ok
}

// OnVerifierChange installs fn, called with a user's name after a verifier was kept beside the
// user (SetVerifier) or dropped (a new password, another ID, Delete), outside the registry's
// lock and on the goroutine that made the change (a login's, for verifiers made at login). It
// must return quickly and must not call back into the registry's writers. Call it before the
// registry is shared; nil removes it.
func (r *Users) OnVerifierChange(fn func(name string)) {
	r.mu.Lock()
	r.onChange = fn
	r.mu.Unlock()
}

// lookup returns the named user (sharing its Tags: read only) and its verifier, if any, in one
// read of the registry: the login's view.
func (r *Users) lookup(name string) (u User, v Verifier, hasV, ok bool) {
	r.mu.RLock()
	u, ok = r.users[name]
	if ok {
		v, hasV = r.verifiers[name]
	}
	r.mu.RUnlock()
	return u, v, hasV, ok
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
