package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/record"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/wal"
)

// Recovery.
//
// pebble replays its write-ahead logs on Open (open.go, DB.replayWAL, in pebble v2.1.7). For the
// newest WAL it tolerates an unclean end: when the record reader returns
// record.ErrUnexpectedEOF (a truncated or invalid chunk with no later evidence that it should
// have been valid) replay stops there and Open succeeds. It fails Open with ErrCorruption when
// the reader returns record.ErrInvalidChunk or record.ErrZeroedChunk, which it only does after
// reading ahead and finding a later chunk whose "synced offset" lies beyond the bad one
// (record.Reader.readAheadForCorruption): data that had been synced is damaged. Those synced
// offsets exist only from format FormatWALSyncChunks on, so the store opens pebble at
// FormatNewest. Older WALs must end cleanly (strictWALTail); a damaged older WAL fails Open.
//
// pebble logs "WAL ... stopped reading at offset ...; replayed N keys in M batches" but not
// what it skipped, so before opening, the store reads the newest WAL itself with pebble's own
// reader (wal.LogicalLog.OpenForRead, the reader replay uses) and, after opening:
//
//   - clean end: nothing to say;
//   - unclean end (pebble tolerates it): logs a warning with the file, the offset where replay
//     stopped, how many batches were kept and how many bytes were skipped, and whether those
//     bytes were zeroes or leftovers of a recycled WAL file (nothing lost) or an incomplete or
//     damaged batch (the batch being written at the crash; under FsyncAlways it was never
//     reported durable);
//   - damaged synced data (pebble refuses to open): keeps a copy of the file as
//     <wal>.damaged-<time>, truncates the WAL at the start of the damaged batch, opens again and
//     logs an error naming the file, the offset, the batches kept and the bytes dropped. The
//     dropped batches may have been reported durable: that is disk corruption, and the error
//     line says so. Everything before the damage is kept.

// walReport is what the store found in the newest WAL before pebble replayed it.
type walReport struct {
	path    string
	size    int64
	batches int   // complete batches before stopAt
	stopAt  int64 // offset where reading stopped: the first byte not recovered
	clean   bool  // the WAL ended cleanly: nothing skipped
	damaged bool  // confirmed corruption: pebble refuses to replay it
	tail    string
	err     error // reading failed for another reason (reported, not acted on)
}

// inspectWAL reads the newest WAL in dir with pebble's WAL reader. It returns nil when there is
// no WAL to look at.
func inspectWAL(dir string) *walReport {
	logs, err := wal.Scan(wal.Dir{FS: vfs.Default, Dirname: dir})
	if err != nil || len(logs) == 0 {
		return nil
	}
	ll := logs[len(logs)-1]
	if ll.NumSegments() != 1 {
		return nil // WAL failover is not configured; not ours to repair
	}
	_, path := ll.SegmentLocation(0)
	rep := &walReport{path: path}
	if st, err := os.Stat(path); err == nil {
		rep.size = st.Size()
	}
	rr := ll.OpenForRead()
	defer func() { _ = rr.Close() }()
	for {
		_, off, err := rr.NextRecord() // buffers the whole record
		if err == nil {
			rep.batches++
			continue
		}
		rep.stopAt = off.Physical
		switch {
		case errors.Is(err, io.EOF):
			rep.clean = true
		case errors.Is(err, record.ErrUnexpectedEOF):
			rep.tail = describeTail(path, rep.stopAt, uint32(ll.Num))
		case errors.Is(err, record.ErrInvalidChunk), errors.Is(err, record.ErrZeroedChunk):
			rep.damaged = true
			rep.err = err
		default:
			rep.err = err
		}
		return rep
	}
}

// describeTail says what the bytes after the last complete batch are.
func describeTail(path string, at int64, logNum uint32) string {
	f, err := os.Open(path)
	if err != nil {
		return "unreadable"
	}
	defer f.Close()
	const blockSize, headerSize = 32 << 10, 11 // record.blockSize, record.recyclableHeaderSize
	// A chunk header never starts in the last bytes of a block (they are zero padding).
	pos := at
	if rem := blockSize - at%blockSize; rem < headerSize {
		pos += rem
	}
	var h [headerSize]byte
	if n, _ := f.ReadAt(h[:], pos); n == headerSize {
		enc := h[6]
		// Recyclable and WAL-sync chunk encodings (5..12) carry the log number: another log
		// number means bytes left over from the file's previous life as an older WAL.
		if enc >= 5 && enc <= 12 && binary.LittleEndian.Uint32(h[7:11]) != logNum {
			return "leftovers of a recycled WAL file (nothing lost)"
		}
	}
	buf := make([]byte, 32<<10)
	for off := at; ; {
		n, err := f.ReadAt(buf, off)
		for _, c := range buf[:n] {
			if c != 0 {
				return "an incomplete or damaged batch (torn write at a crash; not recovered)"
			}
		}
		off += int64(n)
		if err != nil {
			return "zeroes (nothing lost)"
		}
	}
}

// openPebble opens pebble in dir, reporting and (for damaged synced data in the newest WAL)
// salvaging what recovery had to skip.
func openPebble(dir string, log *slog.Logger) (*pebble.DB, error) {
	rep := inspectWAL(dir)
	pdb, err := pebble.Open(dir, pebbleOptions(log))
	if err != nil && errors.Is(err, pebble.ErrCorruption) && rep != nil && rep.damaged {
		log.Error("WAL damaged in data that had been synced; pebble refused to open it",
			"wal", rep.path, "offset", rep.stopAt, "error", err.Error())
		saved, serr := salvageWAL(rep)
		if serr != nil {
			return nil, fmt.Errorf("store: open %s: %w (salvaging the WAL failed: %v)", dir, err, serr)
		}
		log.Error("WAL truncated at the damaged batch: everything before it is kept; the damaged batch and all after it are dropped and may include writes reported durable (disk corruption)",
			"wal", rep.path, "offset", rep.stopAt, "kept_batches", rep.batches,
			"dropped_bytes", rep.size-rep.stopAt, "copy", saved)
		pdb, err = pebble.Open(dir, pebbleOptions(log))
	}
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", dir, err)
	}
	if rep != nil && !rep.clean && !rep.damaged {
		if rep.err != nil {
			log.Warn("could not check the newest WAL", "wal", rep.path, "error", rep.err.Error())
		} else if rep.size > rep.stopAt {
			log.Warn("WAL recovery stopped before the end of the newest WAL",
				"wal", rep.path, "offset", rep.stopAt, "kept_batches", rep.batches,
				"skipped_bytes", rep.size-rep.stopAt, "skipped", rep.tail)
		}
	}
	return pdb, nil
}

// salvageWAL keeps a copy of the damaged WAL next to it, truncates the WAL at the start of the
// damaged batch and syncs it. It returns the copy's path.
func salvageWAL(rep *walReport) (string, error) {
	saved := rep.path + ".damaged-" + time.Now().UTC().Format("20060102T150405.000000000Z")
	if err := copyFile(rep.path, saved); err != nil {
		return "", err
	}
	f, err := os.OpenFile(rep.path, os.O_RDWR, 0)
	if err != nil {
		return "", err
	}
	if err := f.Truncate(rep.stopAt); err != nil {
		f.Close()
		return "", err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	return saved, syncDir(filepath.Dir(rep.path))
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// pebbleOptions configures pebble: its log lines and events go to log.
func pebbleOptions(log *slog.Logger) *pebble.Options {
	plog := pebbleLogger{log: log.With("engine", "pebble")}
	return &pebble.Options{
		// WAL sync chunks (FormatWALSyncChunks and later) let replay tell a torn tail from
		// damaged synced data; see above.
		FormatMajorVersion: pebble.FormatNewest,
		Logger:             plog,
		EventListener: &pebble.EventListener{
			BackgroundError: func(err error) { plog.log.Error("background error", "error", err.Error()) },
			DataCorruption: func(info pebble.DataCorruptionInfo) {
				plog.log.Error("data corruption", "info", info.String())
			},
			WriteStallBegin: func(info pebble.WriteStallBeginInfo) {
				plog.log.Warn("write stall", "reason", info.String())
			},
			WriteStallEnd: func() { plog.log.Info("write stall ended") },
			LowDiskSpace: func(info pebble.LowDiskSpaceInfo) {
				plog.log.Warn("low disk space", "info", info.String())
			},
		},
	}
}

// pebbleLogger routes pebble's log lines to slog.
type pebbleLogger struct{ log *slog.Logger }

func (l pebbleLogger) logf(level slog.Level, format string, args []any) {
	if l.log.Enabled(context.Background(), level) {
		l.log.Log(context.Background(), level, fmt.Sprintf(format, args...))
	}
}

func (l pebbleLogger) Infof(format string, args ...any)  { l.logf(slog.LevelInfo, format, args) }
func (l pebbleLogger) Errorf(format string, args ...any) { l.logf(slog.LevelError, format, args) }

// Fatalf must not return (pebble calls it when it cannot go on, e.g. a failed WAL write). It
// logs and panics, as pebble's default logger exits.
func (l pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.log.Error("fatal: "+msg, "fatal", true)
	panic("store: pebble: " + msg)
}
