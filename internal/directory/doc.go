// Package directory owns who exists and what they may do: the local users (with their password
// hashes and tags), the vhosts, and the permissions and topic permissions of users on vhosts. It
// loads them at start (the stored definitions document, or on first start the default vhost and
// user), imports a definitions file over them, persists every change as one definitions document
// through store.Definitions, and answers typed queries for the management API, the dashboard and
// the cluster later.
//
// It decides nothing about connections: the broker is told of changes through Hooks (a vhost
// added or deleted, a user deleted) and of permission changes through the acl.Checker's
// OnChange, and acts on them itself. It must not import the broker, the network or the
// management API.
//
// Lock order: Directory.mu is taken before any lock of the broker (hooks run with it held, so
// that changes reach the broker in the order they were made); the broker never calls back into
// the Directory while it handles a hook.
package directory
