package cli

import (
	"context"
	"log/slog"

	"github.com/turnstilemq/turnstile/internal/broker"
	"github.com/turnstilemq/turnstile/internal/config"
	"github.com/turnstilemq/turnstile/internal/mgmt"
)

// runServe starts the broker with its management API and blocks until ctx is cancelled, then
// shuts it down gracefully.
func runServe(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	return broker.Run(ctx, cfg, log, mgmt.Component(cfg, log))
}
