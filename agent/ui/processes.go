package ui

import (
	"cmp"
	"slices"
	"strings"
	"time"

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
	// FirstSeen is the process's oldest stored snapshot among those
	// listed; absent when none is stored yet.
	FirstSeen time.Time `json:"first_seen,omitzero"`
	// Growth is how its goroutines changed over the growth window; absent
	// without two moments in it.
	Growth *Growth `json:"growth,omitempty"`
	// ShortLived is set on a live process without findings seen for less
	// than shortLivedAge with at most shortLivedGoroutines goroutines (a
	// go build's tools): the list hides those by default.
	ShortLived bool `json:"short_lived,omitempty"`
	// Exited is set on a process the agent still lists whose last snapshot
	// found it gone: it is not live (Live is false), Error says how.
	Exited bool `json:"exited,omitempty"`
}

// Growth is how a process's goroutines changed over the growth window
// ending at its last snapshot, from the stored summaries.
type Growth struct {
	// WindowSeconds is the window: growthWindow.
	WindowSeconds float64 `json:"window_seconds"`
	// Since is the oldest stored moment in the window; From the
	// goroutines then, To those at the last snapshot (Total).
	Since time.Time `json:"since"`
	From  int       `json:"from"`
	To    int       `json:"to"`
	// Delta is To - From.
	Delta int `json:"delta"`
	// Growing is set when Delta is at least growthMinDelta and at least
	// growthMinRatio of From: such processes are listed just after those
	// with findings.
	Growing bool `json:"growing"`
}

// Growth and short-lived bounds.
const (
	growthWindow         = 15 * time.Minute
	growthMinDelta       = 10
	growthMinRatio       = 0.1
	shortLivedAge        = time.Minute
	shortLivedGoroutines = 32
)

// goneError is in the error of a snapshot of a process that exited or
// exec'd another program (collect/process.ErrProcessGone, which ErrExeced
// wraps).
const goneError = "process gone"

// containsGone says whether a snapshot error says the process is gone.
func containsGone(err string) bool { return strings.Contains(err, goneError) }

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
// first, the worst first (by their worst kind, then by how many), then the
// growing ones (Growth.Growing, the largest growth first), then live
// first, then by service and pid. stored are entries oldest first (as
// store.List returns them) with summaries; the growth of a process is
// read from those of its entries in the window.
func MergeProcesses(live []Process, stored []store.Meta) []ProcessRow {
	newest := map[store.ProcessKey]store.Meta{}
	oldest := map[store.ProcessKey]time.Time{}
	for _, m := range stored {
		k := m.Process.Key()
		if old, ok := newest[k]; !ok || m.Time.After(old.Time) {
			newest[k] = m
		}
		if t, ok := oldest[k]; !ok || m.Time.Before(t) {
			oldest[k] = m.Time
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
		row := ProcessRow{Process: p, Total: p.Counts.Total(), FirstSeen: oldest[p.Key()]}
		row.FindingsCount, row.FindingKinds = countFindings(p.Findings)
		if p.Live && containsGone(p.Error) {
			row.Live, row.Exited = false, true
		}
		rows = append(rows, row)
	}
	for k, m := range newest {
		if seen[k] {
			continue
		}
		c := countsFromSummary(m.Summary)
		row := ProcessRow{Process: Process{Process: m.Process, LastSnapshot: m.Time, Counts: c}, Total: c.Total(), FirstSeen: oldest[k]}
		row.FindingsCount, row.FindingKinds = findingsFromSummary(m.Summary)
		rows = append(rows, row)
	}
	addGrowth(rows, stored)
	for i := range rows {
		r := &rows[i]
		young := r.FirstSeen.IsZero() || r.LastSnapshot.Sub(r.FirstSeen) < shortLivedAge
		r.ShortLived = r.Live && r.FindingsCount == 0 && young && r.Total <= shortLivedGoroutines
	}
	slices.SortStableFunc(rows, func(a, b ProcessRow) int {
		if c := cmp.Compare(worstSeverity(b.FindingKinds), worstSeverity(a.FindingKinds)); c != 0 {
			return c
		}
		if c := cmp.Compare(b.FindingsCount, a.FindingsCount); c != 0 {
			return c
		}
		if ga, gb := growingBy(a), growingBy(b); ga != gb {
			return cmp.Compare(gb, ga)
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
	return rows
}

// growingBy is a row's growth when growing, else 0.
func growingBy(r ProcessRow) int {
	if r.Growth == nil || !r.Growth.Growing {
		return 0
	}
	return r.Growth.Delta
}

// addGrowth sets the rows' Growth: from the goroutines at the oldest of
// stored's entries of the process in the growth window ending at its last
// snapshot to its Total. One pass over stored, whatever the rows.
func addGrowth(rows []ProcessRow, stored []store.Meta) {
	at := make(map[store.ProcessKey]int, len(rows))
	for i, r := range rows {
		at[r.Key()] = i
	}
	since := make([]*store.Meta, len(rows))
	for j := range stored {
		m := &stored[j]
		i, ok := at[m.Process.Key()]
		if !ok {
			continue
		}
		end := rows[i].LastSnapshot
		if m.Time.Before(end.Add(-growthWindow)) || !m.Time.Before(end) {
			continue
		}
		if since[i] == nil || m.Time.Before(since[i].Time) {
			since[i] = m
		}
	}
	for i, m := range since {
		if m == nil {
			continue
		}
		from, to := countsFromSummary(m.Summary).Total(), rows[i].Total
		d := to - from
		rows[i].Growth = &Growth{WindowSeconds: growthWindow.Seconds(), Since: m.Time, From: from, To: to, Delta: d,
			Growing: d >= growthMinDelta && float64(d) >= growthMinRatio*float64(from)}
	}
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
