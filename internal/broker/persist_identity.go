package broker

import (
	"time"

	"github.com/turnstilemq/turnstile/internal/auth"
	"github.com/turnstilemq/turnstile/internal/store"
)

// The identity snapshot in the store: a session's owner and what its will is authorized
// against survive a restart (will-and-expiry.md §4). store.IdentityRecord holds names, ids,
// permissions and validity only; auth.Identity holds no secret either, and the conversion adds
// none (a credential is named by its ids and a SHA-256).

// identityRecord is id's stored form; nil for nil.
func identityRecord(id *auth.Identity) *store.IdentityRecord {
	if id == nil {
		return nil
	}
	r := &store.IdentityRecord{User: id.User, Subject: id.Subject, Issuer: id.Issuer, Vhost: id.Vhost,
		Method: id.Method, GrantsSource: id.GrantsSource, NotBefore: unixNanos(id.NotBefore),
		Expiry: unixNanos(id.Expiry), Generation: id.Generation}
	for _, t := range id.Tags {
		r.Tags = append(r.Tags, string(t))
	}
	for _, g := range id.Grants {
		r.Grants = append(r.Grants, store.GrantRecord{Action: g.Action, Pattern: g.Pattern})
	}
	if sp := id.Scoped; sp != nil {
		r.Scoped = &store.ScopedRecord{Configure: sp.Configure, Write: sp.Write, Read: sp.Read,
			TopicWrite: sp.TopicWrite, TopicRead: sp.TopicRead}
	}
	for _, c := range id.Creds {
		r.Creds = append(r.Creds, store.CredentialRecord{Kind: c.Kind, Type: c.Type, ID: c.ID, KeyID: c.KeyID,
			Subject: c.Subject, Expiry: unixNanos(c.Expiry), Hash: c.Hash})
	}
	return r
}

// identityFromRecord is the identity r stores; nil for nil.
func identityFromRecord(r *store.IdentityRecord) *auth.Identity {
	if r == nil {
		return nil
	}
	id := &auth.Identity{User: r.User, Subject: r.Subject, Issuer: r.Issuer, Vhost: r.Vhost, Method: r.Method,
		GrantsSource: r.GrantsSource, NotBefore: fromUnixNanos(r.NotBefore), Expiry: fromUnixNanos(r.Expiry),
		Generation: r.Generation}
	for _, t := range r.Tags {
		id.Tags = append(id.Tags, auth.Tag(t))
	}
	for _, g := range r.Grants {
		id.Grants = append(id.Grants, auth.Grant{Action: g.Action, Pattern: g.Pattern})
	}
	if sp := r.Scoped; sp != nil {
		id.Scoped = &auth.ScopedPermissions{Configure: sp.Configure, Write: sp.Write, Read: sp.Read,
			TopicWrite: sp.TopicWrite, TopicRead: sp.TopicRead}
	}
	for _, c := range r.Creds {
		id.Creds = append(id.Creds, auth.CredentialRef{Kind: c.Kind, Type: c.Type, ID: c.ID, KeyID: c.KeyID,
			Subject: c.Subject, Expiry: fromUnixNanos(c.Expiry), Hash: c.Hash})
	}
	return id
}

func unixNanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}
