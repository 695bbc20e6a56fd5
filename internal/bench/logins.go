package bench

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// maxCredentialLines bounds a credentials file.
const maxCredentialLines = 1 << 20

// logins gives each connection its user name and password: Config.Username and Password; with
// Config.Users, one of that many distinct users; with Config.Credentials, a line of the file.
type logins struct {
	users      int
	user, pass string
	list       [][2]string // from the credentials file
}

func newLogins(cfg *Config) (*logins, error) {
	l := &logins{users: cfg.Users, user: cfg.Username, pass: cfg.Password}
	if cfg.Users > 0 && !strings.Contains(l.user, "{i}") {
		l.user += "{i}" // --users 100 --username u: u0 … u99
	}
	if cfg.Credentials == "" {
		return l, nil
	}
	f, err := os.Open(cfg.Credentials)
	if err != nil {
		return nil, fmt.Errorf("credentials: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20) // a line holds a token: a few KiB at most
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), "\r")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		user, pw, ok := strings.Cut(line, "\t")
		if !ok {
			return nil, fmt.Errorf("credentials %s:%d: want user name, a tab, password", cfg.Credentials, n)
		}
		if len(l.list) == maxCredentialLines {
			return nil, fmt.Errorf("credentials %s: more than %d lines", cfg.Credentials, maxCredentialLines)
		}
		l.list = append(l.list, [2]string{user, pw})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("credentials %s: %w", cfg.Credentials, err)
	}
	if len(l.list) == 0 {
		return nil, fmt.Errorf("credentials %s: no line", cfg.Credentials)
	}
	return l, nil
}

// at returns the user name and password of connection i.
func (l *logins) at(i int) (user, pw string) {
	switch {
	case len(l.list) > 0:
		c := l.list[i%len(l.list)]
		return c[0], c[1]
	case l.users > 0:
		n := strconv.Itoa(i % l.users)
		return strings.ReplaceAll(l.user, "{i}", n), strings.ReplaceAll(l.pass, "{i}", n)
	}
	return l.user, l.pass
}
