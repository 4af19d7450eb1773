package daemon

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"time"

	"github.com/goroscope/goroscope/pkg/findings"
	"github.com/goroscope/goroscope/pkg/fold"
	"github.com/goroscope/goroscope/pkg/label"
	"github.com/goroscope/goroscope/pkg/snapshot"
	"github.com/goroscope/goroscope/pkg/store"
)

// Series of the findings stage.
const (
	// MetricGroupGoroutines is goroutines per group (site, state, wait
	// reason) for the top groups of each process, the rest as site "other".
	MetricGroupGoroutines = "goroscope_goroutine_group_goroutines"
	// MetricFindings is one series per finding holding now, valued by the
	// goroutines involved.
	MetricFindings = "goroscope_findings"
	// maxSiteLabelBytes bounds the site label (a function, a line and its
	// creator's).
	maxSiteLabelBytes = 256
)

// FindingsConfig sets the thresholds of the findings (pkg/findings), for
// every process or per service.
type FindingsConfig struct {
	findings.Config `yaml:",inline"`
	// TopGroups is how many groups of each process get a series of their
	// own in goroscope_goroutine_group_goroutines.
	TopGroups int `yaml:"top_groups"`
	// Services override thresholds by service_name; zero fields take the
	// agent-wide ones.
	Services map[string]findings.Config `yaml:"services"`
}

// DefaultTopGroups is findings.top_groups by default.
const DefaultTopGroups = 20

// forService is the findings configuration of one service: its own
// thresholds over the agent-wide ones.
func (c FindingsConfig) forService(name string) findings.Config {
	out := c.Config
	s, ok := c.Services[name]
	if !ok {
		return out
	}
	override(&out.Leak.MinGoroutines, s.Leak.MinGoroutines)
	override(&out.Leak.MinGrowth, s.Leak.MinGrowth)
	override(&out.Leak.Window, s.Leak.Window)
	override(&out.Leak.MinSpan, s.Leak.MinSpan)
	override(&out.Leak.MaxDeparted, s.Leak.MaxDeparted)
	override(&out.Stuck.MinGoroutines, s.Stuck.MinGoroutines)
	override(&out.Stuck.MinWait, s.Stuck.MinWait)
	override(&out.AllAsleep.MinWait, s.AllAsleep.MinWait)
	override(&out.GomaxprocsOverQuota.Window, s.GomaxprocsOverQuota.Window)
	override(&out.NoMemoryLimit.MinHeapFraction, s.NoMemoryLimit.MinHeapFraction)
	override(&out.RunqueueBacklog.MinPerP, s.RunqueueBacklog.MinPerP)
	override(&out.RunqueueBacklog.For, s.RunqueueBacklog.For)
	return out
}

// override sets *dst to v unless v is zero (not set).
func override[T comparable](dst *T, v T) {
	var zero T
	if v != zero {
		*dst = v
	}
}

// validate names what is wrong with the findings configuration.
func (c FindingsConfig) validate() []string {
	var errs []string
	if c.TopGroups < 1 || c.TopGroups > 1000 {
		errs = append(errs, fmt.Sprintf("findings.top_groups %d: want 1 to 1000", c.TopGroups))
	}
	if err := c.Config.Validate(); err != nil {
		errs = append(errs, "findings: "+err.Error())
	}
	for _, name := range slices.Sorted(maps.Keys(c.Services)) {
		if err := c.forService(name).Validate(); err != nil {
			errs = append(errs, fmt.Sprintf("findings.services[%q]: %v", name, err))
		}
	}
	return errs
}

// Findings is what the findings stage made of one snapshot: the groups,
// the findings holding now, and their series.
type Findings struct {
	Groups   []*findings.Group
	Findings []findings.Finding
	Series   []fold.Series
}

// judge runs one snapshot of a process through its tracker, adds the
// findings of its runtime health, and makes the series of its top groups
// and findings with the process's labels.
func judge(tr *findings.Tracker, s *snapshot.Snapshot, runtime []findings.Finding, labels map[string]string, top int) Findings {
	groups, fs := tr.Observe(s)
	if len(runtime) > 0 {
		fs = findings.Merge(fs, runtime)
	}
	return Findings{Groups: groups, Findings: fs, Series: findingSeries(groups, fs, labels, top)}
}

// findingSeries is goroscope_goroutine_group_goroutines for the top groups
// (the rest summed per state and wait reason under site "other") and
// goroscope_findings for the findings, sorted.
func findingSeries(groups []*findings.Group, fs []findings.Finding, labels map[string]string, top int) []fold.Series {
	with := func(extra ...string) map[string]string { return fold.WithLabels(labels, extra...) }
	type key struct{ name, site, state, reason, kind string }
	sums := map[key]float64{}
	for i, g := range groups { // the largest first
		site := "other"
		if i < top {
			site = siteLabel(g.Site)
		}
		sums[key{name: MetricGroupGoroutines, site: site, state: string(g.Site.State), reason: g.Site.WaitReason}] += float64(g.Goroutines)
	}
	for _, f := range fs {
		// A runtime finding that involves no goroutine counts 1.
		sums[key{name: MetricFindings, site: siteLabel(f.Site), kind: f.Kind}] += float64(max(f.Goroutines, 1))
	}
	keys := slices.SortedFunc(maps.Keys(sums), func(a, b key) int {
		return cmp.Or(cmp.Compare(a.name, b.name), cmp.Compare(a.kind, b.kind), cmp.Compare(a.site, b.site),
			cmp.Compare(a.state, b.state), cmp.Compare(a.reason, b.reason))
	})
	out := make([]fold.Series, 0, len(keys))
	for _, k := range keys {
		var l map[string]string
		if k.name == MetricFindings {
			l = with("kind", k.kind, "site", k.site)
		} else {
			l = with("site", k.site, "state", k.state, "wait_reason", k.reason)
		}
		out = append(out, fold.Series{Name: k.name, Labels: l, Value: sums[k]})
	}
	return out
}

// siteLabel is a site as a bounded label value.
func siteLabel(s findings.Site) string {
	v, _ := label.Printable(s.Label(), maxSiteLabelBytes)
	return v
}

// findingsEntry is the stored form of one snapshot's findings
// (docs/findings-json.md): the findings holding at that moment.
type findingsEntry struct {
	PID      int                `json:"pid"`
	Time     string             `json:"time"`
	Findings []findings.Finding `json:"findings"`
}

// encodeFindings gzips the JSON of a snapshot's findings for the store;
// nil when there are none.
func encodeFindings(enc *encoder, proc store.Process, f Findings, at string) ([]byte, error) {
	if len(f.Findings) == 0 {
		return nil, nil
	}
	return enc.gzip("findings", func(w io.Writer) error {
		return json.NewEncoder(w).Encode(findingsEntry{PID: proc.PID, Time: at, Findings: f.Findings})
	})
}

// addFindingsSummary counts the findings in an entry's summary, for the
// process list: "findings" and "findings/<kind>".
func addFindingsSummary(sum map[string]float64, fs []findings.Finding) {
	if sum == nil {
		return
	}
	sum["findings"] = float64(len(fs))
	for _, f := range fs {
		sum["findings/"+f.Kind]++
	}
}

// sayFindings logs each finding when it first holds, and when it no
// longer does, with who's attributes; said are the ids logged as holding
// before, and the result those now.
func (a *Agent) sayFindings(said map[string]bool, fs []findings.Finding, who ...any) map[string]bool {
	now := make(map[string]bool, len(fs))
	for _, f := range fs {
		now[f.ID] = true
		if !said[f.ID] {
			a.log.Warn("finding", append(who, "kind", f.Kind, "id", f.ID, "summary", f.Summary)...)
		}
	}
	for id := range said {
		if !now[id] {
			a.log.Info("finding no longer holds", append(who, "id", id)...)
		}
	}
	return now
}

// addFindings runs a snapshot through its tracker into o, with the
// findings of the process's runtime health: the series, the summary's
// counts and the stored entry; it returns the findings.
func (a *Agent) addFindings(o *Output, enc *encoder, tr *findings.Tracker, s *snapshot.Snapshot, runtime []findings.Finding) ([]findings.Finding, error) {
	fs := judge(tr, s, runtime, o.Labels, a.cfg.Findings.TopGroups)
	o.Series = append(o.Series, fs.Series...)
	addFindingsSummary(o.Summary, fs.Findings)
	data, err := encodeFindings(enc, o.Process, fs, s.Time.UTC().Format(time.RFC3339Nano))
	o.Findings = data
	return fs.Findings, err
}
