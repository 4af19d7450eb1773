// Command callers records runtime.Callers stacks through inlined and non-inlined calls and prints
// them as JSON, for the gobin tests. With the argument "wait" it then blocks until stdin closes.
package main

import (
	"encoding/json"
	"io"
	"os"
	"reflect"
	"runtime"
	"sync"
)

type frame struct {
	Function string `json:"function"`
	File     string `json:"file"`
	Line     int    `json:"line"`
}

type stack struct {
	Name   string    `json:"name"`
	PCs    []uintptr `json:"pcs"`
	Frames []frame   `json:"frames"`
}

type output struct {
	MainMain uintptr `json:"main_main"` // run-time address of main.main, to compute the load bias
	Stacks   []stack `json:"stacks"`
}

var (
	mu     sync.Mutex
	stacks []stack
)

//go:noinline
func capture(name string) {
	pcs := make([]uintptr, 128)
	n := runtime.Callers(1, pcs)
	pcs = pcs[:n]
	s := stack{Name: name, PCs: pcs}
	fr := runtime.CallersFrames(pcs)
	for {
		f, more := fr.Next()
		s.Frames = append(s.Frames, frame{f.Function, f.File, f.Line})
		if !more {
			break
		}
	}
	mu.Lock()
	stacks = append(stacks, s)
	mu.Unlock()
}

// Small functions below are inlined by the compiler.

func leaf(name string) { capture(name) }

func inner(name string) {
	leaf(name)
}

func outer(name string) {
	inner(name)
}

//go:noinline
func notInlined(name string) {
	outer(name)
}

func inlinedCaller(name string) {
	notInlined(name)
}

type T struct{ n int }

func (t T) value(name string) { inner(name) }

//go:noinline
func (t *T) pointer(name string) {
	t.value(name)
}

//go:noinline
func generic[E any](name string, e E) {
	outer(name)
}

//go:noinline
func deep(name string, n int) {
	if n == 0 {
		inlinedCaller(name)
		return
	}
	deep(name, n-1)
}

// symbolize reads {"main_main": link-time address of main.main, "pcs": [link-time symbol pcs]}
// from stdin and prints, for each pc, the frames runtime.CallersFrames reports with inlined
// calls expanded.
func symbolize() {
	var in struct {
		MainMain uintptr   `json:"main_main"`
		PCs      []uintptr `json:"pcs"`
	}
	if err := json.NewDecoder(os.Stdin).Decode(&in); err != nil {
		os.Exit(2)
	}
	mainPC := reflect.ValueOf(main).Pointer()
	bias := mainPC - in.MainMain
	out := make([][]frame, len(in.PCs))
	for i, pc := range in.PCs {
		// A second, different pc makes CallersFrames expand the inlined callers of the first;
		// it contributes exactly one frame (main.main at its entry), dropped below.
		fr := runtime.CallersFrames([]uintptr{pc + bias + 1, mainPC + 1})
		var fs []frame
		for {
			f, more := fr.Next()
			fs = append(fs, frame{f.Function, f.File, f.Line})
			if !more {
				break
			}
		}
		out[i] = fs[:len(fs)-1]
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		os.Exit(1)
	}
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "symbolize" {
		symbolize()
		return
	}
	capture("direct")
	leaf("leaf")
	outer("outer")
	inlinedCaller("inlined-caller")
	(&T{}).pointer("method")
	generic("generic-int", 1)
	generic("generic-string", "x")
	func() { outer("closure") }()
	deep("deep", 3)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		inlinedCaller("goroutine")
	}()
	wg.Wait()
	func() {
		defer outer("deferred")
	}()

	out := output{MainMain: reflect.ValueOf(main).Pointer(), Stacks: stacks}
	enc := json.NewEncoder(os.Stdout)
	if err := enc.Encode(out); err != nil {
		os.Exit(1)
	}
	if len(os.Args) > 1 && os.Args[1] == "wait" {
		io.Copy(io.Discard, os.Stdin)
	}
}
