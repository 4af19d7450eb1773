package gobin

import (
	"bufio"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unsafe"
)

// maxHeapPerExecutable is the heap an opened executable may cost (issue: 0.5 MB per distinct
// executable, a local user being able to start many).
const maxHeapPerExecutable = 512 << 10

// distinctExecutables lists Go executables on disk: the toolchain's commands and tools and, when
// not in -short mode, the test builds of testdata/callers.
func distinctExecutables(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		t.Fatalf("go env GOROOT: %v", err)
	}
	root := strings.TrimSpace(string(out))
	paths := []string{filepath.Join(root, "bin", "go"), filepath.Join(root, "bin", "gofmt")}
	tools, _ := filepath.Glob(filepath.Join(root, "pkg", "tool", runtime.GOOS+"_"+runtime.GOARCH, "*"))
	paths = append(paths, tools...)
	if !testing.Short() {
		for _, tb := range testBuilds() {
			paths = append(paths, buildCallers(t, tb))
		}
	}
	return paths
}

// liveHeap returns the bytes of live heap objects after a full collection.
func liveHeap() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// use does what the agent does with a freshly opened executable: runtime variables, a few
// functions by name, and the frames of a sample of pcs.
func use(t *testing.T, b *Binary) {
	t.Helper()
	if _, err := b.RuntimeVars(); err != nil {
		t.Errorf("%s: RuntimeVars: %v", b.Name(), err)
	}
	for _, name := range []string{"runtime.gopark", "runtime.goexit", "gogo"} {
		b.FuncByName(name)
	}
	buf := make([]Frame, 0, 16)
	for i, n := 0, b.NumFuncs(); i < n; i += max(1, n/64) {
		f, _ := b.FuncByIndex(i)
		buf = b.Frames((f.Entry+f.End)/2, buf[:0])
	}
}

// TestHeapPerExecutable opens many distinct executables, uses them, and checks that each costs
// less than maxHeapPerExecutable of heap and, after Trim, no resident pages of its mapping.
func TestHeapPerExecutable(t *testing.T) {
	paths := distinctExecutables(t)
	base := liveHeap()
	var bins []*Binary
	defer func() {
		for _, b := range bins {
			b.Close()
		}
	}()
	var size int64
	for _, p := range paths {
		b, err := Open(p)
		if err != nil {
			t.Logf("skip %s: %v", p, err)
			continue
		}
		bins = append(bins, b)
		use(t, b)
		b.Trim()
		size += int64(len(b.mapped))
	}
	if len(bins) < 8 {
		t.Fatalf("only %d executables opened, want at least 8", len(bins))
	}
	grown := int64(liveHeap()) - int64(base)
	per := grown / int64(len(bins))
	t.Logf("%d executables of %.1f MB on average: heap grew %.1f kB per executable", len(bins), float64(size)/float64(len(bins))/1e6, float64(per)/1e3)
	if per > maxHeapPerExecutable {
		t.Errorf("heap grew %d bytes per executable, more than %d", per, maxHeapPerExecutable)
	}
	for _, b := range bins {
		if rss, ok := mappingRss(t, b); ok && rss != 0 {
			t.Errorf("%s: %d kB of the mapping resident after Trim", b.Name(), rss)
		}
	}
	runtime.KeepAlive(bins)
}

// mappingRss returns the resident kB of b's mapping from /proc/self/smaps, ok false when it
// cannot tell.
func mappingRss(t *testing.T, b *Binary) (kB int, ok bool) {
	t.Helper()
	if len(b.mapped) == 0 {
		return 0, false
	}
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	start := strconv.FormatUint(uint64(uintptr(unsafe.Pointer(&b.mapped[0]))), 16)
	sc := bufio.NewScanner(f)
	in := false
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexByte(line, '-'); i > 0 && !strings.Contains(line[:i], ":") && strings.Count(line, " ") >= 4 {
			in = strings.TrimLeft(line[:i], "0") == start
			continue
		}
		if v, found := strings.CutPrefix(line, "Rss:"); found && in {
			n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n, err == nil
		}
	}
	return 0, false
}

// TestTrim checks that lookups make pages of the mapping resident and Trim drops them.
func TestTrim(t *testing.T) {
	b := mustOpen(t, copySelf(t))
	if _, ok := b.FuncByName("runtime.no_such_function"); ok { // reads the whole function table
		t.Fatal("found a nonexistent function")
	}
	rss, ok := mappingRss(t, b)
	if !ok {
		t.Skip("no /proc/self/smaps entry for the mapping")
	}
	if rss == 0 {
		t.Errorf("no page of the mapping resident after a scan of the function table")
	}
	b.Trim()
	if after, _ := mappingRss(t, b); after != 0 {
		t.Errorf("%d kB resident after Trim (%d before)", after, rss)
	}
	t.Logf("FuncByName made %d kB resident; Trim dropped them", rss)
}

// copySelf copies the test executable (stripped by go test, with a .gopclntab) into a temporary
// directory and returns the copy's path.
func copySelf(t *testing.T) string {
	t.Helper()
	return copyFile(t, "/proc/self/exe")
}

// copyUnstripped copies the smallest executable of the toolchain that has a .symtab and a
// .gopclntab into a temporary directory and returns the copy's path.
func copyUnstripped(t *testing.T) string {
	t.Helper()
	best, size := "", int64(-1)
	for _, p := range distinctExecutables(t) {
		ef, err := elf.Open(p)
		if err != nil {
			continue
		}
		fi, err := os.Stat(p)
		if err == nil && ef.Section(".symtab") != nil && ef.Section(".gopclntab") != nil && (size < 0 || fi.Size() < size) {
			best, size = p, fi.Size()
		}
		ef.Close()
	}
	if best == "" {
		t.Skip("no executable with a .symtab and a .gopclntab in the toolchain")
	}
	return copyFile(t, best)
}

// copyFile copies the file at src into a temporary directory and returns the copy's path.
func copyFile(t *testing.T, src string) string {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	path := filepath.Join(t.TempDir(), filepath.Base(src))
	out, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestTruncatedWhileMapped truncates the file of an opened executable: every method must then
// return an empty result or an error instead of crashing on SIGBUS.
func TestTruncatedWhileMapped(t *testing.T) {
	tests := []struct {
		name   string
		copy   func(t *testing.T) string
		size   func(full int64) int64
		broken bool // every lookup of a pc not seen before must fail
	}{
		{"stripped/empty", copySelf, func(int64) int64 { return 0 }, true},
		{"stripped/headers", copySelf, func(int64) int64 { return 4096 }, true},
		{"stripped/half", copySelf, func(full int64) int64 { return full / 2 }, false},
		{"symtab/empty", copyUnstripped, func(int64) int64 { return 0 }, true},
		{"symtab/headers", copyUnstripped, func(int64) int64 { return 4096 }, true},
		{"symtab/half", copyUnstripped, func(full int64) int64 { return full / 2 }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tt.copy(t)
			b := mustOpen(t, path)
			var pcs []uint64
			for i := 0; i < b.NumFuncs(); i += 97 {
				f, _ := b.FuncByIndex(i)
				pcs = append(pcs, (f.Entry+f.End)/2)
			}
			full := int64(len(b.mapped))
			if err := os.Truncate(path, tt.size(full)); err != nil {
				t.Fatal(err)
			}
			var frames, funcs int
			buf := make([]Frame, 0, 16)
			for _, pc := range pcs {
				if buf = b.Frames(pc, buf[:0]); len(buf) > 0 {
					frames++
				}
				if _, ok := b.FuncForPC(pc); ok {
					funcs++
				}
				if _, err := b.SPDelta(pc); err == nil && tt.broken {
					t.Errorf("SPDelta(%#x) succeeded on the truncated file", pc)
				}
			}
			_, byName := b.FuncByName("runtime.gopark")
			_, byIndex := b.FuncByIndex(b.NumFuncs() / 2)
			_, varsErr := b.RuntimeVars()
			b.Trim()
			if tt.broken {
				if frames != 0 || funcs != 0 || byName || byIndex || varsErr == nil {
					t.Errorf("truncated to %d bytes: %d of %d pcs had frames, %d a function, FuncByName %t, FuncByIndex %t, RuntimeVars error %v",
						tt.size(full), frames, len(pcs), funcs, byName, byIndex, varsErr)
				}
				if !strings.Contains(varsErr.Error(), "truncated") || !strings.Contains(varsErr.Error(), path) {
					t.Errorf("RuntimeVars error %q does not name the file and the truncation", varsErr)
				}
			}
			t.Logf("truncated to %d of %d bytes: %d of %d pcs had frames; RuntimeVars: %v", tt.size(full), full, frames, len(pcs), varsErr)
			if err := b.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
}

// TestCloseConcurrent closes an executable while other goroutines symbolise with it (run with
// -race): the calls before Close answer, those after return empty results, none faults.
func TestCloseConcurrent(t *testing.T) {
	b, err := Open(copySelf(t))
	if err != nil {
		t.Fatal(err)
	}
	var pcs []uint64
	for i := 0; i < b.NumFuncs(); i += 31 {
		f, _ := b.FuncByIndex(i)
		pcs = append(pcs, (f.Entry+f.End)/2)
	}
	const workers = 4
	var started, done sync.WaitGroup
	closed := make(chan struct{})
	errs := make(chan error, workers)
	started.Add(workers)
	done.Add(workers)
	for w := 0; w < workers; w++ {
		go func() {
			defer done.Done()
			buf := make([]Frame, 0, 16)
			call := func(i int) int {
				pc := pcs[i%len(pcs)]
				buf = b.Frames(pc, buf[:0])
				n := len(buf)
				if _, ok := b.FuncForPC(pc); ok {
					n++
				}
				if _, ok := b.FuncByIndex(i % len(pcs)); ok {
					n++
				}
				if _, err := b.SPDelta(pc); err == nil {
					n++
				}
				if i%64 == 0 {
					if _, ok := b.FuncByName("runtime.gopark"); ok {
						n++
					}
					b.Trim()
				}
				return n + b.NumFuncs()
			}
			for i := 0; i < 200; i++ {
				call(i)
			}
			started.Done()
			for i := 200; ; i++ {
				select {
				case <-closed:
					for j := 0; j < 100; j++ {
						if n := call(i + j); n != 0 {
							errs <- fmt.Errorf("after Close: %d results for pc %#x", n, pcs[(i+j)%len(pcs)])
							return
						}
					}
					return
				default:
					call(i)
				}
			}
		}()
	}
	started.Wait()
	if err := b.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	close(closed)
	if err := b.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	done.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if _, err := b.RuntimeVars(); !errors.Is(err, ErrClosed) {
		t.Errorf("RuntimeVars after Close: %v, want ErrClosed", err)
	}
	if _, err := b.SPDelta(pcs[0]); !errors.Is(err, ErrClosed) {
		t.Errorf("SPDelta after Close: %v, want ErrClosed", err)
	}
}

// TestNoAliasing checks that no string handed out points into the mapping, and that strings
// handed out stay valid after Close.
func TestNoAliasing(t *testing.T) {
	b, err := Open(copySelf(t))
	if err != nil {
		t.Fatal(err)
	}
	lo := uintptr(unsafe.Pointer(&b.mapped[0]))
	hi := lo + uintptr(len(b.mapped))
	aliases := func(s string) bool {
		p := uintptr(unsafe.Pointer(unsafe.StringData(s)))
		return len(s) > 0 && p >= lo && p < hi
	}
	var kept []string
	check := func(what, s string) {
		if aliases(s) {
			t.Errorf("%s %q aliases the mapping", what, s)
		}
		kept = append(kept, s)
	}
	for i := 0; i < b.NumFuncs(); i += 13 {
		f, _ := b.FuncByIndex(i)
		check("Func.Name", f.Name)
		if g, ok := b.FuncForPC(f.Entry); ok {
			check("FuncForPC name", g.Name)
		}
		for _, fr := range b.Frames((f.Entry+f.End)/2, nil) {
			check("Frame.Function", fr.Function)
			check("Frame.File", fr.File)
		}
	}
	if _, err := b.SPDelta(b.TextStart() + 1<<40); err != nil {
		check("SPDelta error", err.Error())
	}
	want := strings.Join(kept, "\n")
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	if got := strings.Join(kept, "\n"); got != want {
		t.Error("strings changed after Close")
	}
}

// TestFuncByNameScan looks up names in the synthetic table, including prefixes and extensions of
// its names.
func TestFuncByNameScan(t *testing.T) {
	b, err := pclnBinary(syntheticPCLNTab())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		entry uint64 // 0: absent
	}{
		{"main.a", 0x1000},
		{"main.b", 0x1040},
		{"main.inl", 0}, // only inlined: no physical function
		{"main.", 0},
		{"main.bb", 0},
		{"main.a\x00", 0},
		{"", 0},
	}
	for _, tt := range tests {
		f, ok := b.FuncByName(tt.name)
		if ok != (tt.entry != 0) || f.Entry != tt.entry || (ok && f.Name != tt.name) {
			t.Errorf("FuncByName(%q) = %+v, %t; want entry %#x", tt.name, f, ok, tt.entry)
		}
	}
	if n := testing.AllocsPerRun(10, func() { b.FuncByName("main.b") }); n != 0 {
		t.Errorf("FuncByName allocates %.0f times", n)
	}
}

// symtabFixture builds a .symtab and its string table from (name offset, value) entries after
// the null symbol.
func symtabFixture(entries ...[2]uint64) []byte {
	out := make([]byte, elfSymSize)
	for _, e := range entries {
		sym := make([]byte, elfSymSize)
		binary.LittleEndian.PutUint32(sym, uint32(e[0]))
		binary.LittleEndian.PutUint64(sym[8:], e[1])
		out = append(out, sym...)
	}
	return out
}

func TestFindSymbols(t *testing.T) {
	strtab := []byte("\x00runtime.text\x00runtime.textx\x00runtime.allgs\x00go:func.*\x00runtime.allglen")
	const text, textx, allgs, gofunc, allglen = 1, 14, 28, 42, 52 // allglen is unterminated
	tests := []struct {
		name    string
		symtab  []byte
		want    map[int]uint64
		missing []int
	}{
		{"found", symtabFixture([2]uint64{text, 0x401000}, [2]uint64{allgs, 0x5000}, [2]uint64{gofunc, 0x6000}),
			map[int]uint64{symText: 0x401000, symAllgs: 0x5000, symGofunc: 0x6000}, []int{symAllglen, symPclntab}},
		{"prefix is not a match", symtabFixture([2]uint64{textx, 0x1}), nil, []int{symText}},
		{"first definition wins", symtabFixture([2]uint64{text, 0x1}, [2]uint64{text, 0x2}), map[int]uint64{symText: 0x1}, nil},
		{"unterminated name", symtabFixture([2]uint64{allglen, 0x1}), nil, []int{symAllglen}},
		{"name out of range", symtabFixture([2]uint64{1 << 31, 0x1}, [2]uint64{uint64(len(strtab)), 0x2}, [2]uint64{text, 0x3}),
			map[int]uint64{symText: 0x3}, nil},
		{"null symbol skipped", append(symtabFixture(), 0), nil, []int{symText}},
		{"partial entry ignored", symtabFixture([2]uint64{text, 0x1})[:2*elfSymSize-1], nil, []int{symText}},
		{"empty", nil, nil, []int{symText}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := findSymbols(tt.symtab, strtab)
			for i, v := range tt.want {
				if !st.found[i] || st.value[i] != v {
					t.Errorf("%s = %#x, %t; want %#x", symbolNames[i], st.value[i], st.found[i], v)
				}
			}
			for _, i := range tt.missing {
				if st.found[i] {
					t.Errorf("%s found (%#x)", symbolNames[i], st.value[i])
				}
			}
		})
	}
}

// TestBadSymtab damages the .symtab section header of a copy of an executable: Open must
// still succeed, the symbols count as absent with an error saying why, and RuntimeVars falls back
// to disassembly.
func TestBadSymtab(t *testing.T) {
	tests := []struct {
		name    string
		field   int    // offset in the Elf64_Shdr
		size    int    // 4 or 8 bytes
		value   uint64 // or'ed in for sh_flags, stored otherwise
		wantErr string
	}{
		{"compressed", 8, 8, uint64(elf.SHF_COMPRESSED), "compressed"},
		{"bad link", 40, 4, 9999, "string table index"},
		{"link not strtab", 40, 4, 1, "not SHT_STRTAB"},
		{"bad entsize", 56, 8, 16, "entry size"},
		{"past the end", 24, 8, 1 << 40, "past the end"},
		{"ragged size", 32, 8, 25, "whole number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := copyUnstripped(t)
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			ef, err := elf.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			idx := -1
			for i, s := range ef.Sections {
				if s.Name == ".symtab" {
					idx = i
				}
			}
			ef.Close()
			if idx < 0 {
				t.Fatal("no .symtab")
			}
			le := binary.LittleEndian
			at := le.Uint64(data[40:]) + uint64(idx)*64 + uint64(tt.field)
			switch {
			case tt.field == 8:
				le.PutUint64(data[at:], le.Uint64(data[at:])|tt.value)
			case tt.size == 8:
				le.PutUint64(data[at:], tt.value)
			default:
				le.PutUint32(data[at:], uint32(tt.value))
			}
			if err := os.WriteFile(path, data, 0o755); err != nil {
				t.Fatal(err)
			}
			b := mustOpen(t, path)
			if b.Stripped() {
				t.Fatal("Stripped() with a .symtab")
			}
			_, err = b.symbols()
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), path) {
				t.Errorf("symbols() error %v, want one naming %s and saying %q", err, path, tt.wantErr)
			}
			v, err := b.RuntimeVars()
			if err != nil || v.Source != "disasm" {
				t.Errorf("RuntimeVars = %+v, %v; want the disassembler's", v, err)
			}
		})
	}
}

// TestCacheBounds symbolises more pcs than the caches hold and checks their bounds and the heap
// they cost when full.
func TestCacheBounds(t *testing.T) {
	b := mustOpen(t, copySelf(t))
	base := liveHeap()
	buf := make([]Frame, 0, 16)
	var pcs int
	for i := 0; i < b.NumFuncs(); i++ {
		f, _ := b.FuncByIndex(i)
		for pc := f.Entry; pc < f.End; pc += max(1, (f.End-f.Entry)/3) {
			buf = b.Frames(pc, buf[:0])
			pcs++
		}
	}
	if pcs <= maxCachedPCs {
		t.Fatalf("only %d pcs symbolised", pcs)
	}
	full := int64(liveHeap()) - int64(base)
	nf, ns := len(b.cache.frames), len(b.cache.strs)
	if nf > maxCachedPCs || ns > maxCachedStrings {
		t.Errorf("caches hold %d pcs and %d strings, bounds %d and %d", nf, ns, maxCachedPCs, maxCachedStrings)
	}
	t.Logf("%d pcs symbolised: caches hold %d pcs and %d strings, %.1f kB of heap", pcs, nf, ns, float64(full)/1e3)
	if full > maxHeapPerExecutable {
		t.Errorf("full caches cost %d bytes, more than the %d an executable may cost", full, maxHeapPerExecutable)
	}
}

// TestMapFile checks the files that are refused before being mapped.
func TestMapFile(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		size    int64
		wantErr string
	}{
		{"empty", 0, "empty"},
		{"larger than 4 GiB", maxFileSize + 1, "larger than"},
		{"small", 4096, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-"))
			f, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if err := f.Truncate(tt.size); err != nil { // sparse: costs no disk
				t.Fatal(err)
			}
			data, err := mapFile(f, tt.size, path)
			if tt.wantErr == "" {
				if err != nil || len(data) != int(tt.size) {
					t.Fatalf("mapFile = %d bytes, %v", len(data), err)
				}
				if err := (&Binary{name: path, mapped: data}).unmap(); err != nil {
					t.Error(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), path) {
				t.Errorf("mapFile error %v, want one naming %s and saying %q", err, path, tt.wantErr)
			}
		})
	}
}
