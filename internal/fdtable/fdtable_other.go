//go:build !linux

package fdtable

// Grow does nothing here: the growth it avoids is Linux's (doc.go). It reports 0.
func Grow(int) int { return 0 }

// Size reports 0 here: it reads Linux's /proc/self/status.
func Size() int { return 0 }
