// Package test holds tests of the repository as a whole: the README's first-run walk-through run
// against a fresh build, and the version a build reports. (The shell interop test beside it,
// mosquitto_clients.sh, runs in CI.)
package test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	walkthroughMarker = "<!-- walkthrough -->"
	outputMarker      = "<!-- output -->"
	// buildCommand is the walk-through's first block; the test builds the binary itself, once.
	buildCommand = "go build -o turnstile ./cmd/turnstile"
)

// step is one walk-through block and the output the README shows under it ("" when it shows
// none; then only the exit status is checked).
type step struct {
	line   int    // of the block in README.md
	script string // the shell lines
	output string // expected combined stdout and stderr
}

// walkthrough extracts the blocks marked <!-- walkthrough -->, each the fenced block right after
// the marker, and the fenced block after a following <!-- output --> marker.
func walkthrough(readme string) ([]step, error) {
	lines := strings.Split(readme, "\n")
	var steps []step
	fence := func(i int) (body string, next int, err error) {
		for i < len(lines) && strings.TrimSpace(lines[i]) == "" {
			i++
		}
		if i >= len(lines) || !strings.HasPrefix(lines[i], "```") {
			return "", i, fmt.Errorf("README.md:%d: a fenced block must follow the marker", i+1)
		}
		start := i + 1
		for i = start; i < len(lines) && lines[i] != "```"; i++ {
		}
		if i == len(lines) {
			return "", i, fmt.Errorf("README.md:%d: unterminated fenced block", start)
		}
		return strings.Join(lines[start:i], "\n"), i + 1, nil
	}
	for i := 0; i < len(lines); i++ {
		if strings.TrimSpace(lines[i]) != walkthroughMarker {
			continue
		}
		body, next, err := fence(i + 1)
		if err != nil {
			return nil, err
		}
		st := step{line: i + 2, script: body}
		j := next
		for j < len(lines) && strings.TrimSpace(lines[j]) == "" {
			j++
		}
		if j < len(lines) && strings.TrimSpace(lines[j]) == outputMarker {
			if st.output, next, err = fence(j + 1); err != nil {
				return nil, err
			}
		}
		steps = append(steps, st)
		i = next - 1
	}
	return steps, nil
}

// matchOutput compares output with the README's, line by line; "…" in the README's stands for
// any text (an uptime, a version).
func matchOutput(want, got string) bool {
	wl := strings.Split(strings.TrimRight(want, "\n"), "\n")
	gl := strings.Split(strings.TrimRight(got, "\n"), "\n")
	if len(wl) != len(gl) {
		return false
	}
	for i := range wl {
		parts := strings.Split(wl[i], "…")
		for k := range parts {
			parts[k] = regexp.QuoteMeta(parts[k])
		}
		if !regexp.MustCompile("^" + strings.Join(parts, ".*") + "$").MatchString(gl[i]) {
			return false
		}
	}
	return true
}

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
	buildDir  string
)

// turnstileBinary builds ./cmd/turnstile once per test run, as the README does.
func turnstileBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "turnstile-readme-")
		if buildErr != nil {
			return
		}
		builtBin = filepath.Join(buildDir, "turnstile")
		cmd := exec.Command("go", "build", "-o", builtBin, "./cmd/turnstile")
		cmd.Dir = ".."
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// freePorts returns n distinct ports that were free on 127.0.0.1 a moment ago.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// TestReadmeWalkthrough runs the README's first-run blocks, in order, in one bash shell, against
// a fresh build, and checks each block's exit status and the output the README shows. The only
// changes to the text: the build line copies the binary the test built; serve gets a
// configuration with free ports (and sys_interval = 1, so $SYS comes quickly); the mosquitto
// clients get -p with the MQTT port; ctl finds the API through TURNSTILE_URI; HOME and
// XDG_DATA_HOME point into a temporary directory, which is thus the data directory.
func TestReadmeWalkthrough(t *testing.T) {
	for _, tool := range []string{"mosquitto_pub", "mosquitto_sub"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (apt-get install mosquitto-clients); the README walk-through needs it", tool)
		}
	}
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Fatal("bash is needed to run the README walk-through")
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	steps, err := walkthrough(string(readme))
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) < 3 || strings.TrimSpace(steps[0].script) != buildCommand {
		t.Fatalf("the walk-through must start with a block of exactly %q; found %d blocks", buildCommand, len(steps))
	}
	bin := turnstileBinary(t)

	work := t.TempDir()
	ports := freePorts(t, 2)
	mqttPort, mgmtPort := strconv.Itoa(ports[0]), strconv.Itoa(ports[1])
	ini := filepath.Join(work, "test-ports.ini")
	if err := os.WriteFile(ini, []byte("[mqtt]\nport = "+mqttPort+"\nsys_interval = 1\n[mgmt]\nport = "+mgmtPort+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	rewrite := strings.NewReplacer(
		buildCommand, "cp "+shellQuote(bin)+" turnstile",
		"./turnstile serve", "./turnstile serve --config "+shellQuote(ini),
		"mosquitto_pub ", "mosquitto_pub -p "+mqttPort+" ",
		"mosquitto_sub ", "mosquitto_sub -p "+mqttPort+" ",
		"127.0.0.1:15672", "127.0.0.1:"+mgmtPort,
		"127.0.0.1:1883", "127.0.0.1:"+mqttPort,
	)

	// One shell runs every block: variables and background jobs carry over, as in a terminal.
	// Each block's output goes to its own file; a failing command stops the shell (set -e).
	var driver strings.Builder
	driver.WriteString("set -eo pipefail\n")
	for i, st := range steps {
		fmt.Fprintf(&driver, "echo %d > .step\n{\n%s\n} >.out%d 2>&1\n", i, rewrite.Replace(st.script), i)
	}
	driver.WriteString("echo done > .step\n")

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bash, "-c", driver.String())
	cmd.Dir = work
	cmd.Env = append(cleanEnv(), "HOME="+work, "XDG_DATA_HOME="+filepath.Join(work, "xdg"),
		"TURNSTILE_URI=http://127.0.0.1:"+mgmtPort)
	// Its own process group, so that whatever it started is stopped with it.
	ownGroup(cmd)
	cmd.Cancel = func() error { return killGroup(cmd) }
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { killGroup(cmd) })
	runErr := cmd.Wait()

	read := func(name string) string {
		b, _ := os.ReadFile(filepath.Join(work, name))
		return string(b)
	}
	at := strings.TrimSpace(read(".step"))
	if runErr != nil || at != "done" {
		i, _ := strconv.Atoi(at)
		var ee *exec.ExitError
		status := runErr
		if errors.As(runErr, &ee) {
			status = fmt.Errorf("exit status %d", ee.ExitCode())
		}
		t.Fatalf("README.md:%d: the block failed (%v):\n%s\n--- its output:\n%s--- shell:\n%s--- turnstile.log:\n%s",
			steps[i].line, status, steps[i].script, read(".out"+at), out.String(), read("turnstile.log"))
	}
	for i, st := range steps {
		got := read(".out" + strconv.Itoa(i))
		if st.output == "" {
			continue
		}
		if !matchOutput(st.output, got) {
			t.Errorf("README.md:%d: the block\n%s\nprinted:\n%s\nthe README shows:\n%s", st.line, st.script, got, st.output)
		}
	}
	// The state went where the README says: the data directory under XDG_DATA_HOME.
	if _, err := os.Stat(filepath.Join(work, "xdg", "turnstile")); err != nil {
		t.Errorf("no data directory at $XDG_DATA_HOME/turnstile: %v", err)
	}
	if _, err := os.Stat(filepath.Join(work, "data")); err == nil {
		t.Error("a ./data directory was created in the working directory")
	}
}

// cleanEnv is the environment without what would change the walk-through's behaviour.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(k, "TURNSTILE_"), k == "STATE_DIRECTORY", k == "HOME", k == "XDG_DATA_HOME":
			continue
		}
		env = append(env, kv)
	}
	return env
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func TestWalkthroughParser(t *testing.T) {
	readme := "intro\n<!-- walkthrough -->\n```sh\na\nb\n```\n\n<!-- output -->\n```text\nx\n```\ntext\n" +
		"<!-- walkthrough -->\n\n```sh\nc\n```\nmore\n<!-- output -->\n```\nnot this one\n```\n"
	steps, err := walkthrough(readme)
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) != 2 || steps[0].script != "a\nb" || steps[0].output != "x" || steps[1].script != "c" || steps[1].output != "" {
		t.Errorf("steps %+v", steps)
	}
	if _, err := walkthrough("<!-- walkthrough -->\ntext\n"); err == nil {
		t.Error("a marker without a block accepted")
	}
	if !matchOutput("$SYS/broker/uptime … seconds\n", "$SYS/broker/uptime 3 seconds\n") || matchOutput("a\n", "a\nb\n") ||
		matchOutput("x … y", "x 1 z") {
		t.Error("matchOutput")
	}
}

// TestReadmeShowsTheTwoCommands: the README's opening shows the two commands that set everything
// up on a fresh machine, each at the start of a line of a shell block, so no edit drops one. (The
// walk-through test above runs the broker the same way from a built binary.)
func TestReadmeShowsTheTwoCommands(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"go run ./cmd/turnstile serve", "go test ./..."} {
		found := false
		for _, line := range strings.Split(string(readme), "\n") {
			if strings.HasPrefix(line, cmd) {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("README.md has no line starting with %q", cmd)
		}
	}
}
