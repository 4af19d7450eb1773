package spool

import (
	"encoding/binary"
	"hash/crc32"
)

const (
	// segMagic opens every segment file; the last byte is the format version.
	segMagic     = "GSSPOOL\x01"
	segHeaderLen = int64(len(segMagic))
	// recHeaderLen is the length prefix plus the checksum of one record.
	recHeaderLen = 8
)

// castagnoli is the CRC32C table; it is written once at init and only read.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// appendRecord appends the framed form of payload to dst.
func appendRecord(dst, payload []byte) []byte {
	var h [recHeaderLen]byte
	binary.LittleEndian.PutUint32(h[0:4], uint32(len(payload)))
	crc := crc32.Update(0, castagnoli, h[0:4])
	crc = crc32.Update(crc, castagnoli, payload)
	binary.LittleEndian.PutUint32(h[4:8], crc)
	dst = append(dst, h[:]...)
	return append(dst, payload...)
}

// recordLen returns the payload length claimed by the header in h, or false
// when that length cannot be a record of at most maxPayload bytes ending
// within avail bytes.
func recordLen(h []byte, maxPayload int, avail int64) (int, bool) {
	n := binary.LittleEndian.Uint32(h[0:4])
	if int64(n) > int64(maxPayload) || recHeaderLen+int64(n) > avail {
		return 0, false
	}
	return int(n), true
}

// recordValid reports whether b (header + payload) carries a matching checksum.
func recordValid(b []byte) bool {
	crc := crc32.Update(0, castagnoli, b[0:4])
	crc = crc32.Update(crc, castagnoli, b[recHeaderLen:])
	return crc == binary.LittleEndian.Uint32(b[4:8])
}

// resync returns the offset in b, after 0, of the first byte sequence that
// forms a valid record, or len(b) when there is none. b starts at a record
// that did not verify and ends at the end of its segment.
func resync(b []byte, maxPayload int) int {
	for i := 1; i+recHeaderLen <= len(b); i++ {
		n, ok := recordLen(b[i:], maxPayload, int64(len(b)-i))
		if !ok {
			continue
		}
		if recordValid(b[i : i+recHeaderLen+n]) {
			return i
		}
	}
	return len(b)
}
