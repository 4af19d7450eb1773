package daemon

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/goroscope/goroscope/collect/discovery"
	"github.com/goroscope/goroscope/collect/scrape"
	"github.com/goroscope/goroscope/pkg/store"
	"github.com/goroscope/goroscope/push/endpoint"
	"github.com/goroscope/goroscope/test/eventually"
	"github.com/goroscope/goroscope/test/receivers"
	"github.com/goroscope/goroscope/test/targettest"
)

// TestAgentScrapesPprof runs the agent with a pprof endpoint to scrape and
// no process to walk: the CPU, heap, mutex and block profiles and the
// goroutine snapshot folded from debug=2 reach Pyroscope under the
// target's service name (delta profiles marked __delta__=false), and land
// in the local store.
func TestAgentScrapesPprof(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a target, a receiver and the agent")
	}
	pyro := receivers.StartPyroscope(t)
	tgt := targettest.Start(t, buildTarget(t, "pprofload", targettest.BuildOpts{}), "-alloc-rate", "200", "-mutex-rate", "50", "-block-rate", "50")
	fast := QueueConfig{MaxDelay: Duration(100 * time.Millisecond), MinBackoff: Duration(50 * time.Millisecond), MaxBackoff: Duration(time.Second)}
	a, _ := runAgent(t, func(cfg *Config) {
		cfg.Discovery = discovery.Rules{Include: []discovery.Match{{Exe: "/no-such-program$"}}}
		cfg.Pyroscope = []EndpointConfig{{Name: "pyro", Config: endpoint.Config{URL: pyro.URL}, Queue: fast}}
		cfg.PprofScrape = scrape.Config{
			Interval: 2 * time.Second, CPUDuration: time.Second,
			Targets: []scrape.TargetConfig{{URL: "http://" + tgt.PprofAddr, Name: "load-1", ServiceName: "load", Labels: map[string]string{"env": "test"}}},
		}
	})

	want := map[string]string{ // profile name -> a sample type it must have
		"process_cpu": "cpu/nanoseconds", "memory": "alloc_space/bytes", "mutex": "delay/nanoseconds",
		"block": "delay/nanoseconds", "goroutine": "goroutine/count", "goroutine_wall": "wall/nanoseconds",
	}
	delta := map[string]bool{"memory": true, "mutex": true, "block": true}
	eventually.Succeeds(t, 45*time.Second, func() error {
		got := map[string]string{}
		for _, p := range pyro.Profiles() {
			if p.Labels["service_name"] != "load" || p.Labels["env"] != "test" || p.Labels["instance"] != "load-1" {
				continue
			}
			name := p.Labels["__name__"]
			if delta[name] != (p.Labels["__delta__"] == "false") {
				t.Fatalf("%s profile with __delta__=%q", name, p.Labels["__delta__"])
			}
			got[name] = strings.Join(p.SampleTypes(), ",")
		}
		for name, st := range want {
			if !strings.Contains(got[name], st) {
				return fmt.Errorf("profiles received from the scrape target: %v; want %v (errors: %v)", got, want, pyro.Errors())
			}
		}
		return nil
	})
	for _, p := range pyro.Profiles() {
		if p.Labels["__name__"] == "goroutine" && p.Labels["service_name"] == "load" {
			if n := p.Total(0); n < int64(tgt.Goroutines) {
				t.Errorf("scraped goroutines profile counts %d goroutines, the target runs at least %d", n, tgt.Goroutines)
			}
			break
		}
	}
	// The store holds every kind, under the target's name.
	ms, err := a.store.List(store.Query{})
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, m := range ms {
		if m.Process.Exe == "load-1" && m.Process.ServiceName == "load" {
			kinds[m.Kind]++
		}
	}
	for _, k := range []string{"process_cpu", "memory", "mutex", "block", store.KindGoroutines, store.KindGoroutineWall, store.KindSnapshot} {
		if kinds[k] == 0 {
			t.Errorf("no %s entries stored for the scrape target (have %v)", k, kinds)
		}
	}
}
