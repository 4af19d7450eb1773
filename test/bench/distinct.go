package main

import (
	"bytes"
	"context"
	"debug/buildinfo"
	"debug/elf"
	"errors"
	"fmt"
	"go/version"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The distinct-executables row runs real Go programs of the installed
// toolchains (Go 1.21 and later: older ones are not watched by the agent),
// each a different build, the way a host runs different services rather
// than copies of one.
const (
	// distinctMinBytes and distinctMaxBytes bound the size of each
	// executable: realistic services, not toy binaries.
	distinctMinBytes = 10e6
	distinctMaxBytes = 60e6
	// distinctMinGo is the oldest Go release the agent watches.
	distinctMinGo = "go1.21"
	// programReadyTimeout bounds the wait for one program to be running
	// in its steady state (serving, or blocked reading its input).
	programReadyTimeout = 30 * time.Second
	// traceGenTimeout bounds writing one execution trace with a toolchain
	// (building the tiny tracing program with a cold cache included).
	traceGenTimeout = 3 * time.Minute
)

// distinctTools are the programs taken from each toolchain, in the order
// they are picked, and how each is kept alive.
var distinctTools = []string{"pprof", "trace", "compile", "go"}

// distinctProgram is one Go executable of an installed toolchain.
type distinctProgram struct {
	// path is the executable's real path (symbolic links resolved), the
	// path the agent sees in /proc/PID/exe.
	path string
	// tool is its name in distinctTools.
	tool string
	// goRoot is the toolchain it belongs to.
	goRoot string
	// goVersion is the Go release it was built with ("go1.22.12").
	goVersion string
	size      int64
	// buildID is the content of its .note.go.buildid ELF note.
	buildID string
}

// toolchainRoots lists the GOROOTs of the installed Go toolchains: the
// local one (`go env GOROOT`) and the golang.org/toolchain modules in the
// module cache (what GOTOOLCHAIN=go1.X.Y downloads), newest release first.
func toolchainRoots(ctx context.Context) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "env", "GOROOT", "GOMODCACHE").Output()
	if err != nil {
		return nil, fmt.Errorf("go env GOROOT GOMODCACHE: %w", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 2 || lines[0] == "" {
		return nil, fmt.Errorf("go env GOROOT GOMODCACHE: unexpected output %q", out)
	}
	roots := []string{lines[0]}
	if lines[1] != "" {
		pattern := filepath.Join(lines[1], "golang.org", "toolchain@v0.0.1-go*."+runtime.GOOS+"-"+runtime.GOARCH)
		mods, err := filepath.Glob(pattern)
		if err != nil {
			return nil, fmt.Errorf("list toolchains %s: %w", pattern, err)
		}
		roots = append(roots, mods...)
	}
	// Newest first; a root whose go command has no readable version sorts
	// last and is dropped later.
	versionOf := func(root string) string {
		bi, err := buildinfo.ReadFile(filepath.Join(root, "bin", "go"))
		if err != nil {
			return ""
		}
		return bi.GoVersion
	}
	slices.SortStableFunc(roots, func(a, b string) int { return version.Compare(versionOf(b), versionOf(a)) })
	return slices.Compact(roots), nil
}

// findDistinctPrograms picks n executables of the installed toolchains,
// one toolchain after another round robin so that they spread over the Go
// releases, each of Go 1.21 or later and of 10 to 60 MB, and checks that
// they are n different programs.
func findDistinctPrograms(ctx context.Context, n int) ([]distinctProgram, error) {
	roots, err := toolchainRoots(ctx)
	if err != nil {
		return nil, err
	}
	// The candidates of each toolchain, in distinctTools order.
	var perRoot [][]distinctProgram
	var skipped []string
	for _, root := range roots {
		var cands []distinctProgram
		for _, tool := range distinctTools {
			p, err := inspectProgram(root, tool)
			if err != nil {
				skipped = append(skipped, err.Error())
				continue
			}
			cands = append(cands, p)
		}
		perRoot = append(perRoot, cands)
	}
	var progs []distinctProgram
	for i := 0; i < len(distinctTools) && len(progs) < n; i++ {
		for _, cands := range perRoot {
			if i < len(cands) && len(progs) < n {
				progs = append(progs, cands[i])
			}
		}
	}
	if len(progs) < n {
		return nil, fmt.Errorf("found %d Go programs of Go ≥ 1.21 and 10–60 MB in %d toolchains (%s), want %d; install more toolchains (e.g. GOTOOLCHAIN=go1.22.12 go version); skipped: %s",
			len(progs), len(roots), strings.Join(roots, ", "), n, strings.Join(skipped, "; "))
	}
	if err := checkDistinct(progs); err != nil {
		return nil, err
	}
	// Ordered by release, then tool, for the report.
	slices.SortFunc(progs, func(a, b distinctProgram) int {
		if c := version.Compare(a.goVersion, b.goVersion); c != 0 {
			return c
		}
		return slices.Index(distinctTools, a.tool) - slices.Index(distinctTools, b.tool)
	})
	return progs, nil
}

// toolPath is where tool lives in the toolchain at root.
func toolPath(root, tool string) string {
	if tool == "go" {
		return filepath.Join(root, "bin", "go")
	}
	return filepath.Join(root, "pkg", "tool", runtime.GOOS+"_"+runtime.GOARCH, tool)
}

// inspectProgram reads tool of the toolchain at root: its real path,
// size, Go release and build ID. It fails for a missing file (Go 1.25
// and later ship no prebuilt pprof and trace), a release before Go 1.21,
// or a size outside 10–60 MB.
func inspectProgram(root, tool string) (distinctProgram, error) {
	p := distinctProgram{tool: tool, goRoot: root}
	var err error
	if p.path, err = filepath.EvalSymlinks(toolPath(root, tool)); err != nil {
		return p, fmt.Errorf("%s of %s: %w", tool, root, err)
	}
	fi, err := os.Stat(p.path)
	if err != nil {
		return p, fmt.Errorf("%s: %w", p.path, err)
	}
	p.size = fi.Size()
	bi, err := buildinfo.ReadFile(p.path)
	if err != nil {
		return p, fmt.Errorf("%s: not a Go executable: %w", p.path, err)
	}
	p.goVersion = bi.GoVersion
	if version.Compare(p.goVersion, distinctMinGo) < 0 {
		return p, fmt.Errorf("%s: %s is older than %s", p.path, p.goVersion, distinctMinGo)
	}
	if p.size < distinctMinBytes || p.size > distinctMaxBytes {
		return p, fmt.Errorf("%s: %s, not 10–60 MB", p.path, mb(float64(p.size)))
	}
	if p.buildID, err = goBuildID(p.path); err != nil {
		return p, err
	}
	return p, nil
}

// goBuildID reads the Go build ID from the executable's .note.go.buildid
// ELF note (name "Go", type 4), as `go tool buildid` prints it.
func goBuildID(file string) (string, error) {
	f, err := elf.Open(file)
	if err != nil {
		return "", fmt.Errorf("read ELF %s: %w", file, err)
	}
	defer f.Close()
	sec := f.Section(".note.go.buildid")
	if sec == nil {
		return "", fmt.Errorf("%s has no .note.go.buildid section", file)
	}
	data, err := sec.Data()
	if err != nil {
		return "", fmt.Errorf("read .note.go.buildid of %s: %w", file, err)
	}
	// namesz, descsz, type (4 bytes each), name padded to 4, desc.
	if len(data) < 16 {
		return "", fmt.Errorf(".note.go.buildid of %s: %d bytes", file, len(data))
	}
	bo := f.ByteOrder
	namesz, descsz, typ := bo.Uint32(data), bo.Uint32(data[4:]), bo.Uint32(data[8:])
	if namesz != 4 || typ != 4 || !bytes.Equal(data[12:16], []byte("Go\x00\x00")) || uint64(len(data)) < 16+uint64(descsz) {
		return "", fmt.Errorf(".note.go.buildid of %s: not a Go build ID note (name size %d, type %d)", file, namesz, typ)
	}
	return string(data[16 : 16+descsz]), nil
}

// checkDistinct asserts that progs are different programs: different
// files (not links to one file), different build IDs (not copies), each
// of 10–60 MB and of Go 1.21 or later.
func checkDistinct(progs []distinctProgram) error {
	type fileID struct{ dev, ino uint64 }
	files := map[fileID]string{}
	ids := map[string]string{}
	var errs []error
	for _, p := range progs {
		fi, err := os.Stat(p.path)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			errs = append(errs, fmt.Errorf("%s: no device and inode", p.path))
			continue
		}
		id := fileID{uint64(st.Dev), st.Ino}
		if other, dup := files[id]; dup {
			errs = append(errs, fmt.Errorf("%s and %s are one file", other, p.path))
		}
		files[id] = p.path
		if other, dup := ids[p.buildID]; dup {
			errs = append(errs, fmt.Errorf("%s and %s have one build ID %s", other, p.path, p.buildID))
		}
		ids[p.buildID] = p.path
		if p.size < distinctMinBytes || p.size > distinctMaxBytes {
			errs = append(errs, fmt.Errorf("%s: %s, not 10–60 MB", p.path, mb(float64(p.size))))
		}
		if version.Compare(p.goVersion, distinctMinGo) < 0 {
			errs = append(errs, fmt.Errorf("%s: %s is older than %s", p.path, p.goVersion, distinctMinGo))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("the distinct programs are not distinct: %w", err)
	}
	return nil
}

// describePrograms is the row label: how many programs, which tools, which
// releases and sizes.
func describePrograms(progs []distinctProgram) string {
	if len(progs) == 0 {
		return "distinct Go programs"
	}
	var tools []string
	for _, t := range distinctTools {
		if slices.ContainsFunc(progs, func(p distinctProgram) bool { return p.tool == t }) {
			tools = append(tools, t)
		}
	}
	lo, hi := progs[0], progs[0]
	minSize, maxSize := progs[0].size, progs[0].size
	for _, p := range progs {
		if version.Compare(p.goVersion, lo.goVersion) < 0 {
			lo = p
		}
		if version.Compare(p.goVersion, hi.goVersion) > 0 {
			hi = p
		}
		minSize, maxSize = min(minSize, p.size), max(maxSize, p.size)
	}
	return fmt.Sprintf("%d distinct Go programs (%s; Go %s–%s), %.0f–%.0f MB", len(progs), strings.Join(tools, ", "),
		strings.TrimPrefix(version.Lang(lo.goVersion), "go"), strings.TrimPrefix(version.Lang(hi.goVersion), "go"),
		float64(minSize)/1e6, float64(maxSize)/1e6)
}

// listPrograms lists progs by release for the report:
// "go1.21.13: pprof 11.3 MB, trace 11.2 MB, …; go1.22.12: …".
func listPrograms(progs []distinctProgram) string {
	var parts []string
	for i := 0; i < len(progs); {
		j := i
		var tools []string
		for ; j < len(progs) && progs[j].goVersion == progs[i].goVersion; j++ {
			tools = append(tools, fmt.Sprintf("%s %.1f MB", progs[j].tool, float64(progs[j].size)/1e6))
		}
		parts = append(parts, progs[i].goVersion+": "+strings.Join(tools, ", "))
		i = j
	}
	return strings.Join(parts, "; ")
}

// programInputs are the files the programs read: a FIFO nobody writes
// (compile and go block reading it as their source file), a heap profile
// of the harness for pprof, and an execution trace per toolchain for trace (each
// release's trace reads its own format).
type programInputs struct {
	fifo, profile string
	traces        map[string]string // by GOROOT
}

// prepareInputs writes the programs' inputs under dir.
func prepareInputs(ctx context.Context, dir string, progs []distinctProgram) (programInputs, error) {
	in := programInputs{fifo: filepath.Join(dir, "blocked.go"), profile: filepath.Join(dir, "heap.pb.gz"), traces: map[string]string{}}
	if err := syscall.Mkfifo(in.fifo, 0o600); err != nil {
		return in, fmt.Errorf("make FIFO %s: %w", in.fifo, err)
	}
	f, err := os.Create(in.profile)
	if err != nil {
		return in, fmt.Errorf("heap profile: %w", err)
	}
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		f.Close()
		return in, fmt.Errorf("write heap profile %s: %w", in.profile, err)
	}
	if err := f.Close(); err != nil {
		return in, fmt.Errorf("write heap profile %s: %w", in.profile, err)
	}
	for _, p := range progs {
		if p.tool != "trace" {
			continue
		}
		trace, err := writeTrace(ctx, dir, p.goRoot)
		if err != nil {
			return in, err
		}
		in.traces[p.goRoot] = trace
	}
	return in, nil
}

// traceProgram writes a 50 ms execution trace to the file named by its
// argument.
const traceProgram = `package main

import (
	"os"
	"runtime/trace"
	"time"
)

func main() {
	f, err := os.Create(os.Args[1])
	if err != nil {
		panic(err)
	}
	if err := trace.Start(f); err != nil {
		panic(err)
	}
	time.Sleep(50 * time.Millisecond)
	trace.Stop()
	if err := f.Close(); err != nil {
		panic(err)
	}
}
`

// writeTrace runs traceProgram with the toolchain at goRoot (offline:
// the standard library only) and returns the trace it wrote.
func writeTrace(ctx context.Context, dir, goRoot string) (string, error) {
	src := filepath.Join(dir, "tracegen", "main.go")
	if err := os.MkdirAll(filepath.Dir(src), 0o755); err != nil {
		return "", fmt.Errorf("trace program dir: %w", err)
	}
	if err := os.WriteFile(src, []byte(traceProgram), 0o644); err != nil {
		return "", fmt.Errorf("write trace program: %w", err)
	}
	out := filepath.Join(dir, "trace-"+path.Base(filepath.ToSlash(goRoot))+".out")
	ctx, cancel := context.WithTimeout(ctx, traceGenTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, toolPath(goRoot, "go"), "run", src, out)
	cmd.Dir = filepath.Dir(src)
	cmd.Env = programEnv()
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("write a trace with %s: %w\n%s", toolPath(goRoot, "go"), err, b)
	}
	return out, nil
}

// programEnv is the environment of the programs: the harness's without
// the settings of its own go command (GOROOT, GOFLAGS, a workspace, a
// toolchain switch or display), each go command using its own toolchain,
// and a browser that does nothing (trace opens one).
func programEnv() []string {
	drop := []string{"GOROOT", "GOFLAGS", "GOWORK", "GOTOOLCHAIN", "GOENV", "GO111MODULE", "GOMEMLIMIT", "GOGC", "DISPLAY", "BROWSER"}
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(drop, k) {
			env = append(env, kv)
		}
	}
	return append(env, "GOTOOLCHAIN=local", "BROWSER=true")
}

// programProc is one running distinct program.
type programProc struct {
	prog   distinctProgram
	pid    int
	log    string
	exited chan struct{}
	once   sync.Once
}

// stop kills the program by its PID and waits for it (up to 10 s).
func (p *programProc) stop() {
	p.once.Do(func() {
		_ = syscall.Kill(p.pid, syscall.SIGKILL)
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			fmt.Fprintf(os.Stderr, "bench: %s (pid %d) not reaped 10 s after SIGKILL\n", p.prog.path, p.pid)
		}
	})
}

// programArgs is how p runs until killed: pprof and trace serve their web
// UI on a free loopback port; compile and go block opening the FIFO as
// their source file.
func programArgs(p distinctProgram, in programInputs) ([]string, error) {
	switch p.tool {
	case "pprof":
		return []string{"-http=127.0.0.1:0", "-no_browser", in.profile}, nil
	case "trace":
		t, ok := in.traces[p.goRoot]
		if !ok {
			return nil, fmt.Errorf("no trace written for %s", p.goRoot)
		}
		return []string{"-http=127.0.0.1:0", t}, nil
	case "compile":
		return []string{"-p", "main", "-o", os.DevNull, in.fifo}, nil
	case "go":
		return []string{"run", in.fifo}, nil
	}
	return nil, fmt.Errorf("no way to run %q", p.tool)
}

// readyLines are what pprof and trace print once they serve (every
// release since Go 1.21).
var readyLines = map[string]string{"pprof": "Serving web UI on ", "trace": "is listening on http://"}

// startProgram runs p in dir, its output in a log file there, and waits
// until it is in its steady state: serving (pprof, trace: their "listening"
// line) or blocked opening the FIFO (compile, go: a thread waiting in the
// kernel's fifo_open, wchan wait_for_partner).
func startProgram(ctx context.Context, procs *processes, dir string, i int, p distinctProgram, in programInputs) (*programProc, error) {
	args, err := programArgs(p, in)
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, fmt.Sprintf("program-%02d-%s-%s.log", i, p.tool, p.goVersion))
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("program log: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command(p.path, args...)
	cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = dir, programEnv(), logf, logf
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", p.path, err)
	}
	pp := &programProc{prog: p, pid: cmd.Process.Pid, log: logPath, exited: make(chan struct{})}
	procs.add(pp)
	go func() {
		_ = cmd.Wait()
		close(pp.exited)
	}()
	ready := func() (bool, error) {
		if line, ok := readyLines[p.tool]; ok {
			b, err := os.ReadFile(logPath)
			return bytes.Contains(b, []byte(line)), err
		}
		return inFIFOOpen(pp.pid)
	}
	if err := pollUntil(ctx, programReadyTimeout, 50*time.Millisecond, pp.exited, ready); err != nil {
		b, _ := os.ReadFile(logPath)
		pp.stop()
		return nil, fmt.Errorf("%s %s (pid %d) not ready: %w; output: %s", p.path, strings.Join(args, " "), pp.pid, err, oneLine(string(b)))
	}
	return pp, nil
}

// inFIFOOpen reports whether a thread of pid waits in the kernel for a
// FIFO's writer (wchan wait_for_partner, in fifo_open).
func inFIFOOpen(pid int) (bool, error) {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return false, fmt.Errorf("threads of pid %d: %w", pid, err)
	}
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/wchan", pid, t.Name()))
		if err == nil && string(b) == "wait_for_partner" {
			return true, nil
		}
	}
	return false, nil
}

// startPrograms finds n distinct programs and starts each, in dir.
func startPrograms(ctx context.Context, procs *processes, dir string, n int) ([]*programProc, error) {
	progs, err := findDistinctPrograms(ctx, n)
	if err != nil {
		return nil, err
	}
	in, err := prepareInputs(ctx, dir, progs)
	if err != nil {
		return nil, err
	}
	var running []*programProc
	for i, p := range progs {
		pp, err := startProgram(ctx, procs, dir, i, p, in)
		if err != nil {
			for _, r := range running {
				r.stop()
			}
			return nil, err
		}
		running = append(running, pp)
	}
	return running, nil
}

// programsOf is the programs of running.
func programsOf(running []*programProc) []distinctProgram {
	out := make([]distinctProgram, len(running))
	for i, r := range running {
		out[i] = r.prog
	}
	return out
}
