package auth

import (
	"fmt"
	"sync"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func TestUsersRegistry(t *testing.T) {
	var r Users // the zero value is ready
	if _, ok := r.Get("alice"); ok || r.Len() != 0 || r.Version() != 0 {
		t.Fatal("zero registry not empty")
	}
	tags := []Tag{TagMonitoring}
	r.Put(User{Name: "bob", HashAlgorithm: AlgSHA256, PasswordHash: guestSHA256, Tags: tags})
	r.Put(User{Name: "alice"})
	if r.Len() != 2 || r.Version() != 2 {
		t.Fatalf("len %d version %d", r.Len(), r.Version())
	}

	// Copies in, copies out.
	tags[0] = TagAdministrator
	u, ok := r.Get("bob")
	if !ok || u.Tags[0] != TagMonitoring || !u.HasTag(TagMonitoring) || u.HasTag(TagAdministrator) {
		t.Fatalf("Get(bob) = %+v, %v", u, ok)
	}
	u.Tags[0] = TagPolicymaker
	if u2, _ := r.Get("bob"); u2.Tags[0] != TagMonitoring {
		t.Fatal("Get returned the stored slice")
	}

	if l := r.List(); len(l) != 2 || l[0].Name != "alice" || l[1].Name != "bob" {
		t.Fatalf("List = %+v", l)
	}
	r.Put(User{Name: "bob", Tags: []Tag{TagManagement}}) // replace
	if u, _ := r.Get("bob"); u.PasswordHash != "" || !u.HasTag(TagManagement) || r.Version() != 3 {
		t.Fatalf("replace: %+v version %d", u, r.Version())
	}
	if !r.Delete("bob") || r.Delete("bob") || r.Version() != 4 || r.Len() != 1 {
		t.Fatalf("delete: version %d len %d", r.Version(), r.Len())
	}
}

func TestUsersConcurrentUse(t *testing.T) {
	r := NewUsers()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				name := fmt.Sprintf("u%d", i%20)
				switch (g + i) % 4 {
				case 0:
					r.Put(User{Name: name, Tags: []Tag{TagManagement}})
				case 1:
					r.Delete(name)
				case 2:
					if u, ok := r.Get(name); ok {
						u.Tags = append(u.Tags, TagAdministrator)
					}
				default:
					for _, u := range r.List() {
						_ = u.HasTag(TagManagement)
					}
				}
			}
		})
	}
	wg.Wait()
	for _, u := range r.List() {
		if len(u.Tags) != 1 {
			t.Fatalf("%s has tags %v", u.Name, u.Tags)
		}
	}
}

func TestDefaultUserIsAdministratorWithBcrypt(t *testing.T) {
	u, err := DefaultUser("guest", "guest")
	if err != nil {
		t.Fatal(err)
	}
	if u.Name != "guest" || u.HashAlgorithm != AlgBcrypt || !u.HasTag(TagAdministrator) || len(u.Tags) != 1 {
		t.Fatalf("DefaultUser = %+v", u)
	}
	// The hash is HashPassword's at the default cost (verified in TestHashPasswordBcryptAtDefaultCost).
	if cost, err := bcrypt.Cost([]byte(u.PasswordHash)); err != nil || cost != DefaultBcryptCost {
		t.Fatalf("cost %d, %v", cost, err)
	}
	if _, err := DefaultUser("guest", ""); err == nil {
		t.Fatal("DefaultUser accepted an empty password")
	}
}
