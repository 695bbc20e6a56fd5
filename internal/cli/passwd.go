package cli

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/turnstilemq/turnstile/internal/auth"
)

// passwdMaxLine bounds the line read from stdin; bcrypt uses at most 72 bytes of it anyway.
const passwdMaxLine = 4096

func newPasswdCmd() *cobra.Command {
	var jsonOut bool
	cmd := &cobra.Command{
		Use:     "passwd [PASSWORD]",
		Aliases: []string{"hash_password"},
		Short:   "Print a bcrypt hash of a password for a definitions file",
		Long: `passwd hashes PASSWORD with bcrypt at the default cost and prints the hash, to be put in the
password_hash of a user in a definitions file, with "hashing_algorithm": "` + auth.AlgBcrypt + `".

Without PASSWORD it reads one line from stdin (prompting when stdin is a terminal; the line is
echoed there). Prefer stdin: command line arguments are visible to other local users and stay in
the shell's history.`,
		Example: `  turnstile passwd
  printf '%s\n' "$PASSWORD" | turnstile passwd --json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var pw string
			if len(args) == 1 {
				pw = args[0]
			} else {
				in := cmd.InOrStdin()
				if isTerminal(in) {
					fmt.Fprint(cmd.ErrOrStderr(), "Password: ")
				}
				var err error
				if pw, err = readLine(in); err != nil {
					return err
				}
			}
			if pw == "" {
				return errors.New("empty password")
			}
			alg, hash, err := auth.Hasher{}.Hash([]byte(pw))
			if err != nil {
				return err
			}
			if jsonOut {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(struct {
					PasswordHash     string `json:"password_hash"`
					HashingAlgorithm string `json:"hashing_algorithm"`
				}{hash, alg})
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), hash)
			return err
		},
	}
	cmd.Flags().BoolVar(&jsonOut, "json", false, `print {"password_hash": …, "hashing_algorithm": "`+auth.AlgBcrypt+`"}`)
	return cmd
}

// readLine reads one line, without its line ending.
func readLine(r io.Reader) (string, error) {
	line, err := bufio.NewReader(io.LimitReader(r, passwdMaxLine+3)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("reading the password: %w", err)
	}
	line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	if len(line) > passwdMaxLine {
		return "", fmt.Errorf("reading the password: line longer than %d bytes", passwdMaxLine)
	}
	return line, nil
}

// isTerminal reports whether r is a character device, such as a terminal.
func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
