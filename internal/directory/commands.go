package directory

import (
	"errors"
	"fmt"
	"strings"

	"github.com/turnstilemq/turnstile/internal/acl"
	"github.com/turnstilemq/turnstile/internal/auth"
	"github.com/turnstilemq/turnstile/internal/definitions"
)

// Errors of the commands; the management API maps them to status codes.
var (
	ErrNoSuchVhost = errors.New("no such vhost")
	ErrNoSuchUser  = errors.New("no such user")
	ErrEmptyName   = errors.New("name must not be empty")
	// ErrBadUserName refuses a user name that would act as a wildcard where it is substituted
	// into a topic permission ({username}), as Mosquitto refuses such names for its pattern ACLs.
	ErrBadUserName = errors.New("a user name must not contain +, # or NUL")
)

// Import validates defs and adds or replaces what it defines.
func (d *Directory) Import(defs *definitions.Definitions) error {
	if err := defs.Validate(); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.applyLocked(defs); err != nil {
		return err
	}
	return d.saveLocked()
}

// AddVhost creates a vhost and reports whether it is new; adding one that exists changes
// nothing.
func (d *Directory) AddVhost(name string) (bool, error) {
	if name == "" {
		return false, fmt.Errorf("vhost: %w", ErrEmptyName)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.hasVhostLocked(name) {
		return false, nil
	}
	d.addVhostLocked(name)
	return true, d.saveLocked()
}

// DeleteVhost removes a vhost and every permission on it; the broker's hook disconnects its
// clients and removes its state. It reports whether the vhost existed.
func (d *Directory) DeleteVhost(name string) (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.hasVhostLocked(name) {
		return false, nil
	}
	delete(d.vhosts, name)
	d.forgetLimitsLocked(name, "")
	if d.hooks.VhostDeleted != nil {
		d.hooks.VhostDeleted(name)
	}
	d.checker.DeleteVhost(name)
	return true, d.saveLocked()
}

// PutUser adds or replaces a local user and returns it as stored (with its ID). A user without
// an ID keeps the ID of the user of that name, if any: a new password or new tags do not make a
// new subject.
func (d *Directory) PutUser(u auth.User) (auth.User, error) {
	if u.Name == "" {
		return auth.User{}, fmt.Errorf("user: %w", ErrEmptyName)
	}
	if strings.ContainsAny(u.Name, "+#\x00") {
		return auth.User{}, fmt.Errorf("user %q: %w", u.Name, ErrBadUserName)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if old, ok := d.users.Get(u.Name); ok && u.ID != "" && u.ID != old.ID {
		d.deleteUserLocked(old)
	}
	stored := d.users.Put(u)
	return stored, d.saveLocked()
}

// DeleteUser removes a local user with their permissions; the broker's hook disconnects their
// clients and ends their sessions. It reports whether the user existed.
func (d *Directory) DeleteUser(name string) (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	u, ok := d.users.Get(name)
	if !ok {
		return false, nil
	}
	d.deleteUserLocked(u)
	return true, d.saveLocked()
}

func (d *Directory) deleteUserLocked(u auth.User) {
	d.users.Delete(u.Name)
	d.checker.DeleteUser(u.Name)
	d.forgetLimitsLocked("", u.Name)
	if d.hooks.UserDeleted != nil {
		d.hooks.UserDeleted(u)
	}
}

// SetPermission sets a user's permissions on a vhost; both must exist.
func (d *Directory) SetPermission(p acl.Permission) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.existLocked(p.User, p.Vhost); err != nil {
		return err
	}
	if err := d.checker.SetPermission(p); err != nil {
		return err
	}
	return d.saveLocked()
}

// DeletePermission removes a user's permissions on a vhost and reports whether there were any.
func (d *Directory) DeletePermission(user, vhost string) (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.checker.DeletePermission(user, vhost) {
		return false, nil
	}
	return true, d.saveLocked()
}

// SetTopicPermission sets a user's topic permissions on a vhost; both must exist.
func (d *Directory) SetTopicPermission(p acl.TopicPermission) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.existLocked(p.User, p.Vhost); err != nil {
		return err
	}
	if err := d.checker.SetTopicPermission(p); err != nil {
		return err
	}
	return d.saveLocked()
}

// DeleteTopicPermission removes a user's topic permissions on a vhost for exchange ("" for
// every exchange) and reports whether there were any.
func (d *Directory) DeleteTopicPermission(user, vhost, exchange string) (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.checker.DeleteTopicPermission(user, vhost, exchange) {
		return false, nil
	}
	return true, d.saveLocked()
}

func (d *Directory) existLocked(user, vhost string) error {
	if !d.hasVhostLocked(vhost) {
		return fmt.Errorf("vhost %s: %w", vhost, ErrNoSuchVhost)
	}
	if _, ok := d.users.Get(user); !ok {
		return fmt.Errorf("user %s: %w", user, ErrNoSuchUser)
	}
	return nil
}
