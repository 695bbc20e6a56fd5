// Package mgmt is the HTTP management API and the Prometheus metrics of Turnstile.
//
// It owns the HTTP side only: routing (RabbitMQ's paths, with URL-encoded vhost names), HTTP
// basic authentication against the broker's local users, access by user tag, Host and Origin
// checks, request size limits, JSON shapes, the one API error type, message and byte rates
// (sampled here, from the broker's counters), and a Prometheus collector that reads the broker
// at scrape time.
//
// It is a thin layer over the query and command methods of package broker (Connections,
// CloseConnection, Sessions, PutUser, ImportDefinitions, Overview, ...), which are tested
// without HTTP. It must not reach into the broker's state, hash or check passwords other than
// through package auth, parse definitions other than through package definitions, or register
// metrics on the global Prometheus registry: the registry is injected.
//
// See docs/api.md for every endpoint, its access rule and status codes, and the metrics.
package mgmt
