// Package daemon is goroscope's agent: the long-running process behind
// `goroscope agent` that watches every Go process of the host, stores
// their goroutine profiles and pushes them to the configured backends.
//
// It is internal to the goroscope binary (agent/): its API is what the
// binary needs (New, Agent.Run, Config, LoadConfig, and the Executables
// cache `goroscope ps` shares), not a library contract.
//
// # The pipeline
//
// Four stages, each meeting the next through one small interface:
//
//	discover   ──▶ walk        ──▶ fold         ──▶ sink
//	discoverer     walk.Walker     foldSnapshot     Appender
//
// Stage by stage:
//
//   - discover (discover.go): a discoverer lists the Go processes to
//     watch (discovery.Scanner over /proc, by the config's rules). The
//     discovery loop attaches to new ones (process.Target, sharing each
//     executable's parse through Executables) and retires exited ones.
//   - walk (schedule.go, snapshot.go, procwalker.go): the snapshot loop
//     walks each watched process when it is due, within a per-cycle time
//     budget. A process walks through its procWalker, which points at
//     whichever walk.Walker serves now: procmem while the eBPF walker
//     loads (agent/bpfload), eBPF once it has.
//   - fold (fold.go, encode.go): foldSnapshot turns a snapshot, and the
//     process's CPU window when sampled (cpu.go), into an Output: the
//     goroutines and goroutine_wall profiles, the series, the summary and
//     the binary snapshot, gzipped.
//   - sink (sink.go, storesink.go, push.go): an Appender takes each
//     Output. The agent writes to one, a fan-out over the local store's
//     and the push endpoints' (whose queues deliver on their own); a
//     failing sink keeps the output from no other, and its failure is
//     counted under its name (goroscope_errors_total{reason="store"}).
//
// Two more producers feed the same sink: the CPU loop (cpu.go), which
// drains the eBPF CPU sampler into each process's window and gives a
// retired process its last process_cpu profile, and the pprof scraper
// (scrape.go), whose profiles go as they are and whose goroutine dumps are
// folded like walked snapshots.
//
// Around the pipeline: the HTTP endpoints (http.go: the web UI of
// agent/ui reading the live view and the store, /metrics, /healthz,
// /debug/pprof), the agent's own metrics (metrics.go) and its
// configuration (config.go, endpoints.go).
//
// # Lifetimes
//
// New opens what the agent holds (the store, the push queues, the
// scraper); Run runs it once and closes it all before it returns. Run
// starts every goroutine in one errgroup whose context is Run's: the HTTP
// server, the push queues, the discovery, snapshot and CPU loops, the
// scraper, and the wait for the eBPF walker. The first failure (serving,
// or the eBPF walker with --walker ebpf) cancels the context for all;
// Run returns only when every one of them has returned, then closes what
// they used. There is one owner per closer: the agent closes the store,
// the queues, the targets, the walkers and the CPU sampler; the scraper is
// the agent's until Run hands it to the scrape loop, whose
// scrape.Scraper.Run closes it.
//
// The one exception is a BPF load (bpfload.Load): the kernel verifier may
// take a minute and cannot be interrupted, so its goroutine belongs to
// nobody. A stopping agent waits for it at most loadGrace, then drops it:
// what it loads later is closed on arrival, and the process exit ends it.
//
// # Locking
//
// Agent.mu guards the watched processes (procs, retired, the executables)
// and what /metrics and the UI read of them. The loops take it briefly,
// never across a walk, an encode or a sink's Append.
package daemon
