package mgmt

import (
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
)

// hostCheck is the DNS-rebinding defence: a page of another site that a browser is tricked into
// sending to this API (its name re-pointed at the operator's machine, or at the broker) carries
// that site's name in Host, and is refused. Which Host values pass (docs/security.md):
//
//   - bound to one address: that address, localhost, 127.0.0.1 and ::1;
//   - bound to every address (0.0.0.0, ::): any IP address (a browser sends an IP literal only
//     for a page it loaded from that very address), localhost, and this machine's host name;
//   - either way, the names of [mgmt] allowed_hosts: a name, "*.example.com" for its
//     subdomains, or "*" for any Host at all (no protection: behind a proxy that checks it).
type hostCheck struct {
	any      bool     // "*" in allowed_hosts
	wildcard bool     // bound to every address
	names    []string // exact names, lower case
	suffixes []string // ".example.com" for "*.example.com"
}

func newHostCheck(bind string, allowed []string) hostCheck {
	var hc hostCheck
	switch bind = strings.ToLower(strings.Trim(bind, "[]")); bind {
	case "", "0.0.0.0", "::":
		hc.wildcard = true
		hc.names = []string{"localhost"}
		if hn, err := os.Hostname(); err == nil && hn != "" {
			hn = strings.ToLower(strings.TrimSuffix(hn, "."))
			hc.names = append(hc.names, hn)
			if short, _, ok := strings.Cut(hn, "."); ok {
				hc.names = append(hc.names, short)
			}
		}
	default:
		hc.names = []string{bind, "localhost", "127.0.0.1", "::1"}
	}
	for _, a := range allowed {
		a = strings.ToLower(strings.TrimSuffix(strings.Trim(strings.TrimSpace(a), "[]"), "."))
		switch {
		case a == "":
		case a == "*":
			hc.any = true
		case strings.HasPrefix(a, "*."):
			hc.suffixes = append(hc.suffixes, a[1:])
		default:
			hc.names = append(hc.names, a)
		}
	}
	return hc
}

// allowed reports whether a request's Host header (host, host:port, [v6]:port) passes.
func (hc hostCheck) allowed(host string) bool {
	if hc.any {
		return true
	}
	if hn, _, err := net.SplitHostPort(host); err == nil {
		host = hn
	}
	host = strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")
	if host == "" {
		return false
	}
	if slices.Contains(hc.names, host) {
		return true
	}
	for _, s := range hc.suffixes {
		if strings.HasSuffix(host, s) && len(host) > len(s) {
			return true
		}
	}
	if hc.wildcard {
		if _, err := netip.ParseAddr(host); err == nil {
			return true
		}
	}
	return false
}
