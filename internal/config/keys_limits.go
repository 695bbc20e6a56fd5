package config

import (
	"fmt"
	"strings"
)

// hostList checks [mgmt] allowed_hosts: comma-separated host names (no scheme, port or path),
// "*.example.com" for the subdomains of a name, or "*" alone for any host.
func hostList(v any) error {
	for h := range strings.SplitSeq(*v.(*string), ",") {
		h = strings.TrimSpace(h)
		switch {
		case h == "", h == "*":
		case strings.ContainsAny(h, "/@ \t") || strings.Count(h, ":") == 1:
			return fmt.Errorf("%q is not a host name (write it without a scheme, a port or a path)", h)
		case strings.Contains(strings.TrimPrefix(h, "*."), "*"):
			return fmt.Errorf("%q: a wildcard may only start a name (*.example.com)", h)
		}
	}
	return nil
}
