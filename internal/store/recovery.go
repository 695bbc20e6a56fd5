package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/record"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/wal"
)

// Recovery.
//
// pebble (v2.1.7) replays its write-ahead logs on Open (open.go, DB.replayWAL). For the newest
// WAL it tolerates an unclean end: when its record reader returns record.ErrUnexpectedEOF,
// replay stops there and Open succeeds, silently. It fails Open with ErrCorruption when the
// reader returns record.ErrInvalidChunk or record.ErrZeroedChunk, which it does only when, after
// a bad chunk, it reads ahead and finds a chunk whose "synced offset" lies beyond the bad one
// (record.Reader.readAheadForCorruption): data that had been synced is damaged. That read-ahead
// starts at the next 32 KiB block, so damage followed by intact synced chunks in the same block
// is treated as a torn tail: replay stops and everything after the damage is dropped without
// an error. Older WALs must end cleanly (strictWALTail); a damaged older WAL fails Open.
//
// So before opening, the store reads the newest WAL itself with pebble's reader
// (wal.LogicalLog.OpenForRead, the one replay uses), notes where reading stops, and scans the
// rest of the file for intact chunks of the same log (header, log number and checksum valid).
// Once pebble has opened, it logs (DB.reportRecovery, durable.go), naming the file, the offset,
// the records kept and dropped, and what the durability record says about whether the dropped
// ones had been acknowledged:
//
//   - clean end: nothing to say, unless the durability record shows acknowledged writes
//     missing (a WAL deleted, or cut at a record boundary): then an ERROR (synced writes) or a
//     WARN (fsync=interval writes not yet synced);
//   - zeroes, leftovers of a recycled WAL file or a damaged end-of-log marker after the last
//     record: nothing lost, an INFO line;
//   - an incomplete last record: a write cut short by a crash, or damage: a WARN, or an ERROR
//     when the durability record shows it had been synced;
//   - intact chunks after the stop whose synced offsets do not reach it: a damaged or torn
//     record followed by records written after it, not yet synced when those were; a WARN
//     (ERROR as above) with the number of records dropped;
//   - damage followed by chunks recording a synced offset beyond it (or pebble refusing the
//     WAL): records that had been synced are lost to disk corruption. The store opens
//     (truncating the WAL at the damaged record first if pebble refuses it) and logs an error.
//     Everything before the damage is kept; replaying later records over a gap would give a
//     state the broker never wrote.
//
// Whenever intact chunks follow the stop, a copy of the WAL as found is kept next to it as
// <wal>.damaged-<time> (pebble ignores the name) before pebble recycles the file.
//
// When pebble refuses to open for another reason, the error names what the store can find
// damaged: an older WAL that does not end cleanly, or an OPTIONS file that does not parse.

// walReport is what the store found in the newest WAL before pebble replayed it.
type walReport struct {
	path    string
	logNum  uint32
	size    int64
	batches int   // complete batches before stopAt
	stopAt  int64 // offset where reading stopped: the first byte not recovered
	clean   bool  // the WAL ended cleanly: nothing skipped
	refused bool  // the reader confirmed corruption: pebble will refuse to open
	intact  int   // intact chunks of this log after stopAt: damage, not a torn tail
	records int   // of those chunks, how many begin a record
	synced  int64 // highest synced offset recorded by those chunks
	tail    string
	partial bool   // no intact chunk follows, and the tail is an incomplete record (not zeroes or leftovers)
	saved   string // where a copy of the damaged WAL was kept
	err     error  // reading failed for another reason (reported, not acted on)
}

func (r *walReport) damaged() bool { return r.refused || r.intact > 0 }

// dropped is how many records recovery dropped: the damaged one and the intact ones after it.
func (r *walReport) dropped() int { return r.records + 1 }

// inspectWAL reads the WALs in dir with pebble's WAL reader, as replay will: it returns the
// report on the newest (nil when there is none to look at) and the highest ticket the WALs
// carry up to where replay will stop (durable.go).
func inspectWAL(dir string) (rep *walReport, top Ticket) {
	logs, err := wal.Scan(wal.Dir{FS: vfs.Default, Dirname: dir})
	if err != nil || len(logs) == 0 {
		return nil, 0
	}
	var buf bytes.Buffer
	// The newest WAL, or the ticket key, holds the last ticket (durable.go), unless a crash
	// cut the first record of a new WAL: then the older ones are read, newest first, until
	// one holds a ticket.
	defer func() {
		for i := len(logs) - 2; top == 0 && (rep == nil || !rep.clean) && i >= 0; i-- {
			top = logTicket(logs[i], &buf)
		}
	}()
	ll := logs[len(logs)-1]
	if ll.NumSegments() != 1 {
		top = logTicket(ll, &buf)
		return nil, top // WAL failover is not configured; not ours to repair
	}
	_, path := ll.SegmentLocation(0)
	rep = &walReport{path: path, logNum: uint32(ll.Num)}
	if st, err := os.Stat(path); err == nil {
		rep.size = st.Size()
	}
	rr := ll.OpenForRead()
	defer func() { _ = rr.Close() }()
	for {
		r, off, err := rr.NextRecord() // buffers the whole record
		if err == nil {
			rep.batches++
			top = max(top, recordTicket(r, &buf))
			continue
		}
		rep.stopAt = off.Physical
		switch {
		case errors.Is(err, io.EOF):
			rep.clean = true
			return rep, top
		case errors.Is(err, record.ErrUnexpectedEOF):
		case errors.Is(err, record.ErrInvalidChunk), errors.Is(err, record.ErrZeroedChunk):
			rep.refused = true
		default:
			rep.err = err
			return rep, top
		}
		b, err := os.ReadFile(path)
		if err != nil {
			rep.err = err
			return rep, top
		}
		rep.intact, rep.records, rep.synced = intactChunks(b, rep.stopAt, rep.logNum)
		if rep.intact == 0 {
			rep.tail, rep.partial = describeTail(b[min(rep.stopAt, int64(len(b))):], rep.stopAt, rep.logNum)
		}
		return rep, top
	}
}

// WAL chunk format (pebble/v2/record): checksum u32 | length u16 | encoding u8 | log number
// u32 (recyclable and sync encodings) | synced offset u64 (sync encodings) | data; chunks never
// cross a 32 KiB block.
const (
	walBlockSize      = 32 << 10
	walRecyclableHead = 11
	walSyncHead       = 19
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// intactChunks counts the chunks of log logNum after offset from whose header and checksum are
// valid, and how many of them begin a record (full or first chunks), and returns the highest
// synced offset they record.
func intactChunks(b []byte, from int64, logNum uint32) (n, records int, synced int64) {
	for p := int(from) + 1; p+walRecyclableHead <= len(b); {
		enc := b[p+6]
		head := walRecyclableHead
		if enc >= 9 && enc <= 12 {
			head = walSyncHead
		} else if enc < 5 || enc > 8 {
			p++
			continue
		}
		length := int(binary.LittleEndian.Uint16(b[p+4:]))
		end := p + head + length
		if end > len(b) || p%walBlockSize+head+length > walBlockSize ||
			binary.LittleEndian.Uint32(b[p+7:]) != logNum {
			p++
			continue
		}
		c := crc32.Update(0, crcTable, b[p+6:end])
		if binary.LittleEndian.Uint32(b[p:]) != (c>>15|c<<17)+0xa282ead8 { // pebble/v2/internal/crc: masked CRC-32C
			p++
			continue
		}
		n++
		if enc == 5 || enc == 6 || enc == 9 || enc == 10 { // recyclable and sync full and first chunks
			records++
		}
		if head == walSyncHead {
			synced = max(synced, int64(binary.LittleEndian.Uint64(b[p+11:])))
		}
		p = end
	}
	return n, records, synced
}

// describeTail says what the bytes after the last complete batch are, when no intact chunk of
// this log follows them, and whether they are an incomplete record.
func describeTail(tail []byte, at int64, logNum uint32) (string, bool) {
	// A chunk header never starts in the last bytes of a block (they are zero padding).
	h := tail
	if rem := walBlockSize - at%walBlockSize; rem < walRecyclableHead && int64(len(h)) > rem {
		h = h[rem:]
	}
	if len(h) > 7 && h[6] >= 5 && h[6] <= 12 {
		// Recyclable and sync encodings carry the log number, little-endian, at bytes 7..10.
		var num [4]byte
		k := copy(num[:], h[7:min(len(h), 11)])
		next := binary.LittleEndian.AppendUint32(nil, logNum+1) // the end-of-log trailer's number
		own := binary.LittleEndian.AppendUint32(nil, logNum)
		switch {
		case bytes.Equal(num[:k], next[:k]) && len(tail) <= walSyncHead:
			return "a damaged end-of-log marker written at close (nothing lost)", false
		case !bytes.Equal(num[:k], own[:k]) && !bytes.Equal(num[:k], next[:k]):
			return "leftovers of a recycled WAL file (nothing lost)", false
		}
	}
	for _, c := range tail {
		if c != 0 {
			return "an incomplete record: a write cut short by a crash, or damage to the last record", true
		}
	}
	return "zeroes (nothing lost)", false
}

// openPebble opens pebble in dir, reporting and (for damaged synced data in the newest WAL)
// salvaging what recovery had to skip.
//
// A new store is opened twice: pebble creates the first WAL of a new database before it
// ratchets the format to Options.FormatMajorVersion (open.go: manager.Create, then
// ratchetFormatMajorVersionLocked), and a log writer decides once, at creation, whether to
// write sync offsets (record.NewLogWriterWithConfig: WriteWALSyncOffsets). Without the reopen,
// the first WAL of every new store would lack them.
// rep is inspectWAL's report on dir.
func openPebble(dir string, g *guardFS, sink *pebbleSink, rep *walReport) (*pebble.DB, *walReport, error) {
	fresh := !hasManifest(dir)
	pdb, rep, err := openPebbleOnce(dir, g, sink, rep)
	if err != nil || !fresh {
		return pdb, rep, err
	}
	if err := pdb.Close(); err != nil {
		return nil, nil, fmt.Errorf("store: open %s: %w", dir, err)
	}
	sink.log.Debug("new store created; reopening so that its WAL carries sync offsets", "dir", dir,
		"format", pebble.FormatNewest.String())
	rep, _ = inspectWAL(dir)
	return openPebbleOnce(dir, g, sink, rep)
}

// openGrace is how long pebble.Open may still take once a write failed while it runs.
const openGrace = 200 * time.Millisecond

// pebbleOpen runs pebble.Open and fails when a write fails while it runs. pebble.Open waits for
// the flush of the WALs it replayed, and retries a failed flush forever (see guardFS): on a
// full disk it would never return. So once a write failed, pebble.Open gets openGrace to
// return; after that the store gives up on it: it is left to fail slowly (modeAbandon), muted,
// holding its lock, and the process is expected to exit on the error.
func pebbleOpen(dir string, opts *pebble.Options, g *guardFS, sink *pebbleSink) (*pebble.DB, error) {
	failed := make(chan error, 1)
	g.setOnError(func(op, path string, err error, _ bool) {
		select {
		case failed <- fmt.Errorf("%s %s: %w", op, filepath.Base(path), err):
		default:
		}
	})
	defer g.setOnError(nil)
	type result struct {
		pdb *pebble.DB
		err error
	}
	ch := make(chan result, 1)
	go func() {
		pdb, err := pebble.Open(dir, opts)
		ch <- result{pdb, err}
	}()
	writeFailed := func(err error) error {
		return fmt.Errorf("store: data directory %s cannot be written: %w", dir, err)
	}
	var r result
	select {
	case r = <-ch:
		select {
		case err := <-failed:
			if r.pdb != nil {
				g.setMode(modeAbort)
				_ = r.pdb.Close()
			}
			return nil, writeFailed(err)
		default:
		}
	case err := <-failed:
		t := time.NewTimer(openGrace)
		defer t.Stop()
		select {
		case r = <-ch:
			if r.pdb != nil {
				g.setMode(modeAbort)
				_ = r.pdb.Close()
			}
		case <-t.C:
			sink.muted.Store(true)
			g.setMode(modeAbandon)
			go func() {
				if r := <-ch; r.pdb != nil {
					_ = r.pdb.Close()
				}
			}()
		}
		return nil, writeFailed(err)
	}
	if r.err == nil {
		if err := sink.fatalErr(); err != nil {
			g.setMode(modeAbort)
			_ = r.pdb.Close()
			return nil, writeFailed(err)
		}
	}
	return r.pdb, r.err
}

func hasManifest(dir string) bool {
	m, _ := filepath.Glob(filepath.Join(dir, "MANIFEST-*"))
	return len(m) > 0
}

func openPebbleOnce(dir string, g *guardFS, sink *pebbleSink, rep *walReport) (*pebble.DB, *walReport, error) {
	log := sink.log
	if rep != nil && rep.damaged() {
		rep.saved = rep.path + ".damaged-" + time.Now().UTC().Format("20060102T150405.000000000Z")
		if err := copyFile(rep.path, rep.saved); err != nil {
			return nil, nil, fmt.Errorf("store: open %s: keeping a copy of the damaged WAL %s: %w", dir, rep.path, err)
		}
	}
	opts := pebbleOptions(g, sink)
	// pebble holds its own reference to the block cache; ours goes once it is open (or not).
	defer opts.Cache.Unref()
	pdb, err := pebbleOpen(dir, opts, g, sink)
	if err != nil && pebble.IsCorruptionError(err) && rep != nil && rep.refused {
		log.Error("pebble refused the damaged WAL; truncating it at the damaged record",
			"wal", rep.path, "offset", rep.stopAt, "error", err.Error())
		if terr := truncateFile(rep.path, rep.stopAt); terr != nil {
			return nil, nil, fmt.Errorf("store: open %s: %w (truncating the damaged WAL failed: %v)", dir, err, terr)
		}
		pdb, err = pebbleOpen(dir, opts, g, sink)
	}
	if err != nil {
		if strings.HasPrefix(err.Error(), "store: ") {
			return nil, nil, err
		}
		if found := diagnose(dir); found != "" {
			return nil, nil, fmt.Errorf("store: open %s: %s: %w", dir, found, err)
		}
		return nil, nil, fmt.Errorf("store: open %s: %w", dir, err)
	}
	return pdb, rep, nil
}

// diagnose names what it finds damaged in dir after pebble refused to open it: WALs other than
// the newest that do not end cleanly (pebble requires they do), and the newest OPTIONS file
// when it does not parse. "" when it finds nothing.
func diagnose(dir string) string {
	var found []string
	if logs, err := wal.Scan(wal.Dir{FS: vfs.Default, Dirname: dir}); err == nil {
		for i, ll := range logs {
			if i == len(logs)-1 || ll.NumSegments() != 1 {
				continue
			}
			_, path := ll.SegmentLocation(0)
			rr := ll.OpenForRead()
			records := 0
			for {
				_, off, err := rr.NextRecord()
				if err == nil {
					records++
					continue
				}
				if !errors.Is(err, io.EOF) {
					found = append(found, fmt.Sprintf("WAL %s is damaged at offset %d after %d records (%v); only the newest WAL may end uncleanly",
						filepath.Base(path), off.Physical, records, err))
				}
				break
			}
			_ = rr.Close()
		}
	}
	opts, _ := filepath.Glob(filepath.Join(dir, "OPTIONS-*"))
	if len(opts) > 0 {
		slices.Sort(opts) // zero-padded file numbers: the last is the newest
		newest := opts[len(opts)-1]
		if b, err := os.ReadFile(newest); err != nil {
			found = append(found, fmt.Sprintf("%s cannot be read (%v)", filepath.Base(newest), err))
		} else if err := (&pebble.Options{}).Parse(string(b), nil); err != nil {
			found = append(found, fmt.Sprintf("%s is damaged (%v); pebble writes a new one at every start, so moving it aside lets the store open",
				filepath.Base(newest), err))
		}
	}
	return strings.Join(found, "; ")
}

func truncateFile(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
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

// blockCacheSize is the size of pebble's block cache.
const blockCacheSize = 64 << 20

// pebbleOptions configures pebble: it writes through g, its log lines and events go to sink.
func pebbleOptions(g *guardFS, sink *pebbleSink) *pebble.Options {
	o := &pebble.Options{
		FS: g,
		// WAL sync chunks (FormatWALSyncChunks and later) let replay tell a torn tail from
		// damaged synced data; see above.
		FormatMajorVersion: pebble.FormatNewest,
		// Reading a spilled queue back looks up each entry's message by key: bloom filters let
		// a point lookup skip the tables that cannot hold the key, and the block cache keeps
		// the decompressed blocks of a queue being drained (pebble's default is 8 MiB, no filters).
		Cache:         pebble.NewCache(blockCacheSize),
		Logger:        sink,
		EventListener: sink.listener(),
	}
	for i := range o.Levels {
		o.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	return o
}
