package directory

import (
	"time"

	"github.com/turnstilemq/turnstile/internal/acl"
	"github.com/turnstilemq/turnstile/internal/auth"
)

// User returns a local user.
func (d *Directory) User(name string) (auth.User, bool) { return d.users.Get(name) }

// UserList returns every local user, sorted by name.
func (d *Directory) UserList() []auth.User { return d.users.List() }

// UserCount returns the number of local users.
func (d *Directory) UserCount() int { return d.users.Len() }

// Vhosts lists the vhosts, sorted.
func (d *Directory) Vhosts() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.vhostNamesLocked()
}

// HasVhost reports whether the vhost exists.
func (d *Directory) HasVhost(name string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.hasVhostLocked(name)
}

// Filter selects permissions: an empty field matches everything.
type Filter struct{ User, Vhost string }

func (f Filter) match(user, vhost string) bool {
	return (f.User == "" || f.User == user) && (f.Vhost == "" || f.Vhost == vhost)
}

// Permissions returns the permissions f selects, sorted by vhost, then user.
func (d *Directory) Permissions(f Filter) []acl.Permission {
	var out []acl.Permission
	for _, p := range d.checker.Permissions() {
		if f.match(p.User, p.Vhost) {
			out = append(out, p)
		}
	}
	return out
}

// Permission returns a user's permission on a vhost.
func (d *Directory) Permission(user, vhost string) (acl.Permission, bool) {
	return d.checker.Permission(user, vhost)
}

// TopicPermissions returns the topic permissions f selects, sorted by vhost, user, exchange.
func (d *Directory) TopicPermissions(f Filter) []acl.TopicPermission {
	var out []acl.TopicPermission
	for _, p := range d.checker.TopicPermissions() {
		if f.match(p.User, p.Vhost) {
			out = append(out, p)
		}
	}
	return out
}

// HasAccess reports whether user has a permission entry on vhost.
func (d *Directory) HasAccess(user, vhost string) bool { return d.checker.HasAccess(user, vhost) }

// Revoked reports whether an identity's local subject is gone: the user was deleted, or deleted
// and created again under the same name (another ID). Identities of other issuers are not
// judged here. A password change, new tags or a re-import keep the subject (rotation is not
// revocation).
func (d *Directory) Revoked(id *auth.Identity, _ time.Time) (reason string, revoked bool) {
	if id.Issuer != auth.IssuerLocal || id.Subject == "" {
		return "", false
	}
	u, ok := d.users.Get(id.User)
	if !ok || u.ID != id.Subject {
		return "deleted_subject", true
	}
	return "", false
}
