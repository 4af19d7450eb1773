package goroutinedump

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse checks that Parse never panics, returns only well-formed
// results, and that Format(Parse(x)) parses back to the same goroutines.
func FuzzParse(f *testing.F) {
	seeds := []string{
		"goroutine 1 [running]:\nmain.main()\n\t/m.go:1 +0x1\n",
		"goroutine 7 gp=0xc000003dc0 m=nil [select (no cases) (scan), 3 minutes, locked to thread]:\nmain.park(...)\n\t/src/p.go:9\n",
		"goroutine 11 [chan send (leaked) (scan) (durable), synctest bubble 4 labels:{\"a\": \"\\u00e9\"}]:\nmain.f()\n\t/a.go:1\n",
		"goroutine 20 [chan receive]:\nmain.r(0x0?)\n\t/src/r.go:5 +0x1d\n...7 frames elided...\nnon-Go function at pc=0x7f00aa\ncfunc\n\t/src/c.c:3 pc=0x7f00bb\ncreated by main.start in goroutine 19\n\t/src/r.go:30 +0x44\n[originating from goroutine 19]:\nmain.start(...)\n\t/src/r.go:30 +0x43\n...additional frames elided...\n",
		"goroutine 1 gp=0xc000002380 m=0 mp=0x5a3ba0 [running]:\npanic({0x4a1b20?, 0x5a3c50?})\n\t/go/src/runtime/panic.go:770 +0x132 fp=0xc00006af50 sp=0xc00006aea0 pc=0x4318f2\n",
	}
	for _, s := range seeds {
		f.Add(s)
	}
	// A few real dumps, cut to keep the fuzzer fast.
	files, _ := filepath.Glob(filepath.Join("testdata", "*-default.txt"))
	for i, name := range files {
		if i >= 3 {
			break
		}
		if b, err := os.ReadFile(name); err == nil {
			f.Add(string(b[:min(len(b), 4096)]))
		}
	}
	f.Fuzz(func(t *testing.T, in string) {
		gs, err := ParseString(in)
		if err != nil {
			if !strings.Contains(err.Error(), "line ") {
				t.Fatalf("error without a line number: %v", err)
			}
			return
		}
		for _, g := range gs {
			if g.Status == "" {
				t.Fatalf("goroutine %d parsed with an empty status", g.ID)
			}
		}
		var b strings.Builder
		if err := Format(&b, gs); err != nil {
			t.Fatal(err)
		}
		again, err := ParseString(b.String())
		if err != nil {
			t.Fatalf("Format output does not parse: %v\n%s", err, b.String())
		}
		if len(again) != len(gs) {
			t.Fatalf("round trip: %d goroutines, want %d", len(again), len(gs))
		}
		for i := range gs {
			if again[i].ID != gs[i].ID || again[i].Status != gs[i].Status || len(again[i].Frames) != len(gs[i].Frames) {
				t.Fatalf("round trip changed goroutine %d: %+v -> %+v", gs[i].ID, gs[i], again[i])
			}
		}
	})
}
