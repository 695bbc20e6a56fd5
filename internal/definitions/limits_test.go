package definitions

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// limitsOf returns the merged limits of each name, as an import applies them.
func limitsOf(list []Limits) map[string]map[string]int64 { return mergeLimits(list) }

// RabbitMQ exports user limits in the user entries and vhost limits both in the vhost entries
// and as "vhost-limits" runtime parameters, which is what its import reads.
func TestLimitsRabbitMQ313Export(t *testing.T) {
	d := parseFile(t, "testdata/rabbitmq-3.13.json")
	wantUsers := map[string]map[string]int64{"guest": {}, "sensor-fleet": {"max-connections": 5000}, "ops": {}, "svc-oauth-only": {}}
	if got := limitsOf(d.UserLimits); !reflect.DeepEqual(got, wantUsers) {
		t.Errorf("user limits %v, want %v", got, wantUsers)
	}
	// The parameter replaces the entry's own limits of "iot".
	wantVhosts := map[string]map[string]int64{"/": {}, "iot": {"max-connections": 100}}
	if got := limitsOf(d.VhostLimits); !reflect.DeepEqual(got, wantVhosts) {
		t.Errorf("vhost limits %v, want %v", got, wantVhosts)
	}
}

func TestLimitsShapes(t *testing.T) {
	tests := []struct {
		json string
		want map[string]int64 // nil: no limits entry
	}{
		{`{"max-connections": 10, "max-sessions": -1}`, map[string]int64{"max-connections": 10, "max-sessions": -1}},
		{`[]`, map[string]int64{}},
		{`{}`, map[string]int64{}},
		{`[{"max-connections": 1}, {"max-retained": 2}]`, map[string]int64{"max-connections": 1, "max-retained": 2}},
		{`null`, nil},
	}
	for _, tt := range tests {
		d, err := Parse(strings.NewReader(`{"vhosts":[{"name":"v","limits":`+tt.json+`}]}`), 0)
		if err != nil {
			t.Errorf("limits %s: %v", tt.json, err)
			continue
		}
		if tt.want == nil {
			if len(d.VhostLimits) != 0 {
				t.Errorf("limits %s: %+v, want no entry", tt.json, d.VhostLimits)
			}
			continue
		}
		if len(d.VhostLimits) != 1 || !reflect.DeepEqual(d.VhostLimits[0].Values, tt.want) {
			t.Errorf("limits %s: %+v, want %v", tt.json, d.VhostLimits, tt.want)
		}
	}
	// Every shape error at once, each naming its path.
	_, err := Parse(strings.NewReader(`{"vhosts":[{"name":"v","limits":{"max-connections":1.5,"max-sessions":"10"}}],`+
		`"users":[{"name":"u","limits":"many"}],"parameters":[{"component":"vhost-limits","vhost":"v","value":[5]}]}`), 0)
	for _, path := range []string{"vhosts[0].limits.max-connections", "vhosts[0].limits.max-sessions", "users[0].limits",
		"parameters[0].value[0]"} {
		if err == nil || !strings.Contains(err.Error(), path+": ") || !errors.Is(err, ErrType) {
			t.Errorf("error %v does not name %s", err, path)
		}
	}
}

func TestLimitsValidateAndWrite(t *testing.T) {
	d, err := Parse(strings.NewReader(`{"vhosts":[{"name":"v"}],"users":[{"name":"u","limits":{"max-connections":3,"max-channels":9}}],`+
		`"parameters":[{"component":"vhost-limits","vhost":"v","value":{"max-sessions":7}},`+
		`{"component":"federation-upstream","vhost":"v","name":"x","value":{}}]}`), 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	if w := d.Warnings(); len(w) != 1 || !strings.Contains(w[0], `users[0].limits.max-channels: "max-channels" is not a limit`) {
		t.Errorf("Warnings %q", w)
	}
	var buf bytes.Buffer
	if err := d.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"name": "v",` + "\n" + `      "limits": {` + "\n" + `        "max-sessions": 7`, `"max-connections": 3`} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("written document lacks %q:\n%s", want, buf.String())
		}
	}
	// A vhost-limits parameter for a vhost the document does not define is an error.
	d, err = Parse(strings.NewReader(`{"parameters":[{"component":"vhost-limits","vhost":"nope","value":{"max-connections":1}}]}`), 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Validate(); !errors.Is(err, ErrUnknownVhost) || !strings.HasPrefix(err.Error(), "parameters[0].value: ") {
		t.Errorf("Validate: %v", err)
	}
}
