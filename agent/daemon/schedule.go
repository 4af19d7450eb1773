package daemon

import (
	"context"
	"slices"
	"time"
)

// snapshotLoop walks each watched process when it is due, until ctx ends.
// Walks run one at a time; the time spent walking in each interval is
// bounded by the cycle budget: a process that does not fit waits for a
// later cycle (counted), and one that alone exceeds the budget is walked
// every few intervals.
func (a *Agent) snapshotLoop(ctx context.Context) {
	interval := time.Duration(a.cfg.SnapshotInterval)
	budget := time.Duration(a.cfg.CycleBudget)
	if budget <= 0 {
		budget = interval / 4
	}
	var cycleStart time.Time
	var spent time.Duration
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		next := a.nextDue()
		wait := time.Until(next)
		if next.IsZero() || wait > interval {
			wait = min(interval, time.Second)
		}
		timer.Reset(max(wait, 0))
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		a.closeRetired()
		now := time.Now()
		if now.Sub(cycleStart) >= interval {
			cycleStart, spent = now.Truncate(interval), 0
		}
		for _, w := range a.dueNow(now) {
			if ctx.Err() != nil {
				return
			}
			if spent > 0 && spent+w.lastTook > budget {
				// No room left in this cycle: next one.
				a.metrics.skipped.WithLabelValues("budget").Inc()
				a.mu.Lock()
				w.due = w.due.Add(interval)
				a.mu.Unlock()
				continue
			}
			took := a.snapshotOne(ctx, w, now)
			// The executable's pages the walk symbolised from are not
			// needed until the next walk: out of the agent's RSS.
			w.target.Bin.Trim()
			spent += took
			// A process whose walk alone exceeds the budget is sampled
			// every n-th interval.
			every := max(1, int((took+budget-1)/budget))
			if every > 1 {
				a.metrics.skipped.WithLabelValues("too_large").Add(float64(every - 1))
			}
			a.mu.Lock() // /metrics and the scheduler read every and due
			w.every = every
			w.due = w.due.Add(time.Duration(every) * interval)
			if w.due.Before(now) {
				w.due = now.Truncate(interval).Add(w.offset).Add(interval)
			}
			a.mu.Unlock()
		}
	}
}

// closeRetired releases the processes discovery dropped. Only the snapshot
// loop calls it, between walks.
func (a *Agent) closeRetired() {
	a.mu.Lock()
	keep := a.retired[:0]
	for _, w := range a.retired {
		if w.cpuWatched && !w.cpuDrained {
			keep = append(keep, w) // the next CPU drain still needs its target
			continue
		}
		a.release(w)
	}
	clear(a.retired[len(keep):])
	a.retired = keep
	a.mu.Unlock()
}

// release closes a process's target and releases its executable; a.mu held.
func (a *Agent) release(w *watched) {
	w.health.close()
	w.target.Close()
	a.exes.Release(w.exe)
}

// nextDue is when the next process is due; zero with none watched.
func (a *Agent) nextDue() time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	var next time.Time
	for _, w := range a.procs {
		if next.IsZero() || w.due.Before(next) {
			next = w.due
		}
	}
	return next
}

// dueNow lists the processes due at now, the most overdue first.
func (a *Agent) dueNow(now time.Time) []*watched {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []*watched
	for _, w := range a.procs {
		if !w.due.After(now) {
			out = append(out, w)
		}
	}
	slices.SortFunc(out, func(x, y *watched) int { return x.due.Compare(y.due) })
	return out
}
