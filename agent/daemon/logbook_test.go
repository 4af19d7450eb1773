package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/goroscope/goroscope/collect/discovery"
	"github.com/goroscope/goroscope/pkg/store"
)

// recorder is a slog.Handler that keeps each record as one line: the
// level, the message and the attributes the logbook tests look at.
type recorder struct{ lines *[]string }

func (r recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r recorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r recorder) WithGroup(string) slog.Handler            { return r }
func (r recorder) Handle(_ context.Context, rec slog.Record) error {
	line := rec.Level.String() + " " + rec.Message
	rec.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "pid", "count", "exes", "not_watched", "period", "walker", "err":
			line += " " + a.Key + "=" + a.Value.String()
		}
		return true
	})
	*r.lines = append(*r.lines, line)
	return nil
}

// TestLogbook runs the logbook on a fake clock: discovery cycles 10s apart
// from t0, the host booted at t0 minus an hour. A step is one cycle: what
// discovery did, the processes present, and the lines the log gets.
func TestLogbook(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC)
	boot := t0.Add(-time.Hour)
	// proc is a process started age before t0 (negative: after t0).
	proc := func(pid int, exe string, age time.Duration) discovery.Process {
		ticks := (time.Hour - age) / (time.Second / userHZ)
		return discovery.Process{PID: pid, StartTime: uint64(ticks), Exe: exe, ServiceName: exe[strings.LastIndex(exe, "/")+1:]}
	}
	walker := func() string { return "procmem" }
	unsupported := errors.New("go1.19: unsupported Go version")

	old := proc(1, "/usr/bin/api", time.Hour)
	young := proc(2, "/usr/bin/worker", 0)
	prom := proc(3, "/usr/bin/prometheus", time.Hour)
	compile := func(pid int, at time.Duration) discovery.Process {
		return proc(pid, "/usr/lib/go/pkg/tool/linux_amd64/compile", -at)
	}

	type step struct {
		do      func(b *logbook)
		present []discovery.Process
		want    []string
	}
	tests := []struct {
		name  string
		steps []step
		stop  []string // the lines of flush at the agent's stop
	}{{
		name: "a process older than shortLived at start is named at once, and its going",
		steps: []step{
			{do: func(b *logbook) { b.watching(old, walker) }, present: []discovery.Process{old},
				want: []string{"INFO watching Go process pid=1 walker=procmem"}},
			{present: []discovery.Process{old}},
			{present: nil, want: []string{"INFO Go process gone pid=1"}},
		},
	}, {
		name: "a young process is named once shortLived old",
		steps: []step{
			{do: func(b *logbook) { b.watching(young, walker) }, present: []discovery.Process{young}},
			{present: []discovery.Process{young}},
			{present: []discovery.Process{young}},
			{present: []discovery.Process{young}, want: []string{"INFO watching Go process pid=2 walker=procmem"}},
			{present: []discovery.Process{young}},
			{present: nil, want: []string{"INFO Go process gone pid=2"}},
		},
	}, {
		name: "a refusal is one line for the life of the process, and no going",
		steps: []step{
			{do: func(b *logbook) { b.refused(prom, unsupported) }, present: []discovery.Process{prom},
				want: []string{"WARN cannot watch Go process pid=3 err=go1.19: unsupported Go version"}},
			{do: func(b *logbook) { b.refused(prom, unsupported) }, present: []discovery.Process{prom}},
			{present: []discovery.Process{prom}},
			{present: nil},
		},
	}, {
		name: "a refused process watched later is named again",
		steps: []step{
			{do: func(b *logbook) { b.refused(prom, unsupported) }, present: []discovery.Process{prom},
				want: []string{"WARN cannot watch Go process pid=3 err=go1.19: unsupported Go version"}},
			{do: func(b *logbook) { b.watching(prom, walker) }, present: []discovery.Process{prom},
				want: []string{"INFO watching Go process pid=3 walker=procmem"}},
			{present: nil, want: []string{"INFO Go process gone pid=3"}},
		},
	}, {
		name: "short-lived processes are summarised once a minute at most",
		steps: []step{
			{do: func(b *logbook) {
				b.watching(compile(10, 0), walker)
				b.watching(compile(11, 0), walker)
			}, present: []discovery.Process{compile(10, 0), compile(11, 0), old}},
			{do: func(b *logbook) {
				b.watching(proc(12, "/usr/local/go/bin/go", -10*time.Second), walker)
				b.refused(compile(13, 10*time.Second), unsupported)
			}, present: []discovery.Process{proc(12, "/usr/local/go/bin/go", -10*time.Second), compile(13, 10*time.Second)}}, // 10, 11 gone at 20s
			{present: nil}, // 12, 13 gone at 20s
			{present: nil},
			{present: nil},
			{present: nil},
			{present: nil},
			{present: nil, want: []string{"INFO short-lived Go processes came and went count=4 exes=compile=3 go=1 not_watched=1 period=1m0s"}},
			{do: func(b *logbook) { b.watching(compile(14, 80*time.Second), walker) }, present: []discovery.Process{compile(14, 80*time.Second)}},
			{present: nil}, // 14 gone at 90s: summarised a minute later, or at the stop
		},
		stop: []string{"INFO short-lived Go processes came and went count=1 exes=compile=1 not_watched=0 period=10s"},
	}, {
		name: "an exec is named if the process was, with its new program",
		steps: []step{
			{do: func(b *logbook) { b.watching(old, walker) }, present: []discovery.Process{old},
				want: []string{"INFO watching Go process pid=1 walker=procmem"}},
			{do: func(b *logbook) {
				next := old
				next.Exe = "/usr/bin/api2"
				b.execed(old, next)
				b.watching(next, walker)
			}, present: []discovery.Process{old},
				want: []string{"INFO process 1 exec'd a new executable: /usr/bin/api → /usr/bin/api2 pid=1", "INFO watching Go process pid=1 walker=procmem"}},
			{do: func(b *logbook) {
				next := young
				next.Exe = "/usr/bin/worker2"
				b.watching(young, walker)
				b.execed(young, next)
			}, present: []discovery.Process{old, young}},
			{present: []discovery.Process{old}}, // the young one gone unnamed
		},
		stop: []string{"INFO short-lived Go processes came and went count=1 exes=worker2=1 not_watched=0 period=10s"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var lines []string
			b := newLogbook(slog.New(recorder{&lines}), boot)
			now := t0
			for i, s := range tt.steps {
				lines = nil
				if s.do != nil {
					s.do(b)
				}
				present := map[store.ProcessKey]bool{}
				for _, p := range s.present {
					present[store.ProcessKey{PID: p.PID, StartTime: p.StartTime}] = true
				}
				b.sweep(present, now)
				if got, want := strings.Join(lines, "\n"), strings.Join(s.want, "\n"); got != want {
					t.Errorf("cycle %d (%v): log\n%s\nwant\n%s", i, now.Sub(t0), got, want)
				}
				now = now.Add(10 * time.Second)
			}
			lines = nil
			b.flush(now)
			if got, want := strings.Join(lines, "\n"), strings.Join(tt.stop, "\n"); got != want {
				t.Errorf("at the stop: log\n%s\nwant\n%s", got, want)
			}
		})
	}
}

// TestLogbookSummaryBounded: a summary names the five most frequent
// executables and counts the processes of the rest, however many came and
// went.
func TestLogbookSummaryBounded(t *testing.T) {
	var lines []string
	now := time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC)
	b := newLogbook(slog.New(recorder{&lines}), now.Add(-time.Hour))
	start := uint64(time.Hour / (time.Second / userHZ))
	pid := 100
	for i := range 300 {
		n := 1
		if i < 6 {
			n = 10 - i
		}
		for range n {
			pid++
			b.watching(discovery.Process{PID: pid, StartTime: start, Exe: fmt.Sprintf("/bin/tool%d", i)}, nil)
		}
	}
	b.sweep(nil, now)
	b.flush(now)
	want := "INFO short-lived Go processes came and went count=339 exes=tool0=10 tool1=9 tool2=8 tool3=7 tool4=6 others=299 not_watched=0 period=0s"
	if len(lines) != 1 || lines[0] != want {
		t.Errorf("log\n%s\nwant\n%s", strings.Join(lines, "\n"), want)
	}
}

// TestRefusals: a refused process is tried again after two discovery
// intervals, then after waits that double up to maxRefusedWait; a new
// program under the same pid is tried at once.
func TestRefusals(t *testing.T) {
	const interval = 10 * time.Second
	k := store.ProcessKey{PID: 7, StartTime: 1}
	exe, other := ExeKey{Ino: 1}, ExeKey{Ino: 2}
	r := refusals{}
	now := time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC)
	if r.waiting(k, exe, now) {
		t.Fatal("waiting before any refusal")
	}
	if !r.add(k, exe, now, interval) {
		t.Fatal("first refusal not first")
	}
	var waits []time.Duration
	for range 10 {
		start := now
		for r.waiting(k, exe, now) {
			now = now.Add(interval)
		}
		waits = append(waits, now.Sub(start))
		if r.add(k, exe, now, interval) {
			t.Fatal("a retry's refusal counted as first")
		}
	}
	want := []time.Duration{20 * time.Second, 40 * time.Second, 80 * time.Second, 160 * time.Second, 320 * time.Second, 10 * time.Minute, 10 * time.Minute, 10 * time.Minute, 10 * time.Minute, 10 * time.Minute}
	if fmt.Sprint(waits) != fmt.Sprint(want) {
		t.Errorf("waits %v, want %v", waits, want)
	}
	if r.waiting(k, other, now) {
		t.Error("an exec'd process waits")
	}
	if !r.add(k, other, now, interval) {
		t.Error("the new program's refusal is not first")
	}
	r.prune(map[store.ProcessKey]bool{k: true})
	if len(r) != 1 {
		t.Error("prune dropped a present process")
	}
	r.prune(nil)
	if len(r) != 0 {
		t.Error("prune kept a gone process")
	}
}
