package auth

import (
	"context"
	"slices"
)

// Anonymous lets a client that sends no user name act as a configured user ([mqtt]
// allow_anonymous = true, [mqtt] anonymous_user). The caller adds it to the chain only when
// anonymous access is enabled.
//
// It abstains when a user name is present. Otherwise it allows, with Identity{User: the
// anonymous user, Method: "anonymous"}, unless the anonymous user is the loopback-only default
// user and the client is not on loopback (Deny, ErrNotAuthorized), or Users is set and holds no
// such user (Deny, ErrBadCredentials). With Users set, the identity carries the user's tags.
type Anonymous struct {
	User                    string // the user anonymous clients act as
	Users                   *Users // optional: the user must exist, and lends its tags
	DefaultUserOnlyLoopback string // as LocalOptions.DefaultUserOnlyLoopback
}

var _ Provider = (*Anonymous)(nil)

// Name is "anonymous".
func (a *Anonymous) Name() string { return "anonymous" }

// Authenticate implements Provider.
func (a *Anonymous) Authenticate(_ context.Context, c *Credentials) (Decision, *Identity, error) {
	if c.Username != "" {
		return Abstain, nil, nil
	}
	if a.User == "" {
		return deny(a.Name(), "no anonymous user configured", ErrBadCredentials)
	}
	if d, id, err := loopbackOnly(a.Name(), a.DefaultUserOnlyLoopback, a.User, c); d != Abstain {
		return d, id, err
	}
	id := &Identity{User: a.User, Issuer: IssuerLocal, Vhost: c.Vhost, Method: "anonymous", Loopback: c.Loopback()}
	if a.Users != nil {
		u, ok := a.Users.Get(a.User)
		if !ok {
			return deny(a.Name(), "the anonymous user does not exist", ErrBadCredentials)
		}
		id.Tags = slices.Clone(u.Tags)
		id.Subject = u.ID
	}
	return Allow, id, nil
}
