// Package oauthtest is an in-process OpenID Connect provider for tests: an httptest server on
// loopback that serves discovery (/.well-known/openid-configuration) and a JWKS (/jwks), with
// RSA, ECDSA and Ed25519 signing keys generated at start, and mints tokens with any claims, kid
// and algorithm (unsigned and HMAC-signed ones too, for refusal tests).
//
// A test can replace the JWKS (key rotation), take the endpoint down and up, hold JWKS
// responses until released (to make fetches overlap), set Cache-Control max-age, and count the
// discovery and JWKS requests the server received. It is for tests only: keys are generated
// in memory and nothing is kept.
//
//	idp := oauthtest.New(t)
//	p, _ := oauth.New(idp.Options())
//	tok := idp.Token(map[string]any{"sub": "dev1", "scope": "read:*/* write:*/*"})
package oauthtest
