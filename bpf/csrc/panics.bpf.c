// SPDX-License-Identifier: (MIT OR GPL-2.0-only)
//
// Panic and fatal-error probe for goroscope (x86-64).
//
// One program, attached by userspace as a uprobe at the entry of a Go
// executable's runtime.fatalpanic, runtime.fatal and runtime.throw (found
// through the pclntab, so stripped binaries too), per watched process
// (the uprobe's PID filter). These functions run once, as the process
// dies: the probe costs nothing in steady state.
//
// The attach cookie says which function fired and where things are:
//   bits 0-7   enum panic_kind
//   bits 8-15  offset of arg (an eface) in runtime._panic (8 before Go 1.26, 0 since)
//   bits 16-31 offset of goid in runtime.g
//   bits 32-39 offset of m in runtime.g (0: the goroutine behind g0 is not read)
//   bits 40-47 offset of sched in runtime.g (a gobuf: sp, then pc at +8)
//   bits 48-55 offset of curg in runtime.m
//   bits 56-63 offset of bp in the gobuf (48 before Go 1.25, 40 since)
// Go's register ABI: the first argument is in RAX (fatalpanic's *_panic;
// fatal's and throw's string pointer, its length in RBX); R14 holds the
// current g.
//
// The record carries the panic value's type and data words, the string it
// points at (a panic value of kind string: preprintpanics has already
// turned error and Stringer values into their strings), and the
// frame-pointer chain of the panicking goroutine's stack, as program
// counters, for userspace to symbolise with the executable's pclntab.
// When the probe fires on a system stack (g0: a stack overflow found by
// newstack, an out-of-memory in the allocator), the record holds g0's
// frames and then those of the goroutine that was running (m.curg, from
// its saved sched), whose id it carries: the one the runtime prints.

#include "vmlinux.h"
#include "helpers.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

#define EVENTS_SIZE (256 << 10)
#define MSG_MAX 1024  // bytes of a message copied (a power of two)
#define STACK_MAX 64  // frames of the stack copied
#define KIND_STRING 24 // abi.String
#define KIND_MASK 0x1f

#define MAP_PERCPU_ARRAY 6

static long (*bpf_probe_read_user)(void *dst, u32 size, const void *unsafe_ptr) = (void *)112;
static u64 (*bpf_get_current_pid_tgid)(void) = (void *)14;
static u64 (*bpf_get_attach_cookie)(void *ctx) = (void *)174;

// Which runtime function fired. bpf2go generates the Go constants (-type panic_kind).
enum panic_kind {
	PANIC_KIND_PANIC = 1, // runtime.fatalpanic: an unrecovered panic
	PANIC_KIND_FATAL = 2, // runtime.fatal: a user-facing fatal error
	PANIC_KIND_THROW = 3, // runtime.throw: an internal fatal error
};

// Indices of the stats map; mirrored in panictracer.go.
enum {
	PSTAT_EVENTS = 0, // records written
	PSTAT_LOST = 1,   // records lost: the ring buffer was full
	PSTAT_MAX = 2,
};

// x86-64 struct pt_regs (UAPI layout).
struct panic_regs {
	u64 r15, r14, r13, r12, bp, bx, r11, r10, r9, r8;
	u64 ax, cx, dx, si, di, orig_ax, ip, cs, flags, sp, ss;
};

// One panic or fatal error, written to the ring buffer.
struct panic_event {
	u64 ktime;    // bpf_ktime_get_ns at the probe
	u32 pid;      // tgid
	u32 tid;      // the thread
	enum panic_kind kind;
	u32 nstack;   // valid entries of stack
	u32 nsystem;  // of which the first ones are g0's (the rest m.curg's)
	u32 pad;
	u64 goid;     // the current goroutine's id (0 on g0 or if unreadable)
	u64 arg_type; // fatalpanic: the panic value's *_type (0: nil)
	u64 arg_data; // fatalpanic: the panic value's data pointer
	u64 words[4]; // fatalpanic: 32 bytes at arg_data (when readable)
	u32 type_kind; // fatalpanic: the value type's abi.Kind (masked), 0 unknown
	u32 msg_copied; // bytes of msg valid
	u64 msg_len;    // the string's full length
	u64 stack[STACK_MAX]; // pcs: the probed function's entry, then return addresses
	// above[i]: the word just above the frame record stack[i] was read
	// from (0 if none): where a frameless function that faulted, and so
	// "called" sigpanic, keeps its own return address.
	u64 above[STACK_MAX];
	u8 msg[MSG_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, EVENTS_SIZE);
} panic_events SEC(".maps");

struct {
	__uint(type, MAP_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct panic_event);
} panic_scratch SEC(".maps");

struct {
	__uint(type, MAP_PERCPU_ARRAY);
	__uint(max_entries, PSTAT_MAX);
	__type(key, u32);
	__type(value, u64);
} panic_stats SEC(".maps");

static __always_inline void pstat_inc(u32 idx)
{
	u64 *v = bpf_map_lookup_elem(&panic_stats, &idx);

	if (v)
		*v += 1;
}

// read_str copies up to MSG_MAX bytes of the Go string (ptr, len).
static __always_inline void read_str(struct panic_event *ev, u64 ptr, u64 len)
{
	u64 n = len;

	ev->msg_len = len;
	if (n > MSG_MAX)
		n = MSG_MAX;
	if (n == 0 || ptr == 0)
		return;
	barrier_var(n);
	n &= (MSG_MAX - 1) | MSG_MAX;
	if (n > MSG_MAX || n == 0)
		return;
	if (bpf_probe_read_user(ev->msg, n, (void *)ptr) == 0)
		ev->msg_copied = n;
}

// walk is walk_frame's state.
struct walk {
	struct panic_event *ev;
	u64 fp; // the next frame record
	// the goroutine's saved pc and bp, to go on with when g0's chain
	// ends (0: none)
	u64 curg_pc, curg_bp;
	u32 n;  // entries of ev->stack filled
};

// walk_frame appends the return address of the frame record at w->fp,
// and the word above it, and moves to the caller's record; at the end of
// g0's chain, it appends the goroutine's saved pc and goes on with its
// chain (bpf_loop callback: 1 ends the walk).
static long walk_frame(u32 i, void *arg)
{
	struct walk *w = arg;
	struct panic_event *ev = w->ev;
	u64 frame[2] = {};
	u32 k;

	if (w->n >= STACK_MAX)
		return 1;
	k = w->n & (STACK_MAX - 1);
	if (w->fp == 0 || bpf_probe_read_user(frame, sizeof(frame), (void *)w->fp) != 0 || frame[1] == 0) {
		if (!w->curg_pc)
			return 1;
		ev->nsystem = w->n;
		ev->stack[k] = w->curg_pc;
		ev->above[k] = 0;
		w->n++;
		w->fp = w->curg_bp;
		w->curg_pc = 0;
		return 0;
	}
	ev->stack[k] = frame[1];
	bpf_probe_read_user(&ev->above[k], 8, (void *)(w->fp + 16)); // zeroed if unreadable
	w->n++;
	// The chain must go up the stack; else it ends here.
	w->fp = frame[0] > w->fp ? frame[0] : 0;
	return 0;
}

SEC("uprobe")
int probe_panic(struct panic_regs *ctx)
{
	u64 cookie = bpf_get_attach_cookie(ctx);
	enum panic_kind kind = cookie & 0xff;
	u64 argoff = (cookie >> 8) & 0xff;
	u64 goidoff = (cookie >> 16) & 0xffff;
	u64 goff_m = (cookie >> 32) & 0xff;
	u64 goff_sched = (cookie >> 40) & 0xff;
	u64 moff_curg = (cookie >> 48) & 0xff;
	u64 bpoff = (cookie >> 56) & 0xff;
	u64 pidtgid = bpf_get_current_pid_tgid();
	struct panic_event *ev;
	u32 zero = 0;
	u64 curg_pc = 0, curg_bp = 0;
	struct walk w = {};
	u32 n = 0;

	ev = bpf_map_lookup_elem(&panic_scratch, &zero);
	if (!ev)
		return 0;
	ev->ktime = bpf_ktime_get_ns();
	ev->pid = pidtgid >> 32;
	ev->tid = (u32)pidtgid;
	ev->kind = kind;
	ev->goid = 0;
	ev->arg_type = 0;
	ev->arg_data = 0;
	ev->words[0] = ev->words[1] = ev->words[2] = ev->words[3] = 0;
	ev->type_kind = 0;
	ev->msg_copied = 0;
	ev->msg_len = 0;
	if (ctx->r14 && goidoff)
		bpf_probe_read_user(&ev->goid, sizeof(ev->goid), (void *)(ctx->r14 + goidoff));

	if (kind == PANIC_KIND_PANIC) {
		u64 eface[2] = {};

		if (ctx->ax && bpf_probe_read_user(eface, sizeof(eface), (void *)(ctx->ax + argoff)) == 0) {
			u8 tk = 0;

			ev->arg_type = eface[0];
			ev->arg_data = eface[1];
			if (eface[0] && bpf_probe_read_user(&tk, 1, (void *)(eface[0] + 23)) == 0)
				ev->type_kind = tk & KIND_MASK;
			if (eface[1])
				bpf_probe_read_user(ev->words, sizeof(ev->words), (void *)eface[1]);
			if (ev->type_kind == KIND_STRING)
				read_str(ev, ev->words[0], ev->words[1]);
		}
	} else {
		read_str(ev, ctx->ax, ctx->bx);
	}

	// On g0 (goid 0): the goroutine the M was running, from its sched,
	// whose frames follow g0's.
	if (ev->goid == 0 && ctx->r14 && goff_m && goff_sched && moff_curg && bpoff) {
		u64 m = 0, curg = 0;

		if (bpf_probe_read_user(&m, 8, (void *)(ctx->r14 + goff_m)) == 0 && m &&
		    bpf_probe_read_user(&curg, 8, (void *)(m + moff_curg)) == 0 &&
		    curg && curg != ctx->r14 &&
		    bpf_probe_read_user(&curg_pc, 8, (void *)(curg + goff_sched + 8)) == 0 &&
		    bpf_probe_read_user(&curg_bp, 8, (void *)(curg + goff_sched + bpoff)) == 0 &&
		    curg_pc)
			bpf_probe_read_user(&ev->goid, sizeof(ev->goid), (void *)(curg + goidoff));
		else
			curg_pc = 0;
	}

	// The stack: at the entry, [sp] is the return address into the caller
	// and bp still the caller's frame pointer; then, on g0, the
	// goroutine's from its saved pc and bp. One bpf_loop: the verifier
	// checks the callback, not each iteration.
	ev->nsystem = 0;
	ev->above[0] = ev->above[1] = 0;
	ev->stack[n++] = ctx->ip;
	if (bpf_probe_read_user(&ev->stack[n], 8, (void *)ctx->sp) == 0)
		n++;
	w.ev = ev;
	w.n = n;
	w.fp = ctx->bp;
	w.curg_pc = curg_pc;
	w.curg_bp = curg_bp;
	bpf_loop(STACK_MAX + 1, walk_frame, &w, 0);
	ev->nstack = w.n;

	if (bpf_ringbuf_output(&panic_events, ev, sizeof(*ev), 0) != 0) {
		pstat_inc(PSTAT_LOST);
		return 0;
	}
	pstat_inc(PSTAT_EVENTS);
	return 0;
}
