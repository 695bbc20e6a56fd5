package definitions

import (
	"bytes"
	"errors"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func parseFile(t *testing.T, name string) *Definitions {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d, err := Parse(f, 0)
	if err != nil {
		t.Fatalf("Parse(%s): %v", name, err)
	}
	return d
}

func TestParseRabbitMQ313Export(t *testing.T) {
	d := parseFile(t, "testdata/rabbitmq-3.13.json")
	if err := d.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	wantUsers := []User{
		{"guest", "BMfxN8drrYcIqXZMr+pWTpDT0nMcOagMduLX0bjr4jwud/pN", "rabbit_password_hashing_sha256", []string{"administrator"}, ""},
		{"sensor-fleet", "nBLsnmJ8hn3rXz6cDq5i8M6QpW0+HEoCwqg1dAVcXfSrt6Ja", "rabbit_password_hashing_sha256", []string{}, ""},
		{"ops", "kI3GCqW5JLMJa4iX1lL1MEqkKVj3+mZVTdJdgrAtPx1Wj7Ub", "rabbit_password_hashing_sha256", []string{"monitoring", "management"}, ""},
		{"svc-oauth-only", "", "rabbit_password_hashing_sha256", []string{}, ""},
	}
	if !reflect.DeepEqual(d.Users, wantUsers) {
		t.Errorf("Users = %+v\nwant %+v", d.Users, wantUsers)
	}
	if want := []Vhost{{"/"}, {"iot"}}; !slices.Equal(d.Vhosts, want) {
		t.Errorf("Vhosts = %+v", d.Vhosts)
	}
	if len(d.Permissions) != 3 || d.Permissions[1] != (Permission{
		User: "sensor-fleet", Vhost: "iot", Configure: "^mqtt-subscription-.*",
		Write: `^(amq\.topic|mqtt-subscription-.*)$`, Read: `^(amq\.topic|mqtt-subscription-.*)$`,
	}) {
		t.Errorf("Permissions = %+v", d.Permissions)
	}
	if len(d.TopicPermissions) != 2 || d.TopicPermissions[1] != (TopicPermission{
		User: "sensor-fleet", Vhost: "iot", Exchange: "mqtt.default",
		Write: "^devices/{client_id}/", Read: "^devices/{client_id}/",
	}) {
		t.Errorf("TopicPermissions = %+v", d.TopicPermissions)
	}
	// "parameters" holds a vhost-limits entry, which is used (TestLimitsRabbitMQ313Export).
	wantIgnored := []string{"bindings", "exchanges", "global_parameters", "policies",
		"product_name", "product_version", "queues", "rabbit_version", "rabbitmq_version"}
	if !slices.Equal(d.Ignored, wantIgnored) {
		t.Errorf("Ignored = %v, want %v", d.Ignored, wantIgnored)
	}
	// The amq.topic topic permission is kept, with a warning that it is never checked; so is
	// the vhost limit max-queues, which Turnstile does not enforce.
	w := d.Warnings()
	if len(w) != 2 || !strings.HasPrefix(w[0], "topic_permissions[0].exchange: \"amq.topic\"") ||
		!strings.HasPrefix(w[1], `vhosts[1].limits.max-queues: "max-queues" is not a limit`) {
		t.Errorf("Warnings = %q", w)
	}
}

func TestParseLavinMQExport(t *testing.T) {
	d := parseFile(t, "testdata/lavinmq.json")
	if err := d.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	want := []User{
		// Algorithm names pass through as written; package auth resolves them.
		{"guest", "+pHuxkR9fCyrrwXjOD4BP4XbzO3l8LJr8YkThMgJ0yVHFRE+", "SHA256", []string{"administrator"}, ""},
		// No hashing_algorithm: RabbitMQ's import default. Tags as a comma-separated string.
		{"legacy", "7eb0d48c4a06c0dd1b9a0e5f0b5b6b13", DefaultImportAlgorithm, []string{"management", "policymaker"}, ""},
		// null password_hash: no password login.
		{"nopass", "", DefaultImportAlgorithm, nil, ""},
	}
	if !reflect.DeepEqual(d.Users, want) {
		t.Errorf("Users = %+v\nwant %+v", d.Users, want)
	}
	if len(d.Permissions) != 3 || d.TopicPermissions != nil {
		t.Errorf("Permissions = %+v, TopicPermissions = %+v", d.Permissions, d.TopicPermissions)
	}
	if want := []string{"bindings", "exchanges", "global_parameters", "policies", "parameters", "queues"}; !slices.Equal(d.Ignored, sorted(want)) {
		t.Errorf("Ignored = %v", d.Ignored)
	}
	if w := d.Warnings(); len(w) != 0 {
		t.Errorf("Warnings = %q", w)
	}
}

func sorted(s []string) []string { s = slices.Clone(s); slices.Sort(s); return s }

func TestTagsForms(t *testing.T) {
	tests := []struct {
		json string
		want []string
	}{
		{`"administrator"`, []string{"administrator"}},
		{`"administrator,monitoring"`, []string{"administrator", "monitoring"}},
		{`" management , , policymaker "`, []string{"management", "policymaker"}},
		{`""`, nil},
		{`[]`, []string{}},
		{`["impersonator","custom"]`, []string{"impersonator", "custom"}},
		{`null`, nil},
	}
	for _, tt := range tests {
		d, err := Parse(strings.NewReader(`{"users":[{"name":"u","password_hash":"x","tags":`+tt.json+`}]}`), 0)
		if err != nil {
			t.Errorf("tags %s: %v", tt.json, err)
			continue
		}
		if got := d.Users[0].Tags; !reflect.DeepEqual(got, tt.want) {
			t.Errorf("tags %s = %#v, want %#v", tt.json, got, tt.want)
		}
	}
}

func TestParseErrorsNamePaths(t *testing.T) {
	tests := []struct {
		name, json string
		want       []string // each a substring of the error
		is         error
	}{
		{"top level not an object", `[]`, []string{"want an object at the top level, got array"}, ErrType},
		{"syntax", "{\n  \"users\": [\n    {\"name\": \"a\",}\n  ]\n}", []string{"line 3, column 18"}, ErrSyntax},
		{"trailing data", `{} {}`, []string{"not valid JSON"}, ErrSyntax},
		{"users not an array", `{"users": {"name":"a"}}`, []string{"users: wrong JSON type: want an array, got object"}, ErrType},
		{"user not an object", `{"users": ["a"]}`, []string{"users[0]: wrong JSON type: want an object, got string"}, ErrType},
		{
			"tags wrong type", `{"users": [{"name":"a"},{"name":"b"},{"name":"c","tags":3}]}`,
			[]string{"users[2].tags: wrong JSON type: want a string or an array of strings, got number"}, ErrType,
		},
		{"tag wrong type", `{"users": [{"name":"a","tags":["x",true]}]}`, []string{"users[0].tags[1]: wrong JSON type: want a string, got boolean"}, ErrType},
		{"name missing", `{"users": [{"password_hash":"x"}]}`, []string{"users[0].name: missing"}, ErrMissing},
		{"name null", `{"vhosts": [{"name":null}]}`, []string{"vhosts[0].name: wrong JSON type: want a string, got null"}, ErrType},
		{"hash wrong type", `{"users": [{"name":"a","password_hash":1}]}`, []string{"users[0].password_hash: wrong JSON type"}, ErrType},
		{"algorithm wrong type", `{"users": [{"name":"a","hashing_algorithm":{}}]}`, []string{"users[0].hashing_algorithm: wrong JSON type"}, ErrType},
		{
			"permission fields", `{"permissions": [{"user":"a","vhost":"/","configure":".*","write":null}]}`,
			[]string{"permissions[0].read: missing", "permissions[0].write: wrong JSON type: want a string, got null"}, ErrMissing,
		},
		{"topic permission exchange", `{"topic_permissions": [{"user":"a","vhost":"/","exchange":5,"write":"","read":""}]}`, []string{"topic_permissions[0].exchange: wrong JSON type"}, ErrType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Parse(strings.NewReader(tt.json), 0)
			if err == nil {
				t.Fatalf("Parse = %+v, want an error", d)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if !errors.Is(err, tt.is) {
				t.Errorf("error %q is not %v", err, tt.is)
			}
		})
	}
}

func TestParseSizeLimit(t *testing.T) {
	doc := `{"users":[],"vhosts":[{"name":"/"}]}`
	if _, err := Parse(strings.NewReader(doc), int64(len(doc))); err != nil {
		t.Errorf("a document of exactly the limit: %v", err)
	}
	if _, err := Parse(strings.NewReader(doc), int64(len(doc)-1)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("a document one byte over the limit: %v, want ErrTooLarge", err)
	}
	// The reader is not drained past the limit.
	r := &countingReader{r: strings.NewReader(strings.Repeat(" ", 1<<20) + "{}")}
	if _, err := Parse(r, 1000); !errors.Is(err, ErrTooLarge) {
		t.Errorf("large input: %v", err)
	}
	if r.n > 1000+4096 {
		t.Errorf("Parse read %d bytes with a limit of 1000", r.n)
	}
}

type countingReader struct {
	r interface{ Read([]byte) (int, error) }
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	if len(p) > 512 {
		p = p[:512]
	}
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func TestValidateErrors(t *testing.T) {
	base := func() *Definitions {
		return &Definitions{
			Users:            []User{{Name: "a", PasswordHash: "h", HashingAlgorithm: DefaultImportAlgorithm}, {Name: "b"}},
			Vhosts:           []Vhost{{"/"}, {"v"}},
			Permissions:      []Permission{{User: "a", Vhost: "/", Configure: ".*", Write: ".*", Read: ".*"}},
			TopicPermissions: []TopicPermission{{User: "a", Vhost: "/", Exchange: "mqtt.default", Write: "^{username}/", Read: ".*"}},
		}
	}
	if err := base().Validate(); err != nil {
		t.Fatalf("base: %v", err)
	}
	tests := []struct {
		name   string
		change func(d *Definitions)
		path   string
		is     error
	}{
		{"empty user name", func(d *Definitions) { d.Users[1].Name = "" }, "users[1].name", ErrEmpty},
		{"empty vhost name", func(d *Definitions) { d.Vhosts[1].Name = "" }, "vhosts[1].name", ErrEmpty},
		{"duplicate user", func(d *Definitions) { d.Users[1].Name = "a" }, "users[1].name", ErrDuplicate},
		{"duplicate vhost", func(d *Definitions) { d.Vhosts[1].Name = "/" }, "vhosts[1].name", ErrDuplicate},
		{"permission empty user", func(d *Definitions) { d.Permissions[0].User = "" }, "permissions[0].user", ErrEmpty},
		{"permission empty vhost", func(d *Definitions) { d.Permissions[0].Vhost = "" }, "permissions[0].vhost", ErrEmpty},
		{"permission unknown user", func(d *Definitions) { d.Permissions[0].User = "zed" }, "permissions[0].user", ErrUnknownUser},
		{"permission unknown vhost", func(d *Definitions) { d.Permissions[0].Vhost = "nope" }, "permissions[0].vhost", ErrUnknownVhost},
		{"permission bad configure", func(d *Definitions) { d.Permissions[0].Configure = "(" }, "permissions[0].configure", ErrBadRegex},
		{"permission bad write", func(d *Definitions) { d.Permissions[0].Write = "[a-" }, "permissions[0].write", ErrBadRegex},
		{"permission bad read", func(d *Definitions) { d.Permissions[0].Read = "x**" }, "permissions[0].read", ErrBadRegex},
		{"duplicate permission", func(d *Definitions) { d.Permissions = append(d.Permissions, d.Permissions[0]) }, "permissions[1]", ErrDuplicate},
		{"topic empty user", func(d *Definitions) { d.TopicPermissions[0].User = "" }, "topic_permissions[0].user", ErrEmpty},
		{"topic unknown user", func(d *Definitions) { d.TopicPermissions[0].User = "zed" }, "topic_permissions[0].user", ErrUnknownUser},
		{"topic unknown vhost", func(d *Definitions) { d.TopicPermissions[0].Vhost = "nope" }, "topic_permissions[0].vhost", ErrUnknownVhost},
		{"topic empty exchange", func(d *Definitions) { d.TopicPermissions[0].Exchange = "" }, "topic_permissions[0].exchange", ErrEmpty},
		{"topic bad write", func(d *Definitions) { d.TopicPermissions[0].Write = "^{client_id}(" }, "topic_permissions[0].write", ErrBadRegex},
		{"topic bad read", func(d *Definitions) { d.TopicPermissions[0].Read = "\\" }, "topic_permissions[0].read", ErrBadRegex},
		{"duplicate topic permission", func(d *Definitions) { d.TopicPermissions = append(d.TopicPermissions, d.TopicPermissions[0]) }, "topic_permissions[1]", ErrDuplicate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := base()
			tt.change(d)
			err := d.Validate()
			if !errors.Is(err, tt.is) {
				t.Fatalf("Validate = %v, want %v", err, tt.is)
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Path != tt.path {
				t.Errorf("Validate = %v, want the path %q", err, tt.path)
			}
		})
	}
}

func TestValidateReportsEverything(t *testing.T) {
	d := &Definitions{
		Users:       []User{{Name: ""}, {Name: "a"}, {Name: "a"}},
		Vhosts:      []Vhost{{""}},
		Permissions: []Permission{{User: "x", Vhost: "y", Configure: "(", Write: "(", Read: "("}},
	}
	err := d.Validate()
	u, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("Validate = %v, want joined errors", err)
	}
	if n := len(u.Unwrap()); n != 8 {
		t.Errorf("Validate reported %d errors, want 8:\n%v", n, err)
	}
}

func TestWarningsUnknownTags(t *testing.T) {
	d := &Definitions{Users: []User{{Name: "a", Tags: []string{"administrator", "monitoring", "management", "impersonator", "policymaker"}}, {Name: "b", Tags: []string{"ops"}}}}
	if err := d.Validate(); err != nil {
		t.Errorf("a custom tag is an error: %v", err)
	}
	w := d.Warnings()
	if len(w) != 1 || !strings.HasPrefix(w[0], `users[1].tags[0]: unknown tag "ops"`) {
		t.Errorf("Warnings = %q", w)
	}
}

func TestRoundTrip(t *testing.T) {
	for _, name := range []string{"testdata/rabbitmq-3.13.json", "testdata/lavinmq.json"} {
		t.Run(name, func(t *testing.T) {
			d := parseFile(t, name)
			var buf bytes.Buffer
			if err := d.WriteJSON(&buf); err != nil {
				t.Fatal(err)
			}
			d2, err := Parse(bytes.NewReader(buf.Bytes()), 0)
			if err != nil {
				t.Fatalf("Parse(WriteJSON): %v\n%s", err, buf.String())
			}
			if len(d2.Ignored) != 0 {
				t.Errorf("written document has extra keys %v", d2.Ignored)
			}
			// Same content, in the written (sorted) order; nil tags come back as [].
			d.Ignored = nil
			for i := range d.Users {
				if d.Users[i].Tags == nil {
					d.Users[i].Tags = []string{}
				}
			}
			var again bytes.Buffer
			if err := d2.WriteJSON(&again); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf.Bytes(), again.Bytes()) {
				t.Errorf("second write differs:\n%s\n---\n%s", buf.String(), again.String())
			}
			if !sameSet(d.Users, d2.Users) || !sameSet(d.Vhosts, d2.Vhosts) ||
				!sameSet(d.Permissions, d2.Permissions) || !sameSet(d.TopicPermissions, d2.TopicPermissions) {
				t.Errorf("round trip changed the content:\n%+v\n%+v", d, d2)
			}
		})
	}
}

func sameSet[T any](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.ContainsFunc(b, func(y T) bool { return reflect.DeepEqual(x, y) }) {
			return false
		}
	}
	return true
}

func TestWriteJSONShape(t *testing.T) {
	d := &Definitions{
		Users:       []User{{Name: "z", HashingAlgorithm: "bcrypt", PasswordHash: "$2a$10$x"}, {Name: "a", Tags: []string{"administrator"}}},
		Vhosts:      []Vhost{{"b"}, {"/"}},
		Permissions: []Permission{{User: "z", Vhost: "b", Write: "a&b<c>"}, {User: "a", Vhost: "b"}, {User: "z", Vhost: "/"}},
	}
	var buf bytes.Buffer
	if err := d.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	want := `{
  "users": [
    {
      "name": "a",
      "password_hash": "",
      "hashing_algorithm": "",
      "tags": [
        "administrator"
      ]
    },
    {
      "name": "z",
      "password_hash": "$2a$10$x",
      "hashing_algorithm": "bcrypt",
      "tags": []
    }
  ],
  "vhosts": [
    {
      "name": "/"
    },
    {
      "name": "b"
    }
  ],
  "permissions": [
    {
      "user": "z",
      "vhost": "/",
      "configure": "",
      "write": "",
      "read": ""
    },
    {
      "user": "a",
      "vhost": "b",
      "configure": "",
      "write": "",
      "read": ""
    },
    {
      "user": "z",
      "vhost": "b",
      "configure": "",
      "write": "a&b<c>",
      "read": ""
    }
  ],
  "topic_permissions": []
}
`
	if buf.String() != want {
		t.Errorf("WriteJSON =\n%s\nwant\n%s", buf.String(), want)
	}
	if d.Users[0].Name != "z" || d.Users[0].Tags != nil {
		t.Error("WriteJSON modified its receiver")
	}
}
