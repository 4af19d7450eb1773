package cpu

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/goroscope/goroscope/pkg/snapshot"
)

// testProcess has two goroutines: 7 (labelled) twice in burn with mix
// inlined at one pc, 9 once in work, and a kernel-mode sample of 9.
func testProcess() *Process {
	burn := []snapshot.Frame{
		{Function: "main.mix", File: "b.go", Line: 61, Inlined: true, PC: 0x401010},
		{Function: "main.burnCPU", File: "b.go", Line: 54, PC: 0x401010},
		{Function: "main.loop", File: "b.go", Line: 70, PC: 0x401100},
		{Function: "runtime.goexit", File: "asm.s", Line: 1, PC: 0x400010},
	}
	work := []snapshot.Frame{
		{Function: "main.work", File: "w.go", Line: 5, PC: 0x401200},
		{Function: "runtime.goexit", File: "asm.s", Line: 1, PC: 0x400010},
	}
	kern := append([]snapshot.Frame{
		{Function: "do_syscall_64", File: kernelFile, PC: 0xffffffff81000100},
	}, work...)
	return &Process{
		PID: 42, Exe: "/bin/t", textLo: 0x400000, textHi: 0x402000,
		Samples: []Sample{
			{Goid: 7, Labels: map[string]string{"burner": "labeled"}, Frames: burn, Count: 3},
			{Goid: 7, Labels: map[string]string{"burner": "labeled"}, Frames: burn, Count: 2}, // same key: merged
			{Goid: 9, Frames: work, Count: 1},
			{Goid: 9, Frames: kern, Count: 4},
		},
		Total: 10,
	}
}

func TestBuildProfile(t *testing.T) {
	p := testProcess()
	start := time.Unix(1700000000, 0)
	prof := BuildProfile(p, start, 10*time.Second, 100)
	if err := prof.CheckValid(); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := prof.Write(&buf); err != nil {
		t.Fatal(err)
	}
	prof, err := profile.Parse(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if prof.Period != 10_000_000 || prof.PeriodType.Type != "cpu" || prof.PeriodType.Unit != "nanoseconds" ||
		prof.DurationNanos != int64(10*time.Second) || prof.TimeNanos != start.UnixNano() {
		t.Errorf("period %d %v, duration %d, time %d", prof.Period, prof.PeriodType, prof.DurationNanos, prof.TimeNanos)
	}
	if len(prof.SampleType) != 2 || prof.SampleType[0].Type != "samples" || prof.SampleType[0].Unit != "count" ||
		prof.SampleType[1].Type != "cpu" || prof.SampleType[1].Unit != "nanoseconds" {
		t.Errorf("sample types %v", prof.SampleType)
	}
	if len(prof.Sample) != 3 {
		t.Fatalf("%d samples, want 3 (the two identical ones merged)", len(prof.Sample))
	}
	type want struct {
		n      int64
		goid   int64
		label  string
		leaf   []string // lines of the first location, innermost first
		mapped bool     // first location in the executable's mapping
	}
	wants := []want{
		{5, 7, "labeled", []string{"main.mix", "main.burnCPU"}, true},
		{1, 9, "", []string{"main.work"}, true},
		{4, 9, "", []string{"do_syscall_64"}, false},
	}
	for i, w := range wants {
		s := prof.Sample[i]
		if s.Value[0] != w.n || s.Value[1] != w.n*10_000_000 {
			t.Errorf("sample %d: values %v, want [%d %d]", i, s.Value, w.n, w.n*10_000_000)
		}
		if g := s.NumLabel[LabelGoid]; len(g) != 1 || g[0] != w.goid {
			t.Errorf("sample %d: goid %v, want %d", i, g, w.goid)
		}
		if got := s.Label["burner"]; (w.label == "") != (len(got) == 0) || (len(got) == 1 && got[0] != w.label) {
			t.Errorf("sample %d: label burner=%v, want %q", i, got, w.label)
		}
		var lines []string
		for _, l := range s.Location[0].Line {
			lines = append(lines, l.Function.Name)
		}
		if strings.Join(lines, ",") != strings.Join(w.leaf, ",") {
			t.Errorf("sample %d: first location %v, want %v", i, lines, w.leaf)
		}
		if (s.Location[0].Mapping != nil) != w.mapped {
			t.Errorf("sample %d: mapping %v, want mapped=%v", i, s.Location[0].Mapping, w.mapped)
		}
	}
	// burn's 4 frames make 3 locations (mix inlined into burnCPU).
	if n := len(prof.Sample[0].Location); n != 3 {
		t.Errorf("burn sample has %d locations, want 3", n)
	}
	// goexit's location is shared by all samples.
	if a, b := prof.Sample[0].Location[2], prof.Sample[1].Location[1]; a.ID != b.ID {
		t.Errorf("runtime.goexit locations %d and %d differ", a.ID, b.ID)
	}
}

func TestWriteFolded(t *testing.T) {
	var b strings.Builder
	if err := WriteFolded(&b, testProcess()); err != nil {
		t.Fatal(err)
	}
	want := "runtime.goexit;main.loop;main.burnCPU;main.mix 5\n" +
		"runtime.goexit;main.work 1\n" +
		"runtime.goexit;main.work;do_syscall_64_[k] 4\n"
	if b.String() != want {
		t.Errorf("folded:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestGoroutines(t *testing.T) {
	gs := testProcess().Goroutines()
	if len(gs) != 2 || gs[7].Samples != 5 || len(gs[7].Stacks) != 2 || gs[9].Samples != 5 || len(gs[9].Stacks) != 2 {
		t.Errorf("goroutines: 7=%+v 9=%+v (of %d), want 5 samples in 2 stacks each", gs[7], gs[9], len(gs))
	}
}

func TestParseKallsyms(t *testing.T) {
	const text = `ffffffff81000000 T _stext
ffffffff81000100 T do_syscall_64
ffffffff81000180 t helper	[mod]
ffffffff81000200 D some_data
ffffffff81000300 W weak_fn
`
	k, err := parseKallsyms(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		addr uint64
		want string
	}{
		{0xffffffff81000000, "_stext"},
		{0xffffffff81000120, "do_syscall_64"},
		{0xffffffff81000190, "helper"},
		{0xffffffff81000250, "helper"}, // data symbols are skipped
		{0xffffffff81000400, "weak_fn"},
		{0xffffffff80000000, "[kernel]"},
	} {
		if got := k.name(c.addr); got != c.want {
			t.Errorf("name(%#x) = %q, want %q", c.addr, got, c.want)
		}
	}
	if _, err := parseKallsyms(strings.NewReader("0000000000000000 T _stext\n0000000000000000 T x\n")); err == nil {
		t.Error("all-zero addresses (kptr_restrict) parsed without error")
	}
	var nilK *kallsyms
	if got := nilK.name(1); got != "[kernel]" {
		t.Errorf("nil kallsyms names %q", got)
	}
}

func TestParseMapping(t *testing.T) {
	for _, c := range []struct {
		line string
		ok   bool
		want mapping
	}{
		{"7f0000000000-7f0000001000 r-xp 00000000 08:01 1234   /usr/lib/x86_64-linux-gnu/libc.so.6", true, mapping{0x7f0000000000, 0x7f0000001000, "[libc.so.6]"}},
		{"7ffd000000-7ffd001000 r-xp 00000000 00:00 0                          [vdso]", true, mapping{0x7ffd000000, 0x7ffd001000, "[vdso]"}},
		{"10000-20000 r-xp 00000000 00:00 0", true, mapping{0x10000, 0x20000, "[anon]"}},
		{"400000-500000 r-xp 00000000 08:01 99 /tmp/my prog (deleted)", true, mapping{0x400000, 0x500000, "[my prog]"}},
		{"7f0000000000-7f0000001000 rw-p 00000000 08:01 1234 /lib/libc.so.6", false, mapping{}},
		{"garbage", false, mapping{}},
		{"20000-10000 r-xp 0 0 0 x", false, mapping{}},
	} {
		got, ok := parseMapping(c.line)
		if ok != c.ok || got != c.want {
			t.Errorf("parseMapping(%q) = %+v, %v; want %+v, %v", c.line, got, ok, c.want, c.ok)
		}
	}
}
