//go:build linux

package bpf

import (
	"bufio"
	"bytes"
	"cmp"
	"debug/buildinfo"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/goroscope/goroscope/pkg/golayout"
)

func TestDecodePanicEvent(t *testing.T) {
	ev := panicsPanicEvent{Pid: 7, Tid: 8, Kind: panicsPanicKindPANIC_KIND_PANIC, Nstack: 3, Nsystem: 1, Goid: 1, Nlinks: 2, More: 1}
	ev.Val.ArgType, ev.Val.ArgData, ev.Val.TypeKind, ev.Val.MsgCopied, ev.Val.MsgLen = 0x1000, 0x2000, 24, 3, 5
	ev.Stack[0], ev.Stack[1], ev.Stack[2] = 0x401000, 0x402000, 0x403000
	copy(ev.Msg[:], "abc")
	l := &ev.Links[0].Val
	l.ArgType, l.TypeKind, l.Flags, l.MsgCopied, l.MsgLen = 0x3000, 24, panicFlagRecovered|panicFlagRepanicked, 2, 300
	copy(ev.Links[0].Msg[:], "de")
	ev.Links[1].Val.ArgType, ev.Links[1].Val.Flags = 0x4000, panicFlagGoexit
	ev.Links[2].Val.ArgType = 0x5000 // beyond Nlinks: stale
	var buf bytes.Buffer
	if err := binary.Write(&buf, binary.LittleEndian, &ev); err != nil {
		t.Fatal(err)
	}
	const value = 72 // struct panic_value
	if want := 48 + value + 2*64*8 + 1024 + 3*(value+256); buf.Len() != want {
		t.Fatalf("struct panic_event is %d bytes, want %d", buf.Len(), want)
	}
	r, err := decodePanicEvent(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if r.PID != 7 || r.TID != 8 || r.Kind != PanicKindPanic || r.GoID != 1 || string(r.Msg) != "abc" || r.MsgLen != 5 ||
		len(r.Stack) != 3 || r.Stack[1] != 0x402000 || r.System != 1 || r.TypeKind != 24 || r.ArgType != 0x1000 || r.ArgData != 0x2000 ||
		r.Recovered || r.Goexit || r.Repanicked {
		t.Errorf("decoded %+v", r)
	}
	if len(r.Chain) != 2 || !r.ChainMore {
		t.Fatalf("chain %+v (more %v), want 2 links and more", r.Chain, r.ChainMore)
	}
	if c := r.Chain[0]; c.ArgType != 0x3000 || c.TypeKind != 24 || string(c.Msg) != "de" || c.MsgLen != 300 ||
		!c.Recovered || c.Goexit || !c.Repanicked {
		t.Errorf("chain[0] %+v", c)
	}
	if c := r.Chain[1]; c.ArgType != 0x4000 || c.Msg != nil || c.Recovered || !c.Goexit || c.Repanicked {
		t.Errorf("chain[1] %+v", c)
	}

	// A fatal error: its message, and the panics of the goroutine
	// that called fatal while panicking; a throw has no chain.
	for _, tt := range []struct {
		kind  panicsPanicKind
		chain int
	}{{panicsPanicKindPANIC_KIND_FATAL, 1}, {panicsPanicKindPANIC_KIND_THROW, 0}} {
		ev = panicsPanicEvent{Kind: tt.kind, Nlinks: 1}
		ev.Val.MsgCopied, ev.Val.MsgLen = 4, 4
		copy(ev.Msg[:], "oops")
		ev.Links[0].Val.ArgType = 0x5000
		buf.Reset()
		if err := binary.Write(&buf, binary.LittleEndian, &ev); err != nil {
			t.Fatal(err)
		}
		if r, err = decodePanicEvent(buf.Bytes()); err != nil || string(r.Msg) != "oops" || len(r.Chain) != tt.chain ||
			(tt.chain > 0 && r.Chain[0].ArgType != 0x5000) {
			t.Errorf("kind %d: decoded %+v, %v; want the message and %d panics", tt.kind, r, err, tt.chain)
		}
	}
	if _, err := decodePanicEvent(buf.Bytes()[:100]); err == nil {
		t.Error("a short record decoded")
	}
}

func TestPanicLayoutCookie(t *testing.T) {
	for _, tt := range []struct {
		minor int
		want  uint64
	}{
		{21, 1<<4 | 2<<6 | 48<<8},
		{22, 1<<4 | 1<<6 | 96<<8},
		{24, 1<<4 | 1<<6 | 96<<8},
		{25, 1<<4 | 2<<6 | 96<<8 | 1<<15},
		{26, 2<<6 | 88<<8 | 1<<15},
		{27, 2<<6 | 88<<8 | 1<<15},
	} {
		got, err := PanicLayoutFor(tt.minor).cookie()
		if err != nil || got != tt.want {
			t.Errorf("Go 1.%d: cookie bits %#x, %v; want %#x", tt.minor, got, err, tt.want)
		}
		if got&^0xfff0 != 0 {
			t.Errorf("Go 1.%d: cookie bits %#x outside bits 4-15", tt.minor, got)
		}
	}
	for _, l := range []PanicLayout{
		{Arg: 4}, {Arg: 32}, {Recovered: 128, Goexit: 129}, {Recovered: 96, Goexit: 99},
		{Recovered: 96, Goexit: 96}, {Recovered: 96, Goexit: 98, Repanicked: 98},
	} {
		if c, err := l.cookie(); err == nil {
			t.Errorf("layout %+v: cookie bits %#x, want an error", l, c)
		}
	}
}

// panicToolchains are the toolchains TestPanicTracer builds
// testdata/panicker with: the probe's arg offset and the gobuf layout
// changed along them (test/kernels builds the same ones, targetToolchains).
func panicToolchains() []string { return []string{"local", "go1.21.13", "go1.23.12"} }

// panickerBinary builds testdata/panicker with toolchain (testdataBinary).
func panickerBinary(tb testing.TB, toolchain string) string {
	tb.Helper()
	return testdataBinary(tb, "panicker", toolchain)
}

// panickerMessage is testdata/panicker's panic value (its const Message).
const panickerMessage = "goroscope panic probe: boom"

// panickerInfo is what TestPanicTracer knows of a panicker binary, from
// its ELF symbols (it is unstripped and non-PIE: load bias 0) and the
// runtime layout of its Go version.
type panickerInfo struct {
	bin    string
	funcs  []elf.Symbol // functions, by address
	probes []PanicProbe // fatalpanic, fatal, throw
	entry  map[PanicKind]uint64
}

func inspectPanicker(tb testing.TB, bin string) panickerInfo {
	tb.Helper()
	f, err := elf.Open(bin)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	if f.Type != elf.ET_EXEC {
		tb.Fatalf("%s is %v, want a non-PIE executable (ET_EXEC): its pcs are then its link-time addresses", bin, f.Type)
	}
	syms, err := f.Symbols()
	if err != nil {
		tb.Fatalf("symbols of %s: %v", bin, err)
	}
	pi := panickerInfo{bin: bin, entry: make(map[PanicKind]uint64)}
	byName := make(map[string]elf.Symbol)
	for _, s := range syms {
		if elf.ST_TYPE(s.Info) == elf.STT_FUNC && s.Value != 0 {
			pi.funcs = append(pi.funcs, s)
			byName[s.Name] = s
		}
	}
	slices.SortFunc(pi.funcs, func(a, b elf.Symbol) int { return cmp.Compare(a.Value, b.Value) })

	bi, err := buildinfo.ReadFile(bin)
	if err != nil {
		tb.Fatalf("build info of %s: %v", bin, err)
	}
	v, err := golayout.ParseVersion(bi.GoVersion)
	if err != nil {
		tb.Fatal(err)
	}
	lay, err := golayout.ForVersion(bi.GoVersion)
	if err != nil {
		if lay, err = golayout.ForBinary(bin); err != nil {
			tb.Fatalf("runtime layout of %s (%s): %v", bin, bi.GoVersion, err)
		}
	}
	g := lay.G
	if g.SchedPC != g.SchedSP+8 || g.SchedBP <= g.SchedPC || g.SchedBP-g.SchedSP >= 256 || g.SchedSP <= 0 || g.SchedSP >= 256 ||
		g.M <= 0 || g.M >= 256 || lay.M.Curg <= 0 || lay.M.Curg >= 256 || g.Goid <= 0 || g.Goid >= 1<<16 {
		tb.Fatalf("%s: the runtime.g/m offsets of %s do not fit the probe's cookie: %+v, m.curg %d", bin, bi.GoVersion, g, lay.M.Curg)
	}
	for _, fn := range []struct {
		name string
		kind PanicKind
	}{{"runtime.fatalpanic", PanicKindPanic}, {"runtime.fatal", PanicKindFatal}, {"runtime.throw", PanicKindThrow}} {
		s, ok := byName[fn.name]
		if !ok {
			tb.Fatalf("%s has no function %s", bin, fn.name)
		}
		off, ok := fileOffset(f, s.Value)
		if !ok {
			tb.Fatalf("%s: %s at %#x is in no loaded executable segment", bin, fn.name, s.Value)
		}
		pi.entry[fn.kind] = s.Value
		pi.probes = append(pi.probes, PanicProbe{Kind: fn.kind, FileOffset: off, Panic: PanicLayoutFor(v.Minor), GoidOffset: uint16(g.Goid),
			GOffM: uint8(g.M), GOffSched: uint8(g.SchedSP), MOffCurg: uint8(lay.M.Curg), GobufBP: uint8(g.SchedBP - g.SchedSP)})
	}
	return pi
}

// fileOffset maps a virtual address of f to its offset in the file.
func fileOffset(f *elf.File, addr uint64) (uint64, bool) {
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD && p.Flags&elf.PF_X != 0 && p.Vaddr <= addr && addr < p.Vaddr+p.Filesz {
			return addr - p.Vaddr + p.Off, true
		}
	}
	return 0, false
}

// funcAt names the function whose symbol holds pc ("?" for none).
func (pi panickerInfo) funcAt(pc uint64) string {
	i, _ := slices.BinarySearchFunc(pi.funcs, pc, func(s elf.Symbol, pc uint64) int {
		if s.Value+s.Size <= pc {
			return -1
		}
		if s.Value > pc {
			return 1
		}
		return 0
	})
	if i < len(pi.funcs) && pi.funcs[i].Value <= pc && pc < pi.funcs[i].Value+pi.funcs[i].Size {
		return pi.funcs[i].Name
	}
	return "?"
}

// frames names the functions of stack; a return address is looked up one
// byte back, in its call instruction (not the goroutine's saved pc after
// system frames, which is where it stopped).
func (pi panickerInfo) frames(stack []uint64, system int) []string {
	out := make([]string, len(stack))
	for i, pc := range stack {
		if i > 0 && i != system {
			pc--
		}
		out[i] = pi.funcAt(pc)
	}
	return out
}

// compactFrames joins frames, a run of one function as "NAME xN".
func compactFrames(frames []string) string {
	var parts []string
	for i := 0; i < len(frames); {
		j := i + 1
		for j < len(frames) && frames[j] == frames[i] {
			j++
		}
		if j-i > 1 {
			parts = append(parts, fmt.Sprintf("%s x%d", frames[i], j-i))
		} else {
			parts = append(parts, frames[i])
		}
		i = j
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// loadPanicTracer loads the probe or skips; under CI=true a failure fails.
func loadPanicTracer(tb testing.TB) *PanicTracer {
	tb.Helper()
	tr, err := LoadPanicTracer()
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("CI=true but the panic tracer does not load: %v", err)
		}
		tb.Skipf("BPF panic tracer unavailable here: %v", err)
	}
	tb.Cleanup(func() {
		if err := tr.Close(); err != nil {
			tb.Errorf("close panic tracer: %v", err)
		}
	})
	return tr
}

// panicRecords reads the tracer's records into a channel until it is closed.
func panicRecords(tb testing.TB, tr *PanicTracer) <-chan PanicRecord {
	ch := make(chan PanicRecord, 64)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			r, err := tr.Read()
			if err == ErrPanicTracerClosed {
				return
			}
			if err != nil {
				tb.Errorf("read panic record: %v", err)
				return
			}
			ch <- r
		}
	}()
	tb.Cleanup(func() {
		_ = tr.Close() // ends Read; loadPanicTracer's cleanup reports errors
		<-done
	})
	return ch
}

// panicker is a started testdata/panicker, ready (it printed "ready").
type panicker struct {
	cmd    *exec.Cmd
	stdin  *os.File
	stderr bytes.Buffer
}

func startPanicker(t *testing.T, bin, mode string) *panicker {
	t.Helper()
	p := &panicker{cmd: exec.Command(bin, "-mode", mode)}
	p.cmd.Env = append(os.Environ(), "GOTRACEBACK=single", "GOMAXPROCS=2")
	p.cmd.Stderr = &p.stderr
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stdin, p.stdin = pr, pw
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pr.Close()
	t.Cleanup(func() {
		pw.Close()
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			_ = p.cmd.Wait()
		}
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "ready\n" {
		t.Fatalf("panicker -mode %s: %q, %v (stderr: %s)", mode, line, err, p.stderr.String())
	}
	return p
}

// die tells the panicker to die and waits for it: it must exit 2, as a Go
// program does after a panic or fatal error.
func (p *panicker) die(t *testing.T) {
	t.Helper()
	if _, err := p.stdin.WriteString("go\n"); err != nil {
		t.Fatal(err)
	}
	err := p.cmd.Wait()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatal(err)
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 2 {
		t.Fatalf("panicker exited with %v, want exit 2 (stderr: %.800s)", p.cmd.ProcessState, p.stderr.String())
	}
}

// nextPanics returns the n records the probe wrote since the stats said
// before events; each must be pid's.
func nextPanics(t *testing.T, tr *PanicTracer, recs <-chan PanicRecord, before uint64, pid int) []PanicRecord {
	t.Helper()
	st, err := tr.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Lost != 0 {
		t.Errorf("stats %+v: records lost", st)
	}
	var out []PanicRecord
	for range st.Events - before {
		select {
		case r := <-recs:
			if int(r.PID) != pid {
				t.Errorf("a record of pid %d, want only pid %d's: %+v", r.PID, pid, r)
				continue
			}
			out = append(out, r)
		case <-time.After(10 * time.Second):
			t.Fatalf("the stats count %d records since, but only %d came within 10s", st.Events-before, len(out))
		}
	}
	return out
}

// TestPanicTracer attaches the panic probe to testdata/panicker, built with
// several toolchains, and makes it die: of an unrecovered panic with a
// string (runtime.fatalpanic), of a stack overflow (runtime.throw on the
// system stack, behind which the probe finds the goroutine's stack) and of
// concurrent map writes (runtime.fatal). test/kernels runs it in each kernel
// of its matrix.
func TestPanicTracer(t *testing.T) {
	bins := make(map[string]string)
	for _, tc := range panicToolchains() {
		bins[tc] = panickerBinary(t, tc)
	}
	tr := loadPanicTracer(t)
	recs := panicRecords(t, tr)
	for _, tc := range panicToolchains() {
		pi := inspectPanicker(t, bins[tc])
		for _, mode := range []string{"panic", "stackoverflow", "mapwrites"} {
			t.Run(tc+"/"+mode, func(t *testing.T) {
				p := startPanicker(t, pi.bin, mode)
				pid := p.cmd.Process.Pid
				probes, err := tr.Attach(pi.bin, pid, pi.probes)
				if err != nil {
					t.Fatal(err) // with or without CI: the probe loaded, so it must attach
				}
				defer func() {
					if err := probes.Close(); err != nil {
						t.Errorf("detach: %v", err)
					}
				}()
				st, err := tr.Stats()
				if err != nil {
					t.Fatal(err)
				}
				p.die(t)
				got := nextPanics(t, tr, recs, st.Events, pid)
				if len(got) == 0 {
					t.Fatalf("no record of pid %d (stderr: %.800s)", pid, p.stderr.String())
				}
				for _, r := range got {
					t.Logf("kind %d goid %d tid %d msg %q (len %d) type kind %d system %d stack %v",
						r.Kind, r.GoID, r.TID, r.Msg, r.MsgLen, r.TypeKind, r.System, compactFrames(pi.frames(r.Stack, r.System)))
				}
				checkPanicRecords(t, pi, mode, got)
			})
		}
	}
	// The PID filter: a process running the same executable but not
	// attached for dies unseen.
	t.Run("pid-filter", func(t *testing.T) {
		pi := inspectPanicker(t, bins["local"])
		watched, other := startPanicker(t, pi.bin, "panic"), startPanicker(t, pi.bin, "panic")
		probes, err := tr.Attach(pi.bin, watched.cmd.Process.Pid, pi.probes)
		if err != nil {
			t.Fatal(err)
		}
		defer probes.Close()
		st, err := tr.Stats()
		if err != nil {
			t.Fatal(err)
		}
		other.die(t)
		watched.die(t)
		got := nextPanics(t, tr, recs, st.Events, watched.cmd.Process.Pid)
		if len(got) != 1 {
			t.Errorf("%d records of the watched process, want 1", len(got))
		}
	})
	select {
	case r := <-recs:
		t.Errorf("a record no subtest expected: %+v", r)
	default:
	}
}

// checkPanicRecords checks the records of a panicker's death by mode.
func checkPanicRecords(t *testing.T, pi panickerInfo, mode string, got []PanicRecord) {
	t.Helper()
	first := func(kind PanicKind, r PanicRecord) {
		t.Helper()
		// Non-PIE: the load bias is 0 and pcs are link-time addresses.
		if len(r.Stack) == 0 || r.Stack[0] != pi.entry[kind] {
			t.Errorf("stack %#x, want it to start at the probed function's entry %#x", r.Stack, pi.entry[kind])
		}
		if d := time.Since(r.Time); d < 0 || d > 10*time.Second {
			t.Errorf("record time %v is %v from now", r.Time, d)
		}
	}
	in := func(frames []string, fn string) bool {
		return slices.ContainsFunc(frames, func(f string) bool { return f == fn })
	}
	switch mode {
	case "panic":
		if len(got) != 1 {
			t.Errorf("%d records, want 1", len(got))
		}
		r := got[0]
		first(PanicKindPanic, r)
		if r.Kind != PanicKindPanic || r.GoID != 1 || r.System != 0 {
			t.Errorf("kind %d goid %d system %d, want kind %d (panic) on goroutine 1, not on the system stack", r.Kind, r.GoID, r.System, PanicKindPanic)
		}
		if len(r.Chain) != 0 || r.ChainMore || r.Recovered || r.Goexit || r.Repanicked {
			t.Errorf("chain %+v (more %v), flags %v %v %v: want a lone panic", r.Chain, r.ChainMore, r.Recovered, r.Goexit, r.Repanicked)
		}
		if r.TypeKind != 24 || string(r.Msg) != panickerMessage || r.MsgLen != uint64(len(panickerMessage)) {
			t.Errorf("type kind %d, message %q (length %d); want 24 (string), %q", r.TypeKind, r.Msg, r.MsgLen, panickerMessage)
		}
		if frames := pi.frames(r.Stack, r.System); !in(frames, "main.dieString") || !in(frames, "main.main") {
			t.Errorf("stack %v lacks main.dieString and main.main", frames)
		}
	case "stackoverflow":
		if len(got) != 1 {
			t.Errorf("%d records, want 1", len(got))
		}
		r := got[0]
		first(PanicKindThrow, r)
		if r.Kind != PanicKindThrow || string(r.Msg) != "stack overflow" {
			t.Errorf("kind %d, message %q; want %d (throw), \"stack overflow\"", r.Kind, r.Msg, PanicKindThrow)
		}
		// On g0 (newstack): g0's frames, then the goroutine's from its
		// saved sched, pc first, which is in the overflowing function.
		if r.System == 0 || r.System >= len(r.Stack) {
			t.Fatalf("system %d of %d frames: want the system stack's frames, then the goroutine's", r.System, len(r.Stack))
		}
		if r.GoID != 1 {
			t.Errorf("goid %d, want 1 (the goroutine m.curg was running)", r.GoID)
		}
		frames := pi.frames(r.Stack, r.System)
		if !in(frames[:r.System], "runtime.newstack") {
			t.Errorf("system frames %v lack runtime.newstack", frames[:r.System])
		}
		if frames[r.System] != "main.dieStackOverflow" || len(frames) < r.System+2 {
			t.Errorf("goroutine frames %v, want main.dieStackOverflow's and its callers'", frames[r.System:])
		}
	case "mapwrites":
		// Both writers may get to fatal before the world stops.
		for _, r := range got {
			first(PanicKindFatal, r)
			if r.Kind != PanicKindFatal || string(r.Msg) != "concurrent map writes" || r.System != 0 || r.GoID <= 1 {
				t.Errorf("kind %d, message %q, system %d, goid %d; want %d (fatal), \"concurrent map writes\" on a writer goroutine's stack",
					r.Kind, r.Msg, r.System, r.GoID, PanicKindFatal)
			}
			if frames := pi.frames(r.Stack, r.System); !in(frames, "main.dieMapWrites.func1") {
				t.Errorf("stack %v lacks main.dieMapWrites.func1", frames)
			}
		}
	}
}
