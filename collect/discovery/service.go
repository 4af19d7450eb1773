package discovery

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// Where a service name came from.
const (
	ServiceFromRule    = "rule"
	ServiceFromSystemd = "systemd"
	ServiceFromK8s     = "kubernetes"
	ServiceFromExe     = "exe"
)

// systemdUnit finds the systemd service unit of a cgroup path
// ("/system.slice/nginx.service" -> "nginx"); "" when there is none.
func systemdUnit(cgroup string) string {
	parts := strings.Split(cgroup, "/")
	for i := len(parts) - 1; i >= 0; i-- {
		p := parts[i]
		if strings.HasSuffix(p, ".service") {
			name := strings.TrimSuffix(p, ".service")
			// Template instances: getty@tty1.service -> getty@tty1.
			return name
		}
	}
	return ""
}

// podPattern matches the pod segment of a kubelet cgroup path, with the
// systemd driver (kubepods-burstable-pod<uid>.slice, dashes for the uid's
// underscores) or the cgroupfs driver (/kubepods/burstable/pod<uid>).
var podPattern = regexp.MustCompile(`pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})`)

// k8sPod reports whether a cgroup path belongs to a Kubernetes pod, and the
// pod's UID.
func k8sPod(cgroup string) (uid string, ok bool) {
	if !strings.Contains(cgroup, "kubepods") {
		return "", false
	}
	m := podPattern.FindStringSubmatch(cgroup)
	if m == nil {
		return "", true
	}
	return strings.ReplaceAll(m[1], "_", "-"), true
}

// podSuffix matches the ReplicaSet hash and random suffix of a Deployment's
// pod name (api-7d4b9c8f6d-x2x9z), or the random suffix of a DaemonSet's or
// Job's (agent-x2x9z).
var podSuffix = regexp.MustCompile(`(-[a-z0-9]{8,10})?-[a-z0-9]{5}$`)

// workloadName turns a pod name into the name of its workload.
func workloadName(pod string) string {
	if n := podSuffix.ReplaceAllString(pod, ""); n != "" {
		return n
	}
	return pod
}

// cgroupPath returns the process's cgroup v2 path (or the first v1 path).
func cgroupPath(proc string, pid int) string {
	b, err := os.ReadFile(filepath.Join(proc, strconv.Itoa(pid), "cgroup"))
	if err != nil {
		return ""
	}
	var first string
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		// hierarchy-ID:controllers:path
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 {
			continue
		}
		if f[0] == "0" && f[1] == "" {
			return f[2]
		}
		if first == "" {
			first = f[2]
		}
	}
	return first
}

// environ reads one variable of a process's initial environment.
func environ(proc string, pid int, key string) string {
	b, err := os.ReadFile(filepath.Join(proc, strconv.Itoa(pid), "environ"))
	if err != nil {
		return ""
	}
	prefix := []byte(key + "=")
	for _, kv := range bytes.Split(b, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, prefix); ok {
			return string(v)
		}
	}
	return ""
}

// serviceName picks a process's service name: a configured rule first, then
// its systemd unit, then its Kubernetes workload, then its executable's name.
func (s *Scanner) serviceName(proc string, p *Process) (string, string) {
	if name := s.Rules.ServiceName(p); name != "" {
		return name, ServiceFromRule
	}
	cg := cgroupPath(proc, p.PID)
	if p.Cgroup = cg; cg != "" {
		if uid, ok := k8sPod(cg); ok {
			if pod := environ(proc, p.PID, "HOSTNAME"); pod != "" {
				return workloadName(pod), ServiceFromK8s
			}
			if uid != "" {
				return "pod-" + uid, ServiceFromK8s
			}
		}
		if unit := systemdUnit(cg); unit != "" {
			return unit, ServiceFromSystemd
		}
	}
	return exeName(p.Exe), ServiceFromExe
}

// exeName is the base name of an executable path, without the kernel's
// " (deleted)" mark.
func exeName(exe string) string {
	return filepath.Base(strings.TrimSuffix(exe, " (deleted)"))
}
