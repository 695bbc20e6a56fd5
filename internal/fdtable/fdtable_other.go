//go:build !linux

package fdtable

// Grow does nothing here: the growth it avoids is Linux's (doc.go). It reports 0.
func Grow(int) int { return 0 }
