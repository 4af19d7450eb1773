package cpu_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/goroscope/goroscope/bpf"
	"github.com/goroscope/goroscope/collect/cpu"
	"github.com/goroscope/goroscope/collect/walk"
	"github.com/goroscope/goroscope/pkg/snapshot"
	"github.com/goroscope/goroscope/test/targettest"
)

// sampleWindow is how long each build is sampled.
const sampleWindow = 2 * time.Second

// minSamples is the fewest samples a window must yield to judge shares.
const minSamples = 40

// TestSamplesMatchTarget samples cpuburn (two goroutines in main.burnCPU,
// one under pprof.Do labels) built with several toolchains, stripped and
// PIE, and checks that main.burnCPU has at least 90% of the samples, that
// the goroutine ids on its samples are the burners' ids as the target and a
// snapshot taken at the same time report them, that the labels are on the
// labelled burner's samples only, and that the top functions agree with
// the target's own /debug/pprof/profile taken over the same window.
func TestSamplesMatchTarget(t *testing.T) {
	s := newSampler(t, cpu.Options{})
	builds := []targettest.BuildOpts{
		{},
		{Stripped: true},
		{GoVersion: "go1.21.13"},
		{GoVersion: "go1.23.12", Stripped: true, PIE: true},
	}
	for _, o := range builds {
		name := fmt.Sprintf("%s/stripped=%v/pie=%v", displayVersion(o.GoVersion), o.Stripped, o.PIE)
		t.Run(name, func(t *testing.T) {
			b := startBurn(t, o, "-burners", "2", "-labeled", "1")
			tgt := attach(t, b.PID)
			if err := s.Add(tgt); err != nil {
				t.Fatal(err)
			}
			defer func() {
				if err := s.Remove(b.PID); err != nil {
					t.Error(err)
				}
			}()
			if _, err := s.Drain(context.Background()); err != nil { // start the window now
				t.Fatal(err)
			}

			// The target's own CPU profile and a snapshot, over the same window.
			var wg sync.WaitGroup
			var own *profile.Profile
			var ownErr error
			wg.Add(1)
			go func() {
				defer wg.Done()
				own, ownErr = fetchProfile(b.URL(fmt.Sprintf("/debug/pprof/profile?seconds=%d", int(sampleWindow/time.Second))))
			}()
			time.Sleep(sampleWindow / 2) // the snapshot in the middle of the profile's window
			snap, err := walk.NewSnapshotter(tgt, walk.ProcMemWalker{}).Snapshot(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			wg.Wait()
			if ownErr != nil {
				t.Fatal(ownErr)
			}
			iv, err := s.Drain(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			p := iv.Processes[b.PID]
			if p == nil {
				t.Fatalf("no samples of pid %d in %v", b.PID, iv.End.Sub(iv.Start))
			}
			checkBurnSamples(t, b, p, iv, snap)
			compareWithOwn(t, p, own)
		})
	}
}

// checkBurnSamples asserts the share, goroutines and labels of the burners' samples.
func checkBurnSamples(t *testing.T, b *burnTarget, p *cpu.Process, iv *cpu.Interval, snap *snapshot.Snapshot) {
	t.Helper()
	window := iv.End.Sub(iv.Start)
	// The machine may be shared: ask for enough samples to judge shares.
	if p.Total < minSamples {
		t.Fatalf("%d samples in %v at %d Hz, want >= %d", p.Total, window, iv.Frequency, minSamples)
	}
	burners := b.goids("burn")
	var inBurn, r14 uint64
	goids := map[uint64]uint64{}
	for i := range p.Samples {
		smp := &p.Samples[i]
		if !hasFrame(smp, fnBurn) {
			continue
		}
		inBurn += smp.Count
		goids[smp.Goid] += smp.Count
		if smp.Flags&bpf.SampleR14 != 0 {
			r14 += smp.Count
		}
		sp, ok := burners[smp.Goid]
		if !ok {
			t.Errorf("sample in %s on goroutine %d, not a burner (%v): %s", fnBurn, smp.Goid, slices.Sorted(maps.Keys(burners)), stackString(smp))
			continue
		}
		if !maps.Equal(smp.Labels, sp.Labels) {
			t.Errorf("goroutine %d: sample labels %v, want %v", smp.Goid, smp.Labels, sp.Labels)
		}
		if fn := userFunc(smp.Frames); fn != fnBurn {
			t.Errorf("the innermost function outside the runtime of a %s sample is %s: %s", fnBurn, fn, stackString(smp))
		}
		if last := smp.Frames[len(smp.Frames)-1].Function; last != "runtime.goexit" {
			t.Errorf("a %s sample's root is %s, not runtime.goexit: %s", fnBurn, last, stackString(smp))
		}
	}
	share := float64(inBurn) / float64(p.Total)
	t.Logf("%s: %d samples in %v (%.0f/s), %.1f%% in %s, %.1f%% of those with g from R14; per goroutine %v; dropped %d",
		p.GoVersion, p.Total, window.Round(time.Millisecond), float64(p.Total)/window.Seconds(), 100*share, fnBurn,
		100*float64(r14)/float64(max(inBurn, 1)), goids, iv.Dropped)
	if share < 0.90 {
		t.Errorf("%s has %.1f%% of the samples, want >= 90%%", fnBurn, 100*share)
	}
	if float64(r14) < 0.9*float64(inBurn) {
		t.Errorf("only %d of %d burner samples found g through R14", r14, inBurn)
	}
	if !slices.Equal(slices.Sorted(maps.Keys(goids)), slices.Sorted(maps.Keys(burners))) {
		t.Errorf("goroutines on %s samples %v, the target's burners are %v", fnBurn, slices.Sorted(maps.Keys(goids)), slices.Sorted(maps.Keys(burners)))
	}
	// The snapshot taken during the window names the same goroutines,
	// with the same labels.
	inSnap := map[uint64]map[string]string{}
	for _, g := range snap.Goroutines {
		if g.CreatedBy != nil && strings.HasPrefix(g.CreatedBy.Function, "main.(*burners).start") {
			inSnap[g.ID] = g.Labels
		}
	}
	if !slices.Equal(slices.Sorted(maps.Keys(goids)), slices.Sorted(maps.Keys(inSnap))) {
		t.Errorf("goroutines on %s samples %v, the snapshot's burners are %v", fnBurn, slices.Sorted(maps.Keys(goids)), slices.Sorted(maps.Keys(inSnap)))
	}
	for id, l := range inSnap {
		if !maps.Equal(l, burners[id].Labels) {
			t.Errorf("snapshot: goroutine %d has labels %v, the target says %v", id, l, burners[id].Labels)
		}
	}

	// The profile carries them too.
	prof := iv.Profile(b.PID)
	if err := prof.CheckValid(); err != nil {
		t.Fatalf("invalid profile: %v", err)
	}
	if prof.Period != int64(time.Second)/int64(iv.Frequency) || prof.PeriodType.Type != "cpu" || len(prof.SampleType) != 2 ||
		prof.SampleType[0].Type != "samples" || prof.SampleType[1].Unit != "nanoseconds" {
		t.Errorf("profile types: period %d %v, sample types %v", prof.Period, prof.PeriodType, prof.SampleType)
	}
	var labelled, total int64
	for _, ps := range prof.Sample {
		total += ps.Value[0]
		if ps.Value[1] != ps.Value[0]*prof.Period {
			t.Errorf("sample of %d has %d ns, want %d", ps.Value[0], ps.Value[1], ps.Value[0]*prof.Period)
		}
		goid := uint64(0)
		if v := ps.NumLabel[cpu.LabelGoid]; len(v) == 1 {
			goid = uint64(v[0])
		}
		if want := burners[goid].Labels; want != nil {
			if got := ps.Label["burner"]; len(got) != 1 || got[0] != want["burner"] {
				t.Errorf("profile sample of goroutine %d: label burner=%v, want %q", goid, got, want["burner"])
			}
			labelled += ps.Value[0]
		}
	}
	if total != int64(p.Total) || labelled == 0 {
		t.Errorf("profile: %d samples (want %d), %d labelled (want > 0)", total, p.Total, labelled)
	}
}

// compareWithOwn checks that the top function agrees with the target's own
// CPU profile: per sample, the physical function of the innermost frame
// outside package runtime (inlined calls fold into the function they were
// inlined into). Flat shares of single lines are not compared: under load
// Go's own profile moves samples taken at async safe points into
// runtime.asyncPreempt (its SIGPROF sees the context SIGURG rewrote).
func compareWithOwn(t *testing.T, p *cpu.Process, own *profile.Profile) {
	t.Helper()
	ours := map[string]float64{}
	for i := range p.Samples {
		smp := &p.Samples[i]
		ours[userFunc(smp.Frames)] += float64(smp.Count) / float64(p.Total)
	}
	theirs := map[string]float64{}
	total := 0.0
	for _, s := range own.Sample {
		total += float64(s.Value[0])
	}
	for _, s := range own.Sample {
		fn := "(runtime)"
	locs:
		for _, l := range s.Location {
			for _, ln := range l.Line {
				if !strings.HasPrefix(ln.Function.Name, "runtime.") {
					fn = l.Line[len(l.Line)-1].Function.Name // the physical function
					break locs
				}
			}
		}
		theirs[fn] += float64(s.Value[0]) / total
	}
	top := func(m map[string]float64) string {
		return slices.MaxFunc(slices.Collect(maps.Keys(m)), func(a, b string) int {
			switch {
			case m[a] < m[b]:
				return -1
			case m[a] > m[b]:
				return 1
			}
			return strings.Compare(b, a)
		})
	}
	t.Logf("top function outside the runtime: ours %s %.1f%% (%d samples), the target's %s %.1f%% (%.0f samples)",
		top(ours), 100*ours[top(ours)], p.Total, top(theirs), 100*theirs[top(theirs)], total)
	if total < minSamples/2 {
		t.Fatalf("the target's own profile has %.0f samples", total)
	}
	if top(ours) != fnBurn || top(theirs) != fnBurn {
		t.Errorf("top function: ours %s, the target's %s, want %s", top(ours), top(theirs), fnBurn)
	}
	if d := ours[fnBurn] - theirs[fnBurn]; d > 0.1 || d < -0.1 {
		t.Errorf("share of %s: ours %.1f%%, the target's %.1f%%", fnBurn, 100*ours[fnBurn], 100*theirs[fnBurn])
	}
	// Both count the process's CPU time: Go's at 100 Hz, ours at 99 Hz.
	if r := float64(p.Total) / 99 / (total / 100); r < 0.65 || r > 1.5 {
		t.Errorf("CPU time: ours %d samples, the target's %.0f: ratio %.2f", p.Total, total, r)
	}
}

// userFunc is the physical function of the innermost frame outside package
// runtime, or "(runtime)".
func userFunc(frames []snapshot.Frame) string {
	for i, f := range frames {
		if strings.HasPrefix(f.Function, "runtime.") {
			continue
		}
		for ; i < len(frames)-1 && frames[i].Inlined; i++ {
		}
		return frames[i].Function
	}
	return "(runtime)"
}

func fetchProfile(url string) (*profile.Profile, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil || resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s %v", url, resp.Status, err)
	}
	return profile.Parse(bytes.NewReader(b))
}

// TestNativeFrames samples goroutines spinning in assembly that uses BP and
// R14 as scratch registers and in C built without frame pointers: their
// goroutine is found through TLS, and their stacks are cut short rather
// than filled with garbage.
func TestNativeFrames(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("the assembly spinner is amd64")
	}
	s := newSampler(t, cpu.Options{})
	b := startBurn(t, targettest.BuildOpts{Cgo: true}, "-burners", "0", "-labeled", "0", "-asm", "1", "-cgo", "1")
	tgt := attach(t, b.PID)
	if err := s.Add(tgt); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(sampleWindow) // the workload: one window of samples
	iv, err := s.Drain(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	p := iv.Processes[b.PID]
	if p == nil {
		t.Fatal("no samples")
	}
	asm, cgo := b.goids("asm"), b.goids("cgo")
	var asmN, asmTLS, cgoN, cgoGo uint64
	for i := range p.Samples {
		smp := &p.Samples[i]
		switch {
		case smp.Frames[0].Function == fnAsm:
			asmN += smp.Count
			if _, ok := asm[smp.Goid]; ok && smp.Flags&bpf.SampleTLS != 0 {
				asmTLS += smp.Count
			}
			// The caller comes from the word at sp (the function has no
			// frame); BP is no frame pointer, so the walk ends there.
			for _, f := range smp.Frames {
				// asmLoop is inlined into its method value wrapper.
				if f.Function != fnAsm && f.Function != "main.(*burners).asmLoop" && f.Function != "main.(*burners).asmLoop-fm" {
					t.Errorf("asm sample has frame %s: %s", f.Function, stackString(smp))
				}
			}
			if len(smp.Frames) < 2 || !smp.Truncated {
				t.Errorf("asm sample lacks the caller or is not marked truncated (%v): %s", smp.Truncated, stackString(smp))
			}
		case hasFrame(smp, fnCgoLoop):
			cgoN += smp.Count
			if _, ok := cgo[smp.Goid]; !ok {
				t.Errorf("cgo sample on goroutine %d, want %v: %s", smp.Goid, slices.Collect(maps.Keys(cgo)), stackString(smp))
			}
			if strings.HasPrefix(smp.Frames[0].Function, "[") && hasFrame(smp, "runtime.cgocall") {
				cgoGo += smp.Count
			}
			for _, f := range smp.Frames[1:] {
				if strings.HasPrefix(f.Function, "[") {
					t.Errorf("native frame %s inside a cgo stack: %s", f.Function, stackString(smp))
				}
			}
			if last := smp.Frames[len(smp.Frames)-1].Function; last != "runtime.goexit" {
				t.Errorf("cgo sample's root is %s: %s", last, stackString(smp))
			}
		}
	}
	t.Logf("%d samples: %d in %s (%d with its goroutine from TLS), %d under %s (%d native leaf + Go stack through runtime.cgocall)",
		p.Total, asmN, fnAsm, asmTLS, cgoN, fnCgoLoop, cgoGo)
	if asmN < 20 || float64(asmTLS) < 0.9*float64(asmN) {
		t.Errorf("%d asm samples, %d attributed through TLS; want >= 20 and >= 90%%", asmN, asmTLS)
	}
	if cgoN < 20 || float64(cgoGo) < 0.9*float64(cgoN) {
		t.Errorf("%d cgo samples, %d with a native leaf and the Go stack; want >= 20 and >= 90%%", cgoN, cgoGo)
	}
}

// TestProcessExitsMidInterval stops the target in the middle of an
// interval: the drain still returns its samples, symbolised, marked Exited.
func TestProcessExitsMidInterval(t *testing.T) {
	s := newSampler(t, cpu.Options{})
	b := startBurn(t, targettest.BuildOpts{}, "-burners", "2", "-labeled", "1")
	tgt := attach(t, b.PID)
	if err := s.Add(tgt); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(sampleWindow / 2) // the workload: half a window of samples
	b.Stop()                     // returns once the process has exited
	iv, err := s.Drain(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	p := iv.Processes[b.PID]
	if p == nil {
		t.Fatal("the samples of the exited process were lost")
	}
	var inBurn uint64
	for i := range p.Samples {
		if hasFrame(&p.Samples[i], fnBurn) {
			inBurn += p.Samples[i].Count
		}
	}
	t.Logf("exited: %v, %d samples, %d in %s, errors %q", p.Exited, p.Total, inBurn, fnBurn, p.Errors)
	if !p.Exited || len(p.Errors) == 0 || !strings.Contains(p.Errors[0], "exited") {
		t.Errorf("Exited %v, errors %q: want the exit noted", p.Exited, p.Errors)
	}
	if p.Total < 20 || float64(inBurn) < 0.9*float64(p.Total) {
		t.Errorf("%d samples, %d in %s: want >= 20 and >= 90%%", p.Total, inBurn, fnBurn)
	}
	if err := s.Remove(b.PID); err != nil {
		t.Fatal(err)
	}
	iv, err = s.Drain(context.Background())
	if err != nil || len(iv.Processes) != 0 {
		t.Errorf("drain after exit and Remove: %v, %d processes", err, len(iv.Processes))
	}
}

// TestKernelFrames samples a goroutine that spends its time in read(2):
// with KernelFrames its samples taken in the kernel start with named kernel
// functions and go on with the goroutine's user stack.
func TestKernelFrames(t *testing.T) {
	s := newSampler(t, cpu.Options{KernelFrames: true})
	if err := s.KernelSymbolsError(); err != nil {
		t.Fatalf("kernel symbols: %v", err)
	}
	b := startBurn(t, targettest.BuildOpts{}, "-burners", "0", "-labeled", "0", "-syscalls", "1")
	tgt := attach(t, b.PID)
	if err := s.Add(tgt); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(sampleWindow) // the workload: one window of samples
	iv, err := s.Drain(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	p := iv.Processes[b.PID]
	if p == nil {
		t.Fatal("no samples")
	}
	sys := b.goids("syscall")
	var onSys, inKernel, named, complete uint64
	var example string
	for i := range p.Samples {
		smp := &p.Samples[i]
		if _, ok := sys[smp.Goid]; !ok {
			continue
		}
		onSys += smp.Count
		if smp.Flags&bpf.SampleKernel == 0 {
			continue
		}
		inKernel += smp.Count
		nk := 0
		for nk < len(smp.Frames) && smp.Frames[nk].File == "[kernel.kallsyms]" {
			nk++
		}
		if nk > 0 && !strings.HasPrefix(smp.Frames[0].Function, "[") {
			named += smp.Count
		}
		if nk < len(smp.Frames) && hasFrame(smp, "main.(*burners).syscallLoop") && smp.Frames[len(smp.Frames)-1].Function == "runtime.goexit" {
			complete += smp.Count
		}
		if example == "" && nk > 0 {
			example = stackString(smp)
		}
	}
	t.Logf("%d samples of the syscall goroutine, %d in the kernel, %d with named kernel frames, %d with its whole user stack; e.g. %s",
		onSys, inKernel, named, complete, example)
	if onSys < minSamples || float64(inKernel) < 0.5*float64(onSys) {
		t.Errorf("%d samples, %d in the kernel: want >= %d, half in the kernel", onSys, inKernel, minSamples)
	}
	if float64(named) < 0.9*float64(inKernel) || float64(complete) < 0.9*float64(inKernel) {
		t.Errorf("of %d kernel samples, %d have named kernel frames and %d the whole user stack; want >= 90%% each", inKernel, named, complete)
	}
}
