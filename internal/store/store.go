package store

import (
	"errors"
	"log/slog"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// Fsync selects when a group commit is fsynced. See the package documentation for what each
// mode can lose.
type Fsync int

const (
	FsyncAlways   Fsync = iota // every group commit is synced before its waiters are told
	FsyncInterval              // groups commit without sync; the WAL is synced every Options.Interval
)

// String returns the configuration spelling of f ("always", "interval").
func (f Fsync) String() string {
	switch f {
	case FsyncAlways:
		return "always"
	case FsyncInterval:
		return "interval"
	}
	return "Fsync(?)"
}

// Options configures Open.
type Options struct {
	Fsync    Fsync
	Interval time.Duration // for FsyncInterval; default 100ms
	Logger   *slog.Logger  // the store's lines, and pebble's (its informational ones at DEBUG)
	// OnCommit, if set, is called on the committer goroutine after each group commit with how
	// long the commit (and its sync, when synced) took, for metrics. It must not block.
	OnCommit func(d time.Duration, synced bool)
	// FS, if set, is the filesystem the store writes through instead of the operating
	// system's, for tests that inject faults (pebble's vfs/errorfs). It must be backed by the
	// operating system's filesystem at the store's directory: recovery reads the WAL files
	// directly.
	FS vfs.FS

	timings *timings // tests shorten retries and log intervals
}

// Records. Their encoding is this package's business (codec.go): a compact versioned binary
// encoding whose first byte is the record version. Slices and byte strings keep the difference
// between nil and empty.

// SubscriptionRecord is one subscription of a persistent session, with its options.
type SubscriptionRecord struct {
	Filter, Group     string
	QoS               byte
	NoLocal           bool
	RetainAsPublished bool
	RetainHandling    byte
	ID                uint32
}

// WillRecord is a session's will message. DueAt != 0 marks a pending (delayed) will.
type WillRecord struct {
	Topic          string
	Payload        []byte
	QoS            byte
	Retain         bool
	Props          []byte // opaque (encoded v5 properties), may be nil
	Delay          uint32 // Will Delay Interval, seconds
	ExpiryInterval uint32
	HasExpiry      bool
	DueAt          int64 // unix nanos when a pending (delayed) will is due; 0 = the connection is (was) up
	// Identity is the identity the will is authorized against when it is sent; nil: the
	// session's.
	Identity *IdentityRecord
	EarnedAt int64 // unix nanos when the will was earned (its connection ended); 0 = not yet
}

// SessionRecord is a persistent session: identity, expiry, subscriptions and will.
//
// Subscriptions are stored as records of their own (PutSubscription), so that a SUBSCRIBE
// writes one small record, not the whole session; LoadSessions returns them here. PutSession
// writes the Subscriptions it is given as records too, and leaves the stored ones.
type SessionRecord struct {
	Vhost, ClientID string
	Version         byte   // protocol level
	ExpiryInterval  uint32 // seconds; 0xFFFFFFFF never
	DisconnectedAt  int64  // unix nanos; 0 = connected when last written
	Subscriptions   []SubscriptionRecord
	Will            *WillRecord
	// User is the user name the session's last connection proved at CONNECT. Records written
	// before Identity existed have only this.
	User string
	// Identity is a snapshot of the identity the session's last connection proved (nil in
	// records written before it existed): a will is authorized against it when it is sent,
	// also after a restart.
	Identity *IdentityRecord
}

// IdentityRecord is the stored form of an identity snapshot (package auth's Identity, which
// this package does not import: the broker converts). It holds names, ids, permissions and
// validity, never a secret: a credential is named by its ids and the SHA-256 of its bytes.
type IdentityRecord struct {
	User, Subject, Issuer, Vhost, Method, GrantsSource string
	Tags                                               []string
	Grants                                             []GrantRecord
	Scoped                                             *ScopedRecord
	NotBefore, Expiry                                  int64 // unix nanos, 0 = none
	Creds                                              []CredentialRecord
	Generation                                         uint64
}

// GrantRecord is one permission a token grants: an action and a topic pattern.
type GrantRecord struct{ Action, Pattern string }

// ScopedRecord is the permissions OAuth2 scopes give (RabbitMQ regex form).
type ScopedRecord struct{ Configure, Write, Read, TopicWrite, TopicRead string }

// CredentialRecord names one verified credential without any of its bytes.
type CredentialRecord struct {
	Kind, Type, ID, KeyID, Subject string
	Expiry                         int64    // unix nanos, 0 = none
	Hash                           [32]byte // SHA-256 of the credential, never the credential
}

// MessageRecord is a stored message: one referenced by queue entries, or a retained one.
type MessageRecord struct {
	Topic   string
	Payload []byte
	QoS     byte
	Retain  bool
	Props   []byte // opaque
	Expiry  int64  // unix nanos deadline, 0 = none
}

// QueueEntry is one message queued for, or in flight to, a session.
type QueueEntry struct {
	Seq      uint64 // order within the session, assigned by the broker, increasing
	MsgID    uint64 // the MessageRecord it refers to
	QoS      byte
	Retain   bool
	SubIDs   []uint32
	State    byte   // 0 queued, 1 sent and awaiting PUBACK/PUBREC, 2 awaiting PUBCOMP
	PacketID uint16 // when State > 0
}

// Ticket identifies the group commit an operation belongs to. Tickets increase. Ticket 0 is
// always durable (it is no write). A write the store refuses (it cannot write, or it is
// closed) gets the largest ticket, failed from the start: the max of several tickets fails
// when one of them was refused.
type Ticket uint64

// Small interfaces, so a cluster-backed store can replace this one later.

// Sessions persists sessions with their subscriptions and wills.
type Sessions interface {
	// PutSession inserts or replaces a session record (will and identity included). Its
	// stored subscriptions stay; r.Subscriptions, if any, are written as records too (for a
	// session's first record, conversions and tests).
	PutSession(r *SessionRecord) Ticket
	// PutSubscription inserts or replaces one subscription of a session, by group and filter:
	// a few dozen bytes, however many the session has.
	PutSubscription(vhost, clientID string, r *SubscriptionRecord) Ticket
	DeleteSubscription(vhost, clientID, group, filter string) Ticket
	// DeleteSession removes the session AND its subscriptions, queue entries and inbound ids
	// (range deletes).
	DeleteSession(vhost, clientID string) Ticket
	// LoadSessions calls fn for every session, with its subscriptions.
	LoadSessions(fn func(*SessionRecord) error) error
}

// Queues persists each session's queue entries and inbound QoS 2 packet ids.
type Queues interface {
	PutQueueEntry(vhost, clientID string, e *QueueEntry) Ticket // insert or replace by Seq
	DeleteQueueEntry(vhost, clientID string, seq uint64) Ticket
	// LoadQueue calls fn for entries with Seq > afterSeq, in Seq order, at most limit of them (limit <= 0: all).
	LoadQueue(vhost, clientID string, afterSeq uint64, limit int, fn func(*QueueEntry) error) error
	// LoadQueueCommitted is LoadQueue for entries known to be durable: it does not wait for a
	// group commit in progress.
	LoadQueueCommitted(vhost, clientID string, afterSeq uint64, limit int, fn func(*QueueEntry) error) error
	PutInbound(vhost, clientID string, pid uint16) Ticket // inbound QoS 2 packet id awaiting PUBREL
	DeleteInbound(vhost, clientID string, pid uint16) Ticket
	LoadInbound(vhost, clientID string) ([]uint16, error)
}

// Messages persists the messages queue entries refer to, by id.
type Messages interface {
	PutMessage(id uint64, m *MessageRecord) Ticket
	DeleteMessage(id uint64) Ticket
	LoadMessage(id uint64) (*MessageRecord, error) // ErrNotFound if absent
	// LoadMessageCommitted is LoadMessage for a message known to be durable (no waiting).
	LoadMessageCommitted(id uint64) (*MessageRecord, error)
	MaxMessageID() (uint64, error) // highest stored id, 0 if none
	// DeleteUnreferencedMessages removes messages no queue entry refers to (run once after recovery); returns how many.
	DeleteUnreferencedMessages() (int, error)
}

// Retained persists retained messages, keyed by vhost and topic.
type Retained interface {
	PutRetained(vhost string, m *MessageRecord) Ticket // key: vhost + m.Topic
	DeleteRetained(vhost, topic string) Ticket
	LoadRetained(fn func(vhost string, m *MessageRecord) error) error
}

// Definitions persists the security definitions (users with their password hashes and tags,
// vhosts, permissions, topic permissions) as one opaque document, written whole on each change:
// they change at an operator's pace, and a whole-document write keeps them consistent.
type Definitions interface {
	PutDefinitions(doc []byte) Ticket
	LoadDefinitions() ([]byte, error) // ErrNotFound when none was ever stored
}

// Records persists small opaque records by namespace and key: the state of components beside
// the broker (access keys, token and credential revocations, bans). A namespace is a short
// fixed name owned by one component; keys are unique within it. Values are the owner's
// encoding; the store never interprets them.
type Records interface {
	PutRecord(ns, key string, val []byte) Ticket
	DeleteRecord(ns, key string) Ticket
	// LoadRecords calls fn for every record of ns, in key order.
	LoadRecords(ns string, fn func(key string, val []byte) error) error
}

// Store is the whole durable store.
type Store interface {
	Sessions
	Queues
	Messages
	Retained
	Definitions
	Records
	// Notify calls fn once every operation with ticket <= t is durable (committed, and synced
	// under FsyncAlways), or once t failed. fn is called exactly once; it runs on the
	// committer goroutine (or the one that found the disk failing) and must not block. If t is
	// already resolved, fn runs before Notify returns (on the caller's goroutine). fn checks
	// Status(t) to learn which.
	Notify(t Ticket, fn func())
	// Durable reports whether t is durable.
	Durable(t Ticket) bool
	// Status reports whether t is resolved: (false, nil) pending, (true, nil) durable,
	// (true, err) failed: nothing it wrote is reported durable; err wraps ErrUnavailable.
	Status(t Ticket) (done bool, err error)
	// Healthy returns nil while the store can write, and why not (wrapping ErrUnavailable)
	// while it cannot: writes are then refused and their tickets fail at once. It is cheap
	// enough for every publish (one atomic load).
	Healthy() error
	// Sync makes everything written so far durable and returns when it is (for shutdown and tests).
	Sync() error
	Close() error
}

var (
	// ErrNotFound is returned by LoadMessage for an absent id.
	ErrNotFound = errors.New("store: not found")
	// ErrClosed is returned by reads, Sync and Close once the store is closed.
	ErrClosed = errors.New("store: closed")
)
