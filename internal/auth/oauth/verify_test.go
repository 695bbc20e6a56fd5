package oauth_test

import (
	"crypto/sha256"
	"encoding/base64"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/turnstilemq/turnstile/internal/auth"
	"github.com/turnstilemq/turnstile/internal/auth/oauth"
	"github.com/turnstilemq/turnstile/internal/auth/oauth/oauthtest"
)

// D32: "alg": "none" is refused, and so is HS256 signed with the RSA public key's bytes under
// the RSA key's kid (the RS/HS confusion attack), whether or not HMAC is enabled.
func TestD32NoneAndHMACUnderRSAKid(t *testing.T) {
	secret := []byte(strings.Repeat("s", 32))
	for _, hmacOn := range []bool{false, true} {
		e := newEnv(t, func(o *oauth.Options) {
			if hmacOn {
				o.HMACSecret = secret
				o.Algorithms = append(oauth.DefaultAlgorithms, "HS256")
			}
		})
		e.start(t)
		rsa := e.idp.RSA()
		none := e.idp.Token(nil, oauthtest.Unsigned())
		_, err := e.verify(none)
		wantRefused(t, none, err, oauth.ErrAlgorithm)
		noneNoKid := e.idp.Token(nil, oauthtest.Unsigned(), oauthtest.WithKid(""))
		_, err = e.verify(noneNoKid)
		wantRefused(t, noneNoKid, err, oauth.ErrAlgorithm)

		for _, pub := range [][]byte{rsa.PublicPEM(), []byte(base64.StdEncoding.EncodeToString(rsa.PublicPEM()))} {
			confused := e.idp.Token(nil, oauthtest.WithHMAC(pub), oauthtest.WithKid(rsa.Kid))
			_, err = e.verify(confused)
			wantRefused(t, confused, err, oauth.ErrAlgorithm)
		}
		// Even the right secret is refused under an asymmetric key's kid.
		underKid := e.idp.Token(nil, oauthtest.WithHMAC(secret), oauthtest.WithKid(rsa.Kid))
		_, err = e.verify(underKid)
		wantRefused(t, underKid, err, oauth.ErrAlgorithm)
		if hmacOn && !strings.Contains(err.Error(), `HS256 does not fit key "rsa-1" (RSA)`) {
			t.Fatalf("HMAC enabled: refused for another reason: %v", err)
		}

		// Positive control: with HMAC enabled the shared secret verifies, without a JWKS kid.
		good := e.idp.Token(nil, oauthtest.WithHMAC(secret), oauthtest.WithKid(""))
		_, err = e.verify(good)
		if hmacOn && err != nil {
			t.Fatalf("HS256 with the shared secret: %v", err)
		}
		if !hmacOn {
			wantRefused(t, good, err, oauth.ErrAlgorithm)
		}
		wrong := e.idp.Token(nil, oauthtest.WithHMAC([]byte(strings.Repeat("x", 32))), oauthtest.WithKid(""))
		_, err = e.verify(wrong)
		if hmacOn {
			wantRefused(t, wrong, err, oauth.ErrSignature)
		}
	}
}

// The algorithm must be allowed and fit the key: its family and curve, and the JWK's own alg.
func TestAlgorithmMustFitKey(t *testing.T) {
	e := newEnv(t, func(o *oauth.Options) { o.Algorithms = []string{"RS256", "RS384", "ES256", "ES384", "EdDSA"} })
	e.start(t)
	es384 := oauthtest.NewKey(t, "ES384", "ec-384")
	e.idp.AddKey(es384)
	e.mustVerify(t, e.idp.Token(nil, oauthtest.WithKey(es384)))

	for name, tok := range map[string]string{
		// The JWK of rsa-1 says RS256.
		"RS384 under an RS256 key": e.idp.Token(nil, oauthtest.WithAlg("RS384")),
		// ES256 signature by the P-256 key, presented under the RSA kid.
		"ES256 under an RSA kid": e.idp.Token(nil, oauthtest.WithKey(e.idp.EC()), oauthtest.WithKid("rsa-1")),
		// EdDSA under the EC kid.
		"EdDSA under an EC kid": e.idp.Token(nil, oauthtest.WithKey(e.idp.Ed()), oauthtest.WithKid("ec-1")),
	} {
		_, err := e.verify(tok)
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		wantRefused(t, tok, err, oauth.ErrAlgorithm)
	}
	// Not in the allow-list.
	ps := e.idp.Token(nil, oauthtest.WithAlg("PS256"))
	_, err := e.verify(ps)
	wantRefused(t, ps, err, oauth.ErrAlgorithm)
	// Another key's signature under a kid that fits the algorithm.
	other := oauthtest.NewKey(t, "ES256", "ec-1")
	forged := e.idp.Token(nil, oauthtest.WithKey(other))
	_, err = e.verify(forged)
	wantRefused(t, forged, err, oauth.ErrSignature)
	// A token without kid.
	nokid := e.idp.Token(nil, oauthtest.WithKid(""))
	_, err = e.verify(nokid)
	wantRefused(t, nokid, err, oauth.ErrNoKeyID)
}

// exp, nbf and iat with the one leeway (30 s by default); exp is required.
func TestTimeClaimsWithLeeway(t *testing.T) {
	e := newEnv(t, nil)
	e.start(t)
	now := e.clk.Now()
	lw := oauth.DefaultLeeway
	for _, tt := range []struct {
		name   string
		claims map[string]any
		want   error
	}{
		{"valid", nil, nil},
		{"exp missing", map[string]any{"exp": nil}, oauth.ErrClaim},
		{"exp not a number", map[string]any{"exp": "tomorrow"}, oauth.ErrClaim},
		{"exp just passed, within leeway", map[string]any{"exp": now.Add(-lw)}, nil},
		{"exp passed beyond leeway", map[string]any{"exp": now.Add(-lw - time.Second)}, oauth.ErrExpired},
		{"fractional exp", map[string]any{"exp": float64(now.Unix()) + 0.5}, nil},
		{"nbf within leeway", map[string]any{"nbf": now.Add(lw)}, nil},
		{"nbf beyond leeway", map[string]any{"nbf": now.Add(lw + time.Second)}, oauth.ErrNotYetValid},
		{"iat within leeway", map[string]any{"iat": now.Add(lw)}, nil},
		{"iat in the future", map[string]any{"iat": now.Add(lw + time.Second)}, oauth.ErrIssuedInFuture},
		{"iat absent", map[string]any{"iat": nil}, nil},
	} {
		tok := e.idp.Token(tt.claims)
		_, err := e.verify(tok)
		if tt.want == nil {
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
			}
			continue
		}
		wantRefused(t, tok, err, tt.want)
	}
	// The error says what failed.
	_, err := e.verify(e.idp.Token(map[string]any{"exp": now.Add(-time.Hour)}))
	if err == nil || !strings.Contains(err.Error(), "token expired") {
		t.Fatalf("error %v", err)
	}
	// A custom leeway applies to all three.
	e2 := newEnv(t, func(o *oauth.Options) { o.Leeway = -1 })
	e2.start(t)
	for _, c := range []map[string]any{{"exp": now.Add(-time.Second)}, {"nbf": now.Add(time.Second)}, {"iat": now.Add(time.Second)}} {
		if _, err := e2.verify(e2.idp.Token(c)); err == nil {
			t.Errorf("no leeway: %v accepted", c)
		}
	}
}

func TestIssuerAndAudience(t *testing.T) {
	e := newEnv(t, nil) // Audience "turnstile", VerifyAud true
	e.start(t)
	for _, tt := range []struct {
		name   string
		claims map[string]any
		want   error
	}{
		{"aud string", nil, nil},
		{"aud array", map[string]any{"aud": []string{"other", oauthtest.DefaultAudience}}, nil},
		{"aud missing", map[string]any{"aud": nil}, oauth.ErrAudience},
		{"aud other", map[string]any{"aud": []string{"other"}}, oauth.ErrAudience},
		{"aud not strings", map[string]any{"aud": 7}, oauth.ErrClaim},
		{"iss other", map[string]any{"iss": "https://evil.example"}, oauth.ErrIssuer},
		{"iss missing", map[string]any{"iss": nil}, oauth.ErrIssuer},
		{"iss with a trailing slash", map[string]any{"iss": e.idp.Issuer() + "/"}, nil},
	} {
		tok := e.idp.Token(tt.claims)
		_, err := e.verify(tok)
		if tt.want == nil {
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
			}
			continue
		}
		wantRefused(t, tok, err, tt.want)
	}

	// resource_server_id stands in for an empty audience.
	rs := newEnv(t, func(o *oauth.Options) { o.Audience, o.ResourceServerID = "", "mq" })
	rs.start(t)
	if _, err := rs.verify(rs.idp.Token(map[string]any{"aud": "mq"})); err != nil {
		t.Fatal(err)
	}
	tok := rs.idp.Token(nil)
	_, err := rs.verify(tok)
	wantRefused(t, tok, err, oauth.ErrAudience)

	// verify_aud with neither set refuses every token (LavinMQ).
	none := newEnv(t, func(o *oauth.Options) { o.Audience, o.ResourceServerID = "", "" })
	none.start(t)
	_, err = none.verify(none.idp.Token(nil))
	wantRefused(t, "", err, oauth.ErrAudience)

	// verify_aud off: any audience.
	off := newEnv(t, func(o *oauth.Options) { o.VerifyAud = false })
	off.start(t)
	if _, err := off.verify(off.idp.Token(map[string]any{"aud": "whatever"})); err != nil {
		t.Fatal(err)
	}
}

func TestSizeAndShape(t *testing.T) {
	e := newEnv(t, nil)
	e.start(t)
	big := e.idp.Token(map[string]any{"pad": strings.Repeat("x", oauth.DefaultMaxTokenSize)})
	_, err := e.verify(big)
	wantRefused(t, big, err, oauth.ErrTokenTooLarge)
	for _, bad := range []string{"", "a.b", "eyJ.eyJ.x.y", "eyJhbGciOiJSUzI1NiJ9.!!!.xx", "eyJub3QgYSBoZWFkZXI.eyJ9.c2ln"} {
		_, err := e.verify(bad)
		wantRefused(t, bad, err, oauth.ErrTokenMalformed)
	}
	// A signed payload that is not an object.
	tok := e.idp.Token(nil)
	parts := strings.Split(tok, ".")
	parts[1] = base64.RawURLEncoding.EncodeToString([]byte(`[1,2]`))
	_, err = e.verify(strings.Join(parts, "."))
	wantRefused(t, "", err, oauth.ErrSignature) // the signature no longer matches: checked first
}

// The identity: user from the preferred claims, subject and issuer, validity window, one
// credential reference with jti, kid, subject, expiry and the token's hash.
func TestIdentity(t *testing.T) {
	e := newEnv(t, func(o *oauth.Options) { o.PreferredUsernameClaims = []string{"preferred_username", "sub", "client_id"} })
	e.start(t)
	now := e.clk.Now()
	tok := e.idp.Token(map[string]any{
		"sub": "f81d4fae", "preferred_username": "alice", "jti": "tok-1",
		"nbf": now.Add(-time.Minute), "exp": now.Add(time.Hour),
		"scope": "read:%2F/* write:%2F/mqtt.default tag:monitoring",
	}, oauthtest.WithKey(e.idp.Ed()))
	id := e.mustVerify(t, tok)
	want := auth.Identity{
		User: "alice", Subject: "f81d4fae", Issuer: e.idp.Issuer(), Vhost: "/", Method: "oauth",
		GrantsSource: auth.GrantsOAuth, NotBefore: now.Add(-time.Minute), Expiry: now.Add(time.Hour),
	}
	if id.User != want.User || id.Subject != want.Subject || id.Issuer != want.Issuer || id.Vhost != want.Vhost ||
		id.Method != want.Method || id.GrantsSource != want.GrantsSource || !id.NotBefore.Equal(want.NotBefore) || !id.Expiry.Equal(want.Expiry) {
		t.Fatalf("identity %+v", id)
	}
	if len(id.Tags) != 1 || id.Tags[0] != auth.TagMonitoring {
		t.Fatalf("tags %v", id.Tags)
	}
	if id.Scoped == nil || id.Scoped.Read != ".*" || id.Scoped.Write != `^mqtt\.default$` || id.Scoped.Configure != "^$" {
		t.Fatalf("scoped %+v", id.Scoped)
	}
	wantRef := auth.CredentialRef{Kind: "jwt", ID: "tok-1", KeyID: "ed-1", Subject: "f81d4fae", Expiry: now.Add(time.Hour), Hash: sha256.Sum256([]byte(tok))}
	if len(id.Creds) != 1 || !reflect.DeepEqual(id.Creds[0], wantRef) {
		t.Fatalf("creds %+v, want %+v", id.Creds, wantRef)
	}
	if !id.HasCredentialID("tok-1") || !id.HasKeyID("ed-1") || !id.ValidAt(now, e.p.Leeway()) {
		t.Fatal("identity helpers disagree")
	}

	// Preferred claims in order; a missing or non-string claim is skipped.
	id = e.mustVerify(t, e.idp.Token(map[string]any{"preferred_username": 12, "sub": "s-1"}))
	if id.User != "s-1" {
		t.Fatalf("user %q", id.User)
	}
	id = e.mustVerify(t, e.idp.Token(map[string]any{"sub": nil, "client_id": "svc"}))
	if id.User != "svc" || id.Subject != "" {
		t.Fatalf("user %q subject %q", id.User, id.Subject)
	}
	tok = e.idp.Token(map[string]any{"sub": nil})
	_, err := e.verify(tok)
	wantRefused(t, tok, err, oauth.ErrClaim)

	// Another vhost: no scope matches, no access (Scoped nil), the token itself is good.
	id, err = e.p.Verify(e.ctx, []byte(e.idp.Token(map[string]any{"scope": "read:prod/*"})), "dev", now)
	if err != nil || id.Scoped != nil || id.Vhost != "dev" {
		t.Fatalf("other vhost: %+v %v", id, err)
	}
}
