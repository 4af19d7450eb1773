package daemon

import (
	"bytes"
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
)

// encoder gzips a loop's payloads (pprof profiles, binary
// snapshots), reusing its buffers and compressor state from one snapshot to
// the next; allocating a compressor per payload cost more than compressing.
// Each loop that encodes (snapshot, CPU, scrape) has its own.
type encoder struct {
	out bytes.Buffer
	zw  *gzip.Writer
}

// gzip returns what write writes, gzip-compressed at the fastest level.
func (e *encoder) gzip(what string, write func(io.Writer) error) ([]byte, error) {
	e.out.Reset()
	if e.zw == nil {
		zw, err := gzip.NewWriterLevel(&e.out, gzip.BestSpeed)
		if err != nil {
			return nil, fmt.Errorf("gzip %s: %w", what, err)
		}
		e.zw = zw
	} else {
		e.zw.Reset(&e.out)
	}
	if err := write(e.zw); err != nil {
		return nil, fmt.Errorf("encode %s: %w", what, err)
	}
	if err := e.zw.Close(); err != nil {
		return nil, fmt.Errorf("gzip %s: %w", what, err)
	}
	return bytes.Clone(e.out.Bytes()), nil
}
