package walk

import (
	"fmt"
	"slices"
	"strings"

	"github.com/goroscope/goroscope/collect/process"
	"github.com/goroscope/goroscope/pkg/golayout"
	"github.com/goroscope/goroscope/pkg/snapshot"
)

// Bounds on the runtime lists followed from a waiting goroutine, and on the
// re-reads of a goroutine that moves while they are followed.
const (
	maxSelectCases    = 1 << 16
	maxQueueLen       = 1 << 22
	maxOthers         = 64
	maxBlockedRetries = 3
)

// chanWait reports whether a wait reason parks on channels through
// g.waiting. Waits on nil channels and empty selects park with no sudog.
func chanWait(reason string) bool {
	return golayout.IsChanReason(reason) && !golayout.IsForeverReason(reason)
}

// selectWait reports whether a wait reason is a select's: its sudogs are
// marked isSelect and chained by waitlink; a lone channel wait has one
// sudog, not marked.
func selectWait(reason string) bool {
	base, _, _ := strings.Cut(reason, " (")
	return base == "select"
}

// waitKind says how what a waiting goroutine is blocked on is found.
type waitKind uint8

const (
	waitNone waitKind = iota
	waitChan          // g.waiting leads to its channels
	waitSync          // the semtable holds its semaphore
)

// parkedAs is what of a parked g tells whether it is still parked as the
// walk found it: a goroutine that wakes and parks again changes its
// tracking sequence at least, and usually its saved sp/pc or g.waiting.
type parkedAs struct {
	goid, sp, pc, waiting uint64
	status                golayout.Status
	reason, seq           uint8
}

func parkOf(f *gFields) parkedAs {
	return parkedAs{goid: f.goid, sp: f.sp, pc: f.pc, waiting: f.waiting, status: f.status, reason: f.waitReason, seq: f.trackSeq}
}

// pendingWait is a waiting goroutine whose blocked-on is resolved after the
// walk: index is its place in the snapshot, gindex and gaddr in allgs, and
// park its g as the walk read it. A channel wait's g.waiting (park.waiting,
// its first sudog) is followed to its channels; sel says it waits in
// select. seen is what the snapshotter remembers of it; same says it is
// parked exactly as in the last walk, on the channels seen.chans.
type pendingWait struct {
	kind   waitKind
	sel    bool
	index  int
	gindex uint32
	gaddr  uint64
	park   parkedAs
	seen   *seenG
	same   bool
}

// rereadResult is what reading a goroutine that moved again found.
type rereadResult uint8

const (
	rereadWaiting rereadResult = iota // waiting the same kind of wait: the pendingWait is renewed
	rereadOther                       // no longer in a wait to resolve
	rereadFailed                      // gone, torn, or unreadable
)

// waitState is where a pending goroutine is in the resolution.
type waitState uint8

const (
	wsKept      waitState = iota // keeps the answer found in the last walk
	wsRead                       // its sudogs are read in this round
	wsConfirmed                  // read, and still parked so after
	wsOther                      // read again: no longer waits on a channel
	wsLost                       // kept moving, or could not be read again
)

// chanRead is one channel as last read: its hchan, and the sudogs found in
// its receive and send queues.
type chanRead struct {
	hchan      []byte
	recv, send []uint64
}

// blockedResolver finds, after a walk, the channels the waiting goroutines
// are blocked on. It batches every read: first the sudogs of the waiting
// goroutines (following select's waitlink chains level by level), then the
// channels, whose queues it follows by sudog.next through the sudogs
// already read where it can.
//
// The walk read each g before; in between, a goroutine may have woken, and
// its sudogs gone back to the runtime's cache and out again to another wait
// or goroutine. So every sudog must belong to the goroutine (sudog.g), be
// on a channel and be a select's exactly when the goroutine waits in
// select, and after the channels are read the sudogs and then the g are
// read again: the goroutine is confirmed only if its sudogs read the same
// and its g is still parked as the walk found it, so that they were its own
// all along. One that moved is read again from allgs, its snapshot entry
// replaced, and its new wait resolved, up to maxBlockedRetries times; then
// it is left without an answer and counted. A channel's receivers and
// senders are the sudogs in its queues that belong to a confirmed goroutine
// and are on that channel: a recycled sudog, or a goroutine the snapshot
// does not show waiting there, is not counted.
//
// A goroutine parked unchanged keeps the channels and facts found before
// unless one of its channels is read again: dirty (waited on, now or at the
// last walk, by a goroutine that changed or left) or waited on by another
// goroutine read in this walk. While nobody joins or leaves a channel's
// queues its facts cannot change: with receivers waiting its buffer is
// empty, with senders waiting it is full, and closing it wakes them all.
type blockedResolver struct {
	mem *process.Mem
	l   *golayout.Layout
	// gLo and gHi bound the bytes of a g that parkOf needs.
	gLo, gHi int64
	// Kept across snapshots (cleared, not reallocated).
	sudogs map[uint64][]byte // the last bytes read of each sudog
	second map[uint64][]byte // sudogs read again to confirm their chains
	taken  map[uint64]int    // sudog to the pending index whose chain holds it
	owner  map[uint64]uint64 // sudog of a confirmed chain to its channel
	chans  map[uint64]*chanRead
	dirty  map[uint64]struct{}
	qseen  map[uint64]struct{}
	chains [][]uint64 // by pending index: the sudogs of its wait, first first
	cchans [][]uint64 // by pending index: their channels, when confirmed
	state  []waitState
	tries  []uint8
	cur    []uint64
	// scratch holds a sudog read only to follow a queue.
	scratch []byte
	// sampled is set for a walk that keeps only some goroutines: a queue's
	// waiters that no confirmed goroutine owns then count, unconfirmed.
	sampled bool
	// rereads counts goroutines read again because they moved during the
	// resolution, lost those left without an answer; the snapshotter
	// resets them for each snapshot.
	rereads, lost int
}

func newBlockedResolver(mem *process.Mem, l *golayout.Layout) *blockedResolver {
	r := &blockedResolver{mem: mem, l: l, sudogs: map[uint64][]byte{}, second: map[uint64][]byte{},
		taken: map[uint64]int{}, owner: map[uint64]uint64{}, chans: map[uint64]*chanRead{}, dirty: map[uint64]struct{}{}, qseen: map[uint64]struct{}{}}
	g := &l.G
	r.gLo = -1
	for _, f := range [...]struct{ off, size int64 }{
		{g.AtomicStatus, 4}, {g.Goid, 8}, {g.WaitReason, 1}, {g.TrackingSeq, 1},
		{g.SchedSP, 8}, {g.SchedPC, 8}, {g.Waiting, 8},
	} {
		if f.off < 0 {
			continue
		}
		if r.gLo < 0 || f.off < r.gLo {
			r.gLo = f.off
		}
		r.gHi = max(r.gHi, f.off+f.size)
	}
	return r
}

// markDirty notes channels whose queues changed since the last walk, or
// that are read again; it reports whether one was new.
func (r *blockedResolver) markDirty(chans []uint64) bool {
	grew := false
	for _, c := range chans {
		if r.markDirty1(c) {
			grew = true
		}
	}
	return grew
}

func (r *blockedResolver) markDirty1(c uint64) bool {
	if _, ok := r.dirty[c]; ok || c == 0 {
		return false
	}
	r.dirty[c] = struct{}{}
	return true
}

func (r *blockedResolver) isDirty(chans []uint64) bool {
	for _, c := range chans {
		if _, ok := r.dirty[c]; ok {
			return true
		}
	}
	return false
}

// chanOf is the channel of the sudog at a, as last read.
func (r *blockedResolver) chanOf(a uint64) uint64 { return golayout.Uint64(r.sudogs[a], r.l.Sudog.C) }

// resolve sets BlockedOn for the pending channel waits. again reads
// goroutines that moved once more from allgs, replacing their entries in
// gs and renewing each *p that still waits on channels.
func (r *blockedResolver) resolve(gs []snapshot.Goroutine, pending []pendingWait, again func(ps []*pendingWait) []rereadResult) {
	clear(r.sudogs)
	clear(r.chans)
	defer clear(r.dirty)
	if len(pending) == 0 {
		return
	}
	// Goroutines with no answer kept from the last walk first: their
	// channels are dirty for the others.
	work := r.start(pending)
	work = r.read(pending, work, true)
	for len(work) > 0 {
		r.readChans(work)
		moved := r.confirm(pending, work)
		work = work[:0]
		// Read those that moved again, all at once, each at most
		// maxBlockedRetries times in all.
		for len(moved) > 0 {
			var idx []int
			var ps []*pendingWait
			for _, i := range moved {
				r.state[i] = wsLost
				if r.tries[i] < maxBlockedRetries {
					r.tries[i]++
					idx, ps = append(idx, i), append(ps, &pending[i])
				}
			}
			if len(ps) == 0 {
				break
			}
			r.rereads += len(ps)
			res := again(ps)
			moved = moved[:0]
			for k, i := range idx {
				switch res[k] {
				case rereadWaiting:
					r.state[i] = wsRead
					work = append(work, i)
				case rereadOther:
					r.state[i] = wsOther
				default:
					moved = append(moved, i)
				}
			}
		}
		work = r.read(pending, work, false)
	}
	r.answer(gs, pending)
}

// start sizes the per-goroutine state for pending and returns the
// goroutines to read: all but those that keep the answer of the last walk.
func (r *blockedResolver) start(pending []pendingWait) []int {
	n := len(pending)
	r.state = append(r.state[:0], make([]waitState, n)...)
	r.tries = append(r.tries[:0], make([]uint8, n)...)
	if len(r.chains) < n {
		r.chains = append(r.chains, make([][]uint64, n-len(r.chains))...)
		r.cchans = append(r.cchans, make([][]uint64, n-len(r.cchans))...)
	}
	var work []int
	for i := range pending {
		if p := &pending[i]; p.same && p.seen != nil && p.seen.chans != nil {
			r.state[i] = wsKept
		} else {
			r.state[i] = wsRead
			work = append(work, i)
		}
	}
	return work
}

// read reads the sudog chains of work, then those of the goroutines kept
// from the last walk that wait on a channel now dirty (a chain read makes
// its channels dirty: their queues are read and counted again), and so on;
// it returns work with those added. first says channels may be dirty
// already, from goroutines that changed or left in the walk: the kept
// goroutines on them are read even if no other is.
func (r *blockedResolver) read(pending []pendingWait, work []int, first bool) []int {
	next := work
	if first {
		work = append(work, r.spread(pending)...)
		next = work
	}
	for len(next) > 0 {
		r.chase(pending, next)
		grew := false
		for _, i := range next {
			for _, a := range r.chains[i] {
				if r.markDirty1(r.chanOf(a)) {
					grew = true
				}
			}
		}
		if !grew {
			break
		}
		next = r.spread(pending)
		work = append(work, next...)
	}
	return work
}

// spread moves the kept goroutines on a dirty channel to be read, marking
// all their channels dirty in turn, and returns them.
func (r *blockedResolver) spread(pending []pendingWait) []int {
	if len(r.dirty) == 0 {
		return nil
	}
	var out []int
	for grew := true; grew; {
		grew = false
		for i := range pending {
			if r.state[i] != wsKept || !r.isDirty(pending[i].seen.chans) {
				continue
			}
			r.state[i] = wsRead
			out = append(out, i)
			if r.markDirty(pending[i].seen.chans) {
				grew = true
			}
		}
	}
	return out
}

// chase reads the sudogs of each goroutine in work level by level: each
// one's first (g.waiting), then the next of each select's chain, in
// batches, into r.chains. A chain is kept only if every sudog belongs to
// the goroutine, is on a channel, and is a select's exactly when the
// goroutine waits in select, with no sudog twice; otherwise the goroutine
// moved under us, and its chain is left empty.
func (r *blockedResolver) chase(pending []pendingWait, work []int) {
	sl := r.l.Sudog
	clear(r.taken)
	cur := r.cur[:0]
	for _, i := range work {
		r.chains[i] = r.chains[i][:0]
		cur = append(cur, pending[i].park.waiting)
	}
	addrs := make([]uint64, 0, len(work))
	for level := 0; level < maxSelectCases; level++ {
		addrs = addrs[:0]
		for _, a := range cur {
			if a != 0 {
				addrs = append(addrs, a)
			}
		}
		if len(addrs) == 0 {
			break
		}
		r.readAll(addrs, sl.Size, r.sudogs)
		for k, i := range work {
			a := cur[k]
			if a == 0 {
				continue
			}
			cur[k] = 0
			p := &pending[i]
			s := r.sudogs[a]
			if s == nil || golayout.Uint64(s, sl.G) != p.gaddr || golayout.Uint64(s, sl.C) == 0 || (golayout.Uint8(s, sl.IsSelect) != 0) != p.sel {
				r.chains[i] = r.chains[i][:0]
				continue
			}
			if p.sel {
				// A chain read across a wake and a new park can loop.
				if _, dup := r.taken[a]; dup {
					r.chains[i] = r.chains[i][:0]
					continue
				}
				r.taken[a] = i
			}
			r.chains[i] = append(r.chains[i], a)
			next := golayout.Uint64(s, sl.WaitLink)
			if next != 0 && !p.sel {
				r.chains[i] = r.chains[i][:0] // a lone wait has no waitlink
				continue
			}
			cur[k] = next
		}
	}
	for k, i := range work {
		if cur[k] != 0 {
			r.chains[i] = r.chains[i][:0] // longer than any select
		}
	}
	r.cur = cur
}

// readChans reads every channel the chains of work are on, and lists the
// sudogs of its queues, following sudog.next through the sudogs already
// read where it can and the target's memory where it must.
func (r *blockedResolver) readChans(work []int) {
	var addrs []uint64
	want := map[uint64]bool{}
	for _, i := range work {
		for _, a := range r.chains[i] {
			if c := r.chanOf(a); !want[c] {
				want[c] = true
				addrs = append(addrs, c)
			}
		}
	}
	bufs := make(map[uint64][]byte, len(addrs))
	r.readAll(addrs, r.l.Hchan.Size, bufs)
	h, wq := r.l.Hchan, r.l.Waitq
	for _, c := range addrs {
		hb := bufs[c]
		if hb == nil {
			delete(r.chans, c)
			continue
		}
		clear(r.qseen)
		cr := &chanRead{hchan: hb}
		cr.recv = r.queue(c, golayout.Uint64(hb, h.Recvq+wq.First))
		cr.send = r.queue(c, golayout.Uint64(hb, h.Sendq+wq.First))
		r.chans[c] = cr
	}
}

// queue lists the sudogs of channel c's wait queue from its first, each
// once. It stops at a sudog on another channel: a next read before the
// queue changed led out of it.
func (r *blockedResolver) queue(c, first uint64) []uint64 {
	sl := r.l.Sudog
	var out []uint64
	for sg := first; sg != 0 && len(out) < maxQueueLen; {
		if _, ok := r.qseen[sg]; ok {
			break // a loop in torn data
		}
		r.qseen[sg] = struct{}{}
		s := r.sudogs[sg]
		if s == nil {
			// A waiter no chain holds (another goroutine's, or one the
			// snapshot does not keep): read it into scratch, not kept.
			if int64(cap(r.scratch)) < sl.Size {
				r.scratch = make([]byte, sl.Size)
			}
			s = r.scratch[:sl.Size]
			if err := r.mem.ReadAt(s, sg); err != nil {
				break
			}
		}
		// A sudog being woken has its channel cleared while still queued.
		if sc := golayout.Uint64(s, sl.C); sc != 0 && sc != c {
			break
		}
		out = append(out, sg)
		sg = golayout.Uint64(s, sl.Next)
	}
	return out
}

// confirm reads the sudogs of the chains of work again, then the g of each
// goroutine, and marks confirmed those whose chain is whole, whose sudogs'
// g, c, waitlink, isSelect and elem read the same, and whose g is still
// parked as the walk found it. It returns the others: they moved.
func (r *blockedResolver) confirm(pending []pendingWait, work []int) []int {
	clear(r.second)
	var addrs []uint64
	for _, i := range work {
		addrs = append(addrs, r.chains[i]...)
	}
	r.readAll(addrs, r.l.Sudog.Size, r.second)
	// The g after its sudogs: parked unchanged until now, the goroutine
	// owned them when they were read.
	parks, ok := r.readParks(pending, work)
	var moved []int
	for k, i := range work {
		same := ok[k] && parks[k] == pending[i].park && len(r.chains[i]) > 0
		for _, a := range r.chains[i] {
			if !same {
				break
			}
			same = r.sameSudog(r.sudogs[a], r.second[a])
		}
		if !same {
			moved = append(moved, i)
			continue
		}
		r.state[i] = wsConfirmed
		r.cchans[i] = r.cchans[i][:0]
		for _, a := range r.chains[i] {
			r.sudogs[a] = r.second[a]
			r.cchans[i] = append(r.cchans[i], r.chanOf(a))
		}
	}
	return moved
}

// readParks reads what parkOf needs of the g of each goroutine in work; ok
// is false where the read failed.
func (r *blockedResolver) readParks(pending []pendingWait, work []int) (parks []parkedAs, ok []bool) {
	parks, ok = make([]parkedAs, len(work)), make([]bool, len(work))
	if r.gLo < 0 || len(work) == 0 {
		return parks, ok
	}
	span := r.gHi
	// At most process.MaxIOV goroutines at a time: one system call's worth.
	slab := make([]byte, int64(min(len(work), process.MaxIOV))*span)
	reads := make([]process.Read, 0, min(len(work), process.MaxIOV))
	for base := 0; base < len(work); base += process.MaxIOV {
		batch := work[base:min(base+process.MaxIOV, len(work))]
		reads = reads[:0]
		for k, i := range batch {
			buf := slab[int64(k)*span : int64(k+1)*span]
			clear(buf)
			reads = append(reads, process.Read{Addr: pending[i].gaddr + uint64(r.gLo), Buf: buf[r.gLo:]})
		}
		if err := r.mem.ReadBatch(reads); err != nil {
			return parks, ok
		}
		for k := range batch {
			if reads[k].Err != nil {
				continue
			}
			f := readFields(r.l, slab[int64(k)*span:int64(k+1)*span])
			parks[base+k], ok[base+k] = parkOf(&f), true
		}
	}
	return parks, ok
}

// sameSudog reports whether two reads of a sudog agree on what a chain's
// resolution uses: its goroutine, channel, next in the chain, select mark
// and element.
func (r *blockedResolver) sameSudog(a, b []byte) bool {
	if a == nil || b == nil {
		return false
	}
	sl := r.l.Sudog
	return golayout.Uint64(a, sl.G) == golayout.Uint64(b, sl.G) && golayout.Uint64(a, sl.C) == golayout.Uint64(b, sl.C) &&
		golayout.Uint64(a, sl.WaitLink) == golayout.Uint64(b, sl.WaitLink) && golayout.Uint8(a, sl.IsSelect) == golayout.Uint8(b, sl.IsSelect) &&
		golayout.Uint64(a, sl.Elem) == golayout.Uint64(b, sl.Elem)
}

// answer sets BlockedOn from the chains and channels read, and remembers
// each confirmed answer for the next walk.
func (r *blockedResolver) answer(gs []snapshot.Goroutine, pending []pendingWait) {
	// The sudogs of confirmed chains, each to its channel while its bytes,
	// last read (a later chase may have read it again), still say so.
	clear(r.owner)
	sg := r.l.Sudog.G
	for i, st := range r.state {
		if st != wsConfirmed {
			continue
		}
		for k, a := range r.chains[i] {
			if c := r.cchans[i][k]; golayout.Uint64(r.sudogs[a], sg) == pending[i].gaddr && r.chanOf(a) == c {
				r.owner[a] = c
			}
		}
	}
	facts := make(map[uint64]*snapshot.BlockedOn, len(r.chans))
	for c, cr := range r.chans {
		facts[c] = r.channel(c, cr)
	}
	for i := range pending {
		p := &pending[i]
		switch r.state[i] {
		case wsKept:
			gs[p.index].BlockedOn = p.seen.blocked
			continue
		case wsConfirmed:
			if b := r.blockedOn(r.cchans[i], facts); b != nil {
				gs[p.index].BlockedOn = b
				if p.seen != nil {
					p.seen.chans = slices.Clone(r.cchans[i])
					p.seen.blocked = b
				}
				continue
			}
			r.lost++ // its first channel could not be read
		case wsLost:
			r.lost++
		}
		// No answer, none to keep.
		gs[p.index].BlockedOn = nil
		if p.seen != nil {
			p.seen.chans, p.seen.blocked = nil, nil
		}
	}
}

// blockedOn is the answer for a goroutine waiting on chans (the first
// first); nil if the first could not be read.
func (r *blockedResolver) blockedOn(chans []uint64, facts map[uint64]*snapshot.BlockedOn) *snapshot.BlockedOn {
	b := facts[chans[0]]
	if b == nil {
		return nil
	}
	cp := *b
	for _, c := range chans[1:min(len(chans), 1+maxOthers)] {
		if o := facts[c]; o != nil {
			cp.Others = append(cp.Others, *o)
		}
	}
	return &cp
}

// readAll reads size bytes at each address into out; failed reads are
// removed from out.
func (r *blockedResolver) readAll(addrs []uint64, size int64, out map[uint64][]byte) {
	if len(addrs) == 0 || size <= 0 || size > 4096 {
		return
	}
	slab := make([]byte, int64(len(addrs))*size)
	reads := make([]process.Read, len(addrs))
	for i, a := range addrs {
		reads[i] = process.Read{Addr: a, Buf: slab[int64(i)*size : int64(i+1)*size]}
	}
	if err := r.mem.ReadBatch(reads); err != nil {
		for _, a := range addrs {
			delete(out, a)
		}
		return
	}
	for i, rd := range reads {
		if rd.Err == nil {
			out[addrs[i]] = rd.Buf
		} else {
			delete(out, addrs[i])
		}
	}
}

// channel describes one channel from its hchan bytes; its receivers and
// senders are the sudogs of its queues that a confirmed goroutine waits on
// this channel with.
func (r *blockedResolver) channel(c uint64, cr *chanRead) *snapshot.BlockedOn {
	h := r.l.Hchan
	count := func(q []uint64) int {
		n := 0
		for _, a := range q {
			if oc, ok := r.owner[a]; ok {
				if oc == c {
					n++
				}
			} else if r.sampled {
				n++ // maybe a goroutine the sample left out: queued here, unconfirmed
			}
		}
		return n
	}
	return &snapshot.BlockedOn{
		Kind:      snapshot.BlockedOnChan,
		Address:   fmt.Sprintf("%#x", c),
		Capacity:  golayout.Uint64(cr.hchan, h.Dataqsiz),
		Length:    golayout.Uint64(cr.hchan, h.Qcount),
		Closed:    golayout.Uint32(cr.hchan, h.Closed) != 0,
		Receivers: count(cr.recv),
		Senders:   count(cr.send),
	}
}
