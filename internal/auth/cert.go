package auth

import (
	"context"
	"slices"
)

// Cert logs a client in by its verified TLS client certificate ([mqtt] tls_cert_login = true),
// as RabbitMQ's EXTERNAL mechanism does: the certificate's Common Name is the user name, and no
// password is checked. The listener has already verified the certificate against
// [main] tls_ca_cert; Credentials.PeerCN is empty otherwise.
//
// It abstains when there is no CN, when the client sent a user name other than the CN (it asks
// for a password login as someone else, which later providers judge), and when no local user
// has the CN's name. It denies with ErrNotAuthorized when the CN is the loopback-only default
// user and the client is not on loopback. Otherwise it allows with Identity{User: CN, Tags,
// Method: "cert"}. Put it before "local" in the chain when clients send the CN as user name
// together with a password they do not mean to be checked.
type Cert struct {
	Users                   *Users
	DefaultUserOnlyLoopback string // as LocalOptions.DefaultUserOnlyLoopback
}

var _ Provider = (*Cert)(nil)

// Name is "cert".
func (p *Cert) Name() string { return "cert" }

// Authenticate implements Provider.
func (p *Cert) Authenticate(_ context.Context, c *Credentials) (Decision, *Identity, error) {
	cn := c.PeerCN
	if cn == "" || (c.Username != "" && c.Username != cn) {
		return Abstain, nil, nil
	}
	u, ok := p.Users.Get(cn)
	if !ok {
		return Abstain, nil, nil
	}
	if d, id, err := loopbackOnly(p.Name(), p.DefaultUserOnlyLoopback, cn, c); d != Abstain {
		return d, id, err
	}
	return Allow, &Identity{User: u.Name, Subject: u.ID, Issuer: IssuerLocal, Vhost: c.Vhost, Tags: slices.Clone(u.Tags), Method: "cert", Loopback: c.Loopback()}, nil
}
