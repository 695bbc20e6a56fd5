// Package logbuf is a log sink that a test reads while the component it runs writes to it from
// goroutines of its own: a bytes.Buffer behind a mutex. Tests of several packages (the store, the
// broker, the app, the token service, the audit log, the listeners, the CLI) share it.
package logbuf
