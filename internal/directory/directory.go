package directory

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/turnstilemq/turnstile/internal/acl"
	"github.com/turnstilemq/turnstile/internal/auth"
	"github.com/turnstilemq/turnstile/internal/definitions"
	"github.com/turnstilemq/turnstile/internal/store"
)

// DefaultVhost is the vhost that always exists on a first start.
const DefaultVhost = "/"

// Options configure a Directory.
type Options struct {
	// Store keeps the definitions document; nil keeps everything in memory.
	Store store.Store
	// DefaultUser and DefaultPassword create the administrator on first start, with full
	// permissions on "/"; an empty password creates none.
	DefaultUser, DefaultPassword string
	// DefaultVhost is created on first start besides "/".
	DefaultVhost string
	// DefinitionsFile is imported at every start, over what is stored.
	DefinitionsFile string
	// AnonymousUser, when not empty, is created (without a password) with full permissions on
	// DefaultVhost unless definitions say otherwise: anonymous access was asked for.
	AnonymousUser string
	// PermissionCheckEnabled is [mqtt] permission_check_enabled (see acl.NewChecker).
	PermissionCheckEnabled bool
	// Hasher hashes passwords set through PutUserWithPassword.
	Hasher auth.Hasher
	// PasswordKey, when set, keeps a password verifier beside the hash of every password set
	// here from its plaintext (PutUserWithPassword, the default user), and lets the verifiers
	// made at login (auth.Local) persist in the store, in their own records. nil: no verifiers.
	PasswordKey *auth.PasswordKey
	Logger      *slog.Logger
}

// Hooks tell the broker about changes it must act on. They run with the directory's lock held,
// in the order the changes were made; they must not call back into the Directory.
type Hooks struct {
	VhostAdded   func(name string)
	VhostDeleted func(name string)
	UserDeleted  func(u auth.User)
}

// Directory is the users, vhosts and permissions. It is safe for concurrent use.
type Directory struct {
	opts    Options
	log     *slog.Logger
	users   *auth.Users
	checker *acl.Checker

	mu           sync.Mutex // serialises changes (and their hooks and persistence)
	vhosts       map[string]struct{}
	hooks        Hooks
	bootstrapped bool                     // Load found nothing stored and created the defaults
	limits       atomic.Pointer[limitSet] // vhost and user limits (limits.go), replaced under mu
	writer       *verifierWriter          // persists verifiers; nil without a store or a key
	bootHash     string                   // the default user's hash made by bootstrap
}

// New returns an empty directory; Load fills it.
func New(o Options) *Directory {
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	if o.DefaultVhost == "" {
		o.DefaultVhost = DefaultVhost
	}
	return &Directory{opts: o, log: log, users: auth.NewUsers(), checker: acl.NewChecker(o.PermissionCheckEnabled),
		vhosts: map[string]struct{}{}}
}

// Bootstrapped reports whether Load found nothing stored and created the default vhost and
// user: a first start.
func (d *Directory) Bootstrapped() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.bootstrapped
}

// Users is the user registry the authentication providers read.
func (d *Directory) Users() *auth.Users { return d.users }

// Checker is the permission checker the broker authorizes with.
func (d *Directory) Checker() *acl.Checker { return d.checker }

// SetHooks installs the broker's hooks. Call it before the first change.
func (d *Directory) SetHooks(h Hooks) {
	d.mu.Lock()
	d.hooks = h
	d.mu.Unlock()
}

// Load sets up users, vhosts and permissions at start: the stored definitions (or, on first
// start, vhost "/" and the default user with full permissions there), then the definitions file
// on top, then the anonymous user when anonymous access is on. It stores the result.
func (d *Directory) Load() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	var defs *definitions.Definitions
	if st := d.opts.Store; st != nil {
		doc, err := st.LoadDefinitions()
		switch {
		case err == nil:
			if defs, err = definitions.Parse(bytes.NewReader(doc), 0); err != nil {
				return fmt.Errorf("stored definitions: %w", err)
			}
		case !errors.Is(err, store.ErrNotFound):
			return fmt.Errorf("stored definitions: %w", err)
		}
	}
	if defs == nil {
		var err error
		if defs, err = d.bootstrap(); err != nil {
			return err
		}
		d.bootstrapped = true
	}
	if err := d.applyLocked(defs); err != nil {
		return err
	}
	if f := d.opts.DefinitionsFile; f != "" {
		if err := d.importFileLocked(f); err != nil {
			return err
		}
	}
	if name := d.opts.AnonymousUser; name != "" {
		if _, ok := d.users.Get(name); !ok {
			d.users.Put(auth.User{Name: name})
			if _, ok := d.checker.Permission(name, d.opts.DefaultVhost); !ok && d.hasVhostLocked(d.opts.DefaultVhost) {
				if err := d.checker.SetPermission(acl.Permission{User: name, Vhost: d.opts.DefaultVhost, Configure: ".*", Write: ".*", Read: ".*"}); err != nil {
					return err
				}
			}
		}
	}
	if err := d.saveLocked(); err != nil {
		return err
	}
	if err := d.loadVerifiersLocked(); err != nil {
		return err
	}
	if st := d.opts.Store; st != nil && d.opts.PasswordKey != nil && d.writer == nil {
		d.writer = newVerifierWriter(st, d.users, d.log)
		d.users.OnVerifierChange(d.writer.mark)
	}
	if d.bootstrapped && d.opts.DefaultPassword != "" {
		if u, ok := d.users.Get(d.opts.DefaultUser); ok {
			if u.PasswordHash == d.bootHash { // unless a definitions file replaced it
				d.rememberPassword(u, []byte(d.opts.DefaultPassword))
			}
		}
	}
	return nil
}

func (d *Directory) importFileLocked(f string) error {
	fh, err := os.Open(f)
	if err != nil {
		return fmt.Errorf("[main] definitions_file: %w", err)
	}
	fd, err := definitions.Parse(fh, 0)
	fh.Close()
	if err == nil {
		err = fd.Validate()
	}
	if err != nil {
		return fmt.Errorf("[main] definitions_file %s: %w", f, err)
	}
	for _, w := range fd.Warnings() {
		d.log.Warn("definitions_file", "file", f, "warning", w)
	}
	if err := d.applyLocked(fd); err != nil {
		return fmt.Errorf("[main] definitions_file %s: %w", f, err)
	}
	d.log.Info("definitions imported", "file", f, "users", len(fd.Users), "vhosts", len(fd.Vhosts),
		"permissions", len(fd.Permissions), "topic_permissions", len(fd.TopicPermissions))
	return nil
}

func (d *Directory) bootstrap() (*definitions.Definitions, error) {
	defs := &definitions.Definitions{Vhosts: []definitions.Vhost{{Name: DefaultVhost}}}
	if dv := d.opts.DefaultVhost; dv != DefaultVhost {
		defs.Vhosts = append(defs.Vhosts, definitions.Vhost{Name: dv})
	}
	if d.opts.DefaultUser != "" && d.opts.DefaultPassword != "" {
		u, err := auth.DefaultUser(d.opts.DefaultUser, d.opts.DefaultPassword)
		if err != nil {
			return nil, fmt.Errorf("[main] default_password: %w", err)
		}
		d.bootHash = u.PasswordHash
		defs.Users = append(defs.Users, definitions.User{Name: u.Name, PasswordHash: u.PasswordHash, HashingAlgorithm: u.HashAlgorithm, Tags: []string{string(auth.TagAdministrator)}})
		defs.Permissions = append(defs.Permissions, definitions.Permission{User: u.Name, Vhost: DefaultVhost, Configure: ".*", Write: ".*", Read: ".*"})
	}
	return defs, nil
}

// applyLocked adds or replaces the vhosts, users and permissions of defs, all or nothing as far
// as they can be checked before anything changes. mu held.
func (d *Directory) applyLocked(defs *definitions.Definitions) error {
	users := make([]auth.User, 0, len(defs.Users))
	for i, u := range defs.Users {
		alg := u.HashingAlgorithm
		if alg == definitions.DefaultImportAlgorithm && strings.HasPrefix(u.PasswordHash, "$") {
			// The file named no algorithm (Parse filled in RabbitMQ's MD5 default), but a "$"
			// string is a bcrypt or argon2id hash, never base64: let ImportHash recognise it.
			alg = ""
		}
		alg, err := auth.ImportHash(alg, u.PasswordHash, definitions.DefaultImportAlgorithm)
		if err != nil {
			return fmt.Errorf("users[%d] (%s): %w", i, u.Name, err)
		}
		tags := make([]auth.Tag, len(u.Tags))
		for j, t := range u.Tags {
			tags[j] = auth.Tag(t)
		}
		users = append(users, auth.User{ID: u.ID, Name: u.Name, HashAlgorithm: alg, PasswordHash: u.PasswordHash, Tags: tags})
	}
	perms := make([]acl.Permission, len(defs.Permissions))
	for i, p := range defs.Permissions {
		perms[i] = acl.Permission(p)
	}
	tperms := make([]acl.TopicPermission, len(defs.TopicPermissions))
	for i, p := range defs.TopicPermissions {
		tperms[i] = acl.TopicPermission(p)
	}
	for _, v := range defs.Vhosts {
		d.addVhostLocked(v.Name)
	}
	for _, u := range users {
		if old, ok := d.users.Get(u.Name); ok && u.ID != "" && old.ID != u.ID {
			// The same name with another ID is another subject: the old one goes first, so
			// that its sessions and wills go with it.
			d.deleteUserLocked(old)
		}
		d.users.Put(u)
	}
	d.applyLimitsLocked(defs)
	return d.checker.Apply(perms, tperms)
}

func (d *Directory) addVhostLocked(name string) {
	if _, ok := d.vhosts[name]; ok {
		return
	}
	d.vhosts[name] = struct{}{}
	if d.hooks.VhostAdded != nil {
		d.hooks.VhostAdded(name)
	}
}

func (d *Directory) hasVhostLocked(name string) bool {
	_, ok := d.vhosts[name]
	return ok
}

// Export returns the users, vhosts, permissions and topic permissions.
func (d *Directory) Export() *definitions.Definitions {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.exportLocked()
}

func (d *Directory) exportLocked() *definitions.Definitions {
	defs := &definitions.Definitions{}
	for _, u := range d.users.List() {
		tags := make([]string, len(u.Tags))
		for i, t := range u.Tags {
			tags[i] = string(t)
		}
		defs.Users = append(defs.Users, definitions.User{ID: u.ID, Name: u.Name, PasswordHash: u.PasswordHash, HashingAlgorithm: u.HashAlgorithm, Tags: tags})
	}
	for _, name := range d.vhostNamesLocked() {
		defs.Vhosts = append(defs.Vhosts, definitions.Vhost{Name: name})
	}
	for _, p := range d.checker.Permissions() {
		defs.Permissions = append(defs.Permissions, definitions.Permission(p))
	}
	for _, p := range d.checker.TopicPermissions() {
		defs.TopicPermissions = append(defs.TopicPermissions, definitions.TopicPermission(p))
	}
	d.exportLimitsLocked(defs)
	return defs
}

// ErrNotStored is returned by a change the store could not make durable: it is in force in
// memory, but would not survive a restart.
var ErrNotStored = errors.New("directory: the change could not be stored")

// saveLocked stores the current definitions and waits until they are durable. mu held.
func (d *Directory) saveLocked() error {
	st := d.opts.Store
	if st == nil {
		return nil
	}
	var buf bytes.Buffer
	if err := d.exportLocked().WriteJSON(&buf); err != nil {
		return fmt.Errorf("directory: encoding definitions: %w", err)
	}
	t := st.PutDefinitions(buf.Bytes())
	done := make(chan struct{})
	st.Notify(t, func() { close(done) })
	<-done
	if !st.Durable(t) {
		d.log.Error("definitions could not be stored; the change is in force until a restart")
		return ErrNotStored
	}
	return nil
}

func (d *Directory) vhostNamesLocked() []string {
	names := make([]string, 0, len(d.vhosts))
	for n := range d.vhosts {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
