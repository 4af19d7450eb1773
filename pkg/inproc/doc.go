// Package inproc is goroscope's in-process profiler, for programs the
// agent cannot observe from outside (no eBPF or ptrace rights: serverless
// functions, locked-down containers). A program imports it and calls Start:
//
//   - github.com/grafana/pyroscope-go collects CPU, heap (alloc and inuse),
//     mutex and block profiles;
//   - a collector goroutine dumps every goroutine (the text of
//     /debug/pprof/goroutine?debug=2) each GoroutineInterval and folds it, as
//     the agent folds a walk, into the "goroutine" and "goroutine_wall"
//     profiles, split by state, wait reason and wait duration, and into the
//     goroscope_* series;
//   - everything is pushed with the agent's push stack (push/pyroscope,
//     push/remotewrite, push/queue: bounded memory queues, retries with
//     backoff, Retry-After) and the agent's labels (service_name, pid), so
//     the agent's dashboards and queries work unchanged.
//
// pyroscope-go's uploads are captured instead of sent and queued, unchanged,
// for every Pyroscope endpoint's /ingest: they share the queues' retries and
// Stop's flush.
//
// Nothing is lost silently: Stats counts what every kind of upload became
// (sent, rejected, dropped, pending), the first failure is logged through
// slog's default logger when no Logger is set, and Stop's error says what
// was lost.
//
// The package needs Go 1.26.7 or later (the module's go directive, set by
// its github.com/prometheus/prometheus dependency).
//
// A dump says less than the agent's walk: goroutines running when the world
// stopped show as runnable, runtime-internal frames and system goroutines
// are hidden, wait times are known in whole minutes only, and pprof labels
// appear only under GODEBUG=tracebacklabels=1 (Go 1.26+).
//
// Cost: the goroutine dump stops the world for its whole duration (about
// 7.5 µs per goroutine; docs/sdk.md has the measurements); the agent reads
// the same facts from outside without stopping the program. Prefer the agent
// wherever it can run, and keep GoroutineInterval at 10s or more for
// programs with many goroutines.
//
// It is goroscope's one public Go API: the other packages of this module
// are internal to the goroscope binary.
package inproc
