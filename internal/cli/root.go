package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/turnstilemq/turnstile/internal/config"
)

// Version is Turnstile's version; release builds set it with
// -ldflags "-X github.com/turnstilemq/turnstile/internal/cli.Version=1.2.3". Left alone, it becomes
// the module version from the build info at init (see readBuild).
var Version = devVersion

// errReported is returned by a command that has already written its errors to stderr: the process
// exits with status 1 and nothing more is printed.
var errReported = errors.New("errors already reported")

// Main runs the command line args (without the program name) and returns the process exit status:
// 0 on success, 1 on any error, which has then been written to stderr.
func Main(args []string) int {
	return run(context.Background(), args, os.Stdout, os.Stderr)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if args == nil {
		args = []string{} // cobra reads os.Args when args is nil
	}
	root := newRootCmd()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.ExecuteContext(ctx); err != nil {
		if !errors.Is(err, errReported) {
			fmt.Fprintf(stderr, "turnstile: %v\n", err)
		}
		return 1
	}
	return 0
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "turnstile",
		Short: "Turnstile is an MQTT 3.1, 3.1.1 and 5.0 broker",
		// Errors are printed once, by run, without the usage text.
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       Version,
		// An unknown command is an error with the nearest names; no command prints the help.
		Args:                       unknownCommand,
		RunE:                       func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
		SuggestionsMinimumDistance: 2,
	}
	root.SetVersionTemplate("turnstile {{.Version}}\n")
	root.AddCommand(newServeCmd(), newValidateConfigCmd(), newVersionCmd(), newBenchCmd(), newCtlCmd(), newPasswdCmd())
	return root
}

// unknownCommand is the Args of a command whose only arguments are subcommands: an argument that
// names none is an error that suggests the nearest (cobra's Levenshtein and prefix matching).
func unknownCommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	switch s := cmd.SuggestionsFor(args[0]); len(s) {
	case 0:
	case 1:
		msg += fmt.Sprintf("; did you mean %q?", s[0])
	default:
		msg += "; did you mean one of " + strings.Join(s, ", ") + "?"
	}
	return fmt.Errorf("%s ('%s --help' lists the commands)", msg, cmd.CommandPath())
}

// reportErrors writes err to w, one line per joined error.
func reportErrors(w io.Writer, err error) {
	for _, e := range config.Problems(err) {
		fmt.Fprintln(w, e)
	}
}
