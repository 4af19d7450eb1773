//go:build linux

package bpf

import (
	"bytes"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goroscope/goroscope/pkg/gobin"
	"github.com/goroscope/goroscope/pkg/golayout"
)

func TestParseCPUList(t *testing.T) {
	for _, c := range []struct {
		in   string
		want string // "" for an error
	}{
		{"0", "[0]"},
		{"0-3", "[0 1 2 3]"},
		{"0-1,4,6-7", "[0 1 4 6 7]"},
		{"", ""},
		{"a", ""},
		{"3-1", ""},
		{"0-99999", ""},
		{"-1", ""},
	} {
		got, err := parseCPUList(c.in)
		if c.want == "" {
			if err == nil {
				t.Errorf("parseCPUList(%q) = %v, want an error", c.in, got)
			}
			continue
		}
		if err != nil || fmtInts(got) != c.want {
			t.Errorf("parseCPUList(%q) = %v, %v; want %s", c.in, got, err, c.want)
		}
	}
}

func fmtInts(v []int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.Itoa(x)
	}
	return "[" + strings.Join(s, " ") + "]"
}

func TestCPUProcessConfig(t *testing.T) {
	good := CPUProcess{
		TextLo: 0x401000, TextHi: 0x500000, TLSG: -8, TrustR14: true, KernelFrames: true,
		Off: CPUOffsets{StackLo: 0, StackHi: 8, M: 48, SchedSP: 56, SchedPC: 64, SchedBP: 104, Goid: 152, Labels: 360, MCurg: 192, MG0: 0},
	}
	c, err := good.config()
	if err != nil {
		t.Fatal(err)
	}
	if c.Flags != 3 || c.OffLabels != 360 || c.TlsG != -8 || c.OffM_curg != 192 {
		t.Errorf("config %+v", c)
	}
	for name, mod := range map[string]func(*CPUProcess){
		"empty text":      func(p *CPUProcess) { p.TextHi = p.TextLo },
		"no text":         func(p *CPUProcess) { p.TextLo, p.TextHi = 0, 0 },
		"negative goid":   func(p *CPUProcess) { p.Off.Goid = -1 },
		"huge m.curg":     func(p *CPUProcess) { p.Off.MCurg = 1 << 20 },
		"stack.hi apart":  func(p *CPUProcess) { p.Off.StackHi = 16 },
		"labels below -1": func(p *CPUProcess) { p.Off.Labels = -2 },
	} {
		p := good
		mod(&p)
		if _, err := p.config(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	p := good
	p.Off.Labels = -1
	if _, err := p.config(); err != nil {
		t.Errorf("no g.labels: %v", err)
	}
}

// spinHere burns CPU in a function of its own until stop is set.
//
//go:noinline
func spinHere(stop *atomic.Bool) uint64 {
	x := uint64(1)
	for !stop.Load() {
		for i := 0; i < 1000; i++ {
			x = x*6364136223846793005 + uint64(i)
		}
	}
	return x
}

// TestCPUSamplerSelf samples the test process itself while one goroutine
// spins: most samples are in spinHere, on that goroutine, found via R14,
// and two drains in a row do not lose or repeat samples.
func TestCPUSamplerSelf(t *testing.T) {
	s, err := LoadCPUSampler(CPUSamplerOptions{Frequency: 199})
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but the CPU sampler does not load: %v", err)
		}
		t.Skipf("CPU sampler unavailable here: %v", err)
	}
	defer s.Close()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin, err := gobin.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	defer bin.Close()
	l, err := golayout.ForVersion(runtime.Version()) // go test links without DWARF
	if err != nil {
		t.Fatal(err)
	}
	bias, err := bin.LoadBias(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	first, _ := bin.FuncByIndex(0)
	last, _ := bin.FuncByIndex(bin.NumFuncs() - 1)
	spin, ok := bin.FuncByName("github.com/goroscope/goroscope/bpf.spinHere")
	if !ok {
		t.Fatal("spinHere not in the pclntab")
	}
	// Counters before Watch: a sample between Watch and the read would be
	// drained but not counted.
	before, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	g := l.G
	err = s.Watch(uint32(os.Getpid()), CPUProcess{
		TextLo: first.Entry + bias, TextHi: last.End + bias, TLSG: -8, TrustR14: true,
		Off: CPUOffsets{
			StackLo: int32(g.StackLo), StackHi: int32(g.StackHi), M: int32(g.M),
			SchedSP: int32(g.SchedSP), SchedPC: int32(g.SchedPC), SchedBP: int32(g.SchedBP),
			Goid: int32(g.Goid), Labels: int32(g.Labels), MCurg: int32(l.M.Curg),
		},
	})
	if err != nil {
		t.Fatal(err)
	}

	var stop atomic.Bool
	goid := make(chan uint64)
	go func() {
		buf := make([]byte, 64)
		buf = buf[:runtime.Stack(buf, false)]
		f := bytes.Fields(buf)
		id, _ := strconv.ParseUint(string(f[1]), 10, 64)
		goid <- id
		spinHere(&stop)
	}()
	spinner := <-goid
	var drained, inSpin, onSpinner, viaR14 uint64
	drain := func() {
		st, err := s.Drain(func(c *CPUSample) error {
			if c.PID != uint32(os.Getpid()) || len(c.User) == 0 {
				t.Errorf("sample of pid %d with %d PCs", c.PID, len(c.User))
				return nil
			}
			pc := c.User[0] - bias
			if pc >= spin.Entry && pc < spin.End {
				inSpin += c.Count
				if c.Goid == spinner {
					onSpinner += c.Count
				}
				if c.Flags&SampleR14 != 0 {
					viaR14 += c.Count
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		drained += st.Samples
	}
	time.Sleep(time.Second) // the workload: sampling windows of the spinner
	drain()
	time.Sleep(500 * time.Millisecond)
	stop.Store(true)
	// Stop sampling this process before the last drains: they run in it,
	// and a sample of them would be counted but never drained.
	if err := s.Unwatch(uint32(os.Getpid())); err != nil {
		t.Fatal(err)
	}
	drain()
	drain() // nothing left, nothing repeated
	after, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	lost := after.CountsFull + after.StacksFull + after.RegsFault - before.CountsFull - before.StacksFull - before.RegsFault
	t.Logf("%d samples drained (%d counted by the program, %d lost): %d in spinHere, %d on its goroutine %d, %d via R14",
		drained, after.Samples-before.Samples, lost, inSpin, onSpinner, spinner, viaR14)
	if drained+lost != after.Samples-before.Samples {
		t.Errorf("drained %d + lost %d != %d samples counted", drained, lost, after.Samples-before.Samples)
	}
	if inSpin < 30 || float64(onSpinner) < 0.95*float64(inSpin) || float64(viaR14) < 0.95*float64(inSpin) {
		t.Errorf("%d samples in spinHere, %d on goroutine %d, %d via R14: want >= 30, and >= 95%% each", inSpin, onSpinner, spinner, viaR14)
	}
}
