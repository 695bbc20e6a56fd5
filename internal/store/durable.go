package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/batchrepr"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/wal"
)

// The durability record.
//
// pebble cannot tell that a WAL it should replay is missing, or was cut at a record boundary:
// it opens with what it finds. So the store keeps evidence of its own:
//
//   - every group commit carries its ticket in its WAL record (a LogData entry: no memtable
//     entry, so no cost beyond a few bytes), and tickets continue across restarts. Before
//     pebble opens, the store reads the tickets of the newest WAL, which pebble will replay
//     (inspectWAL); after, it writes the highest ticket recovered under the key 't'
//     (ticketKey), so that it is known again once that WAL is gone. A batch lands in the
//     newest WAL even when it made pebble switch WALs, except a large one (pebble writes it
//     into the WAL it leaves, and flushes it): a batch of largeBatch bytes or more keeps its
//     ticket under the ticket key too. So the last ticket recovered is max(tickets in the
//     newest WAL, 't'); when the newest WAL holds none (a crash cut its first record), the
//     older ones are read, newest first;
//   - once a second while tickets advance, and at Close, the file TURNSTILE-DURABLE in the
//     data directory is replaced (written, synced, renamed) by a line with the last durable
//     ticket, the last ticket whose WAL write was synced, the newest WAL, the fsync mode and
//     the time.
//
// At Open the recovered ticket is compared with the record: below its synced ticket, writes
// that had been synced (and acknowledged) were lost, at least as many group commits (WAL
// records) as the difference: an ERROR names the WAL and says whether the file is missing or
// present. Between the synced and the durable ticket (fsync=interval), acknowledged writes that
// were not yet synced were lost, as a power loss allows: a WARN. The record lags by up to a
// second: what it does not show is said to be unknown, never to be safe.
const durableFile = "TURNSTILE-DURABLE"

// recordEvery is how often the durability record is rewritten while tickets advance.
const recordEvery = time.Second

var ticketKey = []byte{kindTicket}

// ticketTag starts the LogData entry that carries a group commit's ticket.
const ticketTag = 't'

// largeBatch is the size from which a batch also keeps its ticket under the ticket key: well
// below pebble's large-batch threshold (half the 4 MiB memtable, counted with per-entry
// overhead), so that every batch pebble writes into the WAL it leaves has it.
const largeBatch = 64 << 10

// logTicket returns the highest ticket in one WAL, read as pebble's replay reads it
// (stopping where it stops).
func logTicket(ll wal.LogicalLog, buf *bytes.Buffer) Ticket {
	var top Ticket
	rr := ll.OpenForRead()
	defer func() { _ = rr.Close() }()
	for {
		r, _, err := rr.NextRecord()
		if err != nil {
			return top
		}
		top = max(top, recordTicket(r, buf))
	}
}

// recordTicket returns the ticket of the batch a WAL record holds. pebble's WAL reader returns
// the record in a buffer of its own (wal.virtualWALReader: a *bytes.Buffer): it is read in
// place, not copied.
func recordTicket(r io.Reader, buf *bytes.Buffer) Ticket {
	if b, ok := r.(interface{ Bytes() []byte }); ok {
		return batchTicket(b.Bytes())
	}
	buf.Reset()
	if _, err := buf.ReadFrom(r); err != nil {
		return 0
	}
	return batchTicket(buf.Bytes())
}

// batchTicket returns the ticket a batch carries, 0 if none (or if it does not parse: a
// record that passed its checksum always does).
func batchTicket(repr []byte) (t Ticket) {
	defer func() {
		if recover() != nil { // batchrepr.DecodeStr indexes without checking
			t = 0
		}
	}()
	if len(repr) < 12 {
		return 0
	}
	for r := batchrepr.Read(repr); ; {
		kind, data, value, ok, err := r.Next()
		if !ok || err != nil {
			return t
		}
		switch {
		case uint8(kind) == logDataKind && len(data) > 1 && data[0] == ticketTag: // a commit's ticket
			if v, n := binary.Uvarint(data[1:]); n > 0 {
				t = max(t, Ticket(v))
			}
		case uint8(kind) == setKind && bytes.Equal(data, ticketKey): // the ticket key (Open, Close)
			if v, n := binary.Uvarint(value); n > 0 {
				t = max(t, Ticket(v))
			}
		}
	}
}

// pebble's InternalKeyKindSet and InternalKeyKindLogData (pebble/v2/internal/base).
const (
	setKind     = 1
	logDataKind = 3
)

type durableRecord struct {
	durable, synced uint64
	wal             string // base name of the newest WAL when it was written
	fsync           string
	at              time.Time
	walFile         string // read back: whether wal was there before pebble opened ("present", "missing")
}

func (r *durableRecord) String() string {
	return fmt.Sprintf("turnstile-durable v1 durable=%d synced=%d wal=%s fsync=%s at=%d\n",
		r.durable, r.synced, r.wal, r.fsync, r.at.UnixNano())
}

func parseDurableRecord(b []byte) (*durableRecord, error) {
	var r durableRecord
	var at int64
	s := strings.TrimSpace(string(b))
	if _, err := fmt.Sscanf(s, "turnstile-durable v1 durable=%d synced=%d wal=%s fsync=%s at=%d",
		&r.durable, &r.synced, &r.wal, &r.fsync, &at); err != nil {
		return nil, fmt.Errorf("%s: %q: %w", durableFile, s, err)
	}
	r.at = time.Unix(0, at)
	return &r, nil
}

// readDurableRecord reads the durability record of dir; nil when there is none.
func readDurableRecord(fs vfs.FS, dir string) (*durableRecord, error) {
	f, err := fs.Open(fs.PathJoin(dir, durableFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 4096))
	if err != nil {
		return nil, err
	}
	r, err := parseDurableRecord(b)
	if err != nil {
		return nil, err
	}
	// Before pebble opens: it removes the WALs it replayed.
	r.walFile = "missing"
	if _, err := fs.Stat(fs.PathJoin(dir, r.wal)); err == nil {
		r.walFile = "present"
	}
	return r, nil
}

// writeDurableRecord replaces the record, through the filesystem itself (not guardFS: a
// failure here is not the store's, and is retried at the next tick).
func (s *DB) writeDurableRecord(r *durableRecord) error {
	fs := s.fs.FS
	tmp := fs.PathJoin(s.dir, durableFile+".tmp")
	f, err := fs.Create(tmp, vfs.WriteCategoryUnspecified)
	if err != nil {
		return err
	}
	_, err = io.WriteString(f, r.String())
	if err == nil {
		err = f.Sync()
	}
	if err = errors.Join(err, f.Close()); err != nil {
		return err
	}
	return fs.Rename(tmp, fs.PathJoin(s.dir, durableFile))
}

// currentRecord is the record of now.
func (s *DB) currentRecord() *durableRecord {
	fsync := FsyncInterval
	if s.syncAlways {
		fsync = FsyncAlways
	}
	return &durableRecord{durable: s.durable.Load(), synced: s.synced.Load(), wal: s.sink.newestWAL(),
		fsync: fsync.String(), at: time.Now()}
}

// recordLoop rewrites the durability record while tickets advance, until stop.
func (s *DB) recordLoop(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(recordEvery)
	defer t.Stop()
	var last durableRecord
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			r := s.currentRecord()
			if r.durable == last.durable && r.synced == last.synced {
				continue
			}
			if err := s.writeDurableRecord(r); err != nil {
				s.log.Debug("durability record not written", "error", err.Error())
				continue
			}
			last = *r
		}
	}
}

// recoveredTicket reads the ticket key (0 for none).
func (s *DB) recoveredTicket() (Ticket, error) {
	v, closer, err := s.pdb.Get(ticketKey)
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("store: reading the last ticket: %w", err)
	}
	defer closer.Close()
	t, n := binary.Uvarint(v)
	if n <= 0 || n != len(v) {
		return 0, fmt.Errorf("store: data directory %s: the ticket key holds %x", s.dir, v)
	}
	return Ticket(t), nil
}

// acknowledged says what the durability record tells about writes after the recovered ticket:
// whether synced or acknowledged ones were lost (lost > 0), and in words.
func acknowledged(rec *durableRecord, recovered Ticket) (lost uint64, synced bool, what string) {
	r := uint64(recovered)
	switch {
	case rec == nil:
		return 0, false, "unknown: no durability record (" + durableFile + ")"
	case rec.synced > r:
		return rec.synced - r, true, fmt.Sprintf("yes: writes up to ticket %d had been synced and acknowledged (durability record of %s); recovery reached ticket %d",
			rec.synced, rec.at.UTC().Format(time.RFC3339), r)
	case rec.durable > r:
		return rec.durable - r, false, fmt.Sprintf("yes, under fsync=%s: writes up to ticket %d had been acknowledged before being synced (durability record of %s); recovery reached ticket %d",
			rec.fsync, rec.durable, rec.at.UTC().Format(time.RFC3339), r)
	}
	return 0, false, fmt.Sprintf("not as of %s (durability record: acknowledged up to ticket %d, recovered %d); writes acknowledged after that are not recorded",
		rec.at.UTC().Format(time.RFC3339), rec.durable, r)
}

// reportRecovery logs what recovery found in the newest WAL and what the durability record
// says was lost (see recovery.go for the cases).
func (s *DB) reportRecovery(rep *walReport, rec *durableRecord, recovered Ticket) {
	lost, synced, what := acknowledged(rec, recovered)
	explained := false
	if rep != nil && !rep.clean {
		explained = true
		wal := filepath.Base(rep.path)
		switch {
		case rep.err != nil:
			explained = false
			s.log.Warn("could not check the newest WAL", "dir", s.dir, "wal", wal, "error", rep.err.Error())
		case rep.refused || rep.synced > rep.stopAt:
			s.log.Error("WAL damaged: recovered every record before the damage; the records after it are lost, including records that had been synced: disk corruption",
				"dir", s.dir, "wal", wal, "offset", rep.stopAt, "kept_records", rep.batches,
				"dropped_records", rep.dropped(), "dropped_bytes", rep.size-rep.stopAt, "synced_to", rep.synced,
				"acknowledged", what, "copy", rep.saved)
		case rep.intact > 0:
			lvl := s.log.Warn
			if synced {
				lvl = s.log.Error
			}
			lvl("WAL recovery stopped at a damaged or incomplete record; it and the records after it were dropped",
				"dir", s.dir, "wal", wal, "offset", rep.stopAt, "kept_records", rep.batches,
				"dropped_records", rep.dropped(), "dropped_bytes", rep.size-rep.stopAt, "synced_to", rep.synced,
				"acknowledged", what, "copy", rep.saved)
		case rep.size > rep.stopAt && rep.partial:
			lvl := s.log.Warn
			if synced {
				lvl = s.log.Error
			}
			lvl("WAL ends in an incomplete record (a write cut short by a crash, or damage); it was dropped",
				"dir", s.dir, "wal", wal, "offset", rep.stopAt, "kept_records", rep.batches,
				"dropped_records", 1, "dropped_bytes", rep.size-rep.stopAt, "acknowledged", what)
		case rep.size > rep.stopAt:
			explained = false
			s.log.Info("WAL recovery stopped before the end of the newest WAL; nothing was lost", "dir", s.dir,
				"wal", wal, "offset", rep.stopAt, "kept_records", rep.batches, "skipped_bytes", rep.size-rep.stopAt,
				"skipped", rep.tail)
		default:
			explained = false
		}
	}
	if lost == 0 || explained {
		return
	}
	args := []any{"dir", s.dir, "wal", rec.wal, "wal_file", rec.walFile, "recovered_ticket", uint64(recovered),
		"durable_ticket", rec.durable, "synced_ticket", rec.synced, "dropped_records_at_least", lost,
		"record_time", rec.at.UTC().Format(time.RFC3339Nano)}
	if synced {
		s.log.Error("writes that had been synced and acknowledged were not recovered: a WAL is missing, or was cut short at a record boundary", args...)
		return
	}
	s.log.Warn("writes acknowledged under fsync="+rec.fsync+" but not yet synced were not recovered (a power loss or kernel crash loses them)", args...)
}
