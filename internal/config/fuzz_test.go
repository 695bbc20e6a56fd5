package config

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary files to the INI decoder. It must never panic; a file it accepts
// must validate again unchanged; a file it refuses must be answered with errors that each name
// the file, so an operator can find the problem.
func FuzzParse(f *testing.F) {
	f.Add(Sample())
	f.Add([]byte("[main]\nlog_level = debug\n[mqtt]\nport = 1883\nbind = 127.0.0.1\n"))
	f.Add([]byte("[mqtt]\nmax_packet_size = 1048576\nmax_queued_bytes = 1\n"))
	f.Add([]byte("[oauth]\nissuer = http://127.0.0.1:1/\n[main]\nauth_backends = local,oauth\n"))
	f.Add([]byte("[tokens]\nport = 8089\nsubscribed_notices = tcp,ws\n"))
	f.Add([]byte("[main\nkey\n=\n[]\n\x00\xff"))
	f.Add([]byte("[mqtt]\nport = \"1883\"\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.ini", data)
		if err == nil {
			if c == nil {
				t.Fatal("Parse accepted the file and returned no configuration")
			}
			if err := c.Validate(); err != nil {
				t.Fatalf("Parse accepted a configuration that Validate refuses: %v", err)
			}
			return
		}
		if c != nil {
			t.Fatal("Parse refused the file and returned a configuration")
		}
		var list interface{ Unwrap() []error }
		if !errors.As(err, &list) {
			t.Fatalf("error %T is not a joined list of problems: %v", err, err)
		}
		for _, e := range list.Unwrap() {
			var ce *Error
			if !errors.As(e, &ce) {
				t.Fatalf("problem %T is not a *config.Error: %v", e, e)
			}
			if ce.File != "fuzz.ini" || !strings.HasPrefix(ce.Error(), "fuzz.ini") {
				t.Fatalf("problem does not name the file: %q", ce.Error())
			}
		}
	})
}
