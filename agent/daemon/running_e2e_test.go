package daemon

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/goroscope/goroscope/collect/discovery"
	"github.com/goroscope/goroscope/pkg/fold"
	"github.com/goroscope/goroscope/pkg/store"
	"github.com/goroscope/goroscope/test/eventually"
	"github.com/goroscope/goroscope/test/targettest"
)

// TestAgentRunningGoroutineStacks: in the goroutine count profile, as
// stored and pushed, no running goroutine is without a stack: the burners,
// always on CPU, carry the stack the CPU sampler saw them in
// (main.burnCPU, matched by goroutine id), any other running goroutine
// fold.RunningFunction. A state="running" filter never gives an empty
// flame graph.
func TestAgentRunningGoroutineStacks(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a target and the agent")
	}
	if os.Geteuid() != 0 && os.Getenv("CI") != "true" {
		t.Skip("eBPF needs root")
	}
	tgt := targettest.Start(t, buildTarget(t, "cpuburn", targettest.BuildOpts{}), "-burners", "2")
	a, _ := runAgent(t, func(cfg *Config) {
		cfg.SnapshotInterval = Duration(time.Second)
		cfg.Discovery = discovery.Rules{Include: []discovery.Match{ownTargets()}}
	})
	waitCPUSampler(t, a)
	key := store.ProcessKey{PID: tgt.PID, StartTime: processStart(t, tgt.PID)}
	var running, sampled, live int64
	eventually.Succeeds(t, 30*time.Second, func() error {
		cpu, err := a.store.List(store.Query{Process: key, Kind: store.KindCPU})
		if err != nil {
			t.Fatal(err)
		}
		if len(cpu) == 0 {
			return errors.New("no process_cpu entry") // snapshots before the sampler's first window have no samples
		}
		entries, err := a.store.List(store.Query{Process: key, Kind: store.KindGoroutines})
		if err != nil {
			t.Fatal(err)
		}
		entries = slices.DeleteFunc(entries, func(m store.Meta) bool { return !m.Time.After(cpu[0].Time) })
		running, sampled, live = 0, 0, 0
		for _, m := range entries {
			p := readProfile(t, a, m.ID)
			for _, s := range p.Sample {
				if st := s.Label[fold.LabelState]; len(st) != 1 || st[0] != "running" {
					continue
				}
				running += s.Value[0]
				switch {
				case len(s.Location) == 0:
					t.Fatalf("a running goroutine without a stack in entry %d", m.ID)
				case inFunction(s, "main.burnCPU"):
					sampled += s.Value[0]
				case inFunction(s, fold.RunningFunction):
					live += s.Value[0]
				}
			}
		}
		if running == 0 || sampled == 0 {
			return fmt.Errorf("%d running goroutines in goroutine profiles, %d with a sampled stack", running, sampled)
		}
		return nil
	})
	t.Logf("%d running goroutines: %d with a sampled stack, %d with %s", running, sampled, live, fold.RunningFunction)
	if sampled+live != running {
		t.Errorf("%d running goroutines: %d with a sampled stack, %d with %s; want all in one or the other", running, sampled, live, fold.RunningFunction)
	}
}
