package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// maxGoroutines bounds -goroutines.
const maxGoroutines = 1 << 20

// parked is the population of goroutines parked on channels. Each channel
// (a slot) holds up to perChan receivers; churn closes every slot's channel
// and installs a fresh one, so every goroutine wakes and parks again.
type parked struct {
	n, shapes, perChan int
	slots              []slot
	// parkings counts goroutines about to block; it grows by n per churn.
	parkings atomic.Int64
	churnMu  sync.Mutex
	churns   int64
}

type slot struct {
	mu sync.Mutex
	ch chan struct{}
}

func newParked(n, shapes, perChan int) *parked {
	p := &parked{n: n, shapes: shapes, perChan: perChan}
	p.slots = make([]slot, (n+perChan-1)/perChan)
	for i := range p.slots {
		p.slots[i].ch = make(chan struct{})
	}
	return p
}

// start launches the goroutines and waits until all of them are about to
// block, then lets them settle.
func (p *parked) start(timeout time.Duration) error {
	for i := 0; i < p.n; i++ {
		s := &p.slots[i/p.perChan]
		f := shapeFuncs[i%p.shapes]
		depth := shapeDepths[i%p.shapes]
		go f(p, s, depth)
	}
	return p.waitParkings(int64(p.n), timeout)
}

// waitParkings waits until parkings reaches want, then for the last
// goroutines to block.
func (p *parked) waitParkings(want int64, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for p.parkings.Load() < want {
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d goroutines parked after %v", p.parkings.Load(), want, timeout)
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(10 * time.Millisecond)
	return nil
}

// churn wakes every parked goroutine and waits until each has parked again.
func (p *parked) churn(timeout time.Duration) error {
	p.churnMu.Lock()
	defer p.churnMu.Unlock()
	p.churns++
	want := int64(p.n) * (p.churns + 1)
	for i := range p.slots {
		s := &p.slots[i]
		s.mu.Lock()
		old := s.ch
		s.ch = make(chan struct{})
		s.mu.Unlock()
		close(old)
	}
	return p.waitParkings(want, timeout)
}

func (p *parked) serveChurn(w http.ResponseWriter, _ *http.Request) {
	start := time.Now()
	err := p.churn(30 * time.Second)
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		w.WriteHeader(http.StatusInternalServerError)
	}
	_ = json.NewEncoder(w).Encode(map[string]any{
		"goroutines": p.n, "ms": float64(time.Since(start).Microseconds()) / 1000, "error": errString(err),
	})
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// parkLoop blocks on the slot's current channel; when it is closed it
// fetches the new one and blocks again.
//
//go:noinline
func parkLoop(p *parked, s *slot) {
	for {
		s.mu.Lock()
		ch := s.ch
		s.mu.Unlock()
		p.parkings.Add(1)
		<-ch
	}
}

// The shapes: distinct entry functions descending to distinct depths
// before parking, so the population has a few different stacks.
var (
	shapeFuncs  = [...]func(*parked, *slot, int){shapeA, shapeB, shapeC, shapeD, shapeE, shapeF, shapeG, shapeH}
	shapeDepths = [...]int{4, 8, 12, 16, 20, 24, 28, 32}
)

//go:noinline
func descend(p *parked, s *slot, depth int) {
	if depth <= 0 {
		parkLoop(p, s)
		return
	}
	descend(p, s, depth-1)
	runtime.KeepAlive(s)
}

//go:noinline
func shapeA(p *parked, s *slot, d int) { descend(p, s, d) }

//go:noinline
func shapeB(p *parked, s *slot, d int) { descend(p, s, d) }

//go:noinline
func shapeC(p *parked, s *slot, d int) { descend(p, s, d) }

//go:noinline
func shapeD(p *parked, s *slot, d int) { descend(p, s, d) }

//go:noinline
func shapeE(p *parked, s *slot, d int) { descend(p, s, d) }

//go:noinline
func shapeF(p *parked, s *slot, d int) { descend(p, s, d) }

//go:noinline
func shapeG(p *parked, s *slot, d int) { descend(p, s, d) }

//go:noinline
func shapeH(p *parked, s *slot, d int) { descend(p, s, d) }
