package ui

// runtimeReasons are the wait reasons (the runtime's waitReasonStrings,
// runtime2.go) that only the runtime's own goroutines wait with: those
// its gopark calls mark traceBlockSystemGoroutine (GC mark workers idle,
// the scavenger, the finalizer and cleanup goroutines, forcegc, the trace
// reader, the GOMAXPROCS updater), and the background sweeper and a GC
// mark worker at work. The other reasons a runtime goroutine may show
// ("GC assist wait", "wait for GC cycle", "stopping the world", ...) are
// also those of the application's goroutines that the runtime stops, and
// are not in it. Go 1.21 through 1.26 (pkg/golayout's tables).
var runtimeReasons = map[string]bool{
	"GC worker (idle)":          true, // waitReasonGCWorkerIdle: gcBgMarkWorker
	"GC worker (active)":        true, // waitReasonGCWorkerActive: gcBgMarkWorker
	"GC sweep wait":             true, // waitReasonGCSweepWait: bgsweep
	"GC scavenge wait":          true, // waitReasonGCScavengeWait: bgscavenge
	"finalizer wait":            true, // waitReasonFinalizerWait: runfinq
	"cleanup wait":              true, // waitReasonCleanupWait: runCleanups (1.25+)
	"force gc (idle)":           true, // waitReasonForceGCIdle: forcegchelper
	"trace reader (blocked)":    true, // waitReasonTraceReaderBlocked: the trace reader
	"GOMAXPROCS updater (idle)": true, // waitReasonUpdateGOMAXPROCSIdle: updateMaxProcsGoroutine (1.25+)
}

// IsRuntimeReason reports whether only the Go runtime's own goroutines
// (GC workers, the sweeper and scavenger, the finalizer, forcegc, the
// trace reader, ...) wait with wait reason reason.
func IsRuntimeReason(reason string) bool { return runtimeReasons[reason] }
