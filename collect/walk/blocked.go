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
)

// blockedReader finds the object a waiting goroutine is blocked on by
// following g.waiting (its sudogs) to their channels. Channel facts are
// cached per walk: thousands of goroutines often wait on one channel.
type blockedReader struct {
	mem   Memory
	l     *golayout.Layout
	chans map[uint64]*snapshot.BlockedOn
	buf   []byte
}

// chanWait reports whether a wait reason parks on channels through g.waiting.
// Waits on nil channels and empty selects park with no sudog.
func chanWait(reason string) bool {
	return golayout.IsChanReason(reason) && !golayout.IsForeverReason(reason)
}

// forGoroutine describes what the goroutine whose g.waiting is waiting
// waits on, or nil.
func (r *blockedReader) forGoroutine(reason string, waiting uint64) (*snapshot.BlockedOn, error) {
	if !chanWait(reason) || waiting == 0 {
		return nil, nil
	}
	var first *snapshot.BlockedOn
	seen := 0
	for sg := waiting; sg != 0; seen++ {
		if seen >= maxSelectCases {
			return first, fmt.Errorf("sudog list of more than %d entries", maxSelectCases)
		}
		s, err := r.read(sg, r.l.Sudog.Size)
		if err != nil {
			return first, fmt.Errorf("read sudog at %#x: %w", sg, err)
		}
		c := le64(s, r.l.Sudog.C)
		next := le64(s, r.l.Sudog.WaitLink)
		if c != 0 {
			b, err := r.channel(c)
			if err != nil {
				return first, err
			}
			if first == nil {
				cp := *b
				first = &cp
			} else if len(first.Others) < 64 {
				first.Others = append(first.Others, *b)
			}
		}
		sg = next
	}
	return first, nil
}

func (r *blockedReader) read(addr uint64, n int64) ([]byte, error) {
	if n <= 0 || n > 4096 {
		return nil, fmt.Errorf("implausible struct size %d", n)
	}
	if int64(cap(r.buf)) < n {
		r.buf = make([]byte, n)
	}
	b := r.buf[:n]
	return b, r.mem.ReadAt(b, addr)
}

// channel reads an hchan and counts the goroutines queued on it.
func (r *blockedReader) channel(c uint64) (*snapshot.BlockedOn, error) {
	if b, ok := r.chans[c]; ok {
		return b, nil
	}
	h := r.l.Hchan
	hb, err := r.read(c, h.Size)
	if err != nil {
		return nil, fmt.Errorf("read channel at %#x: %w", c, err)
	}
	b := &snapshot.BlockedOn{
		Kind:     snapshot.BlockedOnChan,
		Address:  fmt.Sprintf("%#x", c),
		Capacity: le64(hb, h.Dataqsiz),
		Length:   le64(hb, h.Qcount),
		Closed:   le32(hb, h.Closed) != 0,
	}
	recvFirst := le64(hb, h.Recvq+r.l.Waitq.First)
	sendFirst := le64(hb, h.Sendq+r.l.Waitq.First)
	if b.Receivers, err = r.queueLen(recvFirst); err != nil {
		return nil, fmt.Errorf("count receivers of channel %#x: %w", c, err)
	}
	if b.Senders, err = r.queueLen(sendFirst); err != nil {
		return nil, fmt.Errorf("count senders of channel %#x: %w", c, err)
	}
	r.chans[c] = b
	return b, nil
}

// queueLen follows a waitq's sudog.next chain.
func (r *blockedReader) queueLen(first uint64) (int, error) {
	n := 0
	var p [8]byte
	for sg := first; sg != 0; n++ {
		if n >= maxQueueLen {
			return n, fmt.Errorf("wait queue longer than %d", maxQueueLen)
		}
		if err := r.mem.ReadAt(p[:], sg+uint64(r.l.Sudog.Next)); err != nil {
			return n, err
		}
		sg = le64(p[:], 0)
	}
	return n, nil
}
