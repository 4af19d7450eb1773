// Package memcg runs commands in a cgroup of their own, limited the way
// systemd's MemoryMax and CPUQuota, or a pod's limits.memory and limits.cpu
// limit a service, and reports what the kernel saw: OOM kills, the peak
// usage, the CPU throttling. It uses the hierarchy each controller is
// mounted in, v1 or v2 (collect/cgroup.Dir), and makes the group a child of
// the caller's own cgroup there, so it escapes no limit the caller has.
package memcg

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/goroscope/goroscope/collect/cgroup"
)

// Group is one cgroup made by New or NewWith.
type Group struct {
	path string // the memory controller's group
	// cpuPath is the cpu controller's group when it is another directory
	// (a v1 hierarchy of its own), else "".
	cpuPath string
	v2      bool
}

// Limits are a group's limits; zero fields set none.
type Limits struct {
	// MemoryBytes is the memory limit (memory.limit_in_bytes, memory.max).
	MemoryBytes int64
	// CPUCores is the CFS bandwidth limit in cores: a quota of CPUCores
	// periods of 100 ms (cpu.cfs_quota_us, cpu.max).
	CPUCores float64
}

// cpuPeriodMicros is the CFS period the groups are given.
const cpuPeriodMicros = 100000

// New makes a memory cgroup named name (under the caller's own) limited
// to limit bytes. It needs root and a mounted memory controller.
func New(name string, limit int64) (*Group, error) {
	return NewWith(name, Limits{MemoryBytes: limit})
}

// NewWith makes a cgroup named name (under the caller's own) with the
// memory controller and, when l limits the CPU, the cpu controller, and
// sets l. It needs root and mounted controllers.
func NewWith(name string, l Limits) (*Group, error) {
	g, err := locate(name, l.CPUCores > 0)
	if err != nil {
		return nil, err
	}
	for _, p := range g.paths() {
		if err := os.Mkdir(p, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			_ = g.remove()
			return nil, fmt.Errorf("make cgroup %s (run as root): %w", p, err)
		}
	}
	var writes [][2]string // file, value
	if l.MemoryBytes > 0 {
		file := "memory.limit_in_bytes"
		if g.v2 {
			file = "memory.max"
		}
		writes = append(writes, [2]string{filepath.Join(g.path, file), strconv.FormatInt(l.MemoryBytes, 10)})
		if !g.v2 {
			// A v1 group starts from the peak of a previous one of that name.
			writes = append(writes, [2]string{filepath.Join(g.path, "memory.max_usage_in_bytes"), "0"})
		}
	}
	if l.CPUCores > 0 {
		quota := strconv.FormatInt(int64(l.CPUCores*cpuPeriodMicros+0.5), 10)
		if g.v2 {
			writes = append(writes, [2]string{filepath.Join(g.path, "cpu.max"), quota + " " + strconv.Itoa(cpuPeriodMicros)})
		} else {
			writes = append(writes,
				[2]string{filepath.Join(g.cpuPath, "cpu.cfs_period_us"), strconv.Itoa(cpuPeriodMicros)},
				[2]string{filepath.Join(g.cpuPath, "cpu.cfs_quota_us"), quota})
		}
	}
	for _, w := range writes {
		if err := os.WriteFile(w[0], []byte(w[1]), 0o644); err != nil {
			_ = g.remove()
			return nil, fmt.Errorf("set %s to %s: %w", w[0], w[1], err)
		}
	}
	return g, nil
}

// locate finds where a cgroup named name goes: under the caller's own, in
// the hierarchy of the memory controller and, withCPU, of the cpu one.
func locate(name string, withCPU bool) (*Group, error) {
	mounts, err := cgroup.ReadMounts("/proc")
	if err != nil {
		return nil, err
	}
	parent := func(c string) (string, bool, error) {
		dir, v, err := cgroup.Dir(os.Getpid(), c, cgroup.Options{Mounts: mounts})
		if err != nil {
			return "", false, fmt.Errorf("no %s cgroup controller: %w", c, err)
		}
		if v == 2 {
			ctl, err := os.ReadFile(filepath.Join(dir, "cgroup.subtree_control"))
			if err != nil || !containsWord(string(ctl), c) {
				return "", false, fmt.Errorf("no %s cgroup controller: cgroup v2 at %s does not enable it for its children (cgroup.subtree_control)", c, dir)
			}
		}
		return dir, v == 2, nil
	}
	mem, v2, err := parent("memory")
	if err != nil {
		return nil, err
	}
	g := &Group{path: filepath.Join(mem, name), v2: v2}
	if withCPU {
		cpu, cpuV2, err := parent("cpu")
		if err != nil {
			return nil, err
		}
		if cpuV2 != v2 {
			return nil, fmt.Errorf("the memory controller is in cgroup v%d and the cpu one in v%d: not supported", version(v2), version(cpuV2))
		}
		if !v2 {
			g.cpuPath = filepath.Join(cpu, name)
		}
	}
	return g, nil
}

func version(v2 bool) int {
	if v2 {
		return 2
	}
	return 1
}

// paths are the group's directories.
func (g *Group) paths() []string {
	if g.cpuPath != "" {
		return []string{g.path, g.cpuPath}
	}
	return []string{g.path}
}

func containsWord(s, w string) bool {
	for _, f := range strings.Fields(s) {
		if f == w {
			return true
		}
	}
	return false
}

// Path is the group's directory.
func (g *Group) Path() string { return g.path }

// Command is exec.CommandContext for a command that runs in the group: a
// shell moves itself in, then executes the command, so that nothing it
// allocates is charged elsewhere.
func (g *Group) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	w := g.Wrapper()
	return exec.CommandContext(ctx, w[0], append(append(w[1:], name), args...)...)
}

// Wrapper is the command line that runs a command in the group when the
// command and its arguments are appended: a shell that moves itself into
// the group's directories and executes it, under the same pid.
func (g *Group) Wrapper() []string {
	const script = `IFS=:; for d in $0; do echo $$ > "$d/cgroup.procs" || exit 1; done; exec "$@"`
	return []string{"/bin/sh", "-c", script, strings.Join(g.paths(), ":")}
}

// Throttled is what the group's cpu.stat says: how many enforcement
// periods it was throttled in, and for how long in all.
func (g *Group) Throttled() (periods int64, d time.Duration, err error) {
	dir, key, unit := g.cpuPath, "throttled_time", time.Nanosecond
	if g.v2 {
		dir, key, unit = g.path, "throttled_usec", time.Microsecond
	}
	if dir == "" {
		return 0, 0, errors.New("the group has no CPU limit")
	}
	if periods, err = stat(dir, "cpu.stat", "nr_throttled"); err != nil {
		return 0, 0, err
	}
	n, err := stat(dir, "cpu.stat", key)
	return periods, time.Duration(n) * unit, err
}

// OOMKills is how many processes of the group the kernel's OOM killer
// killed.
func (g *Group) OOMKills() (int, error) {
	file, key := "memory.oom_control", "oom_kill"
	if g.v2 {
		file = "memory.events"
	}
	n, err := stat(g.path, file, key)
	return int(n), err
}

// Peak is the group's highest memory usage, page cache included.
func (g *Group) Peak() (int64, error) {
	file := "memory.max_usage_in_bytes"
	if g.v2 {
		file = "memory.peak"
	}
	data, err := os.ReadFile(filepath.Join(g.path, file))
	if err != nil {
		return 0, fmt.Errorf("read %s of %s: %w", file, g.path, err)
	}
	return strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
}

// stat reads the value of key in a "key value" file of the group in dir.
func stat(dir, file, key string) (int64, error) {
	f, err := os.Open(filepath.Join(dir, file))
	if err != nil {
		return 0, fmt.Errorf("read %s of %s: %w", file, dir, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if ok && k == key {
			return strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, fmt.Errorf("%s of %s has no %s", file, dir, key)
}

// Close kills what still runs in the group and removes it.
func (g *Group) Close() error {
	for try := 0; try < 50; try++ {
		data, err := os.ReadFile(filepath.Join(g.path, "cgroup.procs"))
		if errors.Is(err, os.ErrNotExist) {
			break
		}
		pids := strings.Fields(string(data))
		if len(pids) == 0 {
			break
		}
		for _, p := range pids {
			if pid, err := strconv.Atoi(p); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		time.Sleep(20 * time.Millisecond) // the kernel reaps them asynchronously
	}
	return g.remove()
}

// remove removes the group's directories, waiting for the kernel to let
// go of them.
func (g *Group) remove() error {
	var errs []error
	for _, p := range g.paths() {
		var err error
		for try := 0; try < 50; try++ {
			if err = os.Remove(p); err == nil || errors.Is(err, os.ErrNotExist) {
				err = nil
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("remove cgroup %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}
