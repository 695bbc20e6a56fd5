package cli

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// devVersion is Version when neither -ldflags nor the build info says more.
const devVersion = "0.1.0-dev"

// BuildTime is when the binary was built, set by release builds with
// -ldflags "-X github.com/turnstilemq/turnstile/internal/cli.BuildTime=2025-01-31T12:00:00Z";
// Go records no build time of its own.
var BuildTime = ""

func init() {
	bi, _ := debug.ReadBuildInfo()
	Version = readBuild(Version, bi).Version
}

// build is what `turnstile version` reports.
type build struct {
	Version    string // -ldflags override, else the module version, else devVersion
	Module     string // module path and version, "(devel)" for a build from a checkout without VCS stamping
	Revision   string // VCS commit, "" when not stamped (go build -buildvcs=false, go test)
	Modified   bool   // the work tree had uncommitted changes
	CommitTime string // the commit's time, RFC 3339
	BuildTime  string
	Go         string // toolchain and platform, "go1.26.8 linux/amd64"
}

// readBuild resolves the version: a Version set with -ldflags wins; otherwise the main module's
// version from the build info (v1.2.3 for go install …@v1.2.3, a pseudo-version such as
// v0.0.0-20250131120000-abcdef123456+dirty for go build in a git checkout); otherwise devVersion.
func readBuild(version string, bi *debug.BuildInfo) build {
	b := build{Version: version, BuildTime: BuildTime, Go: runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH}
	if bi == nil {
		return b
	}
	b.Module = bi.Main.Path + " " + bi.Main.Version
	if version == devVersion && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		b.Version = bi.Main.Version
	}
	if bi.GoVersion != "" {
		b.Go = bi.GoVersion + " " + runtime.GOOS + "/" + runtime.GOARCH
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Revision = s.Value
		case "vcs.modified":
			b.Modified = s.Value == "true"
		case "vcs.time":
			b.CommitTime = s.Value
		}
	}
	return b
}

// write prints b as "turnstile VERSION" and one "key: value" line per known fact.
func (b build) write(w io.Writer) error {
	lines := []string{"turnstile " + b.Version}
	add := func(k, v string) {
		if v != "" {
			lines = append(lines, fmt.Sprintf("  %-10s %s", k+":", v))
		}
	}
	add("module", b.Module)
	rev := b.Revision
	if rev != "" && b.Modified {
		rev += " (modified)"
	}
	add("commit", rev)
	add("committed", b.CommitTime)
	add("built", b.BuildTime)
	add("go", b.Go)
	for _, l := range lines {
		if _, err := fmt.Fprintln(w, l); err != nil {
			return err
		}
	}
	return nil
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print Turnstile's version, commit and toolchain",
		Long: "version prints the version (set at link time with -ldflags -X, else the module version Go\n" +
			"recorded), then the module, the VCS commit (\"(modified)\" when the work tree had changes), the\n" +
			"commit time, the build time when the release build set it, and the Go toolchain.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			bi, _ := debug.ReadBuildInfo()
			return readBuild(Version, bi).write(cmd.OutOrStdout())
		},
	}
}
