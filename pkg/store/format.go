package store

// On-disk format.
//
// A store directory holds:
//
//	LOCK                        empty; flock'ed while a Store has the directory open
//	<20-digit first ID>.seg     segment files, appended to in order
//
// Any other file is ignored. A segment is named after the ID of its first
// record (zero-padded, so names sort in ID order) and is a plain
// concatenation of records, with no file header:
//
//	offset size  field
//	0      4     magic "GSR1"
//	4      4     CRC-32C (Castagnoli), little endian, of bytes 8..end of record
//	8      4     metaLen, little endian: length of the meta JSON (<= 1 MiB)
//	12     4     dataLen, little endian: length of the payload (<= 256 MiB)
//	16     ...   meta: the entry's Meta as JSON (ID, process, kind, time, ...)
//	16+metaLen   data: the payload exactly as appended
//
// Record IDs increase strictly through a segment and from one segment to
// the next. Only the newest segment is written to; it is sealed (fsynced and
// closed) when it reaches Options.SegmentBytes or when an entry of a later
// hour arrives. Writes go to the kernel on every Append (a crashed agent
// loses nothing); the active segment is fsynced at most every
// syncInterval, on sealing and on Close, so a crashed machine may lose the
// last few seconds, which Open then finds as a torn tail.
//
// Open rebuilds the in-memory index (Meta only, no payloads) by reading
// every segment. A record whose CRC, lengths or meta do not check out is
// skipped: the reader looks for the next magic that starts a valid record.
// IDs are consecutive, so the records the region held are counted exactly
// in Dropped["corrupt"] from the IDs around it; only a bad tail of the
// newest segment counts as one record. Each damaged file is logged once
// (Options.Logger) with its path and the offset of the first damage. A bad
// region with no valid record after it (a torn tail) is truncated away; a
// bad region in the middle stays and is counted again by the next Open.
//
// Retention deletes whole segment files for a full disk (the oldest) and
// for age (any whose entries have all aged out); entries older than MaxAge
// in a segment that is still kept are dropped from the index at once and
// their bytes go with the segment. Size retention is per process: it drops
// all entries of the process using the most bytes from the oldest sealed
// segment holding any, by rewriting that segment without them (the other
// live records copied to <name>.seg.compact, synced, renamed over it;
// Open deletes a leftover .compact file) or deleting it when nothing else
// lives in it. A rewritten segment keeps its name and its records' IDs, so
// IDs increase strictly but with gaps: a bad region found by Open in such a
// segment counts the evicted IDs around it as lost too. Each rewrite takes
// one process out of a segment, so a segment is rewritten at most once per
// process in it less one, and needs its surviving bytes free on disk while
// it runs.

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"math"
	"time"
)

const (
	recordMagic   = "GSR1"
	headerLen     = 16
	maxMetaLen    = 1 << 20
	maxDataLen    = 256 << 20
	maxKindLen    = 64
	segmentSuffix = ".seg"
	compactSuffix = ".compact" // appended to a segment's name while it is rewritten
	lockName      = "LOCK"
)

// castagnoli is the CRC-32C table; it is never written after init.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// encodeRecord appends the record for m and data to buf.
func encodeRecord(buf []byte, m *Meta, data []byte) ([]byte, error) {
	meta, err := json.Marshal(m)
	if err != nil {
		return buf, fmt.Errorf("encode meta of %s entry: %w", m.Kind, err)
	}
	if len(meta) > maxMetaLen {
		return buf, fmt.Errorf("meta of %s entry is %d bytes, over the %d limit: send a smaller Summary", m.Kind, len(meta), maxMetaLen)
	}
	if len(data) > maxDataLen {
		return buf, fmt.Errorf("payload of %s entry is %d bytes, over the %d limit", m.Kind, len(data), maxDataLen)
	}
	start := len(buf)
	buf = append(buf, recordMagic...)
	buf = binary.LittleEndian.AppendUint32(buf, 0) // CRC, set below
	buf = binary.LittleEndian.AppendUint32(buf, uint32(len(meta)))
	buf = binary.LittleEndian.AppendUint32(buf, uint32(len(data)))
	buf = append(buf, meta...)
	buf = append(buf, data...)
	crc := crc32.Checksum(buf[start+8:], castagnoli)
	binary.LittleEndian.PutUint32(buf[start+4:], crc)
	return buf, nil
}

// decodeRecord parses the record at the start of b. It returns the meta,
// the record's length and the length of its meta JSON; ok is false when b
// does not start with a complete, valid record.
func decodeRecord(b []byte) (m Meta, n int, metaLen uint32, ok bool) {
	if len(b) < headerLen || string(b[:4]) != recordMagic {
		return Meta{}, 0, 0, false
	}
	metaLen = binary.LittleEndian.Uint32(b[8:])
	dataLen := binary.LittleEndian.Uint32(b[12:])
	if metaLen == 0 || metaLen > maxMetaLen || dataLen > maxDataLen {
		return Meta{}, 0, 0, false
	}
	n = headerLen + int(metaLen) + int(dataLen)
	if n > len(b) {
		return Meta{}, 0, 0, false
	}
	if crc32.Checksum(b[8:n], castagnoli) != binary.LittleEndian.Uint32(b[4:]) {
		return Meta{}, 0, 0, false
	}
	if err := json.Unmarshal(b[headerLen:headerLen+int(metaLen)], &m); err != nil {
		return Meta{}, 0, 0, false
	}
	if m.ID == 0 || m.Size != int64(dataLen) || validKind(m.Kind) != nil {
		return Meta{}, 0, 0, false
	}
	m.Time = m.Time.UTC()
	return m, n, metaLen, true
}

// checkRecord verifies a record read back for Read and returns its payload.
func checkRecord(b []byte, id uint64) ([]byte, bool) {
	if len(b) < headerLen || string(b[:4]) != recordMagic {
		return nil, false
	}
	metaLen := binary.LittleEndian.Uint32(b[8:])
	dataLen := binary.LittleEndian.Uint32(b[12:])
	if headerLen+int(metaLen)+int(dataLen) != len(b) {
		return nil, false
	}
	if crc32.Checksum(b[8:], castagnoli) != binary.LittleEndian.Uint32(b[4:]) {
		return nil, false
	}
	var m struct {
		ID uint64 `json:"id"`
	}
	if json.Unmarshal(b[headerLen:headerLen+int(metaLen)], &m) != nil || m.ID != id {
		return nil, false
	}
	return b[headerLen+int(metaLen):], true
}

// nextRecord finds the offset of the next valid record in b after from, or -1.
func nextRecord(b []byte, from int) int {
	for from < len(b) {
		i := bytes.Index(b[from:], []byte(recordMagic))
		if i < 0 {
			return -1
		}
		if _, _, _, ok := decodeRecord(b[from+i:]); ok {
			return from + i
		}
		from += i + 1
	}
	return -1
}

// validKind reports whether k is a short lowercase name.
func validKind(k string) error {
	if k == "" || len(k) > maxKindLen {
		return fmt.Errorf("entry kind %q: want 1 to %d characters", k, maxKindLen)
	}
	for _, c := range []byte(k) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return fmt.Errorf("entry kind %q: want lowercase letters, digits, '_', '-' or '.'", k)
		}
	}
	return nil
}

// finiteSummary copies s without NaN and infinite values, which JSON cannot hold.
func finiteSummary(s map[string]float64) map[string]float64 {
	if len(s) == 0 {
		return nil
	}
	out := make(map[string]float64, len(s))
	for k, v := range s {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			out[k] = v
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// segmentName is the file name of the segment whose first record is id.
func segmentName(id uint64) string { return fmt.Sprintf("%020d%s", id, segmentSuffix) }

// hourOf is the hour an entry time falls in, for segment rotation.
func hourOf(t time.Time) time.Time { return t.UTC().Truncate(time.Hour) }
