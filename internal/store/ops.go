package store

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// Mutations encode their record before taking the lock; the batch copies key and value.

// PutSession inserts or replaces a session record. When r.Subscriptions is not nil they are
// written as records too, in the same batch (replacing stored ones of the same group and
// filter; others stay: a new session has none, and DeleteSession removes them all).
func (s *DB) PutSession(r *SessionRecord) Ticket {
	k := sessionKey(r.Vhost, r.ClientID)
	v := appendSession(make([]byte, 0, sessionSize(r)), r)
	if len(r.Subscriptions) == 0 {
		return s.mutate("PutSession", func(b *pebble.Batch) { _ = b.Set(k, v, nil) })
	}
	subs := make([][2][]byte, len(r.Subscriptions))
	for i := range r.Subscriptions {
		sr := &r.Subscriptions[i]
		subs[i] = [2][]byte{subscriptionKey(r.Vhost, r.ClientID, sr.Group, sr.Filter), appendSubscription(nil, sr)}
	}
	return s.mutate("PutSession", func(b *pebble.Batch) {
		_ = b.Set(k, v, nil)
		for _, kv := range subs {
			_ = b.Set(kv[0], kv[1], nil)
		}
	})
}

// PutSubscription inserts or replaces one subscription of a session, keyed by group and filter.
func (s *DB) PutSubscription(vhost, clientID string, r *SubscriptionRecord) Ticket {
	k := subscriptionKey(vhost, clientID, r.Group, r.Filter)
	v := appendSubscription(make([]byte, 0, 16), r)
	return s.mutate("PutSubscription", func(b *pebble.Batch) { _ = b.Set(k, v, nil) })
}

// DeleteSubscription removes one subscription of a session.
func (s *DB) DeleteSubscription(vhost, clientID, group, filter string) Ticket {
	k := subscriptionKey(vhost, clientID, group, filter)
	return s.mutate("DeleteSubscription", func(b *pebble.Batch) { _ = b.Delete(k, nil) })
}

// DeleteSession removes a session, its subscriptions, its queue entries and its inbound packet
// ids, in one batch. The messages its entries referred to stay (they may be shared);
// DeleteMessage or DeleteUnreferencedMessages removes them.
func (s *DB) DeleteSession(vhost, clientID string) Ticket {
	k := sessionKey(vhost, clientID)
	var ranges [3][2][]byte
	for i, kind := range [...]byte{kindSub, kindQueue, kindInbound} {
		p := clientPrefix(kind, vhost, clientID, 0)
		ranges[i] = [2][]byte{p, prefixEnd(p)}
	}
	return s.mutate("DeleteSession", func(b *pebble.Batch) {
		_ = b.Delete(k, nil)
		for _, r := range ranges {
			_ = b.DeleteRange(r[0], r[1], nil)
		}
	})
}

// LoadSessions calls fn for every session, ordered by vhost then client id (length first),
// with its subscriptions: the records of their own, and those a version 1 session record
// carries (a record of its own wins over one of the same group and filter).
func (s *DB) LoadSessions(fn func(*SessionRecord) error) error {
	if err := s.beginRead(); err != nil {
		return err
	}
	defer s.endRead()
	lo, hi := kindBounds(kindSession)
	sit, err := s.pdb.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	lo, hi = kindBounds(kindSub)
	uit, err := s.pdb.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return errors.Join(fmt.Errorf("store: %w", err), sit.Close())
	}
	orphans := 0
	uok := uit.First()
	for ok := sit.First(); ok && err == nil; ok = sit.Next() {
		k := sit.Key()
		vhost, clientID, rest, perr := parseClientKey(k)
		if perr == nil && len(rest) != 0 {
			perr = &DecodeError{Record: "key", Field: "clientID", Err: errTrailing}
		}
		if perr != nil {
			err = perr
			break
		}
		v, verr := sit.ValueAndErr()
		if verr != nil {
			err = fmt.Errorf("store: %w", verr)
			break
		}
		r := &SessionRecord{Vhost: vhost, ClientID: clientID}
		if derr := decodeSession(v, r); derr != nil {
			err = fmt.Errorf("%w (vhost %q, client id %q)", derr, vhost, clientID)
			break
		}
		// Subscription keys share the session key's prefix-free (vhost, client id) part, so
		// they come in the same order: skip those of sessions that do not exist, then take
		// this session's.
		id := k[1:]
		for ; uok && bytes.Compare(uit.Key()[1:], id) < 0 && !bytes.HasPrefix(uit.Key()[1:], id); uok = uit.Next() {
			orphans++
		}
		var own []SubscriptionRecord
		for ; uok && bytes.HasPrefix(uit.Key()[1:], id); uok = uit.Next() {
			sr := SubscriptionRecord{}
			group, filter, kerr := parseSubscriptionKey(uit.Key())
			uv, verr := uit.ValueAndErr()
			if kerr == nil {
				kerr = verr
			}
			if kerr == nil {
				kerr = decodeSubscription(uv, &sr)
			}
			if kerr != nil {
				err = fmt.Errorf("%w (vhost %q, client id %q)", kerr, vhost, clientID)
				break
			}
			sr.Group, sr.Filter = group, filter
			own = append(own, sr)
		}
		if err != nil {
			break
		}
		r.Subscriptions = mergeSubscriptions(r.Subscriptions, own)
		err = fn(r)
	}
	if err == nil {
		err = errors.Join(sit.Error(), uit.Error())
	}
	err = errors.Join(err, sit.Close(), uit.Close())
	if orphans > 0 {
		s.log.Warn("subscription records without a session ignored", "count", orphans)
	}
	return err
}

// mergeSubscriptions adds a session's own subscription records to those its (version 1)
// record carried; an own record replaces a carried one of the same group and filter.
func mergeSubscriptions(carried, own []SubscriptionRecord) []SubscriptionRecord {
	if len(carried) == 0 {
		return own
	}
	if len(own) == 0 {
		return carried
	}
	type key struct{ group, filter string }
	at := make(map[key]int, len(carried))
	for i := range carried {
		at[key{carried[i].Group, carried[i].Filter}] = i
	}
	for _, o := range own {
		if i, ok := at[key{o.Group, o.Filter}]; ok {
			carried[i] = o
		} else {
			carried = append(carried, o)
		}
	}
	return carried
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
