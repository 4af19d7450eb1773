package store

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Errors returned by a Store; test with errors.Is.
var (
	// ErrNotFound is returned for an ID that was never stored or was dropped.
	ErrNotFound = errors.New("store: entry not found")
	// ErrClosed is returned by a Store after Close.
	ErrClosed = errors.New("store: closed")
	// ErrCorrupt is returned by Read when a record fails its checksum.
	ErrCorrupt = errors.New("store: entry is corrupt")
)

const (
	defaultMaxAge   = 24 * time.Hour
	defaultMaxBytes = 1 << 30
	minSegmentBytes = 16 << 10
	maxSegmentBytes = 32 << 20
	// agePassInterval throttles Append's age retention.
	agePassInterval = time.Second
	// syncInterval is how often Append fsyncs the active segment at most.
	syncInterval = 5 * time.Second
	// maxFullDrops bounds the segments one Append drops on a full disk.
	maxFullDrops = 8
	// maxKeepBuf is the largest write buffer kept between Appends.
	maxKeepBuf = 1 << 20
)

// Drop reasons, the keys of Stats.Dropped.
const (
	reasonAge      = "age"
	reasonSize     = "size"
	reasonDiskFull = "disk_full"
	reasonCorrupt  = "corrupt"
)

// Store is goroscope's local store: segment files in one directory and an
// in-memory index of them (see the on-disk format in format.go). It is safe
// for concurrent use; Appends are serialised, readers run in parallel.
type Store struct {
	dir    string
	opt    Options
	segMax int64
	lock   *os.File // the flock'ed LOCK file

	mu        sync.RWMutex
	closed    bool
	segs      []*segment // oldest first; the last one is the one written to
	nextID    uint64
	diskBytes int64
	entries   int
	bytes     int64
	procs     map[ProcessKey]*procState
	written   uint64
	dropped   map[string]uint64
	writeErrs uint64
	compacted uint64    // segments rewritten by fair-share retention
	lastAge   time.Time // last age pass by Append
	lastSync  time.Time
	dirty     bool // the active segment has unsynced writes
	broken    bool // the active segment's tail is unknown: seal it before writing
	buf       []byte
}

// procState is what the index knows about one process.
type procState struct {
	info Process
	last time.Time
	n    int
	disk int64 // bytes of its live records, framing and meta included
}

// Open opens (creating it with mode 0750 if needed) the store in dir and
// rebuilds its index from the segment files. Corrupt records are skipped
// and counted in Stats.Dropped["corrupt"]; they never make Open fail.
// Retention is applied at once; entries already past MaxAge are dropped
// without being counted. One Store at a time can have dir open.
func Open(dir string, o Options) (*Store, error) {
	if o.MaxAge <= 0 {
		o.MaxAge = defaultMaxAge
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = defaultMaxBytes
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, unusableDir(dir, err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, lockName), os.O_CREATE|os.O_RDWR, 0o640)
	if err != nil {
		return nil, unusableDir(dir, err)
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		lock.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("store: data directory %q is in use by another goroscope agent: stop it or pass a different --data-dir", dir)
		}
		return nil, fmt.Errorf("store: lock data directory %q: %w", dir, err)
	}
	s := &Store{
		dir:     dir,
		opt:     o,
		segMax:  min(segmentBytes(dir, o), o.MaxBytes),
		lock:    lock,
		nextID:  1,
		procs:   make(map[ProcessKey]*procState),
		dropped: make(map[string]uint64),
	}
	if err := s.load(); err != nil {
		s.closeFiles()
		return nil, err
	}
	if err := s.openActive(); err != nil {
		s.closeFiles()
		return nil, err
	}
	s.retain(o.Now())
	// Entries past MaxAge in a segment still kept were counted by the run
	// that aged them out; do not count them again.
	delete(s.dropped, reasonAge)
	return s, nil
}

// unusableDir explains a data directory that cannot be created or written.
func unusableDir(dir string, err error) error {
	return fmt.Errorf("store: data directory %q is not usable: %w (make it writable or choose another with --data-dir)", dir, err)
}

// segmentBytes picks the segment size: 1/32 of the smaller of MaxBytes and
// the filesystem holding dir, within [minSegmentBytes, maxSegmentBytes].
func segmentBytes(dir string, o Options) int64 {
	if o.SegmentBytes > 0 {
		return o.SegmentBytes
	}
	limit := o.MaxBytes
	var st unix.Statfs_t
	if unix.Statfs(dir, &st) == nil && st.Blocks > 0 {
		if fs := int64(st.Blocks) * int64(st.Bsize); fs > 0 && fs < limit {
			limit = fs
		}
	}
	return min(max(limit/32, minSegmentBytes), maxSegmentBytes)
}

// load indexes every segment file in the directory.
func (s *Store) load() error {
	des, err := os.ReadDir(s.dir)
	if err != nil {
		return unusableDir(s.dir, err)
	}
	type named struct {
		id   uint64
		name string
	}
	var files []named
	for _, de := range des {
		name := de.Name()
		if strings.HasSuffix(name, segmentSuffix+compactSuffix) && de.Type().IsRegular() {
			// A rewrite cut short by a crash: the segment is still whole.
			os.Remove(filepath.Join(s.dir, name))
			continue
		}
		if !strings.HasSuffix(name, segmentSuffix) {
			continue
		}
		id, err := strconv.ParseUint(strings.TrimSuffix(name, segmentSuffix), 10, 64)
		if err != nil || id == 0 {
			continue
		}
		if !de.Type().IsRegular() {
			// Not ours to read, but its name must not be taken later.
			s.nextID = max(s.nextID, id+1)
			continue
		}
		files = append(files, named{id, name})
	}
	sort.Slice(files, func(i, j int) bool { return files[i].id < files[j].id })
	var last uint64
	for i, f := range files {
		path := filepath.Join(s.dir, f.name)
		var nextFirst uint64
		if i+1 < len(files) {
			nextFirst = files[i+1].id
		}
		// A failed truncation leaves a torn tail that the next Open skips
		// again, so only an unreadable segment is an error here.
		g, res, err := loadSegment(path, f.id, last, nextFirst)
		if g == nil {
			// Unreadable: count it, leave it for a person to look at and
			// do not reuse its name. It held the IDs up to the next
			// segment's first, if there is one.
			lost, inexact := uint64(1), true
			if nextFirst > f.id {
				lost, inexact = nextFirst-f.id, false
			}
			s.dropped[reasonCorrupt] += lost
			s.logDamage(path, 0, lost, inexact, "unreadable segment: "+err.Error())
			s.nextID = max(s.nextID, f.id+1)
			continue
		}
		if res.regions > 0 {
			s.dropped[reasonCorrupt] += res.lost
			what := fmt.Sprintf("%d bad regions, %d bytes skipped", res.regions, res.badBytes)
			if res.truncated {
				what += ", torn tail truncated"
			}
			if err != nil {
				what += ": " + err.Error()
			}
			s.logDamage(path, res.firstBad, res.lost, res.inexact, what)
		}
		if g.size == 0 && len(files) > 1 && f != files[len(files)-1] {
			os.Remove(path)
			continue
		}
		s.segs = append(s.segs, g)
		s.diskBytes += g.size
		for i := range g.entries {
			s.indexed(&g.entries[i])
		}
		last = max(last, g.lastID())
		s.nextID = max(s.nextID, last+1, f.id)
		if res.truncated {
			// The torn record most likely had the next ID, which a reader
			// may hold: do not give it out again.
			s.nextID = max(s.nextID, last+2)
		}
	}
	return nil
}

// logDamage logs one line for a damaged segment file: where the first
// damage is and how many records it cost.
func (s *Store) logDamage(path string, off int64, lost uint64, inexact bool, what string) {
	n := strconv.FormatUint(lost, 10)
	if inexact {
		n = "at least " + n
	}
	s.opt.Logger.Warn("store: damaged segment, skipped what did not verify",
		"path", path, "offset", off, "records_lost", n, "damage", what)
}

// openActive opens the newest segment for appending, when there is one.
func (s *Store) openActive() error {
	if len(s.segs) == 0 {
		return nil
	}
	g := s.segs[len(s.segs)-1]
	f, err := os.OpenFile(g.path, os.O_RDWR, 0)
	if err != nil {
		return unusableDir(s.dir, err)
	}
	g.f = f
	return nil
}

// indexed accounts for an entry added to the index.
func (s *Store) indexed(e *entry) {
	m := &e.meta
	s.entries++
	s.bytes += m.Size
	k := m.Process.Key()
	p := s.procs[k]
	if p == nil {
		p = &procState{}
		s.procs[k] = p
	}
	p.n++
	p.disk += e.recordLen()
	if p.n == 1 || !m.Time.Before(p.last) {
		p.info, p.last = m.Process, m.Time
	}
}

// unindexed accounts for an entry dropped from the index for reason.
func (s *Store) unindexed(e *entry, reason string) {
	m := &e.meta
	s.entries--
	s.bytes -= m.Size
	s.dropped[reason]++
	k := m.Process.Key()
	if p := s.procs[k]; p != nil {
		p.disk -= e.recordLen()
		if p.n--; p.n <= 0 {
			delete(s.procs, k)
		}
	}
}

// Append stores e and returns its Meta. On a full disk it drops the oldest
// segments (counted in Stats.Dropped["disk_full"]) and retries a bounded
// number of times; an Append that still fails returns an error and is
// counted in Stats.WriteErrors. The returned Meta's Summary is shared with
// the index: treat it as read-only.
func (s *Store) Append(e Entry) (Meta, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return Meta{}, ErrClosed
	}
	m, err := s.append(e)
	if err != nil {
		s.writeErrs++
		return Meta{}, err
	}
	s.written++
	return m, nil
}

func (s *Store) append(e Entry) (Meta, error) {
	if err := validKind(e.Kind); err != nil {
		return Meta{}, fmt.Errorf("store: append: %w", err)
	}
	if e.Time.IsZero() {
		return Meta{}, fmt.Errorf("store: append %s entry of pid %d: time is zero, set Entry.Time", e.Kind, e.Process.PID)
	}
	m := Meta{
		ID:       s.nextID,
		Process:  e.Process,
		Kind:     e.Kind,
		Time:     e.Time.Round(0).UTC(),
		Duration: e.Duration,
		Summary:  finiteSummary(e.Summary),
		Size:     int64(len(e.Data)),
	}
	buf, err := encodeRecord(s.buf[:0], &m, e.Data)
	if err != nil {
		return Meta{}, fmt.Errorf("store: append: %w", err)
	}
	if cap(buf) <= maxKeepBuf {
		s.buf = buf
	} else {
		s.buf = nil
	}
	rec := int64(len(buf))
	if rec > s.opt.MaxBytes {
		return Meta{}, fmt.Errorf("store: append %s entry of pid %d: record of %d bytes exceeds MaxBytes %d: raise MaxBytes", e.Kind, e.Process.PID, rec, s.opt.MaxBytes)
	}

	now := s.opt.Now()
	if now.Sub(s.lastAge) >= agePassInterval || now.Before(s.lastAge) {
		s.lastAge = now
		s.retainAge(now)
	}
	if g := s.active(); g != nil && g.size > 0 && (s.broken || g.size+rec > s.segMax || hourOf(m.Time).After(g.hour)) {
		s.seal(g)
	}
	// Make room for the record, taking it from the processes over their
	// fair share: the active segment is never touched here.
	s.makeRoom(rec)

	var g *segment
	var off int64
	for drops := 0; ; drops++ {
		g, off, err = s.write(buf)
		if err == nil {
			break
		}
		if !diskFull(err) || drops >= maxFullDrops || !s.dropOldest(reasonDiskFull) {
			return Meta{}, fmt.Errorf("store: append %s entry of pid %d to %s: %w", e.Kind, e.Process.PID, s.dir, err)
		}
	}
	s.nextID++
	g.add(m, off, uint32(rec-headerLen-m.Size))
	s.indexed(&g.entries[len(g.entries)-1])
	if now.Sub(s.lastSync) >= syncInterval {
		s.lastSync = now
		if g.f.Sync() == nil {
			s.dirty = false
		}
	}
	return m, nil
}

// active returns the segment written to, or nil.
func (s *Store) active() *segment {
	if len(s.segs) == 0 || s.segs[len(s.segs)-1].f == nil {
		return nil
	}
	return s.segs[len(s.segs)-1]
}

// write appends a record to the active segment, starting one if needed, and
// returns where it went. A failed write is cut off again.
func (s *Store) write(rec []byte) (*segment, int64, error) {
	g := s.active()
	if g == nil {
		var err error
		if g, err = s.startSegment(); err != nil {
			return nil, 0, err
		}
	}
	off := g.size
	n, err := g.f.WriteAt(rec, off)
	if err != nil {
		// Cut the failed write off, whatever n says: a pwrite that ran
		// out of space may have extended the file and still report 0.
		if g.f.Truncate(off) != nil {
			s.broken = true // the next Append seals this segment at g.size
		}
		return nil, 0, err
	}
	g.size += int64(n)
	s.diskBytes += int64(n)
	s.dirty = true
	return g, off, nil
}

// startSegment creates a new active segment named after the next ID.
func (s *Store) startSegment() (*segment, error) {
	path := filepath.Join(s.dir, segmentName(s.nextID))
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o640)
	if err != nil {
		return nil, err
	}
	// Best effort, as every sync here: a segment whose name a crash
	// loses held nothing synced yet.
	if d, err := os.Open(s.dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	g := &segment{firstID: s.nextID, path: path, f: f}
	s.segs = append(s.segs, g)
	s.broken = false
	return g, nil
}

// seal syncs and closes the active segment; the next write starts a new one.
func (s *Store) seal(g *segment) {
	if g.f == nil {
		return
	}
	if s.dirty {
		// Best effort, as in append: a crash loses at most the unsynced
		// records, and the next Open cuts off a torn tail.
		_ = g.f.Sync()
		s.dirty = false
	}
	g.f.Close()
	g.f = nil
	if s.broken {
		// Cut whatever a failed write left past the last good record; if
		// that fails too, the next Open skips the torn tail.
		_ = os.Truncate(g.path, g.size)
		s.broken = false
	}
}

// List returns the Meta of the entries q selects, oldest first. Entries
// match when Time is in [From, To); with Limit > 0 the newest Limit are
// kept. The Summary maps are shared with the index: treat them as read-only.
func (s *Store) List(q Query) ([]Meta, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	var sel []*Meta
	anyProc := q.Process == ProcessKey{}
	for _, g := range s.segs {
		for i := range g.entries {
			m := &g.entries[i].meta
			if g.entries[i].dead ||
				!anyProc && m.Process.Key() != q.Process ||
				q.Kind != "" && m.Kind != q.Kind ||
				!q.From.IsZero() && m.Time.Before(q.From) ||
				!q.To.IsZero() && !m.Time.Before(q.To) {
				continue
			}
			sel = append(sel, m)
		}
	}
	byTime := func(a, b *Meta) int { return a.Time.Compare(b.Time) }
	if !slices.IsSortedFunc(sel, byTime) { // appends mostly come in time order
		slices.SortStableFunc(sel, byTime)
	}
	if q.Limit > 0 && len(sel) > q.Limit {
		sel = sel[len(sel)-q.Limit:]
	}
	out := make([]Meta, len(sel))
	for i, m := range sel {
		out[i] = *m
	}
	return out, nil
}

// Read returns the payload of entry id as it was appended. An ID never
// stored or already dropped gives an error wrapping ErrNotFound; a record
// that fails its checksum, one wrapping ErrCorrupt.
func (s *Store) Read(id uint64) ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	i := sort.Search(len(s.segs), func(i int) bool { return s.segs[i].firstID > id }) - 1
	if i < 0 {
		return nil, fmt.Errorf("read entry %d: %w", id, ErrNotFound)
	}
	g := s.segs[i]
	e := g.find(id)
	if e == nil || e.dead {
		return nil, fmt.Errorf("read entry %d: %w", id, ErrNotFound)
	}
	b := make([]byte, headerLen+int64(e.metaLen)+e.meta.Size)
	f := g.f
	if f == nil {
		var err error
		if f, err = os.Open(g.path); err != nil {
			return nil, fmt.Errorf("read entry %d from segment %s: %w", id, g.path, err)
		}
		defer f.Close()
	}
	if _, err := f.ReadAt(b, e.off); err != nil {
		return nil, fmt.Errorf("read entry %d from segment %s: %w", id, g.path, err)
	}
	data, ok := checkRecord(b, id)
	if !ok {
		return nil, fmt.Errorf("read entry %d from segment %s at %d: %w", id, g.path, e.off, ErrCorrupt)
	}
	return data, nil
}

// Processes returns the processes that have entries, with the newest info
// seen for each, the most recently seen first.
func (s *Store) Processes() []Process {
	s.mu.RLock()
	defer s.mu.RUnlock()
	ps := make([]*procState, 0, len(s.procs))
	for _, p := range s.procs {
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool {
		if !ps[i].last.Equal(ps[j].last) {
			return ps[i].last.After(ps[j].last)
		}
		a, b := ps[i].info.Key(), ps[j].info.Key()
		if a.PID != b.PID {
			return a.PID < b.PID
		}
		return a.StartTime < b.StartTime
	})
	out := make([]Process, len(ps))
	for i, p := range ps {
		out[i] = p.info
	}
	return out
}

// Stats returns the store's counters.
func (s *Store) Stats() Stats {
	s.mu.RLock()
	defer s.mu.RUnlock()
	d := make(map[string]uint64, len(s.dropped))
	for k, v := range s.dropped {
		d[k] = v
	}
	return Stats{
		Entries:     s.entries,
		Bytes:       s.bytes,
		DiskBytes:   s.diskBytes,
		Segments:    len(s.segs),
		Written:     s.written,
		Dropped:     d,
		WriteErrors: s.writeErrs,
		Compactions: s.compacted,
	}
}

// Close syncs the active segment and releases the directory. Later calls
// return ErrClosed.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.closed = true
	var err error
	if g := s.active(); g != nil {
		if e := g.f.Sync(); e != nil {
			err = fmt.Errorf("store: sync segment %s: %w", g.path, e)
		}
	}
	s.closeFiles()
	return err
}

// closeFiles closes the active segment and the lock.
func (s *Store) closeFiles() {
	for _, g := range s.segs {
		if g.f != nil {
			g.f.Close()
			g.f = nil
		}
	}
	if s.lock != nil {
		s.lock.Close() // releases the flock
		s.lock = nil
	}
}
