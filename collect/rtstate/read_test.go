package rtstate

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"reflect"
	"testing"

	"github.com/goroscope/goroscope/collect/process"
	"github.com/goroscope/goroscope/pkg/gobin"
	"github.com/goroscope/goroscope/pkg/golayout"
)

// fakeMem is a process's memory made of regions; reads outside them fault.
type fakeMem struct {
	regions map[uint64][]byte
}

func (m *fakeMem) ReadAt(p []byte, addr uint64) error {
	for base, b := range m.regions {
		if addr >= base && addr-base <= uint64(len(b)) && uint64(len(p)) <= uint64(len(b))-(addr-base) {
			copy(p, b[addr-base:])
			return nil
		}
	}
	return fmt.Errorf("read %d bytes at %#x: %w", len(p), addr, process.ErrFault)
}

func (m *fakeMem) ReadBatch(reads []process.Read) error {
	for i := range reads {
		reads[i].Err = m.ReadAt(reads[i].Buf, reads[i].Addr)
	}
	return nil
}

// Where the synthetic runtime lives.
const (
	aGomaxprocs = 0x1000
	aAllp       = 0x2000
	aAllpArray  = 0x3000
	aSched      = 0x40000
	aGC         = 0x50000
	aMemstats   = 0x60000
	aExtraM     = 0x70000
	aP0         = 0x100000
)

var fakeVars = gobin.StateVars{Gomaxprocs: aGomaxprocs, Allp: aAllp, Sched: aSched, GCController: aGC, Memstats: aMemstats,
	ExtraMs: [2]uint64{aExtraM, aExtraM + 4}}

// fakeRuntime is a synthetic runtime state laid out as l describes.
type fakeRuntime struct {
	l   *golayout.Layout
	mem *fakeMem
}

func newFakeRuntime(t *testing.T, nprocs int) *fakeRuntime {
	l, err := golayout.ForVersion("go1.26")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeRuntime{l: l, mem: &fakeMem{regions: map[uint64][]byte{
		aGomaxprocs: make([]byte, 4),
		aAllp:       make([]byte, 24),
		aAllpArray:  make([]byte, 8*nprocs),
		aSched:      make([]byte, l.Sched.Size),
		aGC:         make([]byte, l.GCController.Size),
		aMemstats:   make([]byte, l.Mstats.Numforcedgc+4),
		aExtraM:     make([]byte, 8),
	}}}
	f.u32(aGomaxprocs, 0, uint32(nprocs))
	f.u64(aAllp, 0, aAllpArray)
	f.u64(aAllp, 8, uint64(nprocs))
	f.u64(aAllp, 16, uint64(nprocs))
	for i := 0; i < nprocs; i++ {
		pp := f.p(i)
		f.mem.regions[pp] = make([]byte, l.P.Size)
		f.u64(aAllpArray, int64(8*i), pp)
		f.u32(pp, l.P.ID, uint32(i))
		f.u32(pp, l.P.Status, golayout.PRunning)
	}
	s := &l.Sched
	f.u64(aSched, s.Mnext, 12)
	f.u64(aSched, s.Nmfreed, 2)
	f.u32(aSched, s.Maxmcount, 10000)
	f.u32(aSched, s.Nmidle, 3)
	f.u32(aSched, s.Nmspinning, 1)
	f.u32(aSched, s.Npidle, 1)
	f.u32(aSched, s.RunqSize, 7)
	c := &l.GCController
	f.u32(aGC, c.GCPercent, 100)
	f.u64(aGC, c.MemoryLimit, math.MaxInt64)
	f.u64(aGC, c.HeapMarked, 4<<20)
	f.u64(aGC, c.HeapLive, 5<<20)
	f.u64(aGC, c.GCPercentHeapGoal, 8<<20)
	f.u64(aGC, c.Triggered, math.MaxUint64)
	f.u64(aGC, c.HeapInUse, 6<<20)
	f.u64(aGC, c.HeapFree, 1<<20)
	f.u64(aGC, c.TotalAlloc, 100<<20)
	f.u64(aGC, c.TotalFree, 95<<20)
	f.u64(aGC, c.MappedReady, 10<<20)
	f.u32(aMemstats, l.Mstats.Numgc, 42)
	f.u32(aMemstats, l.Mstats.Numforcedgc, 2)
	f.u32(aExtraM, 0, 1)
	f.u32(aExtraM, 4, 2)
	return f
}

func (f *fakeRuntime) p(i int) uint64 { return aP0 + uint64(i)*0x10000 }

func (f *fakeRuntime) u64(base uint64, off int64, v uint64) {
	binary.LittleEndian.PutUint64(f.mem.regions[base][off:], v)
}

func (f *fakeRuntime) u32(base uint64, off int64, v uint32) {
	binary.LittleEndian.PutUint32(f.mem.regions[base][off:], v)
}

func (f *fakeRuntime) read(t *testing.T) (State, error) {
	t.Helper()
	r, err := newReader(1, f.mem, fakeVars, f.l)
	if err != nil {
		t.Fatal(err)
	}
	return r.Read()
}

func TestReadSynthetic(t *testing.T) {
	f := newFakeRuntime(t, 2)
	f.u32(f.p(0), f.l.P.Runqhead, math.MaxUint32-1) // the counters wrap
	f.u32(f.p(0), f.l.P.Runqtail, 3)
	f.u64(f.p(0), f.l.P.Runnext, 0xc000001000)
	f.u32(f.p(1), f.l.P.Status, golayout.PIdle)
	r, err := newReader(1, f.mem, fakeVars, f.l)
	if err != nil {
		t.Fatal(err)
	}
	st, err := r.Read()
	if err != nil {
		t.Fatal(err)
	}
	want := State{
		GOMAXPROCS: 2, GOGCPercent: 100, MemoryLimitBytes: math.MaxInt64, MaxThreads: 10000,
		HeapLiveBytes: 4 << 20, HeapGoalBytes: 8 << 20, HeapPacedBytes: 5 << 20, HeapInUseBytes: 6 << 20,
		GCCycles: 42, ForcedGCCycles: 2,
		GlobalRunQueue: 7, LocalRunQueues: []int{6, 0}, LocalRunQueued: 6, IdlePs: 1,
		Ms: 10, ExtraMs: 3, IdleMs: 3, SpinningMs: 1, Threads: -1,
	}
	if !reflect.DeepEqual(st, want) {
		t.Errorf("read\n %+v, want\n %+v", st, want)
	}
	// Read again: allp and the Ps are read in the first batch, at the addresses of the last.
	f.u32(f.p(1), f.l.P.Runqtail, 2)
	want.LocalRunQueues, want.LocalRunQueued = []int{6, 2}, 8
	if st, err := r.Read(); err != nil || !reflect.DeepEqual(st, want) {
		t.Errorf("read again\n %+v, %v; want\n %+v", st, err, want)
	}
	if n := len(r.reads); n != 7+1+3*2 {
		t.Errorf("second read: %d reads in the batch, want all in one", n)
	}
	// A new allp array: the Ps are read again from it.
	const moved = 0x7000
	f.mem.regions[moved] = []byte{}
	f.mem.regions[moved] = append(f.mem.regions[moved], f.mem.regions[aAllpArray][8:16]...)
	f.mem.regions[moved] = append(f.mem.regions[moved], f.mem.regions[aAllpArray][:8]...)
	delete(f.mem.regions, aAllpArray)
	f.u64(aAllp, 0, moved)
	if _, err := r.Read(); err == nil || !errors.Is(err, ErrImplausible) { // swapped: wrong ids
		t.Errorf("read with swapped Ps: %v, want ErrImplausible", err)
	}
	copy(f.mem.regions[moved], f.mem.regions[moved][8:])
	f.u64(moved, 8, f.p(1))
	if st, err := r.Read(); err != nil || !reflect.DeepEqual(st, want) {
		t.Errorf("read after allp moved\n %+v, %v; want\n %+v", st, err, want)
	}
}

func TestHeapGoal(t *testing.T) {
	base := gcFields{memoryLimit: math.MaxInt64, gcPercentHeapGoal: 8 << 20, triggered: math.MaxUint64,
		heapMarked: 4 << 20, heapFree: 1 << 20, totalAlloc: 100 << 20, totalFree: 95 << 20, mappedReady: 10 << 20}
	tests := []struct {
		name   string
		change func(*gcFields)
		want   uint64
	}{
		{"GOGC", func(*gcFields) {}, 8 << 20},
		{"sweep distance", func(f *gcFields) { f.sweepDistMinTrigger = 9 << 20 }, 9 << 20},
		{"runway past the trigger", func(f *gcFields) { f.triggered = 8<<20 - 1 }, 8<<20 - 1 + 64<<10},
		// 64 MiB limit, 4 MiB outside the heap: 60 MiB, less 3% of it.
		{"memory limit", func(f *gcFields) { f.memoryLimit, f.gcPercentHeapGoal = 64<<20, math.MaxUint64 }, 62914560 - 62914560/100*3},
		{"memory limit, minimum headroom", func(f *gcFields) { f.memoryLimit, f.gcPercentHeapGoal = 20<<20, math.MaxUint64 }, 16<<20 - 1<<20},
		{"memory limit under the non-heap", func(f *gcFields) { f.memoryLimit = 3 << 20 }, 4 << 20},
		{"over the limit", func(f *gcFields) { f.memoryLimit = 9 << 20; f.mappedReady = 12 << 20 }, 4 << 20},
		{"not under the live heap", func(f *gcFields) { f.memoryLimit, f.heapMarked = 8<<20, 5<<20 }, 5 << 20},
	}
	for _, tt := range tests {
		f := base
		tt.change(&f)
		if got := heapGoal(&f); got != tt.want {
			t.Errorf("%s: heap goal %d, want %d", tt.name, got, tt.want)
		}
	}
}

// TestReadImplausible checks that a runtime state out of what the runtime guarantees, or
// memory not mapped, gives an error, never a State.
func TestReadImplausible(t *testing.T) {
	tests := []struct {
		name   string
		change func(f *fakeRuntime)
		want   error // nil: any error
	}{
		{"gomaxprocs 0", func(f *fakeRuntime) { f.u32(aGomaxprocs, 0, 0) }, ErrImplausible},
		{"gomaxprocs huge", func(f *fakeRuntime) { f.u32(aGomaxprocs, 0, 1<<30) }, ErrImplausible},
		{"allp longer", func(f *fakeRuntime) { f.u64(aAllp, 8, 3); f.u64(aAllp, 16, 3) }, ErrImplausible},
		{"allp cap short", func(f *fakeRuntime) { f.u64(aAllp, 16, 1) }, ErrImplausible},
		{"allp huge", func(f *fakeRuntime) { f.u64(aAllp, 8, 1<<40); f.u64(aAllp, 16, 1<<40) }, ErrImplausible},
		{"allp nil entry", func(f *fakeRuntime) { f.u64(aAllpArray, 8, 0) }, ErrImplausible},
		{"allp unmapped", func(f *fakeRuntime) { f.u64(aAllp, 0, 0xdead000) }, process.ErrFault},
		{"p unmapped", func(f *fakeRuntime) { f.u64(aAllpArray, 8, 0xdead000) }, process.ErrFault},
		{"p id", func(f *fakeRuntime) { f.u32(f.p(1), f.l.P.ID, 0) }, ErrImplausible},
		{"p status", func(f *fakeRuntime) { f.u32(f.p(1), f.l.P.Status, 9) }, ErrImplausible},
		{"p runq", func(f *fakeRuntime) { f.u32(f.p(1), f.l.P.Runqtail, 257) }, ErrImplausible},
		{"ms", func(f *fakeRuntime) { f.u64(aSched, f.l.Sched.Nmfreed, 13) }, ErrImplausible},
		{"maxmcount", func(f *fakeRuntime) { f.u32(aSched, f.l.Sched.Maxmcount, 0) }, ErrImplausible},
		{"idle ms", func(f *fakeRuntime) { f.u32(aSched, f.l.Sched.Nmidle, 11) }, ErrImplausible},
		{"extra ms", func(f *fakeRuntime) { f.u32(aExtraM, 4, 10) }, ErrImplausible},
		{"idle ps", func(f *fakeRuntime) { f.u32(aSched, f.l.Sched.Npidle, 3) }, ErrImplausible},
		{"global runq", func(f *fakeRuntime) { f.u32(aSched, f.l.Sched.RunqSize, math.MaxUint32) }, ErrImplausible},
		{"gcPercent", func(f *fakeRuntime) { f.u32(aGC, f.l.GCController.GCPercent, math.MaxUint32-1) }, ErrImplausible},
		{"memoryLimit", func(f *fakeRuntime) { f.u64(aGC, f.l.GCController.MemoryLimit, 1<<63) }, ErrImplausible},
		{"heap counters", func(f *fakeRuntime) { f.u64(aGC, f.l.GCController.MappedReady, 1<<20) }, ErrImplausible},
		{"freed more", func(f *fakeRuntime) { f.u64(aGC, f.l.GCController.TotalFree, 101<<20) }, ErrImplausible},
		{"forced GCs", func(f *fakeRuntime) { f.u32(aMemstats, f.l.Mstats.Numforcedgc, 43) }, ErrImplausible},
		{"sched unmapped", func(f *fakeRuntime) { delete(f.mem.regions, aSched) }, process.ErrFault},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeRuntime(t, 2)
			tt.change(f)
			st, err := f.read(t)
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Errorf("read = %+v, %v; want an error wrapping %v", st, err, tt.want)
			}
		})
	}
}

// TestNewReaderBadLayout checks the layouts a Reader refuses.
func TestNewReaderBadLayout(t *testing.T) {
	f := newFakeRuntime(t, 1)
	for name, change := range map[string]func(l *golayout.Layout){
		"absent field":     func(l *golayout.Layout) { l.GCController.TotalFree = golayout.Absent },
		"spread fields":    func(l *golayout.Layout) { l.Sched.RunqSize = 1 << 20 },
		"status after id":  func(l *golayout.Layout) { l.P.Status = l.P.ID + 8 },
		"no run queue cap": func(l *golayout.Layout) { l.P.RunqCap = golayout.Absent },
	} {
		l := *f.l
		change(&l)
		if _, err := newReader(1, f.mem, fakeVars, &l); !errors.Is(err, ErrImplausible) {
			t.Errorf("%s: %v, want ErrImplausible", name, err)
		}
	}
}

// garbageMem answers every read with bytes drawn from a seed: a process whose memory is
// anything at all.
type garbageMem struct{ seed []byte }

func (m garbageMem) ReadAt(p []byte, addr uint64) error {
	if len(m.seed) == 0 {
		return fmt.Errorf("at %#x: %w", addr, process.ErrFault)
	}
	for i := range p {
		a := addr + uint64(i)
		p[i] = m.seed[(a^a>>7)%uint64(len(m.seed))]
	}
	return nil
}

func (m garbageMem) ReadBatch(reads []process.Read) error {
	for i := range reads {
		reads[i].Err = m.ReadAt(reads[i].Buf, reads[i].Addr)
	}
	return nil
}

// FuzzReadGarbage reads the runtime state out of arbitrary memory: no panic, and a State only
// when it is within the runtime's bounds.
func FuzzReadGarbage(f *testing.F) {
	f.Add([]byte{1, 0, 0, 0})
	f.Add([]byte{2, 0, 0, 0, 0, 0, 0, 0, 0x10})
	f.Add(make([]byte, 64))
	l, err := golayout.ForVersion("go1.26")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, seed []byte) {
		r, err := newReader(1, garbageMem{seed: seed}, fakeVars, l)
		if err != nil {
			t.Fatal(err)
		}
		st, err := r.Read()
		if err != nil {
			return
		}
		if st.GOMAXPROCS < 1 || len(st.LocalRunQueues) != st.GOMAXPROCS || st.IdlePs > st.GOMAXPROCS ||
			st.GOGCPercent < -1 || st.MemoryLimitBytes < 0 || st.Ms < 1 || st.GlobalRunQueue < 0 {
			t.Errorf("implausible State accepted: %+v", st)
		}
	})
}
