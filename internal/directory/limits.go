package directory

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/turnstilemq/turnstile/internal/definitions"
)

// ErrUnknownLimit is returned for a limit name Turnstile does not enforce.
var ErrUnknownLimit = errors.New("unknown limit")

// limitSet is the vhost and user limits, immutable once published (copy on write under
// Directory.mu), so the broker reads them on every CONNECT and retained PUBLISH without a lock.
type limitSet struct {
	vhosts map[string]map[string]int64
	users  map[string]map[string]int64
}

func (d *Directory) limitsNow() *limitSet {
	if l := d.limits.Load(); l != nil {
		return l
	}
	return &limitSet{}
}

// VhostLimit returns the limit name ("max-connections", "max-sessions", "max-retained") of a
// vhost and whether it is set; a negative value is "no limit". It takes no lock.
func (d *Directory) VhostLimit(vhost, name string) (int64, bool) {
	v, ok := d.limitsNow().vhosts[vhost][name]
	return v, ok
}

// UserLimit returns the limit name ("max-connections") of a user and whether it is set; a
// negative value is "no limit". It takes no lock.
func (d *Directory) UserLimit(user, name string) (int64, bool) {
	v, ok := d.limitsNow().users[user][name]
	return v, ok
}

// VhostLimits returns the limits of every vhost that has some, copied.
func (d *Directory) VhostLimits() map[string]map[string]int64 {
	return cloneLimits(d.limitsNow().vhosts)
}

// UserLimits returns the limits of every user who has some, copied.
func (d *Directory) UserLimits() map[string]map[string]int64 { return cloneLimits(d.limitsNow().users) }

func cloneLimits(m map[string]map[string]int64) map[string]map[string]int64 {
	out := make(map[string]map[string]int64, len(m))
	for k, v := range m {
		out[k] = maps.Clone(v)
	}
	return out
}

func checkLimitName(name string, known []string) error {
	if !slices.Contains(known, name) {
		return fmt.Errorf("%w %q (known: %s)", ErrUnknownLimit, name, strings.Join(known, ", "))
	}
	return nil
}

// SetVhostLimit sets a limit of an existing vhost: a number, or a negative value for none
// (RabbitMQ's -1). 0 refuses everything the limit counts.
func (d *Directory) SetVhostLimit(vhost, name string, value int64) error {
	if err := checkLimitName(name, definitions.VhostLimitNames); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.hasVhostLocked(vhost) {
		return fmt.Errorf("vhost %s: %w", vhost, ErrNoSuchVhost)
	}
	d.changeLimitsLocked(func(l *limitSet) { setLimit(l.vhosts, vhost, name, value) })
	return d.saveLocked()
}

// ClearVhostLimit removes a limit of a vhost and reports whether it was set.
func (d *Directory) ClearVhostLimit(vhost, name string) (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.limitsNow().vhosts[vhost][name]; !ok {
		return false, nil
	}
	d.changeLimitsLocked(func(l *limitSet) { clearLimit(l.vhosts, vhost, name) })
	return true, d.saveLocked()
}

// SetUserLimit sets a limit of an existing local user; see SetVhostLimit.
func (d *Directory) SetUserLimit(user, name string, value int64) error {
	if err := checkLimitName(name, definitions.UserLimitNames); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.users.Get(user); !ok {
		return fmt.Errorf("user %s: %w", user, ErrNoSuchUser)
	}
	d.changeLimitsLocked(func(l *limitSet) { setLimit(l.users, user, name, value) })
	return d.saveLocked()
}

// ClearUserLimit removes a limit of a user and reports whether it was set.
func (d *Directory) ClearUserLimit(user, name string) (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.limitsNow().users[user][name]; !ok {
		return false, nil
	}
	d.changeLimitsLocked(func(l *limitSet) { clearLimit(l.users, user, name) })
	return true, d.saveLocked()
}

// changeLimitsLocked publishes a changed copy of the limits. mu held.
func (d *Directory) changeLimitsLocked(fn func(*limitSet)) {
	cur := d.limitsNow()
	next := &limitSet{vhosts: cloneLimits(cur.vhosts), users: cloneLimits(cur.users)}
	fn(next)
	d.limits.Store(next)
}

func setLimit(m map[string]map[string]int64, owner, name string, value int64) {
	if m[owner] == nil {
		m[owner] = map[string]int64{}
	}
	m[owner][name] = value
}

func clearLimit(m map[string]map[string]int64, owner, name string) {
	delete(m[owner], name)
	if len(m[owner]) == 0 {
		delete(m, owner)
	}
}

// applyLimitsLocked replaces the limits of each vhost and user defs has limits for, entries
// before parameters, keeping only the limits Turnstile enforces. mu held.
func (d *Directory) applyLimitsLocked(defs *definitions.Definitions) {
	if len(defs.VhostLimits) == 0 && len(defs.UserLimits) == 0 {
		return
	}
	d.changeLimitsLocked(func(l *limitSet) {
		replace := func(m map[string]map[string]int64, list []definitions.Limits, known []string) {
			for _, param := range []bool{false, true} {
				for _, e := range list {
					if e.Parameter != param {
						continue
					}
					delete(m, e.Name)
					for name, v := range e.Values {
						if slices.Contains(known, name) {
							setLimit(m, e.Name, name, v)
						}
					}
				}
			}
		}
		replace(l.vhosts, defs.VhostLimits, definitions.VhostLimitNames)
		replace(l.users, defs.UserLimits, definitions.UserLimitNames)
	})
}

// forgetLimitsLocked drops the limits of a deleted vhost or user. mu held.
func (d *Directory) forgetLimitsLocked(vhost, user string) {
	cur := d.limitsNow()
	if _, ok := cur.vhosts[vhost]; vhost != "" && ok {
		d.changeLimitsLocked(func(l *limitSet) { delete(l.vhosts, vhost) })
	}
	if _, ok := cur.users[user]; user != "" && ok {
		d.changeLimitsLocked(func(l *limitSet) { delete(l.users, user) })
	}
}

// exportLimitsLocked adds the limits to an export. mu held.
func (d *Directory) exportLimitsLocked(defs *definitions.Definitions) {
	cur := d.limitsNow()
	for _, name := range slices.Sorted(maps.Keys(cur.vhosts)) {
		defs.VhostLimits = append(defs.VhostLimits, definitions.Limits{Name: name, Values: maps.Clone(cur.vhosts[name])})
	}
	for _, name := range slices.Sorted(maps.Keys(cur.users)) {
		defs.UserLimits = append(defs.UserLimits, definitions.Limits{Name: name, Values: maps.Clone(cur.users[name])})
	}
}
