package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/spf13/cobra"
)

// Polling of wait-ready: a request every ctlPollInterval, each given at most ctlPollRequestTimeout
// (a broker that is starting answers at once or refuses the connection).
var (
	ctlPollInterval       = 100 * time.Millisecond
	ctlPollRequestTimeout = 2 * time.Second
)

// ctlWaitReady polls GET /api/health/ready until it answers 200. Connection errors and 5xx
// answers (503 while the listeners open) mean "not yet"; any other answer means --uri is not a
// Turnstile management API, and waiting longer would not help.
func ctlWaitReady(o *ctlOptions) *cobra.Command {
	cmd := ctlCommand(o, "wait-ready [--timeout 30s]",
		"Wait until the broker accepts MQTT connections (GET /api/health/ready answers 200), up to --timeout",
		cobra.NoArgs, func(ctx context.Context, c *ctlClient, _ []string) error {
			total := c.http.Timeout
			ctx, cancel := context.WithTimeout(ctx, total)
			defer cancel()
			tick := time.NewTicker(ctlPollInterval)
			defer tick.Stop()
			var last error // why the broker is not ready, from the last poll the deadline did not cut short
			for {
				rctx, rcancel := context.WithTimeout(ctx, ctlPollRequestTimeout)
				data, err := c.do(rctx, http.MethodGet, apiPath("health", "ready"), nil, nil)
				rcancel()
				if err != nil && (ctx.Err() == nil || last == nil) {
					last = err
				}
				if err == nil {
					if c.json {
						return c.writeJSON(data)
					}
					return c.done("turnstile is ready")
				}
				var api *apiError
				if errors.As(err, &api) && api.Status < 500 {
					return fmt.Errorf("GET %s/api/health/ready answered %s: is --uri the Turnstile management API?", c.base, api.Line)
				}
				select {
				case <-ctx.Done():
					if cause := context.Cause(ctx); !errors.Is(cause, context.DeadlineExceeded) {
						return cause // interrupted
					}
					return fmt.Errorf("the broker was not ready within %s (--timeout): %w", total, last)
				case <-tick.C:
				}
			}
		})
	cmd.Aliases = []string{"wait_ready", "await_startup"}
	return cmd
}
