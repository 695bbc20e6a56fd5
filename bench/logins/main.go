// Command logins provisions the logins bench/compare measures (issues 12, 13 and 14): users
// created through Turnstile's management API, a definitions file of users with imported hashes,
// a JWKS file with ES256 tokens signed by its key, and AccessKeys with tokens applied for through
// the token service (whose ApplyToken rate it measures). It writes credentials files for
// `turnstile bench --credentials` ("user name<TAB>password" lines). It is a bench tool: it keeps
// secrets in plain files under the work directory it is given.
//
//	logins users   --api URL --admin USER:PW --count N [--prefix u] [--password 'p{i}'] [--parallel 4]
//	logins defs    --count N --out FILE [--prefix u] [--password PW]   (one bcrypt hash, cost 10, shared)
//	logins jwt     --count N --jwks FILE --out FILE [--issuer URL] [--audience turnstile]
//	logins tokens  --api URL --admin USER:PW --tokens URL --count N --out FILE [--keys 64] [--seconds 5]
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/crypto/bcrypt"

	"github.com/turnstilemq/turnstile/internal/bench"
	"github.com/turnstilemq/turnstile/pkg/tokenclient"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: logins users|defs|jwt|tokens [flags] (see the source's doc comment)")
		os.Exit(2)
	}
	var err error
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "users":
		err = users(args)
	case "defs":
		err = defs(args)
	case "jwt":
		err = jwtTokens(args)
	case "tokens":
		err = tokens(args)
	default:
		err = fmt.Errorf("unknown command %q", cmd)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "logins:", err)
		os.Exit(1)
	}
}

// name replaces {i} in s by i.
func name(s string, i int) string { return strings.ReplaceAll(s, "{i}", strconv.Itoa(i)) }

// api sends one management API request and checks its status.
func api(hc *http.Client, method, base, path, admin, body string, want ...int) ([]byte, error) {
	req, err := http.NewRequest(method, strings.TrimRight(base, "/")+path, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	user, pw, _ := strings.Cut(admin, ":")
	req.SetBasicAuth(user, pw)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	for _, w := range want {
		if res.StatusCode == w {
			return b, nil
		}
	}
	return nil, fmt.Errorf("%s %s: HTTP %d: %s", method, path, res.StatusCode, b)
}

// users creates users through PUT /api/users (the password hashed by Turnstile, which keeps its
// verifier) with full permissions on vhost /.
func users(args []string) error {
	fs := flag.NewFlagSet("users", flag.ExitOnError)
	base := fs.String("api", "http://127.0.0.1:15672", "management API base URL")
	admin := fs.String("admin", "guest:guest", "administrator user:password")
	count := fs.Int("count", 10000, "users to create")
	prefix := fs.String("prefix", "u", "user name prefix (the number follows)")
	password := fs.String("password", "p{i}", "password ({i}: the user's number)")
	workers := fs.Int("parallel", 4, "requests at a time")
	fs.Parse(args)
	hc := &http.Client{Timeout: time.Minute}
	start := time.Now()
	var done atomic.Int64
	err := bench.Parallel(context.Background(), *count, *workers, true, func(i int) error {
		u := *prefix + strconv.Itoa(i)
		pw, _ := json.Marshal(name(*password, i))
		if _, err := api(hc, "PUT", *base, "/api/users/"+url.PathEscape(u), *admin, `{"password": `+string(pw)+`, "tags": ""}`, 201, 204); err != nil {
			return err
		}
		if _, err := api(hc, "PUT", *base, "/api/permissions/%2F/"+url.PathEscape(u), *admin, `{"configure": ".*", "write": ".*", "read": ".*"}`, 201, 204); err != nil {
			return err
		}
		if n := done.Add(1); n%1000 == 0 {
			fmt.Fprintf(os.Stderr, "%d users created in %v\n", n, time.Since(start).Round(time.Second))
		}
		return nil
	})
	fmt.Fprintf(os.Stderr, "%d users created in %v\n", done.Load(), time.Since(start).Round(time.Second))
	return err
}

// defs writes a RabbitMQ definitions file of users imported with a bcrypt hash (cost 10) and no
// verifier. They share one password and one hash: each first login still costs a whole bcrypt
// run, and provisioning does not cost one per user.
func defs(args []string) error {
	fs := flag.NewFlagSet("defs", flag.ExitOnError)
	count := fs.Int("count", 10000, "users")
	prefix := fs.String("prefix", "u", "user name prefix (the number follows)")
	password := fs.String("password", "shared-secret", "the users' password")
	out := fs.String("out", "", "definitions file to write")
	fs.Parse(args)
	if *out == "" {
		return errors.New("defs: --out is required")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(*password), bcrypt.DefaultCost)
	if err != nil {
		return err
	}
	type user struct {
		Name             string `json:"name"`
		PasswordHash     string `json:"password_hash"`
		HashingAlgorithm string `json:"hashing_algorithm"`
		Tags             string `json:"tags"`
	}
	type perm struct {
		User      string `json:"user"`
		Vhost     string `json:"vhost"`
		Configure string `json:"configure"`
		Write     string `json:"write"`
		Read      string `json:"read"`
	}
	var d struct {
		Users       []user           `json:"users"`
		Vhosts      []map[string]any `json:"vhosts"`
		Permissions []perm           `json:"permissions"`
	}
	d.Vhosts = []map[string]any{{"name": "/"}}
	for i := range *count {
		u := *prefix + strconv.Itoa(i)
		d.Users = append(d.Users, user{u, string(h), "bcrypt", ""})
		d.Permissions = append(d.Permissions, perm{u, "/", ".*", ".*", ".*"})
	}
	b, err := json.Marshal(d)
	if err != nil {
		return err
	}
	return os.WriteFile(*out, b, 0o600)
}

// jwtTokens writes a JWKS of one ES256 key and count tokens signed by it (sub dev<i>, scopes on
// every vhost), as a credentials file: the subject as the user name (which names nothing for a
// JWT login, but 3.1.1 allows no password without one) and the token as the password.
func jwtTokens(args []string) error {
	fs := flag.NewFlagSet("jwt", flag.ExitOnError)
	count := fs.Int("count", 10000, "tokens (distinct subjects)")
	jwksOut := fs.String("jwks", "", "JWKS file to write")
	out := fs.String("out", "", "credentials file to write")
	issuer := fs.String("issuer", "https://bench.turnstile.invalid", "iss")
	audience := fs.String("audience", "turnstile", "aud, and the resource server id of the scopes")
	lifetime := fs.Duration("lifetime", 2*time.Hour, "token lifetime")
	fs.Parse(args)
	if *jwksOut == "" || *out == "" {
		return errors.New("jwt: --jwks and --out are required")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	const kid = "bench-es256"
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: kid, Algorithm: "ES256", Use: "sig"}}}
	jb, err := json.Marshal(set)
	if err != nil {
		return err
	}
	if err := os.WriteFile(*jwksOut, jb, 0o600); err != nil {
		return err
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", kid).WithType("JWT"))
	if err != nil {
		return err
	}
	now := time.Now()
	rs := *audience
	scope := rs + ".configure:*/* " + rs + ".write:*/* " + rs + ".read:*/*"
	return writeCreds(*out, *count, func(i int) (string, string, error) {
		claims := map[string]any{"iss": *issuer, "aud": *audience, "sub": "dev" + strconv.Itoa(i), "scope": scope,
			"iat": now.Unix(), "exp": now.Add(*lifetime).Unix(), "jti": fmt.Sprintf("bench-%d", i)}
		tok, err := jwt.Signed(signer).Claims(claims).Serialize()
		return "dev" + strconv.Itoa(i), tok, err // a user name only for the password flag's sake [MQTT-3.1.2-22]
	})
}

// writeCreds writes count "user<TAB>password" lines made by f.
func writeCreds(path string, count int, f func(i int) (user, pw string, err error)) error {
	file, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(file)
	for i := range count {
		u, p, err := f(i)
		if err != nil {
			file.Close()
			return err
		}
		fmt.Fprintf(w, "%s\t%s\n", u, p)
	}
	if err := w.Flush(); err != nil {
		file.Close()
		return err
	}
	return file.Close()
}

// tokens creates AccessKeys (POST /api/access-keys, owner --user on vhost /), measures how many
// ApplyToken requests per second the token service answers with one worker per key for
// --seconds (each AccessKey is limited to 100 a second, so the keys are many), prints the result
// as one JSON line, and writes count of the tokens as a credentials file.
func tokens(args []string) error {
	fs := flag.NewFlagSet("tokens", flag.ExitOnError)
	base := fs.String("api", "http://127.0.0.1:15672", "management API base URL")
	admin := fs.String("admin", "guest:guest", "administrator user:password")
	endpoint := fs.String("tokens", "http://127.0.0.1:8089/", "token service URL")
	owner := fs.String("user", "guest", "owner of the AccessKeys (with permissions on vhost /)")
	keys := fs.Int("keys", 64, "AccessKeys, one worker each")
	seconds := fs.Float64("seconds", 5, "how long to apply for tokens")
	count := fs.Int("count", 10000, "tokens to write to --out")
	out := fs.String("out", "", "credentials file to write")
	fs.Parse(args)
	if *out == "" {
		return errors.New("tokens: --out is required")
	}
	hc := &http.Client{Timeout: time.Minute}
	type key struct {
		ID     string `json:"access_key_id"`
		Secret string `json:"access_key_secret"`
	}
	ks := make([]key, *keys)
	if err := bench.Parallel(context.Background(), *keys, 4, true, func(i int) error {
		b, err := api(hc, "POST", *base, "/api/access-keys", *admin, `{"user": "`+*owner+`", "vhost": "/"}`, 201)
		if err == nil {
			err = json.Unmarshal(b, &ks[i])
		}
		return err
	}); err != nil {
		return err
	}
	tr := &http.Transport{MaxIdleConnsPerHost: *keys}
	var (
		mu        sync.Mutex
		creds     [][2]string
		applied   atomic.Int64
		throttled atomic.Int64
		failed    atomic.Int64
		firstErr  atomic.Value
	)
	start := time.Now()
	deadline := start.Add(time.Duration(*seconds * float64(time.Second)))
	var wg sync.WaitGroup
	for w := range *keys {
		c, err := tokenclient.New(tokenclient.Config{Endpoint: *endpoint, AccessKeyID: ks[w].ID, AccessKeySecret: ks[w].Secret,
			InstanceID: "/", HTTPClient: &http.Client{Transport: tr, Timeout: 10 * time.Second}})
		if err != nil {
			return err
		}
		wg.Go(func() {
			for n := 0; time.Now().Before(deadline); n++ {
				tok, err := c.ApplyToken(context.Background(), []string{fmt.Sprintf("devices/%d-%d/#", w, n)}, tokenclient.ActionsRW, time.Now().Add(2*time.Hour))
				var ae *tokenclient.APIError
				switch {
				case err == nil:
					applied.Add(1)
					mu.Lock()
					if len(creds) < *count {
						creds = append(creds, [2]string{tokenclient.Username(ks[w].ID, "/"), tokenclient.Password(tok)})
					}
					mu.Unlock()
				case errors.As(err, &ae) && ae.Status == http.StatusTooManyRequests:
					throttled.Add(1)
				default:
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	if len(creds) == 0 {
		return fmt.Errorf("tokens: no token applied for (%v)", firstErr.Load())
	}
	if err := writeCreds(*out, *count, func(i int) (string, string, error) { c := creds[i%len(creds)]; return c[0], c[1], nil }); err != nil {
		return err
	}
	res := map[string]any{"keys": *keys, "seconds": elapsed, "applied": applied.Load(), "apply_per_s": float64(applied.Load()) / elapsed,
		"throttled": throttled.Load(), "failed": failed.Load(), "first_error": firstErr.Load()}
	var b bytes.Buffer
	json.NewEncoder(&b).Encode(res)
	_, err := os.Stdout.Write(b.Bytes())
	return err
}
