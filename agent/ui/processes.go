package ui

import (
	"cmp"
	"slices"
	"strings"

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
}

// MergeProcesses lists the live processes and the stored ones the agent no
// longer knows, described by their newest entry; live first, then by
// service and pid.
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
		rows = append(rows, ProcessRow{Process: p, Total: p.Counts.Total()})
	}
	for k, m := range newest {
		if seen[k] {
			continue
		}
		c := countsFromSummary(m.Summary)
		rows = append(rows, ProcessRow{Process: Process{Process: m.Process, LastSnapshot: m.Time, Counts: c}, Total: c.Total()})
	}
	slices.SortStableFunc(rows, func(a, b ProcessRow) int {
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
