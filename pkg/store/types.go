// Package store keeps goroscope's profiles on local disk: compressed
// payloads per process per interval, an index to find them, retention by
// age and size, and a full disk handled by dropping the oldest data. It is
// the agent's embedded default backend and what the web UI reads.
//
// It is internal to goroscope, not meant for import by other modules: its
// API may change at any time. The one public API is pkg/inproc.
package store

import (
	"log/slog"
	"time"
)

// Kinds of entries the agent writes. A Kind is any short lowercase name;
// these are the ones in use.
const (
	// KindGoroutines is a gzipped pprof goroutine count profile
	// (goroutine/count; goroutines/count in entries of earlier versions),
	// pushed to Pyroscope as "goroutine".
	KindGoroutines = "goroutines"
	// KindGoroutineWall is a gzipped pprof "goroutine_wall" profile (wall/nanoseconds).
	KindGoroutineWall = "goroutine_wall"
	// KindSnapshot is a gzipped goroscope snapshot in its binary form
	// (snapshot.AppendBinary; JSON in stores written before it).
	KindSnapshot = "snapshot"
	// KindCPU is a gzipped pprof process_cpu profile.
	KindCPU = "process_cpu"
	// KindMemory, KindMutex, KindBlock and KindGoroutineLeak are gzipped
	// pprof profiles scraped from net/http/pprof (heap, mutex, block,
	// goroutineleak), cumulative types as deltas over their interval.
	KindMemory        = "memory"
	KindMutex         = "mutex"
	KindBlock         = "block"
	KindGoroutineLeak = "goroutineleak"
	// KindFindings is the gzipped JSON of the findings that held at a
	// snapshot (docs/findings-json.md), stored only when there are any.
	KindFindings = "findings"
	// KindCrash is the JSON of a crash record (pkg/crash.Record): why a
	// watched process died and what it was doing.
	KindCrash = "crash"
)

// ProfileKinds are the kinds holding pprof profiles, in display order.
var ProfileKinds = []string{KindGoroutines, KindGoroutineWall, KindCPU, KindMemory, KindMutex, KindBlock, KindGoroutineLeak}

// Process identifies a watched process across PID reuse.
type Process struct {
	PID int `json:"pid"`
	// StartTime is the process start time in clock ticks after boot.
	StartTime   uint64 `json:"start_time"`
	ServiceName string `json:"service_name"`
	Exe         string `json:"exe"`
	GoVersion   string `json:"go_version"`
}

// Key is the identity of a process in the store.
func (p Process) Key() ProcessKey { return ProcessKey{PID: p.PID, StartTime: p.StartTime} }

// ProcessKey identifies a process: a PID and its start time.
type ProcessKey struct {
	PID       int    `json:"pid"`
	StartTime uint64 `json:"start_time"`
}

// Entry is one payload to store.
type Entry struct {
	Process Process
	Kind    string
	// Time is the moment the payload describes (the snapshot time).
	Time time.Time
	// Duration is the interval the payload covers (0 for an instant).
	Duration time.Duration
	// Summary holds small numbers shown in charts without reading the
	// payload, e.g. "state/waiting": 300, "wait_reason/chan receive": 120.
	Summary map[string]float64
	// Data is the payload, already compressed by the caller.
	Data []byte
}

// Meta describes a stored entry: everything but its payload.
type Meta struct {
	ID       uint64             `json:"id"`
	Process  Process            `json:"process"`
	Kind     string             `json:"kind"`
	Time     time.Time          `json:"time"`
	Duration time.Duration      `json:"duration_ns"`
	Summary  map[string]float64 `json:"summary,omitempty"`
	Size     int64              `json:"size"`
}

// Query selects entries. Zero fields match everything.
type Query struct {
	Process  ProcessKey
	Kind     string
	From, To time.Time
	// Limit bounds the result; the newest entries are kept.
	Limit int
}

// Options tune a Store.
type Options struct {
	// MaxAge drops entries older than this (default 24h).
	MaxAge time.Duration
	// MaxBytes bounds the payload bytes on disk (default 1 GiB). It is
	// applied to whole segment files, records' framing and metadata
	// included, after every Append. It is shared fairly between processes:
	// beyond it, the oldest entries of the process using the most bytes go
	// first (max-min fairness), so one process flooding the store evicts
	// its own history, not the others'. A process evicted from may drop up
	// to one segment below its share; a rewrite needs up to one segment of
	// free disk on top of MaxBytes while it runs.
	MaxBytes int64
	// SegmentBytes is the size at which a segment file is sealed and a new
	// one started (default: 1/32 of the smaller of MaxBytes and the
	// filesystem, between 16 KiB and 32 MiB). Age and disk-full retention
	// drop whole segments and size retention rewrites them, so this is the
	// granularity of drops.
	SegmentBytes int64
	// Now is the clock used by Append's retention (default time.Now).
	Now func() time.Time
	// Logger gets one warning per damaged segment found by Open: its path,
	// the offset of the first damage and the records lost (default: none).
	Logger *slog.Logger
}

// Stats counts what the store did, for self-metrics.
type Stats struct {
	// Entries is the number of entries stored.
	Entries int
	// Bytes is the sum of the stored entries' payload sizes.
	Bytes int64
	// DiskBytes is the size of the segment files, framing and metadata
	// included; it is what MaxBytes bounds.
	DiskBytes int64
	// Segments is the number of segment files.
	Segments int
	// Written counts entries appended since Open.
	Written uint64
	// Dropped counts entries removed early, by reason: "age", "size", "disk_full", "corrupt".
	Dropped map[string]uint64
	// WriteErrors counts appends that failed (the agent keeps running).
	WriteErrors uint64
	// Compactions counts sealed segments rewritten without the entries of
	// the process that size retention evicted from (see Options.MaxBytes).
	Compactions uint64
}
