package cli

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/turnstilemq/turnstile/internal/config"
)

func newServeCmd() *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "serve [--config FILE]",
		Short: "Run the broker until SIGINT or SIGTERM",
		Long: "serve loads the configuration (the built-in defaults when --config is not given), logs to\n" +
			"stderr and runs the broker. SIGINT or SIGTERM starts a graceful shutdown.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg := config.Default()
			if path != "" {
				var err error
				if cfg, err = config.Load(path); err != nil {
					reportErrors(cmd.ErrOrStderr(), err)
					return errReported
				}
			}
			logger, err := newLogger(cmd.ErrOrStderr(), cfg.Main)
			if err != nil {
				return err
			}
			slog.SetDefault(logger)

			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			source := cfg.Source
			if source == "" {
				source = "(built-in defaults)"
			}
			logger.Info("starting turnstile", "version", Version, "config", source)
			if err := runServe(ctx, cfg, logger); err != nil {
				return err
			}
			logger.Info("turnstile stopped")
			return nil
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "", "configuration `FILE` (INI); built-in defaults when empty")
	return cmd
}

// newLogger builds the process logger from [main] log_level and log_format.
func newLogger(w io.Writer, m config.Main) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(m.LogLevel)); err != nil {
		return nil, fmt.Errorf("[main] log_level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch m.LogFormat {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("[main] log_format: %q is not one of text, json", m.LogFormat)
}
