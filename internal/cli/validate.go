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
		Long: "validate-config decodes and checks FILE with exactly the checks serve applies before it starts\n" +
			"anything (config.Load, then config.Check: certificates, the definitions file, paths, two listeners\n" +
			"on one address), prints every problem to stderr (one per line, as file:line: [section] key:\n" +
			"message) and exits with status 1 when there is any. It binds no port and writes nothing.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(path)
			if err == nil {
				err = config.Check(cfg)
			}
			if err != nil {
				reportErrors(cmd.ErrOrStderr(), err)
				return errReported
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "configuration OK: %s\n", path)
			return err
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "", "configuration `FILE` (INI)")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}
