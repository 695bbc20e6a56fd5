package store

import (
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// Mutations encode their record before taking the lock; the batch copies key and value.

// PutSession inserts or replaces a session with its subscriptions and will.
func (s *DB) PutSession(r *SessionRecord) Ticket {
	k := sessionKey(r.Vhost, r.ClientID)
	v := appendSession(make([]byte, 0, sessionSize(r)), r)
	return s.mutate("PutSession", func(b *pebble.Batch) { _ = b.Set(k, v, nil) })
}

// DeleteSession removes a session, its queue entries and its inbound packet ids, in one batch.
// The messages its entries referred to stay (they may be shared); DeleteMessage or
// DeleteUnreferencedMessages removes them.
func (s *DB) DeleteSession(vhost, clientID string) Ticket {
	k := sessionKey(vhost, clientID)
	q := clientPrefix(kindQueue, vhost, clientID, 0)
	in := clientPrefix(kindInbound, vhost, clientID, 0)
	qEnd, inEnd := prefixEnd(q), prefixEnd(in)
	return s.mutate("DeleteSession", func(b *pebble.Batch) {
		_ = b.Delete(k, nil)
		_ = b.DeleteRange(q, qEnd, nil)
		_ = b.DeleteRange(in, inEnd, nil)
	})
}

// LoadSessions calls fn for every session, ordered by vhost then client id (length first).
func (s *DB) LoadSessions(fn func(*SessionRecord) error) error {
	lo, hi := kindBounds(kindSession)
	return s.scan(lo, hi, func(k, v []byte) error {
		vhost, clientID, rest, err := parseClientKey(k)
		if err == nil && len(rest) != 0 {
			err = &DecodeError{Record: "key", Field: "clientID", Err: errTrailing}
		}
		if err != nil {
			return err
		}
		r := &SessionRecord{Vhost: vhost, ClientID: clientID}
		if err := decodeSession(v, r); err != nil {
			return fmt.Errorf("%w (vhost %q, client id %q)", err, vhost, clientID)
		}
		return fn(r)
	})
}

// PutQueueEntry inserts or replaces a queue entry by Seq.
func (s *DB) PutQueueEntry(vhost, clientID string, e *QueueEntry) Ticket {
	k := queueKey(vhost, clientID, e.Seq)
	v := appendQueueEntry(make([]byte, 0, 24+5*len(e.SubIDs)), e)
	return s.mutate("PutQueueEntry", func(b *pebble.Batch) { _ = b.Set(k, v, nil) })
}

// DeleteQueueEntry removes one queue entry.
func (s *DB) DeleteQueueEntry(vhost, clientID string, seq uint64) Ticket {
	k := queueKey(vhost, clientID, seq)
	return s.mutate("DeleteQueueEntry", func(b *pebble.Batch) { _ = b.Delete(k, nil) })
}

// LoadQueue calls fn for entries with Seq > afterSeq, in Seq order, at most limit of them
// (limit <= 0: all).
func (s *DB) LoadQueue(vhost, clientID string, afterSeq uint64, limit int, fn func(*QueueEntry) error) error {
	return s.loadQueue(true, vhost, clientID, afterSeq, limit, fn)
}

// LoadQueueCommitted is LoadQueue without waiting for writes still pending: it sees every write
// whose ticket is durable, and maybe later ones. A caller that knows the entries it needs are
// durable (Durable(t) of their last write) reads them without waiting for a group commit in
// progress, which under FsyncAlways is an fsync.
func (s *DB) LoadQueueCommitted(vhost, clientID string, afterSeq uint64, limit int, fn func(*QueueEntry) error) error {
	return s.loadQueue(false, vhost, clientID, afterSeq, limit, fn)
}

func (s *DB) loadQueue(wait bool, vhost, clientID string, afterSeq uint64, limit int, fn func(*QueueEntry) error) error {
	if afterSeq == ^uint64(0) {
		return nil
	}
	p := clientPrefix(kindQueue, vhost, clientID, 0)
	lo, hi := queueKey(vhost, clientID, afterSeq+1), prefixEnd(p)
	n := 0
	err := s.scanWait(wait, lo, hi, func(k, v []byte) error {
		_, _, seq, err := parseQueueKey(k)
		if err != nil {
			return err
		}
		e := &QueueEntry{Seq: seq}
		if err := decodeQueueEntry(v, e); err != nil {
			return fmt.Errorf("%w (vhost %q, client id %q, seq %d)", err, vhost, clientID, seq)
		}
		if err := fn(e); err != nil {
			return err
		}
		if n++; limit > 0 && n >= limit {
			return errStop
		}
		return nil
	})
	if errors.Is(err, errStop) {
		return nil
	}
	return err
}

// PutInbound records an inbound QoS 2 packet id awaiting PUBREL.
func (s *DB) PutInbound(vhost, clientID string, pid uint16) Ticket {
	k := inboundKey(vhost, clientID, pid)
	return s.mutate("PutInbound", func(b *pebble.Batch) { _ = b.Set(k, inboundValue, nil) })
}

// DeleteInbound removes an inbound QoS 2 packet id.
func (s *DB) DeleteInbound(vhost, clientID string, pid uint16) Ticket {
	k := inboundKey(vhost, clientID, pid)
	return s.mutate("DeleteInbound", func(b *pebble.Batch) { _ = b.Delete(k, nil) })
}

// LoadInbound returns a session's inbound QoS 2 packet ids, in increasing order.
func (s *DB) LoadInbound(vhost, clientID string) ([]uint16, error) {
	p := clientPrefix(kindInbound, vhost, clientID, 0)
	var pids []uint16
	err := s.scan(p, prefixEnd(p), func(k, v []byte) error {
		pid, err := parseInboundKey(k)
		if err == nil {
			err = decodeInbound(v)
		}
		if err != nil {
			return fmt.Errorf("%w (vhost %q, client id %q)", err, vhost, clientID)
		}
		pids = append(pids, pid)
		return nil
	})
	return pids, err
}

// PutMessage stores a message under id.
func (s *DB) PutMessage(id uint64, m *MessageRecord) Ticket {
	k := messageKey(id)
	v := appendMessage(make([]byte, 0, messageSize(m)), m)
	return s.mutate("PutMessage", func(b *pebble.Batch) { _ = b.Set(k, v, nil) })
}

// DeleteMessage removes a message.
func (s *DB) DeleteMessage(id uint64) Ticket {
	k := messageKey(id)
	return s.mutate("DeleteMessage", func(b *pebble.Batch) { _ = b.Delete(k, nil) })
}

// LoadMessage returns the message stored under id, or ErrNotFound.
func (s *DB) LoadMessage(id uint64) (*MessageRecord, error) { return s.loadMessage(true, id) }

// LoadMessageCommitted is LoadMessage without waiting for writes still pending (see
// LoadQueueCommitted).
func (s *DB) LoadMessageCommitted(id uint64) (*MessageRecord, error) { return s.loadMessage(false, id) }

func (s *DB) loadMessage(wait bool, id uint64) (*MessageRecord, error) {
	if err := s.beginReadWait(wait); err != nil {
		return nil, err
	}
	defer s.endRead()
	v, closer, err := s.pdb.Get(messageKey(id))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	defer closer.Close()
	m := &MessageRecord{}
	if err := decodeMessage(v, m); err != nil {
		return nil, fmt.Errorf("%w (message id %d)", err, id)
	}
	return m, nil
}

// MaxMessageID returns the highest stored message id, 0 if none.
func (s *DB) MaxMessageID() (uint64, error) {
	if err := s.beginRead(); err != nil {
		return 0, err
	}
	defer s.endRead()
	lo, hi := kindBounds(kindMessage)
	it, err := s.pdb.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return 0, fmt.Errorf("store: %w", err)
	}
	var id uint64
	if it.Last() {
		id, err = parseMessageKey(it.Key())
	}
	return id, errors.Join(err, it.Close())
}

// DeleteUnreferencedMessages removes the messages no queue entry refers to and returns how
// many. It is meant for recovery, before the broker writes: a message stored by a concurrent
// writer whose queue entry is not yet written would be removed too. The deletes are synced
// before it returns.
func (s *DB) DeleteUnreferencedMessages() (int, error) {
	refs := make(map[uint64]struct{})
	lo, hi := kindBounds(kindQueue)
	err := s.scan(lo, hi, func(k, v []byte) error {
		e := QueueEntry{}
		if err := decodeQueueEntry(v, &e); err != nil {
			return err
		}
		refs[e.MsgID] = struct{}{}
		return nil
	})
	if err != nil {
		return 0, err
	}
	var ids []uint64
	lo, hi = kindBounds(kindMessage)
	err = s.scan(lo, hi, func(k, _ []byte) error {
		id, err := parseMessageKey(k)
		if err != nil {
			return err
		}
		if _, ok := refs[id]; !ok {
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil || len(ids) == 0 {
		return 0, err
	}
	for _, id := range ids {
		s.DeleteMessage(id)
	}
	if err := s.Sync(); err != nil {
		return 0, err
	}
	s.log.Info("deleted unreferenced messages", "count", len(ids), "referenced", len(refs))
	return len(ids), nil
}

// PutRetained stores a retained message under vhost and m.Topic.
func (s *DB) PutRetained(vhost string, m *MessageRecord) Ticket {
	k := retainedKey(vhost, m.Topic)
	v := appendMessage(make([]byte, 0, messageSize(m)), m)
	return s.mutate("PutRetained", func(b *pebble.Batch) { _ = b.Set(k, v, nil) })
}

// DeleteRetained removes the retained message of a topic.
func (s *DB) DeleteRetained(vhost, topic string) Ticket {
	k := retainedKey(vhost, topic)
	return s.mutate("DeleteRetained", func(b *pebble.Batch) { _ = b.Delete(k, nil) })
}

// LoadRetained calls fn for every retained message, ordered by vhost then topic.
func (s *DB) LoadRetained(fn func(vhost string, m *MessageRecord) error) error {
	lo, hi := kindBounds(kindRetained)
	return s.scan(lo, hi, func(k, v []byte) error {
		vhost, topic, err := parseRetainedKey(k)
		if err != nil {
			return err
		}
		m := &MessageRecord{}
		if err := decodeMessage(v, m); err != nil {
			return fmt.Errorf("%w (retained: vhost %q, topic %q)", err, vhost, topic)
		}
		return fn(vhost, m)
	})
}

// errStop ends a scan early without an error.
var errStop = errors.New("stop")

// scan calls fn for every key in [lo, hi) in order, after the mutations issued so far are
// committed. k and v are only valid during the call.
func (s *DB) scan(lo, hi []byte, fn func(k, v []byte) error) error {
	return s.scanWait(true, lo, hi, fn)
}

func (s *DB) scanWait(wait bool, lo, hi []byte, fn func(k, v []byte) error) error {
	if err := s.beginReadWait(wait); err != nil {
		return err
	}
	defer s.endRead()
	it, err := s.pdb.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	for ok := it.First(); ok; ok = it.Next() {
		v, verr := it.ValueAndErr()
		if verr != nil {
			err = fmt.Errorf("store: %w", verr)
			break
		}
		if err = fn(it.Key(), v); err != nil {
			break
		}
	}
	if err == nil {
		err = it.Error()
	}
	return errors.Join(err, it.Close())
}

// definitionsKey is the single key of the definitions document.
var definitionsKey = []byte{kindDefs}

// PutDefinitions replaces the stored definitions document.
func (s *DB) PutDefinitions(doc []byte) Ticket {
	v := append([]byte(nil), doc...)
	return s.mutate("PutDefinitions", func(b *pebble.Batch) { _ = b.Set(definitionsKey, v, nil) })
}

// LoadDefinitions returns the stored definitions document, or ErrNotFound.
func (s *DB) LoadDefinitions() ([]byte, error) {
	if err := s.beginRead(); err != nil {
		return nil, err
	}
	defer s.endRead()
	v, closer, err := s.pdb.Get(definitionsKey)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	defer closer.Close()
	return append([]byte(nil), v...), nil
}

// PutRecord stores val under (ns, key), replacing what was there.
func (s *DB) PutRecord(ns, key string, val []byte) Ticket {
	k := recordKey(ns, key)
	v := append([]byte(nil), val...)
	return s.mutate("PutRecord", func(b *pebble.Batch) { _ = b.Set(k, v, nil) })
}

// DeleteRecord removes the record (ns, key).
func (s *DB) DeleteRecord(ns, key string) Ticket {
	k := recordKey(ns, key)
	return s.mutate("DeleteRecord", func(b *pebble.Batch) { _ = b.Delete(k, nil) })
}

// LoadRecords calls fn for every record of namespace ns, in key order. key and val are copies.
func (s *DB) LoadRecords(ns string, fn func(key string, val []byte) error) error {
	lo := recordPrefix(ns)
	return s.scan(lo, prefixEnd(lo), func(k, v []byte) error {
		return fn(string(k[len(lo):]), append([]byte(nil), v...))
	})
}
