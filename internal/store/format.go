package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// Store format versions. The format is the key layout and the record versions together; it is
// stored under the key 'v' (a uvarint) and checked at every Open.
//
//   - 1: the layout before the format key existed: a session record (version 1) carries its
//     subscriptions. Such a store has no 'v' key.
//   - 2: subscriptions are records of their own ('u' keys); session records are version 2 (no
//     subscriptions; the identity snapshot, the will's identity and EarnedAt).
//
// Open writes the current format into a new store, upgrades an older one in place (format 1 →
// 2: every version 1 session record is rewritten as a version 2 record plus one record per
// subscription, in batches; the format key is written last, so an interrupted upgrade is done
// again at the next Open, skipping the records already converted) and refuses a store written
// by a newer format.
const (
	formatLegacy  = 1
	formatCurrent = 2
)

var formatKey = []byte{kindFormat}

// upgradeBatchBytes bounds one batch of an upgrade.
const upgradeBatchBytes = 16 << 20

// checkFormat runs at Open, before the committer starts, on pebble directly.
func (s *DB) checkFormat() error {
	found, err := s.readFormat()
	if err != nil {
		return err
	}
	switch {
	case found == formatCurrent:
		return nil
	case found > formatCurrent:
		return fmt.Errorf("store: data directory %s holds store format %d, written by a newer version of Turnstile; this version reads formats up to %d: run the newer version, or move the directory aside to start empty",
			s.dir, found, formatCurrent)
	case found == 0:
		return s.writeFormat(nil) // a new store
	}
	return s.upgrade(found)
}

// readFormat returns the stored format, formatLegacy for a store that has records but no
// format key, and 0 for an empty store.
func (s *DB) readFormat() (uint64, error) {
	v, closer, err := s.pdb.Get(formatKey)
	if errors.Is(err, pebble.ErrNotFound) {
		it, err := s.pdb.NewIter(nil)
		if err != nil {
			return 0, fmt.Errorf("store: %w", err)
		}
		empty := !it.First()
		if err := errors.Join(it.Error(), it.Close()); err != nil {
			return 0, fmt.Errorf("store: %w", err)
		}
		if empty {
			return 0, nil
		}
		return formatLegacy, nil
	}
	if err != nil {
		return 0, fmt.Errorf("store: reading the store format: %w", err)
	}
	defer closer.Close()
	f, n := binary.Uvarint(v)
	if n <= 0 || n != len(v) || f == 0 {
		return 0, fmt.Errorf("store: data directory %s: the store format key holds %x, not a format version", s.dir, v)
	}
	return f, nil
}

// writeFormat writes the current format, with b (or alone), synced.
func (s *DB) writeFormat(b *pebble.Batch) error {
	if b == nil {
		b = s.pdb.NewBatch()
	}
	defer b.Close()
	_ = b.Set(formatKey, binary.AppendUvarint(nil, formatCurrent), nil)
	if err := s.apply(b, pebble.Sync); err != nil {
		return fmt.Errorf("store: data directory %s: writing the store format: %w", s.dir, err)
	}
	return nil
}

// upgrade converts a store of format from to the current format.
func (s *DB) upgrade(from uint64) error {
	start := time.Now()
	sessions, subs := 0, 0
	b := s.pdb.NewBatch()
	lo, hi := kindBounds(kindSession)
	it, err := s.pdb.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		b.Close()
		return fmt.Errorf("store: upgrade: %w", err)
	}
	for ok := it.First(); ok && err == nil; ok = it.Next() {
		var v []byte
		if v, err = it.ValueAndErr(); err != nil || len(v) == 0 || v[0] != 1 {
			continue // already version 2 (an interrupted upgrade), or unreadable: found below
		}
		vhost, clientID, _, kerr := parseClientKey(it.Key())
		r := &SessionRecord{Vhost: vhost, ClientID: clientID}
		if err = errors.Join(kerr, decodeSession(v, r)); err != nil {
			err = fmt.Errorf("%w (vhost %q, client id %q)", err, vhost, clientID)
			break
		}
		_ = b.Set(it.Key(), appendSession(nil, r), nil)
		for i := range r.Subscriptions {
			sr := &r.Subscriptions[i]
			_ = b.Set(subscriptionKey(vhost, clientID, sr.Group, sr.Filter), appendSubscription(nil, sr), nil)
		}
		sessions++
		subs += len(r.Subscriptions)
		if b.Len() >= upgradeBatchBytes {
			if err = s.apply(b, pebble.NoSync); err == nil {
				b.Close()
				b = s.pdb.NewBatch()
			}
		}
	}
	if err == nil {
		err = it.Error()
	}
	err = errors.Join(err, it.Close())
	if err != nil {
		b.Close()
		return fmt.Errorf("store: data directory %s: upgrading the store from format %d: %w", s.dir, from, err)
	}
	if err := s.writeFormat(b); err != nil {
		return err
	}
	s.log.Info("store format upgraded", "dir", s.dir, "from", from, "to", formatCurrent,
		"sessions", sessions, "subscriptions", subs, "took", time.Since(start).Round(time.Millisecond))
	return nil
}
