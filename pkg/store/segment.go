package store

import (
	"encoding/binary"
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

// recordLen is the length of the entry's record in its segment file.
func (e *entry) recordLen() int64 { return headerLen + int64(e.metaLen) + e.meta.Size }

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
	regions   uint64 // bad regions skipped, torn tail included
	lost      uint64 // records in them, from the gap in IDs around each region
	inexact   bool   // a region's record count is unknown and counted as one
	firstBad  int64  // file offset of the first bad region
	badBytes  int64  // bytes in the bad regions
	truncated bool   // a torn tail was cut off
}

// loadSegment reads the segment at path and indexes its valid records with
// IDs above lastID. nextFirst is the first ID of the following segment, 0
// if there is none. A torn tail is truncated. The whole file is read at
// once; segments are bounded by Options.SegmentBytes (and one record).
//
// Record IDs are consecutive, so a bad region held exactly the IDs between
// the valid records around it (or the segment's first ID, or nextFirst). Only
// a bad tail of the newest segment has nothing after it: it counts as one
// record, the one being written when the agent stopped.
func loadSegment(path string, firstID, lastID, nextFirst uint64) (*segment, scanResult, error) {
	res := scanResult{firstBad: -1}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, res, fmt.Errorf("read segment %s: %w", path, err)
	}
	g := &segment{firstID: firstID, path: path}
	prev := max(lastID, firstID-1) // the ID before the next record
	off := 0
	for off < len(b) {
		m, n, metaLen, ok := decodeRecord(b[off:])
		if ok && m.ID > lastID && m.ID >= firstID {
			g.add(m, int64(off), metaLen)
			lastID, prev = m.ID, m.ID
			off += n
			continue
		}
		res.regions++
		if res.firstBad < 0 {
			res.firstBad = int64(off)
		}
		next := nextRecord(b, off+1)
		end := next
		if next < 0 {
			end = len(b)
		}
		res.badBytes += int64(end - off)
		var after uint64 // the ID of what follows the region, 0 if unknown
		if next >= 0 {
			m, _, _, _ := decodeRecord(b[next:])
			after = m.ID
		} else if nextFirst > 0 {
			after = nextFirst
		}
		switch {
		case after > prev:
			res.lost += after - prev - 1
		case after == 0:
			// A bad tail of the newest segment: the records whose
			// headers still chain to the end, else the torn one.
			if k, ok := framedRecords(b[off:]); ok {
				res.lost += k
			} else {
				res.lost++
				res.inexact = true
			}
		}
		// else: the record after the region repeats an earlier ID and is
		// skipped in turn; the region held nothing new.
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

// framedRecords counts the records in b by their headers alone (magic and
// lengths, not checksums); ok is false unless they end exactly at len(b).
func framedRecords(b []byte) (n uint64, ok bool) {
	off := 0
	for ; off < len(b); n++ {
		if len(b)-off < headerLen || string(b[off:off+4]) != recordMagic {
			return 0, false
		}
		metaLen := binary.LittleEndian.Uint32(b[off+8:])
		dataLen := binary.LittleEndian.Uint32(b[off+12:])
		if metaLen == 0 || metaLen > maxMetaLen || dataLen > maxDataLen {
			return 0, false
		}
		off += headerLen + int(metaLen) + int(dataLen)
	}
	return n, n > 0 && off == len(b)
}
