package discovery

import (
	"fmt"
	"strings"
	"testing"

	"github.com/goroscope/goroscope/test/targettest"
)

func TestCgroupNames(t *testing.T) {
	for _, tc := range []struct {
		cgroup, unit, podUID string
		isPod                bool
	}{
		{cgroup: "/system.slice/nginx.service", unit: "nginx"},
		{cgroup: "/system.slice/system-getty.slice/getty@tty1.service", unit: "getty@tty1"},
		{cgroup: "/user.slice/user-0.slice/session-3.scope"},
		{cgroup: "/"},
		{cgroup: "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1c2e3f4a_5b6c_7d8e_9f0a_1b2c3d4e5f6a.slice/cri-containerd-0123abcd.scope",
			isPod: true, podUID: "1c2e3f4a-5b6c-7d8e-9f0a-1b2c3d4e5f6a"},
		{cgroup: "/kubepods/besteffort/pod1c2e3f4a-5b6c-7d8e-9f0a-1b2c3d4e5f6a/0123abcd", isPod: true, podUID: "1c2e3f4a-5b6c-7d8e-9f0a-1b2c3d4e5f6a"},
	} {
		if got := systemdUnit(tc.cgroup); !tc.isPod && got != tc.unit {
			t.Errorf("systemdUnit(%q) = %q, want %q", tc.cgroup, got, tc.unit)
		}
		uid, ok := k8sPod(tc.cgroup)
		if ok != tc.isPod || uid != tc.podUID {
			t.Errorf("k8sPod(%q) = %q, %v; want %q, %v", tc.cgroup, uid, ok, tc.podUID, tc.isPod)
		}
	}
	for pod, want := range map[string]string{
		"api-7d4b9c8f6d-x2x9z":         "api",
		"goroscope-x2x9z":              "goroscope",
		"db-0":                         "db-0",
		"checkout-api-5f6d7c8b9-abcde": "checkout-api",
	} {
		if got := workloadName(pod); got != want {
			t.Errorf("workloadName(%q) = %q, want %q", pod, got, want)
		}
	}
}

func TestRules(t *testing.T) {
	p := Process{Exe: "/usr/bin/api-server", Cmdline: []string{"/usr/bin/api-server", "--port", "80"}, ServiceName: "api"}
	for _, tc := range []struct {
		name    string
		rules   Rules
		watched bool
		service string
		err     string
	}{
		{name: "no rules", watched: true},
		{name: "include exe", rules: Rules{Include: []Match{{Exe: "api-"}}}, watched: true},
		{name: "include other", rules: Rules{Include: []Match{{Exe: "^/opt/"}}}, watched: false},
		{name: "exclude cmdline", rules: Rules{Exclude: []Match{{Cmdline: "--port 80"}}}, watched: false},
		{name: "both must match", rules: Rules{Include: []Match{{Exe: "api", Cmdline: "--debug"}}}, watched: false},
		{name: "service rule", rules: Rules{Services: []ServiceRule{{Match: Match{Exe: "nope"}, ServiceName: "x"}, {Match: Match{Cmdline: "port"}, ServiceName: "edge"}}}, watched: true, service: "edge"},
		{name: "bad regexp", rules: Rules{Exclude: []Match{{Exe: "("}}}, err: "exclude[0]: exe: bad regular expression"},
		{name: "empty service name", rules: Rules{Services: []ServiceRule{{Match: Match{Exe: "a"}}}}, err: "service_names[0]: service_name is empty"},
		{name: "negative min", rules: Rules{MinGoroutines: -1}, err: "min_goroutines"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.rules.Compile()
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Compile() = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := tc.rules.Watched(&p); got != tc.watched {
				t.Errorf("Watched = %v, want %v", got, tc.watched)
			}
			if got := tc.rules.ServiceName(&p); got != tc.service {
				t.Errorf("ServiceName = %q, want %q", got, tc.service)
			}
		})
	}
}

// TestScanFindsTargets: a running Go program is found with its version and
// a service name; a non-Go program is not.
func TestScanFindsTargets(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a target")
	}
	tgt := targettest.Start(t, targettest.Build(t, "population", targettest.BuildOpts{Stripped: true}))
	notGo := targettest.StartNotGo(t)
	s := NewScanner()
	procs, err := s.Scan()
	if err != nil {
		t.Fatal(err)
	}
	var found *Process
	for i := range procs {
		if procs[i].PID == notGo.Process.Pid {
			t.Errorf("non-Go process %d listed: %+v", notGo.Process.Pid, procs[i])
		}
		if procs[i].PID == tgt.PID {
			found = &procs[i]
		}
	}
	if found == nil {
		t.Fatalf("target %d not found among %d processes", tgt.PID, len(procs))
	}
	if found.GoVersion != tgt.GoVersion || found.StartTime == 0 || !strings.HasPrefix(found.ServiceName, "population-") || found.ServiceSource == "" {
		t.Errorf("found %+v; want go %s, a start time and a service name from the exe", *found, tgt.GoVersion)
	}
	if _, err := s.Lookup(notGo.Process.Pid); err == nil || !strings.Contains(err.Error(), "not a Go") {
		t.Errorf("Lookup(non-Go) = %v", err)
	}
}

// TestScanCaches: a second scan gives the same processes from its cache,
// and a process that exits leaves the caches at the next scan.
func TestScanCaches(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a target")
	}
	bin := targettest.Build(t, "population", targettest.BuildOpts{})
	stay, leave := targettest.Start(t, bin), targettest.Start(t, bin)
	s := NewScanner()
	first, err := s.Scan()
	if err != nil {
		t.Fatal(err)
	}
	second, err := s.Scan()
	if err != nil {
		t.Fatal(err)
	}
	byPID := func(ps []Process) map[int]string {
		m := map[int]string{}
		for _, p := range ps {
			m[p.PID] = fmt.Sprintf("%d %s %s %s %v", p.StartTime, p.Exe, p.ServiceName, p.GoVersion, p.Cmdline)
		}
		return m
	}
	a, b := byPID(first), byPID(second)
	for _, pid := range []int{stay.PID, leave.PID} {
		if a[pid] == "" || a[pid] != b[pid] {
			t.Errorf("pid %d: first scan %q, second %q", pid, a[pid], b[pid])
		}
	}
	leave.Stop()
	if _, err := s.Scan(); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.procs[leave.PID]; ok {
		t.Errorf("exited pid %d still cached", leave.PID)
	}
	if _, ok := s.procs[stay.PID]; !ok {
		t.Errorf("running pid %d not cached", stay.PID)
	}
	if len(s.cache) == 0 || len(s.procs) > len(a) {
		t.Errorf("caches: %d executables, %d processes (first scan found %d)", len(s.cache), len(s.procs), len(a))
	}
}
