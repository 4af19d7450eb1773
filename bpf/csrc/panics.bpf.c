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
//   bits 0-3   enum panic_kind
//   bits 4-5   offset of arg (an eface) in runtime._panic, in words (1
//              before Go 1.26, 0 since); link (*_panic) follows arg
//   bits 6-7   offset of goexit in runtime._panic after recovered (2 in
//              Go 1.21 and 1.25+, 1 in 1.22-1.24)
//   bits 8-14  offset of recovered (a bool) in runtime._panic (0: the
//              flags are not read)
//   bit  15    repanicked follows recovered (Go 1.25+)
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
// The panics the newest one links to (panics of deferred functions run
// while panicking, a Goexit's), which the runtime prints before it
// (printpanics), follow: up to LINKS_MAX, newest first, each with its
// value and its flags (recovered, goexit, repanicked).
// When the probe fires on a system stack (g0: a stack overflow found by
// newstack, an out-of-memory in the allocator), the record holds g0's
// frames and then those of the goroutine that was running (m.curg, from
// its saved sched), whose id it carries: the one the runtime prints.

#include "vmlinux.h"
#include "helpers.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

#define EVENTS_SIZE (256 << 10)
#define MSG_MAX 1024  // bytes of a message copied (a power of two)
#define LINKS_MAX 3   // older panics of the chain copied
#define G_PANIC 32    // offset of _panic in runtime.g (after stack, stackguard0/1), Go 1.21-1.26
#define LINK_MSG_MAX 256 // bytes of an older panic's string copied (a power of two)
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

// A panic's flags (runtime._panic's bools); mirrored in panictracer.go.
enum panic_flag {
	PANIC_FLAG_RECOVERED = 1,  // recovered
	PANIC_FLAG_GOEXIT = 2,     // goexit: a runtime.Goexit, not a panic
	PANIC_FLAG_REPANICKED = 4, // repanicked (Go 1.25+): the next newer panic has its value
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

// A runtime._panic's value and flags.
struct panic_value {
	u64 arg_type;   // the panic value's *_type (0: nil)
	u64 arg_data;   // the panic value's data pointer
	u64 words[4];   // 32 bytes at arg_data (when readable)
	u32 type_kind;  // the value type's abi.Kind (masked), 0 unknown
	u32 flags;      // enum panic_flag
	u64 msg_len;    // kind string: the string's full length
	u32 msg_copied; // bytes of the string copied
	u32 pad;
};

// An older panic of the chain: its value and the start of its string.
struct panic_link {
	struct panic_value val;
	u8 msg[LINK_MSG_MAX];
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
	u32 nlinks;   // fatalpanic: valid entries of links
	u32 more;     // fatalpanic: the chain goes on past links (unread)
	// fatalpanic: the newest panic's value (its string in msg); fatal,
	// throw: msg_len and msg_copied of the message in msg
	struct panic_value val;
	u64 stack[STACK_MAX]; // pcs: the probed function's entry, then return addresses
	// above[i]: the word just above the frame record stack[i] was read
	// from (0 if none): where a frameless function that faulted, and so
	// "called" sigpanic, keeps its own return address.
	u64 above[STACK_MAX];
	u8 msg[MSG_MAX];
	// fatalpanic: the panics the newest one links to, newest first
	struct panic_link links[LINKS_MAX];
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

// copy_str copies up to max bytes (a power of two) of the Go string
// (ptr, len) to dst and returns how many.
static __always_inline u32 copy_str(u8 *dst, u64 max, u64 ptr, u64 len)
{
	u64 n = len;

	if (n > max)
		n = max;
	if (n == 0 || ptr == 0)
		return 0;
	barrier_var(n);
	n &= (max - 1) | max;
	if (n > max || n == 0)
		return 0;
	if (bpf_probe_read_user(dst, n, (void *)ptr) != 0)
		return 0;
	return n;
}

// read_panic reads the value and flags of the runtime._panic at p, as the
// cookie places them, into v (zeroed first; the string is the caller's to
// copy) and its link into *link. It returns 0, or -1 when p is unreadable.
static __always_inline int read_panic(u64 p, u64 cookie, struct panic_value *v, u64 *link)
{
	u64 argoff = ((cookie >> 4) & 0x3) * 8;
	u64 goexit_shift = ((cookie >> 6) & 0x3) * 8;
	u64 recoff = (cookie >> 8) & 0x7f;
	u64 pa[3] = {}; // arg (type, data), link
	u32 b = 0;
	u8 tk = 0;

	v->arg_type = 0;
	v->arg_data = 0;
	v->words[0] = v->words[1] = v->words[2] = v->words[3] = 0;
	v->type_kind = 0;
	v->flags = 0;
	v->msg_len = 0;
	v->msg_copied = 0;
	*link = 0;
	if (!p || bpf_probe_read_user(pa, sizeof(pa), (void *)(p + argoff)) != 0)
		return -1;
	v->arg_type = pa[0];
	v->arg_data = pa[1];
	*link = pa[2];
	if (pa[0] && bpf_probe_read_user(&tk, 1, (void *)(pa[0] + 23)) == 0)
		v->type_kind = tk & KIND_MASK;
	if (pa[1])
		bpf_probe_read_user(v->words, sizeof(v->words), (void *)pa[1]);
	if (v->type_kind == KIND_STRING)
		v->msg_len = v->words[1];
	// The bools from recovered on, as one little-endian word.
	if (recoff && bpf_probe_read_user(&b, sizeof(b), (void *)(p + recoff)) == 0) {
		if (b & 0xff)
			v->flags |= PANIC_FLAG_RECOVERED;
		if (goexit_shift && (b >> goexit_shift) & 0xff)
			v->flags |= PANIC_FLAG_GOEXIT;
		if ((cookie & (1 << 15)) && (b >> 8) & 0xff)
			v->flags |= PANIC_FLAG_REPANICKED;
	}
	return 0;
}

// chain is read_link's state.
struct chain {
	struct panic_event *ev;
	u64 p;      // the next _panic to read (0: none)
	u64 cookie;
};

// read_link copies the i-th older panic of the chain, c->p, into
// ev->links[i] and moves to its link (bpf_loop callback: 1 ends the walk).
static long read_link(u32 i, void *arg)
{
	struct chain *c = arg;
	struct panic_event *ev = c->ev;
	struct panic_link *l;
	u64 next = 0, k = i;

	barrier_var(k); // bounded in the register it indexes with
	if (k >= LINKS_MAX || c->p == 0)
		return 1;
	l = &ev->links[k];
	if (read_panic(c->p, c->cookie, &l->val, &next) != 0)
		return 1; // c->p stays: ev->more says the chain goes on
	if (l->val.type_kind == KIND_STRING)
		l->val.msg_copied = copy_str(l->msg, LINK_MSG_MAX, l->val.words[0], l->val.words[1]);
	ev->nlinks = k + 1;
	c->p = next;
	return 0;
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
	enum panic_kind kind = cookie & 0xf;
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
	struct chain c = {};
	u32 n = 0;

	ev = bpf_map_lookup_elem(&panic_scratch, &zero);
	if (!ev)
		return 0;
	ev->ktime = bpf_ktime_get_ns();
	ev->pid = pidtgid >> 32;
	ev->tid = (u32)pidtgid;
	ev->kind = kind;
	ev->goid = 0;
	ev->nlinks = 0;
	ev->more = 0;
	if (ctx->r14 && goidoff)
		bpf_probe_read_user(&ev->goid, sizeof(ev->goid), (void *)(ctx->r14 + goidoff));

	if (kind == PANIC_KIND_PANIC) {
		// The newest panic, then the older ones it links to.
		if (read_panic(ctx->ax, cookie, &ev->val, &c.p) == 0 && ev->val.type_kind == KIND_STRING)
			ev->val.msg_copied = copy_str(ev->msg, MSG_MAX, ev->val.words[0], ev->val.words[1]);
		if (c.p) {
			c.ev = ev;
			c.cookie = cookie;
			bpf_loop(LINKS_MAX, read_link, &c, 0);
			ev->more = c.p != 0;
		}
	} else {
		u64 unused;

		read_panic(0, 0, &ev->val, &unused); // zeroes the value
		ev->val.msg_len = ctx->bx;
		ev->val.msg_copied = copy_str(ev->msg, MSG_MAX, ctx->ax, ctx->bx);
		// A fatal error while the goroutine panics (in a deferred
		// function): Go 1.26 prints its panics first. The chain, newest
		// first, from g._panic.
		if (kind == PANIC_KIND_FATAL && ctx->r14 &&
		    bpf_probe_read_user(&c.p, 8, (void *)(ctx->r14 + G_PANIC)) == 0 && c.p) {
			c.ev = ev;
			c.cookie = cookie;
			bpf_loop(LINKS_MAX, read_link, &c, 0);
			ev->more = c.p != 0;
		}
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
