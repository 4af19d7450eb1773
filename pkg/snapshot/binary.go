package snapshot

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
)

// binaryMagic starts every binary-encoded snapshot; the digit is the
// format version.
const binaryMagic = "GRSNAP1\n"

// IsBinary reports whether data starts like a binary-encoded snapshot.
func IsBinary(data []byte) bool {
	return len(data) >= len(binaryMagic) && string(data[:len(binaryMagic)]) == binaryMagic
}

// AppendBinary appends s in goroscope's compact binary form to dst: every
// string, stack and label set is written once and referred to afterwards,
// so a snapshot of many goroutines parked in few places costs a few bytes
// per goroutine. It is the agent's storage form; DecodeBinary reverses it
// exactly. The JSON form (WriteJSON) stays the contract for other tools.
func AppendBinary(dst []byte, s *Snapshot) []byte {
	e := binEncoder{b: dst, strs: map[string]uint64{}, labels: map[string]uint64{}}
	e.b = append(e.b, binaryMagic...)
	var flags byte
	if s.Time.IsZero() {
		flags |= binZeroTime
	}
	if s.Goroutines == nil {
		flags |= binNilGoroutines
	}
	if s.Stride > 1 {
		flags |= binSampled
	}
	e.b = append(e.b, flags)
	e.int(int64(s.PID))
	e.str(s.Exe)
	e.str(s.GoVersion)
	if !s.Time.IsZero() {
		e.int(s.Time.UnixNano())
	}
	e.str(s.Walker)
	e.int(int64(s.Duration))
	for _, st := range States {
		e.uint(uint64(s.Counts.Get(st)))
	}
	e.uint(uint64(s.Dropped))
	if s.Stride > 1 {
		e.uint(uint64(s.Stride))
	}
	e.uint(uint64(len(s.Goroutines)))
	for i := range s.Goroutines {
		e.goroutine(&s.Goroutines[i])
	}
	return e.b
}

// Goroutine flag bits in the binary form.
const (
	binSystem = 1 << iota
	binLocked
	binTruncated
	binCreatedBy
	binBlockedOn
	binNilFrames
)

// Snapshot flag bits in the binary form.
const (
	binZeroTime = 1 << iota
	binNilGoroutines
	binSampled // a sample stride follows the dropped count
)

// Frame flag bits in the binary form.
const (
	binInlined = 1 << iota
	binWrapper
)

// binEncoder writes the binary form; strings, stacks and label sets get an
// index the first time they are written (reference 0 means "new, follows").
type binEncoder struct {
	b             []byte
	strs, labels  map[string]uint64
	stacks        StackIndex
	names         []byte
	labelKeys     []string
	nstrs, nlabel uint64
	// noLabels is the reference of the empty label set once written.
	noLabels int64
}

func (e *binEncoder) uint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *binEncoder) int(v int64)   { e.b = binary.AppendVarint(e.b, v) }

func (e *binEncoder) str(s string) {
	if i, ok := e.strs[s]; ok {
		e.uint(i + 1)
		return
	}
	e.uint(0)
	e.uint(uint64(len(s)))
	e.b = append(e.b, s...)
	e.strs[s] = e.nstrs
	e.nstrs++
}

func (e *binEncoder) frame(f *Frame) {
	e.str(f.Function)
	e.str(f.File)
	e.int(int64(f.Line))
	var flags byte
	if f.Inlined {
		flags |= binInlined
	}
	if f.Wrapper {
		flags |= binWrapper
	}
	e.b = append(e.b, flags)
	e.uint(f.PC)
	e.uint(f.Offset)
}

// stack writes frames, or a reference to the same stack written before.
func (e *binEncoder) stack(frames []Frame) {
	id, first := e.stacks.ID(frames)
	if !first {
		e.uint(uint64(id) + 1)
		return
	}
	e.uint(0)
	e.uint(uint64(len(frames)))
	for i := range frames {
		e.frame(&frames[i])
	}
}

// labelSet writes a label set sorted by key, or a reference to it.
func (e *binEncoder) labelSet(m map[string]string) {
	if len(m) == 0 && e.noLabels > 0 {
		e.uint(uint64(e.noLabels)) // the empty set, written before
		return
	}
	e.labelKeys = e.labelKeys[:0]
	for k := range m {
		e.labelKeys = append(e.labelKeys, k)
	}
	slices.Sort(e.labelKeys)
	e.names = e.names[:0]
	for _, k := range e.labelKeys {
		e.names = binary.AppendUvarint(e.names, uint64(len(k)))
		e.names = append(e.names, k...)
		e.names = binary.AppendUvarint(e.names, uint64(len(m[k])))
		e.names = append(e.names, m[k]...)
	}
	if i, ok := e.labels[string(e.names)]; ok {
		e.uint(i + 1)
		return
	}
	if len(m) == 0 {
		e.noLabels = int64(e.nlabel) + 1
	}
	e.labels[string(e.names)] = e.nlabel
	e.nlabel++
	e.uint(0)
	e.uint(uint64(len(e.labelKeys)))
	for _, k := range e.labelKeys {
		e.str(k)
		e.str(m[k])
	}
}

func (e *binEncoder) blockedOn(b *BlockedOn) {
	e.str(b.Kind)
	e.str(b.Address)
	e.uint(b.Capacity)
	e.uint(b.Length)
	e.b = append(e.b, boolByte(b.Closed))
	e.int(int64(b.Senders))
	e.int(int64(b.Receivers))
	e.uint(uint64(len(b.Others)))
	for i := range b.Others {
		e.blockedOn(&b.Others[i])
	}
}

func (e *binEncoder) goroutine(g *Goroutine) {
	e.uint(g.ID)
	e.str(string(g.State))
	e.str(g.WaitReason)
	e.b = binary.LittleEndian.AppendUint64(e.b, math.Float64bits(g.WaitingSeconds))
	e.str(g.WaitingSource)
	var flags byte
	if g.System {
		flags |= binSystem
	}
	if g.LockedToThread {
		flags |= binLocked
	}
	if g.Truncated {
		flags |= binTruncated
	}
	if g.CreatedBy != nil {
		flags |= binCreatedBy
	}
	if g.BlockedOn != nil {
		flags |= binBlockedOn
	}
	if g.Frames == nil {
		flags |= binNilFrames
	}
	e.b = append(e.b, flags)
	e.uint(g.ParentID)
	e.uint(g.Addr)
	if g.CreatedBy != nil {
		e.frame(g.CreatedBy)
	}
	e.labelSet(g.Labels)
	if g.BlockedOn != nil {
		e.blockedOn(g.BlockedOn)
	}
	e.stack(g.Frames)
}

// set sets the count of state st to n.
func (c *Counts) set(st State, n int) {
	switch st {
	case StateRunning:
		c.Running = n
	case StateRunnable:
		c.Runnable = n
	case StateSyscall:
		c.Syscall = n
	case StateWaiting:
		c.Waiting = n
	case StateLeaked:
		c.Leaked = n
	}
}

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}

// errBinaryShort reports a binary snapshot that ends too soon.
var errBinaryShort = errors.New("unexpected end of data")

// maxBlockedOnDepth bounds the nesting of BlockedOn.Others when decoding.
const maxBlockedOnDepth = 2

// DecodeBinary decodes a snapshot written by AppendBinary. Goroutines that
// shared a stack or a label set when encoded share the decoded slice or
// map: treat them as read-only. Bad input gives an error, never a panic.
func DecodeBinary(data []byte) (*Snapshot, error) {
	if !IsBinary(data) {
		return nil, fmt.Errorf("decode binary snapshot: no %q header; is this a goroscope store entry of kind snapshot?", binaryMagic[:7])
	}
	d := binDecoder{b: data[len(binaryMagic):]}
	s := d.snapshot()
	if d.err != nil {
		return nil, fmt.Errorf("decode binary snapshot at byte %d: %w", len(data)-len(d.b), d.err)
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("decode binary snapshot: %d bytes of trailing data", len(d.b))
	}
	return s, nil
}

// binDecoder reads the binary form; the first error sticks and every
// later read returns zero values.
type binDecoder struct {
	b      []byte
	err    error
	strs   []string
	stacks [][]Frame
	labels []map[string]string
}

func (d *binDecoder) fail(err error) {
	if d.err == nil {
		d.err = err
		d.b = nil
	}
}

func (d *binDecoder) uint() uint64 { return decodeVarint(d, binary.Uvarint) }

func (d *binDecoder) int() int64 { return decodeVarint(d, binary.Varint) }

// decodeVarint consumes one varint that read (binary.Uvarint or
// binary.Varint) decodes; a short or overlong one fails the decoder.
func decodeVarint[T uint64 | int64](d *binDecoder, read func([]byte) (T, int)) T {
	if d.err != nil {
		return 0
	}
	v, n := read(d.b)
	if n <= 0 {
		d.fail(errBinaryShort)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *binDecoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) < 1 {
		d.fail(errBinaryShort)
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

// count reads a length that needs at least min bytes per element.
func (d *binDecoder) count(what string, min int) int {
	n := d.uint()
	if d.err == nil && n > uint64(len(d.b)/min) {
		d.fail(fmt.Errorf("%s count %d exceeds the remaining %d bytes", what, n, len(d.b)))
		return 0
	}
	return int(n)
}

// ref reads a reference: 0 for a new item, else index+1 of one of n known.
func (d *binDecoder) ref(what string, n int) (int, bool) {
	r := d.uint()
	if d.err != nil || r == 0 {
		return 0, false
	}
	if r > uint64(n) {
		d.fail(fmt.Errorf("reference to %s %d of %d", what, r-1, n))
		return 0, false
	}
	return int(r - 1), true
}

func (d *binDecoder) str() string {
	if i, ok := d.ref("string", len(d.strs)); ok || d.err != nil {
		if d.err != nil {
			return ""
		}
		return d.strs[i]
	}
	n := d.count("string byte", 1)
	if d.err != nil {
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	d.strs = append(d.strs, s)
	return s
}

func (d *binDecoder) frame() Frame {
	f := Frame{Function: d.str(), File: d.str(), Line: int(d.int())}
	flags := d.byte()
	f.Inlined, f.Wrapper = flags&binInlined != 0, flags&binWrapper != 0
	f.PC, f.Offset = d.uint(), d.uint()
	return f
}

func (d *binDecoder) stack() []Frame {
	if i, ok := d.ref("stack", len(d.stacks)); ok || d.err != nil {
		if d.err != nil {
			return nil
		}
		return d.stacks[i]
	}
	n := d.count("frame", 6)
	frames := make([]Frame, 0, n)
	for range n {
		frames = append(frames, d.frame())
	}
	d.stacks = append(d.stacks, frames)
	return frames
}

func (d *binDecoder) labelSet() map[string]string {
	if i, ok := d.ref("label set", len(d.labels)); ok || d.err != nil {
		if d.err != nil {
			return nil
		}
		return d.labels[i]
	}
	n := d.count("label", 2)
	var m map[string]string
	if n > 0 {
		m = make(map[string]string, n)
		for range n {
			k := d.str()
			m[k] = d.str()
		}
	}
	d.labels = append(d.labels, m)
	return m
}

func (d *binDecoder) blockedOn(depth int) BlockedOn {
	b := BlockedOn{Kind: d.str(), Address: d.str(), Capacity: d.uint(), Length: d.uint()}
	b.Closed = d.byte() != 0
	b.Senders, b.Receivers = int(d.int()), int(d.int())
	n := d.count("blocked-on", 8)
	if n > 0 && depth >= maxBlockedOnDepth {
		d.fail(fmt.Errorf("blocked-on nested deeper than %d", maxBlockedOnDepth))
		return b
	}
	for range n {
		b.Others = append(b.Others, d.blockedOn(depth+1))
	}
	return b
}

// goroutine decodes a goroutine. Its CreatedBy and BlockedOn, if any, are
// stored in *creator and *blocked when these are not nil (a reader that
// reuses them), else in new ones.
func (d *binDecoder) goroutine(creator *Frame, blocked *BlockedOn) Goroutine {
	g := Goroutine{ID: d.uint(), State: State(d.str()), WaitReason: d.str()}
	if d.err == nil {
		if len(d.b) < 8 {
			d.fail(errBinaryShort)
		} else {
			g.WaitingSeconds = math.Float64frombits(binary.LittleEndian.Uint64(d.b))
			d.b = d.b[8:]
		}
	}
	g.WaitingSource = d.str()
	flags := d.byte()
	g.System, g.LockedToThread, g.Truncated = flags&binSystem != 0, flags&binLocked != 0, flags&binTruncated != 0
	g.ParentID, g.Addr = d.uint(), d.uint()
	if flags&binCreatedBy != 0 {
		if creator == nil {
			creator = new(Frame)
		}
		*creator = d.frame()
		g.CreatedBy = creator
	}
	g.Labels = d.labelSet()
	if flags&binBlockedOn != 0 {
		if blocked == nil {
			blocked = new(BlockedOn)
		}
		*blocked = d.blockedOn(0)
		g.BlockedOn = blocked
	}
	g.Frames = d.stack()
	if flags&binNilFrames != 0 {
		g.Frames = nil
	}
	return g
}

// binGoroutineMin is the fewest bytes a goroutine takes in the binary form.
const binGoroutineMin = 17

func (d *binDecoder) snapshot() *Snapshot {
	s, nilList := d.header()
	n := d.count("goroutine", binGoroutineMin)
	if !nilList {
		s.Goroutines = make([]Goroutine, 0, n)
	}
	for range n {
		if d.err != nil {
			break
		}
		s.Goroutines = append(s.Goroutines, d.goroutine(nil, nil))
	}
	if d.err != nil {
		return nil
	}
	return s
}

// header reads a snapshot's fields up to its goroutine count (which
// follows): all but the goroutines. nilList reports a nil goroutine list.
func (d *binDecoder) header() (s *Snapshot, nilList bool) {
	flags := d.byte()
	s = &Snapshot{PID: int(d.int()), Exe: d.str(), GoVersion: d.str()}
	if flags&binZeroTime == 0 {
		s.Time = time.Unix(0, d.int())
	}
	s.Walker = d.str()
	s.Duration = time.Duration(d.int())
	for _, st := range States {
		s.Counts.set(st, int(d.uint()))
	}
	s.Dropped = int(d.uint())
	if flags&binSampled != 0 {
		s.Stride = int(d.uint())
		if s.Stride < 2 && d.err == nil {
			d.fail(fmt.Errorf("sample stride %d with the sampled flag set", s.Stride))
		}
	}
	return s, flags&binNilGoroutines != 0
}
