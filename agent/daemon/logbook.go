package daemon

import (
	"cmp"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goroscope/goroscope/collect/discovery"
	"github.com/goroscope/goroscope/pkg/store"
)

// shortLived is the age a Go process must reach before the log names it
// ("watching Go process", "cannot watch Go process"): on a build host the
// toolchain's go, compile and link processes come and go by the hundred.
// Those gone younger are summarised instead (goneSummaryEvery).
const shortLived = 30 * time.Second

// goneSummaryEvery is the shortest time between two summaries of the
// short-lived Go processes that came and went.
const goneSummaryEvery = time.Minute

// goneSummaryExes bounds the executables a summary names (the most
// frequent; the rest count as others) and goneSummaryDistinct those it
// counts apart.
const (
	goneSummaryExes     = 5
	goneSummaryDistinct = 100
)

// userHZ is the unit of a process's start time in /proc/PID/stat: 100
// ticks a second on Linux, whatever the kernel's HZ.
const userHZ = 100

// logbook decides what the log says of the Go processes discovery finds:
// each thing once per process (pid and start time), and nothing one by one
// of the short-lived ones. A process is named once it is shortLived old
// ("watching Go process", or "cannot watch Go process" with the reason),
// at the first discovery cycle after that (at once for those older when
// the agent starts); a process so named gets its "Go process gone" line.
// One gone younger is named by no line of its own: at most once every
// goneSummaryEvery, one line counts those that came and went, by
// executable.
//
// Only the discovery loop uses it, without a lock: the discovery cycle
// drives it (sweep), and it starts no goroutine. Times are the caller's,
// so tests run it on a fake clock.
type logbook struct {
	log *slog.Logger
	// boot is when the host booted: a process's start time counts ticks
	// (userHZ) from it.
	boot  time.Time
	procs map[store.ProcessKey]*logEntry
	gone  goneSummary
}

// logEntry is what the logbook knows of one process, and what it said.
type logEntry struct {
	proc discovery.Process
	// walker names the process's walker while watched (nil otherwise);
	// refusal is why it could not be, while refused.
	walker  func() string
	refusal error
	said    said
}

// said is the last thing the log said of a process.
type said int

const (
	saidNothing  said = iota
	saidWatching      // "watching Go process"
	saidRefused       // "cannot watch Go process"
	saidExeced        // "process exec'd a new executable" (and not yet watching it)
)

// goneSummary counts the short-lived processes gone since the last summary.
type goneSummary struct {
	first   time.Time // when the first of them was found gone
	count   int
	refused int // of count, those the agent could not watch
	exes    map[string]int
}

// newLogbook returns a logbook that writes to log, for a host booted at boot.
func newLogbook(log *slog.Logger, boot time.Time) *logbook {
	return &logbook{log: log, boot: boot, procs: map[store.ProcessKey]*logEntry{}}
}

// hostBoot returns when the host booted, by CLOCK_BOOTTIME (the clock of
// the start times in /proc/PID/stat), or now if it cannot tell: processes
// then look young, and are named shortLived after they were first seen.
func hostBoot(now time.Time) time.Time {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return now
	}
	return now.Add(-time.Duration(ts.Nano()))
}

// entry returns p's entry, made on first use.
func (b *logbook) entry(p discovery.Process) *logEntry {
	k := store.ProcessKey{PID: p.PID, StartTime: p.StartTime}
	e := b.procs[k]
	if e == nil {
		e = &logEntry{}
		b.procs[k] = e
	}
	e.proc = p
	return e
}

// watching records that the agent watches p now; walker names the walker
// that serves it when the log says so.
func (b *logbook) watching(p discovery.Process, walker func() string) {
	e := b.entry(p)
	e.walker, e.refusal = walker, nil
}

// refused records that the agent cannot watch p, for err.
func (b *logbook) refused(p discovery.Process, err error) {
	e := b.entry(p)
	e.walker, e.refusal = nil, err
}

// execed records that the watched process old now runs another
// executable (p, same pid and start time), and says so if the log named
// the process; the agent attaches to p anew.
func (b *logbook) execed(old, p discovery.Process) {
	e := b.entry(p)
	if e.said == saidWatching || e.said == saidExeced {
		b.log.Info(fmt.Sprintf("process %d exec'd a new executable: %s → %s", p.PID, old.Exe, p.Exe),
			"pid", p.PID, "old_service_name", old.ServiceName, "service_name", p.ServiceName)
		e.said = saidExeced
	}
	e.walker, e.refusal = nil, nil
}

// sweep ends a discovery cycle at now: present are the processes the scan
// found. It forgets the others, with a "Go process gone" line for those
// the log named as watched and a count in the summary for those it never
// named; names the processes shortLived old; and writes the summary once
// goneSummaryEvery has passed since the first process it counts left.
func (b *logbook) sweep(present map[store.ProcessKey]bool, now time.Time) {
	keys := make([]store.ProcessKey, 0, len(b.procs))
	for k := range b.procs {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(x, y store.ProcessKey) int { return cmp.Compare(x.PID, y.PID) })
	for _, k := range keys {
		e := b.procs[k]
		if !present[k] {
			delete(b.procs, k)
			switch e.said {
			case saidWatching, saidExeced:
				b.log.Info("Go process gone", "pid", k.PID, "service_name", e.proc.ServiceName)
			case saidNothing:
				b.gone.add(e, now)
			}
			continue
		}
		if now.Sub(b.started(e.proc)) < shortLived {
			continue
		}
		p := e.proc
		switch {
		case e.walker != nil && e.said != saidWatching:
			b.log.Info("watching Go process", "pid", p.PID, "service_name", p.ServiceName, "service_source", p.ServiceSource, "go", p.GoVersion, "exe", p.Exe, "walker", e.walker(), "sanitized", p.Sanitized)
			e.said = saidWatching
		case e.refusal != nil && e.said != saidRefused:
			b.log.Warn("cannot watch Go process", "pid", p.PID, "exe", p.Exe, "go", p.GoVersion, "err", e.refusal)
			e.said = saidRefused
		}
	}
	if b.gone.count > 0 && now.Sub(b.gone.first) >= goneSummaryEvery {
		b.flush(now)
	}
}

// flush writes the summary of the short-lived processes gone, if any: at
// the agent's stop, and from sweep.
func (b *logbook) flush(now time.Time) {
	g := &b.gone
	if g.count == 0 {
		return
	}
	b.log.Info("short-lived Go processes came and went", "count", g.count, "exes", g.exesText(),
		"not_watched", g.refused, "younger_than", shortLived.String(), "period", now.Sub(g.first).Round(time.Second).String())
	*g = goneSummary{}
}

// started is when p started, by the host's clock.
func (b *logbook) started(p discovery.Process) time.Time {
	return b.boot.Add(time.Duration(p.StartTime) * (time.Second / userHZ))
}

// add counts e, found gone at now.
func (g *goneSummary) add(e *logEntry, now time.Time) {
	if g.count == 0 {
		g.first = now
		g.exes = map[string]int{}
	}
	g.count++
	if e.walker == nil && e.refusal != nil {
		g.refused++
	}
	name := filepath.Base(strings.TrimSuffix(e.proc.Exe, " (deleted)"))
	if _, ok := g.exes[name]; ok || len(g.exes) < goneSummaryDistinct {
		g.exes[name]++
	}
}

// exesText is the executables counted, the most frequent first, and how
// many processes of others: "compile=30 go=5 asm=2 link=1 vet=1 others=3".
func (g *goneSummary) exesText() string {
	type n struct {
		name  string
		count int
	}
	var ns []n
	for name, c := range g.exes {
		ns = append(ns, n{name, c})
	}
	slices.SortFunc(ns, func(x, y n) int {
		return cmp.Or(cmp.Compare(y.count, x.count), strings.Compare(x.name, y.name))
	})
	var sb strings.Builder
	others := g.count
	for i, x := range ns[:min(len(ns), goneSummaryExes)] {
		if i > 0 {
			sb.WriteByte(' ')
		}
		fmt.Fprintf(&sb, "%s=%d", x.name, x.count)
		others -= x.count
	}
	if others > 0 {
		fmt.Fprintf(&sb, " others=%d", others)
	}
	return sb.String()
}
