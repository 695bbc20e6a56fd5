package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/spf13/cobra"
)

// Revocations and AccessKeys: the credential lifecycle's commands.

func ctlCredentialCommands(o *ctlOptions) []*cobra.Command {
	return []*cobra.Command{ctlRevoke(o), ctlListRevocations(o), ctlDeleteRevocation(o),
		ctlAddAccessKey(o), ctlListAccessKeys(o), ctlDeleteAccessKey(o)}
}

func ctlRevoke(o *ctlOptions) *cobra.Command {
	var jti, sub, iss, kid string
	var until time.Duration
	cmd := ctlCommand(o, "revoke_credential (--jti ID | --sub SUBJECT [--iss ISSUER] | --kid KEY_ID) [--for DURATION]",
		"Revoke a JWT or token by id, every credential of a subject, or every credential signed with a key: matching connections get DISCONNECT 0x98 at once and their wills are suppressed",
		cobra.NoArgs, func(ctx context.Context, c *ctlClient, _ []string) error {
			body := map[string]any{}
			n := 0
			for k, v := range map[string]string{"jti": jti, "sub": sub, "kid": kid} {
				if v != "" {
					body[k] = v
					n++
				}
			}
			if n != 1 {
				return fmt.Errorf("give exactly one of --jti, --sub and --kid")
			}
			if iss != "" {
				body["iss"] = iss
			}
			if until > 0 {
				body["until"] = time.Now().Add(until).Unix()
			}
			data, err := c.do(ctx, http.MethodPost, "/api/oauth/revocations", body, nil)
			if err != nil {
				return err
			}
			if c.json {
				return c.writeJSON(data)
			}
			var r struct {
				ID, By, Value string
			}
			json.Unmarshal(data, &r)
			return c.done("revoked %s %q (revocation %s)", r.By, r.Value, r.ID)
		})
	cmd.Flags().StringVar(&jti, "jti", "", "the credential's `id` (JWT jti, token jti)")
	cmd.Flags().StringVar(&sub, "sub", "", "every credential of this `subject`")
	cmd.Flags().StringVar(&iss, "iss", "", "with --sub: the subject's `issuer`")
	cmd.Flags().StringVar(&kid, "kid", "", "every credential signed with this `key id` (a compromised key)")
	cmd.Flags().DurationVar(&until, "for", 0, "how long the revocation lasts (`duration`; default: the token's own expiry, or [oauth] max_token_lifetime)")
	return cmd
}

func ctlListRevocations(o *ctlOptions) *cobra.Command {
	return ctlCommand(o, "list_revocations", "List the revocations in force", cobra.NoArgs,
		func(ctx context.Context, c *ctlClient, _ []string) error {
			data, list, err := c.getList(ctx, "/api/oauth/revocations")
			if err != nil || c.json {
				return c.jsonOr(data, err)
			}
			return writeTable(c.stdout, []column{col("id"), col("by"), col("value"), col("iss"),
				{"until", func(m map[string]any) string { return millisText(m["until"]) }}}, list)
		})
}

func ctlDeleteRevocation(o *ctlOptions) *cobra.Command {
	return ctlCommand(o, "delete_revocation ID", "Lift a revocation (connections it closed stay closed)", cobra.ExactArgs(1),
		func(ctx context.Context, c *ctlClient, args []string) error {
			if _, err := c.do(ctx, http.MethodDelete, apiPath("oauth", "revocations", args[0]), nil, nil); err != nil {
				return err
			}
			return c.done("lifted revocation %s", args[0])
		})
}

func ctlAddAccessKey(o *ctlOptions) *cobra.Command {
	return ctlCommand(o, "add_access_key USER VHOST",
		"Create an AccessKey for the token service, owned by USER and bound to VHOST; the secret is printed once", cobra.ExactArgs(2),
		func(ctx context.Context, c *ctlClient, args []string) error {
			data, err := c.do(ctx, http.MethodPost, "/api/access-keys", map[string]string{"user": args[0], "vhost": args[1]}, nil)
			if err != nil {
				return err
			}
			if c.json {
				return c.writeJSON(data)
			}
			var k struct {
				ID     string `json:"access_key_id"`
				Secret string `json:"access_key_secret"`
			}
			json.Unmarshal(data, &k)
			_, err = fmt.Fprintf(c.stdout, "access_key_id     %s\naccess_key_secret %s\n(the secret is shown only now: keep it)\n", k.ID, k.Secret)
			return err
		})
}

func ctlListAccessKeys(o *ctlOptions) *cobra.Command {
	return ctlCommand(o, "list_access_keys", "List the AccessKeys (never their secrets)", cobra.NoArgs,
		func(ctx context.Context, c *ctlClient, _ []string) error {
			data, list, err := c.getList(ctx, "/api/access-keys")
			if err != nil || c.json {
				return c.jsonOr(data, err)
			}
			return writeTable(c.stdout, []column{col("access_key_id"), col("user"), col("vhost"), col("created")}, list)
		})
}

func ctlDeleteAccessKey(o *ctlOptions) *cobra.Command {
	return ctlCommand(o, "delete_access_key ID",
		"Delete an AccessKey: its tokens stop working and the connections using them get DISCONNECT 0x98", cobra.ExactArgs(1),
		func(ctx context.Context, c *ctlClient, args []string) error {
			if _, err := c.do(ctx, http.MethodDelete, apiPath("access-keys", args[0]), nil, nil); err != nil {
				return err
			}
			return c.done("deleted AccessKey %s", args[0])
		})
}

// millisText prints milliseconds since the epoch as a UTC time.
func millisText(v any) string {
	var ms int64
	switch n := v.(type) {
	case float64:
		ms = int64(n)
	case json.Number:
		ms, _ = n.Int64()
	}
	if ms <= 0 {
		return ""
	}
	return time.UnixMilli(ms).UTC().Format(time.RFC3339)
}
