package ui

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/google/pprof/profile"
	"github.com/klauspost/compress/gzip"

	"github.com/goroscope/goroscope/pkg/snapshot"
	"github.com/goroscope/goroscope/pkg/store"
)

// atWindow is how many entries around a requested moment are looked at.
const atWindow = 16

// entryAt finds the stored entry of kind for process k at moment at: the
// newest at or before it, else the oldest after it; the newest when at is zero.
func entryAt(src Source, k store.ProcessKey, kind string, at time.Time) (store.Meta, error) {
	q := store.Query{Process: k, Kind: kind, Limit: atWindow}
	if !at.IsZero() {
		q.To = at.Add(time.Second) // To's inclusiveness aside, at itself is inside
	}
	ms, err := src.List(q)
	if err != nil {
		return store.Meta{}, fmt.Errorf("list %s entries of pid %d: %w", kind, k.PID, err)
	}
	if len(ms) == 0 && !at.IsZero() { // at is before every entry: take the oldest after it
		ms, err = src.List(store.Query{Process: k, Kind: kind, From: at})
		if err != nil {
			return store.Meta{}, fmt.Errorf("list %s entries of pid %d: %w", kind, k.PID, err)
		}
	}
	var best, first *store.Meta
	for i := range ms {
		m := &ms[i]
		if m.Process.Key() != k || m.Kind != kind {
			continue
		}
		if first == nil || m.Time.Before(first.Time) {
			first = m
		}
		if (at.IsZero() || !m.Time.After(at)) && (best == nil || m.Time.After(best.Time)) {
			best = m
		}
	}
	if best == nil {
		best = first
	}
	if best == nil {
		return store.Meta{}, notFound("no %s entry stored for pid %d (start %d)%s", kind, k.PID, k.StartTime, atText(at))
	}
	return *best, nil
}

func atText(at time.Time) string {
	if at.IsZero() {
		return ""
	}
	return " at or near " + at.Format(time.RFC3339Nano)
}

// maxSnapshotBytes bounds a snapshot entry's decompressed size. Snapshots
// are read as a stream, never whole, so this bounds the time a request
// takes rather than its memory.
const maxSnapshotBytes = 256 << 20

// openPayload reads entry m and returns its payload, decompressed as it
// is read, and the payload's size as its gzip trailer gives it (a hint,
// not checked): past limit bytes the reader fails with a 413 naming the
// limit and what it bounds.
func openPayload(src Source, m store.Meta, limit int64, bounds string) (r io.Reader, size int64, err error) {
	data, err := src.Read(m.ID)
	if err != nil {
		return nil, 0, fmt.Errorf("read %s entry %d: %w", m.Kind, m.ID, err)
	}
	what := fmt.Sprintf("%s entry %d", m.Kind, m.ID)
	r, size = bytes.NewReader(data), int64(len(data))
	if len(data) >= 18 && data[0] == 0x1f && data[1] == 0x8b {
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, 0, fmt.Errorf("decompress %s: %w", what, err)
		}
		r, size = &decompressor{r: zr, what: what}, int64(binary.LittleEndian.Uint32(data[len(data)-4:]))
	}
	return &cappedReader{r: r, left: limit, tooLarge: &httpError{http.StatusRequestEntityTooLarge,
		fmt.Sprintf("%s is larger than %s decompressed, the UI's limit for %s", what, sizeText(limit), bounds)}}, size, nil
}

// decompressor names the entry in the errors of a gzip reader.
type decompressor struct {
	r    io.Reader
	what string
}

func (d *decompressor) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("decompress %s: %w", d.what, err)
	}
	return n, err
}

// cappedReader reads r up to left bytes; reading more fails with tooLarge.
type cappedReader struct {
	r        io.Reader
	left     int64
	tooLarge error
}

func (c *cappedReader) Read(p []byte) (int, error) {
	if c.left < 0 {
		return 0, c.tooLarge
	}
	if int64(len(p)) > c.left+1 {
		p = p[:c.left+1] // one byte past the limit tells data that exceeds it
	}
	n, err := c.r.Read(p)
	if int64(n) > c.left {
		n, c.left = int(c.left), -1
		return n, c.tooLarge
	}
	c.left -= int64(n)
	return n, err
}

// sizeText writes a byte count in MiB when it is a whole number of them.
func sizeText(n int64) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}

// profileAt finds (as entryAt does) and reads the pprof entry of kind for
// process k at moment at.
func (s *server) profileAt(k store.ProcessKey, kind string, at time.Time) (store.Meta, *profile.Profile, error) {
	m, err := entryAt(s.src, k, kind, at)
	if err != nil {
		return store.Meta{}, nil, err
	}
	p, err := s.loadProfile(m)
	return m, p, err
}

// loadProfile reads and parses a pprof entry, refusing (413) one larger
// than MaxProfileBytes decompressed: a parsed profile takes several times
// its encoded size.
func (s *server) loadProfile(m store.Meta) (*profile.Profile, error) {
	r, size, err := openPayload(s.src, m, s.maxProfileBytes, "a profile parsed in memory (Options.MaxProfileBytes)")
	if err != nil {
		return nil, err
	}
	raw := bytes.NewBuffer(make([]byte, 0, min(size, s.maxProfileBytes)+bytes.MinRead))
	if _, err := raw.ReadFrom(r); err != nil {
		return nil, err
	}
	p, err := profile.ParseData(raw.Bytes())
	if err != nil {
		return nil, fmt.Errorf("parse %s entry %d as pprof: %w", m.Kind, m.ID, err)
	}
	return p, nil
}

// openSnapshot opens a snapshot entry for reading one goroutine at a
// time: the binary form the agent writes, or the JSON form older stores hold.
func (s *server) openSnapshot(m store.Meta) (snapshot.Stream, error) {
	r, _, err := openPayload(s.src, m, maxSnapshotBytes, "a snapshot")
	if err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(r, 4096)
	if head, _ := br.Peek(len("GRSNAP1\n")); snapshot.IsBinary(head) { // the binary form's magic
		st, err := snapshot.NewBinaryStreamReader(br)
		if err != nil {
			return nil, fmt.Errorf("parse %s entry %d: %w", m.Kind, m.ID, err)
		}
		return st, nil
	}
	st, err := snapshot.NewJSONReader(br)
	if err != nil {
		return nil, fmt.Errorf("parse %s entry %d as a JSON snapshot: %w", m.Kind, m.ID, err)
	}
	return st, nil
}
