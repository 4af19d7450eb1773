// Package cgroup reads the kernel's side of a process's resources from its cgroups, v2 and
// v1: the CPU bandwidth limit (quota and period) and how often it throttled the process, the
// memory limit, the memory in use and the OOM kills.
//
// A Reader finds the process's cgroups in /proc/PID/cgroup (a v1 path per controller, one
// unified v2 path) and their directories under the cgroup mounts of the agent's mount
// namespace (/proc/self/mountinfo). A controller mounted in a v1 hierarchy is read there,
// else in the unified one.
//
// Limits apply down the tree: the limit in force is the tightest of the cgroup's and its
// ancestors'. The CPU quota is looked for in each directory from the process's cgroup up to
// the mount's root (v1 cpu.cfs_quota_us over cpu.cfs_period_us, v2 cpu.max), and the
// throttling counters are those of the cgroup that sets the tightest quota (cpu.stat: v1
// nr_periods, nr_throttled and throttled_time in ns; v2 nr_periods, nr_throttled and
// throttled_usec), which is the one the kernel throttles. The v1 memory limit is the
// kernel's own hierarchical_memory_limit (memory.stat), which covers every ancestor; in v2
// memory.max is looked for up the tree ("max" is none). Memory in use is the process's
// cgroup's (v1 memory.usage_in_bytes, v2 memory.current), and the OOM kills are counted
// there (v1 memory.oom_control oom_kill, v2 memory.events oom_kill, which counts the kills
// in the cgroup and below).
//
// Limits of this package, which it reports rather than guesses around:
//   - The agent sees the tree from its cgroup namespace. A process whose cgroup lies outside
//     the namespace (the agent in a container with a cgroup namespace of its own, as cgroup v2
//     runtimes make by default) is named from outside it ("/../../kubepods/...") and is found
//     only when a mount shows that part of the tree: the host's cgroup filesystem mounted into
//     the agent's container. Else Open reports it unreachable.
//   - Ancestors above the mount's root are not seen: a quota set there (v1 and v2) or a v2
//     memory.max set there is missed. The v1 memory limit is not affected.
//   - A process moved to another cgroup is followed at the next Refresh.
//
// Reads are cheap: Open resolves the directories and opens the few files read each time;
// Read reads them again (one pread each: cpu.stat, the memory in use, the OOM kills), and
// Refresh, for the slow-changing limits, opens and reads the files of each ancestor. Every
// read is bounded; what the files hold is checked, and a malformed file gives an error, never
// a panic.
//
// Like all of collect/, it is internal to the goroscope binary.
package cgroup

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// Options say where the files are; zero values read the running system.
type Options struct {
	// Proc is the proc filesystem ("/proc").
	Proc string
	// Root is prefixed to every mount point (a captured tree in tests).
	Root string
	// Mounts are the agent's cgroup mounts, when already read (ReadMounts); nil reads them.
	Mounts Mounts
}

// Stats are what one Read found. A controller not found leaves its fields zero and says why
// in CPUError or MemoryError.
type Stats struct {
	// CPUVersion is the cgroup version the cpu controller was read in (1 or 2); 0 when none.
	CPUVersion int
	// CPUQuotaCores is the tightest CPU bandwidth limit of the cgroup and its ancestors, in
	// cores (quota over period); 0 when there is none. CPUQuotaCgroup is the cgroup that sets
	// it, as /proc/PID/cgroup names it, and CPUPeriod its period.
	CPUQuotaCores  float64
	CPUQuotaCgroup string
	CPUPeriod      time.Duration
	// Periods counts the enforcement periods in which the cgroup that sets the quota ran,
	// ThrottledPeriods those at whose end it was throttled, ThrottledTime the time its threads
	// were held back in all (cpu.stat of that cgroup; zero without a quota).
	Periods, ThrottledPeriods uint64
	ThrottledTime             time.Duration
	CPUError                  string

	// MemoryVersion is the cgroup version the memory controller was read in; 0 when none.
	MemoryVersion int
	// MemoryLimitBytes is the tightest memory limit of the cgroup and its ancestors; 0 when
	// there is none.
	MemoryLimitBytes int64
	// MemoryUsageBytes is the memory charged to the process's cgroup (page cache included).
	MemoryUsageBytes int64
	// OOMKills counts the processes of the cgroup the OOM killer killed; HaveOOMKills is
	// false where the kernel does not count them (v1 before Linux 4.13).
	OOMKills     uint64
	HaveOOMKills bool
	MemoryError  string
}

// Reader reads the cgroups of one process. It is not safe for concurrent use.
type Reader struct {
	pid  int
	opts Options
	// procCgroup is /proc/PID/cgroup, kept open: it names the process it was opened for
	// even after the pid is reused. last is what it held.
	procCgroup *os.File
	last       []byte
	cpu, mem   controller
	buf        []byte
}

// controller is where one controller of the process is read.
type controller struct {
	version int
	path    string // as /proc/PID/cgroup names it
	dir     string // its directory
	top     string // the mount's root directory: the highest ancestor seen
	// unreachable says why the cgroup was not found; err why the last Refresh failed.
	unreachable, err error

	// cpu: the cgroup that sets the quota, and its cpu.stat.
	quota     float64
	quotaPath string
	period    time.Duration
	stat      *os.File
	// memory: the limit, and the files read each time.
	limit      int64
	usage, oom *os.File
}

func (c *controller) close() {
	for _, f := range []**os.File{&c.stat, &c.usage, &c.oom} {
		if *f != nil {
			(*f).Close()
			*f = nil
		}
	}
}

// Open resolves the cgroups of process pid and reads their limits. It fails when
// /proc/PID/cgroup cannot be read; a controller that cannot be found or read is reported in
// the Stats of each Read.
func Open(pid int, o Options) (*Reader, error) {
	if o.Proc == "" {
		o.Proc = "/proc"
	}
	if o.Mounts == nil {
		ms, err := ReadMounts(o.Proc)
		if err != nil {
			return nil, fmt.Errorf("cgroups of pid %d: %w", pid, err)
		}
		o.Mounts = ms
	}
	f, err := os.Open(filepath.Join(o.Proc, strconv.Itoa(pid), "cgroup"))
	if err != nil {
		return nil, fmt.Errorf("cgroups of pid %d: %w", pid, err)
	}
	r := &Reader{pid: pid, opts: o, procCgroup: f, buf: make([]byte, 4096)}
	if err := r.Refresh(); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// Close releases the reader's files.
func (r *Reader) Close() error {
	r.cpu.close()
	r.mem.close()
	if r.procCgroup != nil {
		err := r.procCgroup.Close()
		r.procCgroup = nil
		return err
	}
	return nil
}

// Refresh reads the limits again, and follows the process to another cgroup. It fails only
// when /proc/PID/cgroup cannot be read (the process is gone).
func (r *Reader) Refresh() error {
	b, err := readAt(r.procCgroup, make([]byte, maxCgroupFile))
	if err != nil {
		return fmt.Errorf("cgroups of pid %d: %w", r.pid, err)
	}
	if string(b) != string(r.last) {
		ms, err := parseProcCgroup(b)
		if err != nil {
			return fmt.Errorf("cgroups of pid %d: /proc/%d/cgroup: %w", r.pid, r.pid, err)
		}
		r.last = b
		r.cpu.close()
		r.mem.close()
		r.cpu, r.mem = r.locate(ms, "cpu"), r.locate(ms, "memory")
	}
	if r.cpu.unreachable == nil {
		r.cpu.err = r.refreshCPU()
	}
	if r.mem.unreachable == nil {
		r.mem.err = r.refreshMemory()
	}
	return nil
}

// locate finds where controller c of the process is read: its v1 hierarchy, else the
// unified one.
func (r *Reader) locate(ms []membership, c string) controller {
	var v2path string
	haveV2 := false
	for _, m := range ms {
		if m.v2 {
			v2path, haveV2 = m.path, true
			continue
		}
		for _, mc := range m.controllers {
			if mc == c && r.opts.Mounts.hasV1(c) {
				return r.resolved(1, c, m.path)
			}
		}
	}
	if haveV2 {
		return r.resolved(2, c, v2path)
	}
	return controller{unreachable: fmt.Errorf("the %s controller is in no cgroup hierarchy of the process", c)}
}

func (r *Reader) resolved(version int, c, path string) controller {
	dir, top, err := r.opts.Mounts.resolve(version == 2, c, path)
	if err != nil {
		return controller{version: version, path: path, unreachable: err}
	}
	return controller{version: version, path: path, dir: filepath.Join(r.opts.Root, dir), top: filepath.Join(r.opts.Root, top)}
}

// ancestors calls f with the directory of c's cgroup and of each ancestor up to the mount's
// root, and the cgroup path of each; f stops the walk by returning false.
func (c *controller) ancestors(f func(dir, path string) (bool, error)) error {
	dir, path := c.dir, c.path
	for {
		more, err := f(dir, path)
		if err != nil || !more || dir == c.top || len(dir) <= len(c.top) {
			return err
		}
		dir, path = filepath.Dir(dir), parentPath(path)
	}
}

// parentPath is the parent of a cgroup path.
func parentPath(p string) string {
	d := filepath.Dir(p)
	if d == "." {
		return "/"
	}
	return d
}

// refreshCPU finds the tightest quota up the tree and opens the cpu.stat of the cgroup that
// sets it.
func (r *Reader) refreshCPU() error {
	c := &r.cpu
	quota, qpath, qdir, period := 0.0, "", "", time.Duration(0)
	err := c.ancestors(func(dir, path string) (bool, error) {
		q, p, ok, err := r.readQuota(c.version, dir)
		if err != nil || !ok {
			return true, err
		}
		if cores := float64(q) / float64(p); quota == 0 || cores < quota {
			quota, qpath, qdir, period = cores, path, dir, time.Duration(p)*time.Microsecond
		}
		return true, nil
	})
	if err != nil {
		return err
	}
	if qdir != c.quotaDir() {
		if c.stat != nil {
			c.stat.Close()
			c.stat = nil
		}
		if qdir != "" {
			f, err := os.Open(filepath.Join(qdir, "cpu.stat"))
			if err != nil {
				return fmt.Errorf("cgroup %s: %w", qpath, err)
			}
			c.stat = f
		}
	}
	c.quota, c.quotaPath, c.period = quota, qpath, period
	return nil
}

// quotaDir is the directory whose cpu.stat c reads.
func (c *controller) quotaDir() string {
	if c.stat == nil {
		return ""
	}
	return filepath.Dir(c.stat.Name())
}

// readQuota reads the CPU bandwidth limit of the cgroup in dir, in microseconds: ok is false
// when it sets none (or the controller is not enabled there).
func (r *Reader) readQuota(version int, dir string) (quota, period int64, ok bool, err error) {
	if version == 2 {
		b, err := r.readFile(filepath.Join(dir, "cpu.max"))
		if err != nil || b == nil {
			return 0, 0, false, err
		}
		return parseCPUMax(b)
	}
	qb, err := r.readFile(filepath.Join(dir, "cpu.cfs_quota_us"))
	if err != nil || qb == nil {
		return 0, 0, false, err
	}
	pb, err := r.readFile(filepath.Join(dir, "cpu.cfs_period_us"))
	if err != nil || pb == nil {
		return 0, 0, false, err
	}
	return parseV1Quota(qb, pb)
}

// refreshMemory reads the memory limit in force and opens the files read each time.
func (r *Reader) refreshMemory() error {
	c := &r.mem
	limit := int64(0)
	if c.version == 1 {
		b, err := r.readFileMax(filepath.Join(c.dir, "memory.stat"), 64<<10)
		if err != nil {
			return err
		}
		if b == nil {
			return fmt.Errorf("cgroup %s has no memory.stat", c.path)
		}
		if limit, err = parseV1Limit(b); err != nil {
			return fmt.Errorf("cgroup %s: memory.stat: %w", c.path, err)
		}
	} else {
		err := c.ancestors(func(dir, path string) (bool, error) {
			b, err := r.readFile(filepath.Join(dir, "memory.max"))
			if err != nil || b == nil {
				return true, err
			}
			l, err := parseMemoryMax(b)
			if err != nil {
				return false, fmt.Errorf("cgroup %s: memory.max: %w", path, err)
			}
			if l > 0 && (limit == 0 || l < limit) {
				limit = l
			}
			return true, nil
		})
		if err != nil {
			return err
		}
	}
	c.limit = limit
	if c.usage != nil {
		return nil
	}
	usage, oom := "memory.usage_in_bytes", "memory.oom_control"
	if c.version == 2 {
		usage, oom = "memory.current", "memory.events"
	}
	// In v2 a cgroup whose parent does not enable the memory controller has no memory
	// files: it is charged to the nearest ancestor that has them.
	err := c.ancestors(func(dir, path string) (bool, error) {
		f, err := os.Open(filepath.Join(dir, usage))
		if errors.Is(err, os.ErrNotExist) && c.version == 2 {
			return true, nil
		}
		if err != nil {
			return false, fmt.Errorf("cgroup %s: %w", path, err)
		}
		c.usage = f
		if g, err := os.Open(filepath.Join(dir, oom)); err == nil {
			c.oom = g
		}
		return false, nil
	})
	if err == nil && c.usage == nil {
		err = fmt.Errorf("cgroup %s: no %s in it nor in its ancestors", c.path, usage)
	}
	return err
}

// readFile reads a small file of the cgroup filesystem; nil, nil when it does not exist.
func (r *Reader) readFile(path string) ([]byte, error) { return r.readFileMax(path, 4096) }

func (r *Reader) readFileMax(path string, max int) ([]byte, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readAt(f, make([]byte, max))
}

// readAt reads a whole small file from its start into buf; a file that fills buf is
// refused: it is not what the kernel writes there.
func readAt(f *os.File, buf []byte) ([]byte, error) {
	n, err := f.ReadAt(buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read %s: %w", f.Name(), err)
	}
	if n == len(buf) {
		return nil, fmt.Errorf("read %s: longer than %d bytes", f.Name(), len(buf))
	}
	return buf[:n], nil
}

// Read reads the counters (throttling, memory in use, OOM kills) and returns them with the
// limits of the last Refresh.
func (r *Reader) Read() Stats {
	var s Stats
	if err := r.readCPU(&s); err != nil {
		s.CPUError = err.Error()
	}
	if err := r.readMemory(&s); err != nil {
		s.MemoryError = err.Error()
	}
	return s
}

func (r *Reader) readCPU(s *Stats) error {
	c := &r.cpu
	if err := cmpErr(c.unreachable, c.err); err != nil {
		return err
	}
	s.CPUVersion, s.CPUQuotaCores, s.CPUQuotaCgroup, s.CPUPeriod = c.version, c.quota, c.quotaPath, c.period
	if c.stat == nil {
		return nil
	}
	b, err := readAt(c.stat, r.buf)
	if err != nil {
		return err
	}
	st, err := parseCPUStat(b, c.version)
	if err != nil {
		return fmt.Errorf("cgroup %s: cpu.stat: %w", c.quotaPath, err)
	}
	s.Periods, s.ThrottledPeriods, s.ThrottledTime = st.periods, st.throttled, st.throttledTime
	return nil
}

func (r *Reader) readMemory(s *Stats) error {
	c := &r.mem
	if err := cmpErr(c.unreachable, c.err); err != nil {
		return err
	}
	s.MemoryVersion, s.MemoryLimitBytes = c.version, c.limit
	b, err := readAt(c.usage, r.buf)
	if err != nil {
		return err
	}
	if s.MemoryUsageBytes, err = parseInt(b); err != nil {
		return fmt.Errorf("cgroup %s: %s: %w", c.path, filepath.Base(c.usage.Name()), err)
	}
	if c.oom == nil {
		return nil
	}
	if b, err = readAt(c.oom, r.buf); err != nil {
		return err
	}
	v, ok, err := findKey(b, "oom_kill")
	if err != nil {
		return fmt.Errorf("cgroup %s: %s: %w", c.path, filepath.Base(c.oom.Name()), err)
	}
	s.OOMKills, s.HaveOOMKills = v, ok
	return nil
}

// cmpErr is the first non-nil error.
func cmpErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// Dir finds the directory of the cgroup of process pid that controller c (say "cpu" or
// "memory") controls, and its cgroup version: the controller's v1 hierarchy when it is
// mounted in one, else the unified one.
func Dir(pid int, c string, o Options) (dir string, version int, err error) {
	if o.Proc == "" {
		o.Proc = "/proc"
	}
	if o.Mounts == nil {
		if o.Mounts, err = ReadMounts(o.Proc); err != nil {
			return "", 0, err
		}
	}
	b, err := os.ReadFile(filepath.Join(o.Proc, strconv.Itoa(pid), "cgroup"))
	if err != nil {
		return "", 0, fmt.Errorf("cgroups of pid %d: %w", pid, err)
	}
	ms, err := parseProcCgroup(b)
	if err != nil {
		return "", 0, fmt.Errorf("cgroups of pid %d: %w", pid, err)
	}
	r := &Reader{opts: o}
	ctl := r.locate(ms, c)
	if ctl.unreachable != nil {
		return "", 0, fmt.Errorf("cgroups of pid %d: %w", pid, ctl.unreachable)
	}
	return ctl.dir, ctl.version, nil
}
