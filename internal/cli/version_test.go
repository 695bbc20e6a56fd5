package cli

import (
	"bytes"
	"runtime"
	"runtime/debug"
	"testing"
)

func TestReadBuild(t *testing.T) {
	platform := " " + runtime.GOOS + "/" + runtime.GOARCH
	stamped := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/turnstilemq/turnstile", Version: "v1.4.0"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "0123abcd"}, {Key: "vcs.modified", Value: "true"}, {Key: "vcs.time", Value: "2025-01-31T12:00:00Z"}}}
	old := BuildTime
	t.Cleanup(func() { BuildTime = old })

	for _, tt := range []struct {
		name, version, buildTime string
		bi                       *debug.BuildInfo
		want                     string
	}{
		{"go install at a tag", devVersion, "", stamped,
			"turnstile v1.4.0\n  module:    github.com/turnstilemq/turnstile v1.4.0\n  commit:    0123abcd (modified)\n" +
				"  committed: 2025-01-31T12:00:00Z\n  go:        go1.26.8" + platform + "\n"},
		{"-ldflags -X wins", "1.5.0-rc1", "2025-02-01T00:00:00Z", stamped,
			"turnstile 1.5.0-rc1\n  module:    github.com/turnstilemq/turnstile v1.4.0\n  commit:    0123abcd (modified)\n" +
				"  committed: 2025-01-31T12:00:00Z\n  built:     2025-02-01T00:00:00Z\n  go:        go1.26.8" + platform + "\n"},
		{"a build without VCS stamp", devVersion, "", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "m", Version: "(devel)"}},
			"turnstile " + devVersion + "\n  module:    m (devel)\n  go:        go1.26.8" + platform + "\n"},
		{"no build info", devVersion, "", nil, "turnstile " + devVersion + "\n  go:        " + runtime.Version() + platform + "\n"},
	} {
		BuildTime = tt.buildTime
		var b bytes.Buffer
		if err := readBuild(tt.version, tt.bi).write(&b); err != nil {
			t.Fatal(err)
		}
		if b.String() != tt.want {
			t.Errorf("%s:\n%s\nwant:\n%s", tt.name, b.String(), tt.want)
		}
	}
}
