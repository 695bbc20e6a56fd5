package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
)

// The ctl defaults are those of rabbitmqadmin: the management API on the loopback interface and
// the guest user, which a fresh broker accepts from there.
const (
	ctlDefaultURI      = "http://127.0.0.1:15672"
	ctlDefaultUser     = "guest"
	ctlDefaultPassword = "guest"
	ctlDefaultTimeout  = 30 * time.Second

	// Environment variables read when the matching flag is not given.
	envURI      = "TURNSTILE_URI"
	envUser     = "TURNSTILE_USER"
	envPassword = "TURNSTILE_PASSWORD"

	// ctlMaxBody bounds what ctl reads of a response or of a definitions file to import.
	ctlMaxBody = 256 << 20
	// ctlMaxErrorBody is how much of a non-JSON error body is printed.
	ctlMaxErrorBody = 300
)

// ctlOptions are the flags every ctl command shares.
type ctlOptions struct {
	uri, user, password string
	json                bool
	timeout             time.Duration
}

func newCtlCmd() *cobra.Command {
	o := &ctlOptions{}
	cmd := &cobra.Command{
		Use:   "ctl COMMAND [flags]",
		Short: "Manage a running broker through its management HTTP API",
		Long: `ctl manages users, vhosts, permissions, connections, sessions and definitions of a running
broker through its management HTTP API (the RabbitMQ management API's paths and JSON). The
commands are named as in rabbitmqctl and lavinmqctl.

The API is found at --uri (or $` + envURI + `, default ` + ctlDefaultURI + `) and ctl logs in
with HTTP basic authentication as --user and --password (or $` + envUser + ` and $` + envPassword + `,
or the user information of the URI; default guest/guest). A flag wins over its variable. Prefer
the variable for the password: command line arguments are visible to other local users.

Lists print as aligned tables, or with --json as the API's JSON. An error from the API is
printed to stderr as "Error: <reason>" and ctl exits with status 1. wait-ready waits until a
starting broker accepts connections, up to --timeout.`,
		Example: `  turnstile ctl add_vhost tenant1
  turnstile ctl add_user alice 's3cret' --tags management
  turnstile ctl set_permissions -p tenant1 alice '.*' '.*' '.*'
  TURNSTILE_PASSWORD=… turnstile ctl --user admin list_connections --json`,
		Args: unknownCommand,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
		// SuggestionsFor compares names up to this many edits apart.
		SuggestionsMinimumDistance: 2,
	}
	f := cmd.PersistentFlags()
	f.StringVar(&o.uri, "uri", ctlDefaultURI, "management API `URI` ($"+envURI+")")
	f.StringVar(&o.user, "user", "", "management API `user` ($"+envUser+"; default guest)")
	f.StringVar(&o.password, "password", "", "management API `password` ($"+envPassword+"; default guest)")
	f.BoolVar(&o.json, "json", false, "print the API's JSON instead of tables and messages")
	f.DurationVar(&o.timeout, "timeout", ctlDefaultTimeout, "time limit of each HTTP request (of the whole wait for wait-ready)")
	cmd.AddCommand(ctlCommands(o)...)
	cmd.AddCommand(ctlLimitCommands(o)...) // limits and bans (ctl_limits.go)
	return cmd
}

// ctlClient is a management API client bound to one command's output streams.
type ctlClient struct {
	base           string // scheme://host[:port][/prefix], no user information, no trailing slash
	host           string // host[:port] of base, for messages
	user, password string
	http           *http.Client
	json           bool
	stdout, stderr io.Writer
	stdin          io.Reader
}

// newClient resolves the flags, the environment and the URI's user information, in that order,
// into a client.
func (o *ctlOptions) newClient(cmd *cobra.Command) (*ctlClient, error) {
	pick := func(flag, env string) (string, bool) {
		if f := cmd.Flag(flag); f != nil && f.Changed {
			return f.Value.String(), true
		}
		if v := os.Getenv(env); v != "" {
			return v, true
		}
		return "", false
	}
	raw, ok := pick("uri", envURI)
	if !ok {
		raw = ctlDefaultURI
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url's message quotes the whole URI, which may carry a password.
		return nil, errors.New("--uri: not a valid URI")
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("--uri: %q is not an http:// or https:// URI with a host", u.Redacted())
	}
	user, userSet := pick("user", envUser)
	password, passwordSet := pick("password", envPassword)
	if u.User != nil {
		if !userSet {
			user, userSet = u.User.Username(), true
		}
		if p, ok := u.User.Password(); ok && !passwordSet {
			password, passwordSet = p, true
		}
	}
	if !userSet {
		user = ctlDefaultUser
	}
	if !passwordSet {
		password = ctlDefaultPassword
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	if o.timeout <= 0 {
		return nil, errors.New("--timeout must be positive")
	}
	return &ctlClient{
		base:     strings.TrimSuffix(u.String(), "/"),
		host:     u.Host,
		user:     user,
		password: password,
		http:     &http.Client{Timeout: o.timeout},
		json:     o.json,
		stdout:   cmd.OutOrStdout(),
		stderr:   cmd.ErrOrStderr(),
		stdin:    cmd.InOrStdin(),
	}, nil
}

// ctlCommand builds a ctl subcommand whose run function gets a ready client. Whatever error it
// returns is printed as "Error: …" and the process exits with status 1.
func ctlCommand(o *ctlOptions, use, short string, args cobra.PositionalArgs,
	run func(ctx context.Context, c *ctlClient, args []string) error) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  args,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.newClient(cmd)
			if err == nil {
				err = run(cmd.Context(), c, args)
			}
			if err != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "Error: %s\n", err)
				return errReported
			}
			return nil
		},
	}
}

// apiError is an error response of the management API.
type apiError struct {
	Status int    // HTTP status code
	Line   string // status line, "404 Not Found"
	Reason string // the JSON body's reason (or error); empty when the body was not such JSON
	Body   string // the body, trimmed and truncated, when it was not such JSON
}

func (e *apiError) Error() string {
	if e.Reason != "" {
		return e.Reason
	}
	if e.Body != "" {
		return e.Line + ": " + e.Body
	}
	return e.Line
}

// transportError turns a failed HTTP exchange into a sentence that says what to check: the
// broker not running, a name that does not resolve, HTTP spoken to HTTPS or the reverse, an
// untrusted certificate, no answer in time. It names the host, never the URI's user information.
func (c *ctlClient) transportError(ctx context.Context, err error) error {
	if ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return err // interrupted: nothing to explain
	}
	var (
		ue      *url.Error
		op      *net.OpError
		dns     *net.DNSError
		rh      tls.RecordHeaderError
		unknown x509.UnknownAuthorityError
		badHost x509.HostnameError
		invalid x509.CertificateInvalidError
	)
	switch {
	case errors.As(err, &ue) && ue.Timeout(), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("the management API at %s did not answer in time (--timeout %s)", c.host, c.http.Timeout)
	case errors.As(err, &dns):
		return fmt.Errorf("cannot reach the management API at %s: the name %s does not resolve (%s)", c.host, dns.Name, dns.Err)
	case errors.As(err, &rh):
		return fmt.Errorf("the management API at %s does not speak TLS: use an http:// URI for [mgmt] port, https:// for [mgmt] tls_port", c.host)
	case errors.As(err, &unknown), errors.As(err, &badHost), errors.As(err, &invalid):
		return fmt.Errorf("the management API at %s presented a certificate ctl does not trust: %v", c.host, innermost(err))
	case errors.As(err, &op) && op.Op == "dial":
		return fmt.Errorf("cannot reach the management API at %s: is `turnstile serve` running? (%v)", c.host, innermost(err))
	case strings.HasPrefix(c.base, "https://") && strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return fmt.Errorf("the management API at %s answers plain HTTP: use an http:// URI (https:// is for [mgmt] tls_port)", c.host)
	}
	return fmt.Errorf("the request to the management API at %s failed: %v", c.host, innermost(err))
}

// innermost is the text of the deepest cause: "connection refused" rather than
// "Get \"http://…\": dial tcp 127.0.0.1:15672: connect: connection refused".
func innermost(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno.Error()
	}
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err.Error()
		}
		err = next
	}
}

// apiPath joins the path segments, each escaped with url.PathEscape (so the vhost "/" is "%2F"),
// under /api/.
func apiPath(segments ...string) string {
	var b strings.Builder
	b.WriteString("/api")
	for _, s := range segments {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(s))
	}
	return b.String()
}

// do sends one request. body is nil (no body), a []byte of JSON sent as is, or a value encoded
// as JSON. It returns the response body of a 2xx response and an *apiError for any other status.
func (c *ctlClient) do(ctx context.Context, method, path string, body any, header http.Header) ([]byte, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		enc, err := json.Marshal(b)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(enc)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "turnstile-ctl/"+Version)
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.user != "" || c.password != "" {
		req.SetBasicAuth(c.user, c.password)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, c.transportError(ctx, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, ctlMaxBody+1))
	if err != nil {
		return nil, fmt.Errorf("%s %s: reading the response: %w", method, c.base+path, err)
	}
	if len(data) > ctlMaxBody {
		return nil, fmt.Errorf("%s %s: response larger than %d MiB", method, c.base+path, ctlMaxBody>>20)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, newAPIError(resp, data)
	}
	return data, nil
}

func newAPIError(resp *http.Response, body []byte) *apiError {
	e := &apiError{Status: resp.StatusCode, Line: resp.Status}
	if e.Line == "" {
		e.Line = fmt.Sprintf("%d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	var j struct {
		Error  string `json:"error"`
		Reason string `json:"reason"`
	}
	if json.Unmarshal(body, &j) == nil && (j.Reason != "" || j.Error != "") {
		e.Reason = j.Reason
		if e.Reason == "" {
			e.Reason = j.Error
		}
		e.Reason = printable(e.Reason)
		return e
	}
	s := strings.TrimSpace(string(body))
	if len(s) > ctlMaxErrorBody {
		s = strings.ToValidUTF8(s[:ctlMaxErrorBody], "") + "…"
	}
	e.Body = printable(s)
	return e
}

// get fetches path and decodes its JSON into v, returning the raw body too.
func (c *ctlClient) get(ctx context.Context, path string, v any) ([]byte, error) {
	data, err := c.do(ctx, http.MethodGet, path, nil, nil)
	if err != nil {
		return nil, err
	}
	if v != nil {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		if err := dec.Decode(v); err != nil {
			return nil, fmt.Errorf("GET %s: the response is not the expected JSON: %w", path, err)
		}
	}
	return data, nil
}

// getList fetches a JSON array of objects.
func (c *ctlClient) getList(ctx context.Context, path string) ([]byte, []map[string]any, error) {
	var list []map[string]any
	data, err := c.get(ctx, path, &list)
	return data, list, err
}

// writeJSON prints JSON indented by two spaces; data that is not JSON is printed as it is.
func (c *ctlClient) writeJSON(data []byte) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, data, "", "  "); err != nil {
		buf.Reset()
		buf.Write(data)
	}
	if buf.Len() == 0 || buf.Bytes()[buf.Len()-1] != '\n' {
		buf.WriteByte('\n')
	}
	_, err := c.stdout.Write(buf.Bytes())
	return err
}

// done reports a change in text mode; with --json a command that changes something prints
// nothing (the API answers it with no body).
func (c *ctlClient) done(format string, args ...any) error {
	if c.json {
		return nil
	}
	_, err := fmt.Fprintf(c.stdout, format+"\n", args...)
	return err
}
