package tokenclient

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/turnstilemq/turnstile/pkg/tokensign"
)

// APIVersion is the token API's Version.
const APIVersion = "2020-04-20"

// Actions as the API spells them; CONNECT and $SYS payloads spell "R,W" as "RW" (see Type).
const (
	ActionsR  = "R"
	ActionsW  = "W"
	ActionsRW = "R,W"
)

// Defaults of Config.
const (
	DefaultLifetime      = time.Hour
	DefaultRefreshBefore = 5 * time.Minute
	DefaultTimeout       = 10 * time.Second
	DefaultMaxEntries    = 10000
)

// Config configures a Client.
type Config struct {
	// Endpoint is the token API's base URL, e.g. "https://mqtt.example.com:8443/".
	Endpoint        string
	AccessKeyID     string
	AccessKeySecret string
	InstanceID      string // the vhost the tokens are for
	// SignatureMethod is tokensign.HMACSHA1 (default) or tokensign.HMACSHA256.
	SignatureMethod string
	// UseGET sends requests as GET with the parameters in the URL; the default is a form POST,
	// which keeps tokens out of access logs.
	UseGET bool
	// HTTPClient sends the requests; nil: a client with DefaultTimeout.
	HTTPClient *http.Client
	// Lifetime is how long Get's tokens are applied for (default 1 h, at least 2 min).
	Lifetime time.Duration
	// RefreshBefore is the lead: Get applies for a new token once the cached one expires within
	// it (default 5 min; it is lowered to half the Lifetime).
	RefreshBefore time.Duration
	// CacheFile persists the cache (JSON, mode 0600, written atomically); "" keeps it in memory.
	CacheFile string
	// MaxEntries bounds the cache (default 10000): expired entries go first, then the ones
	// expiring soonest.
	MaxEntries int
	// Now is the clock; nil: time.Now.
	Now func() time.Time
}

// Token is a token with what it allows.
type Token struct {
	Token     string    `json:"token"`
	Resources []string  `json:"resources"` // sorted
	Actions   string    `json:"actions"`   // "R", "W" or "R,W"
	ExpireAt  time.Time `json:"expire_at"`
	// Note is the service's remark, such as an expiry capped at the maximum lifetime.
	Note string `json:"note,omitempty"`
}

// Type is the token's type as CONNECT and $SYS/uploadToken spell it: "R", "W" or "RW".
func (t *Token) Type() string { return TypeOf(t.Actions) }

// TypeOf maps API actions to the CONNECT spelling: "R,W" → "RW".
func TypeOf(actions string) string {
	if actions == ActionsRW {
		return "RW"
	}
	return actions
}

// Password returns the CONNECT password for tokens: "<type>|<token>" pairs joined by '|'.
func Password(toks ...Token) string {
	parts := make([]string, 0, 2*len(toks))
	for _, t := range toks {
		parts = append(parts, t.Type(), t.Token)
	}
	return strings.Join(parts, "|")
}

// Username returns the CONNECT user name of token mode: "Token|<AccessKeyId>|<InstanceId>".
func Username(accessKeyID, instanceID string) string {
	return "Token|" + accessKeyID + "|" + instanceID
}

// APIError is a refusal of the token API.
type APIError struct {
	Status    int
	RequestID string
	Code      string
	Message   string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("tokenclient: %s (HTTP %d): %s", e.Code, e.Status, e.Message)
}

// Unreachable reports whether err says the token service could not be reached or could not
// answer (a network error, HTTP 5xx or 429), rather than refusing the request.
func Unreachable(err error) bool {
	if err == nil {
		return false
	}
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Status >= 500 || ae.Status == http.StatusTooManyRequests
	}
	return !errors.Is(err, context.Canceled)
}

// Client talks to the token API and caches tokens. Safe for concurrent use.
type Client struct {
	cfg  Config
	http *http.Client
	now  func() time.Time
	base *url.URL

	mu       sync.Mutex
	cache    map[string]Token
	inflight map[string]*sync.Mutex // per permission set: one ApplyToken at a time
}

// New returns a client; it loads the cache file when there is one.
func New(cfg Config) (*Client, error) {
	if cfg.Endpoint == "" || cfg.AccessKeyID == "" || cfg.AccessKeySecret == "" || cfg.InstanceID == "" {
		return nil, errors.New("tokenclient: Endpoint, AccessKeyID, AccessKeySecret and InstanceID are required")
	}
	base, err := url.Parse(cfg.Endpoint)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, errors.New("tokenclient: Endpoint must be an http or https URL")
	}
	if cfg.SignatureMethod == "" {
		cfg.SignatureMethod = tokensign.HMACSHA1
	}
	if cfg.SignatureMethod != tokensign.HMACSHA1 && cfg.SignatureMethod != tokensign.HMACSHA256 {
		return nil, tokensign.ErrMethod
	}
	if cfg.Lifetime <= 0 {
		cfg.Lifetime = DefaultLifetime
	}
	cfg.Lifetime = max(cfg.Lifetime, 2*time.Minute)
	if cfg.RefreshBefore <= 0 {
		cfg.RefreshBefore = DefaultRefreshBefore
	}
	cfg.RefreshBefore = min(cfg.RefreshBefore, cfg.Lifetime/2)
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = DefaultMaxEntries
	}
	c := &Client{cfg: cfg, http: cfg.HTTPClient, now: cfg.Now, base: base,
		cache: map[string]Token{}, inflight: map[string]*sync.Mutex{}}
	if c.http == nil {
		c.http = &http.Client{Timeout: DefaultTimeout}
	}
	if c.now == nil {
		c.now = time.Now
	}
	if cfg.CacheFile != "" {
		if err := c.loadCache(); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func newNonce() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// call signs and sends one RPC request and decodes the JSON answer into out.
func (c *Client) call(ctx context.Context, action string, params url.Values, out any) error {
	p := url.Values{}
	for k, v := range params {
		p[k] = slices.Clone(v)
	}
	p.Set(tokensign.ParamAction, action)
	p.Set(tokensign.ParamVersion, APIVersion)
	p.Set(tokensign.ParamFormat, "JSON")
	p.Set(tokensign.ParamAccessKeyID, c.cfg.AccessKeyID)
	p.Set(tokensign.ParamSignatureMethod, c.cfg.SignatureMethod)
	p.Set(tokensign.ParamSignatureVersion, tokensign.SignatureVersion)
	p.Set(tokensign.ParamSignatureNonce, newNonce())
	p.Set(tokensign.ParamTimestamp, c.now().UTC().Format(tokensign.TimestampLayout))
	method := http.MethodPost
	if c.cfg.UseGET {
		method = http.MethodGet
	}
	sig, err := tokensign.RPCSignature(method, p, c.cfg.AccessKeySecret)
	if err != nil {
		return err
	}
	p.Set(tokensign.ParamSignature, sig)
	u := *c.base
	if u.Path == "" {
		u.Path = "/"
	}
	var req *http.Request
	if method == http.MethodGet {
		u.RawQuery = p.Encode()
		req, err = http.NewRequestWithContext(ctx, method, u.String(), nil)
	} else {
		req, err = http.NewRequestWithContext(ctx, method, u.String(), strings.NewReader(p.Encode()))
		if req != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
	}
	if err != nil {
		return fmt.Errorf("tokenclient: %w", err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("tokenclient: %s: %w", action, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("tokenclient: %s: reading the answer: %w", action, err)
	}
	if resp.StatusCode != http.StatusOK {
		ae := &APIError{Status: resp.StatusCode}
		var e struct{ RequestId, Code, Message string }
		if json.Unmarshal(body, &e) == nil {
			ae.RequestID, ae.Code, ae.Message = e.RequestId, e.Code, e.Message
		}
		if ae.Code == "" {
			ae.Code = http.StatusText(resp.StatusCode)
		}
		return ae
	}
	if err := json.Unmarshal(body, out); err != nil {
		return &APIError{Status: http.StatusBadGateway, Code: "BadResponse", Message: "the answer is not JSON"}
	}
	return nil
}

// normalize sorts and de-duplicates resources.
func normalize(resources []string) []string {
	out := slices.Clone(resources)
	slices.Sort(out)
	return slices.Compact(out)
}

// ApplyToken applies for a token (no cache): resources are MQTT topic filters, actions "R",
// "W" or "R,W", expireAt at least a minute ahead (the service caps it at its maximum lifetime).
func (c *Client) ApplyToken(ctx context.Context, resources []string, actions string, expireAt time.Time) (Token, error) {
	res := normalize(resources)
	p := url.Values{}
	p.Set("InstanceId", c.cfg.InstanceID)
	p.Set("Resources", strings.Join(res, ","))
	p.Set("Actions", actions)
	p.Set("ExpireTime", strconv.FormatInt(expireAt.UnixMilli(), 10))
	var out struct {
		Token      string
		ExpireTime int64
		Message    string
	}
	if err := c.call(ctx, "ApplyToken", p, &out); err != nil {
		return Token{}, err
	}
	if out.Token == "" {
		return Token{}, &APIError{Status: http.StatusBadGateway, Code: "BadResponse", Message: "no Token in the answer"}
	}
	exp := expireAt
	if out.ExpireTime > 0 {
		exp = time.UnixMilli(out.ExpireTime)
	}
	return Token{Token: out.Token, Resources: res, Actions: actions, ExpireAt: exp, Note: out.Message}, nil
}

// QueryToken asks whether a token is valid (signature, expiry, revocation).
func (c *Client) QueryToken(ctx context.Context, token string) (bool, error) {
	p := url.Values{}
	p.Set("InstanceId", c.cfg.InstanceID)
	p.Set("Token", token)
	var out struct{ TokenStatus bool }
	if err := c.call(ctx, "QueryToken", p, &out); err != nil {
		return false, err
	}
	return out.TokenStatus, nil
}

// RevokeToken revokes a token: clients holding it are disconnected at once. It is also dropped
// from the cache.
func (c *Client) RevokeToken(ctx context.Context, token string) error {
	p := url.Values{}
	p.Set("InstanceId", c.cfg.InstanceID)
	p.Set("Token", token)
	var out struct{ RequestId string }
	if err := c.call(ctx, "RevokeToken", p, &out); err != nil {
		return err
	}
	c.mu.Lock()
	changed := false
	for k, t := range c.cache {
		if t.Token == token {
			delete(c.cache, k)
			changed = true
		}
	}
	var err error
	if changed {
		err = c.saveLocked()
	}
	c.mu.Unlock()
	return err
}
