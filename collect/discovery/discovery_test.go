package discovery

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/goroscope/goroscope/test/targettest"
)

// Captured /proc/PID/cgroup lines.
const (
	cgV2System  = "0::/system.slice/nginx.service\n"
	cgV2Getty   = "0::/system.slice/system-getty.slice/getty@tty1.service\n"
	cgV2UserSSH = "0::/user.slice/user-1000.slice/user@1000.service/app.slice/sshd.service\n"
	cgV2Session = "0::/user.slice/user-0.slice/session-3.scope\n"
	cgV2Docker  = "0::/system.slice/docker-4f1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c.scope\n"
	// cgroup v2, systemd driver, containerd.
	cgV2PodSystemd = "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1c2e3f4a_5b6c_7d8e_9f0a_1b2c3d4e5f6a.slice/cri-containerd-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.scope\n"
	// cgroup v2, cgroupfs driver.
	cgV2PodCgroupfs = "0::/kubepods/besteffort/pod1c2e3f4a-5b6c-7d8e-9f0a-1b2c3d4e5f6a/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n"
	// cgroup v1, cgroupfs driver, Docker: a guaranteed pod (no QoS slice).
	cgV1PodCgroupfs = `12:pids:/kubepods/pod1c2e3f4a-5b6c-7d8e-9f0a-1b2c3d4e5f6a/89abcdef0123456789abcdef0123456789abcdef0123456789abcdef01234567
11:memory:/kubepods/pod1c2e3f4a-5b6c-7d8e-9f0a-1b2c3d4e5f6a/89abcdef0123456789abcdef0123456789abcdef0123456789abcdef01234567
1:name=systemd:/kubepods/pod1c2e3f4a-5b6c-7d8e-9f0a-1b2c3d4e5f6a/89abcdef0123456789abcdef0123456789abcdef0123456789abcdef01234567
`
	// cgroup v1, systemd driver, CRI-O, static pod (32 hex digit UID).
	cgV1PodSystemd = `13:misc:/
4:cpu,cpuacct:/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod3d8e3f1b2b1c4c0f8a9b7e6d5c4b3a21.slice/crio-fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210.scope
1:name=systemd:/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod3d8e3f1b2b1c4c0f8a9b7e6d5c4b3a21.slice/crio-fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210.scope
`
	// cgroup v1 on a host with systemd: the unit is in name=systemd.
	cgV1System = "13:misc:/\n5:memory:/system.slice/payments.service\n1:name=systemd:/system.slice/payments.service\n"
	// A pod's own cgroup, not a container's; and kubepods without a pod.
	cgPodOnly  = "0::/kubepods/burstable/pod1c2e3f4a-5b6c-7d8e-9f0a-1b2c3d4e5f6a\n"
	cgKubeRoot = "0::/kubepods.slice/kubepods-burstable.slice\n"
	// A pod-like segment outside kubepods.
	cgFakePod = "0::/system.slice/pod1c2e3f4a-5b6c-7d8e-9f0a-1b2c3d4e5f6a/x\n"
)

func TestParseCgroup(t *testing.T) {
	for _, tc := range []struct {
		name, content, path string
		paths               int
	}{
		{"v2", cgV2System, "/system.slice/nginx.service", 1},
		{"v1 name=systemd", cgV1System, "/system.slice/payments.service", 3},
		{"hybrid", "1:name=systemd:/user.slice\n0::/system.slice/a.service\n", "/system.slice/a.service", 2},
		{"v1 no systemd", "4:pids:/x\n3:memory:/y\n", "/x", 2},
		{"garbage", "nonsense\n::\n", "", 0},
		{"empty", "", "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ci := parseCgroup(tc.content)
			if ci.path != tc.path || len(ci.paths) != tc.paths {
				t.Errorf("parseCgroup = %q with %d paths, want %q with %d", ci.path, len(ci.paths), tc.path, tc.paths)
			}
		})
	}
}

func TestCgroupNames(t *testing.T) {
	const uid = "1c2e3f4a-5b6c-7d8e-9f0a-1b2c3d4e5f6a"
	for _, tc := range []struct {
		name, content string
		unit          string
		podUID, cid   string
	}{
		{name: "system unit", content: cgV2System, unit: "nginx"},
		{name: "template unit", content: cgV2Getty, unit: "getty_tty1"},
		{name: "user unit", content: cgV2UserSSH, unit: "user-1000/sshd"},
		{name: "user manager itself", content: "0::/user.slice/user-1000.slice/user@1000.service/init.scope\n"},
		{name: "session", content: cgV2Session},
		{name: "docker scope", content: cgV2Docker},
		{name: "root", content: "0::/\n"},
		{name: "v1 system unit", content: cgV1System, unit: "payments"},
		{name: "v2 systemd pod", content: cgV2PodSystemd, podUID: uid, cid: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
		{name: "v2 cgroupfs pod", content: cgV2PodCgroupfs, podUID: uid, cid: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
		{name: "v1 cgroupfs pod", content: cgV1PodCgroupfs, podUID: uid, cid: "89abcdef0123456789abcdef0123456789abcdef0123456789abcdef01234567"},
		{name: "v1 systemd static pod", content: cgV1PodSystemd, podUID: "3d8e3f1b2b1c4c0f8a9b7e6d5c4b3a21", cid: "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"},
		{name: "kind node", content: "0::/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod1c2e3f4a_5b6c_7d8e_9f0a_1b2c3d4e5f6a.slice/cri-containerd-0123456789ab.scope\n", podUID: uid, cid: "0123456789ab"},
		{name: "pod cgroup, no container", content: cgPodOnly},
		{name: "kubepods, no pod", content: cgKubeRoot},
		{name: "pod segment outside kubepods", content: cgFakePod},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ci := parseCgroup(tc.content)
			if got := systemdUnit(ci.path); tc.podUID == "" && got != tc.unit {
				t.Errorf("systemdUnit(%q) = %q, want %q", ci.path, got, tc.unit)
			}
			var uid, cid string
			for _, p := range ci.paths {
				var ok bool
				if uid, cid, ok = k8sPod(p); ok {
					break
				}
			}
			if uid != tc.podUID || cid != tc.cid {
				t.Errorf("k8sPod = %q, %q; want %q, %q", uid, cid, tc.podUID, tc.cid)
			}
		})
	}
}

func TestWorkloadName(t *testing.T) {
	for _, tc := range []struct{ pod, want string }{
		{"api-7d4b9c8f6d-x2x9z", "api"},
		{"goroscope-x2x9z", "goroscope"},
		{"db-0", "db-0"},
		{"checkout-api-5f6d7c8b9-abcde", "checkout-api"},
	} {
		if got := workloadName(tc.pod); got != tc.want {
			t.Errorf("workloadName(%q) = %q, want %q", tc.pod, got, tc.want)
		}
	}
}

func TestSanitizeName(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
		changed        bool
	}{
		{"valid", "payments-api", "payments-api", false},
		{"all allowed", "a.B_9/c-d", "a.B_9/c-d", false},
		{"at the limit", strings.Repeat("x", MaxNameBytes), strings.Repeat("x", MaxNameBytes), false},
		{"one over", strings.Repeat("x", MaxNameBytes+1), strings.Repeat("x", MaxNameBytes), true},
		{"100 kB", strings.Repeat("y", 100<<10), strings.Repeat("y", MaxNameBytes), true},
		{"empty", "", "unknown", true},
		{"spaces and quotes", `a b"c{d}`, "a_b_c_d_", true},
		{"newline and NUL", "svc\n\x00x", "svc__x", true},
		{"multibyte rune is one _", "café", "caf_", true},
		{"invalid UTF-8 byte", "a\xffb", "a_b", true},
		{"label injection", `x",pid="1`, "x__pid__1", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, changed := SanitizeName(tc.in)
			if got != tc.want || changed != tc.changed {
				t.Errorf("SanitizeName(%.40q) = %.40q, %v; want %.40q, %v", tc.in, got, changed, tc.want, tc.changed)
			}
			if !ValidServiceName(got) {
				t.Errorf("SanitizeName(%.40q) = %.40q: not valid", tc.in, got)
			}
		})
	}
}

func TestSanitizeText(t *testing.T) {
	long := strings.Repeat("a", MaxTextBytes-1) + "é"
	for _, tc := range []struct {
		name, in, want string
		changed        bool
	}{
		{"path", "/usr/bin/api (deleted)", "/usr/bin/api (deleted)", false},
		{"utf-8", "/opt/café/bin", "/opt/café/bin", false},
		{"control", "/tmp/a\nb\x1b[31m", "/tmp/a_b_[31m", true},
		{"invalid UTF-8", "/tmp/\xff", "/tmp/_", true},
		// é would end past the bound: the cut falls before it.
		{"rune boundary", long, strings.Repeat("a", MaxTextBytes-1), true},
		{"100 kB", strings.Repeat("z", 100<<10), strings.Repeat("z", MaxTextBytes), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, changed := sanitizeText(tc.in)
			if got != tc.want || changed != tc.changed {
				t.Errorf("sanitizeText(%.40q) = %.40q, %v; want %.40q, %v", tc.in, got, changed, tc.want, tc.changed)
			}
			if len(got) > MaxTextBytes || !utf8.ValidString(got) {
				t.Errorf("sanitizeText(%.40q): %d bytes, valid UTF-8 %v", tc.in, len(got), utf8.ValidString(got))
			}
		})
	}
}

// fakeProc writes /proc/PID/{cgroup,environ} for pid 100 under a temporary
// proc root; uts, when not "", is the target's UTS namespace link and
// pid 1's is uts:[1].
func fakeProc(t *testing.T, cgroup, hostname, uts string) string {
	t.Helper()
	root := t.TempDir()
	dir := filepath.Join(root, "100")
	for _, d := range []string{filepath.Join(dir, "ns"), filepath.Join(root, "1", "ns")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	env := "PATH=/bin\x00"
	if hostname != "" {
		env += "HOSTNAME=" + hostname + "\x00"
	}
	for name, content := range map[string]string{"cgroup": cgroup, "environ": env} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if uts != "" {
		if err := os.Symlink("uts:[1]", filepath.Join(root, "1", "ns", "uts")); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(uts, filepath.Join(dir, "ns", "uts")); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// TestServiceName: where a process's name comes from, and that every name
// is bounded and marked when it had to change.
func TestServiceName(t *testing.T) {
	const uid = "1c2e3f4a-5b6c-7d8e-9f0a-1b2c3d4e5f6a"
	for _, tc := range []struct {
		name              string
		cgroup, hostname  string
		uts               string
		exe               string
		rules             *Rules
		want, source      string
		podUID, sanitized string
	}{
		{name: "HOSTNAME outside a pod", cgroup: cgV2System, hostname: "payments-api", exe: "/usr/bin/nginx", want: "nginx", source: ServiceFromSystemd},
		{name: "HOSTNAME outside a pod, no unit", cgroup: cgV2Session, hostname: "payments-api", exe: "/home/u/evil", want: "evil", source: ServiceFromExe},
		{name: "HOSTNAME in a docker container", cgroup: cgV2Docker, hostname: "payments-api-7d4b9c8f6d-x2x9z", exe: "/app", want: "app", source: ServiceFromExe},
		{name: "HOSTNAME with pod segment outside kubepods", cgroup: cgFakePod, hostname: "payments-api", exe: "/x/y", want: "y", source: ServiceFromExe},
		{name: "HOSTNAME in a pod's own cgroup", cgroup: cgPodOnly, hostname: "payments-api", exe: "/x/y", want: "y", source: ServiceFromExe},
		{name: "pod, v2 systemd", cgroup: cgV2PodSystemd, hostname: "payments-api-7d4b9c8f6d-x2x9z", uts: "uts:[2]", exe: "/app", want: "payments-api", source: ServiceFromK8s, podUID: uid},
		{name: "pod, v1 cgroupfs", cgroup: cgV1PodCgroupfs, hostname: "agent-x2x9z", exe: "/app", want: "agent", source: ServiceFromK8s, podUID: uid},
		{name: "pod, no HOSTNAME", cgroup: cgV2PodCgroupfs, exe: "/app", want: "pod-" + uid, source: ServiceFromK8s, podUID: uid},
		{name: "pod, HOSTNAME not a hostname", cgroup: cgV2PodCgroupfs, hostname: "Payments API!", exe: "/app", want: "pod-" + uid, source: ServiceFromK8s, podUID: uid},
		{name: "pod, 100 kB HOSTNAME", cgroup: cgV2PodCgroupfs, hostname: strings.Repeat("a", 100<<10), exe: "/app", want: "pod-" + uid, source: ServiceFromK8s, podUID: uid},
		{name: "hostNetwork pod: HOSTNAME is the node's", cgroup: cgV2PodSystemd, hostname: "node-1", uts: "uts:[1]", exe: "/app", want: "pod-" + uid, source: ServiceFromK8s, podUID: uid},
		{name: "user unit named sshd", cgroup: cgV2UserSSH, exe: "/home/u/sshd", want: "user-1000/sshd", source: ServiceFromSystemd},
		{name: "100 kB unit name", cgroup: "0::/system.slice/" + strings.Repeat("u", 100<<10) + ".service\n", exe: "/x", want: strings.Repeat("u", MaxNameBytes), source: ServiceFromSystemd, sanitized: "cgroup,service_name"},
		{name: "escaped unit name", cgroup: `0::/system.slice/my\x2dapp.service` + "\n", exe: "/x", want: "my_x2dapp", source: ServiceFromSystemd, sanitized: "service_name"},
		{name: "weird exe", cgroup: cgV2Session, exe: "/tmp/a b\n{c}", want: "a_b__c_", source: ServiceFromExe, sanitized: "exe,service_name"},
		{name: "100 kB exe", cgroup: cgV2Session, exe: "/" + strings.Repeat("e", 100<<10), want: strings.Repeat("e", MaxNameBytes), source: ServiceFromExe, sanitized: "exe,service_name"},
		{name: "no exe, no cgroup", want: "unknown", source: ServiceFromExe, sanitized: "service_name"},
		{name: "rule wins over pod", cgroup: cgV2PodCgroupfs, hostname: "payments-api-x2x9z", exe: "/app",
			rules: &Rules{Services: []ServiceRule{{Match: Match{Exe: "^/app$"}, ServiceName: "edge"}}}, want: "edge", source: ServiceFromRule, podUID: uid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proc := fakeProc(t, tc.cgroup, tc.hostname, tc.uts)
			if tc.rules != nil {
				if err := tc.rules.Compile(); err != nil {
					t.Fatal(err)
				}
			}
			s := &Scanner{Proc: proc, Rules: tc.rules}
			p := Process{PID: 100}
			p.Exe = p.bound(FieldExe, tc.exe)
			s.name(proc, &p)
			if p.ServiceName != tc.want || p.ServiceSource != tc.source || p.PodUID != tc.podUID {
				t.Errorf("service %.40q from %s, pod %q; want %.40q from %s, pod %q", p.ServiceName, p.ServiceSource, p.PodUID, tc.want, tc.source, tc.podUID)
			}
			if got := strings.Join(p.Sanitized, ","); got != tc.sanitized {
				t.Errorf("Sanitized = %q, want %q", got, tc.sanitized)
			}
			if !ValidServiceName(p.ServiceName) || len(p.Exe) > MaxTextBytes || len(p.Cgroup) > MaxTextBytes {
				t.Errorf("unbounded: service %d bytes (valid %v), exe %d, cgroup %d", len(p.ServiceName), ValidServiceName(p.ServiceName), len(p.Exe), len(p.Cgroup))
			}
		})
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
		{name: "bad service name", rules: Rules{Services: []ServiceRule{{Match: Match{Exe: "a"}, ServiceName: "a b"}}}, err: `service_names[0]: service_name "a b" (3 bytes): want 1 to 128 bytes of [A-Za-z0-9._/-]`},
		{name: "long service name", rules: Rules{Services: []ServiceRule{{Match: Match{Exe: "a"}, ServiceName: strings.Repeat("s", 129)}}}, err: "(129 bytes)"},
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
