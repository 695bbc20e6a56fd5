package definitions

import (
	"cmp"
	"encoding/json"
	"io"
	"maps"
	"slices"
)

// WriteJSON writes the definitions as indented JSON in a stable order: users and vhosts by
// name, permissions by vhost then user, topic permissions by vhost, user, then exchange. Tags
// are written as an array (as LavinMQ and RabbitMQ since 3.9 do; Parse accepts the older
// comma-separated string too); absent lists are written as [] rather than null. d is not
// modified.
func (d *Definitions) WriteJSON(w io.Writer) error {
	out := Definitions{
		Users:            slices.Clone(d.Users),
		Vhosts:           slices.Clone(d.Vhosts),
		Permissions:      slices.Clone(d.Permissions),
		TopicPermissions: slices.Clone(d.TopicPermissions),
	}
	for i := range out.Users {
		if out.Users[i].Tags == nil {
			out.Users[i].Tags = []string{}
		}
	}
	out.Users = nonNil(out.Users)
	out.Vhosts = nonNil(out.Vhosts)
	out.Permissions = nonNil(out.Permissions)
	out.TopicPermissions = nonNil(out.TopicPermissions)
	slices.SortStableFunc(out.Users, func(a, b User) int { return cmp.Compare(a.Name, b.Name) })
	slices.SortStableFunc(out.Vhosts, func(a, b Vhost) int { return cmp.Compare(a.Name, b.Name) })
	slices.SortStableFunc(out.Permissions, func(a, b Permission) int {
		return cmp.Or(cmp.Compare(a.Vhost, b.Vhost), cmp.Compare(a.User, b.User))
	})
	slices.SortStableFunc(out.TopicPermissions, func(a, b TopicPermission) int {
		return cmp.Or(cmp.Compare(a.Vhost, b.Vhost), cmp.Compare(a.User, b.User), cmp.Compare(a.Exchange, b.Exchange))
	})
	// Limits go into their entries, merged per name in the order they apply.
	vl, ul := mergeLimits(d.VhostLimits), mergeLimits(d.UserLimits)
	doc := struct {
		Users            []userOut         `json:"users"`
		Vhosts           []vhostOut        `json:"vhosts"`
		Permissions      []Permission      `json:"permissions"`
		TopicPermissions []TopicPermission `json:"topic_permissions"`
	}{Users: make([]userOut, len(out.Users)), Vhosts: make([]vhostOut, len(out.Vhosts)), Permissions: out.Permissions,
		TopicPermissions: out.TopicPermissions}
	for i, u := range out.Users {
		doc.Users[i] = userOut{u, ul[u.Name]}
	}
	for i, v := range out.Vhosts {
		doc.Vhosts[i] = vhostOut{v, vl[v.Name]}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // regexes stay readable: no \u0026 for '&'
	return enc.Encode(&doc)
}

// userOut and vhostOut are the written entries: the entry's keys and its "limits", when any.
type userOut struct {
	User
	Limits map[string]int64 `json:"limits,omitempty"`
}

type vhostOut struct {
	Vhost
	Limits map[string]int64 `json:"limits,omitempty"`
}

// mergeLimits merges the limits of each name: entries first, then parameters, each replacing
// what came before it (as an import applies them).
func mergeLimits(list []Limits) map[string]map[string]int64 {
	out := map[string]map[string]int64{}
	for _, param := range []bool{false, true} {
		for _, l := range list {
			if l.Parameter == param {
				out[l.Name] = maps.Clone(l.Values)
			}
		}
	}
	return out
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
