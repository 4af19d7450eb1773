package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"syscall"
	"time"

	"github.com/goroscope/goroscope/collect/discovery"
	"github.com/goroscope/goroscope/collect/exits"
	"github.com/goroscope/goroscope/collect/panics"
	"github.com/goroscope/goroscope/collect/process"
	"github.com/goroscope/goroscope/pkg/crash"
	"github.com/goroscope/goroscope/pkg/store"
)

// exitSubject is what the agent keeps of a watched process for its exit:
// the service it is counted under and when it was first watched.
type exitSubject struct {
	service string
	exe     process.ExeID
	since   time.Time
	// probed says the fatal-path probe was attached (probePanics).
	probed bool
}

// startExits starts following the watched processes' ends (collect/exits:
// the kernel's exit tracer, else polling): the returned function, run on
// a goroutine of its own until ctx ends, counts each exit in
// goroscope_process_exits_total{service_name,reason} and logs the abnormal
// ones of processes older than shortLived. nil when no watcher can run.
func (a *Agent) startExits(ctx context.Context) func() {
	w, err := exits.New(ctx, exits.Options{NoBPF: a.cfg.Walker == "procmem"})
	if err != nil {
		a.log.Warn("process exits are not followed; goroscope_process_exits_total stays empty", "err", err)
		return nil
	}
	a.exits = w
	attrs := []any{"mode", string(w.Mode())}
	if err := w.BPFError(); err != nil && w.Mode() != exits.ModeBPF {
		attrs = append(attrs, "bpf", err.Error())
	}
	// The fatal-path probe gives a crash its message and stack.
	var panicked <-chan panics.Panic
	if a.cfg.Walker != "procmem" {
		if pt, err := panics.New(); err != nil {
			attrs = append(attrs, "panic_probe", err.Error())
		} else {
			a.panics, panicked = pt, pt.Records()
		}
	}
	a.log.Info("following watched processes' exits", attrs...)
	return func() {
		defer w.Close()
		if a.panics != nil {
			defer a.panics.Close()
		}
		// Exits waiting for their panic's record (awaitsPanic), oldest
		// first, and the timer of the first one's deadline.
		var waiting []exits.Exit
		timer := time.NewTimer(time.Hour)
		timer.Stop()
		defer timer.Stop()
		settle := func(now time.Time, all bool) {
			for len(waiting) > 0 && (all || !a.awaitsPanic(waiting[0]) || now.Sub(waiting[0].Time) >= panicWait) {
				a.exited(waiting[0])
				waiting = waiting[1:]
			}
			if len(waiting) > 0 {
				timer.Reset(time.Until(waiting[0].Time.Add(panicWait)))
			}
		}
		for {
			select {
			case <-ctx.Done():
				settle(time.Now(), true)
				return
			case p := <-panicked:
				a.panicked(p)
				settle(time.Now(), false)
			case <-timer.C:
				settle(time.Now(), false)
			case e := <-w.Exits():
				// A panic's record comes before its exit, unless many
				// die at once: take those already read first, and wait
				// a little for those not yet.
				for drained := false; !drained; {
					select {
					case p := <-panicked:
						a.panicked(p)
					default:
						drained = true
					}
				}
				if len(waiting) > 0 || a.awaitsPanic(e) {
					waiting = append(waiting, e)
					settle(time.Now(), false)
					continue
				}
				a.exited(e)
			}
		}
	}
}

// panicWait is how long an exit that a panic or fatal error may have
// caused waits for the probe's record of it.
const panicWait = 2 * time.Second

// awaitsPanic reports whether exit e, of a process the fatal-path probe
// watched, looks like a panic's or fatal error's (status 2, or SIGABRT
// with GOTRACEBACK=crash) whose record has not come yet.
func (a *Agent) awaitsPanic(e exits.Exit) bool {
	if !(e.Reason == exits.ReasonExit && e.Code == 2) && !(e.Reason == exits.ReasonSignal && e.Signal == syscall.SIGABRT) {
		return false
	}
	k := store.ProcessKey{PID: e.PID, StartTime: e.StartTime}
	a.mu.Lock()
	defer a.mu.Unlock()
	s, ok := a.exitSubjects[k]
	_, seen := a.panicRecords[k]
	return ok && s.probed && !seen
}

// panicked keeps a watched process's panic or fatal error for its crash
// record (the first one: a concurrent map write may be reported by both
// writers).
func (a *Agent) panicked(p panics.Panic) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for k := range a.exitSubjects {
		if k.PID == p.PID {
			if _, ok := a.panicRecords[k]; !ok {
				a.panicRecords[k] = p
			}
			return
		}
	}
}

// watchExit follows the end of process p, just watched; a.mu held.
func (a *Agent) watchExit(p discovery.Process, now time.Time) {
	if a.exits == nil {
		return
	}
	k := store.ProcessKey{PID: p.PID, StartTime: p.StartTime}
	if err := a.exits.Watch(p.PID, p.StartTime); err != nil {
		a.log.Debug("cannot follow a process's exit", "pid", p.PID, "err", err)
		return
	}
	s := exitSubject{service: p.ServiceName, exe: p.ExeID, since: now}
	if a.panics != nil {
		// Free when an earlier process of its executable left the probe
		// on it: a crash-looping service is covered from its start. An
		// executable whose last process crashed unprobed is probed now.
		var ok bool
		var err error
		if _, crashed := a.crashedExes[p.ExeID]; crashed && !p.ExeID.IsZero() {
			ok, err = true, a.panics.Attach(p.PID)
		} else {
			ok, err = a.panics.AttachIfProbed(p.PID)
		}
		if err != nil {
			a.log.Debug("cannot probe a process's fatal paths", "pid", p.PID, "err", err)
		}
		s.probed = ok && err == nil
	}
	a.exitSubjects[k] = s
}

// probePanics attaches the fatal-path probe to the processes watched for
// a.panicProbeAfter (shortLived) whose executable has none yet: probing
// a file and removing the probes costs the kernel (a removal waits for a
// grace period), which the test binaries of a build host, each run once
// for seconds, would pay in a stream. An executable keeps its probes a
// while after its last process (panics.DefaultLinger), so its next
// processes are attached at once (watchExit).
func (a *Agent) probePanics(now time.Time) {
	if a.panics == nil {
		return
	}
	// Only the discovery loop calls this: a process is attached once.
	var due []store.ProcessKey
	a.mu.Lock()
	for k, s := range a.exitSubjects {
		if !s.probed && now.Sub(s.since) >= a.panicProbeAfter {
			due = append(due, k)
		}
	}
	a.mu.Unlock()
	for _, k := range due {
		err := a.panics.Attach(k.PID)
		a.mu.Lock()
		if s, ok := a.exitSubjects[k]; ok {
			s.probed = true // tried: a failure is not retried
			a.exitSubjects[k] = s
		}
		a.mu.Unlock()
		if err != nil {
			a.log.Debug("cannot probe a process's fatal paths", "pid", k.PID, "err", err)
		}
	}
}

// maxCrashedExes bounds Agent.crashedExes; crashedExeTTL is how long an
// entry is kept.
const (
	maxCrashedExes = 256
	crashedExeTTL  = time.Hour
)

// rememberCrashedExe notes that a process of executable id crashed before
// the fatal-path probe was on it: the next ones are probed at once.
func (a *Agent) rememberCrashedExe(id process.ExeID, now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for k, t := range a.crashedExes {
		if now.Sub(t) > crashedExeTTL {
			delete(a.crashedExes, k)
		}
	}
	if len(a.crashedExes) >= maxCrashedExes {
		var oldest process.ExeID
		var at time.Time
		for k, t := range a.crashedExes {
			if at.IsZero() || t.Before(at) {
				oldest, at = k, t
			}
		}
		delete(a.crashedExes, oldest)
	}
	a.crashedExes[id] = now
}

// exited counts and, when it was abnormal and the process not
// short-lived, logs one watched process's end.
func (a *Agent) exited(e exits.Exit) {
	k := store.ProcessKey{PID: e.PID, StartTime: e.StartTime}
	a.mu.Lock()
	s, ok := a.exitSubjects[k]
	delete(a.exitSubjects, k)
	p, panicked := a.panicRecords[k]
	delete(a.panicRecords, k)
	a.mu.Unlock()
	if !ok {
		return
	}
	if a.panics != nil && s.probed {
		a.panics.Detach(e.PID)
	}
	if crash.Crashed(string(e.Reason), e.Code, e.Signal.String()) {
		if !s.probed && a.panics != nil && !s.exe.IsZero() {
			a.rememberCrashedExe(s.exe, e.Time)
		}
		var pp *panics.Panic
		if panicked {
			pp = &p
		}
		a.recordCrash(k, s, e, pp)
	}
	a.metrics.exits.WithLabelValues(s.service, string(e.Reason)).Inc()
	normal := e.Reason == exits.ReasonExit && e.Code == 0
	if normal || e.Time.Sub(s.since) < shortLived {
		return
	}
	attrs := []any{"pid", e.PID, "service_name", s.service, "reason", string(e.Reason)}
	switch e.Reason {
	case exits.ReasonExit:
		attrs = append(attrs, "code", e.Code)
	case exits.ReasonSignal, exits.ReasonOOMKill:
		attrs = append(attrs, "signal", e.Signal.String(), "core_dumped", e.CoreDumped)
	}
	a.log.Warn("Go process died", attrs...)
}

// recordCrash stores a crash record (pkg/crash.Record) of process k's
// death e: how it ended, the runtime's message and the panicking stack
// when the fatal-path probe saw them (p), its class, and what the agent
// last knew of it
// (its last snapshot's time, the findings holding then, its runtime
// health), and counts it in goroscope_process_crashes_total.
func (a *Agent) recordCrash(k store.ProcessKey, s exitSubject, e exits.Exit, p *panics.Panic) {
	rec := crash.Record{PID: e.PID, StartTime: e.StartTime, ServiceName: s.service, Time: e.Time,
		Reason: string(e.Reason), Code: e.Code, CoreDumped: e.CoreDumped}
	if e.Signal != 0 {
		rec.Signal = e.Signal.String()
	}
	if p != nil {
		rec.Message, rec.GoID = p.Message, p.GoID
		for _, f := range p.Frames {
			rec.Stack = append(rec.Stack, fmt.Sprintf("%s %s:%d", f.Function, f.File, f.Line))
		}
		for _, f := range p.SystemFrames {
			rec.SystemStack = append(rec.SystemStack, fmt.Sprintf("%s %s:%d", f.Function, f.File, f.Line))
		}
	}
	rec.Class = crash.ClassOf(rec.Reason, rec.Code, rec.Signal, rec.Message)
	proc := store.Process{PID: e.PID, StartTime: e.StartTime, ServiceName: s.service}
	a.mu.Lock()
	w := a.procs[k]
	for _, r := range a.retired {
		if w == nil && r.proc.PID == k.PID && r.proc.StartTime == k.StartTime {
			w = r
		}
	}
	if w != nil {
		proc = w.storeProcess()
		rec.Exe, rec.GoVersion = w.proc.Exe, w.proc.GoVersion
		if !w.lastAt.IsZero() {
			rec.LastSnapshot = w.lastAt
			rec.LastSnapshotAge = e.Time.Sub(w.lastAt).Seconds()
		}
		rec.Findings = append(rec.Findings, w.findings...)
		rec.Runtime = w.runtimeHealth()
	}
	a.mu.Unlock()
	a.metrics.crashes.WithLabelValues(s.service, rec.Name).Inc()
	data, err := json.Marshal(rec)
	if err == nil {
		_, err = a.store.Append(store.Entry{Process: proc, Kind: store.KindCrash, Time: e.Time, Data: data})
	}
	if err != nil {
		a.metrics.errors.WithLabelValues("store").Inc()
		a.log.Warn("cannot store a crash record", "pid", e.PID, "err", err)
	}
}
