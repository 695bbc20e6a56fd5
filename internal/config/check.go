package config

import (
	"cmp"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/turnstilemq/turnstile/internal/auth"
	"github.com/turnstilemq/turnstile/internal/definitions"
)

// maxUnixPath is the longest unix socket path Linux accepts: sun_path is 108 bytes with the NUL.
const maxUnixPath = 107

// maxBcryptPassword is the longest password bcrypt hashes (the default user's hash is bcrypt).
const maxBcryptPassword = 72

// Check runs every check a configuration must pass before anything starts: the range checks of
// Validate, then what needs more than one key or a look at the file system:
//   - tls_cert and tls_key set together, loadable as a pair; tls_ca_cert readable PEM;
//   - tls_verify_peer and tls_cert_login only with tls_ca_cert;
//   - a TLS port set in the file only with tls_cert (it would silently not be served);
//   - definitions_file readable, a valid definitions document, every password hash importable;
//   - default_password no longer than bcrypt hashes (72 bytes);
//   - data_dir not an existing non-directory, and a default data directory found (see
//     DefaultDataDir) when the file sets none;
//   - log_file and unix_path in an existing directory, unix_path short enough and not an
//     existing non-socket;
//   - no two enabled listeners on one address: every listener of Listeners(), compared by port
//     and by overlapping bind address (0.0.0.0 overlaps every IPv4 address, :: every address).
//
// Check only reads: it creates, opens for writing and binds nothing. serve and validate-config
// both run it after Load, so they accept and reject the same files. The error joins one *Error
// per problem, in file order, each naming the section and key, the file the configuration came
// from, and the line when the key was set there. Check never quotes a password.
func Check(c *Config) error {
	errs := c.validate()
	add := func(section, key, format string, args ...any) {
		errs = append(errs, c.errAt(section, key, fmt.Sprintf(format, args...)))
	}
	m, mq := &c.Main, &c.MQTT
	c.checkCredentials(add)

	// TLS.
	switch {
	case m.TLSCert != "" && m.TLSKey == "":
		add("main", "tls_cert", "set without tls_key: a certificate needs its private key")
	case m.TLSCert == "" && m.TLSKey != "":
		add("main", "tls_key", "set without tls_cert: a private key needs its certificate")
	case m.TLSCert != "":
		if _, err := tls.LoadX509KeyPair(m.TLSCert, m.TLSKey); err != nil {
			add("main", "tls_cert", "cannot load the certificate %s with the key %s: %v", m.TLSCert, m.TLSKey, err)
		}
	}
	if m.TLSCACert != "" {
		if pem, err := os.ReadFile(m.TLSCACert); err != nil {
			add("main", "tls_ca_cert", "%v", err)
		} else if !x509.NewCertPool().AppendCertsFromPEM(pem) {
			add("main", "tls_ca_cert", "no PEM certificate found in %s", m.TLSCACert)
		}
	} else {
		if mq.TLSVerifyPeer {
			add("mqtt", "tls_verify_peer", "needs [main] tls_ca_cert to verify client certificates")
		}
		if mq.TLSCertLogin {
			add("mqtt", "tls_cert_login", "needs [main] tls_ca_cert to verify client certificates")
		}
	}
	if m.TLSCert == "" {
		for _, k := range []struct {
			section, key string
			port         int
		}{{"mqtt", "tls_port", mq.TLSPort}, {"mqtt", "wss_port", mq.WSSPort}, {"mgmt", "tls_port", c.Mgmt.TLSPort}} {
			if k.port > 0 && c.lines[lineKey(k.section, k.key)] > 0 {
				add(k.section, k.key, "needs [main] tls_cert and tls_key: without a certificate this listener is not served")
			}
		}
	}

	// Files read at start.
	if f := m.DefinitionsFile; f != "" {
		for _, err := range checkDefinitions(f) {
			add("main", "definitions_file", "%v", err)
		}
	}
	if m.DefaultUser != "" && len(m.DefaultPassword) > maxBcryptPassword {
		add("main", "default_password", "longer than %d bytes, the most a bcrypt hash covers", maxBcryptPassword)
	}

	// Paths the broker creates.
	switch {
	case m.DataDir == "" && c.lines[lineKey("main", "data_dir")] == 0 && c.dataDirErr != nil:
		add("main", "data_dir", "%v", c.dataDirErr)
	case m.DataDir != "":
		if fi, err := os.Stat(m.DataDir); err == nil && !fi.IsDir() {
			add("main", "data_dir", "%s exists and is not a directory", m.DataDir)
		}
	}
	for _, f := range []struct{ key, path string }{{"log_file", m.LogFile}, {"audit_log", m.AuditLog}} {
		if f.path == "" {
			continue
		}
		if err := checkParentDir(f.path); err != nil {
			add("main", f.key, "%v", err)
		} else if fi, err := os.Stat(f.path); err == nil && fi.IsDir() {
			add("main", f.key, "%s is a directory", f.path)
		}
	}
	if m.AuditLog != "" && m.AuditLog == m.LogFile {
		add("main", "audit_log", "is the log_file: give the audit log a file of its own")
	}
	if p := mq.UnixPath; p != "" && !strings.HasPrefix(p, "@") {
		if len(p) > maxUnixPath {
			add("mqtt", "unix_path", "%d bytes long; a unix socket path may have at most %d", len(p), maxUnixPath)
		} else if err := checkParentDir(p); err != nil {
			add("mqtt", "unix_path", "%v", err)
		} else if fi, err := os.Lstat(p); err == nil && fi.Mode().Type() != fs.ModeSocket {
			add("mqtt", "unix_path", "%s exists and is not a socket", p)
		}
	}

	errs = append(errs, c.checkAddresses()...)
	slices.SortStableFunc(errs, func(a, b *Error) int { return cmp.Compare(sortLine(a.Line), sortLine(b.Line)) })
	return joinErrors(errs)
}

// errAt is an *Error about a key, naming the file the configuration came from and the line when
// the key was set there.
func (c *Config) errAt(section, key, msg string) *Error {
	return &Error{File: c.Source, Line: c.lines[lineKey(section, key)], Section: section, Key: key, Msg: msg}
}

// checkAddresses reports every enabled TCP listener whose address overlaps an earlier one's.
func (c *Config) checkAddresses() []*Error {
	var tcp []Listener
	for _, l := range c.Listeners() {
		if l.Network == "tcp" {
			tcp = append(tcp, l)
		}
	}
	// Blame the listener whose key comes later in the file, so that the error points at the line
	// most likely just added.
	line := func(l Listener) int { return c.lines[lineKey(l.Section, l.Key)] }
	var errs []*Error
	for i, a := range tcp {
		for _, b := range tcp[i+1:] {
			if !addrsOverlap(a.Addr, b.Addr) {
				continue
			}
			first, second := a, b
			if line(a) > line(b) {
				first, second = b, a
			}
			where := ""
			if n := line(first); n > 0 {
				where = fmt.Sprintf(" (line %d)", n)
			}
			errs = append(errs, c.errAt(second.Section, second.Key, fmt.Sprintf(
				"%s collides with %s of %s%s: every listener needs its own port or address",
				second.Addr, first.Addr, first.KeyName(), where)))
		}
	}
	return errs
}

// addrsOverlap reports whether binding both host:port addresses would fail with "address already
// in use": the same port, and addresses that are equal or where one is a wildcard covering the
// other (0.0.0.0 covers IPv4; :: covers IPv4 and IPv6, as Go listens dual-stack on it).
func addrsOverlap(a, b string) bool {
	ha, pa, _ := net.SplitHostPort(a)
	hb, pb, _ := net.SplitHostPort(b)
	if pa != pb {
		return false
	}
	ia, oka := bindIP(ha)
	ib, okb := bindIP(hb)
	if !oka || !okb {
		return ha == hb
	}
	switch {
	case ia == ib:
		return true
	case ia == netip.IPv6Unspecified() || ib == netip.IPv6Unspecified():
		return true
	case ia == netip.IPv4Unspecified():
		return ib.Is4()
	case ib == netip.IPv4Unspecified():
		return ia.Is4()
	}
	return false
}

// bindIP is the address a bind value listens on; "localhost" is 127.0.0.1, as Go listens on the
// first address it resolves to, IPv4 first.
func bindIP(host string) (netip.Addr, bool) {
	if host == "localhost" {
		return netip.AddrFrom4([4]byte{127, 0, 0, 1}), true
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, false
	}
	return ip.Unmap(), true
}

// checkParentDir reports a path whose directory does not exist or is not a directory.
func checkParentDir(path string) error {
	dir := filepath.Dir(path)
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("the directory %s does not exist", dir)
	case err != nil:
		return err
	case !fi.IsDir():
		return fmt.Errorf("%s is not a directory", dir)
	}
	return nil
}

// checkDefinitions reads a definitions file as the broker imports it at start: parsed,
// validated, and every password hash importable. It returns one error per problem.
func checkDefinitions(path string) []error {
	f, err := os.Open(path)
	if err != nil {
		return []error{err}
	}
	defer f.Close()
	d, err := definitions.Parse(f, 0)
	if err == nil {
		err = d.Validate()
	}
	if err != nil {
		var out []error
		for _, e := range flatten(err) {
			out = append(out, fmt.Errorf("%s: %w", path, e))
		}
		return out
	}
	var out []error
	for i, u := range d.Users {
		if _, err := auth.ImportHash(importAlgorithm(u.HashingAlgorithm, u.PasswordHash), u.PasswordHash, definitions.DefaultImportAlgorithm); err != nil {
			out = append(out, fmt.Errorf("%s: users[%d] (%s): %w", path, i, u.Name, err))
		}
	}
	return out
}

// importAlgorithm is the algorithm to hand auth.ImportHash for a user of a definitions document:
// the document's, except that when the document named none (definitions.Parse filled in
// RabbitMQ's MD5 default) a hash starting with "$" is bcrypt or argon2id, never base64, and
// ImportHash recognises it by its shape. It is the rule of the broker's applyDefinitions.
func importAlgorithm(alg, hash string) string {
	if alg == definitions.DefaultImportAlgorithm && strings.HasPrefix(hash, "$") {
		return ""
	}
	return alg
}

// Problems splits an error of Load, Parse, Validate or Check (errors.Join trees) into its
// leaves, one per problem, in order.
func Problems(err error) []error { return flatten(err) }

// flatten splits errors.Join trees into their leaves.
func flatten(err error) []error {
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range joined.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}
