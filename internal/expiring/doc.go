// Package expiring owns the mechanism shared by the lists of entries that end at a time (bans,
// credential revocations): a set of entries indexed by id, published as an immutable snapshot
// behind an atomic pointer (copy on write under a mutex), so that a lookup on the hot path is one
// atomic load and allocates nothing; its persistence in store.Records, one JSON record per entry
// under the owner's namespace (written on Add, deleted on Delete and on expiry, loaded by New);
// its bound; and the prune timer, armed on an injectable clock for the earliest end.
//
// It knows nothing of what an entry means. The owner supplies the entry type, its secondary
// indexes (an [Index] carried in each [Snapshot]), the matching that reads them, validation and
// the exported API.
package expiring
