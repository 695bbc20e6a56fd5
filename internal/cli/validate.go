package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/turnstilemq/turnstile/internal/config"
)

func newValidateConfigCmd() *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "validate-config --config FILE",
		Short: "Check a configuration file without starting the broker",
		Long: "validate-config decodes and validates FILE with exactly the checks serve applies, prints every\n" +
			"problem to stderr (one per line, as file:line: [section] key: message) and exits with status 1\n" +
			"when there is any.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := config.Load(path); err != nil {
				reportErrors(cmd.ErrOrStderr(), err)
				return errReported
			}
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "configuration OK: %s\n", path)
			return err
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "", "configuration `FILE` (INI)")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}
