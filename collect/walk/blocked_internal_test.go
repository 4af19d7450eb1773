package walk

import (
	"encoding/binary"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"github.com/goroscope/goroscope/collect/process"
	"github.com/goroscope/goroscope/pkg/golayout"
	"github.com/goroscope/goroscope/pkg/snapshot"
)

// fakeRuntime lays runtime structures out in this process's memory, which
// a ProcMem of our own pid reads as it reads a target's. Go's heap does not
// move objects, and bufs keeps them alive.
type fakeRuntime struct {
	t    *testing.T
	l    *golayout.Layout
	mem  *process.Mem
	bufs [][]byte
}

func newFakeRuntime(t *testing.T) *fakeRuntime {
	t.Helper()
	l, err := golayout.ForVersion("go1.26")
	if err != nil {
		t.Fatal(err)
	}
	mem, err := process.NewMem(os.Getpid())
	if err != nil {
		t.Skipf("cannot read our own memory: %v", err)
	}
	return &fakeRuntime{t: t, l: l, mem: mem}
}

func (f *fakeRuntime) alloc(size int64) ([]byte, uint64) {
	b := make([]byte, size)
	f.bufs = append(f.bufs, b)
	return b, uint64(uintptr(unsafe.Pointer(&b[0])))
}

func put64(b []byte, off int64, v uint64) { binary.LittleEndian.PutUint64(b[off:], v) }

// fakeSudog describes one sudog: whose (0 the goroutine resolved, 1
// another), on which channel (-1 none), its waitlink (index, -1 none) and
// whether it is a select's.
type fakeSudog struct {
	g, c, link int
	sel        bool
}

// fakeWait is one goroutine parked on the described sudogs (the first is
// its g.waiting) and channels, each with a receive queue of sudogs.
type fakeWait struct {
	f      *fakeRuntime
	g      []byte
	gaddr  uint64
	other  uint64
	sudogs [][]byte
	saddr  []uint64
	chans  [][]byte
	caddr  []uint64
}

func (f *fakeRuntime) wait(sel bool, sudogs []fakeSudog, queues [][]int) *fakeWait {
	l := f.l
	w := &fakeWait{f: f}
	w.g, w.gaddr = f.alloc(l.G.Size)
	_, w.other = f.alloc(l.G.Size)
	for range sudogs {
		b, a := f.alloc(l.Sudog.Size)
		w.sudogs, w.saddr = append(w.sudogs, b), append(w.saddr, a)
	}
	for range queues {
		b, a := f.alloc(l.Hchan.Size)
		w.chans, w.caddr = append(w.chans, b), append(w.caddr, a)
	}
	for i, s := range sudogs {
		b := w.sudogs[i]
		put64(b, l.Sudog.G, []uint64{w.gaddr, w.other}[s.g])
		if s.c >= 0 {
			put64(b, l.Sudog.C, w.caddr[s.c])
		}
		if s.link >= 0 {
			put64(b, l.Sudog.WaitLink, w.saddr[s.link])
		}
		if s.sel {
			b[l.Sudog.IsSelect] = 1
		}
	}
	for c, q := range queues {
		for k, s := range q {
			if k == 0 {
				put64(w.chans[c], l.Hchan.Recvq+l.Waitq.First, w.saddr[s])
			} else {
				put64(w.sudogs[q[k-1]], l.Sudog.Next, w.saddr[s])
			}
		}
	}
	binary.LittleEndian.PutUint32(w.g[l.G.AtomicStatus:], uint32(golayout.StatusWaiting))
	put64(w.g, l.G.Goid, 7)
	put64(w.g, l.G.StackLo, 0x10000)
	put64(w.g, l.G.StackHi, 0x20000)
	put64(w.g, l.G.SchedSP, 0x18000)
	put64(w.g, l.G.SchedPC, 0x401000)
	put64(w.g, l.G.Waiting, w.saddr[0])
	w.g[l.G.TrackingSeq] = 3
	return w
}

// pending is the goroutine as a walk of it now would find it.
func (w *fakeWait) pending(sel bool) pendingWait {
	f := readFields(w.f.l, w.g)
	return pendingWait{kind: waitChan, sel: sel, gaddr: w.gaddr, park: parkOf(&f), seen: &seenG{}}
}

// TestBlockedChains: a waiting goroutine's sudogs count only while they are
// its own and it stays parked; a recycled sudog is not counted in a queue.
// Each case reads the goroutine's chain and channels, changes memory as a
// goroutine waking meanwhile would (between), and confirms.
func TestBlockedChains(t *testing.T) {
	const none = -1
	for _, tc := range []struct {
		name    string
		sel     bool
		sudogs  []fakeSudog
		queues  [][]int // per channel, the sudogs of its receive queue
		between func(w *fakeWait)
		want    []int // channels the goroutine is blocked on; nil: it moved
		recv    []int // receivers counted, per wanted channel
	}{
		{name: "lone receive", sudogs: []fakeSudog{{0, 0, none, false}}, queues: [][]int{{0}},
			want: []int{0}, recv: []int{1}},
		{name: "select on two channels", sel: true,
			sudogs: []fakeSudog{{0, 0, 1, true}, {0, 1, none, true}}, queues: [][]int{{0}, {1}},
			want: []int{0, 1}, recv: []int{1, 1}},
		{name: "recycled sudog in a queue is not counted", sel: true,
			sudogs: []fakeSudog{{0, 0, 1, true}, {0, 1, none, true}, {1, 1, none, true}}, queues: [][]int{{0}, {1, 2}},
			want: []int{0, 1}, recv: []int{1, 1}},
		{name: "sudog of the chain taken by another goroutine", sel: true,
			sudogs: []fakeSudog{{0, 0, 1, true}, {1, 1, none, true}}, queues: [][]int{{0}, {1}}},
		{name: "woken: channel cleared", sel: true,
			sudogs: []fakeSudog{{0, 0, 1, true}, {0, none, none, true}}, queues: [][]int{{0}, {}}},
		{name: "lone wait with a waitlink",
			sudogs: []fakeSudog{{0, 0, 1, false}, {0, 1, none, false}}, queues: [][]int{{0}, {1}}},
		{name: "select mark on a lone wait",
			sudogs: []fakeSudog{{0, 0, none, true}}, queues: [][]int{{0}}},
		{name: "chain loops", sel: true,
			sudogs: []fakeSudog{{0, 0, 1, true}, {0, 1, 0, true}}, queues: [][]int{{0}, {1}}},
		{name: "woke after its chain was read", sel: true,
			sudogs: []fakeSudog{{0, 0, 1, true}, {0, 1, none, true}}, queues: [][]int{{0}, {1}},
			between: func(w *fakeWait) { put64(w.sudogs[1], w.f.l.Sudog.C, 0) }},
		{name: "parked anew after its chain was read", sel: true,
			sudogs: []fakeSudog{{0, 0, 1, true}, {0, 1, none, true}}, queues: [][]int{{0}, {1}},
			between: func(w *fakeWait) { w.g[w.f.l.G.TrackingSeq]++ }},
		{name: "sudog handed to another goroutine after the chain was read",
			sudogs: []fakeSudog{{0, 0, none, false}}, queues: [][]int{{0}},
			between: func(w *fakeWait) { put64(w.sudogs[0], w.f.l.Sudog.G, w.other) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeRuntime(t)
			w := f.wait(tc.sel, tc.sudogs, tc.queues)
			r := newBlockedResolver(f.mem, f.l)
			pending := []pendingWait{w.pending(tc.sel)}
			gs := make([]snapshot.Goroutine, 1)
			work := r.read(pending, r.start(pending), true)
			r.readChans(work)
			if tc.between != nil {
				tc.between(w)
			}
			moved := r.confirm(pending, work)
			r.answer(gs, pending)
			b := gs[0].BlockedOn
			if tc.want == nil {
				if !slices.Equal(moved, []int{0}) || b != nil || pending[0].seen.chans != nil {
					t.Errorf("moved %v, blocked on %+v, remembered %v; want it moved with no answer", moved, b, pending[0].seen.chans)
				}
				return
			}
			if len(moved) != 0 || b == nil {
				t.Fatalf("moved %v, blocked on %+v; want an answer", moved, b)
			}
			got := append([]snapshot.BlockedOn{*b}, b.Others...)
			if len(got) != len(tc.want) {
				t.Fatalf("blocked on %d channels, want %d: %+v", len(got), len(tc.want), got)
			}
			for k, c := range tc.want {
				if a, _ := strconv.ParseUint(strings.TrimPrefix(got[k].Address, "0x"), 16, 64); a != w.caddr[c] || got[k].Receivers != tc.recv[k] {
					t.Errorf("channel %d: %s with %d receivers, want %#x with %d", k, got[k].Address, got[k].Receivers, w.caddr[c], tc.recv[k])
				}
			}
			if want := []uint64{w.caddr[tc.want[0]]}; pending[0].seen.chans == nil || pending[0].seen.chans[0] != want[0] {
				t.Errorf("remembered channels %#x, want %#x first", pending[0].seen.chans, want[0])
			}
		})
	}
}

// TestBlockedRereads: a goroutine that moved is read again (again), a
// bounded number of times, and counted; one that keeps moving is left
// without an answer, and nothing of it is kept for the next walk.
func TestBlockedRereads(t *testing.T) {
	for _, tc := range []struct {
		name       string
		settle     int // the re-read that finds it parked again; 0: never
		wantReads  int
		wantLost   int
		wantAnswer bool
	}{
		{name: "parked again at the first re-read", settle: 1, wantReads: 1, wantAnswer: true},
		{name: "parked again at the last re-read", settle: maxBlockedRetries, wantReads: maxBlockedRetries, wantAnswer: true},
		{name: "never still", wantReads: maxBlockedRetries, wantLost: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeRuntime(t)
			// It woke after the walk: the sudogs no longer name a channel.
			w := f.wait(true, []fakeSudog{{0, 0, 1, true}, {0, 1, -1, true}}, [][]int{{0}, {1}})
			pending := []pendingWait{w.pending(true)}
			put64(w.sudogs[1], f.l.Sudog.C, 0)
			reads := 0
			again := func(ps []*pendingWait) []rereadResult {
				reads++
				if reads != tc.settle {
					return []rereadResult{rereadFailed}
				}
				// Parked on both channels again, as the re-read finds it.
				put64(w.sudogs[1], f.l.Sudog.C, w.caddr[1])
				w.g[f.l.G.TrackingSeq]++
				*ps[0] = w.pending(true)
				return []rereadResult{rereadWaiting}
			}
			r := newBlockedResolver(f.mem, f.l)
			gs := make([]snapshot.Goroutine, 1)
			r.resolve(gs, pending, again)
			if r.rereads != tc.wantReads || reads != tc.wantReads || r.lost != tc.wantLost {
				t.Errorf("counted %d re-reads (made %d) and %d lost, want %d and %d", r.rereads, reads, r.lost, tc.wantReads, tc.wantLost)
			}
			b := gs[0].BlockedOn
			switch {
			case tc.wantAnswer && (b == nil || len(b.Others) != 1):
				t.Errorf("blocked on %+v, want both channels", b)
			case !tc.wantAnswer && (b != nil || pending[0].seen.chans != nil):
				t.Errorf("blocked on %+v, remembered %v; want neither", b, pending[0].seen.chans)
			}
		})
	}
}
