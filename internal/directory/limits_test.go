package directory

import (
	"bytes"
	"errors"
	"maps"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/turnstilemq/turnstile/internal/auth"
	"github.com/turnstilemq/turnstile/internal/definitions"
)

func TestLimitsSetClearAndPersist(t *testing.T) {
	dir := t.TempDir()
	st := open(t, dir)
	d := New(Options{Store: st})
	if err := d.Load(); err != nil {
		t.Fatal(err)
	}
	if _, err := d.AddVhost("iot"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.PutUser(auth.User{Name: "fleet"}); err != nil {
		t.Fatal(err)
	}
	for _, err := range []error{
		d.SetVhostLimit("iot", "max-connections", 100),
		d.SetVhostLimit("iot", "max-sessions", -1),
		d.SetVhostLimit("/", "max-retained", 0),
		d.SetUserLimit("fleet", "max-connections", 5),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := d.SetVhostLimit("iot", "max-queues", 1); !errors.Is(err, ErrUnknownLimit) {
		t.Fatalf("unknown vhost limit: %v", err)
	}
	if err := d.SetUserLimit("fleet", "max-sessions", 1); !errors.Is(err, ErrUnknownLimit) {
		t.Fatalf("unknown user limit: %v", err)
	}
	if err := d.SetVhostLimit("nope", "max-connections", 1); !errors.Is(err, ErrNoSuchVhost) {
		t.Fatalf("missing vhost: %v", err)
	}
	if err := d.SetUserLimit("nobody", "max-connections", 1); !errors.Is(err, ErrNoSuchUser) {
		t.Fatalf("missing user: %v", err)
	}
	if v, ok := d.VhostLimit("iot", "max-connections"); !ok || v != 100 {
		t.Fatalf("VhostLimit %d %v", v, ok)
	}
	if _, ok := d.VhostLimit("iot", "max-retained"); ok {
		t.Fatal("an unset limit is set")
	}
	if ok, err := d.ClearVhostLimit("iot", "max-sessions"); !ok || err != nil {
		t.Fatalf("ClearVhostLimit %v %v", ok, err)
	}
	if ok, _ := d.ClearVhostLimit("iot", "max-sessions"); ok {
		t.Fatal("cleared twice")
	}
	want := map[string]map[string]int64{"/": {"max-retained": 0}, "iot": {"max-connections": 100}}
	if got := d.VhostLimits(); !reflect.DeepEqual(got, want) {
		t.Fatalf("VhostLimits %v", got)
	}
	st.Close()

	// They are part of the stored definitions document: a restart has them.
	d2 := New(Options{Store: open(t, dir)})
	if err := d2.Load(); err != nil {
		t.Fatal(err)
	}
	if got := d2.VhostLimits(); !reflect.DeepEqual(got, want) {
		t.Fatalf("after a restart: %v", got)
	}
	if v, ok := d2.UserLimit("fleet", "max-connections"); !ok || v != 5 {
		t.Fatalf("user limit after a restart: %d %v", v, ok)
	}

	// Deleting the vhost or the user deletes their limits; created again, they have none.
	if _, err := d2.DeleteVhost("iot"); err != nil {
		t.Fatal(err)
	}
	if _, err := d2.DeleteUser("fleet"); err != nil {
		t.Fatal(err)
	}
	d2.AddVhost("iot")
	d2.PutUser(auth.User{Name: "fleet"})
	if _, ok := d2.VhostLimit("iot", "max-connections"); ok {
		t.Fatal("a re-created vhost inherited a limit")
	}
	if _, ok := d2.UserLimit("fleet", "max-connections"); ok {
		t.Fatal("a re-created user inherited a limit")
	}
}

// A RabbitMQ export imports its limits (the user's and the vhost-limits parameter), keeping the
// ones Turnstile enforces; the export writes them in the entries' "limits".
func TestLimitsImportExport(t *testing.T) {
	f, err := os.Open("../definitions/testdata/rabbitmq-3.13.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	defs, err := definitions.Parse(f, 0)
	if err != nil {
		t.Fatal(err)
	}
	d := New(Options{})
	if err := d.Load(); err != nil {
		t.Fatal(err)
	}
	d.SetVhostLimit("/", "max-sessions", 9) // replaced by the import's empty limits of "/"
	if err := d.Import(defs); err != nil {
		t.Fatal(err)
	}
	if got, want := d.VhostLimits(), map[string]map[string]int64{"iot": {"max-connections": 100}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("vhost limits %v, want %v", got, want)
	}
	if got, want := d.UserLimits(), map[string]map[string]int64{"sensor-fleet": {"max-connections": 5000}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("user limits %v, want %v", got, want)
	}
	var buf bytes.Buffer
	if err := d.Export().WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	again, err := definitions.Parse(bytes.NewReader(buf.Bytes()), 0)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]map[string]int64{}
	for _, l := range again.VhostLimits {
		got[l.Name] = maps.Clone(l.Values)
	}
	if !reflect.DeepEqual(got, map[string]map[string]int64{"iot": {"max-connections": 100}}) || !strings.Contains(buf.String(), `"max-connections": 5000`) {
		t.Fatalf("export:\n%s", buf.String())
	}
}
