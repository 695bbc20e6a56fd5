package definitions

import (
	"bytes"
	"os"
	"testing"
)

// FuzzParse feeds arbitrary documents to Parse and Validate. Neither may panic, and a document
// that passes both must survive an export: WriteJSON's output parses and validates again and
// writes out byte for byte the same (what `ctl export_definitions` writes, `import_definitions`
// takes back unchanged).
func FuzzParse(f *testing.F) {
	for _, name := range []string{"testdata/lavinmq.json", "testdata/rabbitmq-3.13.json"} {
		if data, err := os.ReadFile(name); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte(`{"users":[{"name":"a","password_hash":"","tags":"administrator,monitoring"}],"vhosts":[{"name":"/"}],` +
		`"permissions":[{"user":"a","vhost":"/","configure":"^$","write":".*","read":".*"}],` +
		`"topic_permissions":[{"user":"a","vhost":"/","exchange":"mqtt.default","write":"^d/{client_id}/","read":"^d/"}]}`))
	f.Add([]byte(`{"users":null,"vhosts":[{"name":"a\u0000b"}],"permissions":[{}]}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"users":[{"name":"x","tags":["a",1]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := Parse(bytes.NewReader(data), 1<<20)
		if err != nil {
			if d != nil {
				t.Fatal("Parse failed and returned definitions")
			}
			return
		}
		if d.Validate() != nil {
			_ = d.Warnings()
			return
		}
		var first bytes.Buffer
		if err := d.WriteJSON(&first); err != nil {
			t.Fatalf("WriteJSON: %v", err)
		}
		again, err := Parse(bytes.NewReader(first.Bytes()), 1<<20)
		if err != nil {
			t.Fatalf("an export does not parse: %v\n%s", err, first.Bytes())
		}
		if err := again.Validate(); err != nil {
			t.Fatalf("an export does not validate: %v\n%s", err, first.Bytes())
		}
		var second bytes.Buffer
		if err := again.WriteJSON(&second); err != nil {
			t.Fatalf("WriteJSON: %v", err)
		}
		if !bytes.Equal(first.Bytes(), second.Bytes()) {
			t.Fatalf("an export changes when imported and exported again:\n%s\n---\n%s", first.Bytes(), second.Bytes())
		}
	})
}
