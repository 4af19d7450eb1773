package daemon

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/goroscope/goroscope/collect/discovery"
	"github.com/goroscope/goroscope/pkg/fold"
	"github.com/goroscope/goroscope/pkg/store"
	"github.com/goroscope/goroscope/test/eventually"
	"github.com/goroscope/goroscope/test/targettest"
)

// TestAgentCPUProfiles runs the agent with the eBPF CPU sampler on a target
// burning CPU in main.burnCPU: each snapshot stores a process_cpu profile
// whose time is mostly in that function, labelled by pprof labels and
// goroutine ids, and the goroutine_wall profile shows the burners' stacks
// under state "running" instead of stackless running goroutines.
func TestAgentCPUProfiles(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a target and the agent")
	}
	if os.Geteuid() != 0 && os.Getenv("CI") != "true" {
		t.Skip("eBPF needs root")
	}
	tgt := targettest.Start(t, buildTarget(t, "cpuburn", targettest.BuildOpts{}), "-burners", "2", "-labeled", "1")
	a, _ := runAgent(t, func(cfg *Config) {
		cfg.SnapshotInterval = Duration(time.Second)
		cfg.Discovery = discovery.Rules{Include: []discovery.Match{ownTargets()}}
	})
	waitCPUSampler(t, a)
	key := store.ProcessKey{PID: tgt.PID, StartTime: processStart(t, tgt.PID)}
	var cpuEntries, wallEntries []store.Meta
	eventually.Succeeds(t, 30*time.Second, func() error {
		var err error
		if cpuEntries, err = a.store.List(store.Query{Process: key, Kind: store.KindCPU}); err != nil {
			t.Fatal(err)
		}
		if wallEntries, err = a.store.List(store.Query{Process: key, Kind: store.KindGoroutineWall}); err != nil {
			t.Fatal(err)
		}
		if len(cpuEntries) > 0 {
			// Snapshots before the sampler loaded have no CPU samples.
			first := cpuEntries[0].Time
			wallEntries = slices.DeleteFunc(wallEntries, func(m store.Meta) bool { return m.Time.Before(first) })
		}
		if len(cpuEntries) < 3 || len(wallEntries) < 3 {
			return fmt.Errorf("%d process_cpu and %d goroutine_wall entries, want 3 each", len(cpuEntries), len(wallEntries))
		}
		return nil
	})
	var total, burn, labelled, withGoid int64
	for _, m := range cpuEntries {
		p := readProfile(t, a, m.ID)
		if p.SampleType[1].Type != "cpu" || p.SampleType[1].Unit != "nanoseconds" {
			t.Fatalf("process_cpu sample types %v", p.SampleType)
		}
		for _, s := range p.Sample {
			total += s.Value[1]
			if inFunction(s, "main.burnCPU") {
				burn += s.Value[1]
				if s.Label["burner"] != nil {
					labelled += s.Value[1]
				}
				if len(s.NumLabel["goid"]) == 1 && s.NumLabel["goid"][0] > 0 {
					withGoid += s.Value[1]
				}
			}
		}
	}
	if total == 0 || burn*10 < total*9 {
		t.Errorf("main.burnCPU has %d of %d CPU ns, want at least 90%%", burn, total)
	}
	if labelled == 0 || labelled*4 > burn*3 {
		t.Errorf("labelled burner has %d of %d ns in main.burnCPU, want about half", labelled, burn)
	}
	if withGoid != burn {
		t.Errorf("%d of %d ns in main.burnCPU carry a goid", withGoid, burn)
	}
	// goroutine_wall: running time comes with the burners' stacks.
	var running, runningBurn int64
	for _, m := range wallEntries {
		p := readProfile(t, a, m.ID)
		for _, s := range p.Sample {
			if st := s.Label[fold.LabelState]; len(st) == 1 && st[0] == "running" {
				running += s.Value[0]
				if inFunction(s, "main.burnCPU") {
					runningBurn += s.Value[0]
				}
			}
		}
	}
	if running == 0 || runningBurn*10 < running*9 {
		t.Errorf("goroutine_wall: %d of %d running ns in main.burnCPU stacks, want at least 90%%", runningBurn, running)
	}
}

// waitCPUSampler waits for the agent's CPU sampler to load in the
// background, and fails with the reason when it does not.
func waitCPUSampler(t *testing.T, a *Agent) {
	t.Helper()
	eventually.True(t, 30*time.Second, "the CPU sampler loaded", func() bool {
		if a.cpu.Load() != nil {
			return true
		}
		a.mu.Lock()
		reason := a.cpuReason
		a.mu.Unlock()
		if reason != "loading" && reason != "" {
			t.Fatalf("the CPU sampler did not load: %s", reason)
		}
		return false
	})
}

func readProfile(t *testing.T, a *Agent, id uint64) *profile.Profile {
	t.Helper()
	p, err := profile.ParseData(storedPayload(t, a, id))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func inFunction(s *profile.Sample, fn string) bool {
	for _, l := range s.Location {
		for _, ln := range l.Line {
			if ln.Function != nil && strings.HasPrefix(ln.Function.Name, fn) {
				return true
			}
		}
	}
	return false
}

// TestCPULabelsBounded: the process_cpu profiles of a process, the last
// one (sent when it is gone) included, hold at most limits.label_values
// values of a key, the rest under "other".
func TestCPULabelsBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a target and the agent")
	}
	if os.Geteuid() != 0 && os.Getenv("CI") != "true" {
		t.Skip("eBPF needs root")
	}
	const values = 3
	// 12 burners labelled index=0..11.
	tgt := targettest.Start(t, buildTarget(t, "cpuburn", targettest.BuildOpts{}), "-burners", "12", "-labeled", "12")
	a, _ := runAgent(t, func(cfg *Config) {
		cfg.SnapshotInterval = Duration(time.Second)
		cfg.DiscoveryInterval = Duration(200 * time.Millisecond)
		cfg.Discovery = discovery.Rules{Include: []discovery.Match{ownTargets()}}
		cfg.Limits.LabelValues = values
	})
	waitCPUSampler(t, a)
	key := store.ProcessKey{PID: tgt.PID, StartTime: processStart(t, tgt.PID)}
	list := func() []store.Meta {
		ms, err := a.store.List(store.Query{Process: key, Kind: store.KindCPU})
		if err != nil {
			t.Fatal(err)
		}
		return ms
	}
	eventually.True(t, 30*time.Second, "two process_cpu profiles", func() bool { return len(list()) >= 2 })
	before := len(list())
	tgt.Stop()
	// The last window goes out once discovery dropped the process and the
	// sampler was drained.
	eventually.True(t, 30*time.Second, "the gone process's last process_cpu profile", func() bool { return len(list()) > before })
	for _, m := range list() {
		p := readProfile(t, a, m.ID)
		seen := map[string]bool{}
		for _, s := range p.Sample {
			for _, v := range s.Label["index"] {
				seen[v] = true
			}
		}
		delete(seen, fold.OtherValue)
		if len(seen) > values {
			t.Errorf("process_cpu profile at %s has %d values of index (%v), want at most %d and %q", m.Time, len(seen), seen, values, fold.OtherValue)
		}
	}
}
