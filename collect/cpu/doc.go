// Package cpu samples the goroutines on CPU of Go processes from outside,
// with a perf-event BPF program (package bpf's CPUSampler) that fires on
// every CPU at a fixed frequency of CPU time, finds the goroutine running
// (its id and pprof labels) and walks its stack by frame pointers.
//
// A Sampler is loaded once; processes are added and removed as discovery
// finds them; Drain, once per interval, returns each process's samples
// symbolised with the executable's pclntab (inlined calls expanded) and
// labelled with the goroutine's pprof labels. BuildProfile turns them into
// a process_cpu pprof profile shaped like Go's own CPU profile, and
// Process.Goroutines gives the on-CPU samples per goroutine for the
// running part of the goroutine_wall profile.
//
// Like all of collect/, it is internal to the goroscope binary, not meant
// for import outside this module.
package cpu
