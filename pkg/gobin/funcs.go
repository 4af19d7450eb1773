package gobin

import "fmt"

// Func is a physical function of the executable.
type Func struct {
	Name   string // symbol name as in the binary, e.g. "runtime.gopark" or "main.f[go.shape.int]"
	Entry  uint64 // link-time entry address
	End    uint64 // link-time address just past the function (entry of the next one)
	FuncID uint8  // abi.FuncID; 0 for normal functions
}

// NumFuncs returns the number of physical functions in the pclntab.
func (b *Binary) NumFuncs() int { return b.tab.nfunc }

// FuncByIndex returns the i-th physical function in address order (0 <= i < NumFuncs()).
func (b *Binary) FuncByIndex(i int) (Func, bool) {
	f, ok := b.tab.funcAt(i)
	if !ok {
		return Func{}, false
	}
	return b.toFunc(&f), true
}

func (b *Binary) toFunc(f *funcRec) Func {
	return Func{
		Name:   b.tab.funcName(f.nameOff),
		Entry:  b.text + uint64(f.entryOff),
		End:    b.text + uint64(f.endOff),
		FuncID: f.funcID,
	}
}

// FuncByName looks up a physical function by its exact symbol name ("runtime.gopark").
func (b *Binary) FuncByName(name string) (Func, bool) {
	b.namesOnce.Do(func() {
		b.names = make(map[string]int32, b.tab.nfunc)
		for i := 0; i < b.tab.nfunc; i++ {
			f, ok := b.tab.funcAt(i)
			if !ok {
				continue
			}
			n := b.tab.funcName(f.nameOff)
			if _, dup := b.names[n]; !dup {
				b.names[n] = int32(i)
			}
		}
	})
	i, ok := b.names[name]
	if !ok {
		return Func{}, false
	}
	return b.FuncByIndex(int(i))
}

// FuncForPC returns the physical function containing the link-time address pc.
func (b *Binary) FuncForPC(pc uint64) (Func, bool) {
	if pc < b.text {
		return Func{}, false
	}
	f, ok := b.tab.funcAt(b.tab.findFunc(pc - b.text))
	if !ok {
		return Func{}, false
	}
	return b.toFunc(&f), true
}

// SPDelta returns the pcsp value at pc: how many bytes the SP is below its value at function
// entry (where it points at the return address), for unwinding a frame without a frame pointer.
func (b *Binary) SPDelta(pc uint64) (int64, error) {
	if pc < b.text {
		return 0, fmt.Errorf("pc %#x is below the text start %#x", pc, b.text)
	}
	f, ok := b.tab.funcAt(b.tab.findFunc(pc - b.text))
	if !ok {
		return 0, fmt.Errorf("pc %#x is not in any Go function", pc)
	}
	v, ok := b.tab.pcvalue(&f, f.pcsp, pc-b.text)
	if !ok {
		return 0, fmt.Errorf("pc %#x in %s: no pcsp entry", pc, b.tab.funcName(f.nameOff))
	}
	return int64(v), nil
}
