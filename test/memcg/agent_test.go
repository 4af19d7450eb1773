package memcg_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goroscope/goroscope/test/eventually"
	"github.com/goroscope/goroscope/test/logbuf"
	"github.com/goroscope/goroscope/test/memcg"
	"github.com/goroscope/goroscope/test/targettest"
)

// limit is the memory limit the deploy files ship: systemd's MemoryMax=256M
// and the DaemonSet's limits.memory: 256Mi.
const limit = 256 << 20

// needRoot skips without root, except under CI, where it fails.
func needRoot(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts the agent and many targets; not with -short")
	}
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("the memory-limit tests need root (memory cgroups, eBPF); CI runs as root")
		}
		t.Skip("needs root: memory cgroups and eBPF")
	}
}

// agent is the goroscope agent running in a memory cgroup of its own.
type agent struct {
	addr string
	grp  *memcg.Group
	cmd  *exec.Cmd
	log  *logbuf.Buffer
	done chan struct{}
}

// buildAgent builds ./agent once per test binary.
var buildAgent = sync.OnceValues(func() (string, error) {
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	dir, err := os.MkdirTemp("", "goroscope-memcg-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "goroscope")
	cmd := exec.Command("go", "build", "-o", bin, "./agent")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build ./agent: %w\n%s", err, out)
	}
	return bin, nil
})

// startAgent runs the agent in a new memory cgroup limited to limit bytes,
// watching only executables under exeDir, with extra YAML config, and
// waits for its /healthz.
func startAgent(t *testing.T, exeDir, extra string) *agent {
	t.Helper()
	bin, err := buildAgent()
	if err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("goroscope-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	grp, err := memcg.New(name, limit)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := grp.Close(); err != nil {
			t.Error(err)
		}
	})
	addr := freeAddr(t)
	dir := t.TempDir()
	rule := strings.ReplaceAll("^"+regexp.QuoteMeta(exeDir)+"/", "'", "''")
	conf := fmt.Sprintf("discovery:\n  include:\n    - exe: '%s'\n%s", rule, extra)
	if err := os.WriteFile(filepath.Join(dir, "goroscope.yaml"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	a := &agent{addr: addr, grp: grp, log: &logbuf.Buffer{}, done: make(chan struct{})}
	a.cmd = grp.Command(context.Background(), bin, "agent", "--config", filepath.Join(dir, "goroscope.yaml"),
		"--listen", addr, "--data-dir", filepath.Join(dir, "data"), "--snapshot-interval", "3s", "--discovery-interval", "1s")
	a.cmd.Stdout, a.cmd.Stderr = a.log, a.log
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = a.cmd.Wait(); close(a.done) }()
	t.Cleanup(func() {
		_ = a.cmd.Process.Kill()
		<-a.done
		if t.Failed() {
			t.Logf("agent log (tail):\n%s", tail(a.log.String(), 40))
		}
	})
	eventually.Succeeds(t, 30*time.Second, func() error {
		if a.exited() {
			return fmt.Errorf("agent exited: %s", tail(a.log.String(), 10))
		}
		_, err := a.get("/healthz", 1<<10)
		return err
	})
	// It took 70% of its cgroup's limit as its soft memory limit.
	lim := float64(limit)
	if want := fmt.Sprintf("soft_limit_bytes=%d", int64(0.7*lim)); !strings.Contains(a.log.String(), want) {
		t.Errorf("agent log does not say %s:\n%s", want, tail(a.log.String(), 10))
	}
	return a
}

func (a *agent) exited() bool {
	select {
	case <-a.done:
		return true
	default:
		return false
	}
}

// get fetches path from the agent, reading at most max bytes.
func (a *agent) get(path string, max int64) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+a.addr+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, max))
	if resp.StatusCode != http.StatusOK {
		return body, fmt.Errorf("GET %s: %s: %s", path, resp.Status, tail(string(body), 3))
	}
	return body, err
}

// metric sums the samples of the metric name in /metrics whose labels
// contain every one of the given name="value" pairs.
func (a *agent) metric(name string, labels ...string) (float64, error) {
	body, err := a.get("/metrics", 64<<20)
	if err != nil {
		return 0, err
	}
	var sum float64
	sc := bufio.NewScanner(strings.NewReader(string(body)))
	sc.Buffer(make([]byte, 0, 1<<16), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(line, l)
		}
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			return 0, fmt.Errorf("metric line %q: %w", line, err)
		}
		sum += v
	}
	return sum, nil
}

// rssAnon is the agent's anonymous resident memory.
func (a *agent) rssAnon(t *testing.T) int64 {
	t.Helper()
	// The agent is the shell's exec'd image: same pid.
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", a.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "RssAnon:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no RssAnon in /proc/PID/status")
	return 0
}

// healthy fails the test if the agent died or the OOM killer struck in its
// cgroup.
func (a *agent) healthy(t *testing.T) {
	t.Helper()
	kills, err := a.grp.OOMKills()
	if err != nil {
		t.Fatal(err)
	}
	peak, _ := a.grp.Peak()
	t.Logf("memory cgroup peak %.1f MiB of %d MiB", float64(peak)/(1<<20), limit>>20)
	if kills != 0 {
		t.Fatalf("the OOM killer killed %d process(es) in the agent's %d MiB cgroup", kills, limit>>20)
	}
	if a.exited() {
		t.Fatalf("agent exited: %s", tail(a.log.String(), 20))
	}
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// copyExe copies the executable src to a new file in dir: another inode,
// so the agent reads and keeps it as a distinct executable.
func copyExe(t *testing.T, src, dst string) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, data, 0o755); err != nil {
		t.Fatal(err)
	}
}

// TestMillionGoroutines: one process of a million goroutines, watched by
// the agent in a 256 MiB cgroup: no OOM kill, snapshots sampled with exact
// counts, and the UI answers on it.
func TestMillionGoroutines(t *testing.T) {
	needRoot(t)
	const n = 1_000_000
	dir := t.TempDir()
	exe := filepath.Join(dir, "million")
	copyExe(t, targettest.Build(t, "latency", targettest.BuildOpts{}), exe)
	tgt := targettest.Start(t, exe, "-goroutines", strconv.Itoa(n), "-perchan", "1000", "-probe-interval", "0")
	a := startAgent(t, dir, "")
	var sampled float64
	eventually.Succeeds(t, 3*time.Minute, func() error {
		if a.exited() {
			return fmt.Errorf("agent exited: %s", tail(a.log.String(), 10))
		}
		var err error
		sampled, err = a.metric("goroscope_snapshots_sampled_total")
		if err == nil && sampled < 3 {
			err = fmt.Errorf("%v sampled snapshots so far, want 3", sampled)
		}
		return err
	})
	a.healthy(t)

	// The newest snapshot: exact counts, a stride, and goroutines within
	// the limit.
	var procs []struct {
		PID       int    `json:"pid"`
		StartTime uint64 `json:"start_time"`
	}
	body, err := a.get("/api/processes", 16<<20)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(body, &procs); err != nil {
		t.Fatalf("decode /api/processes: %v", err)
	}
	var start uint64
	for _, p := range procs {
		if p.PID == tgt.PID {
			start = p.StartTime
		}
	}
	if start == 0 {
		t.Fatalf("pid %d not in /api/processes: %s", tgt.PID, tail(string(body), 5))
	}
	proc := fmt.Sprintf("/api/processes/%d/%d", tgt.PID, start)
	snapJSON, err := a.get(proc+"/download?kind=snapshot&format=json", 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	var snap struct {
		Counts struct {
			Waiting, Running, Runnable, Syscall int
		} `json:"counts"`
		Stride     int               `json:"sample_stride"`
		Goroutines []json.RawMessage `json:"goroutines"`
	}
	if err := json.Unmarshal(snapJSON, &snap); err != nil {
		t.Fatalf("decode the snapshot download: %v", err)
	}
	total := snap.Counts.Waiting + snap.Counts.Running + snap.Counts.Runnable + snap.Counts.Syscall
	if total < n || total > n+100 {
		t.Errorf("snapshot counts %d goroutines, want the target's %d (+ a few of its own)", total, n)
	}
	if snap.Stride < 2 || len(snap.Goroutines) > total/snap.Stride+snap.Stride+100 {
		t.Errorf("snapshot has stride %d and %d goroutines for %d: want a sample", snap.Stride, len(snap.Goroutines), total)
	}
	t.Logf("snapshot: %d goroutines counted, %d kept (stride %d), %.0f sampled snapshots", total, len(snap.Goroutines), snap.Stride, sampled)
	// The goroutine table and the flame graph answer on it.
	for _, path := range []string{proc + "/goroutines?limit=50", proc + "/flame?kind=goroutines"} {
		if _, err := a.get(path, 64<<20); err != nil {
			t.Error(err)
		}
	}
	a.healthy(t)
}

// TestManyExecutables: 150 distinct executables, which any local user can
// start, watched by the agent in a 256 MiB cgroup: no OOM kill, every one
// snapshotted, and at most 0.5 MB of anonymous memory each.
func TestManyExecutables(t *testing.T) {
	needRoot(t)
	const n = 150
	dir := t.TempDir()
	src := targettest.Build(t, "latency", targettest.BuildOpts{})
	first := filepath.Join(dir, "exe-000")
	copyExe(t, src, first)
	targettest.Start(t, first, "-goroutines", "20", "-probe-interval", "0")
	a := startAgent(t, dir, "")
	snapshotsOf := func(want float64) func() error {
		return func() error {
			if a.exited() {
				return fmt.Errorf("agent exited: %s", tail(a.log.String(), 10))
			}
			got, err := a.metric("goroscope_snapshots_total")
			if err == nil && got < want {
				err = fmt.Errorf("%v snapshots so far, want %v", got, want)
			}
			return err
		}
	}
	eventually.Succeeds(t, time.Minute, snapshotsOf(2))
	base := a.rssAnon(t)
	for i := 1; i < n; i++ {
		exe := filepath.Join(dir, fmt.Sprintf("exe-%03d", i))
		copyExe(t, src, exe)
		targettest.Start(t, exe, "-goroutines", "20", "-probe-interval", "0")
	}
	eventually.Succeeds(t, 2*time.Minute, func() error {
		w, err := a.metric("goroscope_processes_watched")
		if err == nil && w < n {
			err = fmt.Errorf("%v processes watched, want %d", w, n)
		}
		return err
	})
	got, err := a.metric("goroscope_snapshots_total")
	if err != nil {
		t.Fatal(err)
	}
	eventually.Succeeds(t, 2*time.Minute, snapshotsOf(got+2*n))
	a.healthy(t)
	per := float64(a.rssAnon(t)-base) / (n - 1)
	t.Logf("anonymous memory: %.1f MiB with one executable, %.2f MiB more per further one", float64(base)/(1<<20), per/(1<<20))
	if per > 0.5*(1<<20) {
		t.Errorf("%.2f MiB of anonymous memory per distinct executable, want at most 0.5 MiB", per/(1<<20))
	}
}

// TestHeavyRequests: on a process of 150k goroutines kept whole, the UI's
// heavy answers (the goroutine table, the JSON download, flame graphs and
// a diff), eight at once, leave the agent in its 256 MiB cgroup: each is
// answered or refused with 503, and a download that is answered is whole.
func TestHeavyRequests(t *testing.T) {
	needRoot(t)
	const n = 150_000
	dir := t.TempDir()
	exe := filepath.Join(dir, "big")
	copyExe(t, targettest.Build(t, "latency", targettest.BuildOpts{}), exe)
	tgt := targettest.Start(t, exe, "-goroutines", strconv.Itoa(n), "-probe-interval", "0")
	a := startAgent(t, dir, "limits:\n  max_goroutines: 200000\n")
	var proc string
	eventually.Succeeds(t, 2*time.Minute, func() error {
		if a.exited() {
			return fmt.Errorf("agent exited: %s", tail(a.log.String(), 10))
		}
		got, err := a.metric("goroscope_snapshots_total")
		if err == nil && got < 3 {
			return fmt.Errorf("%v snapshots so far, want 3", got)
		}
		body, err := a.get("/api/processes", 16<<20)
		if err != nil {
			return err
		}
		var procs []struct {
			PID       int    `json:"pid"`
			StartTime uint64 `json:"start_time"`
		}
		if err := json.Unmarshal(body, &procs); err != nil {
			return err
		}
		for _, p := range procs {
			if p.PID == tgt.PID {
				proc = fmt.Sprintf("/api/processes/%d/%d", p.PID, p.StartTime)
			}
		}
		if proc == "" {
			return fmt.Errorf("pid %d not listed yet", tgt.PID)
		}
		return nil
	})
	paths := []string{
		proc + "/goroutines?limit=100&q=main", proc + "/goroutines?limit=100&offset=140000",
		proc + "/download?kind=snapshot&format=json", proc + "/download?kind=snapshot&format=json",
		proc + "/flame?kind=goroutines", proc + "/flame?kind=goroutine_wall",
		proc + "/diff?kind=goroutines&from=" + time.Now().Add(-2*time.Second).UTC().Format(time.RFC3339),
		proc + "/download?kind=goroutines&format=folded",
	}
	var wg sync.WaitGroup
	errs := make([]error, len(paths))
	bodies := make([][]byte, len(paths))
	for i, p := range paths {
		wg.Add(1)
		go func() {
			defer wg.Done()
			bodies[i], errs[i] = a.get(p, 1<<30)
		}()
	}
	wg.Wait()
	answered := 0
	for i, err := range errs {
		switch {
		case err == nil:
			answered++
		case strings.Contains(err.Error(), "503"):
			t.Logf("%s: refused while busy", paths[i])
		default:
			t.Errorf("%s: %v", paths[i], err)
		}
	}
	if answered < 4 {
		t.Errorf("%d of %d heavy requests answered, want at least the 4 the UI serves at once", answered, len(paths))
	}
	for i, p := range paths {
		if !strings.Contains(p, "format=json") || errs[i] != nil {
			continue
		}
		var snap struct {
			Goroutines []json.RawMessage `json:"goroutines"`
		}
		if err := json.Unmarshal(bodies[i], &snap); err != nil || len(snap.Goroutines) < n {
			t.Errorf("JSON download of %d bytes: %v, %d goroutines; want all %d", len(bodies[i]), err, len(snap.Goroutines), n)
		}
	}
	a.healthy(t)
}
