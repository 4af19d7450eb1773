package main

import (
	"encoding/json"
	"hash/fnv"
	"net/http"
	"runtime"
	"sort"
	"sync"
	"syscall"
	"time"
)

// maxSamples bounds the latencies kept per window.
const maxSamples = 1 << 20

// maxBehind bounds the probe's catch-up: further behind, it skips ahead
// and counts the skipped items.
const maxBehind = time.Second

// probe issues one small work item per interval to a pool of workers and
// records each item's completion latency, measured from when the item was
// due (so a pause delays every item due during it: no coordinated omission).
type probe struct {
	interval time.Duration
	work     []byte

	mu      sync.Mutex
	samples []time.Duration
	dropped int // samples beyond maxSamples
	skipped int // items skipped after falling behind by maxBehind
	since   time.Time
	ru      syscall.Rusage
}

type item struct{ due time.Time }

func newProbe(interval time.Duration, work int) *probe {
	p := &probe{interval: interval, work: make([]byte, work), since: time.Now()}
	for i := range p.work {
		p.work[i] = byte(i)
	}
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &p.ru)
	return p
}

// run issues items until done is closed.
func (p *probe) run(done <-chan struct{}) {
	workers := runtime.GOMAXPROCS(0)
	items := make(chan item, 1024)
	for i := 0; i < workers; i++ {
		go p.worker(items, done)
	}
	next := time.Now()
	for {
		next = next.Add(p.interval)
		if d := time.Until(next); d > 0 {
			select {
			case <-done:
				return
			case <-time.After(d):
			}
		} else if -d > maxBehind {
			skip := int(-d / p.interval)
			p.mu.Lock()
			p.skipped += skip
			p.mu.Unlock()
			next = next.Add(time.Duration(skip) * p.interval)
		}
		select {
		case items <- item{due: next}:
		case <-done:
			return
		}
	}
}

func (p *probe) worker(items <-chan item, done <-chan struct{}) {
	h := fnv.New64a()
	for {
		select {
		case <-done:
			return
		case it := <-items:
			h.Reset()
			_, _ = h.Write(p.work)
			_ = h.Sum64()
			p.record(time.Since(it.due))
		}
	}
}

func (p *probe) record(d time.Duration) {
	p.mu.Lock()
	if len(p.samples) < maxSamples {
		p.samples = append(p.samples, d)
	} else {
		p.dropped++
	}
	p.mu.Unlock()
}

// Stats is one window of probe latencies and the process's CPU time.
type Stats struct {
	Seconds   float64 `json:"seconds"`
	Samples   int     `json:"samples"`
	Dropped   int     `json:"dropped"`
	Skipped   int     `json:"skipped"`
	P50us     float64 `json:"p50_us"`
	P90us     float64 `json:"p90_us"`
	P99us     float64 `json:"p99_us"`
	P999us    float64 `json:"p999_us"`
	MaxUs     float64 `json:"max_us"`
	CPUUserMs float64 `json:"cpu_user_ms"`
	CPUSysMs  float64 `json:"cpu_sys_ms"`
	// SamplesUs are the window's latencies in µs, sorted, with ?raw=1.
	SamplesUs []float64 `json:"samples_us,omitempty"`
}

// stats summarises the window since the last reset, and starts a new one
// when reset is set.
func (p *probe) stats(reset, raw bool) Stats {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	p.mu.Lock()
	s := append([]time.Duration(nil), p.samples...)
	st := Stats{
		Seconds: time.Since(p.since).Seconds(), Samples: len(s), Dropped: p.dropped, Skipped: p.skipped,
		CPUUserMs: ms(ru.Utime) - ms(p.ru.Utime), CPUSysMs: ms(ru.Stime) - ms(p.ru.Stime),
	}
	if reset {
		p.samples, p.dropped, p.skipped, p.since, p.ru = p.samples[:0], 0, 0, time.Now(), ru
	}
	p.mu.Unlock()
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	q := func(f float64) float64 {
		if len(s) == 0 {
			return 0
		}
		return float64(s[min(len(s)-1, int(f*float64(len(s))))].Nanoseconds()) / 1e3
	}
	st.P50us, st.P90us, st.P99us, st.P999us = q(0.50), q(0.90), q(0.99), q(0.999)
	if raw {
		st.SamplesUs = make([]float64, len(s))
		for i, d := range s {
			st.SamplesUs[i] = float64(d.Nanoseconds()) / 1e3
		}
	}
	if len(s) > 0 {
		st.MaxUs = float64(s[len(s)-1].Nanoseconds()) / 1e3
	}
	return st
}

func ms(tv syscall.Timeval) float64 {
	return float64(tv.Sec)*1e3 + float64(tv.Usec)/1e3
}

func (p *probe) serveHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(p.stats(r.URL.Query().Get("reset") == "1", r.URL.Query().Get("raw") == "1"))
}
