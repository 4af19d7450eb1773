// Package memcg runs commands in a memory cgroup of their own, limited the
// way systemd's MemoryMax or a pod's limits.memory limit the agent, and
// reports what the kernel saw: OOM kills and the peak usage. It uses cgroup
// v2 where the memory controller is enabled there, else cgroup v1
// (memory.limit_in_bytes), and makes the group a child of the caller's own
// memory cgroup, so it escapes no limit the caller has.
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
)

// Group is one memory cgroup made by New.
type Group struct {
	path string
	v2   bool
}

// New makes a memory cgroup named name (under the caller's own) limited
// to limit bytes. It needs root and a mounted memory controller.
func New(name string, limit int64) (*Group, error) {
	g, err := locate(name)
	if err != nil {
		return nil, err
	}
	if err := os.Mkdir(g.path, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("make memory cgroup %s (run as root): %w", g.path, err)
	}
	file, val := "memory.limit_in_bytes", strconv.FormatInt(limit, 10)
	if g.v2 {
		file = "memory.max"
	}
	if err := os.WriteFile(filepath.Join(g.path, file), []byte(val), 0o644); err != nil {
		_ = os.Remove(g.path)
		return nil, fmt.Errorf("limit memory cgroup %s to %d bytes: %w", g.path, limit, err)
	}
	if !g.v2 {
		// A v1 group starts from the peak of a previous one of that name.
		_ = os.WriteFile(filepath.Join(g.path, "memory.max_usage_in_bytes"), []byte("0"), 0o644)
	}
	return g, nil
}

// locate finds where a memory cgroup named name goes: under the caller's
// own, in v2 when the memory controller is there, else in v1.
func locate(name string) (*Group, error) {
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, fmt.Errorf("read /proc/self/cgroup: %w", err)
	}
	var v1, v2 string
	haveV2 := false
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			v2, haveV2 = parts[2], true
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c == "memory" {
				v1 = parts[2]
			}
		}
	}
	if haveV2 {
		for _, root := range []string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified"} {
			ctl, err := os.ReadFile(filepath.Join(root, v2, "cgroup.subtree_control"))
			if err == nil && containsWord(string(ctl), "memory") {
				return &Group{path: filepath.Join(root, v2, name), v2: true}, nil
			}
		}
	}
	if v1 != "" {
		if _, err := os.Stat("/sys/fs/cgroup/memory/memory.limit_in_bytes"); err == nil {
			return &Group{path: filepath.Join("/sys/fs/cgroup/memory", v1, name)}, nil
		}
	}
	return nil, errors.New("no memory cgroup controller: neither cgroup v2 with memory in cgroup.subtree_control nor a v1 memory hierarchy is mounted")
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
	script := `echo $$ > "$0/cgroup.procs" && exec "$@"`
	return exec.CommandContext(ctx, "/bin/sh", append([]string{"-c", script, g.path, name}, args...)...)
}

// OOMKills is how many processes of the group the kernel's OOM killer
// killed.
func (g *Group) OOMKills() (int, error) {
	file, key := "memory.oom_control", "oom_kill"
	if g.v2 {
		file = "memory.events"
	}
	n, err := g.stat(file, key)
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

// stat reads the value of key in a "key value" file of the group.
func (g *Group) stat(file, key string) (int64, error) {
	f, err := os.Open(filepath.Join(g.path, file))
	if err != nil {
		return 0, fmt.Errorf("read %s of %s: %w", file, g.path, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if ok && k == key {
			return strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, fmt.Errorf("%s of %s has no %s", file, g.path, key)
}

// Close kills what still runs in the group and removes it.
func (g *Group) Close() error {
	for try := 0; try < 50; try++ {
		data, err := os.ReadFile(filepath.Join(g.path, "cgroup.procs"))
		if errors.Is(err, os.ErrNotExist) {
			return nil
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
	var err error
	for try := 0; try < 50; try++ {
		if err = os.Remove(g.path); err == nil || errors.Is(err, os.ErrNotExist) {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("remove memory cgroup %s: %w", g.path, err)
}
