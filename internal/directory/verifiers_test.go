package directory

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/turnstilemq/turnstile/internal/auth"
	"github.com/turnstilemq/turnstile/internal/store"
)

var fastHasher = auth.Hasher{BcryptCost: bcrypt.MinCost}

// records returns the stored verifier records by user name.
func records(t *testing.T, st store.Store) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	if err := st.LoadRecords(VerifierNamespace, func(k string, v []byte) error { out[k] = v; return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

// A password set from its plaintext gets a verifier, stored in its own record behind the change
// and attached again at the next start; the definitions document never holds it.
func TestVerifiersPersist(t *testing.T) {
	dir := t.TempDir()
	key := auth.RandomPasswordKey()
	st := open(t, dir)
	d := New(Options{Store: st, DefaultUser: "guest", DefaultPassword: "guest", Hasher: fastHasher, PasswordKey: key})
	if err := d.Load(); err != nil {
		t.Fatal(err)
	}
	if _, ok := d.Users().Verifier("guest"); !ok {
		t.Fatal("the default user created on first start has no verifier")
	}
	alice, err := d.PutUserWithPassword(auth.User{Name: "alice", Tags: []auth.Tag{auth.TagManagement}}, []byte("wonderland"))
	if err != nil {
		t.Fatal(err)
	}
	if good, _ := auth.VerifyPassword(alice.HashAlgorithm, alice.PasswordHash, []byte("wonderland")); !good || alice.HashAlgorithm != auth.AlgBcrypt {
		t.Fatal("PutUserWithPassword did not hash the password with the Hasher")
	}
	v, ok := d.Users().Verifier("alice")
	if !ok || !v.For(&alice) || !key.Made(&v) {
		t.Fatal("alice has no verifier for her stored hash")
	}
	if _, err := d.PutUserWithPassword(auth.User{Name: "empty"}, nil); !errors.Is(err, ErrBadPassword) || !strings.HasPrefix(err.Error(), "password: ") {
		t.Fatalf("empty password: %v, want ErrBadPassword", err)
	}
	d.Close()
	recs := records(t, st)
	want, _ := v.MarshalBinary()
	if len(recs) != 2 || !bytes.Equal(recs["alice"], want) || recs["guest"] == nil {
		t.Fatalf("stored verifier records: %d, alice's as kept: %v", len(recs), bytes.Equal(recs["alice"], want))
	}
	doc, err := st.LoadDefinitions()
	if err != nil {
		t.Fatal(err)
	}
	mac := want[1+8+32 : 1+8+32+32]
	if bytes.Contains(doc, mac) || strings.Contains(string(doc), "verifier") {
		t.Fatal("the stored definitions document holds a verifier")
	}
	var buf bytes.Buffer
	d.Export().WriteJSON(&buf)
	if bytes.Contains(buf.Bytes(), mac) || strings.Contains(buf.String(), "verifier") {
		t.Fatal("the definitions export holds a verifier")
	}
	st.Close()

	// The next start attaches them again.
	st = open(t, dir)
	d = New(Options{Store: st, Hasher: fastHasher, PasswordKey: key})
	if err := d.Load(); err != nil {
		t.Fatal(err)
	}
	if got, ok := d.Users().Verifier("alice"); !ok || got != v {
		t.Fatal("alice's verifier was not loaded")
	}
	// Deleting the user deletes the record behind it.
	if _, err := d.DeleteUser("alice"); err != nil {
		t.Fatal(err)
	}
	d.Close()
	if recs := records(t, st); recs["alice"] != nil || recs["guest"] == nil {
		t.Fatalf("after deleting alice, records of %d users, alice's present: %v", len(recs), recs["alice"] != nil)
	}
}

// Stored verifiers are dropped at start, record and all, when they no longer fit: made with
// another key, or for a hash a definitions file has since replaced.
func TestStaleVerifiersDropped(t *testing.T) {
	dir := t.TempDir()
	key := auth.RandomPasswordKey()
	st := open(t, dir)
	d := New(Options{Store: st, Hasher: fastHasher, PasswordKey: key})
	if err := d.Load(); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"alice", "bob"} {
		if _, err := d.PutUserWithPassword(auth.User{Name: name}, []byte(name+"-pw")); err != nil {
			t.Fatal(err)
		}
	}
	d.Close()
	st.Close()

	// A definitions file gives bob a new hash: his verifier is for the old one.
	h, _ := bcrypt.GenerateFromPassword([]byte("new"), bcrypt.MinCost)
	defs := filepath.Join(t.TempDir(), "defs.json")
	os.WriteFile(defs, []byte(`{"users": [{"name": "bob", "password_hash": "`+string(h)+`", "hashing_algorithm": "bcrypt", "tags": ""}]}`), 0o600)
	st = open(t, dir)
	d = New(Options{Store: st, Hasher: fastHasher, PasswordKey: key, DefinitionsFile: defs})
	if err := d.Load(); err != nil {
		t.Fatal(err)
	}
	if _, ok := d.Users().Verifier("alice"); !ok {
		t.Fatal("alice's verifier was dropped")
	}
	if _, ok := d.Users().Verifier("bob"); ok {
		t.Fatal("bob's verifier survived a new hash from the definitions file: his old password would log in")
	}
	d.Close()
	if recs := records(t, st); recs["bob"] != nil || recs["alice"] == nil {
		t.Fatal("bob's stale record was not deleted")
	}
	st.Close()

	// A new key: every stored verifier is dropped.
	st = open(t, dir)
	d = New(Options{Store: st, Hasher: fastHasher, PasswordKey: auth.RandomPasswordKey()})
	if err := d.Load(); err != nil {
		t.Fatal(err)
	}
	if _, ok := d.Users().Verifier("alice"); ok {
		t.Fatal("a verifier made with another key was kept")
	}
	d.Close()
	if recs := records(t, st); len(recs) != 0 {
		t.Fatalf("%d records of another key left", len(recs))
	}
}

// Without a key there are no verifiers, and without a store they live in memory only.
func TestVerifiersWithoutKeyOrStore(t *testing.T) {
	d := New(Options{Hasher: fastHasher})
	if err := d.Load(); err != nil {
		t.Fatal(err)
	}
	if _, err := d.PutUserWithPassword(auth.User{Name: "alice"}, []byte("pw")); err != nil {
		t.Fatal(err)
	}
	if _, ok := d.Users().Verifier("alice"); ok {
		t.Fatal("a verifier without a key")
	}
	d = New(Options{Hasher: fastHasher, PasswordKey: auth.RandomPasswordKey()})
	if err := d.Load(); err != nil {
		t.Fatal(err)
	}
	if _, err := d.PutUserWithPassword(auth.User{Name: "alice"}, []byte("pw")); err != nil {
		t.Fatal(err)
	}
	if _, ok := d.Users().Verifier("alice"); !ok {
		t.Fatal("no verifier in memory")
	}
	d.Close()
}

// The writer persists what the registry holds when it writes, whatever order the changes came
// in, and never blocks the change that marked it.
func TestVerifierWriterWritesTheCurrentState(t *testing.T) {
	st := open(t, t.TempDir())
	key := auth.RandomPasswordKey()
	users := auth.NewUsers()
	w := newVerifierWriter(st, users, nil)
	users.OnVerifierChange(w.mark)
	u := users.Put(auth.User{Name: "alice", HashAlgorithm: auth.AlgBcrypt, PasswordHash: "$2a$04$aaaaaaaaaaaaaaaaaaaaaa"})
	v1 := key.NewVerifier(u, []byte("one"))
	users.SetVerifier("alice", v1)
	u.PasswordHash = "$2a$04$bbbbbbbbbbbbbbbbbbbbbb"
	u = users.Put(u) // drops v1
	v2 := key.NewVerifier(u, []byte("two"))
	users.SetVerifier("alice", v2)
	w.mark("alice") // a late mark of the same name changes nothing
	w.close()
	want, _ := v2.MarshalBinary()
	if got := records(t, st)["alice"]; !bytes.Equal(got, want) {
		t.Fatal("the stored verifier is not the current one")
	}
	users.Delete("alice") // after close: not persisted, and no goroutine started
	if w.running {
		t.Fatal("a mark after close started the writer")
	}
}
