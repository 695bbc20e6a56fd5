package config

import (
	"bytes"
	"os"
	"regexp"
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
