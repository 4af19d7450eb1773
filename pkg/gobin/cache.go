package gobin

import (
	"bytes"
	"strings"
	"sync"
)

// Bounds of the caches of one Binary. They cap what symbolisation adds to the heap per
// executable, within the budget of 0.5 MB per distinct executable (a local user can start many
// distinct Go programs, and fill these caches by making the agent symbolise many pcs):
//
//   - maxCachedPCs: a cached pc costs about 160 bytes (its map slot at Go's load factor and a
//     []Frame of one or two frames); the walkers keep their own per-process cache of symbolised
//     pcs (collect/process.Symbolizer), so this one only needs the working set shared by the
//     processes running one executable and the lookups outside those caches (createdBy, CPU
//     samples): the pcs of the goroutine stacks of a typical service number in the hundreds.
//   - maxCachedStrings: an interned name or file name costs about 70 bytes (its map slot, its
//     bytes rounded to a size class). Strings referenced by cached frames are shared with them.
//
// Full, both cost about 0.3 MB (TestCacheBounds: 314 kB when symbolising every function of the
// test executable); 4096 each would cost 1 MB, twice the budget. When a cache is full, a random
// entry (Go randomises map iteration) makes room for the new one.
const (
	maxCachedPCs     = 1024
	maxCachedStrings = 1024
)

// Kinds of strings interned by the cache, the high half of a key whose low half is the offset of
// the string in its table.
const (
	strFunc  = 1 << 32 // a function name, by offset in funcnametab
	strPrint = 2 << 32 // a generic function's name as printed ("[...]"), by offset in funcnametab
	strFile  = 3 << 32 // a file name, by offset in filetab
)

// cache memoises the frames of symbolised pcs and heap copies of the names and file names read
// from the pclntab, so that repeated symbolisation does not allocate and no string handed out
// aliases the mapping. Its maps are made on first use and bounded by maxCachedPCs and
// maxCachedStrings. It touches no mapped memory, so no fault can leave mu locked.
type cache struct {
	mu     sync.RWMutex
	frames map[uint64][]Frame // by pc; the frames' strings are interned heap copies
	strs   map[uint64]string  // by kind | offset
}

// getFrames returns the frames cached for pc.
func (c *cache) getFrames(pc uint64) ([]Frame, bool) {
	c.mu.RLock()
	fr, ok := c.frames[pc]
	c.mu.RUnlock()
	return fr, ok
}

// putFrames caches a copy of the frames of pc.
func (c *cache) putFrames(pc uint64, fr []Frame) {
	cp := make([]Frame, len(fr))
	copy(cp, fr)
	c.mu.Lock()
	if c.frames == nil {
		c.frames = make(map[uint64][]Frame)
	}
	if len(c.frames) >= maxCachedPCs {
		evictOne(c.frames)
	}
	c.frames[pc] = cp
	c.mu.Unlock()
}

// getStr returns the string interned under key.
func (c *cache) getStr(key uint64) (string, bool) {
	c.mu.RLock()
	s, ok := c.strs[key]
	c.mu.RUnlock()
	return s, ok
}

// putStr interns s, a heap string, under key.
func (c *cache) putStr(key uint64, s string) {
	c.mu.Lock()
	if c.strs == nil {
		c.strs = make(map[uint64]string)
	}
	if len(c.strs) >= maxCachedStrings {
		evictOne(c.strs)
	}
	c.strs[key] = s
	c.mu.Unlock()
}

// reset drops everything cached.
func (c *cache) reset() {
	c.mu.Lock()
	c.frames, c.strs = nil, nil
	c.mu.Unlock()
}

// evictOne deletes a random entry of m.
func evictOne[K comparable, V any](m map[K]V) {
	for k := range m {
		delete(m, k)
		return
	}
}

// cachedString returns the string build makes of the NUL-terminated
// string at off in table, cached under kind|off; "?" if off is out of
// range. build gets bytes aliasing the table and must return a heap copy.
func (b *Binary) cachedString(kind uint64, table []byte, off uint64, build func(raw []byte) string) string {
	key := kind | off
	if s, ok := b.cache.getStr(key); ok {
		return s
	}
	raw, ok := cstring(table, off)
	if !ok {
		return "?"
	}
	s := build(raw)
	b.cache.putStr(key, s)
	return s
}

// copyString is the heap copy of raw.
func copyString(raw []byte) string { return string(raw) }

// funcName returns a heap copy of the function name at nameOff in funcnametab, "?" if out of
// range.
func (b *Binary) funcName(nameOff int32) string {
	if nameOff < 0 {
		return "?"
	}
	return b.cachedString(strFunc, b.tab.funcnametab, uint64(nameOff), copyString)
}

// printName mirrors runtime.funcNameForPrint: the shape in a generic function name becomes
// "[...]". The result is a heap copy.
func (b *Binary) printName(nameOff int32) string {
	if nameOff < 0 {
		return "?"
	}
	return b.cachedString(strPrint, b.tab.funcnametab, uint64(nameOff), func(raw []byte) string {
		i := bytes.IndexByte(raw, '[')
		j := bytes.LastIndexByte(raw, ']')
		if i < 0 || j <= i {
			return b.funcName(nameOff) // printed as is: share the copy of the name
		}
		var sb strings.Builder
		sb.Grow(i + len("[...]") + len(raw) - j - 1)
		sb.Write(raw[:i])
		sb.WriteString("[...]")
		sb.Write(raw[j+1:])
		return sb.String()
	})
}

// fileName returns a heap copy of the file name at fileoff in filetab, "?" if out of range.
func (b *Binary) fileName(fileoff uint32) string {
	return b.cachedString(strFile, b.tab.filetab, uint64(fileoff), copyString)
}

// fileLine mirrors runtime.funcline1 for text offset target: the file (a heap copy) and line.
func (b *Binary) fileLine(f *funcRec, target uint64) (string, int) {
	t := b.tab
	fileno, ok1 := t.pcvalue(f, f.pcfile, target)
	line, ok2 := t.pcvalue(f, f.pcln, target)
	if !ok1 || !ok2 || fileno == -1 || line == -1 || int(fileno) >= len(t.filetab) {
		return "?", 0
	}
	fileoff, ok := t.fileOff(f, fileno)
	if !ok {
		return "?", int(line)
	}
	return b.fileName(fileoff), int(line)
}
