//go:build linux

package exits

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goroscope/goroscope/bpf"
	"github.com/goroscope/goroscope/collect/cgroup"
)

// Reason is how a process ended.
type Reason string

// Reasons.
const (
	// ReasonExit: the process exited (exit_group, or returned from main)
	// with Code. A Go panic or fatal runtime error exits with 2.
	ReasonExit Reason = "exit"
	// ReasonSignal: a signal killed it (Signal, CoreDumped).
	ReasonSignal Reason = "signal"
	// ReasonOOMKill: the kernel's OOM killer killed it (Signal is SIGKILL).
	ReasonOOMKill Reason = "oom_kill"
	// ReasonUnknown: it is gone and nothing says how (polling only).
	ReasonUnknown Reason = "unknown"
)

// Source is where an Exit's status came from.
type Source string

// Sources.
const (
	// SourceBPF: the sched_process_exit tracepoint, at the last thread's
	// exit; OOM kills from oom:mark_victim.
	SourceBPF Source = "bpf"
	// SourcePidfd: PIDFD_INFO_EXIT of a pidfd, after the parent reaped
	// the process (Linux >= 6.15).
	SourcePidfd Source = "pidfd"
	// SourceProc: the exit_code field of the zombie's /proc/PID/stat.
	SourceProc Source = "proc"
	// SourceCgroup: no status, but the process's memory cgroup counted an
	// OOM kill as it went.
	SourceCgroup Source = "cgroup"
	// SourceGone: no status: the process was gone (ReasonUnknown).
	SourceGone Source = "gone"
)

// Mode is how a Watcher learns of exits.
type Mode string

// Modes.
const (
	ModeBPF  Mode = "bpf"  // the kernel reports each exit (bpf.ExitTracer)
	ModePoll Mode = "poll" // pidfds or /proc are polled
)

// Exit is how one watched process ended.
type Exit struct {
	// PID and StartTime are the process's, as given to Watch: StartTime
	// is in clock ticks since boot (/proc/PID/stat, process.StartTime).
	PID       int
	StartTime uint64
	// Time is when the process's last thread exited (ModeBPF), or when
	// the poll noticed that it had (ModePoll, or a sweep's find).
	Time   time.Time
	Reason Reason
	// Code is the exit status (0–255) with ReasonExit.
	Code int
	// Signal is the terminating signal with ReasonSignal and
	// ReasonOOMKill; CoreDumped says the kernel dumped a core.
	Signal     syscall.Signal
	CoreDumped bool
	// Source is where the status came from.
	Source Source
}

// Defaults of Options.
const (
	DefaultPollInterval  = time.Second
	DefaultSweepInterval = 30 * time.Second
	// recordGrace is how long after the kernel took a pid out of its map
	// (to report its exit) a missing record counts as lost.
	recordGrace = 2 * time.Second
	// oomWindow is how long after its cgroup counted an OOM kill a
	// process killed by SIGKILL, or gone, counts as that kill's victim.
	oomWindow = 5 * time.Second
)

// ErrClosed is returned by Watch once the Watcher is closed.
var ErrClosed = errors.New("exit watcher closed")

// Options configure New.
type Options struct {
	// NoBPF polls even where the exit tracer would load.
	NoBPF bool
	// Tracer is a loaded exit tracer for the Watcher to use and, once New
	// succeeds, own (Close closes it); nil: New loads one unless NoBPF.
	Tracer *bpf.ExitTracer
	// PollInterval is how often ModePoll checks the watched processes (0:
	// DefaultPollInterval).
	PollInterval time.Duration
	// SweepInterval is how often ModeBPF checks /proc for processes that
	// ended without a record (0: DefaultSweepInterval).
	SweepInterval time.Duration
	// MaxProcesses bounds the processes watched at once (0:
	// bpf.DefaultExitWatchMax).
	MaxProcesses int
}

// proc is one watched process.
type proc struct {
	pid   int
	start uint64
	pidfd int // -1: none (ModeBPF, or no pidfd_open)
	// cg reads the OOM kills of the process's memory cgroup when nothing
	// else tells OOM kills (ModePoll, no oom:mark_victim); ooms is the
	// count at the last poll that found the process alive, oomAt when a
	// poll last found it grown (the victim may take a poll or two to die).
	cg      *cgroup.Reader
	ooms    uint64
	haveOOM bool
	oomAt   time.Time
	// claimed: the kernel took the pid out of its map to report the exit,
	// at claimedAt; its record has not come yet.
	claimed   bool
	claimedAt time.Time
}

// Watcher reports how watched processes end. Its methods are safe for
// concurrent use.
type Watcher struct {
	tr       *bpf.ExitTracer // nil in ModePoll
	bpfErr   error           // why ModePoll
	countOOM bool            // read the cgroups' OOM counters
	interval time.Duration
	max      int
	mounts   cgroup.Mounts
	out      chan Exit
	wake     chan struct{}
	cancel   context.CancelFunc
	done     chan struct{} // closed when run has torn down
	reader   sync.WaitGroup

	mu       sync.Mutex
	procs    map[int]*proc
	queue    []Exit // exits not yet on out: at most one per watch
	closed   bool
	closeErr error
	readErr  error // why read stopped before Close
}

// New starts a Watcher that runs until ctx ends or Close. It loads the
// exit tracer (unless o.NoBPF or o.Tracer), and polls when that fails:
// Mode and BPFError say which and why. It fails only on bad options.
func New(ctx context.Context, o Options) (*Watcher, error) {
	w := &Watcher{
		max: o.MaxProcesses, procs: make(map[int]*proc),
		out: make(chan Exit), wake: make(chan struct{}, 1), done: make(chan struct{}),
	}
	if w.max == 0 {
		w.max = bpf.DefaultExitWatchMax
	}
	if w.max < 0 || o.PollInterval < 0 || o.SweepInterval < 0 {
		return nil, fmt.Errorf("exit watcher: MaxProcesses %d, PollInterval %v and SweepInterval %v may not be negative", o.MaxProcesses, o.PollInterval, o.SweepInterval)
	}
	switch {
	case o.Tracer != nil:
		w.tr = o.Tracer
	case o.NoBPF:
		w.bpfErr = errors.New("BPF not asked for")
	default:
		w.tr, w.bpfErr = bpf.LoadExitTracer(bpf.ExitTracerOptions{MaxProcesses: w.max})
	}
	w.interval = orDefault(o.PollInterval, DefaultPollInterval)
	if w.tr != nil {
		w.interval = orDefault(o.SweepInterval, DefaultSweepInterval)
		ok, _ := w.tr.OOMHooked()
		w.countOOM = !ok
	} else {
		w.countOOM = true
	}
	if w.countOOM {
		// Without the cgroup mounts no OOM kill is told; everything else works.
		w.mounts, _ = cgroup.ReadMounts("/proc")
	}
	ctx, w.cancel = context.WithCancel(ctx)
	if w.tr != nil {
		w.reader.Add(1)
		go w.read()
	}
	go w.run(ctx)
	return w, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// Mode says how exits are learned of.
func (w *Watcher) Mode() Mode {
	if w.tr != nil {
		return ModeBPF
	}
	return ModePoll
}

// BPFError says why the Watcher polls (nil in ModeBPF).
func (w *Watcher) BPFError() error { return w.bpfErr }

// ReadError says why the Watcher stopped reading the exit tracer's records
// (nil while it reads them, and in ModePoll). Exits go on being reported by
// the sweep, late and without their status.
func (w *Watcher) ReadError() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.readErr
}

// Exits delivers one Exit per watched process that ended. It is closed
// when the Watcher stops (Close, or its context's end). Exits wait in an
// internal queue, at most one per watched process, until read.
func (w *Watcher) Exits() <-chan Exit { return w.out }

// Watch starts watching process pid, whose start time is start (clock
// ticks since boot, as collect/process.StartTime reads it). A process that
// has already ended (gone, a zombie, or the pid reused) is reported at
// once. Watching it again is no error; watching the pid with another start
// time reports the earlier process as ended.
func (w *Watcher) Watch(pid int, start uint64) error {
	if pid <= 0 {
		return fmt.Errorf("watch pid %d for its exit: not a process id", pid)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return fmt.Errorf("watch pid %d for its exit: %w", pid, ErrClosed)
	}
	if p, ok := w.procs[pid]; ok {
		if p.start == start {
			return nil
		}
		// The pid names a later process now: the earlier one is over.
		// A record of it on its way is told apart by its start time.
		w.deliverLocked(p, w.inspect(p))
	}
	if len(w.procs) >= w.max {
		return fmt.Errorf("watch pid %d for its exit: already watching %d processes, the most allowed", pid, w.max)
	}
	p := &proc{pid: pid, start: start, pidfd: -1}
	if w.tr == nil {
		if fd, err := unix.PidfdOpen(pid, 0); err == nil {
			p.pidfd = fd // the process's only if it still has start below
		}
	} else if err := w.tr.Watch(uint32(pid)); err != nil {
		return err
	}
	w.procs[pid] = p
	st, err := readStat(pid)
	if err != nil || st.start != start {
		// Gone before it was watched, or the pid names another process
		// (and so may the pidfd).
		closeFd(&p.pidfd)
		w.endedLocked(p)
		return nil
	}
	if st.ended() {
		w.endedLocked(p)
		return nil
	}
	if w.countOOM {
		w.openCgroup(p)
	}
	return nil
}

// openCgroup opens the memory cgroup counters of p and reads its OOM kills.
func (w *Watcher) openCgroup(p *proc) {
	if w.mounts == nil {
		return
	}
	r, err := cgroup.Open(p.pid, cgroup.Options{Mounts: w.mounts})
	if err != nil {
		return // gone, or no cgroups: no OOM kills told
	}
	p.cg = r
	s := r.Read()
	p.ooms, p.haveOOM = s.OOMKills, s.HaveOOMKills
}

// Unwatch stops watching pid: no Exit comes for it, unless it ended before
// and its Exit is already queued. Unwatching a pid not watched is no error.
func (w *Watcher) Unwatch(pid int) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	p, ok := w.procs[pid]
	if !ok || w.closed {
		return nil
	}
	w.forgetLocked(p)
	if w.tr != nil && !p.claimed {
		if _, err := w.tr.Unwatch(uint32(pid)); err != nil {
			return err
		}
	}
	return nil
}

// Watching is the number of processes watched.
func (w *Watcher) Watching() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.procs)
}

// Close stops the Watcher, closes the exit tracer and the Exits channel,
// and waits for its goroutines. Exits not yet read are dropped.
func (w *Watcher) Close() error {
	w.cancel()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.closeErr
}

// read passes the tracer's records to handle until the tracer is closed.
func (w *Watcher) read() {
	defer w.reader.Done()
	for {
		r, err := w.tr.Read()
		if errors.Is(err, bpf.ErrExitTracerClosed) {
			return
		}
		if err != nil {
			// Not expected of a ring buffer: stop reading. The kernel goes
			// on taking exited pids out of its map, and the sweep reports
			// them, without the status, after recordGrace.
			w.mu.Lock()
			w.readErr = err
			w.mu.Unlock()
			return
		}
		w.handle(&r)
	}
}

// handle turns a record into the Exit of its process.
func (w *Watcher) handle(r *bpf.ExitRecord) {
	w.mu.Lock()
	defer w.mu.Unlock()
	p, ok := w.procs[int(r.PID)]
	if !ok || w.closed {
		return // unwatched since
	}
	switch {
	case r.StartTicks() < p.start:
		return // an earlier process with the pid, reported already
	case r.StartTicks() > p.start:
		// A later process with the pid, watched by the kernel in its place:
		// the watched one had ended before Watch.
		w.deliverLocked(p, w.inspect(p))
		return
	}
	e := Exit{PID: p.pid, StartTime: p.start, Time: r.Time, Source: SourceBPF}
	setStatus(&e, r.Status)
	if r.Flags&bpf.ExitOOMVictim != 0 && e.Reason == ReasonSignal && e.Signal == syscall.SIGKILL {
		e.Reason = ReasonOOMKill
	}
	w.oomFromCgroup(p, &e)
	w.deliverLocked(p, e)
}

// run delivers exits and polls (ModePoll) or sweeps (ModeBPF) until ctx
// ends, then tears down.
func (w *Watcher) run(ctx context.Context) {
	defer close(w.done)
	tick := time.NewTicker(w.interval)
	defer tick.Stop()
	for {
		var out chan<- Exit
		var next Exit
		w.mu.Lock()
		if len(w.queue) > 0 {
			out, next = w.out, w.queue[0]
		}
		w.mu.Unlock()
		select {
		case <-ctx.Done():
			w.teardown()
			return
		case <-w.wake:
		case <-tick.C:
			w.poll()
		case out <- next:
			w.mu.Lock()
			w.queue[0] = Exit{}
			w.queue = w.queue[1:]
			w.mu.Unlock()
		}
	}
}

func (w *Watcher) teardown() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	var errs []error
	if w.tr != nil {
		errs = append(errs, w.tr.Close()) // ends read
	}
	w.reader.Wait()
	w.mu.Lock()
	for _, p := range w.procs {
		w.forgetLocked(p)
	}
	w.queue = nil
	w.closeErr = errors.Join(errs...)
	w.mu.Unlock()
	close(w.out)
}

// poll finds the watched processes that ended: by their pidfds (one
// poll(2) for all) or /proc/PID/stat; and reads the cgroups' OOM counters
// of those alive. Claimed processes whose record is overdue are reported
// from what /proc and the pidfd still say.
func (w *Watcher) poll() {
	w.mu.Lock()
	defer w.mu.Unlock()
	var fds []unix.PollFd
	var withFd []*proc
	var ended []*proc
	now := time.Now()
	for _, p := range w.procs {
		switch {
		case p.claimed:
			if now.Sub(p.claimedAt) > recordGrace {
				w.deliverLocked(p, w.inspect(p))
			}
		case p.pidfd >= 0:
			fds = append(fds, unix.PollFd{Fd: int32(p.pidfd), Events: unix.POLLIN})
			withFd = append(withFd, p)
		default:
			if st, err := readStat(p.pid); err != nil || st.start != p.start || st.ended() {
				ended = append(ended, p)
			}
		}
	}
	if len(fds) > 0 {
		if _, err := unix.Poll(fds, 0); err == nil {
			for i, fd := range fds {
				if fd.Revents&(unix.POLLIN|unix.POLLHUP|unix.POLLERR|unix.POLLNVAL) != 0 {
					ended = append(ended, withFd[i])
				}
			}
		}
	}
	for _, p := range ended {
		w.endedLocked(p)
	}
	for _, p := range w.procs {
		if p.cg != nil && !p.claimed {
			s := p.cg.Read()
			if s.HaveOOMKills && p.haveOOM && s.OOMKills > p.ooms {
				p.oomAt = now
			}
			p.ooms, p.haveOOM = s.OOMKills, s.HaveOOMKills
		}
	}
}

// endedLocked handles a watched process found to have ended: the kernel
// reports it if it took the pid out of its map first; else its Exit is
// made from what is left.
func (w *Watcher) endedLocked(p *proc) {
	if w.tr != nil && !p.claimed {
		still, err := w.tr.Unwatch(uint32(p.pid))
		if err == nil && !still {
			p.claimed, p.claimedAt = true, time.Now()
			return
		}
	}
	w.deliverLocked(p, w.inspect(p))
}

// inspect makes the Exit of an ended process the kernel did not report:
// its status from the pidfd or the zombie's /proc/PID/stat when they still
// hold it, else ReasonUnknown; then an OOM kill from its cgroup's counter.
func (w *Watcher) inspect(p *proc) Exit {
	e := Exit{PID: p.pid, StartTime: p.start, Time: time.Now(), Reason: ReasonUnknown, Source: SourceGone}
	for try := 0; try < 2 && e.Source == SourceGone; try++ {
		if status, ok := pidfdExit(p.pidfd); ok {
			setStatus(&e, status)
			e.Source = SourcePidfd
		} else if st, err := readStat(p.pid); err == nil && st.start == p.start && st.ended() && st.haveCode {
			setStatus(&e, unix.WaitStatus(st.code))
			e.Source = SourceProc
		} else if p.pidfd < 0 {
			break // reaped: nothing holds the status any more
		}
		// The parent may have reaped it between the two reads: once more.
	}
	w.oomFromCgroup(p, &e)
	return e
}

// oomFromCgroup makes e an OOM kill when its status allows (SIGKILL, or
// none) and the process's memory cgroup counted an OOM kill since the
// process was last seen alive, or shortly before (oomWindow).
func (w *Watcher) oomFromCgroup(p *proc, e *Exit) {
	if p.cg == nil || !p.haveOOM || e.Reason == ReasonOOMKill {
		return
	}
	killed := e.Reason == ReasonSignal && e.Signal == syscall.SIGKILL
	if !killed && e.Reason != ReasonUnknown {
		return
	}
	recent := !p.oomAt.IsZero() && time.Since(p.oomAt) < max(oomWindow, 3*w.interval)
	if s := p.cg.Read(); recent || (s.HaveOOMKills && s.OOMKills > p.ooms) {
		if e.Reason == ReasonUnknown {
			e.Source, e.Signal = SourceCgroup, syscall.SIGKILL
		}
		e.Reason = ReasonOOMKill
	}
}

// deliverLocked queues e and forgets p.
func (w *Watcher) deliverLocked(p *proc, e Exit) {
	w.forgetLocked(p)
	w.queue = append(w.queue, e)
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// forgetLocked drops p and its files.
func (w *Watcher) forgetLocked(p *proc) {
	if w.procs[p.pid] == p {
		delete(w.procs, p.pid)
	}
	closeFd(&p.pidfd)
	if p.cg != nil {
		_ = p.cg.Close() // read-only files: nothing is lost
		p.cg = nil
	}
}

func closeFd(fd *int) {
	if *fd >= 0 {
		_ = unix.Close(*fd) // a pidfd: nothing to flush
		*fd = -1
	}
}

// setStatus sets e's reason and details from a wait(2) status.
func setStatus(e *Exit, ws unix.WaitStatus) {
	switch {
	case ws.Exited():
		e.Reason, e.Code = ReasonExit, ws.ExitStatus()
	case ws.Signaled():
		e.Reason, e.Signal, e.CoreDumped = ReasonSignal, syscall.Signal(ws.Signal()), ws.CoreDump()
	default:
		e.Reason = ReasonUnknown
	}
}

// pidfdExit is the exit status PIDFD_INFO_EXIT gives for a pidfd: only
// once the process is reaped, on Linux >= 6.15.
func pidfdExit(fd int) (unix.WaitStatus, bool) {
	if fd < 0 {
		return 0, false
	}
	info := unix.PidfdInfo{Mask: unix.PIDFD_INFO_EXIT}
	if err := unix.IoctlPidfdInfo(fd, &info); err != nil || info.Mask&unix.PIDFD_INFO_EXIT == 0 {
		return 0, false
	}
	return unix.WaitStatus(info.Exit_code), true
}

// stat is what readStat reads of /proc/PID/stat.
type stat struct {
	state    byte   // field 3
	start    uint64 // field 22, clock ticks since boot
	code     uint32 // field 52, the wait(2) status of a zombie
	haveCode bool
}

// ended says the process has exited: a zombie, or dead.
func (s stat) ended() bool { return s.state == 'Z' || s.state == 'X' || s.state == 'x' }

// readStat reads the state, start time and exit code of process pid.
func readStat(pid int) (stat, error) {
	var s stat
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return s, err
	}
	// The command (field 2) may hold spaces and parentheses.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return s, fmt.Errorf("/proc/%d/stat: no command", pid)
	}
	f := strings.Fields(string(b[i+1:])) // f[0] is field 3
	if len(f) < 20 || len(f[0]) != 1 {
		return s, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f)+2)
	}
	s.state = f[0][0]
	if s.start, err = strconv.ParseUint(f[19], 10, 64); err != nil {
		return s, fmt.Errorf("/proc/%d/stat: start time: %w", pid, err)
	}
	if len(f) >= 50 {
		if c, err := strconv.ParseUint(f[49], 10, 32); err == nil {
			s.code, s.haveCode = uint32(c), true
		}
	}
	return s, nil
}
