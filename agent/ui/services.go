package ui

import (
	"cmp"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/goroscope/goroscope/pkg/store"
)

// Bounds of a service answer.
const (
	// maxServiceProcesses bounds the processes of a service answered (the
	// most recently seen kept).
	maxServiceProcesses = 50
	// maxServiceProcessEntries bounds the entries read per process (the
	// newest kept): a day of snapshots 10 s apart fits.
	maxServiceProcessEntries = 10_000
	// maxServicePoints bounds the moments of a service's series.
	maxServicePoints = 1000
)

// ServiceAnswer is a service's history across its processes (restarts):
// GET /api/services/{name}.
type ServiceAnswer struct {
	Service string `json:"service"`
	// From and To echo the range asked (absent when open).
	From time.Time `json:"from,omitzero"`
	To   time.Time `json:"to,omitzero"`
	// Newest is the newest moment of any of the service's known processes,
	// whatever the range: the end of a relative range ("the last hour"
	// of a service gone since).
	Newest time.Time `json:"newest,omitzero"`
	// Processes are the service's processes live or with stored moments in
	// the range, the newest first (by first seen).
	Processes []ServiceProcess `json:"processes"`
	// Omitted counts the service's known processes not listed: without
	// moments in the range, or beyond the maxServiceProcesses most
	// recently seen.
	Omitted int `json:"omitted"`
	// Truncated is set when a process had more than
	// maxServiceProcessEntries stored entries: its oldest were not read.
	Truncated bool          `json:"truncated"`
	Series    ServiceSeries `json:"series"`
}

// ServiceProcess is one process of a service.
type ServiceProcess struct {
	store.Process
	// Key is "PID/START", its key in ServiceSeries.ByProcess.
	Key  string `json:"key"`
	Live bool   `json:"live"`
	// Exited is set on a process the agent still lists that its last
	// snapshot found gone (ProcessRow.Exited).
	Exited bool `json:"exited,omitempty"`
	// FirstSeen and LastSeen are its oldest and newest stored snapshots
	// (LastSeen: the live process's last snapshot when newer), whatever the
	// range.
	FirstSeen time.Time `json:"first_seen,omitzero"`
	LastSeen  time.Time `json:"last_seen,omitzero"`
	// Peak is the most goroutines at one of its moments in the range (or
	// live now); Last those at LastSeen.
	Peak int `json:"peak"`
	Last int `json:"last"`
	// FindingsCount is the findings holding at LastSeen.
	FindingsCount int `json:"findings_count"`
	// Moments counts its stored moments in the range.
	Moments int `json:"moments"`
}

// ServiceSeries is the goroutines of a service's processes over time, on
// one time axis.
type ServiceSeries struct {
	// Moments are the times, oldest first: the processes' stored moments;
	// when there are more than maxServicePoints, the starts of as many
	// equal buckets spanning them (empty buckets left out).
	Moments []time.Time `json:"moments"`
	// Downsampled says Moments are buckets.
	Downsampled bool `json:"downsampled"`
	// ByProcess is per ServiceProcess.Key the goroutines at each moment
	// (in a bucket: the most), null where it has none.
	ByProcess map[string][]*float64 `json:"by_process"`
	// Total is the goroutines of all of them at each moment: per process
	// its value at the moment or its latest before, from its first moment
	// to its last.
	Total []float64 `json:"total"`
}

// service answers GET /api/services/{name...}?from=&to=.
func (s *server) service(r *http.Request) (any, error) {
	name := r.PathValue("name")
	from, to, err := parseRange(r)
	if err != nil {
		return nil, err
	}
	return BuildService(s.src, name, from, to)
}

// svcPoint is one stored moment of a process.
type svcPoint struct {
	t int64 // Unix nanoseconds
	v float64
}

// svcCand is a process of the service found before reading its entries.
type svcCand struct {
	proc   store.Process
	live   *Process
	newest time.Time
}

// BuildService answers the history of service name in [from, to) (zero:
// open): its processes are found among the live ones and the newest
// maxStoredProcessEntries stored goroutines entries (as the process
// list); each one's entries are read (metadata and summaries only, never
// payloads) up to maxServiceProcessEntries. An unknown service is a 404.
func BuildService(src Source, name string, from, to time.Time) (*ServiceAnswer, error) {
	stored, err := src.List(store.Query{Kind: store.KindGoroutines, Limit: maxStoredProcessEntries})
	if err != nil {
		return nil, fmt.Errorf("list stored processes: %w", err)
	}
	cands := map[store.ProcessKey]*svcCand{}
	for _, m := range stored {
		if m.Process.ServiceName != name {
			continue
		}
		k := m.Process.Key()
		if c := cands[k]; c == nil {
			cands[k] = &svcCand{proc: m.Process, newest: m.Time}
		} else if m.Time.After(c.newest) {
			c.proc, c.newest = m.Process, m.Time
		}
	}
	stored = nil
	for _, p := range src.Processes() {
		if p.ServiceName != name {
			continue
		}
		c := cands[p.Key()]
		if c == nil {
			c = &svcCand{proc: p.Process}
			cands[p.Key()] = c
		}
		if c.live == nil {
			c.live = &p
			if p.LastSnapshot.After(c.newest) {
				c.newest = p.LastSnapshot
			}
		}
	}
	if len(cands) == 0 {
		return nil, notFound("no process of service %q: none live, none in the newest %d stored entries", name, maxStoredProcessEntries)
	}
	out := &ServiceAnswer{Service: name, From: from, To: to, Processes: []ServiceProcess{}}
	for _, c := range cands {
		if c.newest.After(out.Newest) {
			out.Newest = c.newest
		}
	}
	// The most recently seen first; those seen only before the range are
	// out of it.
	var list []*svcCand
	for _, c := range cands {
		if c.live == nil && !from.IsZero() && c.newest.Before(from) {
			out.Omitted++
			continue
		}
		list = append(list, c)
	}
	slices.SortFunc(list, func(a, b *svcCand) int {
		return cmp.Or(b.newest.Compare(a.newest), cmp.Compare(a.proc.PID, b.proc.PID), cmp.Compare(a.proc.StartTime, b.proc.StartTime))
	})
	if len(list) > maxServiceProcesses {
		out.Omitted += len(list) - maxServiceProcesses
		list = list[:maxServiceProcesses]
	}
	var points [][]svcPoint
	for _, c := range list {
		sp, pts, truncated, err := serviceProcess(src, c, from, to)
		if err != nil {
			return nil, err
		}
		out.Truncated = out.Truncated || truncated
		if len(pts) == 0 && !sp.Live {
			out.Omitted++
			continue
		}
		out.Processes = append(out.Processes, sp)
		points = append(points, pts)
	}
	// The newest first: by first seen (unknown: not stored yet, newest).
	idx := make([]int, len(out.Processes))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(i, j int) int {
		a, b := out.Processes[i], out.Processes[j]
		if a.FirstSeen.IsZero() != b.FirstSeen.IsZero() {
			if a.FirstSeen.IsZero() {
				return -1
			}
			return 1
		}
		return cmp.Or(b.FirstSeen.Compare(a.FirstSeen), cmp.Compare(b.PID, a.PID))
	})
	procs := make([]ServiceProcess, len(idx))
	pts := make([][]svcPoint, len(idx))
	for n, i := range idx {
		procs[n], pts[n] = out.Processes[i], points[i]
	}
	out.Processes = procs
	out.Series = serviceSeries(procs, pts)
	return out, nil
}

// serviceProcess reads c's newest entries: its row, and its moments in
// [from, to), oldest first.
func serviceProcess(src Source, c *svcCand, from, to time.Time) (ServiceProcess, []svcPoint, bool, error) {
	k := c.proc.Key()
	ms, err := src.List(store.Query{Process: k, Kind: store.KindGoroutines, Limit: maxServiceProcessEntries})
	if err == nil && len(ms) == 0 { // no profiles: the snapshots carry summaries too
		ms, err = src.List(store.Query{Process: k, Kind: store.KindSnapshot, Limit: maxServiceProcessEntries})
	}
	if err != nil {
		return ServiceProcess{}, nil, false, fmt.Errorf("list entries of pid %d: %w", k.PID, err)
	}
	sp := ServiceProcess{Process: c.proc, Key: strconv.Itoa(k.PID) + "/" + strconv.FormatUint(k.StartTime, 10)}
	var pts []svcPoint
	for _, m := range ms {
		if (!from.IsZero() && m.Time.Before(from)) || (!to.IsZero() && !m.Time.Before(to)) {
			continue
		}
		v := summaryTotal(m.Summary)
		if n := len(pts); n > 0 && pts[n-1].t == m.Time.UnixNano() {
			continue // one moment, counted once
		}
		pts = append(pts, svcPoint{m.Time.UnixNano(), v})
		sp.Peak = max(sp.Peak, int(v))
	}
	sp.Moments = len(pts)
	if len(ms) > 0 {
		first, last := ms[0], ms[len(ms)-1]
		sp.FirstSeen, sp.LastSeen = first.Time, last.Time
		sp.Last = int(summaryTotal(last.Summary))
		sp.FindingsCount, _ = findingsFromSummary(last.Summary)
	}
	if p := c.live; p != nil {
		sp.Live = p.Live
		if p.Live && containsGone(p.Error) {
			sp.Live, sp.Exited = false, true
		}
		if !p.LastSnapshot.IsZero() && !p.LastSnapshot.Before(sp.LastSeen) {
			sp.LastSeen = p.LastSnapshot
			sp.Last = p.Counts.Total()
			sp.FindingsCount = len(p.Findings)
			if sp.Live && (to.IsZero() || p.LastSnapshot.Before(to)) {
				sp.Peak = max(sp.Peak, sp.Last)
			}
		}
	}
	return sp, pts, len(ms) == maxServiceProcessEntries, nil
}

// summaryTotal is the goroutines an entry's summary counts.
func summaryTotal(sum map[string]float64) float64 {
	if v, ok := sum[summaryGoroutines]; ok {
		return v
	}
	return float64(countsFromSummary(sum).Total())
}

// serviceSeries puts the processes' points (each oldest first) on one
// time axis of at most maxServicePoints moments.
func serviceSeries(procs []ServiceProcess, points [][]svcPoint) ServiceSeries {
	var times []int64
	for _, pts := range points {
		for _, p := range pts {
			times = append(times, p.t)
		}
	}
	slices.Sort(times)
	times = slices.Compact(times)
	s := ServiceSeries{Moments: []time.Time{}, Total: []float64{}, ByProcess: map[string][]*float64{}}
	// bucket is the moment index of time t.
	var bucket func(t int64) int
	n := len(times)
	var starts []int64
	if n <= maxServicePoints {
		starts = times
		bucket = func(t int64) int { i, _ := slices.BinarySearch(times, t); return i }
	} else {
		s.Downsampled = true
		lo, hi := times[0], times[n-1]
		width := (hi-lo)/maxServicePoints + 1
		n = maxServicePoints
		starts = make([]int64, n)
		for i := range starts {
			starts[i] = lo + int64(i)*width
		}
		bucket = func(t int64) int { return int((t - lo) / width) }
	}
	vals := make([][]*float64, len(procs))
	used := make([]bool, n)
	for pi, pts := range points {
		vs := make([]*float64, n)
		for _, p := range pts {
			b := bucket(p.t)
			used[b] = true
			if vs[b] == nil {
				v := p.v
				vs[b] = &v
			} else if p.v > *vs[b] {
				*vs[b] = p.v
			}
		}
		vals[pi] = vs
	}
	// Leave out the empty buckets.
	keep := make([]int, 0, n)
	for i := range n {
		if used[i] {
			keep = append(keep, i)
		}
	}
	for _, i := range keep {
		s.Moments = append(s.Moments, time.Unix(0, starts[i]).UTC())
	}
	s.Total = make([]float64, len(keep))
	for pi, p := range procs {
		vs := make([]*float64, len(keep))
		var carry *float64
		last := -1
		for j, i := range keep {
			vs[j] = vals[pi][i]
			if vs[j] != nil {
				last = j
			}
		}
		for j := range keep {
			if vs[j] != nil {
				carry = vs[j]
			}
			if carry != nil && j <= last {
				s.Total[j] += *carry
			}
		}
		s.ByProcess[p.Key] = vs
	}
	return s
}
