package mgmt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/turnstilemq/turnstile/internal/broker"
	"github.com/turnstilemq/turnstile/internal/config"
)

// shutdownTimeout bounds how long in-flight requests may run once the broker stops.
const shutdownTimeout = 5 * time.Second

// Component serves the management API on [mgmt] bind:port beside the broker (disabled when
// port <= 0), with a fresh Prometheus registry holding the broker's collector and the Go and
// process collectors. It returns once ctx is done and the server has shut down; a listen
// failure is its error.
func Component(cfg *config.Config, log *slog.Logger) broker.Component {
	return func(ctx context.Context, srv *broker.Server) error {
		if cfg.Mgmt.Port <= 0 {
			return nil
		}
		reg := prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		ln, err := net.Listen("tcp", cfg.MgmtAddr())
		if err != nil {
			return fmt.Errorf("[mgmt] port: %w", err)
		}
		return serve(ctx, ln, New(srv, cfg, log, reg), log)
	}
}

// serve runs an HTTP server for h on ln until ctx is done, then shuts it down gracefully.
func serve(ctx context.Context, ln net.Listener, h http.Handler, log *slog.Logger) error {
	hs := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute, // a 32 MiB definitions upload
		WriteTimeout:      time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	log.Info("listening", "listener", "mgmt", "addr", ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("management API: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	err := hs.Shutdown(sctx)
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("management API shutdown: %w", err)
	}
	return nil
}
