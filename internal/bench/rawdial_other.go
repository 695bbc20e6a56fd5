//go:build !linux

package bench

import (
	"context"
	"time"
)

// rawDialing is false where rawDial is not written: connections go through net.Dialer.
func (d *dialer) rawDialing() bool { return false }

func (d *dialer) rawDial(context.Context, int, int, func(int, time.Duration), func(int, error)) []int {
	panic("bench: rawDial is Linux only")
}

func (d *dialer) adopt([]int, func(int, error)) []*conn { panic("bench: adopt is Linux only") }
