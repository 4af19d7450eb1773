package gobin

import (
	"bufio"
	"bytes"
	"debug/elf"
	"debug/gosym"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
)

type jsonFrame struct {
	Function string `json:"function"`
	File     string `json:"file"`
	Line     int    `json:"line"`
}

type callersOutput struct {
	MainMain uint64 `json:"main_main"`
	Stacks   []struct {
		Name   string      `json:"name"`
		PCs    []uint64    `json:"pcs"`
		Frames []jsonFrame `json:"frames"`
	} `json:"stacks"`
}

func runCallers(t *testing.T, path string) callersOutput {
	t.Helper()
	out, err := exec.Command(path).Output()
	if err != nil {
		t.Fatalf("run %s: %v", path, err)
	}
	var co callersOutput
	if err := json.Unmarshal(out, &co); err != nil {
		t.Fatalf("decode output of %s: %v", path, err)
	}
	return co
}

func mustOpen(t *testing.T, path string) *Binary {
	t.Helper()
	b, err := Open(path)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func fmtFrames(fs []jsonFrame) string {
	var sb strings.Builder
	for _, f := range fs {
		fmt.Fprintf(&sb, "\n\t%s %s:%d", f.Function, f.File, f.Line)
	}
	return sb.String()
}

func toJSONFrames(fs []Frame) []jsonFrame {
	out := make([]jsonFrame, len(fs))
	for i, f := range fs {
		out[i] = jsonFrame{f.Function, f.File, f.Line}
	}
	return out
}

// equalFrames compares got with the runtime's want. The runtime names the function at
// funcnametab offset 0 "" (runtime.moduledata.funcName); gobin returns its real name.
func equalFrames(got, want []jsonFrame) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		g := got[i]
		if want[i].Function == "" {
			g.Function = ""
		}
		if g != want[i] {
			return false
		}
	}
	return true
}

// elideWrappers drops outer wrapper frames the way runtime.CallersFrames does when it expands
// inlined callers (elideWrapperCalling of the innermost frame's FuncID).
func elideWrappers(b *Binary, fs []Frame) []Frame {
	if len(fs) == 0 {
		return fs
	}
	ids := b.FuncIDs()
	switch fs[0].FuncID {
	case ids.Gopanic, ids.Sigpanic, ids.Panicwrap:
		return fs
	}
	out := fs[:1:1]
	for _, f := range fs[1:] {
		if f.FuncID != ids.Wrapper {
			out = append(out, f)
		}
	}
	return out
}

// TestBinaries checks every toolchain × linker × build mode × stripping against the runtime's own
// answers. Builds are cached across runs (buildCallers); the cells run in parallel.
func TestBinaries(t *testing.T) {
	for _, tb := range testBuilds() {
		t.Run(tb.name(), func(t *testing.T) {
			t.Parallel()
			path := buildCallers(t, tb)
			b := mustOpen(t, path)
			t.Run("meta", func(t *testing.T) { checkMeta(t, b, tb) })
			t.Run("callers", func(t *testing.T) { checkCallers(t, b, path) })
			// Every 23rd byte for the Go-linked executables, every 101st for the other modes:
			// only where the table and text lie differs between them.
			stride := uint64(23)
			if tb.pie || tb.external {
				stride = 101
			}
			t.Run("symbolize", func(t *testing.T) { checkSymbolize(t, b, path, stride) })
			t.Run("gosym", func(t *testing.T) { checkGosym(t, b) })
			t.Run("runtimevars", func(t *testing.T) {
				v := checkRuntimeVars(t, b, tb)
				if tb.pie || tb.external || !tb.stripped {
					return
				}
				// -ldflags is recorded in .go.buildinfo, which shifts the data sections:
				// compare section-relative positions with the plain build's symbols.
				plain := mustOpen(t, buildCallers(t, testBuild{toolchain: tb.toolchain}))
				want, err := plain.varsFromSymtab()
				if err != nil {
					t.Fatal(err)
				}
				for _, p := range [][2]uint64{{v.Allgs, want.Allgs}, {v.Allglen, want.Allglen}, {v.Semtable, want.Semtable}} {
					if g, w := sectionRel(b, p[0]), sectionRel(plain, p[1]); g != w {
						t.Errorf("stripped %s != plain %s (RuntimeVars %+v vs %+v)", g, w, v, want)
					}
				}
			})
			t.Run("statevars", func(t *testing.T) {
				v := checkStateVars(t, b, tb)
				if tb.pie || tb.external || !tb.stripped {
					return
				}
				plain := mustOpen(t, buildCallers(t, testBuild{toolchain: tb.toolchain}))
				want, err := plain.stateFromSymtab()
				if err != nil {
					t.Fatal(err)
				}
				if v.ExtraMs[0] > v.ExtraMs[1] != (want.ExtraMs[0] > want.ExtraMs[1]) { // in either order from the code
					v.ExtraMs[0], v.ExtraMs[1] = v.ExtraMs[1], v.ExtraMs[0]
				}
				for _, p := range [][2]uint64{{v.Gomaxprocs, want.Gomaxprocs}, {v.Allp, want.Allp}, {v.Sched, want.Sched}, {v.GCController, want.GCController},
					{v.Memstats, want.Memstats}, {v.ExtraMs[0], want.ExtraMs[0]}, {v.ExtraMs[1], want.ExtraMs[1]}} {
					if g, w := sectionRel(b, p[0]), sectionRel(plain, p[1]); g != w {
						t.Errorf("stripped %s != plain %s (StateVars %+v vs %+v)", g, w, v, want)
					}
				}
			})
			if tb.pie || tb.external || tb.toolchain == "go1.21.13" {
				t.Run("live", func(t *testing.T) { checkLive(t, b, path) })
			}
		})
	}
}

func checkMeta(t *testing.T, b *Binary, tb testBuild) {
	if got := b.GoVersion(); got != tb.wantVersion() {
		t.Errorf("GoVersion = %q, want %q", got, tb.wantVersion())
	}
	if b.BuildInfo() == nil || b.BuildInfo().Path != "example.com/callers" {
		t.Errorf("BuildInfo = %+v, want main path example.com/callers", b.BuildInfo())
	}
	if b.Stripped() != tb.stripped {
		t.Errorf("Stripped = %t, want %t", b.Stripped(), tb.stripped)
	}
	if b.ELF() == nil {
		t.Fatal("ELF() is nil")
	}
	gopark, ok := b.FuncByName("runtime.gopark")
	if !ok || gopark.Entry == 0 || gopark.End <= gopark.Entry {
		t.Fatalf("FuncByName(runtime.gopark) = %+v, %t", gopark, ok)
	}
	if f, ok := b.FuncForPC(gopark.Entry + 3); !ok || f != gopark {
		t.Errorf("FuncForPC(gopark+3) = %+v, %t, want %+v", f, ok, gopark)
	}
	if _, ok := b.FuncByName("runtime.no_such_function"); ok {
		t.Error("FuncByName found a nonexistent function")
	}
	if sp, err := b.SPDelta(gopark.Entry); err != nil || sp != 0 {
		t.Errorf("SPDelta(gopark entry) = %d, %v, want 0", sp, err)
	}
	// gopark has a frame: somewhere inside, the SP is below its entry value.
	maxSP := int64(0)
	for pc := gopark.Entry; pc < gopark.End; pc++ {
		if sp, err := b.SPDelta(pc); err == nil { // padding after the code has no pcsp entry
			maxSP = max(maxSP, sp)
		}
	}
	if _, err := b.SPDelta(gopark.End - 1); err == nil {
		t.Logf("gopark has no padding")
	}
	if maxSP <= 0 || maxSP%8 != 0 {
		t.Errorf("max SPDelta in gopark = %d, want a positive multiple of 8", maxSP)
	}
	// FuncID numbering of this Go version.
	ids := b.FuncIDs()
	for name, want := range map[string]uint8{
		"runtime.goexit": ids.Goexit, "runtime.asyncPreempt": ids.AsyncPreempt, "runtime.mcall": ids.Mcall,
		"runtime.morestack": ids.Morestack, "runtime.systemstack": ids.Systemstack, "runtime.rt0_go": ids.Rt0Go,
		"runtime.gogo": ids.Gogo, "runtime.mstart": ids.Mstart, "runtime.main": ids.RuntimeMain,
		"runtime.gopanic": ids.Gopanic, "runtime.sigpanic": ids.Sigpanic, "runtime.gopark": ids.Normal,
		"runtime.gcBgMarkWorker": ids.GcBgMarkWorker, "runtime.systemstack_switch": ids.SystemstackSwitch,
	} {
		f, ok := b.FuncByName(name)
		if !ok {
			t.Errorf("FuncByName(%s) not found", name)
			continue
		}
		if f.FuncID != want {
			t.Errorf("%s FuncID = %d, want %d", name, f.FuncID, want)
		}
	}
	// The pclntab and the moduledata found by scanning agree with the symbol table.
	if !tb.stripped {
		if _, err := b.symbols(); err != nil {
			t.Fatal(err)
		}
		sym := func(i int) uint64 {
			v, ok := b.symbol(i)
			if !ok {
				t.Errorf("%s not in .symtab", symbolNames[i])
			}
			return v
		}
		if start, end := sym(symPclntab), sym(symEpclntab); b.pclnAddr != start || b.pclnAddr+uint64(len(b.tab.data)) > end {
			t.Errorf("pclntab [%#x, %#x); symtab says [%#x, %#x)", b.pclnAddr, b.pclnAddr+uint64(len(b.tab.data)), start, end)
		}
		if md, gofunc, text := sym(symFirstModuledata), sym(symGofunc), sym(symText); b.modAddr != md || b.gofunc != gofunc || b.text != text {
			t.Errorf("moduledata %#x gofunc %#x text %#x; symtab says %#x %#x %#x", b.modAddr, b.gofunc, b.text, md, gofunc, text)
		}
	} else if b.modAddr == 0 {
		t.Error("stripped binary: moduledata not found by scanning")
	}
}

// checkCallers runs the program and checks Frames against its runtime.Callers/CallersFrames output.
func checkCallers(t *testing.T, b *Binary, path string) {
	co := runCallers(t, path)
	mm, ok := b.FuncByName("main.main")
	if !ok {
		t.Fatal("main.main not found")
	}
	bias := co.MainMain - mm.Entry
	if len(co.Stacks) < 10 {
		t.Fatalf("only %d stacks recorded", len(co.Stacks))
	}
	var inlined int
	buf := make([]Frame, 0, 64)
	ids := b.FuncIDs()
	for _, s := range co.Stacks {
		var got []jsonFrame
		callee := ids.Normal
		for i := 0; i < len(s.PCs); {
			pc := s.PCs[i] - bias
			f, ok := b.FuncForPC(pc)
			if !ok {
				t.Fatalf("%s: FuncForPC(%#x) failed", s.Name, pc)
			}
			if pc > f.Entry {
				pc--
			}
			buf = b.Frames(pc, buf[:0])
			if len(buf) == 0 {
				t.Fatalf("%s: no frames for %#x", s.Name, pc)
			}
			for _, fr := range buf {
				if fr.Inlined {
					inlined++
				}
				if fr.Entry != f.Entry {
					t.Errorf("%s: frame %s Entry %#x, want %#x", s.Name, fr.Function, fr.Entry, f.Entry)
				}
				elide := ids.ElideWrapper(fr.FuncID, callee)
				callee = fr.FuncID
				if elide {
					continue
				}
				got = append(got, jsonFrame{fr.Function, fr.File, fr.Line})
				i++ // runtime.Callers lists one (virtual) pc per shown frame, inlined or not
			}
		}
		if !equalFrames(got, s.Frames) {
			t.Errorf("stack %q:\ngot%s\nwant%s", s.Name, fmtFrames(got), fmtFrames(s.Frames))
		}
	}
	if inlined == 0 {
		t.Error("no inlined frames seen; the test program did not exercise inlining")
	}
}

// checkSymbolize asks the program to symbolise a sample of pcs, every stride bytes of every
// function, with runtime.CallersFrames and compares with Frames.
func checkSymbolize(t *testing.T, b *Binary, path string, stride uint64) {
	mm, _ := b.FuncByName("main.main")
	var pcs []uint64
	for i := 0; i < b.NumFuncs(); i++ {
		f, _ := b.FuncByIndex(i)
		// pc+1 is handed to CallersFrames, so stay below End-1.
		for pc := f.Entry; pc+1 < f.End; pc += stride {
			pcs = append(pcs, pc)
		}
	}
	in, _ := json.Marshal(map[string]any{"main_main": mm.Entry, "pcs": pcs})
	cmd := exec.Command(path, "symbolize")
	cmd.Stdin = bytes.NewReader(in)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("run %s symbolize: %v", path, err)
	}
	var want [][]jsonFrame
	if err := json.Unmarshal(out, &want); err != nil {
		t.Fatal(err)
	}
	if len(want) != len(pcs) {
		t.Fatalf("got %d answers for %d pcs", len(want), len(pcs))
	}
	// Before Go 1.23, CallersFrames does not expand the inlined callers of a real pc:
	// compare only the innermost frame there (runtime.Callers covers the rest in checkCallers).
	innermostOnly := goMinor(b.GoVersion()) < 23
	var bad, inlined int
	buf := make([]Frame, 0, 64)
	for i, pc := range pcs {
		buf = b.Frames(pc, buf[:0])
		got := toJSONFrames(elideWrappers(b, buf))
		if len(buf) > 1 {
			inlined++
		}
		if innermostOnly {
			got = got[:min(len(got), 1)]
		}
		if !equalFrames(got, want[i]) {
			if bad++; bad <= 5 {
				t.Errorf("pc %#x:\ngot%s\nwant%s", pc, fmtFrames(got), fmtFrames(want[i]))
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d pcs differ", bad, len(pcs))
	}
	if inlined < 100 {
		t.Errorf("only %d of %d pcs had inlined frames", inlined, len(pcs))
	}
	t.Logf("%d pcs agree with runtime.CallersFrames (%d with inlined frames)", len(pcs), inlined)
}

// checkGosym cross-checks the physical function and innermost file:line with debug/gosym.
func checkGosym(t *testing.T, b *Binary) {
	tab, err := gosym.NewTable(nil, gosym.NewLineTable(b.tab.data, b.TextStart()))
	if err != nil {
		t.Fatal(err)
	}
	if len(tab.Funcs) != b.NumFuncs() {
		t.Errorf("gosym has %d funcs, we have %d", len(tab.Funcs), b.NumFuncs())
	}
	var bad int
	buf := make([]Frame, 0, 16)
	for i, gf := range tab.Funcs {
		f, ok := b.FuncByIndex(i)
		if !ok || f.Name != gf.Name || f.Entry != gf.Entry || f.End != gf.End {
			t.Fatalf("func %d: %+v, gosym %s %#x-%#x", i, f, gf.Name, gf.Entry, gf.End)
		}
		for pc := f.Entry; pc < f.End; pc += 41 {
			file, line, _ := tab.PCToLine(pc)
			if file == "" && line == -1 {
				file, line = "?", 0 // gosym's "unknown" vs the runtime's
			}
			buf = b.Frames(pc, buf[:0])
			if len(buf) == 0 || buf[0].File != file || buf[0].Line != line || buf[len(buf)-1].Function != forPrint(gf.Name) {
				if bad++; bad < 5 {
					t.Errorf("pc %#x: frames %+v, gosym %s:%d in %s", pc, buf, file, line, gf.Name)
				}
			}
		}
	}
}

// sectionRel describes addr as section+offset.
func sectionRel(b *Binary, addr uint64) string {
	for _, s := range b.ELF().Sections {
		if s.Flags&elf.SHF_ALLOC != 0 && addr >= s.Addr && addr < s.Addr+s.Size {
			return fmt.Sprintf("%s+%#x", s.Name, addr-s.Addr)
		}
	}
	return fmt.Sprintf("%#x", addr)
}

// forPrint is runtime.funcNameForPrint.
func forPrint(name string) string {
	i := strings.IndexByte(name, '[')
	j := strings.LastIndexByte(name, ']')
	if i < 0 || j <= i {
		return name
	}
	return name[:i] + "[...]" + name[j+1:]
}

func runtimeFuncForPC(pc uint64) *runtime.Func { return runtime.FuncForPC(uintptr(pc)) }

// checkSource checks that variables were found in .symtab, or in the code of a stripped build.
func checkSource(t *testing.T, got string, tb testBuild) {
	t.Helper()
	want := "symtab"
	if tb.stripped {
		want = "disasm"
	}
	if got != want {
		t.Errorf("Source = %q, want %q", got, want)
	}
}

func checkRuntimeVars(t *testing.T, b *Binary, tb testBuild) RuntimeVars {
	v, err := b.RuntimeVars()
	if err != nil {
		t.Fatal(err)
	}
	checkSource(t, v.Source, tb)
	if v.Allgs == 0 || v.Allglen == 0 || v.Semtable == 0 {
		t.Errorf("RuntimeVars = %+v: missing addresses", v)
	}
	// The disassembler must agree with the symbol table on every version.
	d, err := b.varsFromDisasm()
	if err != nil {
		t.Fatalf("varsFromDisasm: %v", err)
	}
	if d.Allgs != v.Allgs || d.Allglen != v.Allglen || d.Semtable != v.Semtable {
		t.Errorf("disasm %+v != %+v", d, v)
	}
	return v
}

// checkLive runs the program in wait mode and checks OpenProcess, LoadBias and the runtime
// variables' values in the live process.
func checkLive(t *testing.T, b *Binary, path string) {
	cmd := exec.Command(path, "wait")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close()
		cmd.Wait()
	}()
	line, err := bufio.NewReaderSize(stdout, 1<<20).ReadBytes('\n')
	if err != nil {
		t.Fatal(err)
	}
	var co callersOutput
	if err := json.Unmarshal(line, &co); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	pb, err := OpenProcess(pid)
	if err != nil {
		t.Fatalf("OpenProcess(%d): %v", pid, err)
	}
	defer pb.Close()
	if pb.GoVersion() != b.GoVersion() || pb.Name() != path {
		t.Errorf("OpenProcess: version %s name %s, want %s %s", pb.GoVersion(), pb.Name(), b.GoVersion(), path)
	}
	mm, _ := pb.FuncByName("main.main")
	bias, err := pb.LoadBias(pid)
	if err != nil {
		t.Fatal(err)
	}
	if want := co.MainMain - mm.Entry; bias != want {
		t.Fatalf("LoadBias = %#x, want %#x", bias, want)
	}
	if b.elf.Type == 2 /* ET_EXEC */ && bias != 0 {
		t.Errorf("non-PIE LoadBias = %#x, want 0", bias)
	}
	v, err := pb.RuntimeVars()
	if err != nil {
		t.Fatal(err)
	}
	mem, err := os.Open(fmt.Sprintf("/proc/%d/mem", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	word := func(addr uint64) uint64 {
		var w [8]byte
		if _, err := mem.ReadAt(w[:], int64(addr+bias)); err != nil {
			t.Fatalf("read %#x: %v", addr+bias, err)
		}
		return binary.LittleEndian.Uint64(w[:])
	}
	n, sliceLen := word(v.Allglen), word(v.Allgs+8)
	if n < 2 || n > 1000 || n != sliceLen {
		t.Errorf("allglen = %d, len(allgs) = %d: want equal and small", n, sliceLen)
	}
	if word(v.Allgs) == 0 {
		t.Error("allgs data pointer is nil")
	}
}

// TestSelf symbolises every function of the test binary itself and compares with runtime.FuncForPC.
func TestSelf(t *testing.T) {
	b, err := OpenProcess(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	bias, err := b.LoadBias(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	var n, bad int
	buf := make([]Frame, 0, 32)
	for i := 0; i < b.NumFuncs(); i++ {
		f, _ := b.FuncByIndex(i)
		for pc := f.Entry; pc < f.End; pc += 7 {
			rf := runtimeFuncForPC(pc + bias)
			if rf == nil || i == 0 {
				continue // the runtime names the first function "" (its nameOff is 0)
			}
			buf = b.Frames(pc, buf[:0])
			file, line := rf.FileLine(uintptr(pc + bias))
			n++
			if len(buf) == 0 || buf[0].Function != rf.Name() || buf[0].File != file || buf[0].Line != line {
				if bad++; bad <= 5 {
					t.Errorf("pc %#x: got %+v, runtime says %s %s:%d", pc, buf, rf.Name(), file, line)
				}
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d pcs differ", bad, n)
	}
}

// TestFramesAllocs checks that Frames does not allocate for a cached pc with a large enough dst.
func TestFramesAllocs(t *testing.T) {
	b, err := OpenProcess(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	f, ok := b.FuncByName("testing.tRunner")
	if !ok {
		t.Fatal("testing.tRunner not found")
	}
	buf := make([]Frame, 0, 32)
	pc := f.Entry + (f.End-f.Entry)/2
	buf = b.Frames(pc, buf[:0])
	if allocs := testing.AllocsPerRun(100, func() { buf = b.Frames(pc, buf[:0]) }); allocs != 0 {
		t.Errorf("Frames allocates %.1f times per call", allocs)
	}
}

func BenchmarkFrames(b *testing.B) {
	bin, err := OpenProcess(os.Getpid())
	if err != nil {
		b.Fatal(err)
	}
	defer bin.Close()
	var pcs []uint64
	for i := 0; i < bin.NumFuncs(); i += 10 {
		f, _ := bin.FuncByIndex(i)
		pcs = append(pcs, f.Entry+(f.End-f.Entry)/2)
	}
	buf := make([]Frame, 0, 32)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		buf = bin.Frames(pcs[i%len(pcs)], buf[:0])
	}
}

// TestBuildID compares BuildID with `go tool buildid` (the Go build ID) and with the
// .note.gnu.build-id section (the GNU build ID, which takes precedence when present).
func TestBuildID(t *testing.T) {
	for _, tb := range []testBuild{
		{toolchain: "go1.21.13"}, // no GNU build ID
		{toolchain: "local", stripped: true},
		{toolchain: "go1.24.13", pie: true, external: true, stripped: true},
	} {
		t.Run(tb.name(), func(t *testing.T) {
			t.Parallel()
			path := buildCallers(t, tb)
			b := mustOpen(t, path)
			out, err := exec.Command("go", "tool", "buildid", path).Output()
			if err != nil {
				t.Fatalf("go tool buildid: %v", err)
			}
			want := strings.TrimSpace(string(out))
			if s := b.ELF().Section(".note.gnu.build-id"); s != nil {
				data, err := s.Data()
				if err != nil || len(data) < 16 {
					t.Fatalf("read .note.gnu.build-id: %d bytes, %v", len(data), err)
				}
				want = fmt.Sprintf("%x", data[16:]) // namesz, descsz, type, "GNU\0", then the ID
			}
			if got := b.BuildID(); got != want || got == "" {
				t.Errorf("BuildID = %q, want %q", got, want)
			}
			if b.goBuildID != strings.TrimSpace(string(out)) {
				t.Errorf("Go build ID = %q, go tool buildid says %q", b.goBuildID, out)
			}
			gopark, _ := b.FuncByName("runtime.gopark")
			off, ok := b.FileOffset(gopark.Entry)
			code, err := b.readVA(gopark.Entry, 16)
			if !ok || err != nil {
				t.Fatalf("FileOffset(gopark) = %#x, %t; readVA: %v", off, ok, err)
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(data[off:off+16], code) {
				t.Errorf("FileOffset(gopark) = %#x: bytes there differ from the code", off)
			}
			t.Logf("build ID %s", b.BuildID())
		})
	}
}
