package walk

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goroscope/goroscope/bpf"
	"github.com/goroscope/goroscope/collect/process"
	"github.com/goroscope/goroscope/pkg/golayout"
	"github.com/goroscope/goroscope/pkg/snapshot"
)

// ErrLayoutMismatch reports that the goroutines read with a layout do not
// look like goroutines: the offsets or variable addresses are wrong for the
// target, and no snapshot is given rather than a wrong one.
var ErrLayoutMismatch = errors.New("runtime layout does not match the process")

// maxTornRetries bounds the re-reads of a goroutine that changed under the walk.
const maxTornRetries = 3

// exitWait is how long a failed walk waits to learn whether the process is
// exiting: it loses its memory before its pidfd reports the exit.
const exitWait = 200 * time.Millisecond

// Snapshotter takes successive snapshots of one target. It remembers each
// goroutine between snapshots to measure how long it has been blocked and to
// skip re-reading and re-symbolising stacks that did not change.
type Snapshotter struct {
	t      *process.Target
	req    Request
	walker Walker
	sym    *symbolizer
	labels *process.LabelReader
	// prev is by allgs index: allgs only grows, so a g keeps its index.
	prev []*seenG
	// Kept between snapshots to spare the allocations.
	blocked *blockedResolver
	pending []pendingWait
	syncs   []pendingWait
	// seen is how many goroutines the last walk kept.
	seen int
	// keep bounds the goroutines kept in detail per snapshot; 0 keeps all.
	keep int
	// stats describes the last walk.
	stats Stats
	// clockOffset is how far the target's CLOCK_MONOTONIC is ahead of
	// ours, in ns: the runtime's times (g.waitsince) are on its clock.
	clockOffset int64
}

// seenG is what a previous snapshot learnt of one goroutine.
type seenG struct {
	gaddr      uint64
	goid       uint64
	status     golayout.Status
	waitReason uint8
	sp, pc     uint64
	waiting    uint64
	trackSeq   uint8
	since      int64 // CLOCK_MONOTONIC ns when first seen in this wait
	frames     []snapshot.Frame
	truncated  bool
	system     bool
	createdBy  *snapshot.Frame
	walk       uint64 // walk number that last saw it
	// chans are the channels it waits on (the first one first) and blocked
	// what they were found to be, while it stays parked unchanged.
	chans   []uint64
	blocked *snapshot.BlockedOn
}

// prevOf returns what the last walk saw at allgs[index], if it was the same g.
func (s *Snapshotter) prevOf(index uint32, gaddr uint64) *seenG {
	if int(index) < len(s.prev) {
		if p := s.prev[index]; p != nil && p.gaddr == gaddr {
			return p
		}
	}
	return nil
}

// setPrev remembers p at allgs[index]; the channels the goroutine there
// waited on before are marked changed.
func (s *Snapshotter) setPrev(index uint32, p *seenG) {
	if int(index) >= len(s.prev) {
		s.prev = append(s.prev, make([]*seenG, int(index)+1-len(s.prev))...)
	}
	if old := s.prev[index]; old != nil {
		s.blocked.markDirty(old.chans)
	}
	s.prev[index] = p
}

// NewSnapshotter prepares snapshots of t with walker w.
func NewSnapshotter(t *process.Target, w Walker) *Snapshotter {
	return &Snapshotter{
		t: t, req: newRequest(t), walker: w,
		sym:         newSymbolizer(t.Bin, t.Bias),
		labels:      process.NewLabelReader(t.Mem(), t.Layout),
		blocked:     newBlockedResolver(t.Mem(), t.Layout),
		clockOffset: monotonicOffset(t.PID),
	}
}

// KeepAtMost bounds the goroutines a snapshot keeps in detail, and so the
// memory a walk of a huge process takes: when the process has more than n
// goroutines, the snapshot keeps every k-th of allgs (k the smallest stride
// that fits n) and says so in its Stride, while its Counts still count every
// goroutine. n <= 0 keeps all.
func (s *Snapshotter) KeepAtMost(n int) { s.keep = n }

// stride is the sampling stride for a process of glen goroutines.
func (s *Snapshotter) stride(glen uint64) uint32 {
	if s.keep <= 0 || glen <= uint64(s.keep) {
		return 1
	}
	return uint32((glen + uint64(s.keep) - 1) / uint64(s.keep))
}

// Target is the process snapshotted.
func (s *Snapshotter) Target() *process.Target { return s.t }

// Walker names the walker in use.
func (s *Snapshotter) Walker() string { return s.walker.Name() }

// LastStats describes the last snapshot's walk: the walker's counts, and the
// snapshotter's of the waiting goroutines read again because they moved
// while what they wait on was resolved.
func (s *Snapshotter) LastStats() Stats { return s.stats }

// monotonic is the runtime's clock (nanotime): CLOCK_MONOTONIC.
func monotonic() int64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}

// monotonicOffset returns how far process pid's CLOCK_MONOTONIC is ahead
// of ours, in ns: not 0 when it runs in a time namespace of its own (a
// checkpoint restored by CRIU, unshare --time), whose offset its clock
// carries. 0 when the offsets cannot be read: kernels before 5.6 or
// without time namespaces, where there is no offset.
func monotonicOffset(pid int) int64 {
	theirs, err := timeNamespaceOffset(fmt.Sprintf("/proc/%d", pid))
	if err != nil {
		return 0
	}
	ours, err := timeNamespaceOffset("/proc/self")
	if err != nil {
		return 0
	}
	return theirs - ours
}

// timeNamespaceOffset reads the CLOCK_MONOTONIC offset of the time
// namespace of the process at dir (/proc/PID), in ns. The file shows the
// namespace its children get, which is its own unless it unshared one
// since its last exec: then it is not its own and an error is returned.
func timeNamespaceOffset(dir string) (int64, error) {
	own, err := os.Readlink(dir + "/ns/time")
	if err != nil {
		return 0, err
	}
	if children, err := os.Readlink(dir + "/ns/time_for_children"); err != nil || children != own {
		return 0, fmt.Errorf("%s: its children's time namespace is not its own", dir)
	}
	b, err := os.ReadFile(dir + "/timens_offsets")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		var clock string
		var sec, nsec int64
		if _, err := fmt.Sscan(line, &clock, &sec, &nsec); err == nil && clock == "monotonic" {
			return sec*1e9 + nsec, nil
		}
	}
	return 0, fmt.Errorf("%s/timens_offsets: no monotonic offset in %q", dir, b)
}

// unchanged reports whether g is parked exactly as when last seen: same
// goroutine, status, wait reason, saved sp and pc, first sudog, and
// scheduling sequence.
func (s *Snapshotter) unchanged(prev *seenG, f *gFields) bool {
	return prev != nil && prev.goid == f.goid && prev.status == f.status &&
		prev.waitReason == f.waitReason && prev.sp == f.sp && prev.pc == f.pc &&
		prev.waiting == f.waiting && prev.trackSeq == f.trackSeq && f.status != golayout.StatusRunning
}

// Snapshot walks the target once.
func (s *Snapshotter) Snapshot(ctx context.Context) (*snapshot.Snapshot, error) {
	t := s.t
	if err := t.Alive(); err != nil {
		return nil, err
	}
	startWall := time.Now()
	now := monotonic()
	snap := &snapshot.Snapshot{
		PID: t.PID, Exe: t.Exe, GoVersion: t.Bin.GoVersion(),
		Time: startWall, Walker: s.walker.Name(),
	}
	walkNo := uint64(startWall.UnixNano())
	stride := uint32(1)
	if s.keep > 0 {
		// allglen now; goroutines created during the walk only make the
		// sample a little larger than asked.
		if glen, err := (&reader{mem: t.Mem()}).u64(s.req.Allglen); err == nil {
			stride = s.stride(glen)
		}
	}
	snap.Goroutines = make([]snapshot.Goroutine, 0, min(s.seen+16, max(s.keep, 16)))
	pending, syncs := s.pending[:0], s.syncs[:0]
	s.labels.Reset()
	req := s.req
	var skipped snapshot.Counts // goroutines counted but not kept
	req.Unchanged = func(index uint32, gaddr uint64, g []byte) bool {
		if index%stride != 0 {
			return true // not kept: its stack is not wanted
		}
		f := readFields(t.Layout, g)
		return s.unchanged(s.prevOf(index, gaddr), &f)
	}
	var (
		bad     int
		badWhy  string
		torn    []*bpf.GRecord
		decodeE error
	)
	decode := func(r *bpf.GRecord) error {
		// Walkers may pass on goroutines the runtime keeps but that do not
		// exist for anyone else: dead ones, and Go 1.26's dead goroutines
		// parked on cgo's extra Ms.
		status := golayout.Status(golayout.Uint32(r.G, int64(s.req.Off.AtomicStatus))).Strip()
		switch status {
		case golayout.StatusIdle, golayout.StatusDead, golayout.StatusDeadExtra:
			return nil
		}
		if r.Index%stride != 0 {
			if st, ok := state(status); ok {
				skipped.Add(st)
			}
			return nil
		}
		if r.Flags&bpf.FlagTorn != 0 {
			torn = append(torn, &bpf.GRecord{Index: r.Index, GAddr: r.GAddr})
			return nil
		}
		g, pw, why, err := s.decode(ctx, r, now, walkNo)
		if err != nil {
			decodeE = err
			return err
		}
		if why != "" {
			bad++
			if badWhy == "" {
				badWhy = fmt.Sprintf("g at %#x: %s", r.GAddr, why)
			}
			return nil
		}
		pw.index = len(snap.Goroutines)
		switch pw.kind {
		case waitChan:
			pending = append(pending, pw)
		case waitSync:
			syncs = append(syncs, pw)
		}
		snap.Goroutines = append(snap.Goroutines, g)
		return nil
	}
	st, err := s.walker.Walk(ctx, t.PID, req, decode)
	if err != nil && decodeE == nil {
		if aerr := t.AliveWithin(exitWait); aerr != nil {
			return nil, fmt.Errorf("walk pid %d: %w", t.PID, aerr)
		}
		return nil, fmt.Errorf("walk goroutines of pid %d with %s: %w", t.PID, s.walker.Name(), err)
	}
	if decodeE != nil {
		return nil, decodeE
	}
	// Goroutines that changed under the walk: read each again on its own
	// from userspace, a few times, then give up on it and count it.
	for _, tr := range torn {
		ok := false
		for try := 0; try < maxTornRetries && !ok; try++ {
			rec, err := walkOne(ctx, t.Mem(), req, tr.Index, tr.GAddr)
			if err != nil || rec == nil {
				break // dead now, or unreadable
			}
			if rec.Flags&bpf.FlagTorn != 0 {
				continue
			}
			ok = true
			if err := decode(rec); err != nil {
				return nil, err
			}
		}
		if !ok {
			snap.Dropped++
		}
	}
	// Goroutines that left since the last walk changed their channels too.
	for _, p := range s.prev {
		if p != nil && p.walk != walkNo {
			s.blocked.markDirty(p.chans)
		}
	}
	// What the waiting goroutines are blocked on is read after the walk:
	// those that moved meanwhile are read again, their entries replaced.
	s.blocked.rereads, s.blocked.lost = 0, 0
	s.blocked.sampled = stride > 1
	want := waitChan
	again := func(ps []*pendingWait) []rereadResult {
		return s.reread(ctx, snap.Goroutines, ps, want, now, walkNo, &syncs)
	}
	s.blocked.resolve(snap.Goroutines, pending, again)
	want = waitSync
	s.resolveSync(snap.Goroutines, syncs, again)
	s.pending, s.syncs = pending[:0], syncs[:0]
	st.BlockedRereads, st.BlockedUnresolved = uint32(s.blocked.rereads), uint32(s.blocked.lost)
	s.stats = st
	// A process that exited (or whose pid was reused) during the walk
	// leaves a snapshot that may mix two moments or miss goroutines.
	if err := t.Intact(); err != nil {
		return nil, fmt.Errorf("walk pid %d: exited during the walk: %w", t.PID, err)
	}
	// A wrong layout reads garbage: refuse rather than report it.
	total := len(snap.Goroutines) + bad
	if total == 0 && st.AllgLen > 0 {
		return nil, fmt.Errorf("pid %d (%s): allglen is %d but no goroutine could be read: %w", t.PID, snap.GoVersion, st.AllgLen, ErrLayoutMismatch)
	}
	if bad*20 > total { // more than 5%
		return nil, fmt.Errorf("pid %d (%s, layout from %s): %d of %d goroutines have impossible fields (first: %s); build the target without -s -w so DWARF is used, or report its Go version: %w",
			t.PID, snap.GoVersion, t.Layout.Source, bad, total, badWhy, ErrLayoutMismatch)
	}
	snap.Dropped += bad
	if dup := duplicateGoid(snap.Goroutines); dup != 0 {
		return nil, fmt.Errorf("pid %d (%s): goroutine id %d seen twice: %w", t.PID, snap.GoVersion, dup, ErrLayoutMismatch)
	}
	snap.Counts = skipped
	for _, g := range snap.Goroutines {
		snap.Counts.Add(g.State)
	}
	if stride > 1 {
		snap.Stride = int(stride)
	}
	// Forget goroutines and stacks not seen in this walk.
	s.sym.endWalk()
	s.seen = 0
	for i, p := range s.prev {
		if p != nil && p.walk != walkNo {
			s.prev[i] = nil
		} else if p != nil {
			s.seen++
		}
	}
	snap.Duration = time.Since(startWall)
	return snap, nil
}

func duplicateGoid(gs []snapshot.Goroutine) uint64 {
	ids := make([]uint64, len(gs))
	for i := range gs {
		ids[i] = gs[i].ID
	}
	slices.Sort(ids)
	for i := 1; i < len(ids); i++ {
		if ids[i] == ids[i-1] {
			return ids[i]
		}
	}
	return 0
}

// decode turns one record into a goroutine, and returns the wait whose
// blocked-on is to be resolved (pw, without its index; kind waitNone if
// none). A non-empty why says the g is implausible (and is left out); an
// error stops the walk.
func (s *Snapshotter) decode(ctx context.Context, r *bpf.GRecord, now int64, walkNo uint64) (g snapshot.Goroutine, pw pendingWait, why string, err error) {
	t := s.t
	f := readFields(t.Layout, r.G)
	if why := f.implausible(); why != "" {
		return g, pw, why, nil
	}
	st, _ := state(f.status)
	g = snapshot.Goroutine{
		ID: f.goid, State: st, Addr: r.GAddr,
		ParentID:       f.parentGoid,
		LockedToThread: f.lockedm != 0,
		Truncated:      r.Flags&bpf.FlagTruncated != 0,
	}
	if f.status == golayout.StatusWaiting || f.status == golayout.StatusLeaked {
		g.WaitReason = t.WaitReason(f.waitReason)
	}
	prev := s.prevOf(r.Index, r.GAddr)
	same := s.unchanged(prev, &f)
	if same {
		g.System, g.CreatedBy = prev.system, prev.createdBy
	} else {
		g.System = isSystem(s.sym.funcName(f.startpc))
		if f.goid != 1 {
			g.CreatedBy = s.sym.createdBy(f.gopc)
		}
	}
	switch {
	case st == snapshot.StateRunning:
		g.Frames = []snapshot.Frame{}
	case same && prev.frames != nil:
		// Parked exactly where it was: the stack has not changed either,
		// whether or not the walker read it again.
		g.Frames, g.Truncated = prev.frames, prev.truncated
	default:
		pcs, flags := r.PCs, r.Flags
		if flags&bpf.FlagUnchanged != 0 || (flags&bpf.FlagTruncated != 0 && len(pcs) < int(s.req.MaxFrames)) {
			// The walker skipped a stack we have no copy of (its own cache
			// outlived ours), or its bound was lower than ours (the eBPF
			// walker's is): read the stack again from userspace.
			if full := s.rewalk(ctx, r, &f); full != nil {
				pcs, flags = full.PCs, full.Flags
			} else if flags&bpf.FlagUnchanged != 0 {
				pcs, flags = nil, 0
			}
			g.Truncated = flags&bpf.FlagTruncated != 0
		}
		if flags&bpf.FlagNeedsFP != 0 {
			pcs = s.unwindSyscall(pcs, &f)
		} else if len(pcs) == 1 && f.pc == f.startpc {
			// A goroutine that never ran: its entry function "returns" to
			// goexit, whose address gostartcall left at the saved sp.
			if ret, err := (&reader{mem: t.Mem()}).u64(f.sp); err == nil && ret != 0 {
				pcs = append(pcs[:1:1], ret)
			}
		}
		g.Frames = s.sym.stack(pcs)
	}

	// How long it has waited: our own observation, or the runtime's
	// GC-stamped waitsince (on the target's clock), whichever proves the
	// longer wait.
	since := now
	if same {
		since = prev.since
	}
	if st == snapshot.StateWaiting || st == snapshot.StateSyscall || st == snapshot.StateLeaked {
		if obs := now - since; obs > 0 {
			g.WaitingSeconds, g.WaitingSource = float64(obs)/1e9, snapshot.WaitObserved
		}
		if theirs := now + s.clockOffset; f.waitSince > 0 && f.waitSince < theirs {
			if rt := float64(theirs-f.waitSince) / 1e9; rt > g.WaitingSeconds {
				g.WaitingSeconds, g.WaitingSource = rt, snapshot.WaitRuntime
			}
		}
	}
	labels, err := s.labels.Read(f.labels)
	if err == nil {
		g.Labels = labels
	}
	var chans []uint64
	var blocked *snapshot.BlockedOn
	if same {
		chans, blocked = prev.chans, prev.blocked
	}
	if prev == nil || !same {
		prev = &seenG{}
		s.setPrev(r.Index, prev)
	}
	*prev = seenG{
		gaddr: r.GAddr, goid: f.goid, status: f.status, waitReason: f.waitReason, sp: f.sp, pc: f.pc,
		waiting: f.waiting, trackSeq: f.trackSeq, since: since, frames: g.Frames, truncated: g.Truncated, walk: walkNo,
		system: g.System, createdBy: g.CreatedBy, chans: chans, blocked: blocked,
	}
	if st == snapshot.StateWaiting {
		pw = pendingWait{gindex: r.Index, gaddr: r.GAddr, park: parkOf(&f), seen: prev, same: same}
		switch {
		case chanWait(g.WaitReason) && f.waiting != 0:
			pw.kind, pw.sel = waitChan, selectWait(g.WaitReason)
		case golayout.IsSyncReason(g.WaitReason):
			pw.kind = waitSync
		}
	}
	return g, pw, "", nil
}

// reread reads the goroutines of ps again from allgs, all at once, after
// they moved while what they wait on was resolved, and replaces their
// entries in gs. It renews each *p whose goroutine waits as want again;
// one found in a sync wait while channels are resolved joins syncs.
func (s *Snapshotter) reread(ctx context.Context, gs []snapshot.Goroutine, ps []*pendingWait, want waitKind, now int64, walkNo uint64, syncs *[]pendingWait) []rereadResult {
	res := make([]rereadResult, len(ps))
	gaddrs := make([]uint64, len(ps))
	for k, p := range ps {
		res[k] = rereadFailed // exited, unreadable, or moving still
		gaddrs[k] = p.gaddr
	}
	req := s.req
	req.Unchanged = nil
	// An error leaves the goroutines not yet read failed.
	_, _ = walkGs(ctx, s.t.Mem(), req, gaddrs, func(r *bpf.GRecord) error {
		k := r.Index // walkGs numbers the records by their place in gaddrs
		p := ps[k]
		if r.Flags&bpf.FlagTorn != 0 {
			return nil
		}
		rec := *r
		rec.Index = p.gindex
		g, pw, why, err := s.decode(ctx, &rec, now, walkNo)
		if err != nil || why != "" {
			return nil
		}
		gs[p.index] = g
		pw.index = p.index
		switch pw.kind {
		case want:
			*p, res[k] = pw, rereadWaiting
		case waitNone:
			res[k] = rereadOther
		case waitSync:
			*syncs = append(*syncs, pw)
			res[k] = rereadOther
		}
		return nil
	})
	return res
}

// rewalk reads one goroutine's stack again from userspace; nil unless the
// goroutine is still parked where the record found it.
func (s *Snapshotter) rewalk(ctx context.Context, r *bpf.GRecord, f *gFields) *bpf.GRecord {
	full, err := walkOne(ctx, s.t.Mem(), s.req, r.Index, r.GAddr)
	if err != nil || full == nil || full.Flags&bpf.FlagTorn != 0 {
		return nil
	}
	if now := readFields(s.t.Layout, full.G); now.pc != f.pc || now.sp != f.sp {
		return nil
	}
	return full
}

// unwindSyscall completes the stack of a goroutine in a system call for Go
// versions without g.syscallbp (before 1.23): the function that entered the
// system call has its frame pointer saved just below its return address,
// which sits syscallsp + pcsp(syscallpc) bytes up the stack.
func (s *Snapshotter) unwindSyscall(pcs []uint64, f *gFields) []uint64 {
	if len(pcs) == 0 {
		return pcs
	}
	delta, err := s.t.Bin.SPDelta(pcs[0] - s.t.Bias)
	if err != nil || delta < 8 {
		return pcs
	}
	fp := f.sp + uint64(delta) - 8
	out := slices.Clone(pcs)
	var frame [16]byte
	prev := uint64(0)
	for len(out) < int(s.req.MaxFrames) {
		if fp == 0 || fp%8 != 0 || fp < f.stackLo || fp+16 > f.stackHi || fp <= prev {
			break
		}
		if err := s.t.Mem().ReadAt(frame[:], fp); err != nil {
			break
		}
		next, ret := golayout.Uint64(frame[:], 0), golayout.Uint64(frame[:], 8)
		if ret == 0 {
			break
		}
		out = append(out, ret)
		prev, fp = fp, next
	}
	return out
}
