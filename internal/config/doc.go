// Package config owns Turnstile's configuration: the INI file format, the default values and the
// range checks. It follows the lifecycle strict decode → defaults → validate: a file is decoded over
// Default(), every problem is collected (unknown sections and keys, duplicates, bad values, values out
// of range) and all of them are returned together, each naming file, line, section and key.
//
// Every key is declared once, in the table in keys.go; decoding, validation, Keys() and Sample()
// (the commented dist/turnstile.ini, written by go generate) all read that table, and tests check
// that the committed sample and the README's table keep up with it.
//
// Check adds what needs more than one key or a look at the file system (certificates, the
// definitions file, paths, two listeners on one address); serve and validate-config both run it,
// so they cannot disagree. Listeners and the …Addr methods give each listener's effective address.
//
// The package only describes configuration. It must not open listeners, build loggers or write
// files, and it imports no Turnstile package but definitions and auth, whose parsers Check runs
// on definitions_file; the CLI and the broker read a *Config, they never re-parse the file.
package config
