package golayout

import "encoding/binary"

// Reading a field out of a copy of a runtime structure: b holds the
// structure's bytes (little endian, as on amd64) and off is the field's
// offset from a Layout. A field that does not lie inside b, such as one
// whose offset is Absent, reads as zero.

// Uint64 returns the 8-byte field at offset off of b.
func Uint64(b []byte, off int64) uint64 {
	if off < 0 || off+8 > int64(len(b)) {
		return 0
	}
	return binary.LittleEndian.Uint64(b[off:])
}

// Uint32 returns the 4-byte field at offset off of b.
func Uint32(b []byte, off int64) uint32 {
	if off < 0 || off+4 > int64(len(b)) {
		return 0
	}
	return binary.LittleEndian.Uint32(b[off:])
}

// Uint8 returns the byte at offset off of b.
func Uint8(b []byte, off int64) uint8 {
	if off < 0 || off >= int64(len(b)) {
		return 0
	}
	return b[off]
}
