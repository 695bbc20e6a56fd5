package definitions

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// DefaultImportAlgorithm is the hashing_algorithm of an imported user whose entry has none (or
// null, or ""): RabbitMQ's import default, from the days before the key existed.
const DefaultImportAlgorithm = "rabbit_password_hashing_md5"

// DefaultMaxSize is the size limit Parse applies when given none.
const DefaultMaxSize = 32 << 20

// Definitions is the part of a definitions file Turnstile uses.
type Definitions struct {
	Users            []User            `json:"users"`
	Vhosts           []Vhost           `json:"vhosts"`
	Permissions      []Permission      `json:"permissions"`
	TopicPermissions []TopicPermission `json:"topic_permissions"`
	// VhostLimits and UserLimits are the limits of vhosts and users, in RabbitMQ's shapes: the
	// "limits" object of a vhost or user entry ({"max-connections": 100}), and for vhosts also a
	// runtime parameter of component "vhost-limits" (how RabbitMQ imports them). WriteJSON writes
	// them in the entries' "limits". A negative value is no limit.
	VhostLimits []Limits `json:"-"`
	UserLimits  []Limits `json:"-"`
	// Ignored lists, sorted, the top-level keys Parse accepted and ignored: queues, exchanges,
	// bindings, policies, parameters (unless they hold vhost limits), global_parameters,
	// rabbit_version, ...
	Ignored []string `json:"-"`
}

// Limits are the limits of one vhost or user. They replace what the vhost or user had; a vhost's
// "vhost-limits" parameter is applied after its entry's own "limits".
type Limits struct {
	Name      string           // the vhost's or the user's
	Values    map[string]int64 // "max-connections": 100, ...
	Parameter bool             // from a "vhost-limits" runtime parameter (RabbitMQ's import path)
	path      string           // where Parse read it, for messages
}

// The limits Turnstile enforces (docs/security.md, "Limits"). Others (RabbitMQ's max-queues and
// max-channels) are accepted on import with a warning and ignored.
var (
	VhostLimitNames = []string{"max-connections", "max-sessions", "max-retained"}
	UserLimitNames  = []string{"max-connections"}
)

// User is a user entry. An empty PasswordHash is a user who cannot log in with a password.
type User struct {
	Name             string   `json:"name"`
	PasswordHash     string   `json:"password_hash"`
	HashingAlgorithm string   `json:"hashing_algorithm"`
	Tags             []string `json:"tags"`
	// ID is Turnstile's user ID (see auth.User.ID), kept in its own stored definitions and
	// exports so that a re-import keeps a user the same subject. Other brokers ignore the key;
	// an entry without one gets an ID on import (the existing one, for a known name).
	ID string `json:"turnstile_id,omitempty"`
}

// Vhost is a vhost entry.
type Vhost struct {
	Name string `json:"name"`
}

// Permission is a user's configure, write and read regexes on a vhost. It has the fields of
// acl.Permission, in the same order.
type Permission struct {
	User      string `json:"user"`
	Vhost     string `json:"vhost"`
	Configure string `json:"configure"`
	Write     string `json:"write"`
	Read      string `json:"read"`
}

// TopicPermission is a user's topic write and read regexes on an exchange of a vhost. It has
// the fields of acl.TopicPermission, in the same order.
type TopicPermission struct {
	User     string `json:"user"`
	Vhost    string `json:"vhost"`
	Exchange string `json:"exchange"`
	Write    string `json:"write"`
	Read     string `json:"read"`
}

// Errors, wrapped in a *FieldError that names the JSON path; test them with errors.Is.
var (
	ErrTooLarge     = errors.New("definitions: larger than the size limit")
	ErrSyntax       = errors.New("definitions: not valid JSON")
	ErrType         = errors.New("wrong JSON type")
	ErrMissing      = errors.New("missing")
	ErrEmpty        = errors.New("empty")
	ErrBadName      = errors.New("not a valid name")
	ErrDuplicate    = errors.New("duplicate")
	ErrUnknownUser  = errors.New("unknown user")
	ErrUnknownVhost = errors.New("unknown vhost")
	ErrBadRegex     = errors.New("bad regex")
)

// FieldError is a problem with one value of the document, named by its JSON path, such as
// "users[2].tags".
type FieldError struct {
	Path string
	Err  error
}

func (e *FieldError) Error() string { return e.Path + ": " + e.Err.Error() }
func (e *FieldError) Unwrap() error { return e.Err }

// Parse reads a definitions document of at most limit bytes (DefaultMaxSize when limit <= 0).
// The known keys must have the types RabbitMQ writes; every type error is reported at once,
// each naming its JSON path. Unknown keys inside an entry (a user's "limits", a vhost's
// "metadata") are ignored, as are unknown top-level keys, which are listed in Ignored.
//
//   - tags: a comma-separated string ("administrator,monitoring"), an array of strings, or null;
//   - hashing_algorithm: missing, null or "" becomes DefaultImportAlgorithm;
//   - password_hash: null or missing is "", a user who cannot log in with a password.
//
// Parse checks shapes only; call Validate for names, references and regexes.
func Parse(r io.Reader, limit int64) (*Definitions, error) {
	if limit <= 0 {
		limit = DefaultMaxSize
	}
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("definitions: read: %w", err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%w (%d bytes)", ErrTooLarge, limit)
	}
	if err := syntaxCheck(data); err != nil {
		return nil, err
	}
	if k := kindOf(data); k != "object" {
		return nil, fmt.Errorf("definitions: %w: want an object at the top level, got %s", ErrType, k)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSyntax, err)
	}
	p := &parser{}
	d := &Definitions{}
	for key, raw := range top {
		switch key {
		case "users":
			p.array(key, raw, func(path string, o obj) {
				u := User{Name: p.str(o, path, "name", true), ID: p.optStr(o, path, "turnstile_id")}
				u.PasswordHash = p.optStr(o, path, "password_hash")
				u.HashingAlgorithm = p.optStr(o, path, "hashing_algorithm")
				if u.HashingAlgorithm == "" {
					u.HashingAlgorithm = DefaultImportAlgorithm
				}
				u.Tags = p.tags(o, path)
				d.Users = append(d.Users, u)
				if l, ok := p.limits(o["limits"], path+".limits"); ok {
					d.UserLimits = append(d.UserLimits, Limits{Name: u.Name, Values: l, path: path + ".limits"})
				}
			})
		case "vhosts":
			p.array(key, raw, func(path string, o obj) {
				v := Vhost{Name: p.str(o, path, "name", true)}
				d.Vhosts = append(d.Vhosts, v)
				if l, ok := p.limits(o["limits"], path+".limits"); ok {
					d.VhostLimits = append(d.VhostLimits, Limits{Name: v.Name, Values: l, path: path + ".limits"})
				}
			})
		case "parameters":
			used := false
			p.array(key, raw, func(path string, o obj) {
				if comp := p.optStr(o, path, "component"); comp != "vhost-limits" {
					return
				}
				used = true
				vhost := p.str(o, path, "vhost", true)
				if l, ok := p.limits(o["value"], path+".value"); ok {
					d.VhostLimits = append(d.VhostLimits, Limits{Name: vhost, Values: l, Parameter: true, path: path + ".value"})
				}
			})
			if !used {
				d.Ignored = append(d.Ignored, key)
			}
		case "permissions":
			p.array(key, raw, func(path string, o obj) {
				d.Permissions = append(d.Permissions, Permission{
					User:      p.str(o, path, "user", true),
					Vhost:     p.str(o, path, "vhost", true),
					Configure: p.str(o, path, "configure", true),
					Write:     p.str(o, path, "write", true),
					Read:      p.str(o, path, "read", true),
				})
			})
		case "topic_permissions":
			p.array(key, raw, func(path string, o obj) {
				d.TopicPermissions = append(d.TopicPermissions, TopicPermission{
					User:     p.str(o, path, "user", true),
					Vhost:    p.str(o, path, "vhost", true),
					Exchange: p.str(o, path, "exchange", true),
					Write:    p.str(o, path, "write", true),
					Read:     p.str(o, path, "read", true),
				})
			})
		default:
			d.Ignored = append(d.Ignored, key)
		}
	}
	slices.Sort(d.Ignored)
	if err := p.err(); err != nil {
		return nil, err
	}
	return d, nil
}

// syntaxCheck reports a JSON syntax error with its line and column.
func syntaxCheck(data []byte) error {
	if json.Valid(data) {
		return nil
	}
	var v any
	err := json.Unmarshal(data, &v)
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line, col := lineCol(data, se.Offset)
		return fmt.Errorf("%w: line %d, column %d: %v", ErrSyntax, line, col, se)
	}
	return fmt.Errorf("%w: %v", ErrSyntax, err)
}

// lineCol turns a byte offset into a 1-based line and column.
func lineCol(data []byte, off int64) (line, col int) {
	off = min(max(off, 0), int64(len(data)))
	before := data[:off]
	line = bytes.Count(before, []byte{'\n'}) + 1
	col = int(off) - (bytes.LastIndexByte(before, '\n') + 1)
	if col == 0 {
		col = 1
	}
	return line, col
}

// obj is a decoded JSON object.
type obj map[string]json.RawMessage

// parser collects every shape error of a document.
type parser struct{ errs []error }

func (p *parser) fail(path string, err error) { p.errs = append(p.errs, &FieldError{path, err}) }

func (p *parser) err() error {
	slices.SortStableFunc(p.errs, func(a, b error) int {
		return strings.Compare(a.(*FieldError).Path, b.(*FieldError).Path)
	})
	return errors.Join(p.errs...)
}

func (p *parser) typeErr(path, want string, raw json.RawMessage) {
	p.fail(path, fmt.Errorf("%w: want %s, got %s", ErrType, want, kindOf(raw)))
}

// array decodes an array of objects (null is an empty array) and calls each with its path.
func (p *parser) array(key string, raw json.RawMessage, each func(path string, o obj)) {
	switch kindOf(raw) {
	case "null":
		return
	case "array":
	default:
		p.typeErr(key, "an array", raw)
		return
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(raw, &elems); err != nil {
		p.fail(key, err)
		return
	}
	for i, e := range elems {
		path := fmt.Sprintf("%s[%d]", key, i)
		if kindOf(e) != "object" {
			p.typeErr(path, "an object", e)
			continue
		}
		var o obj
		if err := json.Unmarshal(e, &o); err != nil {
			p.fail(path, err)
			continue
		}
		each(path, o)
	}
}

// str returns the string at o[key]; required says whether a missing key is an error.
func (p *parser) str(o obj, path, key string, required bool) string {
	raw, ok := o[key]
	if !ok {
		if required {
			p.fail(path+"."+key, ErrMissing)
		}
		return ""
	}
	if kindOf(raw) != "string" {
		p.typeErr(path+"."+key, "a string", raw)
		return ""
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		p.fail(path+"."+key, err)
	}
	return s
}

// optStr returns the string at o[key], "" when missing or null.
func (p *parser) optStr(o obj, path, key string) string {
	if raw, ok := o[key]; ok && kindOf(raw) == "null" {
		return ""
	}
	return p.str(o, path, key, false)
}

// tags returns a user's tags: a comma-separated string, an array of strings, or null/missing.
func (p *parser) tags(o obj, path string) []string {
	raw, ok := o["tags"]
	if !ok {
		return nil
	}
	path += ".tags"
	switch kindOf(raw) {
	case "null":
		return nil
	case "string":
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			p.fail(path, err)
			return nil
		}
		var tags []string
		for t := range strings.SplitSeq(s, ",") {
			if t = strings.TrimSpace(t); t != "" {
				tags = append(tags, t)
			}
		}
		return tags
	case "array":
		var elems []json.RawMessage
		if err := json.Unmarshal(raw, &elems); err != nil {
			p.fail(path, err)
			return nil
		}
		tags := make([]string, 0, len(elems))
		for i, e := range elems {
			var s string
			if kindOf(e) != "string" {
				p.typeErr(fmt.Sprintf("%s[%d]", path, i), "a string", e)
				continue
			}
			if err := json.Unmarshal(e, &s); err != nil {
				p.fail(fmt.Sprintf("%s[%d]", path, i), err)
				continue
			}
			tags = append(tags, s)
		}
		return tags
	}
	p.typeErr(path, "a string or an array of strings", raw)
	return nil
}

// limits decodes a "limits" value: an object of integers ({"max-connections": 100}), an array of
// such objects (merged), or [] (none); ok is false when the key is missing or null.
func (p *parser) limits(raw json.RawMessage, path string) (map[string]int64, bool) {
	if raw == nil {
		return nil, false
	}
	out := map[string]int64{}
	switch kindOf(raw) {
	case "null":
		return nil, false
	case "object":
		p.limitObject(raw, path, out)
	case "array":
		var elems []json.RawMessage
		if err := json.Unmarshal(raw, &elems); err != nil {
			p.fail(path, err)
			return nil, false
		}
		for i, e := range elems {
			if kindOf(e) != "object" {
				p.typeErr(fmt.Sprintf("%s[%d]", path, i), "an object of limits", e)
				continue
			}
			p.limitObject(e, fmt.Sprintf("%s[%d]", path, i), out)
		}
	default:
		p.typeErr(path, "an object of limits", raw)
		return nil, false
	}
	return out, true
}

func (p *parser) limitObject(raw json.RawMessage, path string, out map[string]int64) {
	var o map[string]json.RawMessage
	if err := json.Unmarshal(raw, &o); err != nil {
		p.fail(path, err)
		return
	}
	for name, v := range o {
		var n int64
		if kindOf(v) != "number" || json.Unmarshal(v, &n) != nil {
			p.typeErr(path+"."+name, "an integer", v)
			continue
		}
		out[name] = n
	}
}

// kindOf names the JSON type of a valid JSON value.
func kindOf(raw []byte) string {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 'n':
		return "null"
	case 't', 'f':
		return "boolean"
	}
	return "number"
}
