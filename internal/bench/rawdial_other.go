//go:build !linux

package bench

import (
	"context"
	"time"
)

// rawConnect is written for Linux only (rawdial_linux.go): elsewhere the conn scenario dials with
// net.Dialer (dialAll).
func (d *dialer) rawConnect(context.Context, int, int, func(time.Duration), func(int, error)) ([]*conn, time.Time, bool) {
	return nil, time.Time{}, false
}
