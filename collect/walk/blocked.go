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
// (its first sudog) is to be followed to its channels.
type pendingWait struct {
	index   int
	waiting uint64
}

// blockedResolver finds, after a walk, the channels the waiting goroutines
// are blocked on. It batches every read: first the sudogs of all waiting
// goroutines (following select's waitlink chains level by level), then the
// channels, and it counts each channel's queued senders and receivers by
// following sudog.next through the sudogs already read — the queued
// goroutines are the waiting ones.
type blockedResolver struct {
	mem *ProcMem
	l   *golayout.Layout
	// sudogs, chans and the buffers live across snapshots (cleared, not
	// reallocated).
	sudogs  map[uint64][]byte
	chans   map[uint64][]byte
	chansOf map[int][]uint64 // a select's further channels, by pending index
	cur     []uint64
}

func newBlockedResolver(mem *ProcMem, l *golayout.Layout) *blockedResolver {
	return &blockedResolver{mem: mem, l: l, sudogs: map[uint64][]byte{}, chans: map[uint64][]byte{}, chansOf: map[int][]uint64{}}
}

func (r *blockedResolver) resolve(gs []snapshot.Goroutine, pending []pendingWait) {
	clear(r.sudogs)
	clear(r.chans)
	clear(r.chansOf)
	if len(pending) == 0 {
		return
	}
	sl := r.l.Sudog
	sudogs := r.sudogs
	// first[i] is the first channel of pending[i]; selects' further
	// channels go to chansOf.
	first := make([]uint64, len(pending))
	cur := append(r.cur[:0], make([]uint64, len(pending))...)
	r.cur = cur
	addrs := make([]uint64, 0, len(pending))
	for i, p := range pending {
		cur[i] = p.waiting
		addrs = append(addrs, p.waiting) // each goroutine has its own sudogs
	}
	// Read sudogs level by level: each goroutine's first, then the next of
	// each select's chain, in batches.
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
				if first[i] == 0 {
					first[i] = c
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
	// Read every channel once.
	chans := r.chans
	var caddrs []uint64
	note := func(c uint64) {
		if _, ok := chans[c]; !ok {
			chans[c] = nil
			caddrs = append(caddrs, c)
		}
	}
	for i := range pending {
		if first[i] != 0 {
			note(first[i])
		}
		for _, c := range r.chansOf[i] {
			note(c)
		}
	}
	r.readAll(caddrs, r.l.Hchan.Size, chans)
	facts := make(map[uint64]*snapshot.BlockedOn, len(chans))
	for c, hb := range chans {
		if hb != nil {
			facts[c] = r.channel(c, hb, sudogs)
		}
	}
	for i, p := range pending {
		b := facts[first[i]]
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
	}
}

func anyNonZero(s []uint64) bool {
	for _, v := range s {
		if v != 0 {
			return true
		}
	}
	return false
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
