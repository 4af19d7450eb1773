package walk_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/goroscope/goroscope/collect/process"
	"github.com/goroscope/goroscope/collect/walk"
	"github.com/goroscope/goroscope/pkg/goroutinedump"
	"github.com/goroscope/goroscope/pkg/snapshot"
)

// genericCreatorSrc starts goroutines from a generic function, a generic
// method and a closure in a generic method, prints runtime.Stack(all) (the
// debug=2 format) and a marker line, then waits for stdin to close.
const genericCreatorSrc = `package main

import (
	"io"
	"os"
	"runtime"
)

type policy[T any] struct{ v T }

//go:noinline
func newDefaultPolicy[T any](v T, ready chan struct{}) *policy[T] {
	p := &policy[T]{v: v}
	go p.wait(ready)
	return p
}

//go:noinline
func (p *policy[T]) wait(ready chan struct{}) {
	ready <- struct{}{}
	select {}
}

//go:noinline
func (p *policy[T]) spawn(ready chan struct{}) {
	go func() {
		ready <- struct{}{}
		select {}
	}()
}

func main() {
	ready := make(chan struct{})
	p := newDefaultPolicy(true, ready)
	<-ready
	newDefaultPolicy("s", ready)
	<-ready
	p.spawn(ready)
	<-ready
	buf := make([]byte, 1<<20)
	os.Stdout.Write(buf[:runtime.Stack(buf, true)])
	os.Stdout.WriteString("\n--- end of dump\n")
	io.Copy(io.Discard, os.Stdin)
}
`

// TestCreatedByGeneric checks that a goroutine started in a generic function
// is "created by" the function's printed name (main.newDefaultPolicy[...],
// not its shape instantiation), with the runtime's file, line and offset, in
// the snapshot, its JSON and its text form.
func TestCreatedByGeneric(t *testing.T) {
	if testing.Short() {
		t.Skip("builds Go programs")
	}
	src := t.TempDir()
	for name, data := range map[string]string{
		"main.go": genericCreatorSrc,
		"go.mod":  "module example.com/generic\n\ngo 1.21\n",
	} {
		if err := os.WriteFile(filepath.Join(src, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, b := range []struct {
		name, toolchain string
		flags           []string
		cgo             bool
	}{
		{"local", "local", nil, false},
		{"go1.21.13-stripped", "go1.21.13", []string{"-ldflags=-s -w"}, false},
		{"go1.24.13-pie-external", "go1.24.13", []string{"-buildmode=pie", "-ldflags=-linkmode=external"}, true},
	} {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			bin := filepath.Join(t.TempDir(), "generic")
			cmd := exec.Command("go", append(append([]string{"build", "-o", bin}, b.flags...), ".")...)
			cmd.Dir = src
			cgo := "CGO_ENABLED=0"
			if b.cgo {
				cgo = "CGO_ENABLED=1"
			}
			cmd.Env = append(os.Environ(), "GOTOOLCHAIN="+b.toolchain, "GOFLAGS=", "GOWORK=off", cgo)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("build: %v\n%s", err, out)
			}
			checkCreatedBy(t, bin)
		})
	}
}

func checkCreatedBy(t *testing.T, bin string) {
	cmd := exec.Command(bin)
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
	var raw strings.Builder
	sc := bufio.NewScanner(stdout)
	for sc.Scan() && sc.Text() != "--- end of dump" {
		raw.WriteString(sc.Text() + "\n")
	}
	dump, err := goroutinedump.ParseString(raw.String())
	if err != nil {
		t.Fatalf("parse the runtime's dump: %v\n%s", err, raw.String())
	}

	at, err := process.Attach(cmd.Process.Pid)
	if err != nil {
		t.Fatalf("attach: %v", err)
	}
	defer at.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := walk.NewSnapshotter(at, walk.ProcMemWalker{}).Snapshot(ctx)
	if err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	var text, js bytes.Buffer
	if err := snapshot.WriteText(&text, s, snapshot.TextOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := snapshot.WriteJSON(&js, s); err != nil {
		t.Fatal(err)
	}
	var decoded struct {
		Goroutines []struct {
			ID        uint64 `json:"id"`
			CreatedBy *struct {
				Function string `json:"function"`
			} `json:"created_by"`
		} `json:"goroutines"`
	}
	if err := json.Unmarshal(js.Bytes(), &decoded); err != nil {
		t.Fatal(err)
	}
	jsonCreator := map[uint64]string{}
	for _, g := range decoded.Goroutines {
		if g.CreatedBy != nil {
			jsonCreator[g.ID] = g.CreatedBy.Function
		}
	}
	ourLines, runtimeLines := createdByLines(text.String()), createdByLines(raw.String())
	byID := map[uint64]*snapshot.Goroutine{}
	for i := range s.Goroutines {
		byID[s.Goroutines[i].ID] = &s.Goroutines[i]
	}

	generic := map[string]bool{}
	for _, d := range dump {
		if d.CreatedBy == nil || !strings.HasPrefix(d.CreatedBy.Function, "main.") {
			continue
		}
		want := d.CreatedBy
		g, ok := byID[d.ID]
		if !ok {
			t.Errorf("goroutine %d (created by %s) is not in the snapshot", d.ID, want.Function)
			continue
		}
		c := g.CreatedBy
		if c == nil {
			t.Errorf("goroutine %d: no creator, runtime says %s", d.ID, want.Function)
			continue
		}
		if c.Function != want.Function || c.File != want.File || c.Line != want.Line ||
			c.Offset != want.PCOffset || g.ParentID != d.ParentID {
			t.Errorf("goroutine %d: created by %s in goroutine %d at %s:%d +%#x; runtime says %s in goroutine %d at %s:%d +%#x",
				d.ID, c.Function, g.ParentID, c.File, c.Line, c.Offset, want.Function, d.ParentID, want.File, want.Line, want.PCOffset)
		}
		if jsonCreator[d.ID] != want.Function {
			t.Errorf("goroutine %d: JSON created_by.function %q, runtime says %q", d.ID, jsonCreator[d.ID], want.Function)
		}
		if ourLines[d.ID] != runtimeLines[d.ID] {
			t.Errorf("goroutine %d: text\n%s\nruntime\n%s", d.ID, ourLines[d.ID], runtimeLines[d.ID])
		}
		if strings.Contains(want.Function, "[...]") {
			generic[want.Function] = true
		}
	}
	for _, fn := range []string{"main.newDefaultPolicy[...]", "main.(*policy[...]).spawn"} {
		if !generic[fn] {
			t.Errorf("no goroutine created by %s in the runtime's dump:\n%s", fn, raw.String())
		}
	}
}

// createdByLines maps goroutine ids to the "created by" line and the
// location line below it in a text dump.
func createdByLines(dump string) map[uint64]string {
	out := map[uint64]string{}
	for _, block := range strings.Split(dump, "\n\n") {
		gs, err := goroutinedump.ParseString(block + "\n")
		if err != nil || len(gs) != 1 {
			continue
		}
		lines := strings.Split(block, "\n")
		for i, l := range lines {
			if strings.HasPrefix(l, "created by ") && i+1 < len(lines) {
				out[gs[0].ID] = l + "\n" + lines[i+1]
			}
		}
	}
	return out
}
