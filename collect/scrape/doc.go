// Package scrape collects profiles from Go programs that serve
// net/http/pprof, for hosts and programs the eBPF and procmem walkers
// cannot reach: CPU (/debug/pprof/profile?seconds=N), heap, mutex and block
// (whose cumulative counts become deltas between collections), the
// goroutine dump (debug=2, parsed into the same snapshot.Snapshot the
// walkers produce, so it folds into the same state-tagged profiles), and Go
// 1.26's goroutineleak profile where a target offers it.
//
// A Scraper is built from a Config (the YAML section, see Config and
// TargetConfig) and either runs every target on its own schedule (Run) or
// collects one cycle on demand (Scrape). Each cycle of a target gives a
// Result: its profiles, its snapshot, and an *Error per profile that failed.
// One failure never stops the rest: other profiles of the target and other
// targets are collected all the same, every request has a deadline, and a
// target that does not answer holds no decode slot.
//
// Delta profiles. The runtime's heap (alloc_*), mutex and block profiles
// count since the process started. The scraper keeps each target's previous
// counts per stack and label set and emits the difference, with DurationNanos
// the time between the two collections. The first collection of a target
// only sets the baseline. A restart (a count going down, a stack
// disappearing, the executable's build ID or mapping changing) makes the new
// profile the baseline: nothing negative is ever emitted.
//
// See docs/scrape.md for the behaviour in detail and how it differs from
// Grafana Alloy's pyroscope.scrape.
//
// Like all of collect/, it is internal to the goroscope binary, not meant
// for import outside this module.
package scrape
