package gobin

import (
	"encoding/binary"
	"fmt"
)

// Func is a physical function of the executable.
type Func struct {
	Name   string // symbol name as in the binary, e.g. "runtime.gopark" or "main.f[go.shape.int]"
	Entry  uint64 // link-time entry address
	End    uint64 // link-time address just past the function (entry of the next one)
	FuncID uint8  // abi.FuncID; 0 for normal functions
}

// NumFuncs returns the number of physical functions in the pclntab, 0 after Close.
func (b *Binary) NumFuncs() int {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed || b.tab == nil {
		return 0
	}
	return b.tab.nfunc
}

// FuncByIndex returns the i-th physical function in address order (0 <= i < NumFuncs()).
// ok is false out of range, after Close, or once the file has been truncated under the mapping.
func (b *Binary) FuncByIndex(i int) (fn Func, ok bool) {
	old, open := b.enter()
	if !open {
		return Func{}, false
	}
	defer b.leave(old, func(any) { fn, ok = Func{}, false })
	return b.funcByIndex(i)
}

// funcByIndex implements FuncByIndex.
func (b *Binary) funcByIndex(i int) (Func, bool) {
	f, ok := b.tab.funcAt(i)
	if !ok {
		return Func{}, false
	}
	return b.toFunc(&f, b.funcName(f.nameOff)), true
}

// toFunc describes f, whose name (a heap string) is name.
func (b *Binary) toFunc(f *funcRec, name string) Func {
	return Func{
		Name:   name,
		Entry:  b.text + uint64(f.entryOff),
		End:    b.text + uint64(f.endOff),
		FuncID: f.funcID,
	}
}

// FuncByName looks up a physical function by its exact symbol name ("runtime.gopark"). It scans
// the function table, comparing names in place: it costs a pass over the table and allocates
// nothing, for the few lookups made per executable. Among functions of one name, the first in
// address order wins. ok is false when absent, after Close, or once the file has been truncated
// under the mapping.
func (b *Binary) FuncByName(name string) (fn Func, ok bool) {
	old, open := b.enter()
	if !open {
		return Func{}, false
	}
	defer b.leave(old, func(any) { fn, ok = Func{}, false })
	return b.funcByName(name)
}

// funcByName implements FuncByName. The Func's Name is name itself, the caller's string.
func (b *Binary) funcByName(name string) (Func, bool) {
	t := b.tab
	for i := 0; i < t.nfunc; i++ {
		off := uint64(t.funcOff(i))
		if off+funcSize > uint64(len(t.pclntable)) {
			continue
		}
		nameOff := int32(binary.LittleEndian.Uint32(t.pclntable[off+funcNameOff:]))
		if nameOff < 0 || !cstringIs(t.funcnametab, uint64(nameOff), name) {
			continue
		}
		if f, ok := t.funcAt(i); ok {
			return b.toFunc(&f, name), true
		}
	}
	return Func{}, false
}

// FuncForPC returns the physical function containing the link-time address pc. ok is false
// when none does, after Close, or once the file has been truncated under the mapping.
func (b *Binary) FuncForPC(pc uint64) (fn Func, ok bool) {
	old, open := b.enter()
	if !open {
		return Func{}, false
	}
	defer b.leave(old, func(any) { fn, ok = Func{}, false })
	return b.funcForPC(pc)
}

// funcForPC implements FuncForPC.
func (b *Binary) funcForPC(pc uint64) (Func, bool) {
	if pc < b.text {
		return Func{}, false
	}
	f, ok := b.tab.funcAt(b.tab.findFunc(pc - b.text))
	if !ok {
		return Func{}, false
	}
	return b.toFunc(&f, b.funcName(f.nameOff)), true
}

// SPDelta returns the pcsp value at pc: how many bytes the SP is below its value at function
// entry (where it points at the return address), for unwinding a frame without a frame pointer.
// After Close the error wraps ErrClosed.
func (b *Binary) SPDelta(pc uint64) (delta int64, err error) {
	old, open := b.enter()
	if !open {
		return 0, b.closedError()
	}
	defer b.leave(old, func(p any) { delta, err = 0, b.faultError(p) })
	return b.spDelta(pc)
}

// spDelta implements SPDelta.
func (b *Binary) spDelta(pc uint64) (int64, error) {
	if pc < b.text {
		return 0, fmt.Errorf("pc %#x is below the text start %#x", pc, b.text)
	}
	f, ok := b.tab.funcAt(b.tab.findFunc(pc - b.text))
	if !ok {
		return 0, fmt.Errorf("pc %#x is not in any Go function", pc)
	}
	v, ok := b.tab.pcvalue(&f, f.pcsp, pc-b.text)
	if !ok {
		return 0, fmt.Errorf("pc %#x in %s: no pcsp entry", pc, b.funcName(f.nameOff))
	}
	return int64(v), nil
}
