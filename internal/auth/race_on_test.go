//go:build race

package auth

// raceEnabled: sync.Pool drops a share of what it is given, so allocation counts mean nothing.
const raceEnabled = true
