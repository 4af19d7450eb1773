package walk

import (
	"fmt"

	"github.com/goroscope/goroscope/collect/process"
	"github.com/goroscope/goroscope/pkg/golayout"
	"github.com/goroscope/goroscope/pkg/snapshot"
)

// The runtime's semaphore table (runtime/sema.go): semTabSize roots, each a
// semaRoot{lock mutex; treap *sudog; nwait uint32} padded to a cache line.
// The layout has been the same from Go 1.21 to 1.26 on amd64.
const (
	semTabSize     = 251
	semRootStride  = 64 // cpu.CacheLinePadSize on amd64
	semRootTreap   = 8  // after the 8-byte runtime mutex
	maxSemWaiters  = 1 << 21
	maxSemTreeLoop = 1 << 16
)

// semWaiters maps each goroutine (by g address) parked on a semaphore to
// the semaphore's address. Goroutines blocked in sync.Mutex.Lock,
// sync.RWMutex, sync.WaitGroup.Wait and other semacquire waits sit in the
// semtable's treaps: one sudog per address (prev/next are the tree's
// children), further waiters on the same address chained by waitlink. The
// treaps are read breadth first, one batch of reads per level.
func semWaiters(mem *process.Mem, l *golayout.Layout, semtable uint64) (map[uint64]uint64, error) {
	table := make([]byte, semTabSize*semRootStride)
	if err := mem.ReadAt(table, semtable); err != nil {
		return nil, fmt.Errorf("read runtime.semtable at %#x: %w", semtable, err)
	}
	sl := l.Sudog
	var level []uint64
	for i := 0; i < semTabSize; i++ {
		if p := golayout.Uint64(table, int64(i*semRootStride+semRootTreap)); p != 0 {
			level = append(level, p)
		}
	}
	out := map[uint64]uint64{}
	seen := map[uint64]bool{}
	bufs := map[uint64][]byte{}
	r := &blockedResolver{mem: mem, l: l}
	for depth := 0; len(level) > 0 && depth < maxSemTreeLoop && len(seen) < maxSemWaiters; depth++ {
		clear(bufs)
		r.readAll(level, sl.Size, bufs)
		var next []uint64
		for _, a := range level {
			s := bufs[a]
			if s == nil || seen[a] {
				continue
			}
			seen[a] = true
			if g, elem := golayout.Uint64(s, sl.G), golayout.Uint64(s, sl.Elem); g != 0 && elem != 0 {
				out[g] = elem
			}
			for _, child := range []uint64{golayout.Uint64(s, sl.Prev), golayout.Uint64(s, sl.Next), golayout.Uint64(s, sl.WaitLink)} {
				if child != 0 && !seen[child] {
					next = append(next, child)
				}
			}
		}
		level = next
	}
	return out, nil
}

// resolveSync sets BlockedOn for the goroutines in sync waits from the
// semtable, read after the walk. A goroutine gets the semaphore found only
// if its g, read after the semtable, is still parked as the walk found it:
// its sudog was in the treap all along. Those that moved are read again
// (again), and the semtable with them, up to maxBlockedRetries times.
func (s *Snapshotter) resolveSync(gs []snapshot.Goroutine, syncs []pendingWait, again func(ps []*pendingWait) []rereadResult) {
	if s.t.Vars.Semtable == 0 {
		return
	}
	r := s.blocked
	var idx []int
	for try := 0; len(syncs) > 0; try++ {
		waiters, err := semWaiters(s.t.Mem(), s.t.Layout, s.t.Vars.Semtable+s.t.Bias)
		if err != nil {
			return
		}
		idx = idx[:0]
		for k := range syncs {
			idx = append(idx, k)
		}
		parks, ok := r.readParks(syncs, idx)
		var moved []pendingWait
		for k := range syncs {
			p := &syncs[k]
			if ok[k] && parks[k] == p.park {
				if addr, found := waiters[p.gaddr]; found {
					gs[p.index].BlockedOn = &snapshot.BlockedOn{Kind: snapshot.BlockedOnSync, Address: fmt.Sprintf("%#x", addr)}
				}
				continue
			}
			if try == maxBlockedRetries {
				r.lost++
				continue
			}
			moved = append(moved, *p)
		}
		if len(moved) == 0 {
			break
		}
		ps := make([]*pendingWait, len(moved))
		for k := range moved {
			ps[k] = &moved[k]
		}
		r.rereads += len(ps)
		res := again(ps)
		// Those still in a sync wait, renewed, and those that could not be
		// read (tried again) go round once more.
		syncs = syncs[:0]
		for k := range moved {
			if res[k] != rereadOther {
				syncs = append(syncs, moved[k])
			}
		}
	}
}
