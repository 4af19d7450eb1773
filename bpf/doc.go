// Package bpf holds goroscope's BPF programs and their loaders.
//
// The goroutine walker snapshots the goroutines of a running Go process
// from the kernel: a sleepable BPF task iterator copies runtime.allgs, each
// g and the frame-pointer chain of each parked goroutine out of the
// target's memory (bpf_copy_from_user_task) and streams them to userspace
// over a ring buffer.
//
// The CPU sampler is a perf-event program (CPU clock, every CPU) that, for
// the watched processes only, walks the user stack by frame pointers, finds
// the goroutine on CPU (R14, checked against its m, else the g in thread
// local storage, then m.curg) with its goid and pprof label set, and counts
// the samples in double-buffered kernel maps drained once per interval.
//
// The exit tracer reports how watched processes end: a BTF tracepoint
// program on sched_process_exit, filtered in the kernel to the watched
// thread groups and reporting each once, when its last thread exits, with
// the status wait(2) gives the parent; and a raw tracepoint program on
// oom:mark_victim that marks OOM killer victims. It needs BTF and Linux
// >= 5.8.
//
// The walker and the sampler need Linux >= 5.18 with BTF (CONFIG_DEBUG_INFO_BTF=y), and root or
// CAP_BPF+CAP_PERFMON. On Linux >= 6.1 the iterator visits only the target
// task; on older kernels it visits every task and filters in BPF.
//
// The Go side of the programs' structures and enums (walk_config,
// walk_result and walk_state, rec_hdr and rec_flag, cpu_proc, cpu_key,
// cpu_stack, proc_flag and sample_flag, exit_event, exit_watch and
// exit_flag) is generated from csrc/ by bpf2go (*_bpfel.go): the C is
// their one definition.
//
// It is internal to the goroscope binary, not meant for import outside
// this module.
package bpf
