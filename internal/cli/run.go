package cli

import (
	"context"
	"log/slog"

	"github.com/turnstilemq/turnstile/internal/app"
	"github.com/turnstilemq/turnstile/internal/config"
	"github.com/turnstilemq/turnstile/internal/logging"
)

// runServe assembles Turnstile from cfg and runs it until ctx is cancelled, then shuts it down
// gracefully. Any configured listener that cannot be opened is an error: serve exits non-zero.
func runServe(ctx context.Context, cfg *config.Config, log *slog.Logger, logOut *logging.Output) error {
	a, err := app.New(cfg, app.Options{Logger: log, Version: Version, Signals: true, LogOutput: logOut})
	if err != nil {
		return err
	}
	return a.Run(ctx)
}
