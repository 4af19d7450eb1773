package walk

import (
	"fmt"

	"github.com/goroscope/goroscope/pkg/golayout"
	"github.com/goroscope/goroscope/pkg/snapshot"
)

// Bounds on the runtime lists followed from a waiting goroutine.
const (
	maxSelectCases = 1 << 16
	maxQueueLen    = 1 << 22
	maxOthers      = 64
)

// chanWait reports whether a wait reason parks on channels through
// g.waiting. Waits on nil channels and empty selects park with no sudog.
func chanWait(reason string) bool {
	return golayout.IsChanReason(reason) && !golayout.IsForeverReason(reason)
}

// pendingWait is a goroutine, by index in the snapshot, whose g.waiting
// (its first sudog) is to be followed to its channels. seen is what the
// snapshotter remembers of it; same says it is parked exactly as in the
// last walk, on the channels seen.chans.
type pendingWait struct {
	index   int
	waiting uint64
	seen    *seenG
	same    bool
}

// blockedResolver finds, after a walk, the channels the waiting goroutines
// are blocked on. It batches every read: first the sudogs of the waiting
// goroutines (following select's waitlink chains level by level), then the
// channels, and it counts each channel's queued senders and receivers by
// following sudog.next through the sudogs already read — the queued
// goroutines are the waiting ones.
//
// A goroutine parked unchanged keeps the channels and facts found before
// unless one of its channels is dirty: waited on, now or at the last walk,
// by a goroutine that changed or left. While nobody joins or leaves a
// channel's queues its facts cannot change: with receivers waiting its
// buffer is empty, with senders waiting it is full, and closing it wakes
// them all.
type blockedResolver struct {
	mem *ProcMem
	l   *golayout.Layout
	// sudogs, chans and the buffers live across snapshots (cleared, not
	// reallocated).
	sudogs  map[uint64][]byte
	chans   map[uint64][]byte
	chansOf map[int][]uint64 // a select's further channels, by pending index
	first   []uint64         // first channel, by pending index
	cur     []uint64
	dirty   map[uint64]struct{}
	redo    []int
}

func newBlockedResolver(mem *ProcMem, l *golayout.Layout) *blockedResolver {
	return &blockedResolver{mem: mem, l: l, sudogs: map[uint64][]byte{}, chans: map[uint64][]byte{},
		chansOf: map[int][]uint64{}, dirty: map[uint64]struct{}{}}
}

// markDirty notes channels whose queues changed since the last walk.
func (r *blockedResolver) markDirty(chans []uint64) {
	for _, c := range chans {
		r.dirty[c] = struct{}{}
	}
}

func (r *blockedResolver) isDirty(chans []uint64) bool {
	for _, c := range chans {
		if _, ok := r.dirty[c]; ok {
			return true
		}
	}
	return false
}

func (r *blockedResolver) resolve(gs []snapshot.Goroutine, pending []pendingWait) {
	clear(r.sudogs)
	clear(r.chans)
	clear(r.chansOf)
	defer clear(r.dirty)
	if len(pending) == 0 {
		return
	}
	r.first = append(r.first[:0], make([]uint64, len(pending))...)
	r.cur = append(r.cur[:0], make([]uint64, len(pending))...)
	// Goroutines with no answer kept from the last walk first: their
	// channels are dirty for the others.
	cached := func(p *pendingWait) bool { return p.same && p.seen != nil && p.seen.chans != nil }
	for i := range pending {
		if !cached(&pending[i]) {
			r.cur[i] = pending[i].waiting
		}
	}
	r.chase()
	for i := range pending {
		if !cached(&pending[i]) && r.first[i] != 0 {
			r.dirty[r.first[i]] = struct{}{}
			r.markDirty(r.chansOf[i])
		}
	}
	// Then the unchanged goroutines on a dirty channel; the rest keep
	// their answer.
	r.redo = r.redo[:0]
	for i := range pending {
		p := &pending[i]
		if !cached(p) {
			continue
		}
		if r.isDirty(p.seen.chans) {
			r.cur[i] = p.waiting
			r.redo = append(r.redo, i)
		} else {
			gs[p.index].BlockedOn = p.seen.blocked
		}
	}
	r.chase()
	// Read every channel the chased goroutines wait on, once.
	chans := r.chans
	var caddrs []uint64
	note := func(c uint64) {
		if _, ok := chans[c]; !ok && c != 0 {
			chans[c] = nil
			caddrs = append(caddrs, c)
		}
	}
	for i := range pending {
		note(r.first[i])
		for _, c := range r.chansOf[i] {
			note(c)
		}
	}
	r.readAll(caddrs, r.l.Hchan.Size, chans)
	facts := make(map[uint64]*snapshot.BlockedOn, len(chans))
	for c, hb := range chans {
		if hb != nil {
			facts[c] = r.channel(c, hb, r.sudogs)
		}
	}
	for i := range pending {
		p := &pending[i]
		if r.first[i] == 0 {
			continue // kept its answer, or its sudogs were unreadable
		}
		b := facts[r.first[i]]
		if b == nil {
			continue
		}
		cp := *b
		for _, c := range r.chansOf[i] {
			if o := facts[c]; o != nil {
				cp.Others = append(cp.Others, *o)
			}
		}
		gs[p.index].BlockedOn = &cp
		if p.seen != nil {
			p.seen.chans = append(append(make([]uint64, 0, 1+len(r.chansOf[i])), r.first[i]), r.chansOf[i]...)
			p.seen.blocked = &cp
		}
	}
}

// chase reads the sudogs from each non-zero r.cur[i] level by level: each
// goroutine's first, then the next of each select's chain, in batches,
// noting the first channel of pending i in r.first[i] and a select's
// further channels in r.chansOf[i]. It leaves r.cur zeroed.
func (r *blockedResolver) chase() {
	sl := r.l.Sudog
	sudogs, cur := r.sudogs, r.cur
	addrs := make([]uint64, 0, len(cur))
	for _, a := range cur {
		if a != 0 {
			addrs = append(addrs, a) // each goroutine has its own sudogs
		}
	}
	for level := 0; level < maxSelectCases && len(addrs) > 0; level++ {
		r.readAll(addrs, sl.Size, sudogs)
		addrs = addrs[:0]
		for i, a := range cur {
			if a == 0 {
				continue
			}
			s := sudogs[a]
			if s == nil {
				cur[i] = 0 // unreadable: the goroutine woke up under us
				continue
			}
			if c := le64(s, sl.C); c != 0 {
				if r.first[i] == 0 {
					r.first[i] = c
				} else if len(r.chansOf[i]) < maxOthers {
					r.chansOf[i] = append(r.chansOf[i], c)
				}
			}
			next := le64(s, sl.WaitLink)
			if _, seen := sudogs[next]; seen {
				next = 0 // a loop in torn data
			}
			if cur[i] = next; next != 0 {
				addrs = append(addrs, next)
			}
		}
	}
	clear(cur)
}

// readAll reads size bytes at each address into out; failed reads stay nil.
func (r *blockedResolver) readAll(addrs []uint64, size int64, out map[uint64][]byte) {
	if len(addrs) == 0 || size <= 0 || size > 4096 {
		return
	}
	slab := make([]byte, int64(len(addrs))*size)
	reads := make([]Read, len(addrs))
	for i, a := range addrs {
		reads[i] = Read{Addr: a, Buf: slab[int64(i)*size : int64(i+1)*size]}
	}
	if err := r.mem.ReadBatch(reads); err != nil {
		return
	}
	for i, rd := range reads {
		if rd.Err == nil {
			out[addrs[i]] = rd.Buf
		}
	}
}

// channel describes one channel from its hchan bytes.
func (r *blockedResolver) channel(c uint64, hb []byte, sudogs map[uint64][]byte) *snapshot.BlockedOn {
	h := r.l.Hchan
	return &snapshot.BlockedOn{
		Kind:      snapshot.BlockedOnChan,
		Address:   fmt.Sprintf("%#x", c),
		Capacity:  le64(hb, h.Dataqsiz),
		Length:    le64(hb, h.Qcount),
		Closed:    le32(hb, h.Closed) != 0,
		Receivers: r.queueLen(le64(hb, h.Recvq+r.l.Waitq.First), sudogs),
		Senders:   r.queueLen(le64(hb, h.Sendq+r.l.Waitq.First), sudogs),
	}
}

// queueLen follows a wait queue's sudog.next chain, from the sudogs already
// read where it can and from the target's memory where it must.
func (r *blockedResolver) queueLen(first uint64, sudogs map[uint64][]byte) int {
	n := 0
	var p [8]byte
	for sg := first; sg != 0 && n < maxQueueLen; n++ {
		if s := sudogs[sg]; s != nil {
			sg = le64(s, r.l.Sudog.Next)
			continue
		}
		if err := r.mem.ReadAt(p[:], sg+uint64(r.l.Sudog.Next)); err != nil {
			break
		}
		sg = le64(p[:], 0)
	}
	return n
}
