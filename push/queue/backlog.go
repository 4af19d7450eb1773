package queue

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/goroscope/goroscope/push/spool"
)

// entry is one item on its way from the backlog to a shard.
type entry struct {
	pos  int64 // backlog position, for ack
	key  uint64
	item []byte
}

// backlog is the FIFO between Enqueue and the dispatcher: read hands out
// entries (held until ack), rewind gives held entries back for re-reading.
type backlog interface {
	push(item []byte, key uint64) error
	// read hands out at most maxItems entries and, past the first, at most
	// maxBytes of items.
	read(maxItems int, maxBytes int64) ([]entry, error)
	ack(pos []int64) error
	rewind()
	// position returns done (every entry before it is delivered or dropped)
	// and tail (every entry pushed so far is before it).
	position() (done, tail int64)
	stats() (items int, bytes int64)
	close() error
}

// dropFunc counts items a backlog gave up on.
type dropFunc func(reason string, n int)

// memBacklog is a ring of at most capacity entries; pushing into a full ring
// evicts the oldest entry. Positions count entries.
type memBacklog struct {
	mu       sync.Mutex
	capacity int
	ents     []memEntry // live entries are ents[first:], positions consecutive
	first    int
	next     int // index of the next entry to read
	nextPos  int64
	orphans  map[int64]struct{} // evicted while held
	live     int                // entries not done, plus orphans
	bytes    int64
	drop     dropFunc
}

type memState uint8

const (
	memUnread memState = iota
	memHeld
	memDone
)

type memEntry struct {
	entry
	state memState
}

func newMemBacklog(capacity int, drop dropFunc) *memBacklog {
	return &memBacklog{capacity: capacity, orphans: map[int64]struct{}{}, drop: drop}
}

func (b *memBacklog) push(item []byte, key uint64) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.ents)-b.first >= b.capacity {
		e := &b.ents[b.first]
		switch e.state {
		case memUnread:
			b.drop("queue_full", 1)
			b.live--
		case memHeld:
			b.orphans[e.pos] = struct{}{}
		}
		b.bytes -= int64(len(e.item))
		e.item = nil
		b.first++
		b.next = max(b.next, b.first)
	}
	b.ents = append(b.ents, memEntry{entry: entry{pos: b.nextPos, key: key, item: append([]byte(nil), item...)}})
	b.nextPos++
	b.live++
	b.bytes += int64(len(item))
	b.compact()
	return nil
}

// compact drops the consumed prefix of ents once it is large.
func (b *memBacklog) compact() {
	for b.first < len(b.ents) && b.ents[b.first].state == memDone {
		b.ents[b.first].item = nil
		b.first++
	}
	b.next = max(b.next, b.first)
	if b.first > 64 && b.first >= len(b.ents)/2 {
		n := copy(b.ents, b.ents[b.first:])
		clear(b.ents[n:])
		b.ents = b.ents[:n]
		b.next -= b.first
		b.first = 0
	}
}

func (b *memBacklog) read(maxItems int, maxBytes int64) ([]entry, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []entry
	var size int64
	for ; b.next < len(b.ents) && len(out) < maxItems; b.next++ {
		e := &b.ents[b.next]
		if e.state != memUnread {
			continue
		}
		if len(out) > 0 && size+int64(len(e.item)) > maxBytes {
			break
		}
		e.state = memHeld
		size += int64(len(e.item))
		out = append(out, e.entry)
	}
	return out, nil
}

func (b *memBacklog) ack(pos []int64) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range pos {
		if _, ok := b.orphans[p]; ok {
			delete(b.orphans, p)
			b.live--
			continue
		}
		if len(b.ents) == b.first {
			continue
		}
		i := b.first + int(p-b.ents[b.first].pos)
		if i >= b.first && i < len(b.ents) && b.ents[i].state == memHeld {
			b.ents[i].state = memDone
			b.bytes -= int64(len(b.ents[i].item))
			b.live--
		}
	}
	b.compact()
	return nil
}

func (b *memBacklog) rewind() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if n := len(b.orphans); n > 0 {
		b.drop("queue_full", n)
		b.live -= n
		clear(b.orphans)
	}
	for i := b.first; i < len(b.ents); i++ {
		if b.ents[i].state == memHeld {
			b.ents[i].state = memUnread
		}
	}
	b.next = b.first
}

func (b *memBacklog) position() (int64, int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	done := b.nextPos
	for i := b.first; i < len(b.ents); i++ {
		if b.ents[i].state != memDone {
			done = b.ents[i].pos
			break
		}
	}
	for p := range b.orphans {
		done = min(done, p)
	}
	return done, b.nextPos
}

func (b *memBacklog) stats() (int, int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.live, 0
}

// close drops whatever was never delivered: without a spool it is lost.
func (b *memBacklog) close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.drop("shutdown", b.live)
	b.live = 0
	b.ents, b.first, b.next = nil, 0, 0
	clear(b.orphans)
	return nil
}

// keyLen prefixes every spooled item with its shard key.
const keyLen = 8

// spoolBacklog stores every item in a spool (write-through); positions are
// spool offsets.
type spoolBacklog struct {
	sp   *spool.Spool
	drop dropFunc
}

func newSpoolBacklog(dir string, maxBytes int64, noSync bool, drop dropFunc, log *slog.Logger) (*spoolBacklog, error) {
	sp, err := spool.Open(dir, spool.Options{
		MaxBytes: maxBytes,
		NoSync:   noSync,
		OnDrop:   func(r spool.DropReason, n int) { drop(string(r), n) },
		Logger:   log,
	})
	if err != nil {
		return nil, fmt.Errorf("queue: open spool (set SpoolDir to a writable directory or \"\" for memory only): %w", err)
	}
	return &spoolBacklog{sp: sp, drop: drop}, nil
}

func (b *spoolBacklog) push(item []byte, key uint64) error {
	// One allocation per item keeps Append's framing simple; the spool
	// copies it into the file at once.
	rec := make([]byte, keyLen+len(item))
	binary.LittleEndian.PutUint64(rec, key)
	copy(rec[keyLen:], item)
	return b.sp.Append(rec)
}

func (b *spoolBacklog) read(maxItems int, maxBytes int64) ([]entry, error) {
	recs, err := b.sp.Read(maxItems, int(min(maxBytes, 1<<40)))
	if err != nil {
		return nil, err
	}
	out := make([]entry, 0, len(recs))
	var bad []int64
	for _, r := range recs {
		if len(r.Data) < keyLen { // verified by CRC yet not ours: consume and count
			bad = append(bad, r.Off)
			continue
		}
		out = append(out, entry{pos: r.Off, key: binary.LittleEndian.Uint64(r.Data), item: r.Data[keyLen:]})
	}
	if len(bad) > 0 {
		b.drop("corrupt_spool", len(bad))
		if err := b.sp.Ack(bad...); err != nil {
			return out, err
		}
	}
	return out, nil
}

func (b *spoolBacklog) ack(pos []int64) error { return b.sp.Ack(pos...) }
func (b *spoolBacklog) rewind()               { b.sp.Rewind() }
func (b *spoolBacklog) position() (int64, int64) {
	return b.sp.Position()
}
func (b *spoolBacklog) stats() (int, int64) {
	st := b.sp.Stats()
	return st.Records, st.Bytes
}
func (b *spoolBacklog) close() error {
	if err := b.sp.Close(); err != nil && !errors.Is(err, spool.ErrClosed) {
		return err
	}
	return nil
}
