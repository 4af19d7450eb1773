// SPDX-License-Identifier: (MIT OR GPL-2.0-only)
//
// Goroutine snapshot iterator for goroscope.
//
// A sleepable task iterator that, for the thread-group leader of one target
// process, copies the runtime.allgs slice, each g, and the frame-pointer chain
// of each goroutine's saved stack out of the target's memory with
// bpf_copy_from_user_task, and emits one ring buffer record per live
// goroutine. It deliberately interprets nothing beyond the walk rules that
// the userspace process_vm_readv walker implements identically (see
// walk.go). Per-walk parameters come from the walk_cfg map; the
// outcome of a pass goes to walk_res so userspace can resume a pass that
// stopped because the ring buffer was full or its time budget ran out.
//
// With skip_unchanged set, the seen map remembers, per {process, g}, what
// the last walk of that g saw (status, goid, saved sp/pc, waitreason,
// trackingSeq). A parked goroutine that still matches is emitted with
// FLAG_UNCHANGED and no PCs: its stack is not walked again.

#include "vmlinux.h"
#include "helpers.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

#define MAX_GSIZE 1024
#define MAX_FRAMES 128
#define HDR_SIZE 24
#define REC_MAX (HDR_SIZE + MAX_GSIZE + MAX_FRAMES * 8)
#define REC_BUF (HDR_SIZE + 2 * MAX_GSIZE + MAX_FRAMES * 8) // room for masked offsets
#define PTR_BATCH 64
#define SPAN_MAX 256
#define WIN 1024 // stack window size, a power of two
#define WAKE_EVERY 256

// Record flags (rec_hdr.flags). bpf2go generates their Go constants (-type
// rec_flag); record.go exports them as the Flag* constants.
enum rec_flag {
	FLAG_TRUNCATED = 1,  // max_frames PCs and the frame chain went on
	FLAG_FAULT = 2,      // reading a frame failed; PCs holds those read before
	FLAG_NEEDS_FP = 4,   // a syscall goroutine without g.syscallbp: only syscallpc
	FLAG_TORN = 8,       // the g's status or saved sp/pc changed during the walk
	FLAG_UNCHANGED = 16, // skip_unchanged found it as the last walk did: no PCs
};

// Entries of the seen map: ~256k goroutines over all walked processes (about
// 29 MB of kernel memory); beyond that the LRU evicts and those goroutines are
// simply walked in full. Entries of exited processes (and of gs no longer
// walked) age out the same way.
#define SEEN_MAX (1 << 18)

// Go runtime g statuses.
#define G_IDLE 0
#define G_RUNNING 2
#define G_SYSCALL 3
#define G_DEAD 6
#define G_COPYSTACK 8
#define G_SCAN 0x1000

// walk_result.state values; bpf2go generates their Go constants (-type
// walk_state) for walk.go.
enum walk_state {
	STATE_NONE = 0,
	STATE_DONE = 1,
	STATE_RING_FULL = 2,
	STATE_BUDGET = 3,
	STATE_HEADER_FAULT = 4,
	STATE_BAD_CONFIG = 5,
};

// Per-walk parameters, written by userspace before each pass.
struct walk_config {
	u64 allgs;      // address of runtime.allgs (slice header)
	u64 allglen;    // address of runtime.allglen
	u64 budget_ns;  // time budget of one pass
	u32 pid;        // target tgid (init pid namespace)
	u32 walk_id;    // copied into every record to tell walks apart
	u32 start;      // allgs index to start (resume) at
	u32 max_goroutines;
	u32 gsize;      // bytes of each g to copy
	u32 max_frames; // 1..MAX_FRAMES
	s32 off_stack_lo;
	s32 off_stack_hi;
	s32 off_status;
	s32 off_sched_sp;
	s32 off_sched_pc;
	s32 off_sched_bp;
	s32 off_syscall_sp;
	s32 off_syscall_pc;
	s32 off_syscall_bp; // -1: runtime has no g.syscallbp
	// Byte spans of g re-read for the torn check: they cover
	// status+sched.sp+sched.pc and status+syscallsp+syscallpc.
	u32 span_sched_off;
	u32 span_sched_len;
	u32 span_sys_off;
	u32 span_sys_len;
	// Fields compared by skip_unchanged.
	s32 off_goid;        // g.goid (u64)
	s32 off_waitreason;  // g.waitreason (u8)
	s32 off_trackingseq; // g.trackingSeq (u8)
	u32 skip_unchanged;  // 1: consult and maintain the seen map
};

// Outcome of one pass, read back by userspace.
struct walk_result {
	u32 found;   // the leader task of pid was iterated
	enum walk_state state;
	u32 next;    // first allgs index not processed
	u32 allglen; // min(len(allgs), allglen), saturated
	u32 visited;
	u32 emitted;
	u32 dead;
	u32 faults;
	s64 err; // helper error behind STATE_HEADER_FAULT / STATE_RING_FULL
};

// Ring buffer record header; followed by gsize bytes of g and nframes u64 PCs.
// bpf2go generates its Go type (-type rec_hdr), which record.go decodes.
struct rec_hdr {
	u32 walk_id;
	u32 index;
	u64 gaddr;
	enum rec_flag flags; // FLAG_* bits
	u16 gsize;
	u16 nframes;
};
_Static_assert(sizeof(struct rec_hdr) == HDR_SIZE, "HDR_SIZE is not sizeof(struct rec_hdr)");

// Key of the seen map: one g of one process. start is the low 32 bits of the
// process's start time, so a reused pid does not inherit its predecessor's gs.
struct seen_key {
	u32 tgid;
	u32 start;
	u64 gaddr;
};

// What the last walk of a g saw.
struct seen_val {
	u64 goid;
	u64 sp; // sched.sp, or syscallsp in a system call
	u64 pc; // sched.pc, or syscallpc
	u32 status; // without the scan bit
	u8 waitreason;
	u8 trackingseq;
	u16 pad;
};

// pass_state is the loop state of one pass and of the goroutine in hand.
//
// It lives in map memory (scratch.ps), not on the BPF stack, on purpose: the
// verifier tracks stack and register scalars precisely, so every distinct
// value a loop variable can take at a bpf_loop callback's entry is another
// state to explore, and kernels that re-verify callbacks until their entry
// states converge (Linux >= 6.7, and stable backports) multiply that by the
// nesting of the frame walk inside the goroutine loop. A value loaded from a
// map is an unknown scalar, so the callbacks' entry states are all the same
// and converge at once; bounds are re-checked wherever a value becomes an
// offset or a size. Budget: 150,000 processed instructions on every kernel
// of the test matrix (bpf/verifier_test.go).
struct pass_state {
	u64 ptrs_addr; // allgs backing array
	u64 deadline;
	u32 start;      // first allgs index of this pass
	u32 n;          // allgs entries to visit
	u32 batch_base; // allgs index of ptrs[0]
	u32 batch_len;  // valid entries in ptrs
	u32 start_time; // low bits of the process start time, for seen_key
	u32 pad0;

	// The goroutine in hand.
	u64 gaddr;
	u32 idx;
	u32 status; // atomicstatus as copied
	enum rec_flag flags;
	u32 nf; // PCs stored so far
	u32 faults;
	u32 track;    // 1: maintain its seen entry
	u32 has_prev; // 1: it had a seen entry
	u32 pad1;

	// Its frame-pointer walk.
	u64 lo, hi; // g.stack bounds
	u64 fp, prev;
	u64 wlo, whi; // stack window [wlo, whi) held in scratch.win
};

struct scratch {
	// The header at the start of rec, as a type only (no bytes): it puts
	// struct rec_hdr in the BTF for bpf2go. The code writes the header
	// through a cast of rec.
	struct rec_hdr hdr[0];
	u8 rec[REC_BUF];
	u64 ptrs[2 * PTR_BATCH]; // 2 *: room for the masked batch size
	u8 span[SPAN_MAX + 8]; // + 8: masked offsets may reach SPAN_MAX - 1
	u8 win[2 * WIN];       // stack window; 2 *: room for masked sizes
	u64 frame[2];          // the frame at fp: saved fp, return address
	struct pass_state ps;
	struct seen_key key;
	struct seen_val cur;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct walk_config);
} walk_cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct walk_result);
} walk_res SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct scratch);
} walk_buf SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SEEN_MAX);
	__type(key, struct seen_key);
	__type(value, struct seen_val);
} seen SEC(".maps");

// Userspace may resize this before load (power of two, multiple of the page size).
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 << 20);
} events SEC(".maps");

// loop_ctx is the bpf_loop context: only the target task, which cannot be
// stored in a map. Everything else is looked up from the maps.
struct loop_ctx {
	struct task_struct *task;
};

// maps fetches the three per-walk map values; it returns 0 if one is missing.
static __always_inline int maps(struct walk_config **cfg, struct walk_result **res, struct scratch **s)
{
	u32 zero = 0;

	*cfg = bpf_map_lookup_elem(&walk_cfg, &zero);
	*res = bpf_map_lookup_elem(&walk_res, &zero);
	*s = bpf_map_lookup_elem(&walk_buf, &zero);
	return *cfg && *res && *s;
}

// DEFINE_READ defines name(buf, o), which reads a type at byte offset o of
// buf, an array of size bytes (a power of two), or 0 when the value would
// not fit. The offset is re-bounded after an optimization barrier: clang
// may otherwise check one copy of o and index with another, which the
// verifier rejects.
#define DEFINE_READ(name, type, size)                                     \
	static __always_inline type name(const u8 *buf, u32 o)           \
	{                                                                 \
		if (o > (size) - sizeof(type))                            \
			return 0;                                         \
		barrier_var(o);                                           \
		o &= (size) - 1;                                          \
		return *(type *)(buf + o);                                \
	}

DEFINE_READ(g_u64, u64, MAX_GSIZE)
DEFINE_READ(g_u32, u32, MAX_GSIZE)
DEFINE_READ(g_u8, u8, MAX_GSIZE)
DEFINE_READ(span_read_u64, u64, SPAN_MAX)
DEFINE_READ(span_read_u32, u32, SPAN_MAX)

// load_u64, load_u32 and load_u8 read the field at offset off of the copied g.
static __always_inline u64 load_u64(struct scratch *s, s32 off) { return g_u64(s->rec + HDR_SIZE, off); }
static __always_inline u32 load_u32(struct scratch *s, s32 off) { return g_u32(s->rec + HDR_SIZE, off); }
static __always_inline u8 load_u8(struct scratch *s, s32 off) { return g_u8(s->rec + HDR_SIZE, off); }

// span_u64 and span_u32 read the field at g offset off from the torn-check
// re-read of the span that starts at span_off.
static __always_inline u64 span_u64(struct scratch *s, s32 off, u32 span_off)
{
	return span_read_u64(s->span, (u32)off - span_off);
}
static __always_inline u32 span_u32(struct scratch *s, s32 off, u32 span_off)
{
	return span_read_u32(s->span, (u32)off - span_off);
}

// put_pc stores PC number nf of the record whose g part is gsize bytes.
static __always_inline void put_pc(struct scratch *s, u32 gsize, u32 nf, u64 pc)
{
	if (gsize > MAX_GSIZE || nf >= MAX_FRAMES)
		return;
	// Masks after the barrier give the verifier bounds on the registers
	// actually used (see load_u64); rec has room for the masked maxima.
	barrier_var(gsize);
	barrier_var(nf);
	gsize &= 2 * MAX_GSIZE - 1;
	nf &= MAX_FRAMES - 1;
	*(u64 *)(s->rec + HDR_SIZE + gsize + nf * 8) = pc;
}

// load_gaddr sets ps->gaddr to allgs[ps->idx], refilling the pointer batch
// as needed. It returns -1 when the entry cannot be read.
static __always_inline int load_gaddr(struct task_struct *task, struct scratch *s)
{
	struct pass_state *ps = &s->ps;
	u32 idx = ps->idx;
	u32 rel = idx - ps->batch_base;
	u32 cnt;

	if (ps->batch_len == 0 || rel >= ps->batch_len) {
		cnt = ps->n - idx;
		if (cnt > PTR_BATCH)
			cnt = PTR_BATCH;
		if (cnt == 0)
			return -1;
		barrier_var(cnt);
		cnt &= 2 * PTR_BATCH - 1; // a no-op that bounds the register for the verifier
		ps->batch_len = 0;
		if (bpf_copy_from_user_task(s->ptrs, cnt * 8, (void *)(ps->ptrs_addr + (u64)idx * 8), task, 0) != 0) {
			// The batch may cross into an unreadable page; try the one entry.
			cnt = 1;
			if (bpf_copy_from_user_task(s->ptrs, 8, (void *)(ps->ptrs_addr + (u64)idx * 8), task, 0) != 0)
				return -1;
		}
		ps->batch_base = idx;
		ps->batch_len = cnt;
		rel = 0;
	}
	ps->gaddr = s->ptrs[rel & (PTR_BATCH - 1)];
	return 0;
}

// read_frame reads the 16 bytes at ps->fp (saved fp, return address) into
// s->frame. It serves them from a copy of up to WIN bytes of stack starting
// at an earlier fp, and refills that window when fp leaves it: one copy
// instead of one per frame.
static __always_inline int read_frame(struct task_struct *task, struct scratch *s)
{
	struct pass_state *ps = &s->ps;
	u64 fp = ps->fp, end;
	u32 len, o;

	if (fp < ps->wlo || fp + 16 > ps->whi) {
		end = ps->hi;
		if (end > fp + WIN)
			end = fp + WIN;
		len = end - fp;
		ps->wlo = ps->whi = 0;
		if (len < 16) { // only with a misaligned stack.hi: read the frame as is
			len = 16;
			end = fp + 16;
		}
		if (len > WIN)
			return -1;
		barrier_var(len);
		len &= 2 * WIN - 1;
		if (bpf_copy_from_user_task(s->win, len, (void *)fp, task, 0) != 0)
			// Maybe only the window's tail is unreadable: try the one frame.
			return bpf_copy_from_user_task(s->frame, 16, (void *)fp, task, 0) != 0 ? -1 : 0;
		ps->wlo = fp;
		ps->whi = end;
	}
	o = fp - ps->wlo;
	if (o > WIN - 16)
		return -1;
	barrier_var(o);
	o &= WIN - 1;
	s->frame[0] = *(u64 *)(s->win + o);
	s->frame[1] = *(u64 *)(s->win + o + 8);
	return 0;
}

// walk_frame appends the return address of the frame at ps->fp; it returns 1 to stop.
static long walk_frame(u64 j, struct loop_ctx *lc)
{
	struct walk_config *cfg;
	struct walk_result *res;
	struct scratch *s;
	struct pass_state *ps;
	u64 fp;

	if (!maps(&cfg, &res, &s))
		return 1;
	ps = &s->ps;
	fp = ps->fp;
	if (fp == 0 || (fp & 7) != 0 || fp < ps->lo || ps->hi < 8 || fp >= ps->hi - 8 || fp <= ps->prev)
		return 1;
	if (ps->nf >= cfg->max_frames) {
		ps->flags |= FLAG_TRUNCATED;
		return 1;
	}
	if (read_frame(lc->task, s) != 0) {
		ps->flags |= FLAG_FAULT;
		ps->faults++;
		return 1;
	}
	if (s->frame[1] == 0)
		return 1;
	put_pc(s, cfg->gsize, ps->nf, s->frame[1]);
	ps->nf++;
	ps->prev = fp;
	ps->fp = s->frame[0];
	return 0;
}

// g_offsets picks the saved sp/pc fields and torn-check span for status st.
static __always_inline void g_offsets(struct walk_config *cfg, u32 st, s32 *off_sp, s32 *off_pc, u32 *span_off,
				      u32 *span_len)
{
	if (st == G_SYSCALL) {
		*off_sp = cfg->off_syscall_sp;
		*off_pc = cfg->off_syscall_pc;
		*span_off = cfg->span_sys_off;
		*span_len = cfg->span_sys_len;
	} else {
		*off_sp = cfg->off_sched_sp;
		*off_pc = cfg->off_sched_pc;
		*span_off = cfg->span_sched_off;
		*span_len = cfg->span_sched_len;
	}
}

// unchanged looks the g up in the seen map; it returns 1 when the g is
// parked exactly where the last walk of it left it. It leaves s->key and
// s->cur set for remember.
static __always_inline int unchanged(struct walk_config *cfg, struct scratch *s, u32 st, s32 off_sp, s32 off_pc)
{
	struct pass_state *ps = &s->ps;
	struct seen_val *prev;

	s->key.tgid = cfg->pid;
	s->key.start = ps->start_time;
	s->key.gaddr = ps->gaddr;
	s->cur.goid = load_u64(s, cfg->off_goid);
	s->cur.sp = load_u64(s, off_sp);
	s->cur.pc = load_u64(s, off_pc);
	s->cur.status = st;
	s->cur.waitreason = load_u8(s, cfg->off_waitreason);
	s->cur.trackingseq = load_u8(s, cfg->off_trackingseq);
	s->cur.pad = 0;
	ps->track = 1;
	prev = bpf_map_lookup_elem(&seen, &s->key);
	if (!prev)
		return 0;
	ps->has_prev = 1;
	// The g was copied in one read, so there is nothing to tear either.
	return prev->goid == s->cur.goid && prev->sp == s->cur.sp && prev->pc == s->cur.pc &&
	       prev->status == s->cur.status && prev->waitreason == s->cur.waitreason &&
	       prev->trackingseq == s->cur.trackingseq;
}

// remember records what this walk saw of a tracked g, or forgets a torn one.
static __always_inline void remember(struct scratch *s)
{
	struct pass_state *ps = &s->ps;

	if (!ps->track)
		return;
	if (ps->flags & FLAG_TORN) {
		// The stack walked may not be the one of cur: forget the g.
		if (ps->has_prev)
			bpf_map_delete_elem(&seen, &s->key);
		return;
	}
	bpf_map_update_elem(&seen, &s->key, &s->cur, BPF_ANY);
}

// walk_stack stores the goroutine's saved pc and walks its frame pointers.
static __always_inline void walk_stack(struct loop_ctx *lc, struct walk_config *cfg, struct scratch *s, u32 st,
				       s32 off_pc)
{
	struct pass_state *ps = &s->ps;
	u64 pc = load_u64(s, off_pc);

	if (pc != 0) {
		put_pc(s, cfg->gsize, 0, pc);
		ps->nf = 1;
	}
	if (st == G_SYSCALL) {
		if (cfg->off_syscall_bp < 0) {
			ps->flags |= FLAG_NEEDS_FP;
			return;
		}
		ps->fp = load_u64(s, cfg->off_syscall_bp);
	} else {
		ps->fp = load_u64(s, cfg->off_sched_bp);
	}
	ps->lo = load_u64(s, cfg->off_stack_lo);
	ps->hi = load_u64(s, cfg->off_stack_hi);
	ps->prev = 0;
	ps->wlo = ps->whi = 0;
	bpf_loop(MAX_FRAMES + 1, walk_frame, lc, 0);
}

// torn_check re-reads status and the saved sp/pc: did they change while the
// stack was walked?
static __always_inline void torn_check(struct loop_ctx *lc, struct walk_config *cfg, struct scratch *s, s32 off_sp,
				       s32 off_pc, u32 span_off, u32 span_len)
{
	struct pass_state *ps = &s->ps;

	if (span_len > SPAN_MAX)
		span_len = SPAN_MAX;
	if (bpf_copy_from_user_task(s->span, span_len, (void *)(ps->gaddr + span_off), lc->task, 0) != 0) {
		ps->flags |= FLAG_FAULT;
		ps->faults++;
	} else if (span_u32(s, cfg->off_status, span_off) != ps->status ||
		   span_u64(s, off_sp, span_off) != load_u64(s, off_sp) ||
		   span_u64(s, off_pc, span_off) != load_u64(s, off_pc)) {
		ps->flags |= FLAG_TORN;
	}
}

// emit sends the record of the goroutine in hand; it returns 1 to end the pass.
static __always_inline int emit(struct walk_config *cfg, struct walk_result *res, struct scratch *s)
{
	struct pass_state *ps = &s->ps;
	struct rec_hdr *hdr = (struct rec_hdr *)s->rec;
	u32 gsize = cfg->gsize, nf = ps->nf;
	u64 size;

	hdr->walk_id = cfg->walk_id;
	hdr->index = ps->idx;
	hdr->gaddr = ps->gaddr;
	hdr->flags = ps->flags;
	hdr->gsize = gsize;
	hdr->nframes = nf;

	size = HDR_SIZE + (u64)gsize + (u64)nf * 8;
	if (size > REC_MAX)
		size = REC_MAX;
	// Waking the reader costs an IPI per record; wake it every WAKE_EVERY
	// records instead (it also polls, and drains the ring after each pass).
	res->err = bpf_ringbuf_output(&events, s->rec, size,
				      (res->emitted % WAKE_EVERY) == WAKE_EVERY - 1 ? BPF_RB_FORCE_WAKEUP
										 : BPF_RB_NO_WAKEUP);
	if (res->err != 0) {
		res->next = ps->idx;
		res->state = STATE_RING_FULL;
		return 1;
	}
	res->visited++;
	res->emitted++;
	res->faults += ps->faults;
	return 0;
}

// walk_one copies goroutine start + i and emits its record; it returns 1 to end the pass.
static long walk_one(u64 i, struct loop_ctx *lc)
{
	struct walk_config *cfg;
	struct walk_result *res;
	struct scratch *s;
	struct pass_state *ps;
	u32 gsize, st, span_off, span_len;
	s32 off_sp, off_pc;

	if (!maps(&cfg, &res, &s))
		return 1;
	ps = &s->ps;
	// Check the budget only after the first goroutine so every pass progresses.
	if (i > 0 && bpf_ktime_get_ns() > ps->deadline) {
		res->next = ps->start + (u32)i;
		res->state = STATE_BUDGET;
		return 1;
	}
	ps->idx = ps->start + (u32)i;
	ps->flags = 0;
	ps->nf = 0;
	ps->faults = 0;
	ps->track = 0;
	ps->has_prev = 0;

	if (load_gaddr(lc->task, s) != 0) {
		res->visited++;
		res->faults++;
		return 0;
	}
	if (ps->gaddr == 0) {
		res->visited++;
		return 0;
	}
	gsize = cfg->gsize;
	if (gsize > MAX_GSIZE) { // checked in walk_goroutines; a bound for the verifier
		res->state = STATE_BAD_CONFIG;
		return 1;
	}
	if (bpf_copy_from_user_task(s->rec + HDR_SIZE, gsize, (void *)ps->gaddr, lc->task, 0) != 0) {
		res->visited++;
		res->faults++;
		return 0;
	}

	ps->status = load_u32(s, cfg->off_status);
	st = ps->status & ~G_SCAN;
	if (st == G_IDLE || st == G_DEAD) {
		res->visited++;
		res->dead++;
		return 0;
	}
	g_offsets(cfg, st, &off_sp, &off_pc, &span_off, &span_len);

	if (st != G_RUNNING && st != G_COPYSTACK) {
		if (cfg->skip_unchanged && unchanged(cfg, s, st, off_sp, off_pc)) {
			ps->flags = FLAG_UNCHANGED;
			return emit(cfg, res, s);
		}
		walk_stack(lc, cfg, s, st, off_pc);
	}
	torn_check(lc, cfg, s, off_sp, off_pc, span_off, span_len);
	remember(s);
	return emit(cfg, res, s);
}

SEC("iter.s/task")
int walk_goroutines(struct bpf_iter__task *ctx)
{
	struct task_struct *task = ctx->task;
	struct walk_config *cfg;
	struct walk_result *res;
	struct scratch *s;
	struct pass_state *ps;
	struct loop_ctx lc;
	u64 slice[2], allglen, n;

	if (!task)
		return 0;
	if (!maps(&cfg, &res, &s))
		return 0;
	if (task->pid != cfg->pid || task->tgid != cfg->pid)
		return 0;
	res->found = 1;

	if (cfg->gsize > MAX_GSIZE || cfg->max_frames == 0 || cfg->max_frames > MAX_FRAMES ||
	    cfg->span_sched_len > SPAN_MAX || cfg->span_sys_len > SPAN_MAX ||
	    (cfg->skip_unchanged && (cfg->off_goid < 0 || cfg->off_waitreason < 0 || cfg->off_trackingseq < 0))) {
		res->state = STATE_BAD_CONFIG;
		return 0;
	}

	res->err = bpf_copy_from_user_task(slice, sizeof(slice), (void *)cfg->allgs, task, 0);
	if (res->err == 0)
		res->err = bpf_copy_from_user_task(&allglen, sizeof(allglen), (void *)cfg->allglen, task, 0);
	if (res->err != 0) {
		res->state = STATE_HEADER_FAULT;
		return 0;
	}

	n = slice[1];
	if (allglen < n)
		n = allglen;
	res->allglen = n > 0xffffffffULL ? 0xffffffff : (u32)n;
	if (n > cfg->max_goroutines)
		n = cfg->max_goroutines;
	if (cfg->start >= n) {
		res->next = n;
		res->state = STATE_DONE;
		return 0;
	}

	ps = &s->ps;
	ps->ptrs_addr = slice[0];
	ps->start_time = (u32)task->start_time;
	ps->start = cfg->start;
	ps->n = n;
	ps->batch_base = 0;
	ps->batch_len = 0;
	ps->deadline = bpf_ktime_get_ns() + cfg->budget_ns;
	lc.task = task;
	bpf_loop(n - cfg->start, walk_one, &lc, 0);
	if (res->state == STATE_NONE) {
		res->next = n;
		res->state = STATE_DONE;
	}
	return 0;
}
