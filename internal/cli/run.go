package cli

import (
	"context"
	"log/slog"

	"github.com/turnstilemq/turnstile/internal/broker"
	"github.com/turnstilemq/turnstile/internal/config"
)

// runServe starts the broker and blocks until ctx is cancelled, then shuts it down gracefully.
func runServe(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	return broker.Run(ctx, cfg, log)
}
