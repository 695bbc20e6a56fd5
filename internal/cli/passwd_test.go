package cli

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/turnstilemq/turnstile/internal/auth"
)

func checkHash(t *testing.T, alg, hash, pw string) {
	t.Helper()
	if !strings.HasPrefix(hash, "$2a$") && !strings.HasPrefix(hash, "$2b$") {
		t.Errorf("hash %q is not bcrypt", hash)
	}
	if ok, err := auth.VerifyPassword(alg, hash, []byte(pw)); !ok || err != nil {
		t.Errorf("VerifyPassword(%q, %q, %q) = %v, %v", alg, hash, pw, ok, err)
	}
}

func TestPasswdArgument(t *testing.T) {
	for _, name := range []string{"passwd", "hash_password"} {
		code, stdout, stderr := execute(t, name, "s3cret")
		if code != 0 || stderr != "" || !strings.HasSuffix(stdout, "\n") || strings.Count(stdout, "\n") != 1 {
			t.Fatalf("%s: exit %d, stdout %q, stderr %q", name, code, stdout, stderr)
		}
		checkHash(t, auth.AlgBcrypt, strings.TrimSuffix(stdout, "\n"), "s3cret")
	}
}

func TestPasswdStdin(t *testing.T) {
	code, stdout, stderr := executeIn(t, strings.NewReader("from stdin\r\nignored\n"), "passwd")
	if code != 0 || stderr != "" { // not a terminal: no prompt
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	checkHash(t, auth.AlgBcrypt, strings.TrimSuffix(stdout, "\n"), "from stdin")
}

func TestReadLine(t *testing.T) {
	for in, want := range map[string]string{
		"pw\n":              "pw",
		"crlf\r\nignored\n": "crlf",
		"no newline":        "no newline",
		" spaces kept \n":   " spaces kept ",
		"ünïcödé\nsecond\n": "ünïcödé",
		"\n":                "",
		"":                  "",
		strings.Repeat("p", passwdMaxLine) + "\r\n": strings.Repeat("p", passwdMaxLine),
	} {
		if got, err := readLine(strings.NewReader(in)); got != want || err != nil {
			t.Errorf("readLine(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if got, err := readLine(strings.NewReader(strings.Repeat("p", passwdMaxLine+1) + "\n")); err == nil {
		t.Errorf("a line over the limit was read: %d bytes", len(got))
	}
}

func TestPasswdJSON(t *testing.T) {
	code, stdout, stderr := executeIn(t, strings.NewReader("pw\n"), "passwd", "--json")
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	var got map[string]string
	if err := json.Unmarshal([]byte(stdout), &got); err != nil || len(got) != 2 {
		t.Fatalf("stdout %q: %v", stdout, err)
	}
	if got["hashing_algorithm"] != "lavinmq_bcrypt" {
		t.Errorf("hashing_algorithm %q", got["hashing_algorithm"])
	}
	checkHash(t, got["hashing_algorithm"], got["password_hash"], "pw")
	if ok, _ := auth.VerifyPassword(got["hashing_algorithm"], got["password_hash"], []byte("px")); ok {
		t.Errorf("the hash verifies a wrong password")
	}
}

func TestPasswdErrors(t *testing.T) {
	for _, tt := range []struct {
		stdin   string
		args    []string
		wantErr string
	}{
		{"", []string{"passwd"}, "turnstile: empty password\n"},
		{"\n", []string{"passwd"}, "turnstile: empty password\n"},
		{"", []string{"passwd", ""}, "turnstile: empty password\n"},
		{"", []string{"passwd", strings.Repeat("p", 73)},
			"turnstile: auth: password longer than 72 bytes cannot be hashed with bcrypt\n"},
		{strings.Repeat("p", 5000), []string{"passwd"}, "turnstile: reading the password: line longer than 4096 bytes\n"},
		{"", []string{"passwd", "a", "b"}, "turnstile: accepts at most 1 arg(s), received 2\n"},
	} {
		code, stdout, stderr := executeIn(t, strings.NewReader(tt.stdin), tt.args...)
		if code != 1 || stdout != "" || stderr != tt.wantErr {
			t.Errorf("%q: exit %d, stdout %q, stderr %q, want %q", tt.args, code, stdout, stderr, tt.wantErr)
		}
	}
}
