package gobin

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"golang.org/x/arch/x86/x86asm"

	"github.com/goroscope/goroscope/pkg/golayout"
)

// StateVars holds the link-time addresses of the runtime variables that hold its scheduler and
// GC state (read by collect/rtstate).
type StateVars struct {
	Gomaxprocs   uint64 // runtime.gomaxprocs (int32)
	Allp         uint64 // runtime.allp ([]*p)
	Sched        uint64 // runtime.sched (schedt)
	GCController uint64 // runtime.gcController (gcControllerState)
	Memstats     uint64 // runtime.memstats (mstats)
	// ExtraMs are runtime.extraMInUse and runtime.extraMLength (uint32 each), the Ms cgo keeps
	// for threads created in C: from the code, in either order (their sum is what counts).
	ExtraMs [2]uint64
	Source  string // "symtab" or "disasm"
}

// stateOffsets are the offsets of the runtime fields, from the binary's layout, that tell
// runtime.sched and runtime.memstats from the fields of theirs the runtime's code uses.
type stateOffsets struct {
	schedMnext, schedNmfreed, schedMaxmcount int64 // schedt.mnext, nmfreed, maxmcount
	mstatsNumgc, mstatsNumforcedgc           int64 // mstats.numgc, numforcedgc
}

// offsetsOf picks the offsets StateVars needs out of a layout.
func offsetsOf(l *golayout.Layout) stateOffsets {
	return stateOffsets{
		schedMnext: l.Sched.Mnext, schedNmfreed: l.Sched.Nmfreed, schedMaxmcount: l.Sched.Maxmcount,
		mstatsNumgc: l.Mstats.Numgc, mstatsNumforcedgc: l.Mstats.Numforcedgc,
	}
}

// stateMemo remembers the answer of StateVars for one set of offsets.
type stateMemo struct {
	mu   sync.Mutex
	done bool
	off  stateOffsets
	v    StateVars
	err  error
}

// StateVars finds the link-time addresses of runtime.gomaxprocs, runtime.allp, runtime.sched,
// runtime.gcController, runtime.memstats, runtime.extraMInUse and runtime.extraMLength: from
// .symtab when present, otherwise from the runtime's own code, Go 1.21–1.26 alike:
//
//   - gomaxprocs and allp from runtime.stopTheWorldWithSema, runtime.gcBgMarkStartWorkers and
//     runtime.retake: the 4-byte variable they read and never write, and the slice whose data
//     pointer and length they load;
//   - gcController from runtime.gcControllerCommit and runtime.gcinit, which call methods of
//     *gcControllerState on it: the address put in the receiver register (AX) by a LEA;
//   - sched, extraMInUse and extraMLength from runtime.checkmcount (mcount() - extraMInUse -
//     extraMLength, with mcount() = sched.mnext - sched.nmfreed, compared with
//     sched.maxmcount): the base whose three fields, at the layout's offsets, are all loaded,
//     and the two other 4-byte variables loaded;
//   - memstats from runtime.gcMarkTermination (memstats.numgc++, memstats.numforcedgc++): the
//     base whose two counters, at the layout's offsets, are both incremented.
//
// Every function named is part of every Go program (the scheduler, the GC), and the tests
// check the answer against .symtab for every toolchain, linker and build mode.
//
// l must be the binary's own runtime layout, of which the offsets of schedt.mnext, nmfreed,
// maxmcount and mstats.numgc, numforcedgc are used. The answer is computed once per set of
// these offsets. After Close the error wraps ErrClosed.
func (b *Binary) StateVars(l *golayout.Layout) (v StateVars, err error) {
	off := offsetsOf(l)
	old, open := b.enter()
	if !open {
		return StateVars{}, b.closedError()
	}
	defer b.leave(old, func(p any) { v, err = StateVars{}, b.faultError(p) })
	m := &b.state
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.done && m.off == off {
		return m.v, m.err
	}
	func() {
		defer func() {
			if p := recover(); p != nil { // a fault on the mapping: do not remember it
				m.v, m.err = StateVars{}, b.faultError(p)
			}
		}()
		m.v, m.err = b.stateVars(off)
		m.done, m.off = true, off
		b.dropPages()
	}()
	return m.v, m.err
}

// stateVars implements StateVars.
func (b *Binary) stateVars(off stateOffsets) (StateVars, error) {
	return symtabOrCode(b, b.stateFromSymtab, func() (StateVars, error) { return b.stateFromDisasm(off) })
}

// stateFromSymtab reads the variables from .symtab.
func (b *Binary) stateFromSymtab() (StateVars, error) {
	if _, err := b.symbols(); err != nil {
		return StateVars{}, err
	}
	v := StateVars{Source: "symtab"}
	for _, s := range []struct {
		sym int
		dst *uint64
	}{
		{symGomaxprocs, &v.Gomaxprocs}, {symAllp, &v.Allp}, {symSched, &v.Sched},
		{symGCController, &v.GCController}, {symMemstats, &v.Memstats},
		{symExtraMInUse, &v.ExtraMs[0]}, {symExtraMLength, &v.ExtraMs[1]},
	} {
		var ok bool
		if *s.dst, ok = b.symbol(s.sym); !ok {
			return v, fmt.Errorf("no %s in .symtab", symbolNames[s.sym])
		}
	}
	return v, nil
}

// stateFromDisasm recovers the variables from the runtime's code.
func (b *Binary) stateFromDisasm(off stateOffsets) (StateVars, error) {
	for _, o := range []int64{off.schedMnext, off.schedNmfreed, off.schedMaxmcount, off.mstatsNumgc, off.mstatsNumforcedgc} {
		if o < 0 || o > 1<<20 {
			return StateVars{}, fmt.Errorf("find the runtime's scheduler and GC variables: field offset %d out of range (the layout lacks a field)", o)
		}
	}
	v := StateVars{Source: "disasm"}
	var err error
	if v.Gomaxprocs, v.Allp, err = b.procsFromScheduler(); err != nil {
		return v, err
	}
	if v.GCController, err = b.gcControllerFromCalls(); err != nil {
		return v, err
	}
	if v.Sched, v.ExtraMs, err = b.schedFromCheckmcount(off); err != nil {
		return v, err
	}
	if v.Memstats, err = b.memstatsFromMarkTermination(off); err != nil {
		return v, err
	}
	return v, nil
}

// dataRef is one RIP-relative reference to writable data in a function's code.
type dataRef struct {
	op    x86asm.Op
	addr  uint64
	size  int  // bytes the instruction accesses there; 0 for LEA
	write bool // the instruction writes there (the destination operand)
}

// codeCall is one direct call in a function's code.
type codeCall struct {
	target uint64 // the callee's address
	ax     uint64 // the address a RIP-relative LEA left in AX (the first argument), 0 if none
}

// scanFunc lists a function's RIP-relative references to writable data and its direct calls.
func (b *Binary) scanFunc(name string) (refs []dataRef, calls []codeCall, err error) {
	var ax uint64 // what a LEA last put in AX, until AX is written again
	err = b.decodeFunc(name, func(pc uint64, inst x86asm.Inst) {
		for i, a := range inst.Args {
			if a == nil {
				break
			}
			if addr, ok := ripAddr(pc, inst, a); ok && b.inWritableData(addr) {
				r := dataRef{op: inst.Op, addr: addr, size: inst.MemBytes}
				switch inst.Op {
				case x86asm.LEA:
					r.size = 0
				case x86asm.CMP, x86asm.TEST, x86asm.BT:
				default:
					r.write = i == 0 // Intel order: the destination first
				}
				refs = append(refs, r)
			}
		}
		switch inst.Op {
		case x86asm.CALL:
			if rel, ok := inst.Args[0].(x86asm.Rel); ok {
				calls = append(calls, codeCall{target: uint64(int64(pc) + int64(inst.Len) + int64(rel)), ax: ax})
			}
			ax = 0 // the callee clobbers it
			return
		case x86asm.LEA:
			if r, _ := inst.Args[0].(x86asm.Reg); r == x86asm.RAX {
				ax, _ = ripAddr(pc, inst, inst.Args[1])
				return
			}
		case x86asm.CMP, x86asm.TEST:
			return
		}
		if r, ok := inst.Args[0].(x86asm.Reg); ok && isAX(r) {
			ax = 0
		}
	})
	return refs, calls, err
}

// isAX reports whether r is AX or a part of it.
func isAX(r x86asm.Reg) bool {
	switch r {
	case x86asm.RAX, x86asm.EAX, x86asm.AX, x86asm.AL, x86asm.AH:
		return true
	}
	return false
}

// scanFuncs is scanFunc over several functions, of which those absent are skipped; at least one
// must be present.
func (b *Binary) scanFuncs(names ...string) (refs []dataRef, calls []codeCall, err error) {
	found := 0
	for _, n := range names {
		if _, ok := b.funcByName(n); !ok {
			continue
		}
		r, c, err := b.scanFunc(n)
		if err != nil {
			return nil, nil, err
		}
		refs, calls = append(refs, r...), append(calls, c...)
		found++
	}
	if found == 0 {
		return nil, nil, fmt.Errorf("none of %s found in pclntab", strings.Join(names, ", "))
	}
	return refs, calls, nil
}

// errAmbiguous and errNone word the failures of the searches below.
var (
	errAmbiguous = errors.New("ambiguous")
	errNone      = errors.New("no candidate")
)

// unique returns the one distinct value of the candidates.
func unique(cands []uint64) (uint64, error) {
	if len(cands) == 0 {
		return 0, errNone
	}
	for _, c := range cands[1:] {
		if c != cands[0] {
			return 0, fmt.Errorf("%w (%#x and %#x)", errAmbiguous, cands[0], c)
		}
	}
	return cands[0], nil
}

// procsFromScheduler finds gomaxprocs and allp in functions of the scheduler every program has:
//
//	runtime.stopTheWorldWithSema:  sched.stopwait = gomaxprocs; for _, pp := range allp { ... }
//	runtime.gcBgMarkStartWorkers:  for gcBgMarkWorkerCount < gomaxprocs { ... }
//	runtime.retake:                for i := 0; i < len(allp); i++ { pp := allp[i] ... }
//
// gomaxprocs is the one 4-byte variable the first two read and do not write; allp the one
// slice whose data pointer and length (+0, +8) the first and the last load.
func (b *Binary) procsFromScheduler() (gomaxprocs, allp uint64, err error) {
	const stw, bg, retake = "runtime.stopTheWorldWithSema", "runtime.gcBgMarkStartWorkers", "runtime.retake"
	var fours, pairs []map[uint64]bool
	for _, fn := range []string{stw, bg, retake} {
		refs, _, err := b.scanFunc(fn)
		if err != nil {
			return 0, 0, fmt.Errorf("find runtime.gomaxprocs and runtime.allp: %w", err)
		}
		written, words := map[uint64]bool{}, map[uint64]bool{}
		for _, r := range refs {
			if r.write {
				written[r.addr] = true
			} else if r.size == 8 {
				words[r.addr] = true
			}
		}
		four, pair := map[uint64]bool{}, map[uint64]bool{}
		for _, r := range refs {
			if r.size == 4 && !written[r.addr] {
				four[r.addr] = true
			}
			if words[r.addr] && words[r.addr+8] {
				pair[r.addr] = true
			}
		}
		fours, pairs = append(fours, four), append(pairs, pair)
	}
	if gomaxprocs, err = unique(intersect(fours[0], fours[1])); err != nil {
		return 0, 0, fmt.Errorf("find runtime.gomaxprocs: the 4-byte variable %s and %s read and do not write: %w", stw, bg, err)
	}
	if allp, err = unique(intersect(pairs[0], pairs[2])); err != nil {
		return 0, 0, fmt.Errorf("find runtime.allp: the slice whose pointer and length %s and %s load: %w", stw, retake, err)
	}
	return gomaxprocs, allp, nil
}

// intersect returns the keys of a also in b, sorted.
func intersect(a, b map[uint64]bool) []uint64 {
	var out []uint64
	for k := range a {
		if b[k] {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// gcControllerFromCalls decodes runtime.gcControllerCommit and runtime.gcinit, which call
// methods of *gcControllerState (commit, revise, trigger, init) on &gcController: the address a
// LEA put in AX, the receiver, before each such call.
func (b *Binary) gcControllerFromCalls() (uint64, error) {
	const fns = "runtime.gcControllerCommit/gcinit"
	_, calls, err := b.scanFuncs("runtime.gcControllerCommit", "runtime.gcinit")
	if err != nil {
		return 0, fmt.Errorf("find runtime.gcController: %w", err)
	}
	var cands []uint64
	for _, c := range calls {
		f, ok := b.funcForPC(c.target)
		if !ok || f.Entry != c.target || !strings.HasPrefix(f.Name, "runtime.(*gcControllerState).") {
			continue
		}
		if c.ax != 0 && b.inWritableData(c.ax) {
			cands = append(cands, c.ax)
		}
	}
	if len(cands) < 2 {
		return 0, fmt.Errorf("find runtime.gcController in %s: %d calls of a *gcControllerState method on a variable, want at least 2", fns, len(cands))
	}
	addr, err := unique(cands)
	if err != nil {
		return 0, fmt.Errorf("find runtime.gcController in %s: receiver of *gcControllerState methods: %w", fns, err)
	}
	return addr, nil
}

// schedFromCheckmcount decodes runtime.checkmcount:
//
//	count := mcount() - int32(extraMInUse.Load()) - int32(extraMLength.Load())
//	if count > sched.maxmcount { throw }
//
// with mcount() = sched.mnext - sched.nmfreed: sched is the base whose mnext and nmfreed
// (8 bytes) and maxmcount (4 bytes) are all loaded; extraMInUse and extraMLength the other
// two 4-byte variables loaded.
func (b *Binary) schedFromCheckmcount(off stateOffsets) (sched uint64, extra [2]uint64, err error) {
	const fn = "runtime.checkmcount"
	refs, _, err := b.scanFunc(fn)
	if err != nil {
		return 0, extra, fmt.Errorf("find runtime.sched: %w", err)
	}
	sched, err = baseOf(refs, field{off.schedMnext, 8}, field{off.schedNmfreed, 8}, field{off.schedMaxmcount, 4})
	if err != nil {
		return 0, extra, fmt.Errorf("find runtime.sched in %s: base of mnext (+%d), nmfreed (+%d) and maxmcount (+%d): %w",
			fn, off.schedMnext, off.schedNmfreed, off.schedMaxmcount, err)
	}
	var others []uint64
	for _, r := range refs {
		if r.size == 4 && !r.write && r.addr != sched+uint64(off.schedMaxmcount) && !slices.Contains(others, r.addr) {
			others = append(others, r.addr)
		}
	}
	if len(others) != 2 {
		return 0, extra, fmt.Errorf("find runtime.extraMInUse and runtime.extraMLength in %s: %d 4-byte variables loaded besides sched.maxmcount, want 2", fn, len(others))
	}
	return sched, [2]uint64{others[0], others[1]}, nil
}

// memstatsFromMarkTermination decodes runtime.gcMarkTermination, which increments
// memstats.numgc and, for a forced GC, memstats.numforcedgc: memstats is the base of the two
// 4-byte counters incremented.
func (b *Binary) memstatsFromMarkTermination(off stateOffsets) (uint64, error) {
	const fn = "runtime.gcMarkTermination"
	refs, _, err := b.scanFunc(fn)
	if err != nil {
		return 0, fmt.Errorf("find runtime.memstats: %w", err)
	}
	incs := refs[:0:0]
	for _, r := range refs {
		if r.op == x86asm.INC || r.op == x86asm.ADD {
			incs = append(incs, r)
		}
	}
	addr, err := baseOf(incs, field{off.mstatsNumgc, 4}, field{off.mstatsNumforcedgc, 4})
	if err != nil {
		return 0, fmt.Errorf("find runtime.memstats in %s: base of the counters numgc (+%d) and numforcedgc (+%d): %w",
			fn, off.mstatsNumgc, off.mstatsNumforcedgc, err)
	}
	return addr, nil
}

// field is a field of a structure: its offset, and the bytes the code accesses there.
type field struct {
	off  int64
	size int
}

// baseOf returns the one address of a structure whose fields refs all access.
func baseOf(refs []dataRef, fields ...field) (uint64, error) {
	var cands []uint64
	for _, r := range refs {
		if r.size != fields[0].size || r.addr < uint64(fields[0].off) {
			continue
		}
		base := r.addr - uint64(fields[0].off)
		all := true
		for _, f := range fields[1:] {
			all = all && slices.ContainsFunc(refs, func(o dataRef) bool { return o.addr == base+uint64(f.off) && o.size == f.size })
		}
		if all {
			cands = append(cands, base)
		}
	}
	return unique(cands)
}
