// Package logging builds Turnstile's process logger: log/slog with a text or JSON handler, a level,
// durations written in human units ("1.5s", "250ms", not nanoseconds), and an output that is stderr
// or an append-only log file that Reopen swaps for a fresh one (SIGHUP after logrotate moved it).
//
// It owns only the logger's construction and its output. It must not read configuration files,
// install signal handlers or import other Turnstile packages: the caller maps [main] log_level,
// log_format and log_file onto Options and decides when to call Reopen.
package logging
