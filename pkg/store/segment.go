package store

import (
	"fmt"
	"os"
	"sort"
	"time"
)

// entry is one record in the index: its meta and where it is.
type entry struct {
	meta    Meta
	off     int64 // offset of the record in its segment
	metaLen uint32
	dead    bool // dropped by age retention; its bytes go with the segment
}

// segment is one segment file and the index of its records.
type segment struct {
	firstID uint64
	path    string
	size    int64 // bytes of valid records; the write offset of the active segment
	entries []entry
	live    int
	bytes   int64     // payload bytes of live entries
	minTime time.Time // at or before the oldest live entry's time
	hour    time.Time // hour of the first record, for rotation; zero when empty
	f       *os.File  // open for writing while this is the active segment
}

// add indexes a record appended at off.
func (g *segment) add(m Meta, off int64, metaLen uint32) {
	g.entries = append(g.entries, entry{meta: m, off: off, metaLen: metaLen})
	if g.live == 0 || m.Time.Before(g.minTime) {
		g.minTime = m.Time
	}
	if g.hour.IsZero() {
		g.hour = hourOf(m.Time)
	}
	g.live++
	g.bytes += m.Size
}

// find returns the index entry for id, or nil.
func (g *segment) find(id uint64) *entry {
	i := sort.Search(len(g.entries), func(i int) bool { return g.entries[i].meta.ID >= id })
	if i < len(g.entries) && g.entries[i].meta.ID == id {
		return &g.entries[i]
	}
	return nil
}

// scanResult is what loading a segment found.
type scanResult struct {
	corrupt   uint64 // bad regions skipped, torn tail included
	truncated bool   // a torn tail was cut off
}

// loadSegment reads the segment at path and indexes its valid records with
// IDs above lastID. A torn tail is truncated. The whole file is read at
// once; segments are bounded by Options.SegmentBytes (and one record).
func loadSegment(path string, firstID, lastID uint64) (*segment, scanResult, error) {
	var res scanResult
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, res, fmt.Errorf("read segment %s: %w", path, err)
	}
	g := &segment{firstID: firstID, path: path}
	off := 0
	for off < len(b) {
		m, n, metaLen, ok := decodeRecord(b[off:])
		if ok && m.ID > lastID && m.ID >= firstID {
			g.add(m, int64(off), metaLen)
			lastID = m.ID
			off += n
			continue
		}
		res.corrupt++
		next := nextRecord(b, off+1)
		if next < 0 {
			// Nothing valid follows: a torn tail, or garbage at the end.
			if err := os.Truncate(path, int64(off)); err != nil {
				return g, res, fmt.Errorf("truncate torn tail of segment %s at %d: %w", path, off, err)
			}
			res.truncated = true
			break
		}
		off = next
	}
	g.size = int64(min(off, len(b)))
	return g, res, nil
}

// lastID is the ID of the segment's last record, or 0.
func (g *segment) lastID() uint64 {
	if len(g.entries) == 0 {
		return 0
	}
	return g.entries[len(g.entries)-1].meta.ID
}
