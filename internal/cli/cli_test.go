package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// execute runs the command line in-process and returns its exit status, stdout and stderr.
func execute(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestValidateConfigGood(t *testing.T) {
	path := writeFile(t, "turnstile.ini", "[main]\nlog_level = debug\n[mqtt]\nport = 1884\n")
	code, stdout, stderr := execute(t, "validate-config", "--config", path)
	if code != 0 || stdout != "configuration OK: "+path+"\n" || stderr != "" {
		t.Errorf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	code, stdout, _ = execute(t, "validate-config", "-c", path)
	if code != 0 || !strings.HasPrefix(stdout, "configuration OK: ") {
		t.Errorf("-c: exit %d, stdout %q", code, stdout)
	}
}

func TestValidateConfigBad(t *testing.T) {
	path := writeFile(t, "turnstile.ini", "[mqtt]\nport = abc\nmax_packet_size = 1\n[amqp]\n")
	code, stdout, stderr := execute(t, "validate-config", "--config", path)
	want := path + ":2: [mqtt] port: \"abc\" is not an integer\n" +
		path + ":3: [mqtt] max_packet_size: 1 is out of range 2..268435455\n" +
		path + ":4: [amqp] unknown section (known sections: main, mqtt, mgmt, oauth, tokens)\n"
	if code != 1 || stdout != "" || stderr != want {
		t.Errorf("exit %d, stdout %q, stderr:\n%s\nwant exit 1 and stderr:\n%s", code, stdout, stderr, want)
	}
}

func TestValidateConfigMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.ini")
	code, stdout, stderr := execute(t, "validate-config", "--config", path)
	if code != 1 || stdout != "" || !strings.Contains(stderr, path) || strings.Count(stderr, "\n") != 1 {
		t.Errorf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

func TestValidateConfigNeedsFlag(t *testing.T) {
	code, stdout, stderr := execute(t, "validate-config")
	if code != 1 || stdout != "" || !strings.Contains(stderr, `"config" not set`) || strings.Contains(stderr, "Usage:") {
		t.Errorf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

func TestVersion(t *testing.T) {
	old := Version
	Version = "1.2.3-test"
	t.Cleanup(func() { Version = old })

	code, stdout, stderr := execute(t, "--version")
	if code != 0 || stdout != "turnstile 1.2.3-test\n" || stderr != "" {
		t.Errorf("--version: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	// version prints the same first line, then what the build info knows (a test binary has the
	// module and the toolchain, but no VCS stamp).
	code, stdout, stderr = execute(t, "version")
	if code != 0 || !strings.HasPrefix(stdout, "turnstile 1.2.3-test\n") || !strings.Contains(stdout, "\n  go:        go1.") || stderr != "" {
		t.Errorf("version: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if code, _, stderr := execute(t, "version", "extra"); code != 1 || stderr == "" {
		t.Errorf("version extra: exit %d, stderr %q", code, stderr)
	}
}

func TestUnknownCommand(t *testing.T) {
	code, stdout, stderr := execute(t, "frobnicate")
	if code != 1 || stdout != "" || !strings.HasPrefix(stderr, "turnstile: unknown command") {
		t.Errorf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

func TestNoArguments(t *testing.T) {
	// nil must not make cobra fall back to os.Args (the test binary's flags).
	code, stdout, _ := execute(t)
	if code != 0 || !strings.Contains(stdout, "validate-config") {
		t.Errorf("exit %d, stdout %q", code, stdout)
	}
}

func TestServeBadConfig(t *testing.T) {
	// serve reports configuration errors exactly as validate-config does, and never starts.
	path := writeFile(t, "turnstile.ini", "[mqtt]\nport = abc\n")
	code, stdout, stderr := execute(t, "serve", "--config", path)
	if code != 1 || stdout != "" || stderr != path+":2: [mqtt] port: \"abc\" is not an integer\n" {
		t.Errorf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}
