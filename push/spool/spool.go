package spool

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// DropReason says why the spool discarded records.
type DropReason string

const (
	// DropSpoolFull: the oldest records were evicted to respect MaxBytes.
	DropSpoolFull DropReason = "spool_full"
	// DropCorrupt: records in a region of a segment that did not verify
	// and was skipped. The count is exact when the region's length prefixes
	// still chain from its start to the next valid record (the usual case:
	// damaged payloads or checksums); otherwise the region counts as one
	// record, a lower bound, and Stats.CorruptInexact says how often that
	// happened.
	DropCorrupt DropReason = "corrupt_spool"
)

// HardMaxRecordBytes is the largest payload a spool accepts whatever the options.
const HardMaxRecordBytes = 64 << 20

const (
	segSuffix = ".seg"
	readChunk = 256 << 10
)

// ErrClosed is returned by methods called after Close.
var ErrClosed = errors.New("spool: closed")

// ErrTooLarge is returned by Append for a payload that could never fit the budget.
var ErrTooLarge = errors.New("spool: record larger than the spool budget or HardMaxRecordBytes")

// Options configure a Spool. Zero values take the documented defaults.
type Options struct {
	// MaxBytes bounds the live record bytes (default 256 MiB).
	MaxBytes int64
	// SegmentBytes is the size at which a new segment file is started
	// (default MaxBytes/16, clamped to [4 KiB, 16 MiB]).
	SegmentBytes int64
	// NoSync skips fsync of segments and cursor (tests and benchmarks only).
	NoSync bool
	// OnDrop, when set, is told about every discarded record (reason, count).
	// It runs with the spool locked and must not call the spool.
	OnDrop func(reason DropReason, n int)
	// Logger, when set, gets one warning per damaged file: its path, the
	// file offset of the first damage and the records lost (default: none).
	Logger *slog.Logger
}

// Record is one payload handed out by Read. Off identifies it for Ack.
type Record struct {
	Off  int64
	Data []byte
}

// Stats is a snapshot of a spool's state and counters.
type Stats struct {
	Records        int   // records appended and not yet consumed (unread or held by a reader)
	Bytes          int64 // live bytes, at most Options.MaxBytes
	Segments       int   // segment files on disk
	DroppedFull    int64 // records evicted unread because of MaxBytes
	CorruptRegions int64 // regions skipped because they did not verify
	CorruptBytes   int64 // bytes in those regions
	CorruptRecords int64 // records lost in those regions (reported as DropCorrupt)
	CorruptInexact int64 // regions whose record count is unknown, each counted as one record
}

type segment struct{ start, size int64 }

func (g segment) end() int64 { return g.start + g.size }

type flight struct {
	off, end int64
	done     bool
}

// Spool is an on-disk FIFO of records; see the package documentation.
// All methods are safe for concurrent use.
type Spool struct {
	dir  string
	opts Options

	mu          sync.Mutex
	closed      bool
	segs        []segment // ascending start; the last one is being written
	w           *os.File  // writer of the last segment
	wbuf        []byte
	tail, read  int64
	inflight    []flight           // records in [head, read), in order
	orphans     map[int64]struct{} // records evicted while a reader held them
	skip        []int64            // records beyond read already consumed in an earlier run
	unread      int                // valid records in [read, tail) not in skip
	outstanding int                // read, not acknowledged (including orphans)
	stats       Stats
	gen         uint64

	rf            *os.File // reader file cache
	rfSeg         int64
	rbuf          []byte // cached bytes [rbufOff, rbufOff+len(rbuf)) of segment rbufSeg
	rbufOff       int64
	rbufSeg       int64
	rbufBacking   []byte
	commitMu      sync.Mutex
	writtenGen    uint64
	maxPayloadCap int

	// counted holds the start of every corrupt region already counted, so
	// that reading it again (after Rewind) does not count it twice.
	counted map[int64]struct{}
	// pending collects the damage found by Open, one report per file.
	pending map[string]*damage
}

// damage is what Open found wrong with one file, for a single log line.
type damage struct {
	off      int64 // file offset of the first damage
	what     string
	records  int64
	bytes    int64
	inexact  bool
	repaired bool // the segment header was rewritten
}

// Open opens (creating if needed) the spool in dir, validates its segments,
// truncates a torn last record and resumes from the cursor.
func Open(dir string, opts Options) (*Spool, error) {
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = 256 << 20
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.SegmentBytes <= 0 {
		opts.SegmentBytes = min(max(opts.MaxBytes/16, 4<<10), 16<<20)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("spool: create directory %s (check permissions or the spool path): %w", dir, err)
	}
	s := &Spool{
		dir: dir, opts: opts, orphans: map[int64]struct{}{},
		counted: map[int64]struct{}{}, pending: map[string]*damage{},
		rfSeg: -1, rbufSeg: -1,
		maxPayloadCap: int(min(int64(HardMaxRecordBytes), opts.MaxBytes-recHeaderLen)),
	}
	err := s.load()
	s.flushDamage()
	if err != nil {
		s.closeFiles()
		return nil, err
	}
	return s, nil
}

func segName(start int64) string { return fmt.Sprintf("%016x%s", start, segSuffix) }

func (s *Spool) segPath(start int64) string { return filepath.Join(s.dir, segName(start)) }

func (s *Spool) drop(reason DropReason, n int) {
	if n > 0 && s.opts.OnDrop != nil {
		s.opts.OnDrop(reason, n)
	}
}

// corrupt counts a damaged region of the file at path (file offset off,
// n bytes) that held records records (exact unless inexact), and reports
// it: at once, or as part of the file's single line when Open is loading.
func (s *Spool) corrupt(path string, off, n int64, records int, inexact bool, what string) {
	s.stats.CorruptRegions++
	s.stats.CorruptBytes += n
	s.stats.CorruptRecords += int64(records)
	if inexact {
		s.stats.CorruptInexact++
	}
	s.drop(DropCorrupt, records)
	if s.pending != nil {
		d := s.pending[path]
		if d == nil {
			d = &damage{off: off, what: what}
			s.pending[path] = d
		}
		d.records += int64(records)
		d.bytes += n
		d.inexact = d.inexact || inexact
		return
	}
	s.logDamage(path, &damage{off: off, what: what, records: int64(records), bytes: n, inexact: inexact})
}

func (s *Spool) logDamage(path string, d *damage) {
	lost := strconv.FormatInt(d.records, 10)
	if d.inexact {
		lost = "at least " + lost
	}
	s.opts.Logger.Warn("spool: damaged file, skipped what did not verify",
		"path", path, "offset", d.off, "damage", d.what, "records_lost", lost,
		"bytes_skipped", d.bytes, "header_repaired", d.repaired)
}

// flushDamage logs what Open found, one line per file in name order, and
// from then on reports damage as it is found.
func (s *Spool) flushDamage() {
	paths := make([]string, 0, len(s.pending))
	for p := range s.pending {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		s.logDamage(p, s.pending[p])
	}
	s.pending = nil
}

// corruptRegion counts the region [pos, next) of segment g, once.
func (s *Spool) corruptRegion(g segment, pos, next int64) {
	if _, ok := s.counted[pos]; ok {
		return
	}
	s.counted[pos] = struct{}{}
	records, exact := s.regionRecords(g, pos, next)
	s.corrupt(s.segPath(g.start), segHeaderLen+pos-g.start, next-pos, records, !exact, "record does not verify")
}

// regionRecords returns how many records the corrupt region [pos, next) of
// segment g held: exact when the length prefixes chain from pos to next,
// else one (at least one record was there to be damaged).
func (s *Spool) regionRecords(g segment, pos, next int64) (int, bool) {
	b, err := s.bytesAt(g, pos, next-pos)
	if err != nil {
		return 1, false
	}
	n := 0
	for q := 0; q < len(b); n++ {
		if len(b)-q < recHeaderLen {
			return 1, false
		}
		l, ok := recordLen(b[q:], s.maxPayloadCap, int64(len(b)-q))
		if !ok {
			return 1, false
		}
		q += recHeaderLen + l
	}
	return max(n, 1), true
}

func (s *Spool) load() error {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("spool: list %s: %w", s.dir, err)
	}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, segSuffix) {
			continue
		}
		start, perr := strconv.ParseInt(strings.TrimSuffix(name, segSuffix), 16, 64)
		if perr != nil || start < 0 {
			continue // not ours; leave it alone
		}
		path := filepath.Join(s.dir, name)
		size, ok, err := checkSegmentFile(path)
		if err != nil {
			// Too short to hold a record, or unreadable: nothing to recover.
			s.corrupt(path, 0, size, 0, false, err.Error())
			_ = os.Remove(path)
			continue
		}
		if !ok {
			// Records are framed and checksummed on their own: keep them,
			// and let the record checks below deal with any damage beyond
			// the header.
			s.corrupt(path, 0, segHeaderLen, 0, false, "bad segment header")
			s.pending[path].repaired = repairHeader(path) == nil
		}
		s.segs = append(s.segs, segment{start: start, size: size})
	}
	sort.Slice(s.segs, func(i, j int) bool { return s.segs[i].start < s.segs[j].start })
	for i := 0; i+1 < len(s.segs); i++ { // overlapping segments: trust the later start
		if over := s.segs[i].end() - s.segs[i+1].start; over > 0 {
			g := s.segs[i]
			g.size -= over
			s.corrupt(s.segPath(g.start), segHeaderLen+g.size, over, 1, true, "segment overlaps the next one")
			s.segs[i] = g
		}
	}

	var cur cursorState
	if b, rerr := os.ReadFile(filepath.Join(s.dir, cursorName)); rerr == nil {
		if cur, err = decodeCursor(b); err != nil {
			cur = cursorState{} // restart from the oldest data: duplicates, not loss
			s.corrupt(filepath.Join(s.dir, cursorName), 0, int64(len(b)), 0, false, "bad cursor, reading again from the oldest record")
		}
	}
	head := cur.head
	if len(s.segs) > 0 {
		head = min(max(head, s.segs[0].start), s.segs[len(s.segs)-1].end())
		s.tail = s.segs[len(s.segs)-1].end()
	} else {
		s.tail = head
	}
	s.read = head
	for _, off := range cur.skip {
		if off >= head {
			s.skip = append(s.skip, off)
		}
	}

	// Count the live records and find the true end of the last segment.
	validEnd := s.read
	skip := s.skip
	for pos := s.read; pos < s.tail; {
		off, _, next, st := s.recordAt(pos, true)
		if st == recEnd {
			break
		}
		if st == recOK {
			for len(skip) > 0 && skip[0] < off {
				skip = skip[1:]
			}
			if len(skip) > 0 && skip[0] == off {
				skip = skip[1:]
			} else {
				s.unread++
			}
			validEnd = next
		}
		pos = next
	}
	if len(s.segs) > 0 {
		last := &s.segs[len(s.segs)-1]
		if validEnd < last.start {
			validEnd = last.start
		}
		if validEnd < last.end() {
			// The loop above counted this region unless it lies before
			// the read position; new records will be written over it.
			s.corruptRegion(*last, validEnd, last.end())
			delete(s.counted, validEnd)
			if err := os.Truncate(s.segPath(last.start), segHeaderLen+validEnd-last.start); err != nil {
				return fmt.Errorf("spool: truncate torn segment %s: %w", s.segPath(last.start), err)
			}
			last.size = validEnd - last.start
			s.tail = validEnd
			s.rbuf, s.rbufSeg = nil, -1
		}
		f, err := os.OpenFile(s.segPath(last.start), os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			return fmt.Errorf("spool: open segment %s for append: %w", s.segPath(last.start), err)
		}
		s.w = f
	} else if err := s.newSegment(); err != nil {
		return err
	}
	s.trimSegments()
	return nil
}

// checkSegmentFile returns the record bytes of a segment file and whether
// its magic header is intact. It fails, with the file size when known, for
// a file that cannot be read or is too short to hold a header.
func checkSegmentFile(path string) (int64, bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, false, err
	}
	var m [segHeaderLen]byte
	if _, err := io.ReadFull(f, m[:]); err != nil {
		return fi.Size(), false, fmt.Errorf("segment shorter than its %d-byte header: %w", segHeaderLen, err)
	}
	return fi.Size() - segHeaderLen, string(m[:]) == segMagic, nil
}

// repairHeader rewrites the magic header of the segment at path.
func repairHeader(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteAt([]byte(segMagic), 0)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// newSegment starts a segment at the current tail and makes it the writer.
func (s *Spool) newSegment() error {
	path := s.segPath(s.tail)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o600)
	if err == nil {
		_, err = f.Write([]byte(segMagic))
		if err != nil {
			f.Close()
		}
	}
	if err != nil {
		return fmt.Errorf("spool: create segment %s (disk full or not writable?): %w", path, err)
	}
	s.w = f
	s.segs = append(s.segs, segment{start: s.tail})
	return nil
}

type recStatus int

const (
	recOK recStatus = iota
	recCorrupt
	recEnd
)

// segFor returns the index of the segment holding pos, moving pos forward
// over gaps between segments; ok is false at or past the tail.
func (s *Spool) segFor(pos int64) (int, int64, bool) {
	i := sort.Search(len(s.segs), func(i int) bool { return s.segs[i].end() > pos })
	if i == len(s.segs) {
		return 0, pos, false
	}
	return i, max(pos, s.segs[i].start), true
}

// bytesAt returns n bytes of segment g at logical pos, from the cache or disk.
func (s *Spool) bytesAt(g segment, pos int64, n int64) ([]byte, error) {
	if s.rbufSeg == g.start && pos >= s.rbufOff && pos+n <= s.rbufOff+int64(len(s.rbuf)) {
		return s.rbuf[pos-s.rbufOff:][:n], nil
	}
	if s.rf == nil || s.rfSeg != g.start {
		if s.rf != nil {
			s.rf.Close()
			s.rf = nil
		}
		f, err := os.Open(s.segPath(g.start))
		if err != nil {
			return nil, err
		}
		s.rf, s.rfSeg = f, g.start
	}
	want := min(max(n, readChunk), g.end()-pos)
	if int64(cap(s.rbufBacking)) < want {
		s.rbufBacking = make([]byte, want)
	}
	buf := s.rbufBacking[:want]
	s.rbuf, s.rbufSeg = nil, -1
	if _, err := s.rf.ReadAt(buf, segHeaderLen+pos-g.start); err != nil {
		return nil, err
	}
	s.rbuf, s.rbufOff, s.rbufSeg = buf, pos, g.start
	return buf[:n], nil
}

// recordAt decodes the record at or after pos. It returns the record's
// offset, its payload (valid until the next read), the offset after it and
// a status. A corrupt region is skipped (next = the following valid record
// or the segment end) and, when count is set, counted.
func (s *Spool) recordAt(pos int64, count bool) (off int64, payload []byte, next int64, st recStatus) {
	i, pos, ok := s.segFor(pos)
	if !ok {
		return pos, nil, s.tail, recEnd
	}
	g := s.segs[i]
	avail := g.end() - pos
	bad := func() (int64, []byte, int64, recStatus) {
		next := g.end()
		if rest, err := s.bytesAt(g, pos, avail); err == nil {
			next = pos + int64(resync(rest, s.maxPayloadCap))
		}
		if count {
			s.corruptRegion(g, pos, next)
		}
		return pos, nil, next, recCorrupt
	}
	if avail < recHeaderLen {
		return bad()
	}
	h, err := s.bytesAt(g, pos, recHeaderLen)
	if err != nil {
		return bad()
	}
	n, ok := recordLen(h, s.maxPayloadCap, avail)
	if !ok {
		return bad()
	}
	b, err := s.bytesAt(g, pos, recHeaderLen+int64(n))
	if err != nil || !recordValid(b) {
		return bad()
	}
	return pos, b[recHeaderLen:], pos + recHeaderLen + int64(n), recOK
}

func (s *Spool) head() int64 {
	if len(s.inflight) > 0 {
		return s.inflight[0].off
	}
	return s.read
}

// Append adds one record at the tail, evicting the oldest records first if
// the budget requires it.
func (s *Spool) Append(payload []byte) error {
	if len(payload) > s.maxPayloadCap {
		return fmt.Errorf("%w: %d bytes (budget %d)", ErrTooLarge, len(payload), s.opts.MaxBytes)
	}
	need := recHeaderLen + int64(len(payload))
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if s.tail-s.head()+need > s.opts.MaxBytes {
		s.evict(need)
	}
	last := &s.segs[len(s.segs)-1]
	if last.size > 0 && last.size+need > s.opts.SegmentBytes {
		if err := s.roll(); err != nil {
			return err
		}
		last = &s.segs[len(s.segs)-1]
	}
	s.wbuf = appendRecord(s.wbuf[:0], payload)
	if n, err := s.w.Write(s.wbuf); err != nil {
		if n > 0 { // never leave half a record behind a later one
			_ = s.w.Truncate(segHeaderLen + last.size)
		}
		return fmt.Errorf("spool: append to %s (disk full?): %w", s.segPath(last.start), err)
	}
	last.size += need
	s.tail += need
	s.unread++
	return nil
}

func (s *Spool) roll() error {
	if !s.opts.NoSync {
		if err := s.w.Sync(); err != nil {
			return fmt.Errorf("spool: sync segment in %s: %w", s.dir, err)
		}
	}
	if err := s.w.Close(); err != nil {
		return fmt.Errorf("spool: close segment in %s: %w", s.dir, err)
	}
	s.w = nil
	return s.newSegment()
}

// evict drops the oldest records until need more bytes fit the budget.
func (s *Spool) evict(need int64) {
	dropped := 0
	for s.tail-s.head()+need > s.opts.MaxBytes {
		if len(s.inflight) > 0 {
			f := s.inflight[0]
			s.inflight = s.inflight[1:]
			if !f.done {
				s.orphans[f.off] = struct{}{}
			}
			continue
		}
		if s.read >= s.tail {
			break
		}
		off, _, next, st := s.recordAt(s.read, true)
		s.read = next
		if st != recOK {
			continue
		}
		if s.popSkip(off) {
			continue
		}
		s.unread--
		dropped++
	}
	s.stats.DroppedFull += int64(dropped)
	s.drop(DropSpoolFull, dropped)
	s.trimSegments()
	s.gen++
}

// popSkip reports whether off is in the skip set, dropping stale entries.
func (s *Spool) popSkip(off int64) bool {
	for len(s.skip) > 0 && s.skip[0] < off {
		s.skip = s.skip[1:]
	}
	if len(s.skip) > 0 && s.skip[0] == off {
		s.skip = s.skip[1:]
		return true
	}
	return false
}

// trimSegments deletes segment files that lie wholly before the head.
func (s *Spool) trimSegments() {
	head := s.head()
	n := 0
	for n < len(s.segs)-1 && s.segs[n].end() <= head {
		start := s.segs[n].start
		if s.rfSeg == start && s.rf != nil {
			s.rf.Close()
			s.rf, s.rfSeg = nil, -1
		}
		if s.rbufSeg == start {
			s.rbuf, s.rbufSeg = nil, -1
		}
		_ = os.Remove(s.segPath(start))
		n++
	}
	s.segs = s.segs[n:]
	if n > 0 {
		for off := range s.counted {
			if off < s.segs[0].start {
				delete(s.counted, off)
			}
		}
	}
}

// Read returns up to maxRecords records (and, past the first, at most
// maxBytes of payload) from the read position, copying their payloads.
// It returns no records when everything appended has been read.
func (s *Spool) Read(maxRecords, maxBytes int) ([]Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	var out []Record
	bytes := 0
	for len(out) < maxRecords && s.read < s.tail {
		off, payload, next, st := s.recordAt(s.read, true)
		if st == recEnd {
			s.read = s.tail
			break
		}
		if st == recCorrupt {
			s.read = next
			continue
		}
		if s.popSkip(off) {
			s.inflight = append(s.inflight, flight{off: off, end: next, done: true})
			s.read = next
			continue
		}
		if len(out) > 0 && bytes+len(payload) > maxBytes {
			break
		}
		bytes += len(payload)
		out = append(out, Record{Off: off, Data: slices.Clone(payload)})
		s.inflight = append(s.inflight, flight{off: off, end: next})
		s.read = next
		s.unread--
		s.outstanding++
	}
	s.popDone()
	return out, nil
}

func (s *Spool) popDone() {
	n := 0
	for n < len(s.inflight) && s.inflight[n].done {
		n++
	}
	if n > 0 {
		s.inflight = s.inflight[n:]
		s.trimSegments()
		s.gen++
	}
}

// Ack marks the records at the given offsets (from Read) consumed and
// durably records that. Unknown offsets are ignored.
func (s *Spool) Ack(offs ...int64) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	for _, off := range offs {
		if _, ok := s.orphans[off]; ok {
			delete(s.orphans, off)
			s.outstanding--
			continue
		}
		i := sort.Search(len(s.inflight), func(i int) bool { return s.inflight[i].off >= off })
		if i < len(s.inflight) && s.inflight[i].off == off && !s.inflight[i].done {
			s.inflight[i].done = true
			s.outstanding--
		}
	}
	s.popDone()
	s.gen++
	c := s.cursorLocked()
	s.mu.Unlock()
	return s.commit(c)
}

// Rewind forgets what readers hold without acknowledgement: those records
// will be read again. Records evicted while held are now lost; they are
// counted as DropSpoolFull and their number returned.
func (s *Spool) Rewind() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	lost := len(s.orphans)
	s.stats.DroppedFull += int64(lost)
	s.drop(DropSpoolFull, lost)
	clear(s.orphans)
	var done []int64
	for _, f := range s.inflight {
		if f.done {
			done = append(done, f.off)
		}
	}
	s.unread += s.outstanding - lost
	s.outstanding = 0
	s.read = s.head()
	s.inflight = nil
	s.skip = append(done, s.skip...)
	s.gen++
	return lost
}

func (s *Spool) cursorLocked() cursorState {
	c := cursorState{gen: s.gen, head: s.head()}
	for _, f := range s.inflight {
		if f.done {
			c.skip = append(c.skip, f.off)
		}
	}
	c.skip = append(c.skip, s.skip...)
	return c
}

func (s *Spool) commit(c cursorState) error {
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	if c.gen <= s.writtenGen && s.writtenGen != 0 {
		return nil
	}
	if err := writeCursorFile(s.dir, c, s.opts.NoSync); err != nil {
		return err
	}
	s.writtenGen = c.gen
	return nil
}

// Sync makes appended records and the consumption state durable.
func (s *Spool) Sync() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	var err error
	if !s.opts.NoSync {
		err = s.w.Sync()
	}
	c := s.cursorLocked()
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("spool: sync segment in %s: %w", s.dir, err)
	}
	return s.commit(c)
}

// Len is the number of records appended and not yet consumed.
func (s *Spool) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.unread + s.outstanding
}

// Bytes is the number of live bytes (at most Options.MaxBytes).
func (s *Spool) Bytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tail - s.head()
}

// Position returns the head and tail offsets: every record before head is
// consumed (held records evicted by the budget count as not yet consumed),
// every record appended so far lies before tail.
func (s *Spool) Position() (head, tail int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	head = s.head()
	for off := range s.orphans {
		head = min(head, off)
	}
	return head, s.tail
}

// Stats returns a snapshot of the spool's state and counters.
func (s *Spool) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Records = s.unread + s.outstanding
	st.Bytes = s.tail - s.head()
	st.Segments = len(s.segs)
	return st
}

// Close persists the consumption state and closes the files. Records held
// by readers and not acknowledged are read again after the next Open.
func (s *Spool) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	lost := len(s.orphans) // held, evicted and never acknowledged: gone
	s.stats.DroppedFull += int64(lost)
	s.drop(DropSpoolFull, lost)
	clear(s.orphans)
	s.gen++
	c := s.cursorLocked()
	var err error
	if s.w != nil && !s.opts.NoSync {
		err = s.w.Sync()
	}
	s.closeFiles()
	s.closed = true
	s.mu.Unlock()
	if cerr := s.commit(c); err == nil {
		err = cerr
	}
	return err
}

func (s *Spool) closeFiles() {
	if s.w != nil {
		s.w.Close()
		s.w = nil
	}
	if s.rf != nil {
		s.rf.Close()
		s.rf = nil
	}
}
