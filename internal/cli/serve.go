package cli

import (
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/turnstilemq/turnstile/internal/config"
	"github.com/turnstilemq/turnstile/internal/fdtable"
	"github.com/turnstilemq/turnstile/internal/heapfloor"
	"github.com/turnstilemq/turnstile/internal/logging"
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
			if err := config.Check(cfg); err != nil { // exactly validate-config's checks
				reportErrors(cmd.ErrOrStderr(), err)
				return errReported
			}
			logger, logOut, err := logging.New(logging.Options{Level: cfg.Main.LogLevel, Format: cfg.Main.LogFormat,
				File: cfg.Main.LogFile, Stderr: cmd.ErrOrStderr()})
			if err != nil {
				return err
			}
			defer logOut.Close()
			slog.SetDefault(logger)

			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			source := cfg.Source
			if source == "" {
				source = "(built-in defaults)"
			}
			// The collector's floor (internal/heapfloor), unless GOGC is set: a small heap may
			// grow 16 MiB between collections instead of only its own size.
			gc := slog.Int("heap_floor_mib", heapfloor.DefaultHeadroom>>20)
			if floor := heapfloor.Start(heapfloor.DefaultHeadroom); floor != nil {
				defer floor.Stop()
			} else {
				gc = slog.String("gogc", os.Getenv("GOGC"))
			}
			// The descriptor table grown for max_connections at once, not doubling after doubling
			// in the first reconnect storm, each doubling an RCU grace period (internal/fdtable).
			fds := slog.Int("fd_table", fdtable.Grow(fdTableSize(cfg.MQTT.MaxConnections)))
			logger.Info("starting turnstile", "version", Version, "config", source, gc, fds)
			if err := runServe(ctx, cfg, logger, logOut); err != nil {
				return err
			}
			logger.Info("turnstile stopped")
			return nil
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "", "configuration `FILE` (INI); built-in defaults when empty")
	return cmd
}

// maxFDTable bounds the descriptor table serve grows at start: 65,536 descriptors, 512 KiB of
// kernel memory for the table's pointers. A broker that needs more grows it as it goes.
const maxFDTable = 1 << 16

// fdTableSize is the descriptor table serve grows at start: max_connections and 1,024 more for
// the rest (listeners, the store's files, connections not logged in yet), at most maxFDTable;
// max_connections 0 (no limit) asks for maxFDTable.
func fdTableSize(maxConns int) int {
	if maxConns <= 0 || maxConns >= maxFDTable {
		return maxFDTable
	}
	return min(maxConns+1024, maxFDTable)
}
