package config

import (
	"bytes"
	"os"
	"regexp"
	"strings"
	"testing"
)

const samplePath = "../../dist/turnstile.ini"

// TestSampleUpToDate regenerates the sample and compares it with the committed dist/turnstile.ini.
func TestSampleUpToDate(t *testing.T) {
	committed, err := os.ReadFile(samplePath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(committed, Sample()) {
		t.Errorf("%s is out of date with the key table: run go generate ./internal/config", samplePath)
	}
}

// TestSampleParses parses the sample as shipped (all keys commented out: the defaults), then with
// every key uncommented: it must parse and give the defaults, data_dir set to its example.
func TestSampleParses(t *testing.T) {
	data := Sample()
	c, err := Parse("turnstile.ini", data)
	if err != nil {
		t.Fatalf("the sample does not parse: %v", err)
	}
	def := Default()
	if c.Main != def.Main || c.MQTT != def.MQTT || c.Mgmt != def.Mgmt {
		t.Errorf("the sample is not the defaults: %+v", c)
	}

	setting := regexp.MustCompile(`(?m)^;([a-z_]+ =)`)
	if n := len(setting.FindAll(data, -1)); n != len(keys) {
		t.Errorf("the sample sets %d keys, the table has %d", n, len(keys))
	}
	on := setting.ReplaceAll(data, []byte("$1"))
	c, err = Parse("turnstile.ini", on)
	if err != nil {
		t.Fatalf("the sample with every key uncommented does not parse: %v", err)
	}
	def.Main.DataDir = "/var/lib/turnstile"
	if c.Main != def.Main || c.MQTT != def.MQTT || c.Mgmt != def.Mgmt {
		t.Errorf("the uncommented sample is not the defaults:\n got %+v\nwant %+v", c, def)
	}
	// Its TLS ports are served only with a certificate, which Check requires once they are set.
	c.Main.TLSCert, c.Main.TLSKey, _ = testPKI(t)
	if err := Check(c); err != nil {
		t.Errorf("the uncommented sample with a certificate fails Check: %v", err)
	}
}

// TestReadmeDocumentsEveryKey: the README's configuration table has a row for every key of the
// table in keys.go ("| section | `key`…"), so a new key cannot go undocumented there.
func TestReadmeDocumentsEveryKey(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string][]string{}
	for _, line := range strings.Split(string(readme), "\n") {
		if f := strings.SplitN(line, "|", 4); len(f) == 4 && strings.TrimSpace(f[0]) == "" {
			sec := strings.TrimSpace(f[1])
			rows[sec] = append(rows[sec], f[2])
		}
	}
	for _, k := range Keys() {
		found := false
		for _, cell := range rows[k.Section] {
			if strings.Contains(cell, "`"+k.Key+"`") {
				found = true
			}
		}
		if !found {
			t.Errorf("README.md's configuration table has no row for [%s] %s", k.Section, k.Key)
		}
	}
}

// TestContainerConfig: the container image's configuration passes Load and Check and binds
// every interface, with the default user still loopback-only.
func TestContainerConfig(t *testing.T) {
	c, err := Load("../../dist/container.ini")
	if err != nil {
		t.Fatal(err)
	}
	if err := Check(c); err != nil {
		t.Fatal(err)
	}
	if c.MQTT.Bind != "0.0.0.0" || c.Mgmt.Bind != "0.0.0.0" || !c.Main.DefaultUserOnlyLoopback ||
		c.Main.DataDir != "/var/lib/turnstile" || c.Main.LogFormat != "json" {
		t.Errorf("container configuration %+v", c)
	}
}
