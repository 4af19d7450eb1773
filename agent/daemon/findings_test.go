package daemon

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/goroscope/goroscope/collect/discovery"
	"github.com/goroscope/goroscope/collect/scrape"
	"github.com/goroscope/goroscope/pkg/findings"
	"github.com/goroscope/goroscope/pkg/snapshot"
	"github.com/goroscope/goroscope/pkg/store"
	"github.com/goroscope/goroscope/test/eventually"
	"github.com/goroscope/goroscope/test/targettest"
)

// TestFindingSeries: the top groups get a series each, the rest sum under
// site "other" per state and wait reason, and each finding one series.
func TestFindingSeries(t *testing.T) {
	var groups []*findings.Group
	for i := range 5 {
		groups = append(groups, &findings.Group{Goroutines: 100 - i, Site: findings.Site{
			Frame: fmt.Sprintf("main.f%d main.go:%d", i, i), State: snapshot.StateWaiting, WaitReason: "chan receive"}})
	}
	fs := []findings.Finding{{Kind: findings.KindLeak, Site: groups[0].Site, Goroutines: 100}}
	got := map[string]float64{}
	for _, s := range findingSeries(groups, fs, map[string]string{"service_name": "app"}, 2) {
		if s.Labels["service_name"] != "app" {
			t.Errorf("series %s lacks the process labels: %v", s.Name, s.Labels)
		}
		got[s.Name+" "+s.Labels["kind"]+" "+s.Labels["site"]+" "+s.Labels["state"]] = s.Value
	}
	want := map[string]float64{
		MetricGroupGoroutines + "  main.f0:0 waiting": 100,
		MetricGroupGoroutines + "  main.f1:1 waiting": 99,
		MetricGroupGoroutines + "  other waiting":     98 + 97 + 96,
		MetricFindings + " leak main.f0:0 ":           100,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("series\n%v\nwant\n%v", got, want)
	}
}

// TestFindingsConfig: per-service thresholds override the agent-wide ones
// field by field, and bad values are named.
func TestFindingsConfig(t *testing.T) {
	c := DefaultConfig().Findings
	c.Services = map[string]findings.Config{"batch": {Leak: findings.LeakRule{MinGrowth: 500, Window: time.Hour}}}
	b := c.forService("batch")
	if b.Leak.MinGrowth != 500 || b.Leak.Window != time.Hour || b.Leak.MinGoroutines != c.Leak.MinGoroutines || b.Stuck != c.Stuck {
		t.Errorf("batch thresholds %+v", b)
	}
	if o := c.forService("web"); o != c.Config {
		t.Errorf("web thresholds %+v, want the agent-wide %+v", o, c.Config)
	}
	c.Services["bad"] = findings.Config{Leak: findings.LeakRule{MaxDeparted: 2}}
	c.TopGroups = 0
	errs := strings.Join(c.validate(), "; ")
	for _, want := range []string{"findings.top_groups 0", `findings.services["bad"]: leak.max_departed 2`} {
		if !strings.Contains(errs, want) {
			t.Errorf("errors %q lack %q", errs, want)
		}
	}
}

// TestAgentFindsLeak: the agent watching a population that grows by 20
// parked goroutines a second stores a leak finding naming the blocking
// function, counts it in the entry's summary, and exports its series.
func TestAgentFindsLeak(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a target and the agent")
	}
	tgt := targettest.Start(t, buildTarget(t, "population", targettest.BuildOpts{}), "-grow", "20")
	a, base := runAgent(t, func(cfg *Config) {
		cfg.SnapshotInterval = Duration(500 * time.Millisecond)
		cfg.Findings.Leak.Window = 30 * time.Second
		cfg.Findings.Leak.MinSpan = 4 * time.Second
	})
	m, e := newestFindings(t, a, store.ProcessKey{PID: tgt.PID, StartTime: processStart(t, tgt.PID)})
	if len(e.Findings) == 0 || e.Findings[0].Kind != findings.KindLeak || !strings.HasPrefix(e.Findings[0].Site.Frame, "main.parkChanRecv ") {
		t.Fatalf("stored findings %+v; want a leak in main.parkChanRecv", e.Findings)
	}
	if m.Summary["findings/leak"] < 1 {
		t.Errorf("entry summary %v lacks findings/leak", m.Summary)
	}
	metrics := get(t, base+"/metrics")
	for _, want := range []string{MetricFindings + `{kind="leak",pid="` + strconv.Itoa(tgt.PID), MetricGroupGoroutines + `{pid="` + strconv.Itoa(tgt.PID)} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// newestFindings waits for a findings entry of process key (all processes
// when zero) in a's store, and returns the newest with its payload.
func newestFindings(t *testing.T, a *Agent, key store.ProcessKey) (store.Meta, findingsEntry) {
	t.Helper()
	var entries []store.Meta
	eventually.Succeeds(t, 30*time.Second, func() error {
		var err error
		if entries, err = a.store.List(store.Query{Process: key, Kind: store.KindFindings}); err == nil && len(entries) == 0 {
			err = fmt.Errorf("no findings stored yet")
		}
		return err
	})
	var e findingsEntry
	if err := json.Unmarshal(storedPayload(t, a, entries[len(entries)-1].ID), &e); err != nil {
		t.Fatal(err)
	}
	return entries[len(entries)-1], e
}

// TestVanishedSeries: a series a process pushed last time and no longer
// has is returned once, to be marked stale.
func TestVanishedSeries(t *testing.T) {
	ps := &pushers{}
	k := store.ProcessKey{PID: 1, StartTime: 2}
	a := map[uint64]sentSeries{1: {name: MetricFindings}, 2: {name: MetricGroupGoroutines}}
	if got := ps.vanished(k, a); len(got) != 0 {
		t.Fatalf("first output: %v vanished", got)
	}
	if got := ps.vanished(k, map[uint64]sentSeries{2: a[2]}); len(got) != 1 || got[0].name != MetricFindings {
		t.Fatalf("vanished %v, want the finding", got)
	}
	if got := ps.vanished(k, map[uint64]sentSeries{2: a[2]}); len(got) != 0 {
		t.Fatalf("vanished %v again", got)
	}
	ps.Gone(k, time.Now())
	if _, ok := ps.sent[k]; ok {
		t.Error("a gone process's series are still remembered")
	}
}

// TestScrapedLeak: a program the agent can only scrape over net/http/pprof
// gets its findings too, from its goroutine dumps.
func TestScrapedLeak(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a target and the agent")
	}
	tgt := targettest.Start(t, buildTarget(t, "population", targettest.BuildOpts{}), "-grow", "20")
	a, _ := runAgent(t, func(cfg *Config) {
		cfg.Discovery = discovery.Rules{Include: []discovery.Match{{Exe: "/no-such-program$"}}}
		cfg.PprofScrape = scrape.Config{Interval: time.Second, Profiles: []string{"goroutine"},
			Targets: []scrape.TargetConfig{{URL: "http://" + tgt.PprofAddr, Name: "pop-1", ServiceName: "pop"}}}
		cfg.Findings.Leak.Window = 30 * time.Second
		cfg.Findings.Leak.MinSpan = 4 * time.Second
	})
	m, e := newestFindings(t, a, store.ProcessKey{})
	if m.Process.ServiceName != "pop" || len(e.Findings) == 0 || e.Findings[0].Kind != findings.KindLeak || !strings.HasPrefix(e.Findings[0].Site.Frame, "main.parkChanRecv ") {
		t.Fatalf("stored findings of %+v: %+v; want a leak in main.parkChanRecv of service pop", m.Process, e.Findings)
	}
}
