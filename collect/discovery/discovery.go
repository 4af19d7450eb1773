// Package discovery finds the Go processes on the host by scanning /proc and
// recognising Go executables from their build information.
//
// Like all of collect/, it is internal to the goroscope binary, not meant
// for import outside this module.
package discovery

import (
	"debug/buildinfo"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/goroscope/goroscope/collect/process"
	"github.com/goroscope/goroscope/pkg/gobin"
)

// Process is one Go process found on the host.
type Process struct {
	PID int
	// StartTime tells a process from a later one that reuses its PID.
	StartTime uint64
	// Exe is the executable's path as the process sees it (it may carry a
	// " (deleted)" suffix when the file was replaced).
	Exe string
	// ExeID identifies the executable file: it changes when the process
	// exec's another program under the same pid and start time.
	ExeID     process.ExeID
	Cmdline   []string
	GoVersion string
	// MainModule is the module path of the program, when built in module mode.
	MainModule string
	// ServiceName names the process in profiles and series; ServiceSource
	// says where the name came from (rule, systemd, kubernetes, exe).
	ServiceName, ServiceSource string
	// Cgroup is the process's cgroup path: the unified (v2) one, else
	// the v1 name=systemd one.
	Cgroup string
	// PodUID and ContainerID place a process in a Kubernetes pod, from
	// its cgroup; both "" outside one (ContainerID is also "" when the
	// runtime's cgroup naming is not known).
	PodUID, ContainerID string
	// Sanitized lists the fields (FieldServiceName, FieldExe, ...) whose
	// values, taken from the target, were cut to their bound or had
	// characters replaced; nil when none was.
	Sanitized []string
}

type exeInfo struct {
	goVersion, module string
	isGo              bool
	// denied is the error of an executable goroscope may not read.
	denied error
}

// Scanner scans /proc. It remembers executables it has inspected, so a
// rescan costs one stat per process.
type Scanner struct {
	// Proc is the proc file system root; "/proc" if empty.
	Proc string
	// Rules choose and name processes; nil watches every Go process.
	Rules *Rules
	// OnDenied, if set, is told of each executable that could not be read
	// for lack of permission (an execute-only file without
	// CAP_DAC_READ_SEARCH, say): once per executable, while it runs. Its
	// processes are left out, Go or not.
	OnDenied func(pid int, exe string, err error)
	cache    map[process.ExeID]exeInfo
	// procs keeps what was learnt of each Go process (service name,
	// command line), by pid, while its start time stays the same.
	procs map[int]cachedProc
	// seenExes and seenPIDs are this scan's, for pruning both caches.
	seenExes map[process.ExeID]bool
	seenPIDs map[int]bool
}

// cachedProc is a process as inspected, with the executable it ran.
type cachedProc struct {
	p   Process
	exe process.ExeID
}

// NewScanner returns a Scanner of /proc.
func NewScanner() *Scanner { return &Scanner{Proc: "/proc", cache: map[process.ExeID]exeInfo{}} }

// Scan lists the Go processes running now, by PID. Processes that vanish
// during the scan, kernel threads and processes whose executable cannot be
// read are left out.
func (s *Scanner) Scan() ([]Process, error) {
	proc := s.Proc
	if proc == "" {
		proc = "/proc"
	}
	ents, err := os.ReadDir(proc)
	if err != nil {
		return nil, fmt.Errorf("scan %s for processes: %w", proc, err)
	}
	var out []Process
	self := os.Getpid()
	s.seenExes, s.seenPIDs = map[process.ExeID]bool{}, map[int]bool{}
	defer func() {
		// Forget executables and processes gone since the last scan, so
		// the caches stay as small as the host's process table.
		for k := range s.cache {
			if !s.seenExes[k] {
				delete(s.cache, k)
			}
		}
		for pid := range s.procs {
			if !s.seenPIDs[pid] {
				delete(s.procs, pid)
			}
		}
		s.seenExes, s.seenPIDs = nil, nil
	}()
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		p, ok := s.inspect(proc, pid)
		if ok && s.Rules.Watched(&p) {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b Process) int { return a.PID - b.PID })
	return out, nil
}

// Lookup inspects one process: an error says why it is not a Go process
// goroscope can watch.
func (s *Scanner) Lookup(pid int) (Process, error) {
	proc := s.Proc
	if proc == "" {
		proc = "/proc"
	}
	if _, err := process.StartTime(pid); err != nil {
		return Process{}, err
	}
	if p, ok := s.inspect(proc, pid); ok {
		return p, nil
	}
	exe := filepath.Join(proc, strconv.Itoa(pid), "exe")
	bin, err := gobin.Open(exe)
	if err != nil {
		return Process{}, fmt.Errorf("pid %d: %w", pid, err)
	}
	bin.Close()
	return Process{}, fmt.Errorf("pid %d: not a Go process", pid)
}

func (s *Scanner) inspect(proc string, pid int) (Process, bool) {
	dir := filepath.Join(proc, strconv.Itoa(pid))
	exePath := filepath.Join(dir, "exe")
	// Stat through the link: it reaches the file even when deleted or in
	// another mount namespace. Kernel threads have no exe.
	fi, err := os.Stat(exePath)
	if err != nil {
		return Process{}, false
	}
	key, ok := process.ExeIDOf(fi)
	if !ok {
		return Process{}, false
	}
	if s.seenExes != nil {
		s.seenExes[key] = true
	}
	info, seen := s.cache[key]
	if !seen {
		info = s.recognise(exePath)
		if s.cache == nil {
			s.cache = map[process.ExeID]exeInfo{}
		}
		s.cache[key] = info
		if info.denied != nil && s.OnDenied != nil {
			exe, _ := os.Readlink(exePath)
			exe, _ = sanitizeText(exe)
			s.OnDenied(pid, exe, info.denied)
		}
	}
	if !info.isGo {
		return Process{}, false
	}
	start, err := process.StartTime(pid)
	if err != nil {
		return Process{}, false
	}
	if s.seenPIDs != nil {
		s.seenPIDs[pid] = true
	}
	if c, ok := s.procs[pid]; ok && c.p.StartTime == start && c.exe == key {
		return c.p, true // same process, same executable: nothing to re-read
	}
	exe, _ := os.Readlink(exePath)
	p := Process{PID: pid, StartTime: start, ExeID: key}
	p.Exe = p.bound(FieldExe, exe)
	p.GoVersion = p.bound(FieldGoVersion, info.goVersion)
	p.MainModule = p.bound(FieldMainModule, info.module)
	if b, err := readProcFile(filepath.Join(dir, "cmdline"), maxCmdlineBytes); err == nil {
		p.Cmdline = strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
	}
	s.name(proc, &p)
	if s.procs == nil {
		s.procs = map[int]cachedProc{}
	}
	s.procs[pid] = cachedProc{p, key}
	return p, true
}

// bound returns v within MaxTextBytes and free of control characters,
// noting field in p.Sanitized when it had to change v.
func (p *Process) bound(field, v string) string {
	out, changed := sanitizeText(v)
	if changed {
		p.Sanitized = append(p.Sanitized, field)
	}
	return out
}

// sanitizeName returns name as a valid service name (SanitizeName), noting
// FieldServiceName in p.Sanitized when it had to change it.
func (p *Process) sanitizeName(name string) string {
	out, changed := SanitizeName(name)
	if changed {
		p.Sanitized = append(p.Sanitized, FieldServiceName)
	}
	return out
}

// recognise reads an executable's Go build info: the .go.buildinfo
// section alone, not the symbol tables, so that recognising the many
// short-lived processes of a busy host (compilers, test binaries) stays
// cheap. Anything without build info is not Go, or not watchable.
func (s *Scanner) recognise(exe string) (info exeInfo) {
	defer func() {
		// debug/buildinfo can panic on some corrupt inputs.
		if recover() != nil {
			info = exeInfo{}
		}
	}()
	bi, err := buildinfo.ReadFile(exe)
	if errors.Is(err, os.ErrPermission) {
		return exeInfo{denied: err}
	}
	if err != nil {
		return exeInfo{}
	}
	return exeInfo{isGo: true, goVersion: bi.GoVersion, module: bi.Main.Path}
}
