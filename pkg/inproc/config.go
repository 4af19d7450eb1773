package inproc

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"runtime"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	pyroscopego "github.com/grafana/pyroscope-go"

	"github.com/goroscope/goroscope/pkg/fold"
	"github.com/goroscope/goroscope/pkg/label"
	"github.com/goroscope/goroscope/push/endpoint"
	"github.com/goroscope/goroscope/push/pyroscope"
)

// Defaults the zero values of Config fields stand for.
const (
	// DefaultGoroutineInterval is how often goroutines are collected: the
	// agent's default snapshot interval.
	DefaultGoroutineInterval = 10 * time.Second
	// MinGoroutineInterval is the shortest interval Start accepts: every
	// collection stops the world.
	MinGoroutineInterval = 100 * time.Millisecond
	// DefaultUploadRate is how often pyroscope-go cuts and uploads its
	// profiles (pyroscope-go's own default).
	DefaultUploadRate = 15 * time.Second
	// DefaultMutexProfileFraction reports one in this many mutex contention
	// events (runtime.SetMutexProfileFraction).
	DefaultMutexProfileFraction = 5
	// DefaultBlockProfileRate samples blocking events shorter than this many
	// nanoseconds in proportion to their length and records every longer
	// one (runtime.SetBlockProfileRate).
	DefaultBlockProfileRate = 10_000
	// DefaultMaxDumpBytes bounds one goroutine dump, as
	// /debug/pprof/goroutine?debug=2 does.
	DefaultMaxDumpBytes = 64 << 20
	// DefaultFlushTimeout bounds the final flush when Stop's context has
	// no deadline.
	DefaultFlushTimeout = 30 * time.Second
)

// ProfileType names a runtime profile that pyroscope-go collects.
type ProfileType = pyroscopego.ProfileType

// The profile types pyroscope-go collects, under pyroscope-go's names.
const (
	ProfileCPU           = pyroscopego.ProfileCPU
	ProfileAllocObjects  = pyroscopego.ProfileAllocObjects
	ProfileAllocSpace    = pyroscopego.ProfileAllocSpace
	ProfileInuseObjects  = pyroscopego.ProfileInuseObjects
	ProfileInuseSpace    = pyroscopego.ProfileInuseSpace
	ProfileMutexCount    = pyroscopego.ProfileMutexCount
	ProfileMutexDuration = pyroscopego.ProfileMutexDuration
	ProfileBlockCount    = pyroscopego.ProfileBlockCount
	ProfileBlockDuration = pyroscopego.ProfileBlockDuration
	ProfileGoroutineLeak = pyroscopego.ProfileGoroutineLeak
)

// DefaultProfileTypes returns the types collected when Config.ProfileTypes
// is nil: CPU, heap (alloc and inuse), mutex and block.
func DefaultProfileTypes() []ProfileType {
	return []ProfileType{
		ProfileCPU,
		ProfileAllocObjects, ProfileAllocSpace, ProfileInuseObjects, ProfileInuseSpace,
		ProfileMutexCount, ProfileMutexDuration,
		ProfileBlockCount, ProfileBlockDuration,
	}
}

// Endpoint is one push destination.
type Endpoint struct {
	// HTTP is where and how to send: for Pyroscope the server's base URL
	// (e.g. http://pyroscope:4040), for remote-write the write URL (e.g.
	// http://prometheus:9090/api/v1/write); plus tenant and, in
	// HTTPClientConfig (pkg/httpconf), basic or bearer auth, TLS, extra
	// headers, the proxy and the request timeout.
	HTTP endpoint.Config
	// Legacy sends goroscope's goroutine profiles to Pyroscope's /ingest
	// instead of the push API (servers before 1.0); the server then names
	// goroutine_wall "wall" (from its sample type). pyroscope-go's profiles
	// always go to /ingest. Ignored for remote-write endpoints.
	Legacy bool
}

// Config configures a Profiler. Only ApplicationName and one Pyroscope or
// RemoteWrite endpoint are required.
type Config struct {
	// ApplicationName is the service_name label of every profile and
	// series, as the agent sets it for a discovered process.
	ApplicationName string
	// Pyroscope endpoints receive pyroscope-go's profiles and goroscope's
	// goroutine and goroutine_wall profiles.
	Pyroscope []Endpoint
	// RemoteWrite endpoints, if any, receive the goroutine series
	// (goroscope_goroutines, goroscope_goroutine_blocked_seconds,
	// goroscope_process_info) that the agent writes.
	RemoteWrite []Endpoint
	// Tags are added to every profile and series, next to service_name and
	// pid. Names match [a-zA-Z_][a-zA-Z0-9_]* and do not start with "__".
	Tags map[string]string

	// ProfileTypes are the pyroscope-go profiles to collect; nil means
	// DefaultProfileTypes, an empty non-nil slice none (goroutines only).
	ProfileTypes []ProfileType
	// UploadRate is how often pyroscope-go uploads; 0 means DefaultUploadRate.
	UploadRate time.Duration
	// MutexProfileFraction and BlockProfileRate set the runtime's sampling
	// rates when mutex or block profiles are collected: 0 means the
	// defaults above, -1 leaves the runtime's current setting alone. They
	// are process-wide and stay set after Stop.
	MutexProfileFraction int
	BlockProfileRate     int

	// GoroutineInterval is how often goroutines are collected; 0 means
	// DefaultGoroutineInterval, -1 turns the goroutine collector off.
	GoroutineInterval time.Duration
	// MaxDumpBytes bounds one goroutine dump; 0 means DefaultMaxDumpBytes.
	// Goroutines beyond it are counted in Snapshot.Dropped and left out.
	MaxDumpBytes int
	// MemoryItems bounds each endpoint's queue (profiles or series waiting
	// to be sent); 0 means the push queue's default (10000). When a
	// backend is down the oldest items are dropped first.
	MemoryItems int

	// Logger receives delivery failures and pyroscope-go's messages. With
	// nil, only the first failure (an upload the server rejected, data
	// dropped) is logged, through slog's default logger, and the rest is
	// discarded; Stats counts them all and Stop's error sums them up.
	Logger *slog.Logger
}

// reservedTag reports whether k is a label name goroscope's samples or
// series use.
func reservedTag(k string) bool {
	switch k {
	case fold.LabelState, fold.LabelWaitReason, fold.LabelWaitBucket, "le", "exe", "go_version":
		return true
	}
	return false
}

// withDefaults validates c and returns it with defaults filled in. Every
// problem is reported at once, naming the field and how to fix it.
func (c Config) withDefaults() (Config, error) {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if strings.TrimSpace(c.ApplicationName) == "" {
		bad("ApplicationName", "empty; name the service (it becomes the service_name label)")
	} else if !utf8.ValidString(c.ApplicationName) || len(c.ApplicationName) > label.MaxValueBytes {
		bad("ApplicationName", "not valid UTF-8 or longer than %d bytes; shorten or fix it", label.MaxValueBytes)
	} else if strings.ContainsAny(c.ApplicationName, "{},=") {
		bad("ApplicationName", "%q contains one of \"{},=\", which Pyroscope's ingest name syntax reserves; remove them", c.ApplicationName)
	}
	if len(c.Pyroscope)+len(c.RemoteWrite) == 0 {
		bad("Pyroscope", "no endpoint; give at least one Pyroscope (or RemoteWrite) endpoint URL, e.g. http://pyroscope:4040")
	}
	for i, e := range c.Pyroscope {
		if err := e.HTTP.Validate(); err != nil {
			bad(fmt.Sprintf("Pyroscope[%d]", i), "%v", err)
		}
	}
	for i, e := range c.RemoteWrite {
		if err := e.HTTP.Validate(); err != nil {
			bad(fmt.Sprintf("RemoteWrite[%d]", i), "%v", err)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(c.Tags)) {
		v := c.Tags[k]
		switch {
		case k == pyroscope.LabelServiceName || k == labelPID:
			bad("Tags."+k, "set by the profiler itself; remove it (use ApplicationName for service_name)")
		case reservedTag(k):
			bad("Tags."+k, "a label of goroscope's profiles or series; rename the tag")
		case strings.HasPrefix(k, "__"):
			bad("Tags."+k, "names starting with __ are reserved by the servers; rename it")
		case !label.ValidName(k):
			bad("Tags."+k, "name must match [a-zA-Z_][a-zA-Z0-9_]*; replace other characters with '_'")
		case v == "":
			bad("Tags."+k, "empty value; give a value or remove the tag")
		case !utf8.ValidString(v) || len(v) > label.MaxValueBytes:
			bad("Tags."+k, "value is not valid UTF-8 or longer than %d bytes; shorten or fix it", label.MaxValueBytes)
		case strings.ContainsAny(v, "{},="):
			bad("Tags."+k, "value %q contains one of \"{},=\", which Pyroscope's ingest name syntax reserves; remove them", v)
		}
	}
	// Labels every profile carries: service_name, __name__, pid, tags and
	// up to three sample labels (state, wait_reason, wait_duration).
	if n := len(c.Tags) + 6; n > pyroscope.MaxLabels {
		bad("Tags", "%d tags; with the profiler's own labels that exceeds Pyroscope's %d labels per series; drop %d", len(c.Tags), pyroscope.MaxLabels, n-pyroscope.MaxLabels)
	}
	if c.ProfileTypes == nil {
		c.ProfileTypes = DefaultProfileTypes()
	}
	known := append(DefaultProfileTypes(), ProfileGoroutineLeak)
	for i, t := range c.ProfileTypes {
		switch {
		case t == pyroscopego.ProfileGoroutines:
			bad(fmt.Sprintf("ProfileTypes[%d]", i), "%q: goroutines are collected by goroscope itself, with states; remove it", t)
		case !slices.Contains(known, t):
			bad(fmt.Sprintf("ProfileTypes[%d]", i), "unknown profile type %q; use one of %v", t, known)
		case slices.Index(c.ProfileTypes, t) != i:
			bad(fmt.Sprintf("ProfileTypes[%d]", i), "%q listed twice; keep one", t)
		}
	}
	if len(c.ProfileTypes) > 0 && len(c.Pyroscope) == 0 {
		bad("ProfileTypes", "pyroscope-go profiles need a Pyroscope endpoint; add one or set ProfileTypes to []inproc.ProfileType{}")
	}
	switch {
	case c.UploadRate == 0:
		c.UploadRate = DefaultUploadRate
	case c.UploadRate < time.Second:
		bad("UploadRate", "%s is shorter than 1s; use e.g. 15s, or 0 for the default", c.UploadRate)
	}
	rate := func(field string, v *int, def int) {
		switch {
		case *v == 0:
			*v = def
		case *v < -1:
			bad(field, "%d is negative; use a positive rate, 0 for the default or -1 to leave the runtime's setting", *v)
		}
	}
	rate("MutexProfileFraction", &c.MutexProfileFraction, DefaultMutexProfileFraction)
	rate("BlockProfileRate", &c.BlockProfileRate, DefaultBlockProfileRate)
	switch {
	case c.GoroutineInterval == 0:
		c.GoroutineInterval = DefaultGoroutineInterval
	case c.GoroutineInterval == -1:
	case c.GoroutineInterval < MinGoroutineInterval:
		bad("GoroutineInterval", "%s is shorter than %s (every collection stops the world); use e.g. 10s, 0 for the default or -1 to turn it off", c.GoroutineInterval, MinGoroutineInterval)
	}
	if c.GoroutineInterval == -1 && len(c.ProfileTypes) == 0 {
		bad("GoroutineInterval", "-1 with no ProfileTypes leaves nothing to profile; enable one of them")
	}
	switch {
	case c.MaxDumpBytes == 0:
		c.MaxDumpBytes = DefaultMaxDumpBytes
	case c.MaxDumpBytes < 64<<10:
		bad("MaxDumpBytes", "%d is less than 64 KiB; use 0 for the default (%d)", c.MaxDumpBytes, DefaultMaxDumpBytes)
	}
	if c.MemoryItems < 0 {
		bad("MemoryItems", "%d is negative; use a positive count or 0 for the default", c.MemoryItems)
	}
	if err := errors.Join(errs...); err != nil {
		return c, fmt.Errorf("inproc: invalid config: %w", err)
	}
	return c, nil
}

// logger is Logger, or a logger that discards everything.
func (c *Config) logger() *slog.Logger {
	if c.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Logger
}

// enabled reports whether any of ts is collected.
func (c *Config) enabled(ts ...ProfileType) bool {
	for _, t := range ts {
		if slices.Contains(c.ProfileTypes, t) {
			return true
		}
	}
	return false
}

// applyRuntimeRates sets the mutex and block sampling rates the collected
// profile types need.
func (c *Config) applyRuntimeRates() {
	if c.enabled(ProfileMutexCount, ProfileMutexDuration) && c.MutexProfileFraction > 0 {
		runtime.SetMutexProfileFraction(c.MutexProfileFraction)
	}
	if c.enabled(ProfileBlockCount, ProfileBlockDuration) && c.BlockProfileRate > 0 {
		runtime.SetBlockProfileRate(c.BlockProfileRate)
	}
}
