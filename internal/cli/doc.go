// Package cli is Turnstile's command line: the cobra commands behind cmd/turnstile (serve,
// validate-config, version, bench, ctl, passwd), flag handling, exit codes and signal handling.
//
// It turns arguments into a *config.Config (config.Load, then config.Check) and a *slog.Logger
// (package logging) and hands them to the broker; it holds no broker logic, and it reads
// configuration only through package config, so validate-config and serve apply exactly the same
// checks. version reads the build info; ctl talks to the management API over HTTP only.
package cli
