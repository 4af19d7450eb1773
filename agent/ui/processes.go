package ui

import (
	"cmp"
	"slices"
	"strings"

	"github.com/goroscope/goroscope/pkg/findings"
	"github.com/goroscope/goroscope/pkg/snapshot"
	"github.com/goroscope/goroscope/pkg/store"
)

// maxStoredProcessEntries bounds the entries read to list stored processes.
const maxStoredProcessEntries = 20_000

// ProcessRow is one line of the process list.
type ProcessRow struct {
	Process
	// Total is the goroutines in the last snapshot.
	Total int `json:"total"`
	// FindingsCount is the findings holding at the last snapshot: the
	// live ones, or those the newest stored entry's summary counts.
	FindingsCount int `json:"findings_count"`
	// FindingKinds counts them by kind, the worst kind first
	// (findings.Severity); absent when there are none.
	FindingKinds []KindCount `json:"finding_kinds,omitempty"`
}

// KindCount is how many findings of one kind a process has.
type KindCount struct {
	Kind  string `json:"kind"`
	Count int    `json:"count"`
}

// Summary keys of the findings (agent/daemon addFindingsSummary).
const (
	summaryFindings    = "findings"
	summaryFindingKind = "findings/"
)

// MergeProcesses lists the live processes and the stored ones the agent no
// longer knows, described by their newest entry: those with findings
// first, the worst first (by their worst kind, then by how many), then
// live first, then by service and pid.
func MergeProcesses(live []Process, stored []store.Meta) []ProcessRow {
	newest := map[store.ProcessKey]store.Meta{}
	for _, m := range stored {
		k := m.Process.Key()
		if old, ok := newest[k]; !ok || m.Time.After(old.Time) {
			newest[k] = m
		}
	}
	rows := []ProcessRow{}
	seen := map[store.ProcessKey]bool{}
	for _, p := range live {
		if seen[p.Key()] {
			continue
		}
		seen[p.Key()] = true
		if m, ok := newest[p.Key()]; ok && p.LastSnapshot.IsZero() {
			p.LastSnapshot = m.Time
		}
		row := ProcessRow{Process: p, Total: p.Counts.Total()}
		row.FindingsCount, row.FindingKinds = countFindings(p.Findings)
		rows = append(rows, row)
	}
	for k, m := range newest {
		if seen[k] {
			continue
		}
		c := countsFromSummary(m.Summary)
		row := ProcessRow{Process: Process{Process: m.Process, LastSnapshot: m.Time, Counts: c}, Total: c.Total()}
		row.FindingsCount, row.FindingKinds = findingsFromSummary(m.Summary)
		rows = append(rows, row)
	}
	slices.SortStableFunc(rows, func(a, b ProcessRow) int {
		if c := cmp.Compare(worstSeverity(b.FindingKinds), worstSeverity(a.FindingKinds)); c != 0 {
			return c
		}
		if c := cmp.Compare(b.FindingsCount, a.FindingsCount); c != 0 {
			return c
		}
		if a.Live != b.Live {
			if a.Live {
				return -1
			}
			return 1
		}
		if c := strings.Compare(a.ServiceName, b.ServiceName); c != 0 {
			return c
		}
		if c := cmp.Compare(a.PID, b.PID); c != 0 {
			return c
		}
		return cmp.Compare(a.StartTime, b.StartTime)
	})
	if rows == nil {
		rows = []ProcessRow{}
	}
	return rows
}

// countsFromSummary reads state counts from an entry's summary.
func countsFromSummary(sum map[string]float64) snapshot.Counts {
	get := func(st snapshot.State) int { return int(sum[summaryState+string(st)]) }
	return snapshot.Counts{
		Running:  get(snapshot.StateRunning),
		Runnable: get(snapshot.StateRunnable),
		Syscall:  get(snapshot.StateSyscall),
		Waiting:  get(snapshot.StateWaiting),
		Leaked:   get(snapshot.StateLeaked),
	}
}

// countFindings counts fs, in all and by kind (the worst kind first).
func countFindings(fs []findings.Finding) (int, []KindCount) {
	by := map[string]int{}
	for _, f := range fs {
		by[f.Kind]++
	}
	return len(fs), kindCounts(by)
}

// findingsFromSummary reads the findings counts of an entry's summary:
// "findings" in all, "findings/<kind>" by kind. An entry stored before
// findings has none.
func findingsFromSummary(sum map[string]float64) (int, []KindCount) {
	by := map[string]int{}
	total := 0
	for k, v := range sum {
		if kind, ok := strings.CutPrefix(k, summaryFindingKind); ok && kind != "" && v >= 1 {
			by[kind] = int(v)
			total += int(v)
		}
	}
	return max(total, int(sum[summaryFindings])), kindCounts(by)
}

// kindCounts lists counts by kind, the worst kind first, then by name.
func kindCounts(by map[string]int) []KindCount {
	if len(by) == 0 {
		return nil
	}
	out := make([]KindCount, 0, len(by))
	for k, n := range by {
		out = append(out, KindCount{Kind: k, Count: n})
	}
	slices.SortFunc(out, func(a, b KindCount) int {
		return cmp.Or(cmp.Compare(findings.Severity(b.Kind), findings.Severity(a.Kind)), strings.Compare(a.Kind, b.Kind))
	})
	return out
}

// worstSeverity is the severity of the worst kind of kc (listed worst
// first): 0 without findings, and 0 too for kinds this build does not
// know, which still sort before processes without findings by count.
func worstSeverity(kc []KindCount) int {
	if len(kc) == 0 {
		return 0
	}
	return findings.Severity(kc[0].Kind)
}
