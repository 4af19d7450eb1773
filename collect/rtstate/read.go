package rtstate

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"unsafe"

	"github.com/goroscope/goroscope/collect/process"
	"github.com/goroscope/goroscope/pkg/gobin"
	"github.com/goroscope/goroscope/pkg/golayout"
)

// ErrImplausible reports that what was read does not look like the runtime's state: the layout
// or the variables' addresses do not match the process, or its memory is corrupt.
var ErrImplausible = errors.New("runtime state read does not match the process")

// errTransient marks a read that caught the runtime changing its state; it is retried.
var errTransient = errors.New("runtime state changed during the read")

const (
	// maxProcs bounds GOMAXPROCS, and so the Ps read.
	maxProcs = 1 << 16
	// maxWindow bounds the bytes read of one runtime structure: a larger span of fields is a
	// wrong layout.
	maxWindow = 64 << 10
	// attempts bounds the reads of one Read that caught the runtime changing its state.
	attempts = 4
	// minRunway, headroomPercent and minHeadroom are the runtime's constants of
	// gcControllerState.heapGoal (mgcpacer.go: minRunway, memoryLimitHeapGoalHeadroomPercent,
	// memoryLimitMinHeapGoalHeadroom), the same in Go 1.21–1.26.
	minRunway       = 64 << 10
	headroomPercent = 3
	minHeadroom     = 1 << 20
)

// memory is how a Reader reads the target: a *process.Mem.
type memory interface {
	ReadAt(p []byte, addr uint64) error
	ReadBatch(reads []process.Read) error
}

// Reader reads the runtime state of one target. It is not safe for concurrent use.
type Reader struct {
	pid   int
	mem   memory
	vars  gobin.StateVars // run-time addresses
	l     golayout.Layout
	stats *procStat

	env    []EnvVar
	envErr string

	// Buffers kept between reads.
	sched, gc  window
	gomaxprocs [4]byte
	extraMs    [2][4]byte
	allpHdr    [24]byte
	mstats     window
	reads      []process.Read
	// allp is what the last read found in runtime.allp: its array's address, its entries and
	// their fields. As allp seldom changes, a read reads them again in its one batch, at the
	// same addresses, and uses them when the allp header and entries read with them match.
	allpPtr uint64
	allp    []uint64
	allpNow []uint64
	ps      []pWindows
}

// window is a copy of the bytes of a runtime structure from offset base on.
type window struct {
	base int64
	buf  []byte
}

// newWindow spans the fields at offs, each size bytes long at most.
func newWindow(what string, size int64, offs ...int64) (window, error) {
	lo, hi := int64(math.MaxInt64), int64(-1)
	for _, o := range offs {
		if o < 0 {
			return window{}, fmt.Errorf("%s: a field is absent from the layout: %w", what, ErrImplausible)
		}
		lo, hi = min(lo, o), max(hi, o+size)
	}
	if hi-lo > maxWindow {
		return window{}, fmt.Errorf("%s: fields span %d bytes, more than %d: %w", what, hi-lo, maxWindow, ErrImplausible)
	}
	return window{base: lo, buf: make([]byte, hi-lo)}, nil
}

func (w *window) u64(off int64) uint64 { return golayout.Uint64(w.buf, off-w.base) }
func (w *window) u32(off int64) uint32 { return golayout.Uint32(w.buf, off-w.base) }

// read is the read of the window in the structure at addr.
func (w *window) read(addr uint64) process.Read {
	return process.Read{Addr: addr + uint64(w.base), Buf: w.buf}
}

// pWindows are the fields read of one P.
type pWindows struct {
	idStatus, runq [8]byte // id and status; runqhead and runqtail
	runnext        [8]byte
}

// NewReader prepares the reads of t's runtime state: it finds the runtime's variables, opens
// /proc/PID/stat and reads the environment. Close releases it.
func NewReader(t *process.Target) (*Reader, error) {
	l := *t.Layout
	vars, err := t.Bin.StateVars(&l)
	if err != nil {
		return nil, fmt.Errorf("runtime state of pid %d: %w", t.PID, err)
	}
	for _, a := range []*uint64{&vars.Gomaxprocs, &vars.Allp, &vars.Sched, &vars.GCController, &vars.Memstats, &vars.ExtraMs[0], &vars.ExtraMs[1]} {
		*a += t.Bias
	}
	r, err := newReader(t.PID, t.Mem(), vars, &l)
	if err != nil {
		return nil, err
	}
	r.stats = openStat(t.PID)
	env, err := readEnv(t.PID)
	if err != nil {
		r.envErr = err.Error()
	}
	r.env = env
	return r, nil
}

// newReader prepares the reads of the runtime state at vars (run-time addresses) in mem, with
// layout l, without /proc.
func newReader(pid int, mem memory, vars gobin.StateVars, l *golayout.Layout) (*Reader, error) {
	r := &Reader{pid: pid, mem: mem, vars: vars, l: *l, stats: &procStat{}}
	var err error
	s, c := &l.Sched, &l.GCController
	if r.sched, err = newWindow("runtime.schedt", 8, s.Mnext, s.Nmfreed, s.Maxmcount, s.Nmidle, s.Nmspinning, s.Npidle, s.RunqSize); err != nil {
		return nil, fmt.Errorf("runtime state of pid %d (layout from %s): %w", pid, l.Source, err)
	}
	if r.gc, err = newWindow("runtime.gcControllerState", 8, c.GCPercent, c.MemoryLimit, c.HeapMarked, c.HeapLive,
		c.GCPercentHeapGoal, c.SweepDistMinTrigger, c.Triggered, c.HeapInUse, c.HeapFree, c.TotalAlloc, c.TotalFree, c.MappedReady); err != nil {
		return nil, fmt.Errorf("runtime state of pid %d (layout from %s): %w", pid, l.Source, err)
	}
	if r.mstats, err = newWindow("runtime.mstats", 4, l.Mstats.Numgc, l.Mstats.Numforcedgc); err != nil {
		return nil, fmt.Errorf("runtime state of pid %d (layout from %s): %w", pid, l.Source, err)
	}
	p := &l.P
	if p.ID < 0 || p.Status != p.ID+4 || p.Runqhead < 0 || p.Runqtail != p.Runqhead+4 || p.Runnext < 0 || p.RunqCap <= 0 {
		return nil, fmt.Errorf("runtime state of pid %d: runtime.p layout %+v: id and status, runqhead and runqtail are not side by side: %w", pid, *p, ErrImplausible)
	}
	return r, nil
}

// Close releases the reader.
func (r *Reader) Close() error { return r.stats.close() }

// Read reads the runtime state of t once, with a Reader of its own.
func Read(t *process.Target) (State, error) {
	r, err := NewReader(t)
	if err != nil {
		return State{}, err
	}
	defer r.Close()
	return r.Read()
}

// Read reads the target's runtime state.
func (r *Reader) Read() (State, error) {
	var err error
	for i := 0; i < attempts; i++ {
		var st State
		if st, err = r.readOnce(); err == nil {
			st.Threads = r.stats.threads()
			st.Env, st.EnvError = r.env, r.envErr
			return st, nil
		}
		if !errors.Is(err, errTransient) {
			break
		}
	}
	if errors.Is(err, errTransient) {
		err = fmt.Errorf("%w, in %d reads in a row: %w", err, attempts, ErrImplausible)
	}
	return State{}, fmt.Errorf("runtime state of pid %d: %w", r.pid, err)
}

// readOnce is one attempt of Read. An error wrapping errTransient is worth retrying.
func (r *Reader) readOnce() (State, error) {
	v := &r.vars
	reads := append(r.reads[:0],
		process.Read{Addr: v.Gomaxprocs, Buf: r.gomaxprocs[:]},
		process.Read{Addr: v.Allp, Buf: r.allpHdr[:]},
		r.sched.read(v.Sched),
		r.gc.read(v.GCController),
		r.mstats.read(v.Memstats),
		process.Read{Addr: v.ExtraMs[0], Buf: r.extraMs[0][:]},
		process.Read{Addr: v.ExtraMs[1], Buf: r.extraMs[1][:]},
	)
	const fixed = 7
	if len(r.allp) > 0 { // what allp held the last time, read again at once
		r.allpNow = r.allpNow[:len(r.allp)]
		reads = append(reads, process.Read{Addr: r.allpPtr, Buf: bytesOf(r.allpNow)})
		reads = r.appendPReads(reads, r.allp)
	}
	r.reads = reads
	if err := r.mem.ReadBatch(reads); err != nil {
		return State{}, err
	}
	for i, what := range []string{"runtime.gomaxprocs", "runtime.allp", "runtime.sched", "runtime.gcController", "runtime.memstats", "runtime.extraMInUse", "runtime.extraMLength"} {
		if reads[i].Err != nil {
			return State{}, fmt.Errorf("read %s: %w", what, reads[i].Err)
		}
	}
	var st State
	procs := int32(golayout.Uint32(r.gomaxprocs[:], 0))
	if procs < 1 || procs > maxProcs {
		return st, fmt.Errorf("runtime.gomaxprocs is %d, outside 1..%d: %w", procs, maxProcs, ErrImplausible)
	}
	st.GOMAXPROCS = int(procs)
	if err := r.readSched(&st); err != nil {
		return st, err
	}
	if err := r.readGC(&st); err != nil {
		return st, err
	}
	st.GCCycles, st.ForcedGCCycles = r.mstats.u32(r.l.Mstats.Numgc), r.mstats.u32(r.l.Mstats.Numforcedgc)
	if st.ForcedGCCycles > st.GCCycles {
		return st, fmt.Errorf("memstats: %d forced GC cycles of %d in all: %w", st.ForcedGCCycles, st.GCCycles, ErrImplausible)
	}
	if err := r.readPs(&st, reads[fixed:]); err != nil {
		return st, err
	}
	return st, nil
}

// appendPReads appends the reads of the fields of the Ps at the addresses in allp, into r.ps.
func (r *Reader) appendPReads(reads []process.Read, allp []uint64) []process.Read {
	p := &r.l.P
	for i, pp := range allp {
		reads = append(reads,
			process.Read{Addr: pp + uint64(p.ID), Buf: r.ps[i].idStatus[:]},
			process.Read{Addr: pp + uint64(p.Runqhead), Buf: r.ps[i].runq[:]},
			process.Read{Addr: pp + uint64(p.Runnext), Buf: r.ps[i].runnext[:]})
	}
	return reads
}

// bytesOf views a []uint64 as bytes.
func bytesOf(s []uint64) []byte {
	if len(s) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&s[0])), 8*len(s))
}

// readSched decodes the scheduler's counters.
func (r *Reader) readSched(st *State) error {
	s, w := &r.l.Sched, &r.sched
	mnext, nmfreed := int64(w.u64(s.Mnext)), int64(w.u64(s.Nmfreed))
	maxm := int32(w.u32(s.Maxmcount))
	ms := mnext - nmfreed
	nmidle, spinning := int32(w.u32(s.Nmidle)), int32(w.u32(s.Nmspinning))
	extra := int64(golayout.Uint32(r.extraMs[0][:], 0)) + int64(golayout.Uint32(r.extraMs[1][:], 0))
	npidle, runq := int32(w.u32(s.Npidle)), int32(w.u32(s.RunqSize))
	switch {
	case maxm <= 0:
		return fmt.Errorf("sched.maxmcount is %d: %w", maxm, ErrImplausible)
	case nmfreed < 0 || ms < 1 || ms > int64(maxm)+(1<<20): // cgo's extra Ms are not limited
		return fmt.Errorf("sched.mnext %d and sched.nmfreed %d give %d Ms (thread limit %d): %w", mnext, nmfreed, ms, maxm, ErrImplausible)
	case nmidle < 0 || int64(nmidle) > ms || spinning < 0 || int64(spinning) > ms:
		return fmt.Errorf("%d idle and %d spinning Ms of %d: %w", nmidle, spinning, ms, ErrImplausible)
	case extra > ms:
		return fmt.Errorf("%d of %d Ms are cgo's extra Ms: %w", extra, ms, errTransient) // the counters move one by one
	case npidle < 0 || int(npidle) > st.GOMAXPROCS:
		return fmt.Errorf("%d idle Ps of GOMAXPROCS %d: %w", npidle, st.GOMAXPROCS, errTransient)
	case runq < 0:
		return fmt.Errorf("global run queue of %d goroutines: %w", runq, ErrImplausible)
	}
	st.Ms, st.ExtraMs, st.IdleMs, st.SpinningMs, st.MaxThreads = int(ms), int(extra), int(nmidle), int(spinning), int(maxm)
	st.IdlePs, st.GlobalRunQueue = int(npidle), int(runq)
	return nil
}

// gcFields are the pacer's fields heapGoal reads.
type gcFields struct {
	memoryLimit                                                   int64
	gcPercentHeapGoal, sweepDistMinTrigger, triggered, heapMarked uint64
	heapFree, totalAlloc, totalFree, mappedReady                  uint64
}

// readGC decodes the pacer's settings and heap figures.
func (r *Reader) readGC(st *State) error {
	c, w := &r.l.GCController, &r.gc
	pct := int32(w.u32(c.GCPercent))
	f := gcFields{
		memoryLimit:       int64(w.u64(c.MemoryLimit)),
		gcPercentHeapGoal: w.u64(c.GCPercentHeapGoal), sweepDistMinTrigger: w.u64(c.SweepDistMinTrigger),
		triggered: w.u64(c.Triggered), heapMarked: w.u64(c.HeapMarked),
		heapFree: w.u64(c.HeapFree), totalAlloc: w.u64(c.TotalAlloc), totalFree: w.u64(c.TotalFree), mappedReady: w.u64(c.MappedReady),
	}
	switch {
	case pct < -1:
		return fmt.Errorf("gcController.gcPercent is %d: %w", pct, ErrImplausible)
	case f.memoryLimit < 0:
		return fmt.Errorf("gcController.memoryLimit is %d: %w", f.memoryLimit, ErrImplausible)
	case f.totalFree > f.totalAlloc || f.heapFree+(f.totalAlloc-f.totalFree) > f.mappedReady:
		// The runtime's own heapGoal waits for these to agree: they are updated one by one.
		return fmt.Errorf("heap counters disagree (allocated %d, freed %d, free %d, mapped %d): %w",
			f.totalAlloc, f.totalFree, f.heapFree, f.mappedReady, errTransient)
	}
	st.GOGCPercent, st.MemoryLimitBytes = int(pct), f.memoryLimit
	st.HeapLiveBytes, st.HeapPacedBytes, st.HeapInUseBytes = f.heapMarked, w.u64(c.HeapLive), w.u64(c.HeapInUse)
	st.HeapGoalBytes = heapGoal(&f)
	return nil
}

// heapGoal is gcControllerState.heapGoal (heapGoalInternal and memoryLimitHeapGoal in
// mgcpacer.go, the same in Go 1.21–1.26).
func heapGoal(f *gcFields) uint64 {
	goal := f.gcPercentHeapGoal
	if ml := memoryLimitHeapGoal(f); ml < goal {
		return ml
	}
	if f.sweepDistMinTrigger > goal {
		goal = f.sweepDistMinTrigger
	}
	if f.triggered != ^uint64(0) && goal < f.triggered+minRunway {
		goal = f.triggered + minRunway
	}
	return goal
}

// memoryLimitHeapGoal is gcControllerState.memoryLimitHeapGoal; readGC checked that
// heapFree + heapAlloc <= mappedReady.
func memoryLimitHeapGoal(f *gcFields) uint64 {
	heapAlloc := f.totalAlloc - f.totalFree
	limit := uint64(f.memoryLimit)
	nonHeap := f.mappedReady - f.heapFree - heapAlloc
	var overage uint64
	if f.mappedReady > limit {
		overage = f.mappedReady - limit
	}
	if nonHeap+overage >= limit {
		return f.heapMarked
	}
	goal := limit - (nonHeap + overage)
	headroom := max(goal/100*headroomPercent, minHeadroom)
	if goal < headroom || goal-headroom < headroom {
		goal = headroom
	} else {
		goal -= headroom
	}
	return max(goal, f.heapMarked)
}

// readPs decodes allp and the run queues of every P. spec are the reads of the allp array and
// of the Ps that readOnce made at the addresses of the last read: they are used when allp is
// unchanged, else allp and the Ps are read again.
func (r *Reader) readPs(st *State, spec []process.Read) error {
	ptr := golayout.Uint64(r.allpHdr[:], 0)
	n, capacity := golayout.Uint64(r.allpHdr[:], 8), golayout.Uint64(r.allpHdr[:], 16)
	switch {
	case n > maxProcs || capacity < n || (n > 0 && ptr == 0):
		return fmt.Errorf("runtime.allp is {%#x, len %d, cap %d}: %w", ptr, n, capacity, ErrImplausible)
	case n != uint64(st.GOMAXPROCS):
		// procresize is changing GOMAXPROCS.
		return fmt.Errorf("len(runtime.allp) is %d, GOMAXPROCS %d: %w", n, st.GOMAXPROCS, errTransient)
	}
	if !r.sameAllp(ptr, n, spec) {
		if err := r.rereadPs(ptr, n); err != nil {
			return err
		}
		spec = r.reads
	}
	return r.decodePs(st, spec[len(spec)-3*int(n):])
}

// sameAllp reports whether the allp array and Ps read at the last read's addresses are valid:
// allp has the same array and entries.
func (r *Reader) sameAllp(ptr, n uint64, spec []process.Read) bool {
	if ptr != r.allpPtr || n != uint64(len(r.allp)) || len(spec) != 1+3*int(n) {
		return false
	}
	for _, rd := range spec {
		if rd.Err != nil {
			return false
		}
	}
	return slices.Equal(r.allp, r.allpNow)
}

// rereadPs reads the n entries of the allp array at ptr, then the fields of those Ps, into
// r.reads.
func (r *Reader) rereadPs(ptr, n uint64) error {
	r.allpPtr, r.allp = 0, r.allp[:0] // until read whole
	if uint64(cap(r.allp)) < n {
		r.allp, r.allpNow, r.ps = make([]uint64, n), make([]uint64, n), make([]pWindows, n)
	}
	allp := r.allp[:n]
	if err := r.mem.ReadAt(bytesOf(allp), ptr); err != nil {
		return fmt.Errorf("read the %d entries of runtime.allp at %#x: %w", n, ptr, err)
	}
	for i, pp := range allp {
		if pp == 0 {
			return fmt.Errorf("runtime.allp[%d] is nil: %w", i, errTransient) // procresize is filling it
		}
	}
	r.reads = r.appendPReads(r.reads[:0], allp)
	if err := r.mem.ReadBatch(r.reads); err != nil {
		return err
	}
	r.allpPtr, r.allp = ptr, allp
	return nil
}

// decodePs checks and decodes the reads of the fields of the Ps of r.allp, 3 per P.
func (r *Reader) decodePs(st *State, reads []process.Read) error {
	p := &r.l.P
	st.LocalRunQueues = make([]int, len(r.allp))
	for i, pp := range r.allp {
		for _, rd := range reads[3*i : 3*i+3] {
			if rd.Err != nil {
				r.allpPtr, r.allp = 0, r.allp[:0]
				return fmt.Errorf("read runtime.allp[%d] at %#x: %w", i, pp, rd.Err)
			}
		}
		w := &r.ps[i]
		id, status := int32(golayout.Uint32(w.idStatus[:], 0)), golayout.Uint32(w.idStatus[:], 4)
		head, tail := golayout.Uint32(w.runq[:], 0), golayout.Uint32(w.runq[:], 4)
		if id != int32(i) || status > golayout.PDead {
			r.allpPtr, r.allp = 0, r.allp[:0]
			return fmt.Errorf("runtime.allp[%d] at %#x has id %d and status %d: %w", i, pp, id, status, ErrImplausible)
		}
		q := tail - head // uint32 counters that wrap
		if int64(q) > p.RunqCap {
			// runqhead is read with runqtail, but may be torn in between, as the runtime's
			// own runqlen allows for.
			return fmt.Errorf("the run queue of P %d runs from %d to %d, more than %d: %w", i, head, tail, p.RunqCap, errTransient)
		}
		if golayout.Uint64(w.runnext[:], 0) != 0 {
			q++
		}
		st.LocalRunQueues[i] = int(q)
		st.LocalRunQueued += int(q)
	}
	return nil
}
