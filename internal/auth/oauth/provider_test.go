package oauth_test

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/turnstilemq/turnstile/internal/auth"
	"github.com/turnstilemq/turnstile/internal/auth/oauth"
	"github.com/turnstilemq/turnstile/internal/auth/oauth/oauthtest"
)

func creds(user, pw string) *auth.Credentials {
	return &auth.Credentials{Username: user, Vhost: "/", Password: []byte(pw), ClientID: "c1", Remote: netip.MustParseAddr("192.0.2.1"), Listener: "tcp"}
}

func TestAuthenticate(t *testing.T) {
	e := newEnv(t, nil)
	e.start(t)
	ctx := context.Background()
	tok := e.idp.Token(map[string]any{"scope": "read:*/* write:*/*"})

	// Abstains on what is not its own.
	withOther := creds("u", tok)
	withOther.AuthMethod = "SCRAM-SHA-256"
	for _, c := range []*auth.Credentials{creds("u", "wonderland"), creds("u", ""), creds("", "x.y.z"), withOther} {
		if d, id, err := e.p.Authenticate(ctx, c); d != auth.Abstain || id != nil || err != nil {
			t.Errorf("%+v: %v %v %v, want Abstain", c, d, id, err)
		}
	}

	// A token as the password: the user name is only the vhost prefix's carrier.
	c := creds("anything", tok)
	c.Remote = netip.MustParseAddr("127.0.0.1")
	d, id, err := e.p.Authenticate(ctx, c)
	if d != auth.Allow || err != nil || id.User != "user-1" || id.Vhost != "/" || !id.Loopback || id.Scoped == nil {
		t.Fatalf("password token: %v %+v %v", d, id, err)
	}

	// The "jwt" method with the token in Authentication Data.
	c = creds("", "")
	c.AuthMethod, c.AuthData = oauth.MethodJWT, []byte(tok)
	if d, id, err := e.p.Authenticate(ctx, c); d != auth.Allow || err != nil || id.User != "user-1" {
		t.Fatalf("jwt method: %v %+v %v", d, id, err)
	}

	// Bad tokens are denied with ErrBadCredentials; the TokenError says which way it came.
	expired := e.idp.Token(map[string]any{"exp": epoch.Add(-oauth.DefaultLeeway * 3)})
	d, _, err = e.p.Authenticate(ctx, creds("u", expired))
	if d != auth.Deny || !errors.Is(err, auth.ErrBadCredentials) || !errors.Is(err, oauth.ErrExpired) {
		t.Fatalf("expired password token: %v %v", d, err)
	}
	var te *oauth.TokenError
	if !errors.As(err, &te) || te.Enhanced {
		t.Fatalf("password token: TokenError %+v", te)
	}
	var den *auth.Denial
	if !errors.As(err, &den) || den.Provider != "oauth" || !strings.Contains(den.Reason, "token expired") {
		t.Fatalf("denial %+v", den)
	}
	noToken(t, err.Error(), expired)
	if msg := err.Error(); !strings.HasPrefix(msg, "bad user name or password: oauth: token expired at ") || strings.Count(msg, "expired") != 1 {
		t.Fatalf("message %q", msg)
	}

	c = creds("", "")
	c.AuthMethod, c.AuthData = oauth.MethodJWT, []byte(expired)
	d, _, err = e.p.Authenticate(ctx, c)
	if d != auth.Deny || !errors.As(err, &te) || !te.Enhanced || !errors.Is(err, auth.ErrBadCredentials) {
		t.Fatalf("expired jwt-method token: %v %v", d, err)
	}
	c.AuthData = nil
	if d, _, err := e.p.Authenticate(ctx, c); d != auth.Deny || !errors.Is(err, oauth.ErrTokenMalformed) {
		t.Fatalf("jwt method without data: %v %v", d, err)
	}
}

// [main] auth_backends = local,oauth: local abstains on the token and on its unknown user, the
// token logs in; a local user still logs in by password; a bad token is refused with 0x86's
// error.
func TestChainLocalThenOAuth(t *testing.T) {
	e := newEnv(t, nil)
	e.start(t)
	users := auth.NewUsers()
	alice, err := auth.NewUser("alice", []byte("wonderland"), auth.Hasher{BcryptCost: 4})
	if err != nil {
		t.Fatal(err)
	}
	users.Put(alice)
	local, err := auth.NewLocal(users, auth.LocalOptions{Hasher: auth.Hasher{BcryptCost: 4}})
	if err != nil {
		t.Fatal(err)
	}
	chain := auth.NewChain(local, e.p).WithRateLimiter(nil)
	ctx := context.Background()

	tok := e.idp.Token(map[string]any{"sub": "device-7", "scope": "read:%2F/* write:%2F/*"})
	for _, user := range []string{"", "nobody", "alice"} {
		id, err := chain.Authenticate(ctx, creds(user, tok))
		if err != nil || id.Method != "oauth" || id.User != "device-7" {
			t.Fatalf("user %q with a token: %+v %v", user, id, err)
		}
	}
	if id, err := chain.Authenticate(ctx, creds("alice", "wonderland")); err != nil || id.Method != "local" {
		t.Fatalf("local password: %+v %v", id, err)
	}
	if _, err := chain.Authenticate(ctx, creds("nobody", "wonderland")); !errors.Is(err, auth.ErrBadCredentials) {
		t.Fatalf("unknown user with a password: %v", err)
	}
	bad := e.idp.Token(nil, oauthtest.WithKid(""))
	_, err = chain.Authenticate(ctx, creds("alice", bad))
	var te *oauth.TokenError
	if !errors.Is(err, auth.ErrBadCredentials) || !errors.As(err, &te) || !errors.Is(err, oauth.ErrNoKeyID) {
		t.Fatalf("bad token: %v", err)
	}
	noToken(t, err.Error(), bad)
}

// Tokens shaped as Keycloak, Auth0 and Azure AD issue them map to the expected permissions.
func TestIdentityProviderShapes(t *testing.T) {
	type check struct {
		vhost  string
		scoped *auth.ScopedPermissions
		tags   []auth.Tag
	}
	tests := []struct {
		name   string
		mutate func(*oauth.Options)
		claims map[string]any
		checks []check
		user   string
	}{
		{
			name: "Keycloak: resource_access roles and a scope string",
			mutate: func(o *oauth.Options) {
				o.ResourceServerID = "turnstile"
				o.Audience = ""
				o.PreferredUsernameClaims = []string{"preferred_username", "sub"}
			},
			claims: map[string]any{
				"aud":                "turnstile",
				"preferred_username": "service-account-sensors",
				"azp":                "sensors",
				"scope":              "openid profile turnstile.read:%2F/mqtt.default",
				"resource_access": map[string]any{
					"turnstile": map[string]any{"roles": []string{"turnstile.write:%2F/mqtt.*", "turnstile.tag:monitoring"}},
					"account":   map[string]any{"roles": []string{"turnstile.write:*/*"}},
				},
				"realm_access": map[string]any{"roles": []string{"turnstile.configure:*/*"}},
			},
			user: "service-account-sensors",
			checks: []check{
				{vhost: "/", scoped: &auth.ScopedPermissions{Configure: "^$", Write: `^mqtt\..*$`, Read: `^mqtt\.default$`}, tags: []auth.Tag{auth.TagMonitoring}},
				{vhost: "prod"},
			},
		},
		{
			name: "Auth0: scope string and the permissions claim, trailing-slash issuer",
			mutate: func(o *oauth.Options) {
				o.Issuer += "/"
				o.Audience = "https://mqtt.example.com"
				o.ResourceServerID = "turnstile"
				o.AdditionalScopesKeys = []string{"permissions"}
			},
			claims: map[string]any{
				"aud":         []string{"https://mqtt.example.com", "https://tenant.auth0.com/userinfo"},
				"sub":         "auth0|5f7c8ec7",
				"scope":       "turnstile.read:prod/mqtt.default/sensors%2F*",
				"permissions": []string{"turnstile.write:prod/mqtt.default/sensors%2F*", "turnstile.write:prod/mqtt.*/x", "turnstile.tag:management"},
			},
			user: "auth0|5f7c8ec7",
			checks: []check{
				{vhost: "prod", scoped: &auth.ScopedPermissions{Configure: "^$", Write: `^(?:mqtt\.default|mqtt\..*)$`, Read: `^mqtt\.default$`, TopicWrite: `^(?:sensors/.*|x)$`, TopicRead: `^sensors/.*$`}, tags: []auth.Tag{auth.TagManagement}},
				{vhost: "/"},
			},
		},
		{
			name: "Azure AD: app roles and scp via additional_scopes_keys, custom prefix",
			mutate: func(o *oauth.Options) {
				o.Audience = "api://5a0e2c5c-turnstile"
				o.ResourceServerID = "api://5a0e2c5c-turnstile"
				o.ScopePrefix = ptr("turnstile.")
				o.AdditionalScopesKeys = []string{"roles", "scp"}
				o.PreferredUsernameClaims = []string{"preferred_username", "azp", "sub"}
			},
			claims: map[string]any{
				"aud":   "api://5a0e2c5c-turnstile",
				"sub":   "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ",
				"azp":   "9f1c3d1a-client",
				"roles": []string{"turnstile.read:*/*", "turnstile.tag:administrator", "Task.Read"},
				"scp":   "turnstile.write:*/mqtt.default turnstile.write:*/mqtt.*",
			},
			user: "9f1c3d1a-client",
			checks: []check{
				{vhost: "/", scoped: &auth.ScopedPermissions{Configure: "^$", Write: `^(?:mqtt\.default|mqtt\..*)$`, Read: ".*"}, tags: []auth.Tag{auth.TagAdministrator}},
				{vhost: "anything", scoped: &auth.ScopedPermissions{Configure: "^$", Write: `^(?:mqtt\.default|mqtt\..*)$`, Read: ".*"}, tags: []auth.Tag{auth.TagAdministrator}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.mutate)
			e.start(t)
			tok := e.idp.Token(tt.claims)
			for _, ck := range tt.checks {
				id, err := e.p.Verify(e.ctx, []byte(tok), ck.vhost, e.clk.Now())
				if err != nil {
					t.Fatalf("vhost %q: %v", ck.vhost, err)
				}
				if id.User != tt.user {
					t.Errorf("user %q, want %q", id.User, tt.user)
				}
				switch {
				case ck.scoped == nil && id.Scoped != nil:
					t.Errorf("vhost %q: scoped %+v, want no access", ck.vhost, *id.Scoped)
				case ck.scoped != nil && (id.Scoped == nil || *id.Scoped != *ck.scoped):
					t.Errorf("vhost %q: scoped\n got %+v\nwant %+v", ck.vhost, id.Scoped, *ck.scoped)
				}
				if ck.scoped != nil && !equalTags(id.Tags, ck.tags) {
					t.Errorf("vhost %q: tags %v, want %v", ck.vhost, id.Tags, ck.tags)
				}
			}
		})
	}
}

func equalTags(a, b []auth.Tag) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestValidate(t *testing.T) {
	base := func() oauth.Options {
		o := oauth.DefaultOptions()
		o.Issuer = "https://idp.example.com/realms/x"
		o.Audience = "turnstile"
		return o
	}
	for _, tt := range []struct {
		name   string
		mutate func(*oauth.Options)
		field  string // "" valid
	}{
		{"valid", func(*oauth.Options) {}, ""},
		{"zero defaults", func(o *oauth.Options) { *o = oauth.Options{Issuer: "https://idp"} }, ""},
		{"no issuer", func(o *oauth.Options) { o.Issuer = "" }, "issuer"},
		{"http issuer elsewhere", func(o *oauth.Options) { o.Issuer = "http://idp.example.com" }, "issuer"},
		{"http issuer on 10/8", func(o *oauth.Options) { o.Issuer = "http://10.0.0.1:8080" }, "issuer"},
		{"http issuer on 127.0.0.2", func(o *oauth.Options) { o.Issuer = "http://127.0.0.2:8080/realms/x" }, ""},
		{"http issuer on ::1", func(o *oauth.Options) { o.Issuer = "http://[::1]:8080" }, ""},
		{"http issuer on localhost", func(o *oauth.Options) { o.Issuer = "http://localhost:8080" }, ""},
		{"http issuer on localhost.evil.com", func(o *oauth.Options) { o.Issuer = "http://localhost.evil.com" }, "issuer"},
		{"relative issuer", func(o *oauth.Options) { o.Issuer = "idp.example.com" }, "issuer"},
		{"ftp issuer", func(o *oauth.Options) { o.Issuer = "ftp://idp.example.com" }, "issuer"},
		{"issuer with credentials", func(o *oauth.Options) { o.Issuer = "https://u:p@idp.example.com" }, "issuer"},
		{"http jwks_url elsewhere", func(o *oauth.Options) { o.JWKSURL = "http://idp.example.com/keys" }, "jwks_url"},
		{"jwks_url and jwks_file", func(o *oauth.Options) { o.JWKSURL, o.JWKSFile = "https://idp/keys", "/etc/keys.json" }, "jwks_file"},
		{"none", func(o *oauth.Options) { o.Algorithms = []string{"RS256", "none"} }, "algorithms"},
		{"NONE", func(o *oauth.Options) { o.Algorithms = []string{"NONE"} }, "algorithms"},
		{"unknown alg", func(o *oauth.Options) { o.Algorithms = []string{"RS1"} }, "algorithms"},
		{"HS256 without secret", func(o *oauth.Options) { o.Algorithms = []string{"HS256"} }, "algorithms"},
		{"HS256 with secret", func(o *oauth.Options) { o.Algorithms, o.HMACSecret = []string{"HS256"}, make([]byte, 32) }, ""},
		{"short secret", func(o *oauth.Options) { o.HMACSecret = make([]byte, 16) }, "hmac_secret"},
		{"HS512 with a 32-byte secret", func(o *oauth.Options) { o.Algorithms, o.HMACSecret = []string{"HS512"}, make([]byte, 32) }, "hmac_secret"},
		{"leeway too long", func(o *oauth.Options) { o.Leeway = time.Hour }, "leeway"},
		{"negative ttl", func(o *oauth.Options) { o.JWKSCacheTTL = -time.Second }, "jwks_cache_ttl"},
		{"empty username claim", func(o *oauth.Options) { o.PreferredUsernameClaims = []string{"sub", " "} }, "preferred_username_claims"},
		{"empty scopes key", func(o *oauth.Options) { o.AdditionalScopesKeys = []string{""} }, "additional_scopes_keys"},
		{"huge token size", func(o *oauth.Options) { o.MaxTokenSize = 1 << 30 }, "max_token_size"},
	} {
		o := base()
		tt.mutate(&o)
		err := o.Validate()
		if tt.field == "" {
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
			}
			continue
		}
		if err == nil || !errors.Is(err, oauth.ErrInvalidOptions) || !strings.Contains(err.Error(), ": "+tt.field+": ") {
			t.Errorf("%s: %v, want an error naming %s", tt.name, err, tt.field)
		}
		if _, nerr := oauth.New(o); nerr == nil {
			t.Errorf("%s: New accepted what Validate refused", tt.name)
		}
	}
	// Every problem is reported, not just the first.
	o := oauth.Options{Issuer: "http://idp.example.com", Algorithms: []string{"none"}, Leeway: time.Hour}
	err := o.Validate()
	for _, f := range []string{"issuer", "algorithms", "leeway"} {
		if err == nil || !strings.Contains(err.Error(), ": "+f+": ") {
			t.Errorf("joined error %v does not name %s", err, f)
		}
	}
}
