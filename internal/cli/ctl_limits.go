package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// ctlLimitCommands returns the ctl commands of limits and bans: rabbitmqctl's set_vhost_limits,
// clear_vhost_limits, list_vhost_limits, set_user_limits, clear_user_limits, list_user_limits,
// and ban, unban, list_bans over EMQX's banned list (docs/security.md).
func ctlLimitCommands(o *ctlOptions) []*cobra.Command {
	return []*cobra.Command{
		ctlSetVhostLimits(o), ctlClearVhostLimits(o), ctlListVhostLimits(o),
		ctlSetUserLimits(o), ctlClearUserLimits(o), ctlListUserLimits(o),
		ctlBan(o), ctlUnban(o), ctlListBans(o),
	}
}

// parseLimits reads a limits definition, '{"max-connections": 100, "max-sessions": -1}', as
// rabbitmqctl takes it.
func parseLimits(arg string) (map[string]int64, error) {
	dec := json.NewDecoder(strings.NewReader(arg))
	var raw map[string]json.Number
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil || dec.More() {
		return nil, fmt.Errorf(`the limits must be a JSON object such as '{"max-connections": 100}'`)
	}
	out := make(map[string]int64, len(raw))
	for name, v := range raw {
		n, err := v.Int64()
		if err != nil {
			return nil, fmt.Errorf("%s: %s is not an integer", name, v)
		}
		out[name] = n
	}
	return out, nil
}

// currentLimits reads the limits of one vhost or user from a list endpoint ([{"vhost"|"user",
// "value": {...}}]).
func (c *ctlClient) currentLimits(ctx context.Context, path string) (map[string]int64, error) {
	var list []struct {
		Value map[string]int64 `json:"value"`
	}
	data, err := c.do(ctx, http.MethodGet, path, nil, nil)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(data, &list); err != nil {
		return nil, fmt.Errorf("GET %s: the response is not the expected JSON: %w", path, err)
	}
	out := map[string]int64{}
	for _, e := range list {
		maps.Copy(out, e.Value)
	}
	return out, nil
}

// setLimits makes the limits of owner exactly want, as rabbitmqctl's set_*_limits does: each
// given limit is set, each other one cleared.
func (c *ctlClient) setLimits(ctx context.Context, kind, owner string, want map[string]int64) error {
	cur, err := c.currentLimits(ctx, apiPath(kind+"-limits", owner))
	if err != nil {
		return err
	}
	for _, name := range slices.Sorted(maps.Keys(want)) {
		if _, err := c.do(ctx, http.MethodPut, apiPath(kind+"-limits", owner, name), map[string]int64{"value": want[name]}, nil); err != nil {
			return err
		}
	}
	for _, name := range slices.Sorted(maps.Keys(cur)) {
		if _, keep := want[name]; !keep {
			if _, err := c.do(ctx, http.MethodDelete, apiPath(kind+"-limits", owner, name), nil, nil); err != nil {
				return err
			}
		}
	}
	return nil
}

func ctlSetVhostLimits(o *ctlOptions) *cobra.Command {
	var vhost *string
	cmd := ctlCommand(o, `set_vhost_limits [-p VHOST] '{"max-connections": N, "max-sessions": N, "max-retained": N}'`,
		"Set the limits of a vhost (a negative value is no limit); limits left out are cleared", cobra.ExactArgs(1),
		func(ctx context.Context, c *ctlClient, args []string) error {
			want, err := parseLimits(args[0])
			if err != nil {
				return err
			}
			if err := c.setLimits(ctx, "vhost", *vhost, want); err != nil {
				return err
			}
			return c.done("set the limits of vhost %q", *vhost)
		})
	vhost = vhostFlag(cmd)
	return cmd
}

func ctlClearVhostLimits(o *ctlOptions) *cobra.Command {
	var vhost *string
	cmd := ctlCommand(o, "clear_vhost_limits [-p VHOST]", "Clear every limit of a vhost (its defaults apply again)", cobra.NoArgs,
		func(ctx context.Context, c *ctlClient, _ []string) error {
			if err := c.setLimits(ctx, "vhost", *vhost, nil); err != nil {
				return err
			}
			return c.done("cleared the limits of vhost %q", *vhost)
		})
	vhost = vhostFlag(cmd)
	return cmd
}

// limitsColumn shows a limits object as "max-connections=100 max-sessions=-1".
var limitsColumn = column{"limits", func(m map[string]any) string {
	v, _ := m["value"].(map[string]any)
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(v)) {
		parts = append(parts, k+"="+text(v[k]))
	}
	return strings.Join(parts, " ")
}}

func ctlListVhostLimits(o *ctlOptions) *cobra.Command {
	var vhost *string
	var global bool
	cmd := ctlCommand(o, "list_vhost_limits [-p VHOST] [--global]", "List the limits of a vhost, or of every vhost", cobra.NoArgs,
		func(ctx context.Context, c *ctlClient, _ []string) error {
			path := apiPath("vhost-limits", *vhost)
			if global {
				path = apiPath("vhost-limits")
			}
			data, list, err := c.getList(ctx, path)
			if err != nil || c.json {
				return c.jsonOr(data, err)
			}
			return writeTable(c.stdout, []column{col("vhost"), limitsColumn}, list)
		})
	vhost = vhostFlag(cmd)
	cmd.Flags().BoolVar(&global, "global", false, "list the limits of every vhost")
	return cmd
}

func ctlSetUserLimits(o *ctlOptions) *cobra.Command {
	return ctlCommand(o, `set_user_limits USER '{"max-connections": N}'`,
		"Set the limits of a user (a negative value is no limit); limits left out are cleared", cobra.ExactArgs(2),
		func(ctx context.Context, c *ctlClient, args []string) error {
			want, err := parseLimits(args[1])
			if err != nil {
				return err
			}
			if err := c.setLimits(ctx, "user", args[0], want); err != nil {
				return err
			}
			return c.done("set the limits of user %q", args[0])
		})
}

func ctlClearUserLimits(o *ctlOptions) *cobra.Command {
	return ctlCommand(o, "clear_user_limits USER LIMIT|all", "Clear one limit of a user, or all of them", cobra.ExactArgs(2),
		func(ctx context.Context, c *ctlClient, args []string) error {
			user, name := args[0], args[1]
			if name == "all" {
				if err := c.setLimits(ctx, "user", user, nil); err != nil {
					return err
				}
				return c.done("cleared the limits of user %q", user)
			}
			if _, err := c.do(ctx, http.MethodDelete, apiPath("user-limits", user, name), nil, nil); err != nil {
				return err
			}
			return c.done("cleared the limit %s of user %q", name, user)
		})
}

func ctlListUserLimits(o *ctlOptions) *cobra.Command {
	return ctlCommand(o, "list_user_limits [USER]", "List the limits of a user, or of every user", cobra.MaximumNArgs(1),
		func(ctx context.Context, c *ctlClient, args []string) error {
			path := apiPath("user-limits")
			if len(args) == 1 {
				path = apiPath("user-limits", args[0])
			}
			data, list, err := c.getList(ctx, path)
			if err != nil || c.json {
				return c.jsonOr(data, err)
			}
			return writeTable(c.stdout, []column{col("user"), limitsColumn}, list)
		})
}

func ctlBan(o *ctlOptions) *cobra.Command {
	var reason, until string
	var duration time.Duration
	cmd := ctlCommand(o, "ban clientid|username|peerhost|peerhost_net WHO [--for DURATION | --until TIME] [--reason TEXT]",
		"Ban a client id, a user name, an address or a CIDR range; matching clients are disconnected (DISCONNECT 0x98)",
		cobra.ExactArgs(2), func(ctx context.Context, c *ctlClient, args []string) error {
			body := map[string]any{"as": args[0], "who": args[1]}
			if reason != "" {
				body["reason"] = reason
			}
			switch {
			case until != "" && duration != 0:
				return fmt.Errorf("--for and --until exclude each other")
			case until != "":
				body["until"] = until
			case duration < 0:
				return fmt.Errorf("--for must be positive")
			case duration > 0:
				body["until"] = time.Now().Add(duration).UTC().Format(time.RFC3339)
			}
			data, err := c.do(ctx, http.MethodPost, apiPath("bans"), body, nil)
			if err != nil {
				return err
			}
			if c.json {
				return c.writeJSON(data)
			}
			var b struct{ ID, As, Who, Until string }
			dec := json.NewDecoder(bytes.NewReader(data))
			if err := dec.Decode(&b); err != nil {
				return fmt.Errorf("POST /api/bans: the response is not the expected JSON: %w", err)
			}
			return c.done("banned %s %q until %s (ban %s)", b.As, b.Who, b.Until, b.ID)
		})
	cmd.Flags().StringVar(&reason, "reason", "", "why, kept with the ban")
	cmd.Flags().StringVar(&until, "until", "", "when the ban ends, RFC 3339 (2030-01-02T15:04:05Z)")
	cmd.Flags().DurationVar(&duration, "for", 0, "how long the ban lasts (default: a year)")
	return cmd
}

func ctlUnban(o *ctlOptions) *cobra.Command {
	return ctlCommand(o, "unban ID", "Lift a ban (list_bans shows the ids)", cobra.ExactArgs(1),
		func(ctx context.Context, c *ctlClient, args []string) error {
			if _, err := c.do(ctx, http.MethodDelete, apiPath("bans", args[0]), nil, nil); err != nil {
				return err
			}
			return c.done("lifted ban %s", args[0])
		})
}

func ctlListBans(o *ctlOptions) *cobra.Command {
	return ctlCommand(o, "list_bans", "List the bans in force", cobra.NoArgs,
		func(ctx context.Context, c *ctlClient, _ []string) error {
			data, list, err := c.getList(ctx, apiPath("bans"))
			if err != nil || c.json {
				return c.jsonOr(data, err)
			}
			return writeTable(c.stdout, []column{col("id"), col("as"), col("who"), col("until"), col("by"), col("reason")}, list)
		})
}
