// Package cli is Turnstile's command line: the cobra commands behind cmd/turnstile (serve,
// validate-config, version, bench, ctl, passwd), flag handling, exit codes, the process logger and signal handling.
//
// It turns arguments into a *config.Config and a *slog.Logger and hands them to the broker; it holds
// no broker logic, and it reads configuration only through package config, so validate-config and
// serve apply exactly the same checks.
package cli
