package definitions

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/turnstilemq/turnstile/internal/auth"
)

// knownTags are the user tags RabbitMQ and LavinMQ define.
var knownTags = []string{
	string(auth.TagAdministrator),
	string(auth.TagMonitoring),
	string(auth.TagManagement),
	string(auth.TagImpersonator),
	string(auth.TagPolicymaker),
}

// mqttExchange is the only exchange whose topic permissions Turnstile checks.
const mqttExchange = "mqtt.default"

// Validate reports every problem at once, joined (errors.Join), each a *FieldError naming the
// JSON path: an empty name; a duplicate user, vhost, permission (user, vhost) or topic
// permission (user, vhost, exchange); a permission or topic permission naming a user or vhost
// the document does not define; a regex that does not compile. Unknown tags are not errors
// (RabbitMQ accepts custom tags): see Warnings.
//
// Topic-permission regexes are compiled as written; their variables ({username}, {vhost},
// {client_id}) are literal text to the regexp syntax.
func (d *Definitions) Validate() error {
	var errs []error
	fail := func(path string, err error) { errs = append(errs, &FieldError{path, err}) }

	users := map[string]int{}
	for i, u := range d.Users {
		path := fmt.Sprintf("users[%d].name", i)
		if u.Name == "" {
			fail(path, ErrEmpty)
		} else if strings.ContainsAny(u.Name, "+#\x00") {
			fail(path, fmt.Errorf("%w: %q contains +, # or NUL, which would act as wildcards in topic permissions", ErrBadName, u.Name))
		} else if j, dup := users[u.Name]; dup {
			fail(path, fmt.Errorf("%w user %q (also users[%d])", ErrDuplicate, u.Name, j))
		} else {
			users[u.Name] = i
		}
	}
	vhosts := map[string]int{}
	for i, v := range d.Vhosts {
		path := fmt.Sprintf("vhosts[%d].name", i)
		if v.Name == "" {
			fail(path, ErrEmpty)
		} else if j, dup := vhosts[v.Name]; dup {
			fail(path, fmt.Errorf("%w vhost %q (also vhosts[%d])", ErrDuplicate, v.Name, j))
		} else {
			vhosts[v.Name] = i
		}
	}
	refs := func(path, user, vhost string) {
		switch {
		case user == "":
			fail(path+".user", ErrEmpty)
		case !has(users, user):
			fail(path+".user", fmt.Errorf("%w %q", ErrUnknownUser, user))
		}
		switch {
		case vhost == "":
			fail(path+".vhost", ErrEmpty)
		case !has(vhosts, vhost):
			fail(path+".vhost", fmt.Errorf("%w %q", ErrUnknownVhost, vhost))
		}
	}
	regex := func(path, src string) {
		if _, err := regexp.Compile(src); err != nil {
			fail(path, fmt.Errorf("%w: %v", ErrBadRegex, err))
		}
	}

	type pk struct{ user, vhost string }
	perms := map[pk]int{}
	for i, p := range d.Permissions {
		path := fmt.Sprintf("permissions[%d]", i)
		refs(path, p.User, p.Vhost)
		regex(path+".configure", p.Configure)
		regex(path+".write", p.Write)
		regex(path+".read", p.Read)
		k := pk{p.User, p.Vhost}
		if j, dup := perms[k]; dup {
			fail(path, fmt.Errorf("%w permission for user %q on vhost %q (also permissions[%d])", ErrDuplicate, p.User, p.Vhost, j))
		} else {
			perms[k] = i
		}
	}
	type tk struct{ user, vhost, exchange string }
	topics := map[tk]int{}
	for i, p := range d.TopicPermissions {
		path := fmt.Sprintf("topic_permissions[%d]", i)
		refs(path, p.User, p.Vhost)
		if p.Exchange == "" {
			fail(path+".exchange", ErrEmpty)
		}
		regex(path+".write", p.Write)
		regex(path+".read", p.Read)
		k := tk{p.User, p.Vhost, p.Exchange}
		if j, dup := topics[k]; dup {
			fail(path, fmt.Errorf("%w topic permission for user %q on vhost %q, exchange %q (also topic_permissions[%d])",
				ErrDuplicate, p.User, p.Vhost, p.Exchange, j))
		} else {
			topics[k] = i
		}
	}
	for _, l := range d.VhostLimits {
		path := cmp.Or(l.path, fmt.Sprintf("vhosts[%q].limits", l.Name))
		if !has(vhosts, l.Name) {
			fail(path, fmt.Errorf("%w %q", ErrUnknownVhost, l.Name))
		}
	}
	for _, l := range d.UserLimits {
		path := cmp.Or(l.path, fmt.Sprintf("users[%q].limits", l.Name))
		if !has(users, l.Name) {
			fail(path, fmt.Errorf("%w %q", ErrUnknownUser, l.Name))
		}
	}
	return errors.Join(errs...)
}

func has(m map[string]int, k string) bool { _, ok := m[k]; return ok }

// Warnings lists what imports but may not do what the author meant: a tag other than
// administrator, monitoring, management, impersonator and policymaker (kept, as RabbitMQ keeps
// custom tags), and a topic permission on an exchange other than "mqtt.default", which
// Turnstile keeps but never checks (RabbitMQ's MQTT plugin uses amq.topic, with routing keys
// written with '.' where MQTT has '/').
func (d *Definitions) Warnings() []string {
	var w []string
	for i, u := range d.Users {
		for j, t := range u.Tags {
			if !slices.Contains(knownTags, t) {
				w = append(w, fmt.Sprintf("users[%d].tags[%d]: unknown tag %q, kept (known: %s)", i, j, t, strings.Join(knownTags, ", ")))
			}
		}
	}
	for i, p := range d.TopicPermissions {
		if p.Exchange != "" && p.Exchange != mqttExchange {
			w = append(w, fmt.Sprintf("topic_permissions[%d].exchange: %q is kept but not checked; MQTT topics are checked on %q only",
				i, p.Exchange, mqttExchange))
		}
	}
	unknown := func(kind string, list []Limits, known []string) {
		for _, l := range list {
			for _, name := range slices.Sorted(maps.Keys(l.Values)) {
				if !slices.Contains(known, name) {
					w = append(w, fmt.Sprintf("%s.%s: %q is not a limit Turnstile enforces on a %s; ignored (known: %s)",
						cmp.Or(l.path, kind+" "+l.Name), name, name, kind, strings.Join(known, ", ")))
				}
			}
		}
	}
	unknown("vhost", d.VhostLimits, VhostLimitNames)
	unknown("user", d.UserLimits, UserLimitNames)
	return w
}
