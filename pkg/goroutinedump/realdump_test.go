package goroutinedump

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The testdata/go1.XX.YY-MODE.txt files are /debug/pprof/goroutine?debug=2
// dumps of test/targets/population (-n 1) built with each toolchain,
// captured by `go test ./test/targettest -run TestAllToolchains -capture DIR`.
// MODE is default, ancestors (GODEBUG=tracebackancestors=2) or labels
// (GODEBUG=tracebacklabels=1, go1.26+); crash files are the stderr of a
// SIGQUIT with GOTRACEBACK=system (gp=/m= headers, fp/sp/pc, runtime frames).

// realDumpWant lists facts every population dump must show.
type realDumpWant struct {
	status string // a status some goroutine must have
	frame  string // a function of that goroutine
}

func TestRealDumps(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "go1.*.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Skip("no captured dumps in testdata")
	}
	for _, name := range files {
		base := strings.TrimSuffix(filepath.Base(name), ".txt")
		version, mode, _ := strings.Cut(base, "-")
		t.Run(base, func(t *testing.T) {
			raw, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			parse := ParseString
			if mode == "crash" {
				parse = func(s string) ([]Goroutine, error) { return ParseCrash(strings.NewReader(s)) }
			}
			gs, err := parse(string(raw))
			if err != nil {
				t.Fatal(err)
			}
			if n := strings.Count("\n"+string(raw), "\ngoroutine "); len(gs) != n {
				t.Fatalf("%d goroutines, want %d headers", len(gs), n)
			}
			checkPopulationDump(t, gs, minorVersion(t, version), mode)
			if mode == "crash" {
				if minorVersion(t, version) >= 22 && gs[0].GAddr == 0 {
					t.Errorf("goroutine %d: no gp= in a GOTRACEBACK=system crash dump", gs[0].ID)
				}
				return
			}
			var b strings.Builder
			if err := Format(&b, gs); err != nil {
				t.Fatal(err)
			}
			if b.String() != string(raw) {
				t.Fatalf("Format(Parse(dump)) differs from the dump:\n%s", firstDiff(b.String(), string(raw)))
			}
		})
	}
}

// checkPopulationDump checks statuses and frames the population target
// must produce with go1.<minor>.
func checkPopulationDump(t *testing.T, gs []Goroutine, minor int, mode string) {
	wg := "semacquire"
	if minor >= 24 {
		wg = "sync.WaitGroup.Wait"
	}
	wants := []realDumpWant{
		{"chan receive", "main.parkChanRecv"},
		{"chan receive (nil chan)", "main.parkChanRecvNil"},
		{"chan send", "main.parkChanSend"},
		{"select", "main.parkSelect"},
		{"select (no cases)", "main.parkSelectNoCases"},
		{"sync.Mutex.Lock", "main.parkMutex"},
		{"sync.RWMutex.RLock", "main.parkRLock"},
		{"sync.RWMutex.Lock", "main.parkWLock"},
		{wg, "main.parkWaitGroup"},
		{"sync.Cond.Wait", "main.parkCond"},
		{"sleep", "main.parkSleep"},
		{"IO wait", "main.parkAccept"},
		{"IO wait", "main.parkConnRead"},
		{"syscall", "main.parkSyscallRead"},
		{"chan receive", "main.parkLocked"},
		{"chan receive", "main.inlC"},
		{"chan receive", "main.parkGeneric[...]"},
		{"chan receive", "main.closureBody.func1.1"},
		{"chan receive", "main.(*worker).park"},
		{"chan receive", "main.parkLabeled"},
	}
	for _, w := range wants {
		if findGoroutine(gs, w.status, w.frame) == nil {
			t.Errorf("no goroutine [%s] with frame %s", w.status, w.frame)
		}
	}
	if g := findGoroutine(gs, "chan receive", "main.parkLocked"); g != nil && !g.LockedToThread {
		t.Errorf("goroutine %d in main.parkLocked is not locked to thread", g.ID)
	}
	if g := findGoroutine(gs, "chan receive", "main.inlC"); g != nil && mode != "crash" {
		if f := g.Frames[0]; f.Function != "main.inlC" || !f.Inlined || f.HasPCOffset {
			t.Errorf("leaf frame %+v, want inlined main.inlC without a PC offset", f)
		}
	}
	elided := false
	for _, g := range gs {
		if g.ElidedFrames > 0 && hasFunction(g.Frames, "main.recurse") {
			elided = true
		}
		if g.ID != 1 && g.CreatedBy != nil && g.ParentID == 0 {
			t.Errorf("goroutine %d: created by %s without \"in goroutine N\"", g.ID, g.CreatedBy.Function)
		}
		if mode == "ancestors" && g.CreatedBy != nil && g.ParentID == 1 && len(g.Ancestors) == 0 && strings.HasPrefix(g.CreatedBy.Function, "main.") {
			t.Errorf("goroutine %d: no ancestors with tracebackancestors=2", g.ID)
		}
		if mode == "labels" && hasFunction(g.Frames, "main.parkLabeled") && g.Labels["role"] == "" {
			t.Errorf("goroutine %d: no labels with tracebacklabels=1", g.ID)
		}
	}
	if !elided {
		t.Error("no goroutine with elided main.recurse frames")
	}
}

func hasFunction(fs []Frame, fn string) bool {
	for _, f := range fs {
		if f.Function == fn {
			return true
		}
	}
	return false
}

func findGoroutine(gs []Goroutine, status, frame string) *Goroutine {
	for i := range gs {
		if gs[i].Status != status {
			continue
		}
		for _, f := range gs[i].Frames {
			if f.Function == frame {
				return &gs[i]
			}
		}
	}
	return nil
}

func minorVersion(t *testing.T, v string) int {
	s := strings.TrimPrefix(v, "go1.")
	s, _, _ = strings.Cut(s, ".")
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("bad version %q in testdata file name", v)
	}
	return n
}

// firstDiff shows the first differing line of two texts.
func firstDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < len(g) && i < len(w); i++ {
		if g[i] != w[i] {
			return "line " + strconv.Itoa(i+1) + ":\n got: " + g[i] + "\nwant: " + w[i]
		}
	}
	return "lengths differ: got " + strconv.Itoa(len(g)) + " lines, want " + strconv.Itoa(len(w))
}
