package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/goroscope/goroscope/collect/process"
	"github.com/goroscope/goroscope/collect/walk"
)

// maxDebug2Bytes bounds a downloaded debug=2 dump (pprof truncates at 64 MiB).
const maxDebug2Bytes = 256 << 20

// rounds splits each observer's time into slices interleaved with the other
// observers', so that load from elsewhere on the machine spreads evenly.
const rounds = 4

// observer is one way of looking at the target at the cadence.
type observer struct {
	mode string
	op   func() error // nil for the baseline
	done func()
}

// latencyComparison runs the target's latency probe under each observer,
// in interleaved rounds on the same process.
func latencyComparison(ctx context.Context, cfg config, t *target, walkers []walk.Walker, n int) []latRow {
	obs := []observer{{mode: "baseline (no observer)", done: func() {}}}
	var rows []latRow
	for _, w := range walkers {
		mode := "goroscope " + w.Name()
		at, err := process.Attach(t.PID)
		if err != nil {
			rows = append(rows, latRow{size: n, mode: mode, err: err.Error()})
			continue
		}
		s := walk.NewSnapshotter(at, w)
		op := func() error {
			ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			_, err := s.Snapshot(ctx)
			return err
		}
		if err := op(); err != nil { // the cold snapshot, outside the windows
			at.Close()
			rows = append(rows, latRow{size: n, mode: mode, err: err.Error()})
			continue
		}
		obs = append(obs, observer{mode: mode, op: op, done: func() { at.Close() }})
	}
	obs = append(obs, observer{mode: "runtime.GoroutineProfile (in target)", done: func() {}, op: func() error {
		var r struct{}
		_, err := t.get(ctx, "/goroutineprofile", 1<<20, &r)
		return err
	}})
	if cfg.debug2 {
		obs = append(obs, observer{mode: "/debug/pprof/goroutine?debug=2", done: func() {}, op: func() error {
			_, err := t.get(ctx, "/debug/pprof/goroutine?debug=2", maxDebug2Bytes, nil)
			return err
		}})
	}
	defer func() {
		for _, o := range obs {
			o.done()
		}
	}()
	acc := make([]latRow, len(obs))
	samples := make([][]float64, len(obs))
	for i, o := range obs {
		acc[i] = latRow{size: n, mode: o.mode}
	}
	slice := cfg.window / rounds
	for r := 0; r < rounds && ctx.Err() == nil; r++ {
		for k := range obs {
			i := (k + r) % len(obs) // rotate the order every round
			if acc[i].err != "" || ctx.Err() != nil {
				continue
			}
			w := window(ctx, cfg, t, obs[i], slice)
			a := &acc[i]
			a.err = w.err
			a.ops += w.ops
			a.opTimes = append(a.opTimes, w.opTimes...)
			a.agentCPU += w.agentCPU
			a.otherCPU += w.otherCPU
			a.stats.Seconds += w.stats.Seconds
			a.stats.Skipped += w.stats.Skipped
			a.stats.Dropped += w.stats.Dropped
			a.stats.CPUUserMs += w.stats.CPUUserMs
			a.stats.CPUSysMs += w.stats.CPUSysMs
			samples[i] = append(samples[i], w.stats.SamplesUs...)
		}
	}
	for i := range acc {
		s := samples[i]
		slices.Sort(s)
		q := func(f float64) float64 {
			if len(s) == 0 {
				return 0
			}
			return s[min(len(s)-1, int(f*float64(len(s))))]
		}
		st := &acc[i].stats
		st.Samples = len(s)
		st.P50us, st.P90us, st.P99us, st.P999us, st.MaxUs = q(0.5), q(0.9), q(0.99), q(0.999), q(1)
		fmt.Fprintf(os.Stderr, "bench: %6d goroutines %-38s ops %3d p50 %8.0fµs p99 %8.0fµs max %8.0fµs other CPU %v %s\n",
			n, acc[i].mode, acc[i].ops, st.P50us, st.P99us, st.MaxUs, acc[i].otherCPU.Round(time.Millisecond), acc[i].err)
	}
	return append(rows, acc...)
}

// window measures the target's probe for d while o observes it at
// cfg.cadence.
func window(ctx context.Context, cfg config, t *target, o observer, d time.Duration) latRow {
	row := latRow{mode: o.mode}
	time.Sleep(500 * time.Millisecond) // let the previous window settle
	var discard probeStats
	if _, err := t.get(ctx, "/latency?reset=1", 1<<20, &discard); err != nil {
		row.err = err.Error()
		return row
	}
	u0, s0 := rusage()
	busy0 := machineBusy()
	start := time.Now()
	end := start.Add(d)
	next := start
	for time.Now().Before(end) && ctx.Err() == nil {
		if o.op != nil {
			t0 := time.Now()
			if err := o.op(); err != nil {
				row.err = err.Error()
				break
			}
			row.opTimes = append(row.opTimes, time.Since(t0))
			row.ops++
		}
		next = next.Add(cfg.cadence)
		if now := time.Now(); next.Before(now) {
			next = now // no catch-up bursts after a slow observation
		}
		if d := time.Until(earlier(next, end)); d > 0 {
			time.Sleep(d)
		}
	}
	u1, s1 := rusage()
	busy1 := machineBusy()
	row.agentCPU = (u1 - u0) + (s1 - s0)
	if _, err := t.get(ctx, "/latency?raw=1", 64<<20, &row.stats); err != nil && row.err == "" {
		row.err = err.Error()
	}
	target := time.Duration((row.stats.CPUUserMs + row.stats.CPUSysMs) * 1e6)
	row.otherCPU = max(0, busy1-busy0-row.agentCPU-target)
	return row
}

// machineBusy is the CPU time all processes have used since boot
// (/proc/stat: user, nice, system, irq, softirq, steal).
func machineBusy() time.Duration {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		return 0
	}
	fields := strings.Fields(sc.Text())
	if len(fields) < 9 || fields[0] != "cpu" {
		return 0
	}
	var ticks uint64
	for _, i := range []int{1, 2, 3, 6, 7, 8} {
		v, _ := strconv.ParseUint(fields[i], 10, 64)
		ticks += v
	}
	return time.Duration(ticks) * 10 * time.Millisecond // USER_HZ is 100 on Linux
}

// earlier of two times.
func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
