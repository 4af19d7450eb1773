package spool

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
)

const (
	cursorName  = "cursor"
	cursorMagic = "GSCURS\x00\x01"
	// maxSkip bounds the skip set read back from a cursor file.
	maxSkip = 1 << 20
)

// cursorState is what a cursor file records: the head (everything before it
// is consumed) and the records beyond the head that were already consumed.
type cursorState struct {
	gen  uint64
	head int64
	skip []int64
}

func encodeCursor(c cursorState) []byte {
	b := make([]byte, 0, len(cursorMagic)+8+4+8*len(c.skip)+4)
	b = append(b, cursorMagic...)
	b = binary.LittleEndian.AppendUint64(b, uint64(c.head))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(c.skip)))
	for _, off := range c.skip {
		b = binary.LittleEndian.AppendUint64(b, uint64(off))
	}
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

var errBadCursor = errors.New("spool cursor does not verify")

func decodeCursor(b []byte) (cursorState, error) {
	var c cursorState
	if len(b) < len(cursorMagic)+8+4+4 || string(b[:len(cursorMagic)]) != cursorMagic {
		return c, errBadCursor
	}
	body, sum := b[:len(b)-4], binary.LittleEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return c, errBadCursor
	}
	p := body[len(cursorMagic):]
	c.head = int64(binary.LittleEndian.Uint64(p))
	n := binary.LittleEndian.Uint32(p[8:])
	p = p[12:]
	if n > maxSkip || len(p) != 8*int(n) || c.head < 0 {
		return c, errBadCursor
	}
	prev := c.head
	for i := 0; i < int(n); i++ {
		off := int64(binary.LittleEndian.Uint64(p[8*i:]))
		if off < prev {
			return c, errBadCursor
		}
		c.skip = append(c.skip, off)
		prev = off
	}
	return c, nil
}

// writeCursorFile replaces dir/cursor atomically: temporary file, fsync
// (unless noSync), rename.
func writeCursorFile(dir string, c cursorState, noSync bool) error {
	tmp := filepath.Join(dir, cursorName+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("spool: create cursor in %s (is the directory writable?): %w", dir, err)
	}
	_, err = f.Write(encodeCursor(c))
	if err == nil && !noSync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, cursorName))
	}
	if err != nil {
		return fmt.Errorf("spool: write cursor in %s (disk full?): %w", dir, err)
	}
	return nil
}
