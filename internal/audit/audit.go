package audit

import (
	"encoding/json"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/turnstilemq/turnstile/internal/event"
)

// DefaultQueue is how many events may wait for the writer.
const DefaultQueue = 4096

// Log is an event.Observer that writes JSON lines to w.
type Log struct {
	w       io.Writer
	q       chan event.Event
	dropped atomic.Uint64
	done    chan struct{}
	once    sync.Once
}

var _ event.Observer = (*Log)(nil)

// New starts a log writing to w with a queue of n events (DefaultQueue when n <= 0). Close
// flushes it.
func New(w io.Writer, n int) *Log {
	if n <= 0 {
		n = DefaultQueue
	}
	l := &Log{w: w, q: make(chan event.Event, n), done: make(chan struct{})}
	go l.run()
	return l
}

// Observe queues e; it never blocks.
func (l *Log) Observe(e event.Event) {
	select {
	case l.q <- e:
	default:
		l.dropped.Add(1)
	}
}

// Dropped returns how many events were dropped because the queue was full.
func (l *Log) Dropped() uint64 { return l.dropped.Load() }

// Close writes what is queued and stops the writer. Events observed after Close are dropped.
func (l *Log) Close() {
	l.once.Do(func() {
		close(l.q)
		<-l.done
	})
}

// line is one audit record. Field names are stable: tools parse them.
type line struct {
	Time       string `json:"time"`
	Event      string `json:"event"`
	Listener   string `json:"listener,omitempty"`
	Remote     string `json:"remote,omitempty"`
	Vhost      string `json:"vhost,omitempty"`
	ClientID   string `json:"client_id,omitempty"`
	User       string `json:"user,omitempty"`
	Subject    string `json:"sub,omitempty"`
	Issuer     string `json:"iss,omitempty"`
	Method     string `json:"method,omitempty"`
	KeyID      string `json:"kid,omitempty"`
	TokenID    string `json:"jti,omitempty"`
	Expiry     string `json:"exp,omitempty"`
	Generation uint64 `json:"generation,omitempty"`
	Code       int    `json:"code,omitempty"`
	Reason     string `json:"reason,omitempty"`
	Detail     string `json:"detail,omitempty"`
	Action     string `json:"action,omitempty"`
	Topic      string `json:"topic,omitempty"`
	EarnedAt   string `json:"earned_at,omitempty"`
	Dropped    uint64 `json:"dropped_before,omitempty"` // events lost to a full queue since the last line
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func (l *Log) run() {
	defer close(l.done)
	enc := json.NewEncoder(l.w)
	enc.SetEscapeHTML(false)
	var reported uint64
	for e := range l.q {
		ln := line{Time: stamp(e.Time), Event: e.Kind.String(), Listener: e.Listener, Remote: e.Remote, Vhost: e.Vhost,
			ClientID: e.ClientID, User: e.User, Code: int(e.Code), Reason: e.Reason, Detail: e.Detail, Action: e.Action,
			Topic: e.Topic, EarnedAt: stamp(e.EarnedAt)}
		if id := e.Identity; id != nil {
			ln.Subject, ln.Issuer, ln.Method, ln.Generation = id.Subject, id.Issuer, id.Method, id.Generation
			ln.Expiry = stamp(id.Expiry)
			if ln.User == "" {
				ln.User = id.User
			}
			if len(id.Creds) > 0 {
				ln.KeyID, ln.TokenID = id.Creds[0].KeyID, id.Creds[0].ID
			}
		}
		if d := l.dropped.Load(); d > reported {
			ln.Dropped, reported = d-reported, d
		}
		enc.Encode(&ln) // a failing log writer loses lines, never the broker
	}
}
