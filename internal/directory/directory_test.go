package directory

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/turnstilemq/turnstile/internal/acl"
	"github.com/turnstilemq/turnstile/internal/auth"
	"github.com/turnstilemq/turnstile/internal/store"
)

func open(t *testing.T, dir string) store.Store {
	t.Helper()
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestFirstStartAndRestart(t *testing.T) {
	dir := t.TempDir()
	st := open(t, dir)
	d := New(Options{Store: st, DefaultUser: "guest", DefaultPassword: "guest", DefaultVhost: "tenant"})
	if err := d.Load(); err != nil {
		t.Fatal(err)
	}
	if got := d.Vhosts(); !slices.Equal(got, []string{"/", "tenant"}) {
		t.Fatalf("vhosts %v", got)
	}
	g, ok := d.User("guest")
	if !ok || !g.HasTag(auth.TagAdministrator) || g.ID == "" {
		t.Fatalf("default user %+v", g)
	}
	if !d.HasAccess("guest", "/") || d.HasAccess("guest", "tenant") {
		t.Fatal("the default user has full permissions on / only")
	}
	st.Close()

	// A restart loads what was stored: the same user, the same ID and hash.
	st2 := open(t, dir)
	d2 := New(Options{Store: st2, DefaultUser: "guest", DefaultPassword: "other"})
	if err := d2.Load(); err != nil {
		t.Fatal(err)
	}
	g2, _ := d2.User("guest")
	if g2.ID != g.ID || g2.PasswordHash != g.PasswordHash {
		t.Fatalf("after a restart the default user changed: %+v vs %+v", g2, g)
	}
}

// TestRecreatedUserIsAnotherSubject: a password change keeps the subject; deleting and creating
// the user again makes another one, and the old identity is judged revoked.
func TestRecreatedUserIsAnotherSubject(t *testing.T) {
	d := New(Options{})
	if err := d.Load(); err != nil {
		t.Fatal(err)
	}
	var deleted []auth.User
	d.SetHooks(Hooks{UserDeleted: func(u auth.User) { deleted = append(deleted, u) }})
	u, err := d.PutUser(auth.User{Name: "alice", HashAlgorithm: auth.AlgBcrypt, PasswordHash: "x"})
	if err != nil {
		t.Fatal(err)
	}
	id := &auth.Identity{User: "alice", Issuer: auth.IssuerLocal, Subject: u.ID}
	if _, revoked := d.Revoked(id, time.Now()); revoked {
		t.Fatal("a live user's identity is revoked")
	}
	u2, _ := d.PutUser(auth.User{Name: "alice", HashAlgorithm: auth.AlgBcrypt, PasswordHash: "new"})
	if u2.ID != u.ID {
		t.Fatal("a password change made a new subject")
	}
	if _, revoked := d.Revoked(id, time.Now()); revoked {
		t.Fatal("rotation is not revocation: a changed password revoked the identity")
	}
	if ok, err := d.DeleteUser("alice"); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if len(deleted) != 1 || deleted[0].ID != u.ID {
		t.Fatalf("UserDeleted hook: %+v", deleted)
	}
	u3, _ := d.PutUser(auth.User{Name: "alice"})
	if u3.ID == u.ID {
		t.Fatal("a re-created user has the old ID")
	}
	if reason, revoked := d.Revoked(id, time.Now()); !revoked || reason != "deleted_subject" {
		t.Fatalf("the deleted user's identity: %q %v, want deleted_subject", reason, revoked)
	}
	// An import that names the same user with another ID replaces the subject too.
	if _, err := d.PutUser(auth.User{Name: "alice", ID: "other-id"}); err != nil {
		t.Fatal(err)
	}
	if len(deleted) != 2 || deleted[1].ID != u3.ID {
		t.Fatalf("a user replaced under another ID must go first: %+v", deleted)
	}
}

func TestHooksAndChecks(t *testing.T) {
	d := New(Options{})
	if err := d.Load(); err != nil {
		t.Fatal(err)
	}
	var added, removed []string
	d.SetHooks(Hooks{VhostAdded: func(n string) { added = append(added, n) }, VhostDeleted: func(n string) { removed = append(removed, n) }})
	if created, err := d.AddVhost("v"); !created || err != nil {
		t.Fatal(created, err)
	}
	if created, _ := d.AddVhost("v"); created {
		t.Fatal("adding an existing vhost reported created")
	}
	if _, err := d.AddVhost(""); !errors.Is(err, ErrEmptyName) {
		t.Fatalf("empty vhost name: %v", err)
	}
	if err := d.SetPermission(acl.Permission{User: "nobody", Vhost: "v", Read: ".*"}); !errors.Is(err, ErrNoSuchUser) {
		t.Fatalf("permission of an unknown user: %v", err)
	}
	d.PutUser(auth.User{Name: "bob"})
	if err := d.SetPermission(acl.Permission{User: "bob", Vhost: "nope", Read: ".*"}); !errors.Is(err, ErrNoSuchVhost) {
		t.Fatalf("permission on an unknown vhost: %v", err)
	}
	if err := d.SetPermission(acl.Permission{User: "bob", Vhost: "v", Configure: ".*", Write: ".*", Read: ".*"}); err != nil {
		t.Fatal(err)
	}
	if got := d.Permissions(Filter{Vhost: "v"}); len(got) != 1 || got[0].User != "bob" {
		t.Fatalf("Permissions(v) = %+v", got)
	}
	if ok, _ := d.DeleteVhost("v"); !ok {
		t.Fatal("DeleteVhost")
	}
	if d.HasAccess("bob", "v") {
		t.Fatal("a deleted vhost's permissions stay")
	}
	if !slices.Equal(added, []string{"v"}) || !slices.Equal(removed, []string{"v"}) {
		t.Fatalf("hooks: added %v removed %v", added, removed)
	}
}

func TestDefinitionsFileAndAnonymous(t *testing.T) {
	f := filepath.Join(t.TempDir(), "defs.json")
	os.WriteFile(f, []byte(`{"users":[{"name":"imp","password_hash":"","tags":"monitoring"}],
		"vhosts":[{"name":"iv"}],"permissions":[{"user":"imp","vhost":"iv","configure":"","write":".*","read":".*"}]}`), 0o600)
	d := New(Options{DefinitionsFile: f, AnonymousUser: "anon"})
	if err := d.Load(); err != nil {
		t.Fatal(err)
	}
	if u, ok := d.User("imp"); !ok || !u.HasTag(auth.TagMonitoring) || !d.HasAccess("imp", "iv") {
		t.Fatalf("imported user: %+v %v", u, ok)
	}
	if !d.HasAccess("anon", "/") {
		t.Fatal("the anonymous user has no permissions on the default vhost")
	}
	bad := New(Options{DefinitionsFile: filepath.Join(t.TempDir(), "missing.json")})
	if err := bad.Load(); err == nil {
		t.Fatal("a missing definitions file loaded")
	}
}
