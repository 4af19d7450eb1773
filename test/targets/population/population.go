package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
)

// group describes one set of goroutines parked in the same way.
type group struct {
	Name string `json:"name"`
	// Count is the number of goroutines in the group (len(IDs) once ready).
	Count int `json:"count"`
	// Status is the most likely text of the traceback header's bracket
	// (the wait reason) for this toolchain; Statuses lists every acceptable one.
	Status   string   `json:"status"`
	Statuses []string `json:"statuses"`
	// Labels are the pprof labels set on every goroutine of the group.
	Labels map[string]string `json:"labels,omitempty"`
	// LockedToThread is true when the goroutines called runtime.LockOSThread.
	LockedToThread bool `json:"locked_to_thread,omitempty"`
	// Frame is a function name (as printed in tracebacks) present in every
	// stack of the group.
	Frame string `json:"frame"`
	// MinFrames is a lower bound of printed frames (deep groups only).
	MinFrames int `json:"min_frames,omitempty"`
	// Elided is true when the traceback must contain a "frames elided" line.
	Elided bool `json:"elided,omitempty"`
	// IDs are the goroutine ids, each recorded by the goroutine itself.
	IDs []uint64 `json:"ids"`
}

// description is the JSON served at /population.
type description struct {
	PID    int      `json:"pid"`
	Go     string   `json:"go"`
	Groups []*group `json:"groups"`
}

// population owns the groups and everything the parked goroutines hold on
// to (channels, locks, file descriptors), so nothing is garbage collected.
type population struct {
	mu      sync.Mutex
	groups  []*group
	started sync.WaitGroup
	keep    []any // objects that must stay reachable (fds, conns, locks)
	grow    *group
	growCh  chan int
}

func newPopulation() *population {
	return &population{growCh: make(chan int)}
}

// addGroup registers a group; its Count is filled in by spawn.
func (p *population) addGroup(g *group) *group {
	if len(g.Statuses) == 0 {
		g.Statuses = []string{g.Status}
	}
	g.IDs = []uint64{}
	p.mu.Lock()
	p.groups = append(p.groups, g)
	p.mu.Unlock()
	return g
}

// spawn starts n goroutines that record their id in g and then run body,
// which must block forever.
func (p *population) spawn(g *group, n int, body func()) {
	p.mu.Lock()
	g.Count += n
	p.mu.Unlock()
	for i := 0; i < n; i++ {
		p.started.Add(1)
		go func() {
			p.record(g)
			body()
		}()
	}
}

// record appends the calling goroutine's id to g.
func (p *population) record(g *group) {
	id := goid()
	p.mu.Lock()
	g.IDs = append(g.IDs, id)
	p.mu.Unlock()
	p.started.Done()
}

// hold keeps v reachable for the life of the process.
func (p *population) hold(v any) {
	p.mu.Lock()
	p.keep = append(p.keep, v)
	p.mu.Unlock()
}

func (p *population) serveHTTP(w http.ResponseWriter, _ *http.Request) {
	p.mu.Lock()
	d := description{PID: os.Getpid(), Go: runtime.Version(), Groups: make([]*group, 0, len(p.groups))}
	for _, g := range p.groups {
		c := *g
		c.IDs = append([]uint64(nil), g.IDs...)
		d.Groups = append(d.Groups, &c)
	}
	p.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(d)
}

// goid returns the calling goroutine's id, parsed from the first line of
// its own traceback ("goroutine 18 [running]:").
func goid() uint64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b = bytes.TrimPrefix(b, []byte("goroutine "))
	if i := bytes.IndexByte(b, ' '); i > 0 {
		b = b[:i]
	}
	id, err := strconv.ParseUint(string(b), 10, 64)
	if err != nil {
		panic("population: cannot parse goroutine id from " + strings.TrimSpace(string(buf[:])))
	}
	return id
}

// goMinor returns the minor version of the running toolchain (21 for
// go1.21.13); development builds count as very new.
func goMinor() int {
	v := strings.TrimPrefix(runtime.Version(), "go1.")
	if i := strings.IndexAny(v, ".rcb "); i >= 0 {
		v = v[:i]
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 1 << 20
	}
	return n
}
