package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"goroscope.test/targets/cpuburn/spin"
)

type config struct {
	burners, labeled, asm, cgo, syscalls, chunk int
	stdin                                       bool
}

// Spinner kinds, as /burners names them.
const (
	kindBurn = "burn"    // main.burnCPU
	kindAsm  = "asm"     // spin.Asm
	kindCgo  = "cgo"     // C spin_c via main.spinC
	kindSys  = "syscall" // read(2) of /dev/zero in main.(*burners).syscallLoop
)

// spinner is one CPU-burning goroutine.
type spinner struct {
	Kind   string            `json:"kind"`
	Goid   uint64            `json:"goid"`
	Labels map[string]string `json:"labels,omitempty"`
	ops    atomic.Uint64
}

// burners describes every spinner.
type burners struct {
	mu       sync.Mutex
	spinners []*spinner
	sink     atomic.Uint64 // keeps results alive
}

func newBurners() *burners { return &burners{} }

// burnCPU is the known hot function: n rounds of mix, which is inlined.
//
//go:noinline
func burnCPU(n int) uint64 {
	x := uint64(n)
	for i := 0; i < n; i++ {
		x = mix(x, uint64(i))
	}
	return x
}

func mix(x, i uint64) uint64 {
	x ^= i
	x *= 0x9e3779b97f4a7c15
	return x ^ x>>29
}

// burnLoop calls burnCPU forever, counting units of work.
func (b *burners) burnLoop(s *spinner, chunk int) {
	for {
		b.sink.Store(burnCPU(chunk))
		s.ops.Add(1)
	}
}

// asmLoop spins in assembly forever, in short calls so the goroutine
// reaches safe points (asm is not preemptible).
func (b *burners) asmLoop(s *spinner) {
	for {
		b.sink.Store(spin.Asm(1 << 18))
		s.ops.Add(1)
	}
}

// cgoLoop spins in C forever.
func (b *burners) cgoLoop(s *spinner) {
	for {
		b.sink.Store(spinC(1 << 20))
		s.ops.Add(1)
	}
}

// syscallLoop spends its time in the kernel, reading /dev/zero.
func (b *burners) syscallLoop(s *spinner) {
	f, err := os.Open("/dev/zero")
	if err != nil {
		panic(err) // a Linux system has /dev/zero
	}
	buf := make([]byte, 1<<16)
	for {
		n, _ := f.Read(buf)
		b.sink.Store(uint64(n))
		s.ops.Add(1)
	}
}

// start launches the spinners and waits until each reported its goroutine
// id and did one unit of work.
func (b *burners) start(cfg config, timeout time.Duration) error {
	var wg sync.WaitGroup
	launch := func(kind string, labels map[string]string, loop func(*spinner)) {
		s := &spinner{Kind: kind, Labels: labels}
		b.mu.Lock()
		b.spinners = append(b.spinners, s)
		b.mu.Unlock()
		wg.Add(1)
		go func() {
			body := func(context.Context) {
				s.Goid = curGoid()
				wg.Done()
				loop(s)
			}
			if labels == nil {
				body(context.Background())
				return
			}
			var kv []string
			for k, v := range labels {
				kv = append(kv, k, v)
			}
			pprof.Do(context.Background(), pprof.Labels(kv...), body)
		}()
	}
	for i := 0; i < cfg.burners; i++ {
		var labels map[string]string
		if i < cfg.labeled {
			labels = map[string]string{"burner": "labeled", "index": strconv.Itoa(i)}
		}
		launch(kindBurn, labels, func(s *spinner) { b.burnLoop(s, cfg.chunk) })
	}
	for i := 0; i < cfg.asm; i++ {
		launch(kindAsm, nil, b.asmLoop)
	}
	for i := 0; i < cfg.cgo; i++ {
		launch(kindCgo, nil, b.cgoLoop)
	}
	for i := 0; i < cfg.syscalls; i++ {
		launch(kindSys, nil, b.syscallLoop)
	}
	ids := make(chan struct{})
	go func() { wg.Wait(); close(ids) }()
	select {
	case <-ids:
	case <-time.After(timeout):
		return fmt.Errorf("spinners did not start within %v", timeout)
	}
	deadline := time.Now().Add(timeout)
	for _, s := range b.spinners {
		for s.ops.Load() == 0 {
			if time.Now().After(deadline) {
				return fmt.Errorf("%s spinner %d did no work within %v", s.Kind, s.Goid, timeout)
			}
			time.Sleep(time.Millisecond)
		}
	}
	return nil
}

// curGoid parses the calling goroutine's id from its traceback header.
func curGoid() uint64 {
	buf := make([]byte, 64)
	buf = buf[:runtime.Stack(buf, false)]
	buf = bytes.TrimPrefix(buf, []byte("goroutine "))
	if i := bytes.IndexByte(buf, ' '); i > 0 {
		buf = buf[:i]
	}
	id, _ := strconv.ParseUint(string(buf), 10, 64)
	return id
}

// status is the /burners response.
type status struct {
	Spinners []spinnerStatus `json:"spinners"`
	// Ops is the units of work done by all burnCPU spinners.
	Ops uint64 `json:"ops"`
}

type spinnerStatus struct {
	Kind   string            `json:"kind"`
	Goid   uint64            `json:"goid"`
	Labels map[string]string `json:"labels,omitempty"`
	Ops    uint64            `json:"ops"`
}

func (b *burners) serveHTTP(w http.ResponseWriter, _ *http.Request) {
	b.mu.Lock()
	var st status
	for _, s := range b.spinners {
		ops := s.ops.Load()
		st.Spinners = append(st.Spinners, spinnerStatus{Kind: s.Kind, Goid: s.Goid, Labels: s.Labels, Ops: ops})
		if s.Kind == kindBurn {
			st.Ops += ops
		}
	}
	b.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(st)
}
