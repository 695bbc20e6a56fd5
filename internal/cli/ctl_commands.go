package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"
)

// ctlDefaultVhost is the vhost of -p/--vhost when it is not given, as in rabbitmqctl.
const ctlDefaultVhost = "/"

// ctlCommands returns the ctl subcommands, in rabbitmqctl's groups.
func ctlCommands(o *ctlOptions) []*cobra.Command {
	return append([]*cobra.Command{
		ctlAddUser(o), ctlDeleteUser(o), ctlChangePassword(o), ctlListUsers(o), ctlSetUserTags(o),
		ctlAddVhost(o), ctlDeleteVhost(o), ctlListVhosts(o),
		ctlSetPermissions(o), ctlClearPermissions(o), ctlListPermissions(o),
		ctlSetTopicPermissions(o), ctlClearTopicPermissions(o), ctlListTopicPermissions(o),
		ctlListConnections(o), ctlCloseConnection(o),
		ctlListSessions(o), ctlDeleteSession(o),
		ctlExportDefinitions(o), ctlImportDefinitions(o),
		ctlWaitReady(o),
	}, ctlCredentialCommands(o)...)
}

// vhostFlag adds -p/--vhost to cmd.
func vhostFlag(cmd *cobra.Command) *string {
	v := new(string)
	cmd.Flags().StringVarP(v, "vhost", "p", ctlDefaultVhost, "`vhost` name")
	return v
}

// Users.

func ctlAddUser(o *ctlOptions) *cobra.Command {
	var tags []string
	cmd := ctlCommand(o, "add_user NAME PASSWORD [--tags TAG,...]", "Add a user (it fails when the user exists)",
		cobra.ExactArgs(2), func(ctx context.Context, c *ctlClient, args []string) error {
			name, password := args[0], args[1]
			// PUT replaces an existing user, password and tags included; add_user must not.
			switch _, err := c.do(ctx, http.MethodGet, apiPath("users", name), nil, nil); {
			case err == nil:
				return fmt.Errorf("user %q already exists (change_password and set_user_tags change it)", name)
			case !isStatus(err, http.StatusNotFound):
				return err
			}
			body := map[string]string{"password": password, "tags": joinTags(tags)}
			if _, err := c.do(ctx, http.MethodPut, apiPath("users", name), body, nil); err != nil {
				return err
			}
			return c.done("added user %q", name)
		})
	cmd.Flags().StringSliceVar(&tags, "tags", nil, "comma-separated `tags` (administrator, monitoring, management)")
	return cmd
}

func ctlDeleteUser(o *ctlOptions) *cobra.Command {
	return ctlCommand(o, "delete_user NAME", "Delete a user with their permissions; their clients are disconnected",
		cobra.ExactArgs(1), func(ctx context.Context, c *ctlClient, args []string) error {
			if _, err := c.do(ctx, http.MethodDelete, apiPath("users", args[0]), nil, nil); err != nil {
				return err
			}
			return c.done("deleted user %q", args[0])
		})
}

// storedUser is the part of GET /api/users/{name} that a PUT must send back to keep it.
type storedUser struct {
	PasswordHash     *string `json:"password_hash"`
	HashingAlgorithm string  `json:"hashing_algorithm"`
	Tags             any     `json:"tags"`
}

func (c *ctlClient) getUser(ctx context.Context, name string) (*storedUser, error) {
	var u storedUser
	if _, err := c.get(ctx, apiPath("users", name), &u); err != nil {
		return nil, err
	}
	return &u, nil
}

func ctlChangePassword(o *ctlOptions) *cobra.Command {
	return ctlCommand(o, "change_password NAME PASSWORD", "Change a user's password, keeping their tags",
		cobra.ExactArgs(2), func(ctx context.Context, c *ctlClient, args []string) error {
			name := args[0]
			u, err := c.getUser(ctx, name)
			if err != nil {
				return err
			}
			body := map[string]string{"password": args[1], "tags": joinTags(tagList(u.Tags))}
			if _, err := c.do(ctx, http.MethodPut, apiPath("users", name), body, nil); err != nil {
				return err
			}
			return c.done("changed the password of user %q", name)
		})
}

func ctlSetUserTags(o *ctlOptions) *cobra.Command {
	return ctlCommand(o, "set_user_tags NAME [TAG...]", "Replace a user's tags (none clears them), keeping the password",
		cobra.MinimumNArgs(1), func(ctx context.Context, c *ctlClient, args []string) error {
			name, tags := args[0], args[1:]
			u, err := c.getUser(ctx, name)
			if err != nil {
				return err
			}
			if u.PasswordHash == nil {
				// A PUT without the hash would remove the password.
				return fmt.Errorf("the API did not return the password_hash of user %q, so its tags cannot be set without losing the password", name)
			}
			body := map[string]string{"password_hash": *u.PasswordHash, "hashing_algorithm": u.HashingAlgorithm,
				"tags": joinTags(tags)}
			if _, err := c.do(ctx, http.MethodPut, apiPath("users", name), body, nil); err != nil {
				return err
			}
			return c.done("set the tags of user %q to [%s]", name, strings.Join(splitTags(tags), ", "))
		})
}

func ctlListUsers(o *ctlOptions) *cobra.Command {
	return ctlCommand(o, "list_users", "List users and their tags", cobra.NoArgs,
		func(ctx context.Context, c *ctlClient, _ []string) error {
			data, users, err := c.getList(ctx, apiPath("users"))
			if err != nil || c.json {
				return c.jsonOr(data, err)
			}
			return writeTable(c.stdout, []column{
				col("user", "name"),
				{"tags", func(u map[string]any) string { return "[" + strings.Join(tagList(u["tags"]), ", ") + "]" }},
			}, users)
		})
}

// splitTags splits comma-separated arguments and drops empty tags.
func splitTags(tags []string) []string {
	var out []string
	for _, t := range tags {
		for s := range strings.SplitSeq(t, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
	}
	return out
}

// joinTags is the "tags" string of a PUT /api/users body.
func joinTags(tags []string) string { return strings.Join(splitTags(tags), ",") }

// Vhosts.

func ctlAddVhost(o *ctlOptions) *cobra.Command {
	return ctlCommand(o, "add_vhost NAME", "Add a vhost", cobra.ExactArgs(1),
		func(ctx context.Context, c *ctlClient, args []string) error {
			if _, err := c.do(ctx, http.MethodPut, apiPath("vhosts", args[0]), struct{}{}, nil); err != nil {
				return err
			}
			return c.done("added vhost %q", args[0])
		})
}

func ctlDeleteVhost(o *ctlOptions) *cobra.Command {
	return ctlCommand(o, "delete_vhost NAME",
		"Delete a vhost: its clients are disconnected and its sessions, retained messages and permissions removed",
		cobra.ExactArgs(1), func(ctx context.Context, c *ctlClient, args []string) error {
			if _, err := c.do(ctx, http.MethodDelete, apiPath("vhosts", args[0]), nil, nil); err != nil {
				return err
			}
			return c.done("deleted vhost %q", args[0])
		})
}

func ctlListVhosts(o *ctlOptions) *cobra.Command {
	return ctlCommand(o, "list_vhosts", "List vhosts", cobra.NoArgs,
		func(ctx context.Context, c *ctlClient, _ []string) error {
			data, vhosts, err := c.getList(ctx, apiPath("vhosts"))
			if err != nil || c.json {
				return c.jsonOr(data, err)
			}
			return writeTable(c.stdout, []column{col("name")}, vhosts)
		})
}

// Permissions.

func ctlSetPermissions(o *ctlOptions) *cobra.Command {
	var vhost *string
	cmd := ctlCommand(o, "set_permissions [-p VHOST] USER CONF WRITE READ",
		"Set a user's configure, write and read regexes on a vhost", cobra.ExactArgs(4),
		func(ctx context.Context, c *ctlClient, args []string) error {
			body := map[string]string{"configure": args[1], "write": args[2], "read": args[3]}
			if _, err := c.do(ctx, http.MethodPut, apiPath("permissions", *vhost, args[0]), body, nil); err != nil {
				return err
			}
			return c.done("set the permissions of user %q on vhost %q", args[0], *vhost)
		})
	vhost = vhostFlag(cmd)
	return cmd
}

func ctlClearPermissions(o *ctlOptions) *cobra.Command {
	var vhost *string
	cmd := ctlCommand(o, "clear_permissions [-p VHOST] USER", "Remove a user's permissions on a vhost",
		cobra.ExactArgs(1), func(ctx context.Context, c *ctlClient, args []string) error {
			if _, err := c.do(ctx, http.MethodDelete, apiPath("permissions", *vhost, args[0]), nil, nil); err != nil {
				return err
			}
			return c.done("cleared the permissions of user %q on vhost %q", args[0], *vhost)
		})
	vhost = vhostFlag(cmd)
	return cmd
}

func ctlListPermissions(o *ctlOptions) *cobra.Command {
	var vhost *string
	cmd := ctlCommand(o, "list_permissions [-p VHOST]", "List the users' permissions on a vhost", cobra.NoArgs,
		func(ctx context.Context, c *ctlClient, _ []string) error {
			return c.listForVhost(ctx, apiPath("permissions"), *vhost,
				[]column{col("user"), col("configure"), col("write"), col("read")})
		})
	vhost = vhostFlag(cmd)
	return cmd
}

// listForVhost prints the entries of a list whose "vhost" is vhost; with --json the API's
// objects of that vhost, unchanged.
func (c *ctlClient) listForVhost(ctx context.Context, path, vhost string, cols []column) error {
	var all []json.RawMessage
	if _, err := c.get(ctx, path, &all); err != nil {
		return err
	}
	raw := []json.RawMessage{}
	var rows []map[string]any
	for _, r := range all {
		var obj map[string]any
		dec := json.NewDecoder(bytes.NewReader(r))
		dec.UseNumber()
		if err := dec.Decode(&obj); err != nil {
			return fmt.Errorf("GET %s: the response is not the expected JSON: %w", path, err)
		}
		if text(obj["vhost"]) == vhost {
			raw, rows = append(raw, r), append(rows, obj)
		}
	}
	if c.json {
		data, err := json.Marshal(raw)
		if err != nil {
			return err
		}
		return c.writeJSON(data)
	}
	return writeTable(c.stdout, cols, rows)
}

func ctlSetTopicPermissions(o *ctlOptions) *cobra.Command {
	var vhost *string
	cmd := ctlCommand(o, "set_topic_permissions [-p VHOST] USER EXCHANGE WRITE READ",
		"Set a user's topic write and read regexes on an exchange of a vhost (MQTT topics: mqtt.default)",
		cobra.ExactArgs(4), func(ctx context.Context, c *ctlClient, args []string) error {
			body := map[string]string{"exchange": args[1], "write": args[2], "read": args[3]}
			if _, err := c.do(ctx, http.MethodPut, apiPath("topic-permissions", *vhost, args[0]), body, nil); err != nil {
				return err
			}
			return c.done("set the topic permissions of user %q on exchange %q of vhost %q", args[0], args[1], *vhost)
		})
	vhost = vhostFlag(cmd)
	return cmd
}

func ctlClearTopicPermissions(o *ctlOptions) *cobra.Command {
	var vhost *string
	cmd := ctlCommand(o, "clear_topic_permissions [-p VHOST] USER [EXCHANGE]",
		"Remove a user's topic permissions on a vhost, on every exchange or on one",
		cobra.RangeArgs(1, 2), func(ctx context.Context, c *ctlClient, args []string) error {
			user := args[0]
			path := apiPath("topic-permissions", *vhost, user)
			if len(args) == 1 {
				if _, err := c.do(ctx, http.MethodDelete, path, nil, nil); err != nil {
					return err
				}
				return c.done("cleared the topic permissions of user %q on vhost %q", user, *vhost)
			}
			return c.clearTopicPermission(ctx, path, user, *vhost, args[1])
		})
	vhost = vhostFlag(cmd)
	return cmd
}

// topicPermission is one entry of GET /api/topic-permissions/{vhost}/{user}.
type topicPermission struct {
	Exchange string `json:"exchange"`
	Write    string `json:"write"`
	Read     string `json:"read"`
}

// clearTopicPermission removes one exchange's entry. The API's DELETE removes every exchange's,
// so the others are read first and put back after it: two changes, not one.
func (c *ctlClient) clearTopicPermission(ctx context.Context, path, user, vhost, exchange string) error {
	data, err := c.do(ctx, http.MethodGet, path, nil, nil)
	if err != nil {
		return err
	}
	var list []topicPermission
	if err := json.Unmarshal(data, &list); err != nil {
		var one topicPermission // an API may answer with the single object
		if json.Unmarshal(data, &one) != nil {
			return fmt.Errorf("GET %s: the response is not the expected JSON: %w", path, err)
		}
		list = []topicPermission{one}
	}
	keep := slices.DeleteFunc(slices.Clone(list), func(p topicPermission) bool { return p.Exchange == exchange })
	if len(keep) == len(list) {
		return fmt.Errorf("user %q has no topic permissions on exchange %q of vhost %q", user, exchange, vhost)
	}
	if _, err := c.do(ctx, http.MethodDelete, path, nil, nil); err != nil {
		return err
	}
	for _, p := range keep {
		if _, err := c.do(ctx, http.MethodPut, path, p, nil); err != nil {
			return fmt.Errorf("restoring the topic permissions on exchange %q: %w", p.Exchange, err)
		}
	}
	return c.done("cleared the topic permissions of user %q on exchange %q of vhost %q", user, exchange, vhost)
}

func ctlListTopicPermissions(o *ctlOptions) *cobra.Command {
	var vhost *string
	cmd := ctlCommand(o, "list_topic_permissions [-p VHOST]", "List the users' topic permissions on a vhost",
		cobra.NoArgs, func(ctx context.Context, c *ctlClient, _ []string) error {
			return c.listForVhost(ctx, apiPath("topic-permissions"), *vhost,
				[]column{col("user"), col("exchange"), col("write"), col("read")})
		})
	vhost = vhostFlag(cmd)
	return cmd
}

// Connections and sessions.

func ctlListConnections(o *ctlOptions) *cobra.Command {
	return ctlCommand(o, "list_connections", "List the open MQTT connections of every vhost", cobra.NoArgs,
		func(ctx context.Context, c *ctlClient, _ []string) error {
			data, conns, err := c.getList(ctx, apiPath("connections"))
			if err != nil || c.json {
				return c.jsonOr(data, err)
			}
			return writeTable(c.stdout, []column{
				col("name"), col("vhost"), col("user"),
				{"client_id", func(m map[string]any) string {
					if v := field(m, "client_id"); v != nil {
						return text(v)
					}
					if props, ok := m["client_properties"].(map[string]any); ok { // RabbitMQ's place for it
						return text(field(props, "client_id"))
					}
					return ""
				}},
				col("protocol"),
				col("ssl", "ssl", "tls"),
				{"connected_at", func(m map[string]any) string { return timestamp(m["connected_at"]) }},
			}, conns)
		})
}

func ctlCloseConnection(o *ctlOptions) *cobra.Command {
	return ctlCommand(o, "close_connection NAME [REASON]",
		"Close a connection (MQTT 5 clients get DISCONNECT 0x98, administrative action)", cobra.RangeArgs(1, 2),
		func(ctx context.Context, c *ctlClient, args []string) error {
			var h http.Header
			if len(args) == 2 {
				h = http.Header{"X-Reason": {args[1]}}
			}
			if _, err := c.do(ctx, http.MethodDelete, apiPath("connections", args[0]), nil, h); err != nil {
				return err
			}
			return c.done("closed connection %q", args[0])
		})
}

func ctlListSessions(o *ctlOptions) *cobra.Command {
	var vhost *string
	cmd := ctlCommand(o, "list_sessions [-p VHOST]", "List the MQTT sessions of a vhost", cobra.NoArgs,
		func(ctx context.Context, c *ctlClient, _ []string) error {
			data, sessions, err := c.getList(ctx, apiPath("sessions", *vhost))
			if err != nil || c.json {
				return c.jsonOr(data, err)
			}
			return writeTable(c.stdout, []column{
				{"client_id", func(m map[string]any) string {
					if v := field(m, "client_id"); v != nil {
						return text(v)
					}
					return strings.TrimPrefix(text(m["name"]), "mqtt.")
				}},
				col("connected", "connected", "state"),
				col("durable"),
				{"subscriptions", func(m map[string]any) string { return count(field(m, "subscriptions")) }},
				col("messages", "messages", "queued", "queue_depth"),
				col("expiry_interval", "expiry_interval", "session_expiry_interval", "expiry"),
				{"will", func(m map[string]any) string {
					w, ok := m["will"].(map[string]any)
					if !ok {
						return ""
					}
					s := text(w["topic"]) + " qos=" + text(w["qos"])
					if w["pending"] == true {
						s += " pending, fires " + millisText(w["fires_at"])
					}
					return s
				}},
			}, sessions)
		})
	vhost = vhostFlag(cmd)
	return cmd
}

func ctlDeleteSession(o *ctlOptions) *cobra.Command {
	var vhost *string
	var noWill bool
	cmd := ctlCommand(o, "delete_session [-p VHOST] [--no-will] CLIENT_ID",
		"Remove a session; its client, if connected, gets DISCONNECT 0x98; its will is published unless --no-will", cobra.ExactArgs(1),
		func(ctx context.Context, c *ctlClient, args []string) error {
			path := apiPath("sessions", *vhost, args[0])
			if noWill {
				path += "?will=false"
			}
			if _, err := c.do(ctx, http.MethodDelete, path, nil, nil); err != nil {
				return err
			}
			return c.done("deleted the session of client %q on vhost %q", args[0], *vhost)
		})
	vhost = vhostFlag(cmd)
	cmd.Flags().BoolVar(&noWill, "no-will", false, "discard the session's will instead of publishing it")
	return cmd
}

// jsonOr finishes a list command: err if there is one, else the JSON printed.
func (c *ctlClient) jsonOr(data []byte, err error) error {
	if err != nil {
		return err
	}
	return c.writeJSON(data)
}

// Definitions.

func ctlExportDefinitions(o *ctlOptions) *cobra.Command {
	return ctlCommand(o, "export_definitions [FILE|-]",
		"Write the users (with password hashes), vhosts and permissions as a definitions file (- or none: stdout)",
		cobra.MaximumNArgs(1), func(ctx context.Context, c *ctlClient, args []string) error {
			data, err := c.do(ctx, http.MethodGet, apiPath("definitions"), nil, nil)
			if err != nil {
				return err
			}
			if !json.Valid(data) {
				return errors.New("GET /api/definitions: the response is not JSON")
			}
			if len(args) == 0 || args[0] == "-" {
				return c.writeJSON(data)
			}
			var buf bytes.Buffer
			_ = json.Indent(&buf, data, "", "  ")
			buf.WriteByte('\n')
			// The file holds password hashes: only its owner reads it.
			if err := os.WriteFile(args[0], buf.Bytes(), 0o600); err != nil {
				return err
			}
			return c.done("exported definitions to %s", args[0])
		})
}

func ctlImportDefinitions(o *ctlOptions) *cobra.Command {
	return ctlCommand(o, "import_definitions FILE|-",
		"Add or replace the users, vhosts and permissions of a definitions file (-: stdin)", cobra.ExactArgs(1),
		func(ctx context.Context, c *ctlClient, args []string) error {
			var (
				data []byte
				err  error
				name = args[0]
			)
			if name == "-" {
				name = "stdin"
				data, err = io.ReadAll(io.LimitReader(c.stdin, ctlMaxBody+1))
			} else {
				data, err = os.ReadFile(name)
			}
			if err != nil {
				return err
			}
			if len(data) > ctlMaxBody {
				return fmt.Errorf("%s: larger than %d MiB", name, ctlMaxBody>>20)
			}
			if !json.Valid(data) {
				return fmt.Errorf("%s: not valid JSON", name)
			}
			if _, err := c.do(ctx, http.MethodPost, apiPath("definitions"), data, nil); err != nil {
				return err
			}
			return c.done("imported definitions from %s", name)
		})
}

// isStatus reports whether err is an API error with the given status.
func isStatus(err error, status int) bool {
	var e *apiError
	return errors.As(err, &e) && e.Status == status
}
