// Package app is Turnstile's composition root: it turns a validated configuration into a
// running program, in this order — store → directory (users, vhosts, permissions) → auth chain
// → event observers → broker → MQTT listeners → management API — and runs it until its context
// ends: SIGHUP reloads the TLS certificate, cancellation drains the broker and stops everything
// in reverse order.
//
// It is the only package that knows every other one. `turnstile serve` is a thin call into it,
// and tests start a whole Turnstile in-process through it (Options.Ephemeral binds every
// configured listener on a free port). The packages it assembles know nothing of it or of the
// configuration: each takes its own narrow options and interfaces (docs/design.md, "Layout").
package app
