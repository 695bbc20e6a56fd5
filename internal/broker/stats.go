package broker

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// dropReason names why a delivery was not made; each has its own counter.
type dropReason uint8

const (
	dropQueueFull    dropReason = iota // session queue or connection buffer at its limit
	dropOfflineQoS0                    // QoS 0 for an offline session is not queued
	dropExpired                        // Message Expiry Interval passed while queued
	dropTooLarge                       // larger than the client's Maximum Packet Size
	dropSessionEnded                   // queued when the session ended
	numDropReasons
)

var dropNames = [numDropReasons]string{"queue_full", "offline_qos0", "expired", "too_large", "session_ended"}

func (r dropReason) String() string { return dropNames[r] }

// vhostStats are the vhost-wide counters behind $SYS. Per-connection counters are summed into
// them when a connection ends, so the hot path only touches counters owned by one connection.
type vhostStats struct {
	msgsIn, bytesIn, msgsOut, bytesOut atomic.Uint64 // from connections that have ended
	dropped                            [numDropReasons]atomic.Uint64

	logMu      sync.Mutex
	lastLog    time.Time
	sinceLog   [numDropReasons]uint64
	dropLogger *slog.Logger
}

// dropLogInterval caps drop logging at one line per interval per vhost.
const dropLogInterval = 10 * time.Second

func (s *vhostStats) drop(r dropReason) { s.dropN(r, 1) }

// dropN counts n drops for r and, at most once per dropLogInterval, logs how many messages were
// dropped for each reason since the previous line.
func (s *vhostStats) dropN(r dropReason, n uint64) {
	s.dropped[r].Add(n)
	if r == dropOfflineQoS0 {
		return // expected behaviour, counted but not worth a log line
	}
	s.logMu.Lock()
	s.sinceLog[r] += n
	now := time.Now()
	if now.Sub(s.lastLog) < dropLogInterval || s.dropLogger == nil {
		s.logMu.Unlock()
		return
	}
	attrs := make([]any, 0, 2*numDropReasons+2)
	for i, c := range s.sinceLog {
		if c > 0 {
			attrs = append(attrs, dropNames[i], c)
		}
	}
	s.sinceLog, s.lastLog = [numDropReasons]uint64{}, now
	s.logMu.Unlock()
	s.dropLogger.Warn("messages dropped since the last report", attrs...)
}

func (s *vhostStats) totalDropped() uint64 {
	var n uint64
	for i := range s.dropped {
		n += s.dropped[i].Load()
	}
	return n
}
