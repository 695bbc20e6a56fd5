package oauth

import (
	"encoding/json"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/turnstilemq/turnstile/internal/acl"
	"github.com/turnstilemq/turnstile/internal/auth"
)

// The scope grammar is RabbitMQ's (rabbit_oauth2_scope) as LavinMQ reads it
// (lavinmq-mqtt.md §4), after the prefix is stripped:
//
//	tag:<name>                                          a user tag (known tags only)
//	<configure|write|read>:<vhost>/<resource>[/<routing key>]
//
// Each part is URL-decoded (%2F is "/"; "+" stays "+"), after the split at "/". Each is a glob
// whose only wildcard is "*" (any run of characters, "/" included); the resource and routing-key
// globs become anchored regexes, "*" alone becoming ".*". A scope with another shape is ignored,
// as RabbitMQ and LavinMQ ignore it.

// knownTags are the tags a "tag:" scope may set (LavinMQ's Tag.parse?).
var knownTags = []auth.Tag{auth.TagAdministrator, auth.TagMonitoring, auth.TagManagement, auth.TagPolicymaker, auth.TagImpersonator}

// grant is one permission scope, decoded.
type grant struct {
	kind     string // "configure", "write" or "read"
	vhost    string // glob
	resource string // glob
	rk       string // routing-key glob (feeds topic permissions)
	hasRK    bool
}

// collectScopes gathers the scopes of a token: resource_access.<resource_server_id>.roles
// (Keycloak), scope (a space-separated string, or an array), and each of
// AdditionalScopesKeys (a string, an array, or an object keyed by resource_server_id, every key
// when that is unset). Values of other types are ignored.
func (p *Provider) collectScopes(raw map[string]json.RawMessage) []string {
	var out []string
	if id := p.o.ResourceServerID; id != "" {
		var ra map[string]struct {
			Roles json.RawMessage `json:"roles"`
		}
		if v, ok := raw["resource_access"]; ok && json.Unmarshal(v, &ra) == nil {
			out = appendScopes(out, ra[id].Roles, "", false, 0)
		}
	}
	out = appendScopes(out, raw["scope"], "", false, 0)
	for _, k := range p.o.AdditionalScopesKeys {
		out = appendScopes(out, raw[k], p.o.ResourceServerID, true, 0)
	}
	return out
}

// appendScopes appends the scopes of one claim value: a string splits at white space, an array
// contributes each element, an object (only in an additional scopes claim, where server is
// meaningful: objects is set) the values under server, or under every key when server is "".
func appendScopes(out []string, v json.RawMessage, server string, objects bool, depth int) []string {
	if len(v) == 0 || depth > 3 {
		return out
	}
	var s string
	if json.Unmarshal(v, &s) == nil {
		return append(out, strings.Fields(s)...)
	}
	var arr []json.RawMessage
	if json.Unmarshal(v, &arr) == nil {
		for _, e := range arr {
			out = appendScopes(out, e, server, objects, depth+1)
		}
		return out
	}
	var obj map[string]json.RawMessage
	if objects && depth == 0 && json.Unmarshal(v, &obj) == nil {
		keys := slices.Sorted(func(yield func(string) bool) {
			for k := range obj {
				if !yield(k) {
					return
				}
			}
		})
		for _, k := range keys {
			if server == "" || k == server {
				out = appendScopes(out, obj[k], server, false, depth+1)
			}
		}
	}
	return out
}

// prefix returns the scope prefix in force: ScopePrefix when set, else "<resource_server_id>."
// when that is set, else none.
func (p *Provider) prefix() string {
	if p.o.ScopePrefix != nil {
		return *p.o.ScopePrefix
	}
	if p.o.ResourceServerID != "" {
		return p.o.ResourceServerID + "."
	}
	return ""
}

// mapScopes returns the tags and permission grants of a token's scopes.
func (p *Provider) mapScopes(raw map[string]json.RawMessage) ([]auth.Tag, []grant) {
	return parseScopes(p.collectScopes(raw), p.prefix())
}

// parseScopes keeps the scopes that start with prefix, strips it, and parses each.
func parseScopes(scopes []string, prefix string) ([]auth.Tag, []grant) {
	var tags []auth.Tag
	var grants []grant
	for _, s := range scopes {
		rest, ok := strings.CutPrefix(s, prefix)
		if !ok {
			continue
		}
		kind, spec, ok := strings.Cut(rest, ":")
		if !ok {
			continue
		}
		switch kind {
		case "tag":
			if t := auth.Tag(spec); slices.Contains(knownTags, t) && !slices.Contains(tags, t) {
				tags = append(tags, t)
			}
		case "configure", "write", "read":
			if g, ok := parseGrant(kind, spec); ok {
				grants = append(grants, g)
			}
		}
	}
	return tags, grants
}

// parseGrant parses "<vhost>/<resource>[/<routing key>]", each part URL-decoded.
func parseGrant(kind, spec string) (grant, bool) {
	parts := strings.Split(spec, "/")
	if len(parts) != 2 && len(parts) != 3 {
		return grant{}, false
	}
	for i, s := range parts {
		d, err := url.PathUnescape(s)
		if err != nil || d == "" {
			return grant{}, false
		}
		parts[i] = d
	}
	g := grant{kind: kind, vhost: parts[0], resource: parts[1]}
	if len(parts) == 3 {
		g.rk, g.hasRK = parts[2], true
	}
	return g, true
}

// scopedFor builds the permissions the grants give on vhost: those whose vhost glob matches
// it. nil when none does (no access to the vhost).
//
// Configure, Write and Read OR the resource globs of their kind; a kind without a grant is
// "^$". TopicWrite and TopicRead OR the routing-key globs of the write and read grants whose
// resource glob matches "mqtt.default" (topic permissions apply to that exchange): a matching
// grant without a routing key leaves the topic unrestricted (""), as RabbitMQ reads a scope
// without one as ".*"; no matching grant leaves it unrestricted too, the Write or Read regex
// deciding alone.
func scopedFor(grants []grant, vhost string) *auth.ScopedPermissions {
	var res, topics [3][]string // by kind: configure, write, read
	var open [3]bool            // a grant on mqtt.default without a routing key
	matched := false
	for _, g := range grants {
		if !globMatch(g.vhost, vhost) {
			continue
		}
		matched = true
		k := kindIndex(g.kind)
		res[k] = append(res[k], g.resource)
		if k == 0 || !globMatch(g.resource, acl.DefaultExchange) {
			continue
		}
		if g.hasRK {
			topics[k] = append(topics[k], g.rk)
		} else {
			open[k] = true
		}
	}
	if !matched {
		return nil
	}
	sp := &auth.ScopedPermissions{
		Configure: globsRegex(res[0]),
		Write:     globsRegex(res[1]),
		Read:      globsRegex(res[2]),
	}
	if !open[1] && len(topics[1]) > 0 {
		sp.TopicWrite = globsRegex(topics[1])
	}
	if !open[2] && len(topics[2]) > 0 {
		sp.TopicRead = globsRegex(topics[2])
	}
	return sp
}

func kindIndex(kind string) int {
	switch kind {
	case "configure":
		return 0
	case "write":
		return 1
	}
	return 2
}

// globsRegex ORs globs into one anchored regex: "^$" for none, ".*" when one is "*" alone,
// else ^(?:g1|g2…)$ with each glob's "*" as ".*" and every other character literal.
func globsRegex(globs []string) string {
	if len(globs) == 0 {
		return "^$"
	}
	alts := make([]string, 0, len(globs))
	for _, g := range globs {
		if g == "*" {
			return ".*"
		}
		r := globRegex(g)
		if !slices.Contains(alts, r) {
			alts = append(alts, r)
		}
	}
	if len(alts) == 1 {
		return "^" + alts[0] + "$"
	}
	return "^(?:" + strings.Join(alts, "|") + ")$"
}

// globRegex is the unanchored regex of a glob: "*" is ".*", the rest quoted.
func globRegex(g string) string {
	parts := strings.Split(g, "*")
	for i, s := range parts {
		parts[i] = regexp.QuoteMeta(s)
	}
	return strings.Join(parts, ".*")
}

// globMatch reports whether s matches the glob g, whose only wildcard is "*" (any run).
func globMatch(g, s string) bool {
	// Iterative matching with one backtrack point: linear in practice, no recursion.
	gi, si := 0, 0
	star, mark := -1, 0
	for si < len(s) {
		switch {
		case gi < len(g) && g[gi] == '*':
			star, mark = gi, si
			gi++
		case gi < len(g) && g[gi] == s[si]:
			gi++
			si++
		case star >= 0:
			gi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for gi < len(g) && g[gi] == '*' {
		gi++
	}
	return gi == len(g)
}
