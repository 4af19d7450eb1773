//go:build linux

package panics

import (
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/goroscope/goroscope/bpf"
	"github.com/goroscope/goroscope/pkg/gobin"
	"github.com/goroscope/goroscope/pkg/golayout"
)

// closeDelay is how long a detached process stays known, for records
// still in the ring buffer to be symbolised.
const closeDelay = 10 * time.Second

// DefaultLinger is how long an executable keeps its probes after the last
// process attached to it was detached: a service restarting, or the next
// process of a build tool, is covered from its first instruction without
// a new attach.
const DefaultLinger = 10 * time.Minute

// exeKey identifies an executable file: the uprobes are on its inode.
type exeKey struct{ dev, ino uint64 }

// exe is one probed executable: its probes fire in every process running
// it, attached or not.
type exe struct {
	key    exeKey
	bin    *gobin.Binary
	minor  int
	pie    bool
	probes *bpf.PanicProbes
	// refs counts the attached processes running it and the detached ones
	// still known (closeDelay); at 0 the linger timer runs.
	refs  int
	timer *time.Timer
}

// proc is one attached (or recently detached) process.
type proc struct {
	exe   *exe
	bin   *gobin.Binary
	bias  uint64
	minor int
}

// Tracer watches processes for their panics. Attach, AttachIfProbed,
// Detach and Close are safe for concurrent use.
type Tracer struct {
	bt     *bpf.PanicTracer
	linger time.Duration // DefaultLinger
	keep   time.Duration // closeDelay
	out    chan Panic
	done   chan struct{} // closed when run has returned
	quit   chan struct{} // closed by Close
	once   sync.Once
	unreg  sync.WaitGroup // detaches in progress

	mu    sync.Mutex
	exes  map[exeKey]*exe
	procs map[int]*proc
	gone  map[int]*proc // detached, known for closeDelay
}

// New loads the probe and starts delivering records on Records. It needs
// root (or CAP_BPF and CAP_PERFMON). Executables keep their probes for
// DefaultLinger after their last process.
func New() (*Tracer, error) {
	bt, err := bpf.LoadPanicTracer()
	if err != nil {
		return nil, err
	}
	t := &Tracer{bt: bt, linger: DefaultLinger, keep: closeDelay, out: make(chan Panic, 64), done: make(chan struct{}), quit: make(chan struct{}),
		exes: map[exeKey]*exe{}, procs: map[int]*proc{}, gone: map[int]*proc{}}
	go t.run()
	return t, nil
}

// Records delivers a Panic per probe hit; it is closed after Close. A
// slow reader loses nothing until the ring buffer (256 KiB, about 80
// records) is full. Records come for every process running a probed
// executable, attached or not: a caller keeps those it watches.
func (t *Tracer) Records() <-chan Panic { return t.out }

// probeFuncs are the probed functions.
var probeFuncs = []struct {
	name string
	kind bpf.PanicKind
}{
	{"runtime.fatalpanic", bpf.PanicKindPanic},
	{"runtime.fatal", bpf.PanicKindFatal},
	{"runtime.throw", bpf.PanicKindThrow},
}

// Attach watches process pid (a Go program): its executable's runtime
// fatal paths get a probe, unless an earlier process of the same file
// left them there. Attaching an attached pid again is no error.
func (t *Tracer) Attach(pid int) error {
	_, err := t.attach(pid, false)
	return err
}

// AttachIfProbed attaches pid only if its executable has the probes
// already (another process of it is attached, or was within the linger),
// which costs the kernel nothing: it reports whether it did.
func (t *Tracer) AttachIfProbed(pid int) (bool, error) {
	return t.attach(pid, true)
}

func (t *Tracer) attach(pid int, onlyProbed bool) (bool, error) {
	key, err := exeOf(pid)
	if err != nil {
		return false, fmt.Errorf("watch pid %d for panics: %w", pid, err)
	}
	t.mu.Lock()
	if t.closedLocked() {
		t.mu.Unlock()
		return false, fmt.Errorf("watch pid %d for panics: %w", pid, bpf.ErrPanicTracerClosed)
	}
	if _, ok := t.procs[pid]; ok {
		t.mu.Unlock()
		return true, nil
	}
	if e := t.exes[key]; e != nil {
		defer t.mu.Unlock()
		bias, err := e.bin.LoadBias(pid)
		if err != nil {
			return false, fmt.Errorf("watch pid %d for panics: %w", pid, err)
		}
		t.addLocked(pid, e, bias)
		return true, nil
	}
	t.mu.Unlock()
	if onlyProbed {
		return false, nil
	}

	// Probe the executable: outside the lock, attaching takes milliseconds.
	e, bias, err := t.probe(pid, key)
	if err != nil {
		return false, fmt.Errorf("watch pid %d for panics: %w", pid, err)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closedLocked() {
		t.closeExe(e)
		return false, fmt.Errorf("watch pid %d for panics: %w", pid, bpf.ErrPanicTracerClosed)
	}
	if won := t.exes[key]; won != nil { // a concurrent attach probed it first
		t.closeExe(e)
		e = won
	} else {
		t.exes[key] = e
	}
	if _, ok := t.procs[pid]; !ok {
		t.addLocked(pid, e, bias)
	}
	return true, nil
}

// addLocked records pid as attached, running e; t.mu held.
func (t *Tracer) addLocked(pid int, e *exe, bias uint64) {
	t.procs[pid] = &proc{exe: e, bin: e.bin, bias: bias, minor: e.minor}
	t.refLocked(e)
}

func (t *Tracer) closedLocked() bool {
	select {
	case <-t.quit:
		return true
	default:
		return false
	}
}

// refLocked and unrefLocked count e's users; at zero the linger timer
// starts, and closes e unless a process comes back first. t.mu held.
func (t *Tracer) refLocked(e *exe) {
	e.refs++
	if e.timer != nil {
		e.timer.Stop()
		e.timer = nil
	}
}

func (t *Tracer) unrefLocked(e *exe) {
	if e.refs--; e.refs > 0 {
		return
	}
	e.timer = time.AfterFunc(t.linger, func() {
		t.mu.Lock()
		if e.refs > 0 || t.exes[e.key] != e {
			t.mu.Unlock()
			return
		}
		delete(t.exes, e.key)
		t.unreg.Add(1)
		t.mu.Unlock()
		defer t.unreg.Done()
		t.closeExe(e)
	})
}

// closeExe removes e's probes and closes its executable.
func (t *Tracer) closeExe(e *exe) {
	_ = e.probes.Close()
	_ = e.bin.Close()
}

// probe opens pid's executable and puts the probes on it, for every
// process running it.
func (t *Tracer) probe(pid int, key exeKey) (*exe, uint64, error) {
	bin, err := gobin.OpenProcess(pid)
	if err != nil {
		return nil, 0, err
	}
	e, bias, err := t.probeBinary(pid, key, bin)
	if err != nil {
		_ = bin.Close()
		return nil, 0, err
	}
	return e, bias, nil
}

func (t *Tracer) probeBinary(pid int, key exeKey, bin *gobin.Binary) (*exe, uint64, error) {
	v, err := golayout.ParseVersion(bin.GoVersion())
	if err != nil {
		return nil, 0, err
	}
	if v.Major != 1 || v.Minor < 21 {
		return nil, 0, fmt.Errorf("%s: Go %s is older than go1.21", bin.Name(), bin.GoVersion())
	}
	lay, err := golayout.ForVersion(bin.GoVersion())
	if err != nil {
		if lay, err = golayout.ForBinary("/proc/" + strconv.Itoa(pid) + "/exe"); err != nil {
			return nil, 0, err
		}
	}
	bias, err := bin.LoadBias(pid)
	if err != nil {
		return nil, 0, err
	}
	// The goroutine behind g0, when the offsets fit the probe's cookie.
	var gm, gsched, mcurg, bpoff uint8
	if g := lay.G; g.SchedPC == g.SchedSP+8 && g.SchedBP > g.SchedPC && g.SchedBP-g.SchedSP < 256 &&
		g.M > 0 && g.M < 256 && g.SchedSP > 0 && g.SchedSP < 256 && lay.M.Curg > 0 && lay.M.Curg < 256 {
		gm, gsched, mcurg, bpoff = uint8(g.M), uint8(g.SchedSP), uint8(lay.M.Curg), uint8(g.SchedBP-g.SchedSP)
	}
	var probes []bpf.PanicProbe
	for _, f := range probeFuncs {
		fn, ok := bin.FuncByName(f.name)
		if !ok {
			return nil, 0, fmt.Errorf("%s: no function %s in the pclntab", bin.Name(), f.name)
		}
		off, ok := bin.FileOffset(fn.Entry)
		if !ok {
			return nil, 0, fmt.Errorf("%s: %s at %#x is not in a loaded segment", bin.Name(), f.name, fn.Entry)
		}
		probes = append(probes, bpf.PanicProbe{Kind: f.kind, FileOffset: off, Panic: bpf.PanicLayoutFor(v.Minor), GoidOffset: uint16(lay.G.Goid),
			GOffM: gm, GOffSched: gsched, MOffCurg: mcurg, GobufBP: bpoff})
	}
	pp, err := t.bt.Attach("/proc/"+strconv.Itoa(pid)+"/exe", 0, probes)
	if err != nil {
		return nil, 0, err
	}
	return &exe{key: key, bin: bin, minor: v.Minor, pie: bin.ELF().Type == elf.ET_DYN, probes: pp}, bias, nil
}

// exeOf identifies pid's executable file.
func exeOf(pid int) (exeKey, error) {
	if pid <= 0 {
		return exeKey{}, fmt.Errorf("invalid pid %d", pid)
	}
	st, err := os.Stat("/proc/" + strconv.Itoa(pid) + "/exe")
	if err != nil {
		return exeKey{}, fmt.Errorf("its executable: %w", err)
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return exeKey{}, fmt.Errorf("its executable: no inode")
	}
	return exeKey{dev: sys.Dev, ino: sys.Ino}, nil
}

// Detach stops watching pid. Its executable keeps its probes for the
// linger (DefaultLinger) after its last process; the kernel's removal of
// them (about 300 ms of wall time) is not waited for.
func (t *Tracer) Detach(pid int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p, ok := t.procs[pid]
	if !ok {
		return
	}
	delete(t.procs, pid)
	if old := t.gone[pid]; old != nil {
		t.unrefLocked(old.exe)
	}
	t.gone[pid] = p
	time.AfterFunc(t.keep, func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		if t.gone[pid] == p {
			delete(t.gone, pid)
			t.unrefLocked(p.exe)
		}
	})
}

// Probed reports how many executables have probes now.
func (t *Tracer) Probed() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.exes)
}

// Stats are the probe's counters.
func (t *Tracer) Stats() (bpf.PanicStats, error) { return t.bt.Stats() }

// Close removes every probe and unloads the program; Records is closed.
// Records not yet received are dropped.
func (t *Tracer) Close() error {
	first := false
	t.once.Do(func() { first = true; close(t.quit) })
	if !first {
		<-t.done
		return nil
	}
	t.mu.Lock()
	exes := t.exes
	t.exes = map[exeKey]*exe{}
	t.procs, t.gone = map[int]*proc{}, map[int]*proc{}
	for _, e := range exes {
		if e.timer != nil {
			e.timer.Stop()
		}
	}
	t.mu.Unlock()
	var errs []error
	var wg sync.WaitGroup
	for _, e := range exes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := e.probes.Close(); err != nil {
				t.mu.Lock()
				errs = append(errs, err)
				t.mu.Unlock()
			}
		}()
	}
	wg.Wait()
	t.unreg.Wait()
	errs = append(errs, t.bt.Close())
	<-t.done
	// A closed Binary is safe to use: records rendered late yield no frames.
	for _, e := range exes {
		errs = append(errs, e.bin.Close())
	}
	return errors.Join(errs...)
}

func (t *Tracer) run() {
	defer close(t.done)
	defer close(t.out)
	for {
		r, err := t.bt.Read()
		if errors.Is(err, bpf.ErrPanicTracerClosed) {
			return
		}
		if err != nil {
			continue
		}
		select {
		case t.out <- render(r, t.procOf(int(r.PID))):
		case <-t.quit:
			return
		}
	}
}

// procOf is what is known of pid for its record: attached, recently
// detached, or a process not attached that runs a probed executable (its
// load bias read now, as it dies; 0 for a non-PIE executable once it is
// gone). nil when unknown.
func (t *Tracer) procOf(pid int) *proc {
	t.mu.Lock()
	defer t.mu.Unlock()
	if p := t.procs[pid]; p != nil {
		return p
	}
	if p := t.gone[pid]; p != nil {
		return p
	}
	key, err := exeOf(pid)
	if err != nil {
		return nil
	}
	e := t.exes[key]
	if e == nil {
		return nil
	}
	bias, err := e.bin.LoadBias(pid)
	if err != nil && e.pie {
		return nil
	}
	return &proc{exe: e, bin: e.bin, bias: bias, minor: e.minor}
}
