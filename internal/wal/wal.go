// Package wal is a write-ahead log in a data directory: the forwarder's persistent
// queue. Records are appended to segment files, each record framed with its length, its
// index and a CRC32C checksum. Append returns only once the record is on disk (fsync),
// and concurrent appends share one fsync (group commit). Ack commits an index: every
// record up to it is done, and segments holding only done records are deleted. Replay
// reads what was not yet committed, after a restart. Corrupt or truncated records are
// detected by their checksum, reported (slog and a counter) and skipped past; the rest
// of the log survives. Disk use is bounded: at the bound Append refuses with ErrFull.
package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/stwbridge/stwbridge/internal/options"
)

// Defaults.
const (
	// DefaultMaxBytes bounds the log's total size on disk, in bytes (1 GiB).
	DefaultMaxBytes = 1 << 30
	// DefaultSegmentBytes is the size, in bytes, past which a new segment file is started (16 MiB).
	DefaultSegmentBytes = 16 << 20
	// DefaultMaxRecordBytes bounds one record's payload, in bytes (32 MiB).
	DefaultMaxRecordBytes = 32 << 20
)

// headerLen is the record frame header: payload length (u32), index (u64), CRC32C (u32)
// of the first 12 header bytes and the payload. All little-endian.
const headerLen = 16

const (
	segmentSuffix = ".wal"
	commitFile    = "commit"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrFull is returned by Append when the record would take the log past its MaxBytes
// bound. Forward or Ack records to free space; the caller should refuse its sender with
// a retryable error.
var ErrFull = errors.New("wal: log is full (max_bytes reached): records are not being acknowledged fast enough; retry later or raise the bound")

// ErrTooLarge is returned by Append for a payload larger than MaxRecordBytes.
var ErrTooLarge = errors.New("wal: record larger than max_record_bytes")

// ErrClosed is returned by operations on a closed log.
var ErrClosed = errors.New("wal: log is closed")

// Options configure a log. The zero value of a field means its default.
type Options struct {
	// MaxBytes bounds the total size of the segment files, in bytes. Default DefaultMaxBytes.
	MaxBytes int64
	// SegmentBytes is the size, in bytes, past which a new segment is started.
	// Default DefaultSegmentBytes.
	SegmentBytes int64
	// MaxRecordBytes bounds one payload, in bytes. Default DefaultMaxRecordBytes.
	MaxRecordBytes int
	// Logger receives reports of corrupt or truncated records. Default slog.Default().
	Logger *slog.Logger
}

// Option sets a field of Options.
type Option func(*Options)

// WithMaxBytes bounds the log's size on disk, in bytes.
func WithMaxBytes(n int64) Option { return func(o *Options) { o.MaxBytes = n } }

// WithSegmentBytes sets the size, in bytes, past which a new segment file is started.
func WithSegmentBytes(n int64) Option { return func(o *Options) { o.SegmentBytes = n } }

// WithMaxRecordBytes bounds one record's payload, in bytes.
func WithMaxRecordBytes(n int) Option { return func(o *Options) { o.MaxRecordBytes = n } }

// WithLogger sets the logger for corruption reports.
func WithLogger(l *slog.Logger) Option { return func(o *Options) { o.Logger = l } }

// Stats are the log's counters and state.
type Stats struct {
	Appended       int64  // records appended since Open
	Syncs          int64  // fsyncs done for appends (group commits)
	Refused        int64  // appends refused because the log was full (ErrFull)
	CorruptRecords int64  // corrupt regions detected and skipped
	CorruptBytes   int64  // bytes skipped past in corrupt regions
	TruncatedTails int64  // torn records at the end of the log, cut at Open
	Bytes          int64  // bytes on disk in segment files
	Segments       int    // segment files on disk
	FirstIndex     uint64 // lowest index still in the log (0: empty)
	LastIndex      uint64 // highest index written (0: none)
	Committed      uint64 // highest acknowledged index
}

type segment struct {
	first uint64 // index the name announces (first record appended to it)
	last  uint64 // highest valid index in it (0: none)
	path  string
	size  int64
}

// WAL is a write-ahead log. It is safe for concurrent use.
type WAL struct {
	dir  string
	opts Options
	log  *slog.Logger

	mu        sync.Mutex
	closed    bool
	segs      []*segment // oldest first; the last one is being written
	f         *os.File   // the last segment, open for appending
	unsynced  []*os.File // rotated segments not yet fsynced (closed by the next sync)
	dirDirty  bool       // a segment was created since the last sync
	next      uint64     // index of the next record
	written   uint64     // highest index written to a file
	committed uint64
	bytes     int64
	buf       []byte

	syncMu  sync.Mutex // held by the group-commit leader during fsync
	durable atomic.Uint64

	appended, syncs, refused         atomic.Int64
	corrupt, corruptBytes, truncated atomic.Int64
}

// Open opens (creating if needed) the log in dir, checks every segment, cuts a torn
// record at the end, and is ready to Replay and Append.
func Open(dir string, opts ...Option) (*WAL, error) {
	o := options.Apply(opts)
	options.Positive(&o.MaxBytes, DefaultMaxBytes)
	options.Positive(&o.SegmentBytes, DefaultSegmentBytes)
	options.Positive(&o.MaxRecordBytes, DefaultMaxRecordBytes)
	options.NonZero(&o.Logger, slog.Default())
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("wal: create data directory: %w", err)
	}
	w := &WAL{dir: dir, opts: o, log: o.Logger.With("wal", dir)}
	w.committed = w.readCommit()
	if err := w.load(); err != nil {
		return nil, err
	}
	return w, nil
}

// readCommit reads the committed index; a missing or damaged file means 0 (replay all).
func (w *WAL) readCommit() uint64 {
	b, err := os.ReadFile(filepath.Join(w.dir, commitFile))
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			w.log.Warn("wal: cannot read commit file; replaying everything retained", "err", err)
		}
		return 0
	}
	if len(b) != 12 || crc32.Checksum(b[:8], castagnoli) != binary.LittleEndian.Uint32(b[8:]) {
		w.log.Warn("wal: commit file is damaged; replaying everything retained")
		w.corrupt.Add(1)
		return 0
	}
	return binary.LittleEndian.Uint64(b[:8])
}

func (w *WAL) load() error {
	ents, err := os.ReadDir(w.dir)
	if err != nil {
		return fmt.Errorf("wal: read data directory: %w", err)
	}
	for _, e := range ents {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, segmentSuffix) {
			continue
		}
		first, err := strconv.ParseUint(strings.TrimSuffix(name, segmentSuffix), 10, 64)
		if err != nil {
			w.log.Warn("wal: ignoring file with a non-segment name", "file", name)
			continue
		}
		w.segs = append(w.segs, &segment{first: first, path: filepath.Join(w.dir, name)})
	}
	sort.Slice(w.segs, func(i, j int) bool { return w.segs[i].first < w.segs[j].first })
	w.next = 1
	for i, s := range w.segs {
		data, err := os.ReadFile(s.path)
		if err != nil {
			return fmt.Errorf("wal: read segment: %w", err)
		}
		lastSeg := i == len(w.segs)-1
		end := w.scan(s, data, w.next, true, lastSeg, func(idx uint64, _ []byte) bool {
			s.last = idx
			return true
		})
		if lastSeg && end < int64(len(data)) {
			if err := os.Truncate(s.path, end); err != nil {
				return fmt.Errorf("wal: cut torn record at end of %s: %w", s.path, err)
			}
			data = data[:end]
		}
		s.size = int64(len(data))
		w.bytes += s.size
		if s.last >= w.next {
			w.next = s.last + 1
		}
		if s.first > w.next { // an empty segment named past the records: keep numbering
			w.next = s.first
		}
	}
	if w.committed >= w.next {
		w.next = w.committed + 1
	}
	w.written = w.next - 1
	w.durable.Store(w.written)
	w.dropAcked()
	if len(w.segs) == 0 {
		return w.newSegment()
	}
	s := w.segs[len(w.segs)-1]
	f, err := os.OpenFile(s.path, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("wal: open segment for appending: %w", err)
	}
	w.f = f
	return nil
}

// scan walks the records in data, calling fn for each valid record whose index is at
// least minIndex, until fn returns false. Damaged regions are skipped to the next valid
// record (counted and logged when report is set). It returns the end offset of the last
// valid record; in the last segment, bytes after it are a torn tail.
func (w *WAL) scan(seg *segment, data []byte, minIndex uint64, report, lastSeg bool, fn func(uint64, []byte) bool) int64 {
	var off, end int64
	last := minIndex - 1
	n := int64(len(data))
	path := seg.path
	// Indexes grow by one per record of at least headerLen bytes, so a record at off
	// cannot have an index past base+1+off/headerLen: random bytes are rejected cheaply
	// while looking for the next valid record.
	base := max(last, seg.first-1)
	for off < n {
		if idx, plen, ok := w.recordAt(data, off, last, base+1+uint64(off)/headerLen); ok {
			if !fn(idx, data[off+headerLen:off+headerLen+plen]) {
				return end
			}
			last = idx
			off += headerLen + plen
			end = off
			continue
		}
		// Damaged: look for the next valid record.
		bad := off
		off++
		for off < n {
			if _, _, ok := w.recordAt(data, off, last, base+1+uint64(off)/headerLen); ok {
				break
			}
			off++
		}
		skipped := off - bad
		if off >= n && lastSeg {
			if report {
				w.truncated.Add(1)
				w.log.Warn("wal: torn record at end of log cut (crash during write); earlier records intact",
					"segment", filepath.Base(path), "offset", bad, "bytes", skipped)
			}
			return end
		}
		if report {
			w.corrupt.Add(1)
			w.corruptBytes.Add(skipped)
			w.log.Error("wal: corrupt record skipped; records after it are kept",
				"segment", filepath.Base(path), "offset", bad, "bytes", skipped)
		}
	}
	return end
}

// recordAt reports whether a valid record with an index in (after, maxIdx] starts at off.
func (w *WAL) recordAt(data []byte, off int64, after, maxIdx uint64) (idx uint64, plen int64, ok bool) {
	if int64(len(data))-off < headerLen {
		return 0, 0, false
	}
	h := data[off : off+headerLen]
	plen = int64(binary.LittleEndian.Uint32(h[0:4]))
	idx = binary.LittleEndian.Uint64(h[4:12])
	if idx <= after || idx > maxIdx || plen > int64(w.opts.MaxRecordBytes) || off+headerLen+plen > int64(len(data)) {
		return 0, 0, false
	}
	c := crc32.Update(crc32.Checksum(h[:12], castagnoli), castagnoli, data[off+headerLen:off+headerLen+plen])
	if c != binary.LittleEndian.Uint32(h[12:16]) {
		return 0, 0, false
	}
	return idx, plen, true
}

// newSegment starts a segment for the record w.next. Callers hold mu (or are in Open).
func (w *WAL) newSegment() error {
	path := filepath.Join(w.dir, fmt.Sprintf("%020d%s", w.next, segmentSuffix))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("wal: create segment: %w", err)
	}
	if w.f != nil {
		w.unsynced = append(w.unsynced, w.f)
	}
	w.f = f
	w.segs = append(w.segs, &segment{first: w.next, path: path})
	w.dirDirty = true
	return nil
}

// Append writes payload as the next record and returns its index once the record is
// durable (fsynced, shared with concurrent appends). It returns ErrFull at the size
// bound and ErrTooLarge for a payload past MaxRecordBytes; nothing is written then.
func (w *WAL) Append(payload []byte) (uint64, error) {
	if len(payload) > w.opts.MaxRecordBytes {
		return 0, fmt.Errorf("%w: %d bytes > %d", ErrTooLarge, len(payload), w.opts.MaxRecordBytes)
	}
	recLen := int64(headerLen + len(payload))
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return 0, ErrClosed
	}
	if w.bytes+recLen > w.opts.MaxBytes {
		w.mu.Unlock()
		w.refused.Add(1)
		return 0, ErrFull
	}
	cur := w.segs[len(w.segs)-1]
	if cur.size > 0 && cur.size+recLen > w.opts.SegmentBytes {
		if err := w.newSegment(); err != nil {
			w.mu.Unlock()
			return 0, err
		}
		cur = w.segs[len(w.segs)-1]
	}
	idx := w.next
	w.buf = append(w.buf[:0], make([]byte, headerLen)...)
	binary.LittleEndian.PutUint32(w.buf[0:4], uint32(len(payload)))
	binary.LittleEndian.PutUint64(w.buf[4:12], idx)
	w.buf = append(w.buf, payload...)
	c := crc32.Update(crc32.Checksum(w.buf[:12], castagnoli), castagnoli, payload)
	binary.LittleEndian.PutUint32(w.buf[12:16], c)
	n, err := w.f.Write(w.buf)
	cur.size += int64(n)
	w.bytes += int64(n)
	if err != nil {
		// A partial write leaves a torn record that Open cuts or skips; start afresh.
		w.mu.Unlock()
		return 0, fmt.Errorf("wal: write record: %w", err)
	}
	w.next++
	w.written = idx
	cur.last = idx
	w.mu.Unlock()
	w.appended.Add(1)
	return idx, w.waitDurable(idx)
}

// waitDurable returns once record idx is fsynced. The first waiter becomes the leader
// and syncs everything written so far; the others wait on syncMu and usually find their
// record already covered.
func (w *WAL) waitDurable(idx uint64) error {
	if w.durable.Load() >= idx {
		return nil
	}
	w.syncMu.Lock()
	defer w.syncMu.Unlock()
	if w.durable.Load() >= idx {
		return nil
	}
	return w.syncLocked()
}

// syncLocked fsyncs everything written so far. Callers hold syncMu.
func (w *WAL) syncLocked() error {
	w.mu.Lock()
	target := w.written
	f := w.f
	old := w.unsynced
	w.unsynced = nil
	dirDirty := w.dirDirty
	w.dirDirty = false
	w.mu.Unlock()
	var errs []error
	for _, o := range old {
		errs = append(errs, o.Sync(), o.Close())
	}
	if f != nil {
		errs = append(errs, f.Sync())
	}
	if dirDirty {
		errs = append(errs, syncDir(w.dir))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("wal: fsync: %w", err)
	}
	w.syncs.Add(1)
	w.durable.Store(target)
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Replay calls fn, in index order, for every record after the committed index, and
// stops at the first error fn returns. Damaged records are skipped (they were counted
// at Open). Call it after Open, before serving; records appended meanwhile may or may
// not be seen.
func (w *WAL) Replay(fn func(index uint64, payload []byte) error) error {
	w.mu.Lock()
	segs := make([]segment, len(w.segs))
	for i, s := range w.segs {
		segs[i] = *s
	}
	from := w.committed + 1
	w.mu.Unlock()
	for _, s := range segs {
		if s.last != 0 && s.last < from {
			continue
		}
		data, err := os.ReadFile(s.path)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) { // deleted by a concurrent Ack
				continue
			}
			return fmt.Errorf("wal: replay: %w", err)
		}
		if int64(len(data)) > s.size {
			data = data[:s.size]
		}
		var ferr error
		w.scan(&s, data, 1, false, false, func(idx uint64, p []byte) bool {
			if idx < from {
				return true
			}
			ferr = fn(idx, p)
			return ferr == nil
		})
		if ferr != nil {
			return ferr
		}
	}
	return nil
}

// Ack commits index: every record up to and including it is done and need not be
// replayed. Segments that hold only committed records are deleted. The committed index
// is persisted (fsynced), so call Ack per batch, not per record.
func (w *WAL) Ack(index uint64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrClosed
	}
	if index > w.written {
		return fmt.Errorf("wal: ack of index %d past the last written record %d", index, w.written)
	}
	if index <= w.committed {
		return nil
	}
	w.committed = index
	if err := w.writeCommit(); err != nil {
		return err
	}
	if index == w.written && w.segs[len(w.segs)-1].size > 0 {
		// Everything is acknowledged: start a fresh segment so the current one can go.
		if err := w.newSegment(); err != nil {
			return err
		}
	}
	w.dropAcked()
	return nil
}

func (w *WAL) writeCommit() error {
	var b [12]byte
	binary.LittleEndian.PutUint64(b[:8], w.committed)
	binary.LittleEndian.PutUint32(b[8:], crc32.Checksum(b[:8], castagnoli))
	tmp := filepath.Join(w.dir, commitFile+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("wal: write commit: %w", err)
	}
	_, err = f.Write(b[:])
	err = errors.Join(err, f.Sync(), f.Close())
	if err == nil {
		err = os.Rename(tmp, filepath.Join(w.dir, commitFile))
	}
	if err != nil {
		return fmt.Errorf("wal: write commit: %w", err)
	}
	return nil
}

// dropAcked deletes fully committed segments other than the one being written.
// Callers hold mu (or are in Open).
func (w *WAL) dropAcked() {
	for len(w.segs) > 1 {
		s := w.segs[0]
		// A segment is done when the next segment starts at or below committed+1.
		if w.segs[1].first > w.committed+1 {
			break
		}
		if err := os.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			w.log.Warn("wal: cannot delete acknowledged segment", "segment", s.path, "err", err)
			break
		}
		w.bytes -= s.size
		w.segs = w.segs[1:]
	}
}

// Stats returns the log's counters and state.
func (w *WAL) Stats() Stats {
	w.mu.Lock()
	st := Stats{
		Bytes:     w.bytes,
		Segments:  len(w.segs),
		LastIndex: w.written,
		Committed: w.committed,
	}
	if w.written > w.committed {
		st.FirstIndex = w.committed + 1
	}
	w.mu.Unlock()
	st.Appended = w.appended.Load()
	st.Syncs = w.syncs.Load()
	st.Refused = w.refused.Load()
	st.CorruptRecords = w.corrupt.Load()
	st.CorruptBytes = w.corruptBytes.Load()
	st.TruncatedTails = w.truncated.Load()
	return st
}

// Close syncs and closes the log. Appends after Close return ErrClosed.
func (w *WAL) Close() error {
	w.syncMu.Lock()
	defer w.syncMu.Unlock()
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	w.mu.Unlock()
	err := w.syncLocked()
	w.mu.Lock()
	err = errors.Join(err, w.f.Close())
	w.f = nil
	w.mu.Unlock()
	return err
}
