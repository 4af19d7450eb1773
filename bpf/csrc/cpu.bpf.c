// SPDX-License-Identifier: (MIT OR GPL-2.0-only)
//
// On-CPU sampler for goroscope (amd64).
//
// A perf_event program attached to a CPU-clock event on every CPU. A sample
// whose process is in the procs map is attributed to the goroutine on CPU
// and to its user stack, walked by frame pointers, and counted under
// {pid, goid, g.labels, stack hash} in one of two buffers (counts0/stacks0,
// counts1/stacks1): userspace flips gen once per interval and drains the
// buffer no longer written.
//
// Finding the goroutine: Go code keeps the current g in R14. R14 is trusted
// when it is the m.curg or m.g0 of its own g.m, which is false in C code,
// in assembly that uses R14, and in signal handlers; then the g the runtime
// keeps in thread-local storage (at fsbase + tls_g) names the m instead. The
// goroutine is that m's curg, as for Go's own profiler (sigprof).
//
// Which stack: the frame walk is bounded by the stack the sp lies in: curg's
// or g0's. On g0's (system stack, cgo call) the walk continues from curg's
// saved sched.pc/bp when sched.sp is set (systemstack, mcall and asmcgocall
// set it; gogo clears it when the goroutine runs again).
//
// Like goroutines.bpf.c it interprets nothing else: symbols, labels and the
// frame-less-leaf correction (caller) are for userspace.

#include "vmlinux.h"
#include "helpers.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

#define MAX_USER 128 // user PCs per stack, a power of two
#define MAX_KERN 32  // kernel PCs per stack
#define PROCS_MAX 4096
#define COUNTS_MAX 16384 // userspace may resize both before load
#define STACKS_MAX 8192
// Bound of the frame walk when the stack's g is unknown: a thread stack.
#define GUESS_STACK (8 << 20)

#define MAP_HASH 1
#define MAP_PERCPU_ARRAY 6
#define BPF_NOEXIST 1

static u64 (*bpf_get_current_pid_tgid)(void) = (void *)14;
static long (*bpf_get_stack)(void *ctx, void *buf, u32 size, u64 flags) = (void *)67;
static long (*bpf_probe_read_user)(void *dst, u32 size, const void *unsafe_ptr) = (void *)112;
static long (*bpf_probe_read_kernel)(void *dst, u32 size, const void *unsafe_ptr) = (void *)113;
static struct task_struct *(*bpf_get_current_task_btf)(void) = (void *)158;
static long (*bpf_task_pt_regs)(struct task_struct *task) = (void *)175;

// cpu_proc.flags bits. bpf2go generates their Go constants (-type
// proc_flag) for cpusampler.go.
enum proc_flag {
	PROC_R14 = 1,    // the runtime keeps g in R14 (Go >= 1.17 on amd64)
	PROC_KERNEL = 2, // record kernel frames of samples taken in the kernel
};

// cpu_key.flags bits. bpf2go generates their Go constants (-type
// sample_flag); cpusampler.go exports them as the Sample* constants.
enum sample_flag {
	SAMPLE_R14 = 1,        // the m was found through R14
	SAMPLE_TLS = 2,        // through the g in thread-local storage
	SAMPLE_SYSTEM = 4,     // sp was on g0's stack
	SAMPLE_SWITCHED = 8,   // the stack goes on with curg's saved one at user[nsys]
	SAMPLE_KERNEL = 16,    // the CPU was in the kernel (kern holds its frames)
	SAMPLE_TRUNCATED = 32, // MAX_USER PCs and the chain went on
	SAMPLE_FAULT = 64,     // a frame could not be read
	SAMPLE_NO_STACK = 128, // sp was on neither curg's nor g0's stack
};

// Indices of the stats map; mirrored in cpusampler.go.
enum {
	STAT_SAMPLES = 0,   // samples of watched processes
	STAT_NO_G = 1,      // no m found through R14 or TLS
	STAT_COUNTS_FULL = 2,
	STAT_STACKS_FULL = 3,
	STAT_REGS_FAULT = 4, // user registers unreadable (kernel-mode sample)
	STAT_MAX = 5,
};

// Per-process configuration, written by userspace.
struct cpu_proc {
	u64 text_lo; // run-time [text_lo, text_hi) of the Go text
	u64 text_hi;
	s64 tls_g; // offset of the current g's slot from fsbase; 0: unknown
	s32 off_stack_lo; // g.stack.lo
	s32 off_stack_hi;
	s32 off_m; // g.m
	s32 off_sched_sp;
	s32 off_sched_pc;
	s32 off_sched_bp;
	s32 off_goid;
	s32 off_labels; // -1: no g.labels
	s32 off_m_curg;
	s32 off_m_g0;
	enum proc_flag flags;
	u32 pad;
};

// One stack. user[0] is the interrupted pc, then return addresses.
struct cpu_stack {
	u64 user[MAX_USER];
	u64 kern[MAX_KERN];
	u64 caller; // the word at the user sp when it is a Go text address, else 0
	u32 nuser;
	u32 nkern;
	u32 nsys; // with SAMPLE_SWITCHED: user[nsys] is curg's sched.pc
	u32 pad;
};

// Key of the counts maps.
struct cpu_key {
	u32 pid;
	enum sample_flag flags;
	u64 goid;  // 0: no goroutine (scheduler, no m found)
	u64 labels; // curg's g.labels pointer
	u64 stack;  // key of the stack in the stacks map
};

// The user registers read.
struct uregs {
	u64 ip, sp, bp, r14;
};

// x86-64 struct pt_regs, the user-visible layout of bpf_user_pt_regs_t
// (a UAPI: no CO-RE needed, and the perf_event context may not be relocated).
struct cpu_regs {
	u64 r15, r14, r13, r12, bp, bx, r11, r10, r9, r8;
	u64 ax, cx, dx, si, di, orig_ax, ip, cs, flags, sp, ss;
};

struct cpu_perf_ctx {
	struct cpu_regs regs;
	u64 sample_period;
	u64 addr;
};

#pragma clang attribute push(__attribute__((preserve_access_index)), apply_to = record)
struct thread_struct___cpu {
	unsigned long fsbase;
};
struct task_struct___cpu {
	struct thread_struct___cpu thread;
};
#pragma clang attribute pop

struct {
	__uint(type, MAP_HASH);
	__uint(max_entries, PROCS_MAX);
	__type(key, u32);
	__type(value, struct cpu_proc);
} procs SEC(".maps");

// gen[0] selects the buffer written: 0 or 1.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u32);
} gen SEC(".maps");

struct {
	__uint(type, MAP_HASH);
	__uint(max_entries, COUNTS_MAX);
	__type(key, struct cpu_key);
	__type(value, u64);
} counts0 SEC(".maps"), counts1 SEC(".maps");

struct {
	__uint(type, MAP_HASH);
	__uint(max_entries, STACKS_MAX);
	__type(key, u64);
	__type(value, struct cpu_stack);
} stacks0 SEC(".maps"), stacks1 SEC(".maps");

struct {
	__uint(type, MAP_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct cpu_stack);
} scratch SEC(".maps");

struct {
	__uint(type, MAP_PERCPU_ARRAY);
	__uint(max_entries, STAT_MAX);
	__type(key, u32);
	__type(value, u64);
} stats SEC(".maps");

static __always_inline void stat_inc(u32 idx)
{
	u64 *v = bpf_map_lookup_elem(&stats, &idx);

	if (v)
		*v += 1;
}

// read_u64 returns the word at user address addr, or 0 when unreadable.
static __always_inline u64 read_u64(u64 addr)
{
	u64 v = 0;

	if (addr == 0 || bpf_probe_read_user(&v, sizeof(v), (void *)addr) != 0)
		return 0;
	return v;
}

static __always_inline u64 mix(u64 h, u64 v)
{
	h ^= v;
	h *= 0x9e3779b97f4a7c15ULL;
	h ^= h >> 29;
	return h;
}

// fp_walk is the state of one frame-pointer walk.
struct fp_walk {
	struct cpu_stack *st;
	u64 fp, lo, hi, prev;
	u64 hash;
	u32 n;
	u32 flags;
};

static __always_inline void push(struct fp_walk *w, u64 pc)
{
	u32 n = w->n;

	if (n >= MAX_USER) {
		w->flags |= SAMPLE_TRUNCATED;
		return;
	}
	barrier_var(n);
	n &= MAX_USER - 1;
	w->st->user[n] = pc;
	w->n = n + 1;
	w->hash = mix(w->hash, pc);
}

// walk_frame appends the return address of the frame at w->fp; 1 stops.
static long walk_frame(u64 i, struct fp_walk *w)
{
	u64 fp = w->fp;
	u64 frame[2];

	if (fp == 0 || (fp & 7) != 0 || fp < w->lo || fp > w->hi - 16 || fp <= w->prev)
		return 1;
	if (w->n >= MAX_USER) {
		w->flags |= SAMPLE_TRUNCATED;
		return 1;
	}
	if (bpf_probe_read_user(frame, sizeof(frame), (void *)fp) != 0) {
		w->flags |= SAMPLE_FAULT;
		return 1;
	}
	if (frame[1] == 0)
		return 1;
	push(w, frame[1]);
	w->prev = fp;
	w->fp = frame[0];
	return 0;
}

// read_uregs reads the interrupted user registers: the context's when the
// CPU was in user mode, else those saved at kernel entry.
static __always_inline int read_uregs(struct cpu_perf_ctx *ctx, struct uregs *r, u32 *flags)
{
	struct cpu_regs k;
	long pt;

	if ((ctx->regs.cs & 3) == 3) {
		u64 ip = ctx->regs.ip, sp = ctx->regs.sp, bp = ctx->regs.bp, r14 = ctx->regs.r14;

		// Load now: clang would otherwise keep a ctx+off pointer for
		// later, and the verifier rejects loads through a moved ctx.
		barrier_var(ip);
		barrier_var(sp);
		barrier_var(bp);
		barrier_var(r14);
		r->ip = ip;
		r->sp = sp;
		r->bp = bp;
		r->r14 = r14;
		return 0;
	}
	*flags |= SAMPLE_KERNEL;
	pt = bpf_task_pt_regs(bpf_get_current_task_btf());
	if (!pt || bpf_probe_read_kernel(&k, sizeof(k), (void *)pt) != 0)
		return -1;
	r->ip = k.ip;
	r->sp = k.sp;
	r->bp = k.bp;
	r->r14 = k.r14;
	return 0;
}

SEC("perf_event")
int sample_cpu(struct cpu_perf_ctx *ctx)
{
	u32 pid = bpf_get_current_pid_tgid() >> 32;
	u32 zero = 0, flags = 0, nk = 0, *genp;
	u64 m = 0, curg = 0, g0 = 0, goid = 0, labels = 0;
	u64 stk[2], lo, hi, h, *cnt, one = 1;
	struct cpu_proc *p;
	struct cpu_stack *st;
	struct uregs r = {};
	struct fp_walk w = {};
	struct cpu_key key = {};
	void *counts, *stacks;
	long n;

	p = bpf_map_lookup_elem(&procs, &pid);
	if (!p)
		return 0;
	stat_inc(STAT_SAMPLES);
	st = bpf_map_lookup_elem(&scratch, &zero);
	genp = bpf_map_lookup_elem(&gen, &zero);
	if (!st || !genp)
		return 0;
	if (read_uregs(ctx, &r, &flags) != 0) {
		stat_inc(STAT_REGS_FAULT);
		return 0;
	}

	// The m: through R14 when it holds curg or g0 of its own m, else TLS.
	if ((p->flags & PROC_R14) && r.r14 != 0) {
		m = read_u64(r.r14 + p->off_m);
		if (m != 0) {
			curg = read_u64(m + p->off_m_curg);
			if (r.r14 == curg)
				flags |= SAMPLE_R14;
			else if (r.r14 == (g0 = read_u64(m + p->off_m_g0)))
				flags |= SAMPLE_R14;
		}
	}
	if (!(flags & SAMPLE_R14)) {
		m = curg = g0 = 0;
		if (p->tls_g != 0) {
			struct task_struct___cpu *t = (void *)bpf_get_current_task_btf();
			u64 tg = read_u64(t->thread.fsbase + p->tls_g);

			m = tg ? read_u64(tg + p->off_m) : 0;
			if (m != 0) {
				curg = read_u64(m + p->off_m_curg);
				flags |= SAMPLE_TLS;
			}
		}
		if (m == 0)
			stat_inc(STAT_NO_G);
	}

	// The stack sp is on bounds the walk.
	lo = r.sp;
	hi = r.sp + GUESS_STACK;
	stk[0] = stk[1] = 0;
	if (curg != 0 && bpf_probe_read_user(stk, sizeof(stk), (void *)(curg + p->off_stack_lo)) == 0 &&
	    r.sp >= stk[0] && r.sp < stk[1]) {
		hi = stk[1];
	} else {
		u64 g0s[2] = {};

		if (g0 == 0 && m != 0) // read only when sp is not on curg's stack
			g0 = read_u64(m + p->off_m_g0);
		if (g0 != 0 && bpf_probe_read_user(g0s, sizeof(g0s), (void *)(g0 + p->off_stack_lo)) == 0 &&
		    r.sp >= g0s[0] && r.sp < g0s[1]) {
			hi = g0s[1];
			flags |= SAMPLE_SYSTEM;
		} else {
			flags |= SAMPLE_NO_STACK;
		}
	}

	w.st = st;
	w.lo = lo;
	w.hi = hi;
	w.fp = r.bp;
	w.hash = 0x2545f4914f6cdd1dULL;
	push(&w, r.ip);
	st->caller = read_u64(r.sp);
	if (st->caller < p->text_lo || st->caller >= p->text_hi)
		st->caller = 0;
	bpf_loop(MAX_USER, walk_frame, &w, 0);
	st->nsys = 0;

	// On the system stack: go on with curg's saved stack.
	if ((flags & SAMPLE_SYSTEM) && curg != 0 && stk[1] != 0) {
		u64 ssp = read_u64(curg + p->off_sched_sp);

		if (ssp >= stk[0] && ssp < stk[1]) {
			st->nsys = w.n;
			flags |= SAMPLE_SWITCHED;
			push(&w, read_u64(curg + p->off_sched_pc));
			w.fp = read_u64(curg + p->off_sched_bp);
			w.lo = ssp;
			w.hi = stk[1];
			w.prev = 0;
			bpf_loop(MAX_USER, walk_frame, &w, 0);
		}
	}
	flags |= w.flags;
	st->nuser = w.n;

	if ((flags & SAMPLE_KERNEL) && (p->flags & PROC_KERNEL)) {
		n = bpf_get_stack(ctx, st->kern, sizeof(st->kern), 0);
		if (n > 0)
			nk = n / 8;
	}
	st->nkern = nk;
	h = w.hash;
	for (u32 i = 0; i < MAX_KERN; i++) {
		if (i >= nk)
			break;
		h = mix(h, st->kern[i]);
	}
	h = mix(h, st->caller);
	h = mix(h, ((u64)st->nsys << 32) | (nk << 16) | st->nuser);

	if (curg != 0) {
		goid = read_u64(curg + p->off_goid);
		if (p->off_labels >= 0)
			labels = read_u64(curg + p->off_labels);
	}
	key.pid = pid;
	key.flags = flags;
	key.goid = goid;
	key.labels = labels;
	key.stack = h;

	if (*genp & 1) {
		counts = &counts1;
		stacks = &stacks1;
	} else {
		counts = &counts0;
		stacks = &stacks0;
	}
	if (!bpf_map_lookup_elem(stacks, &h) && bpf_map_update_elem(stacks, &h, st, BPF_NOEXIST) != 0 &&
	    !bpf_map_lookup_elem(stacks, &h)) {
		stat_inc(STAT_STACKS_FULL);
		return 0;
	}
	cnt = bpf_map_lookup_elem(counts, &key);
	if (cnt) {
		__sync_fetch_and_add(cnt, 1);
		return 0;
	}
	if (bpf_map_update_elem(counts, &key, &one, BPF_NOEXIST) != 0) {
		cnt = bpf_map_lookup_elem(counts, &key);
		if (cnt)
			__sync_fetch_and_add(cnt, 1);
		else
			stat_inc(STAT_COUNTS_FULL);
	}
	return 0;
}
