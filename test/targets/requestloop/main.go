// Command requestloop is a goroscope test target that works the Go runtime
// the way a busy service does, for the benchmark of what the crash probes
// cost a process (test/bench, scenario crashprobes). -workers goroutines
// each run a loop of requests; a request decodes a JSON body, fans out to
// -fanout new goroutines that each allocate and hash a buffer of a few KiB,
// gathers their results under a mutex, encodes a JSON response and keeps it
// in a ring of -keep recent responses (a live heap for the GC to mark).
// Every -panic-every requests the handler panics instead (an error value, an
// index out of range, a nil pointer dereference, in turn) and the request's
// deferred recover turns the panic into an error response, as net/http's
// server does: the runtime's gopanic and recovery run, its fatalpanic never.
// It serves net/http/pprof and /ops on 127.0.0.1, prints one JSON line once
// the workers run, and exits when stdin closes or on SIGTERM/SIGINT.
//
// Ready line: {"pid":123,"pprof":"127.0.0.1:PORT","go":"go1.26.8","goroutines":N}
//
// Endpoints:
//
//	/ops              requests done, panics recovered and goroutines started
//	                  so far, with the runtime's GC cycles and bytes allocated (JSON)
//	/debug/pprof/...  net/http/pprof
package main

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"runtime/metrics"
	"sync"
	"sync/atomic"

	"goroscope.test/targets/internal/ready"
)

type config struct {
	workers, fanout, panicEvery, keep int
	stdin                             bool
}

func main() {
	var cfg config
	flag.IntVar(&cfg.workers, "workers", 2, "goroutines running the request loop")
	flag.IntVar(&cfg.fanout, "fanout", 4, "goroutines each request starts")
	flag.IntVar(&cfg.panicEvery, "panic-every", 4, "every Nth request panics and recovers (0: none)")
	flag.IntVar(&cfg.keep, "keep", 65536, "recent responses kept alive")
	flag.BoolVar(&cfg.stdin, "stdin", true, "exit when stdin reaches EOF")
	flag.Parse()
	if err := run(cfg); err != nil {
		fmt.Fprintf(os.Stderr, "requestloop: %v\n", err)
		os.Exit(1)
	}
}

func run(cfg config) error {
	switch {
	case cfg.workers < 1 || cfg.workers > 256:
		return fmt.Errorf("bad flags: -workers must be in 1..256")
	case cfg.fanout < 1 || cfg.fanout > 256:
		return fmt.Errorf("bad flags: -fanout must be in 1..256")
	case cfg.panicEvery < 0:
		return fmt.Errorf("bad flags: -panic-every must not be negative")
	case cfg.keep < 1 || cfg.keep > 1<<20:
		return fmt.Errorf("bad flags: -keep must be in 1..2^20")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	s := &server{cfg: cfg, ring: make([][]byte, cfg.keep)}
	http.HandleFunc("/ops", s.serveOps)
	go func() { _ = http.Serve(ln, nil) }()
	for i := 0; i < cfg.workers; i++ {
		go s.loop(uint64(i))
	}
	if err := ready.Announce(ln); err != nil {
		return err
	}
	<-ready.Done(cfg.stdin)
	return nil
}

// server holds the counters and the ring of recent responses.
type server struct {
	cfg        config
	ops        atomic.Uint64
	panics     atomic.Uint64
	goroutines atomic.Uint64
	mu         sync.Mutex
	ring       [][]byte
	next       int
}

// request is what a request's body decodes to.
type request struct {
	ID     uint64            `json:"id"`
	User   string            `json:"user"`
	Sizes  []int             `json:"sizes"`
	Labels map[string]string `json:"labels"`
}

// response is what a request answers.
type response struct {
	ID      uint64   `json:"id"`
	Status  int      `json:"status"`
	Error   string   `json:"error,omitempty"`
	Digests []string `json:"digests,omitempty"`
}

// loop runs requests until the process exits.
func (s *server) loop(worker uint64) {
	for n := uint64(0); ; n++ {
		id := worker<<40 | n
		body, _ := json.Marshal(request{
			ID: id, User: fmt.Sprintf("user-%d", id%1000),
			Sizes:  []int{1024 + int(id%7)*512, 2048, 4096 + int(id%3)*1024, 512},
			Labels: map[string]string{"route": "/v1/items", "worker": fmt.Sprint(worker)},
		})
		resp := s.serve(body)
		out, _ := json.Marshal(resp)
		s.mu.Lock()
		s.ring[s.next] = out
		s.next = (s.next + 1) % len(s.ring)
		s.mu.Unlock()
		s.ops.Add(1)
	}
}

var errBadItem = errors.New("requestloop: bad item")

// nilItem is nil: the handler's third kind of panic dereferences it.
var nilItem *response

// serve handles one request; a panic in handle becomes a 500 response.
func (s *server) serve(body []byte) (resp response) {
	defer func() {
		if r := recover(); r != nil {
			s.panics.Add(1)
			resp = response{Status: 500, Error: fmt.Sprint(r)}
		}
	}()
	var req request
	if err := json.Unmarshal(body, &req); err != nil {
		return response{Status: 400, Error: err.Error()}
	}
	return s.handle(&req)
}

// handle fans the request out to goroutines and gathers their digests; every
// -panic-every requests it panics in one of three ways.
//
//go:noinline
func (s *server) handle(req *request) response {
	if e := uint64(s.cfg.panicEvery); e > 0 && req.ID%e == e-1 {
		switch (req.ID / e) % 3 {
		case 0:
			panic(fmt.Errorf("item %d: %w", req.ID, errBadItem))
		case 1:
			i := len(req.Sizes) + int(req.ID%2)
			_ = req.Sizes[i] // index out of range: a runtime error
		default:
			nilItem.Status = 1 // nil pointer dereference: SIGSEGV made a panic
		}
	}
	digests := make([]string, s.cfg.fanout)
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i := 0; i < s.cfg.fanout; i++ {
		wg.Add(1)
		s.goroutines.Add(1)
		go func(i int) {
			defer wg.Done()
			size := req.Sizes[i%len(req.Sizes)]
			buf := make([]byte, size)
			binary.LittleEndian.PutUint64(buf, req.ID+uint64(i))
			sum := sha256.Sum256(buf)
			d := fmt.Sprintf("%x", sum[:8])
			mu.Lock()
			digests[i] = d
			mu.Unlock()
		}(i)
	}
	wg.Wait()
	return response{ID: req.ID, Status: 200, Digests: digests}
}

// opsStatus is the /ops answer.
type opsStatus struct {
	Ops               uint64 `json:"ops"`
	PanicsRecovered   uint64 `json:"panics_recovered"`
	GoroutinesStarted uint64 `json:"goroutines_started"`
	GCCycles          uint64 `json:"gc_cycles"`
	AllocBytes        uint64 `json:"alloc_bytes"`
}

func (s *server) serveOps(w http.ResponseWriter, _ *http.Request) {
	st := opsStatus{Ops: s.ops.Load(), PanicsRecovered: s.panics.Load(), GoroutinesStarted: s.goroutines.Load()}
	ms := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}, {Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(ms)
	if ms[0].Value.Kind() == metrics.KindUint64 {
		st.GCCycles = ms[0].Value.Uint64()
	}
	if ms[1].Value.Kind() == metrics.KindUint64 {
		st.AllocBytes = ms[1].Value.Uint64()
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(st)
}
