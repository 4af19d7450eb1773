package daemon

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.yaml.in/yaml/v3"

	"github.com/goroscope/goroscope/pkg/fold"
	"github.com/goroscope/goroscope/push/queue"
)

// The deploy/ files these tests check.
const (
	rulesFile     = "../../deploy/alerts/goroscope-rules.yaml"
	rulesTestFile = "../../deploy/alerts/goroscope-rules.test.yaml"
	dashboardFile = "../../deploy/grafana/goroscope-dashboard.json"
)

// promtool finds Prometheus' promtool; CI installs it with the prometheus package.
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("promtool not found (apt-get install prometheus): %v", err)
		}
		t.Skipf("promtool not found (apt-get install prometheus): %v", err)
	}
	return p
}

// exportedMetrics is every metric name the agent serves: its registries'
// descriptions, the per-process series and the histogram suffixes.
func exportedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	reg := newSelfMetrics(&Agent{}).reg
	if _, err := queue.NewMetrics(reg); err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	add := func(n string) {
		for _, suffix := range []string{"", "_bucket", "_sum", "_count"} {
			names[n+suffix] = true
		}
	}
	ch := make(chan *prometheus.Desc, 256)
	go func() {
		for _, c := range []prometheus.Collector{reg} {
			c.Describe(ch)
		}
		close(ch)
	}()
	fq := regexp.MustCompile(`fqName: "([^"]+)"`)
	for d := range ch {
		if m := fq.FindStringSubmatch(d.String()); m != nil {
			add(m[1])
		}
	}
	for _, d := range []*prometheus.Desc{descInterval, descWatched} {
		add(fq.FindStringSubmatch(d.String())[1])
	}
	for _, n := range []string{fold.MetricGoroutines, fold.MetricBlockedSeconds, fold.MetricProcessInfo} {
		add(n)
	}
	if !names["goroscope_push_sent_items_total"] || !names["goroscope_snapshot_duration_seconds_bucket"] || !names["process_cpu_seconds_total"] {
		t.Fatalf("metric names incomplete: %v", names)
	}
	return names
}

// metricRefs finds the metric names a PromQL expression refers to: every
// identifier of goroscope's, Go's or the process collector's namespaces.
var metricRefs = regexp.MustCompile(`\b(goroscope[_:][a-zA-Z0-9_:]*|process_[a-z_]+|go_[a-z_]+)\b`)

// quoted matches PromQL string literals, which name no metric.
var quoted = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)

// checkRefs fails for names expr uses that nothing defines.
func checkRefs(t *testing.T, where, expr string, known map[string]bool) {
	t.Helper()
	for _, n := range metricRefs.FindAllString(quoted.ReplaceAllString(expr, `""`), -1) {
		if !known[n] {
			t.Errorf("%s: %s is not a metric the agent serves nor a recording rule: %s", where, n, expr)
		}
	}
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Record string `yaml:"record"`
			Alert  string `yaml:"alert"`
			Expr   string `yaml:"expr"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// TestAlertRules: the rules are valid, their unit tests (a leaking process
// fires, a steady pool does not) pass, and they use only real metrics.
func TestAlertRules(t *testing.T) {
	pt := promtool(t)
	for _, args := range [][]string{{"check", "rules", rulesFile}, {"test", "rules", rulesTestFile}} {
		out, err := exec.Command(pt, args...).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "SUCCESS") {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	known := exportedMetrics(t)
	raw, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var rf ruleFile
	if err := yaml.Unmarshal(raw, &rf); err != nil {
		t.Fatal(err)
	}
	alerts := 0
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Record != "" {
				known[r.Record] = true
			}
		}
	}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			checkRefs(t, "rule "+r.Record+r.Alert, r.Expr, known)
			if r.Alert != "" {
				alerts++
			}
		}
	}
	if alerts < 5 {
		t.Errorf("%d alerts, want at least 5", alerts)
	}
}

type dashboard struct {
	UID    string `json:"uid"`
	Panels []struct {
		Type       string `json:"type"`
		Title      string `json:"title"`
		Datasource *struct {
			Type string `json:"type"`
			UID  string `json:"uid"`
		} `json:"datasource"`
		Targets []struct {
			Expr          string `json:"expr"`
			ProfileTypeID string `json:"profileTypeId"`
		} `json:"targets"`
	} `json:"panels"`
	Templating struct {
		List []struct {
			Name string `json:"name"`
		} `json:"list"`
	} `json:"templating"`
}

// grafanaVars are the dashboard's variables as they appear in queries.
var grafanaVars = regexp.MustCompile(`\$\{?([a-z_]+)\}?`)

// TestDashboard: every query of the Grafana dashboard is valid PromQL once
// its variables are filled in, uses only metrics the agent serves, and only
// variables the dashboard defines; the flame graphs ask for the profile
// types the agent pushes.
func TestDashboard(t *testing.T) {
	pt := promtool(t)
	raw, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	vars := map[string]bool{"__all": true}
	for _, v := range d.Templating.List {
		vars[v.Name] = true
	}
	known := exportedMetrics(t)
	known["goroscope:goroutines_blocked_over_10m"] = true
	var rules strings.Builder
	rules.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	queries, flames := 0, map[string]bool{}
	for _, p := range d.Panels {
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil {
			t.Errorf("panel %q has no datasource", p.Title)
			continue
		}
		for _, tg := range p.Targets {
			for _, m := range grafanaVars.FindAllStringSubmatch(tg.Expr+p.Datasource.UID, -1) {
				if !vars[m[1]] {
					t.Errorf("panel %q uses $%s, which the dashboard does not define", p.Title, m[1])
				}
			}
			if p.Type == "flamegraph" {
				flames[tg.ProfileTypeID] = true
				continue
			}
			checkRefs(t, fmt.Sprintf("panel %q", p.Title), tg.Expr, known)
			expr := grafanaVars.ReplaceAllString(tg.Expr, "x")
			fmt.Fprintf(&rules, "      - record: dashboard:query_%d\n        expr: %q\n", queries, expr)
			queries++
		}
	}
	if queries < 10 {
		t.Errorf("%d queries, want at least 10", queries)
	}
	for _, want := range []string{"goroutine:goroutine:count:goroutine:count", "goroutine_wall:wall:nanoseconds:wall:nanoseconds"} {
		if !flames[want] {
			t.Errorf("no flame graph of %s (have %v)", want, flames)
		}
	}
	path := filepath.Join(t.TempDir(), "dashboard-queries.yaml")
	if err := os.WriteFile(path, []byte(rules.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(pt, "check", "rules", path).CombinedOutput(); err != nil {
		t.Errorf("dashboard queries are not valid PromQL: %v\n%s", err, out)
	}
}
