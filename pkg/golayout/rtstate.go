package golayout

import (
	"debug/dwarf"
	"fmt"
)

// The layouts of the runtime's scheduler and GC state, read by
// collect/rtstate: runtime.sched, each *p of runtime.allp,
// runtime.gcController and runtime.memstats. Fields of the runtime's atomic
// types (atomic.Int32{value}, ...) are given at the offset of their value.

// SchedLayout is the layout of the runtime.schedt fields a reader needs.
type SchedLayout struct {
	Size int64
	// Mnext is the number of Ms ever created, Nmfreed the number freed:
	// the runtime's mcount() is their difference. Maxmcount is the thread
	// limit (debug.SetMaxThreads).
	Mnext, Nmfreed, Maxmcount int64
	// Nmidle counts idle Ms, Nmspinning spinning ones, Npidle idle Ps.
	Nmidle, Nmspinning, Npidle int64
	// RunqSize is the length of the global run queue: schedt.runqsize up
	// to Go 1.24, schedt.runq.size (gQueue.size) from Go 1.25 on.
	RunqSize int64
}

// PLayout is the layout of the runtime.p fields a reader needs. The local
// run queue is the ring runq of RunqCap slots, from runqhead to runqtail
// (uint32 counters), plus runnext.
type PLayout struct {
	Size, ID, Status, Runqhead, Runqtail, Runnext int64
	RunqCap                                       int64 // len(p.runq): 256
}

// GCControllerLayout is the layout of the runtime.gcControllerState fields
// a reader needs (runtime.gcController, the GC pacer): the settings, and
// every input of gcControllerState.heapGoal.
type GCControllerLayout struct {
	Size                                   int64
	GCPercent, MemoryLimit                 int64 // int32 (-1 = off), int64 bytes
	HeapMarked, HeapLive                   int64 // uint64
	GCPercentHeapGoal, SweepDistMinTrigger int64 // uint64
	Triggered                              int64 // uint64, ^0 when no cycle was triggered
	HeapInUse, HeapFree                    int64 // uint64 (sysMemStat)
	TotalAlloc, TotalFree, MappedReady     int64 // uint64
}

// MstatsLayout is the layout of the runtime.mstats fields a reader needs
// (runtime.memstats).
type MstatsLayout struct {
	Numgc, Numforcedgc int64 // uint32 each
}

// P statuses (p.status), the runtime's _P* constants, stable across Go
// 1.21–1.26 (_Psyscall is unused from Go 1.26 on).
const (
	PIdle    = 0 // _Pidle
	PRunning = 1 // _Prunning
	PSyscall = 2 // _Psyscall
	PGCStop  = 3 // _Pgcstop
	PDead    = 4 // _Pdead
)

// runtimeState fills the scheduler and GC layouts of l from DWARF.
func (r *resolver) runtimeState(l *Layout) {
	s := r.strct(dwSched)
	l.Sched = SchedLayout{
		Size:       r.size(dwSched),
		Mnext:      r.off(s, dwSched, "mnext"),
		Nmfreed:    r.off(s, dwSched, "nmfreed"),
		Maxmcount:  r.off(s, dwSched, "maxmcount"),
		Nmidle:     r.off(s, dwSched, "nmidle"),
		Nmspinning: r.off(s, dwSched, "nmspinning", "value"),
		Npidle:     r.off(s, dwSched, "npidle", "value"),
		RunqSize:   r.optOff(s, "runqsize"), // up to Go 1.24
	}
	if l.Sched.RunqSize == Absent {
		l.Sched.RunqSize = r.off(s, dwSched, "runq", "size") // Go 1.25+
	}
	p := r.strct(dwP)
	l.P = PLayout{
		Size:     r.size(dwP),
		ID:       r.off(p, dwP, "id"),
		Status:   r.off(p, dwP, "status"),
		Runqhead: r.off(p, dwP, "runqhead"),
		Runqtail: r.off(p, dwP, "runqtail"),
		Runnext:  r.off(p, dwP, "runnext"),
		RunqCap:  Absent,
	}
	if p != nil {
		if f := findField(p, "runq"); f != nil {
			if at, ok := underlying(f.Type).(*dwarf.ArrayType); ok && at.Count > 0 {
				l.P.RunqCap = at.Count
			}
		}
		if l.P.RunqCap == Absent {
			r.fail(fmt.Errorf("%s: field runq is not an array in DWARF", dwP))
		}
	}
	c := r.strct(dwGCCtl)
	l.GCController = GCControllerLayout{
		Size:                r.size(dwGCCtl),
		GCPercent:           r.off(c, dwGCCtl, "gcPercent", "value"),
		MemoryLimit:         r.off(c, dwGCCtl, "memoryLimit", "value"),
		HeapMarked:          r.off(c, dwGCCtl, "heapMarked"),
		HeapLive:            r.off(c, dwGCCtl, "heapLive", "value"),
		GCPercentHeapGoal:   r.off(c, dwGCCtl, "gcPercentHeapGoal", "value"),
		SweepDistMinTrigger: r.off(c, dwGCCtl, "sweepDistMinTrigger", "value"),
		Triggered:           r.off(c, dwGCCtl, "triggered"),
		HeapInUse:           r.off(c, dwGCCtl, "heapInUse"),
		HeapFree:            r.off(c, dwGCCtl, "heapFree"),
		TotalAlloc:          r.off(c, dwGCCtl, "totalAlloc", "value"),
		TotalFree:           r.off(c, dwGCCtl, "totalFree", "value"),
		MappedReady:         r.off(c, dwGCCtl, "mappedReady", "value"),
	}
	m := r.strct(dwMstats)
	l.Mstats = MstatsLayout{
		Numgc:       r.off(m, dwMstats, "numgc"),
		Numforcedgc: r.off(m, dwMstats, "numforcedgc"),
	}
}
