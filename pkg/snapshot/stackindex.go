package snapshot

import "encoding/binary"

// StackIndex numbers the distinct stacks of a snapshot, for encoders and
// folders that treat each stack once. Goroutines sharing one frame slice
// (walkers intern stacks) are recognised by its address; other slices by
// their content: PC, line, offset and flags of each frame (a PC fixes its
// names), plus the names of frames without a PC, as parsed from text.
type StackIndex struct {
	byAddr map[stackAddr]int
	byKey  map[string]int
	key    []byte
}

type stackAddr struct {
	first *Frame
	n     int
}

// ID returns the number of frames' stack (0, 1, ... in order of first
// sight), and whether this is its first sight.
func (x *StackIndex) ID(frames []Frame) (id int, first bool) {
	if x.byKey == nil {
		x.byAddr, x.byKey = map[stackAddr]int{}, map[string]int{}
	}
	var a stackAddr
	if len(frames) > 0 {
		a = stackAddr{&frames[0], len(frames)}
		if id, ok := x.byAddr[a]; ok {
			return id, false
		}
	}
	x.key = x.key[:0]
	for i := range frames {
		f := &frames[i]
		x.key = binary.LittleEndian.AppendUint64(x.key, f.PC)
		x.key = binary.LittleEndian.AppendUint64(x.key, uint64(f.Line))
		x.key = binary.LittleEndian.AppendUint64(x.key, f.Offset)
		x.key = append(x.key, boolByte(f.Inlined), boolByte(f.Wrapper))
		if f.PC == 0 {
			x.key = binary.AppendUvarint(x.key, uint64(len(f.Function)))
			x.key = append(x.key, f.Function...)
			x.key = binary.AppendUvarint(x.key, uint64(len(f.File)))
			x.key = append(x.key, f.File...)
		}
	}
	id, ok := x.byKey[string(x.key)]
	if !ok {
		id = len(x.byKey)
		x.byKey[string(x.key)] = id
	}
	if a.first != nil {
		x.byAddr[a] = id
	}
	return id, !ok
}

// Len is the number of distinct stacks seen.
func (x *StackIndex) Len() int { return len(x.byKey) }
