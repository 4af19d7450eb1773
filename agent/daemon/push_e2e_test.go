package daemon

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/goroscope/goroscope/push/endpoint"
	"github.com/goroscope/goroscope/test/eventually"
	"github.com/goroscope/goroscope/test/receivers"
	"github.com/goroscope/goroscope/test/targettest"
)

// TestAgentPushes runs the agent with a real Prometheus and a real
// VictoriaMetrics as remote-write endpoints and the official Pyroscope push
// handler in-process, with Pyroscope failing its first requests: the series
// read back equal the agent's own, and every profile arrives after the
// outage with the right labels and sample types.
func TestAgentPushes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts receivers, a target and the agent")
	}
	prom := receivers.StartPrometheus(t)
	vm := receivers.StartVictoriaMetrics(t)
	pyro := receivers.StartPyroscope(t)
	pyro.FailNext(receivers.Failure{Status: 503, RetryAfter: "1"}, receivers.Failure{Status: 500})
	tgt := targettest.Start(t, buildTarget(t, "population", targettest.BuildOpts{}), "-spin", "0")

	fast := QueueConfig{MaxDelay: Duration(100 * time.Millisecond), MinBackoff: Duration(50 * time.Millisecond), MaxBackoff: Duration(2 * time.Second)}
	_, base := runAgent(t, func(cfg *Config) {
		cfg.SnapshotInterval = Duration(time.Second)
		cfg.RemoteWrite = []EndpointConfig{
			{Name: "prom", Config: endpoint.Config{URL: prom.WriteURL}, ExternalLabels: map[string]string{"cluster": "test"}, Queue: fast},
			{Name: "vm", Config: endpoint.Config{URL: vm.WriteURL}, Queue: fast},
		}
		cfg.Pyroscope = []EndpointConfig{{Name: "pyro", Config: endpoint.Config{URL: pyro.URL, Tenant: "team-a"}, Queue: fast}}
	})

	// Pyroscope: after the injected failures, goroutines and goroutine_wall
	// profiles of the target arrive, labelled for Grafana.
	pid := strconv.Itoa(tgt.PID)
	eventually.Succeeds(t, 60*time.Second, func() error {
		names := map[string]int{}
		for _, p := range pyro.Profiles() {
			if p.Labels["pid"] == pid && p.Labels["service_name"] != "" {
				names[p.Labels["__name__"]+" "+p.SampleTypes()[0]]++
			}
		}
		if names["goroutine goroutine/count"] < 2 || names["goroutine_wall wall/nanoseconds"] < 2 {
			return fmt.Errorf("profiles received for pid %s: %v; want goroutines and goroutine_wall after the outage (errors: %v)", pid, names, pyro.Errors())
		}
		return nil
	})
	for _, r := range pyro.Requests() {
		if r.Header.Get("X-Scope-OrgID") != "team-a" {
			t.Errorf("Pyroscope request without the tenant header: %v", r.Header)
			break
		}
	}
	for _, p := range pyro.Profiles() {
		if p.Labels["pid"] != pid || p.Labels["__name__"] != "goroutine" {
			continue
		}
		if total := p.Total(0); total < int64(tgt.Goroutines) {
			t.Errorf("a goroutines profile counts %d goroutines; the target has at least %d", total, tgt.Goroutines)
		}
		break
	}

	// Remote-write: the series in Prometheus and VictoriaMetrics equal the
	// agent's own newest values for the target.
	q := `goroscope_goroutines{pid="` + pid + `",state="waiting",wait_reason="chan receive"}`
	want := metricCounts(t, base, tgt.PID)["waiting/chan receive"]
	if want == 0 {
		t.Fatalf("/metrics has no chan receive goroutines for pid %s", pid)
	}
	check := func(name string, query func() []receivers.Series, wantCluster bool) {
		t.Helper()
		var got []receivers.Series
		if err := eventually.Wait(30*time.Second, func() error {
			if got = query(); len(got) == 1 && len(got[0].Samples) > 0 && got[0].Samples[len(got[0].Samples)-1].Value == want {
				return nil
			}
			return fmt.Errorf("%s: %s = %+v; want one series with value %v", name, q, got, want)
		}); err != nil {
			t.Error(err) // and check the other receiver
			return
		}
		if wantCluster && got[0].Labels["cluster"] != "test" {
			t.Errorf("%s: series lacks the external label cluster=test: %v", name, got[0].Labels)
		}
		if got[0].Labels["service_name"] == "" {
			t.Errorf("%s: series lacks service_name: %v", name, got[0].Labels)
		}
	}
	check("prometheus", func() []receivers.Series { return prom.Query(t, q) }, true)
	check("victoria-metrics", func() []receivers.Series { vm.Flush(t); return vm.Query(t, q) }, false)
}

// TestStaleSeries: when a process is gone, its series (those of its
// runtime health too) end at once in a real Prometheus fed by remote-write
// (a staleness marker), as they do for a scraped target, instead of
// lingering five minutes.
func TestStaleSeries(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Prometheus, a target and the agent")
	}
	prom := receivers.StartPrometheus(t)
	tgt := targettest.Start(t, buildTarget(t, "population", targettest.BuildOpts{}), "-spin", "0")
	fast := QueueConfig{MaxDelay: Duration(100 * time.Millisecond), MinBackoff: Duration(50 * time.Millisecond), MaxBackoff: Duration(time.Second)}
	runAgent(t, func(cfg *Config) {
		cfg.SnapshotInterval = Duration(500 * time.Millisecond)
		cfg.RemoteWrite = []EndpointConfig{{Name: "prom", Config: endpoint.Config{URL: prom.WriteURL}, Queue: fast}}
	})
	// The goroutine series, and those of the runtime health.
	q := `{__name__=~"goroscope_goroutines|goroscope_go_gomaxprocs|goroscope_go_gc_cycles_total", pid="` + strconv.Itoa(tgt.PID) + `"}`
	eventually.True(t, 30*time.Second, "the target's series in Prometheus", func() bool {
		names := map[string]bool{}
		for _, s := range prom.Query(t, q) {
			names[s.Labels["__name__"]] = true
		}
		return len(names) == 3
	})
	tgt.Stop()
	eventually.Succeeds(t, 30*time.Second, func() error {
		if got := prom.Query(t, q); len(got) > 0 {
			return fmt.Errorf("%d series of the gone process still current in Prometheus: %+v", len(got), got[0])
		}
		return nil
	})
}
