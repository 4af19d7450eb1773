package ui

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/google/pprof/profile"

	"github.com/goroscope/goroscope/pkg/snapshot"
	"github.com/goroscope/goroscope/pkg/store"
)

// maxPayloadBytes bounds a decompressed payload the UI reads.
const maxPayloadBytes = 256 << 20

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

// readPayload reads and decompresses an entry's payload.
func readPayload(src Source, m store.Meta) ([]byte, error) {
	data, err := src.Read(m.ID)
	if err != nil {
		return nil, fmt.Errorf("read %s entry %d: %w", m.Kind, m.ID, err)
	}
	return gunzip(data, fmt.Sprintf("%s entry %d", m.Kind, m.ID))
}

// gunzip decompresses data, bounded by maxPayloadBytes; data that is not
// gzipped is returned as it is.
func gunzip(data []byte, what string) ([]byte, error) {
	if len(data) < 2 || data[0] != 0x1f || data[1] != 0x8b {
		return data, nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("decompress %s: %w", what, err)
	}
	out, err := io.ReadAll(io.LimitReader(zr, maxPayloadBytes+1))
	if err != nil {
		return nil, fmt.Errorf("decompress %s: %w", what, err)
	}
	if len(out) > maxPayloadBytes {
		return nil, fmt.Errorf("decompress %s: larger than %d MiB, the UI's limit", what, maxPayloadBytes>>20)
	}
	return out, nil
}

// profileAt finds (as entryAt does) and reads the pprof entry of kind for
// process k at moment at.
func profileAt(src Source, k store.ProcessKey, kind string, at time.Time) (store.Meta, *profile.Profile, error) {
	m, err := entryAt(src, k, kind, at)
	if err != nil {
		return store.Meta{}, nil, err
	}
	p, err := loadProfile(src, m)
	return m, p, err
}

// loadProfile reads a pprof entry.
func loadProfile(src Source, m store.Meta) (*profile.Profile, error) {
	raw, err := readPayload(src, m)
	if err != nil {
		return nil, err
	}
	p, err := profile.ParseData(raw)
	if err != nil {
		return nil, fmt.Errorf("parse %s entry %d as pprof: %w", m.Kind, m.ID, err)
	}
	return p, nil
}

// loadSnapshot reads a snapshot entry.
func loadSnapshot(src Source, m store.Meta) (*snapshot.Snapshot, error) {
	raw, err := readPayload(src, m)
	if err != nil {
		return nil, err
	}
	if snapshot.IsBinary(raw) {
		s, err := snapshot.DecodeBinary(raw)
		if err != nil {
			return nil, fmt.Errorf("parse %s entry %d: %w", m.Kind, m.ID, err)
		}
		return s, nil
	}
	// Stores written before the binary form hold JSON snapshots.
	var s snapshot.Snapshot
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("parse %s entry %d as a JSON snapshot: %w", m.Kind, m.ID, err)
	}
	return &s, nil
}
