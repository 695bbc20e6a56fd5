//go:build race

package acl

// raceEnabled: the race detector makes sync.Pool drop items at random, so a regexp match may
// allocate its machine again; allocation counts are checked without it.
const raceEnabled = true
