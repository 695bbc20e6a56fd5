package mgmt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/turnstilemq/turnstile/internal/broker"
	"github.com/turnstilemq/turnstile/internal/config"
	"github.com/turnstilemq/turnstile/internal/listener"
)

// shutdownTimeout bounds how long in-flight requests may run once the broker stops.
const shutdownTimeout = 5 * time.Second

// Component serves the management API on [mgmt] bind:port beside the broker (disabled when
// port <= 0), with a fresh Prometheus registry holding the broker's collector and the Go and
// process collectors. It returns once ctx is done and the server has shut down; a listen
// failure is its error.
func Component(cfg *config.Config, log *slog.Logger) broker.Component {
	return func(ctx context.Context, srv *broker.Server) error {
		useTLS := cfg.Main.TLSCert != "" && cfg.Mgmt.TLSPort > 0
		if cfg.Mgmt.Port <= 0 && !useTLS {
			return nil
		}
		reg := prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		h := New(srv, cfg, log, reg)
		var lns []net.Listener
		closeAll := func() {
			for _, ln := range lns {
				ln.Close()
			}
		}
		if cfg.Mgmt.Port > 0 {
			ln, err := net.Listen("tcp", cfg.MgmtAddr())
			if err != nil {
				return fmt.Errorf("[mgmt] port: %w", err)
			}
			lns = append(lns, ln)
		}
		if useTLS {
			// HTTPS on tls_port with the broker's certificate; SIGHUP reloads it here too.
			tlsCfg, certs, err := listener.TLSConfig(listener.TLSOptions{CertFile: cfg.Main.TLSCert, KeyFile: cfg.Main.TLSKey,
				MinVersion: cfg.Main.TLSMinVersion})
			if err != nil {
				closeAll()
				return fmt.Errorf("[mgmt] tls_port: %w", err)
			}
			tlsCfg.NextProtos = []string{"http/1.1"}
			ln, err := listener.TLS(net.JoinHostPort(cfg.Mgmt.Bind, strconv.Itoa(cfg.Mgmt.TLSPort)), tlsCfg)
			if err != nil {
				closeAll()
				return fmt.Errorf("[mgmt] tls_port: %w", err)
			}
			lns = append(lns, ln)
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			go func() {
				for {
					select {
					case <-ctx.Done():
						return
					case <-hup:
						if err := certs.Reload(); err != nil {
							log.Error("SIGHUP: management API certificate reload failed", "error", err.Error())
						}
					}
				}
			}()
		}
		errc := make(chan error, len(lns))
		for _, ln := range lns {
			go func() { errc <- serve(ctx, ln, h, log) }()
		}
		var first error
		for range lns {
			if err := <-errc; err != nil && first == nil {
				first = err
			}
		}
		return first
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
