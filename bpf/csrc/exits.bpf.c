// SPDX-License-Identifier: (MIT OR GPL-2.0-only)
//
// Process exit tracer for goroscope.
//
// sched_process_exit (tp_btf) fires in do_exit for every exiting thread on
// the host, so the program's first step is the filter: the exiting thread's
// tgid, read from its task_struct, is looked up in the watch map, which
// userspace fills with the processes it watches. Every other thread costs
// that one hash lookup.
//
// A watched process is reported once, when its thread group is dead: the
// tracepoint runs after do_exit's atomic_dec_and_test(&signal->live), so
// live is 0 at the last thread. Two threads exiting at once may both see 0;
// deleting the pid from the watch map decides which one reports (a delete
// succeeds once), and makes the report exactly-once. The status is the one
// wait(2) gives the parent (wait_task_zombie): signal->group_exit_code when
// SIGNAL_GROUP_EXIT is set (exit_group, a fatal signal, a core dump, and
// since Linux 5.19 the last thread's exit too), else the group leader's
// exit_code. Execve's de_thread kills the other threads but live never
// reaches 0: an exec is no exit.
//
// oom:mark_victim (raw tracepoint) marks a watched victim in its watch map
// entry, so that its exit record carries EXIT_OOM_VICTIM. Its argument is
// the victim's pid (thread id) before Linux 6.8 and the victim's
// task_struct since; userspace tells which from the kernel's BTF and sets
// victim_is_task before loading. With a pid, only a victim that is the
// thread-group leader is recognized (the OOM killer picks the leader unless
// it has lost its mm).

#include "vmlinux.h"
#include "helpers.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

#define WATCH_MAX 16384 // userspace may resize it before load
#define EVENTS_SIZE (64 << 10)
#define SIGNAL_GROUP_EXIT 0x4 // include/linux/sched/signal.h, unchanged since 2.6

#define MAP_HASH 1
#define MAP_PERCPU_ARRAY 6

static long (*bpf_probe_read_kernel)(void *dst, u32 size, const void *unsafe_ptr) = (void *)113;

// exit_event.flags bits. bpf2go generates their Go constants (-type
// exit_flag) for exittracer.go.
enum exit_flag {
	EXIT_GROUP = 1,      // SIGNAL_GROUP_EXIT was set: status is signal->group_exit_code
	EXIT_OOM_VICTIM = 2, // oom:mark_victim named the process
};

// Indices of the stats map; mirrored in exittracer.go.
enum {
	STAT_EXITS = 0,     // exit records written
	STAT_LOST = 1,      // exit records lost: the ring buffer was full
	STAT_OOM_MARKS = 2, // watched processes marked as OOM victims
	STAT_MAX = 3,
};

// Value of the watch map (key: tgid).
struct exit_watch {
	enum exit_flag flags; // EXIT_OOM_VICTIM once marked
	u32 pad;
};

// One exit, written to the ring buffer.
struct exit_event {
	u64 ktime;          // bpf_ktime_get_ns (CLOCK_MONOTONIC) at the exit
	u64 start_boottime; // the group leader's start_boottime: ns since boot
	u32 pid;            // the tgid
	u32 tid;            // the thread that saw the group dead
	u32 status;         // the wait(2) status: exit code << 8, or signal | 0x80 core
	enum exit_flag flags;
};

// For bpf2go (-type exit_event): the record is only ever on the stack.
const struct exit_event *unused_exit_event __attribute__((unused));

// Set by userspace before load: mark_victim's argument is a task_struct
// pointer (Linux >= 6.8), not a pid.
volatile const u32 victim_is_task = 0;

#pragma clang attribute push(__attribute__((preserve_access_index)), apply_to = record)
struct signal_struct___exits {
	struct {
		int counter;
	} live;
	int group_exit_code;
	unsigned int flags;
};
struct task_struct___exits {
	pid_t pid;
	pid_t tgid;
	int exit_code;
	u64 start_boottime;
	struct task_struct___exits *group_leader;
	struct signal_struct___exits *signal;
};
#pragma clang attribute pop

struct {
	__uint(type, MAP_HASH);
	__uint(max_entries, WATCH_MAX);
	__type(key, u32);
	__type(value, struct exit_watch);
} watch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, EVENTS_SIZE);
} exit_events SEC(".maps");

struct {
	__uint(type, MAP_PERCPU_ARRAY);
	__uint(max_entries, STAT_MAX);
	__type(key, u32);
	__type(value, u64);
} exit_stats SEC(".maps");

static __always_inline void stat_inc(u32 idx)
{
	u64 *v = bpf_map_lookup_elem(&exit_stats, &idx);

	if (v)
		*v += 1;
}

SEC("tp_btf/sched_process_exit")
int trace_exit(u64 *ctx)
{
	struct task_struct___exits *t = (void *)ctx[0];
	struct signal_struct___exits *sig;
	struct exit_event ev = {};
	struct exit_watch *w;
	u32 tgid = t->tgid;

	w = bpf_map_lookup_elem(&watch, &tgid);
	if (!w)
		return 0;
	sig = t->signal;
	if (sig->live.counter != 0)
		return 0; // not the last thread
	ev.flags = w->flags;
	if (bpf_map_delete_elem(&watch, &tgid) != 0)
		return 0; // another thread reported it
	ev.ktime = bpf_ktime_get_ns();
	ev.start_boottime = t->group_leader->start_boottime;
	ev.pid = tgid;
	ev.tid = t->pid;
	if (sig->flags & SIGNAL_GROUP_EXIT) {
		ev.status = sig->group_exit_code;
		ev.flags |= EXIT_GROUP;
	} else {
		ev.status = t->group_leader->exit_code;
	}
	if (bpf_ringbuf_output(&exit_events, &ev, sizeof(ev), 0) != 0) {
		stat_inc(STAT_LOST);
		return 0;
	}
	stat_inc(STAT_EXITS);
	return 0;
}

struct raw_tp_args {
	u64 args[1];
};

SEC("raw_tp/mark_victim")
int trace_oom_victim(struct raw_tp_args *ctx)
{
	struct task_struct___exits *t;
	struct exit_watch *w;
	u64 arg = ctx->args[0];
	u32 tgid = (u32)arg;

	if (victim_is_task) {
		t = (void *)arg;
		if (bpf_probe_read_kernel(&tgid, sizeof(tgid), &t->tgid) != 0)
			return 0;
	}
	w = bpf_map_lookup_elem(&watch, &tgid);
	if (!w)
		return 0;
	w->flags |= EXIT_OOM_VICTIM;
	stat_inc(STAT_OOM_MARKS);
	return 0;
}
