package cpu_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/goroscope/goroscope/collect/cpu"
	"github.com/goroscope/goroscope/collect/process"
	"github.com/goroscope/goroscope/test/targettest"
)

// Function names in the cpuburn target.
const (
	fnBurn    = "main.burnCPU"
	fnMix     = "main.mix" // inlined into burnCPU
	fnAsm     = "goroscope.test/targets/cpuburn/spin.Asm"
	fnCgoLoop = "main.(*burners).cgoLoop"
)

// newSampler loads a sampler or skips the test when the machine cannot run
// BPF; under CI=true a load failure fails the test.
func newSampler(tb testing.TB, o cpu.Options) *cpu.Sampler {
	tb.Helper()
	s, err := cpu.New(o)
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("CI=true but the CPU sampler does not load: %v", err)
		}
		tb.Skipf("CPU sampler unavailable here: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("close sampler: %v", err)
		}
	})
	return s
}

// burnTarget is a running cpuburn with its spinners.
type burnTarget struct {
	*targettest.Target
	Spinners []spinner
}

type spinner struct {
	Kind   string            `json:"kind"`
	Goid   uint64            `json:"goid"`
	Labels map[string]string `json:"labels"`
	Ops    uint64            `json:"ops"`
}

// goids returns the goroutine ids of the spinners of a kind.
func (b *burnTarget) goids(kind string) map[uint64]spinner {
	out := map[uint64]spinner{}
	for _, s := range b.Spinners {
		if s.Kind == kind {
			out[s.Goid] = s
		}
	}
	return out
}

// startBurn builds and starts cpuburn and reads its spinners.
func startBurn(tb testing.TB, o targettest.BuildOpts, args ...string) *burnTarget {
	tb.Helper()
	if testing.Short() {
		tb.Skip("builds and runs a target program")
	}
	bin := targettest.Build(tb, "cpuburn", o)
	t := targettest.Start(tb, bin, args...)
	b := &burnTarget{Target: t}
	var st struct {
		Spinners []spinner `json:"spinners"`
	}
	if err := getJSON(t.URL("/burners"), &st); err != nil {
		tb.Fatal(err)
	}
	b.Spinners = st.Spinners
	return b
}

// ops returns the burnCPU work units done so far.
func (b *burnTarget) ops() (uint64, error) {
	var st struct {
		Ops uint64 `json:"ops"`
	}
	err := getJSON(b.URL("/burners"), &st)
	return st.Ops, err
}

func getJSON(url string, v any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	return nil
}

// attach attaches the target for sampling and closes it at the end.
func attach(tb testing.TB, pid int) *process.Target {
	tb.Helper()
	t, err := process.Attach(pid)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { t.Close() })
	return t
}

// hasFrame reports whether a sample's stack has a frame of fn.
func hasFrame(s *cpu.Sample, fn string) bool {
	for _, f := range s.Frames {
		if f.Function == fn {
			return true
		}
	}
	return false
}

// stackString renders a sample's frames leaf first, for messages.
func stackString(s *cpu.Sample) string {
	names := make([]string, len(s.Frames))
	for i, f := range s.Frames {
		names[i] = f.Function
	}
	return strings.Join(names, " < ")
}

// displayVersion names a toolchain in test names.
func displayVersion(v string) string {
	if v == "" {
		return "local"
	}
	return v
}
