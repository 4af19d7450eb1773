package discovery

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Where a service name came from.
const (
	ServiceFromRule    = "rule"
	ServiceFromSystemd = "systemd"
	ServiceFromK8s     = "kubernetes"
	ServiceFromExe     = "exe"
)

// Bounds on the values discovery takes from a target (its cgroup, its
// environment, its executable and build info). A target controls all of
// them, so none reaches a label, a log line or the store unbounded.
const (
	// MaxNameBytes bounds a service name. Names are also restricted to
	// the characters Pyroscope accepts in a service name, [A-Za-z0-9._/-];
	// others become '_'. 128 bytes leaves room under every backend's label
	// value limit (label.MaxValueBytes is 2048) and keeps series readable.
	MaxNameBytes = 128
	// MaxTextBytes bounds a free-form value: the executable's path, the Go
	// version and main module from build info, the cgroup path. Control
	// characters and invalid UTF-8 in them become '_'.
	MaxTextBytes = 1024
	// maxCmdlineBytes bounds the command line kept for rule matching; a
	// longer one is cut (not marked: long command lines are ordinary).
	maxCmdlineBytes = 4 << 10
	// maxProcFileBytes bounds what is read of /proc/PID/{cgroup,environ}.
	maxProcFileBytes = 256 << 10
	// unknownName names a service whose every source was empty.
	unknownName = "unknown"
)

// Names of the Process fields that SanitizeName and sanitizeText can change,
// as listed in Process.Sanitized.
const (
	FieldServiceName = "service_name"
	FieldExe         = "exe"
	FieldGoVersion   = "go_version"
	FieldMainModule  = "main_module"
	FieldCgroup      = "cgroup"
)

// nameByte reports whether c may appear in a service name.
func nameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '/' || c == '-'
}

// ValidServiceName reports whether s is a service name as SanitizeName
// makes them: 1 to MaxNameBytes bytes of [A-Za-z0-9._/-].
func ValidServiceName(s string) bool {
	if s == "" || len(s) > MaxNameBytes {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !nameByte(s[i]) {
			return false
		}
	}
	return true
}

// SanitizeName makes s a valid service name: every character outside
// [A-Za-z0-9._/-] (each rune, or each byte of invalid UTF-8) becomes '_',
// the result is cut to MaxNameBytes, and an empty name becomes "unknown".
// changed reports whether the result differs from s.
func SanitizeName(s string) (name string, changed bool) {
	if ValidServiceName(s) {
		return s, false
	}
	if s == "" {
		return unknownName, true
	}
	var b strings.Builder
	b.Grow(min(len(s), MaxNameBytes))
	for i := 0; i < len(s) && b.Len() < MaxNameBytes; {
		c := s[i]
		if nameByte(c) {
			b.WriteByte(c)
			i++
			continue
		}
		_, n := utf8.DecodeRuneInString(s[i:])
		b.WriteByte('_')
		i += n
	}
	return b.String(), true
}

// sanitizeText bounds a free-form value: control characters and invalid
// UTF-8 become '_', and the result is cut on a rune boundary to
// MaxTextBytes. changed reports whether the result differs from s.
func sanitizeText(s string) (string, bool) {
	clean := len(s) <= MaxTextBytes && utf8.ValidString(s)
	for _, r := range s {
		if !clean || unicode.IsControl(r) {
			clean = false
			break
		}
	}
	if clean {
		return s, false
	}
	var b strings.Builder
	for _, r := range s {
		w := utf8.RuneLen(r)
		if r == utf8.RuneError || unicode.IsControl(r) {
			r, w = '_', 1
		}
		if b.Len()+w > MaxTextBytes {
			break
		}
		b.WriteRune(r)
	}
	return b.String(), true
}

// cgroupInfo is what a process's /proc/PID/cgroup says of it.
type cgroupInfo struct {
	// path is the cgroup v2 (unified) path, else the v1 name=systemd one,
	// else the first v1 path: where systemd placed the process.
	path string
	// paths are all the paths listed, one per hierarchy.
	paths []string
}

// parseCgroup reads /proc/PID/cgroup content, for cgroup v1, v2 and hybrid
// hosts: lines of hierarchy-ID:controllers:path.
func parseCgroup(content string) cgroupInfo {
	var ci cgroupInfo
	var unified, systemd string
	for _, line := range strings.Split(strings.TrimSpace(content), "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 || !strings.HasPrefix(f[2], "/") {
			continue
		}
		ci.paths = append(ci.paths, f[2])
		switch {
		case f[0] == "0" && f[1] == "":
			unified = f[2]
		case f[1] == "name=systemd":
			systemd = f[2]
		case ci.path == "":
			ci.path = f[2]
		}
	}
	// On a hybrid host the unified hierarchy is systemd's too.
	if unified != "" {
		ci.path = unified
	} else if systemd != "" {
		ci.path = systemd
	}
	return ci
}

// userManager matches the cgroup of a user's service manager, under which
// every unit is a user unit that the user named.
var userManager = regexp.MustCompile(`^user@([0-9]+)\.service$`)

// systemdUnit names the systemd service unit of a cgroup path, the deepest
// .service segment: "/system.slice/nginx.service" -> "nginx". Only units
// of the system manager (PID 1, configured by root) keep their bare name.
// A unit under a user's manager (/user.slice/user-1000.slice/
// user@1000.service/app.slice/sshd.service) is the user's to name, so it
// is "user-1000/sshd", never "sshd". A template instance's '@' becomes '_'
// (getty@tty1 -> getty_tty1). "" when there is no such unit.
func systemdUnit(cgroup string) string {
	unit, user := "", ""
	for _, p := range strings.Split(cgroup, "/") {
		if m := userManager.FindStringSubmatch(p); m != nil {
			unit, user = "", m[1] // units above the manager are not its
			continue
		}
		if name, ok := strings.CutSuffix(p, ".service"); ok && name != "" {
			unit = name
		}
	}
	if unit == "" {
		return ""
	}
	unit = strings.ReplaceAll(unit, "@", "_")
	if user != "" {
		return "user-" + user + "/" + unit
	}
	return unit
}

// Pod segments of kubelet cgroup paths. A pod UID is a UUID, or 32 hex
// digits for a static pod (a hash of its manifest).
//   - cgroupfs driver, v1 and v2: /kubepods/burstable/pod<uid>/<container>
//     (also /kubepods/pod<uid>/..., under a kubelet root such as /kubelet).
//   - systemd driver: /kubepods.slice/kubepods-burstable.slice/
//     kubepods-burstable-pod<uid, '-' as '_'>.slice/cri-containerd-<id>.scope
//     (also kubelet-kubepods-... under a kubelet.slice).
var (
	podCgroupfs = regexp.MustCompile(`^pod([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{32})$`)
	podSystemd  = regexp.MustCompile(`^(?:[a-z]+-)*kubepods(?:-[a-z]+)?-pod([0-9a-f]{8}_[0-9a-f]{4}_[0-9a-f]{4}_[0-9a-f]{4}_[0-9a-f]{12}|[0-9a-f]{32})\.slice$`)
	// containerSeg takes the container ID out of the segment below the
	// pod's: a bare ID (cgroupfs) or <runtime>-<id>.scope (systemd).
	containerSeg = regexp.MustCompile(`^(?:[a-z]+(?:-[a-z]+)*-)?([0-9a-f]{12,64})(?:\.scope)?$`)
)

// k8sPod finds the pod a cgroup path is in: the pod's UID and its
// container's ID. ok is false unless the path has a kubepods segment, then
// a pod segment, then a container segment under it: a process in a pod's
// container. containerID is "" when the runtime's naming is not known.
func k8sPod(cgroup string) (uid, containerID string, ok bool) {
	parts := strings.Split(cgroup, "/")
	kube := false
	for i, p := range parts {
		if m := podSystemd.FindStringSubmatch(p); m != nil {
			uid = strings.ReplaceAll(m[1], "_", "-")
		} else if m := podCgroupfs.FindStringSubmatch(p); m != nil && kube {
			uid = m[1]
		} else {
			kube = kube || strings.Contains(p, "kubepods")
			continue
		}
		if i+1 >= len(parts) || parts[i+1] == "" {
			return "", "", false // the pod's own cgroup, not a container's
		}
		if m := containerSeg.FindStringSubmatch(parts[i+1]); m != nil {
			containerID = m[1]
		}
		return uid, containerID, true
	}
	return "", "", false
}

// podSuffix matches the ReplicaSet hash and random suffix of a Deployment's
// pod name (api-7d4b9c8f6d-x2x9z), or the random suffix of a DaemonSet's or
// Job's (agent-x2x9z).
var podSuffix = regexp.MustCompile(`(-[a-z0-9]{8,10})?-[a-z0-9]{5}$`)

// podHostname matches a pod's hostname: its name as a DNS label (the
// kubelet cuts longer pod names to 63 characters).
var podHostname = regexp.MustCompile(`^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$`)

// workloadName turns a pod name into the name of its workload.
func workloadName(pod string) string {
	if n := podSuffix.ReplaceAllString(pod, ""); n != "" {
		return n
	}
	return pod
}

// readProcFile reads at most limit bytes of a /proc file.
func readProcFile(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, limit))
}

// readCgroup parses a process's /proc/PID/cgroup; empty when unreadable.
func readCgroup(proc string, pid int) cgroupInfo {
	b, err := readProcFile(filepath.Join(proc, strconv.Itoa(pid), "cgroup"), maxProcFileBytes)
	if err != nil {
		return cgroupInfo{}
	}
	return parseCgroup(string(b))
}

// environ reads one variable of a process's initial environment.
func environ(proc string, pid int, key string) string {
	b, err := readProcFile(filepath.Join(proc, strconv.Itoa(pid), "environ"), maxProcFileBytes)
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

// hostUTS reports whether a process shares the host's (PID 1's) UTS
// namespace, as a hostNetwork pod does: its HOSTNAME is then the node's
// name, not the pod's. Unknown (unreadable links) counts as not shared.
func hostUTS(proc string, pid int) bool {
	mine, err := os.Readlink(filepath.Join(proc, strconv.Itoa(pid), "ns", "uts"))
	if err != nil {
		return false
	}
	host, err := os.Readlink(filepath.Join(proc, "1", "ns", "uts"))
	return err == nil && mine == host
}

// podWorkload names the workload of a process in a pod: HOSTNAME is a hint,
// taken only when it looks like a pod's hostname and the process has a UTS
// namespace of its own; otherwise the pod's UID names it.
func podWorkload(proc string, pid int, uid string) string {
	if h := environ(proc, pid, "HOSTNAME"); podHostname.MatchString(h) && !hostUTS(proc, pid) {
		return workloadName(h)
	}
	return "pod-" + uid
}

// name sets p's service name, its source, cgroup and pod, all bounded;
// p.Exe and p.Cmdline, which rules match, must be set (and bounded) first.
func (s *Scanner) name(proc string, p *Process) {
	name, source := s.serviceName(proc, p)
	p.Cgroup = p.bound(FieldCgroup, p.Cgroup)
	p.ServiceName, p.ServiceSource = p.sanitizeName(name), source
}

// serviceName picks a process's service name: a configured rule first, then
// its Kubernetes workload, then its systemd unit, then its executable's
// name. It sets p.Cgroup, p.PodUID and p.ContainerID; the name is not yet
// sanitized.
//
// A pod's identity comes from the cgroup alone (kubepods.../pod<UID>/
// <container>). HOSTNAME is read only for a process in such a cgroup, as a
// hint to the workload's name: a process elsewhere never takes its name
// from its environment.
func (s *Scanner) serviceName(proc string, p *Process) (string, string) {
	ci := readCgroup(proc, p.PID)
	p.Cgroup = ci.path
	for _, cg := range ci.paths {
		if uid, cid, ok := k8sPod(cg); ok {
			p.PodUID, p.ContainerID = uid, cid
			break
		}
	}
	if name := s.Rules.ServiceName(p); name != "" {
		return name, ServiceFromRule
	}
	if p.PodUID != "" {
		return podWorkload(proc, p.PID, p.PodUID), ServiceFromK8s
	}
	if unit := systemdUnit(ci.path); unit != "" {
		return unit, ServiceFromSystemd
	}
	return exeName(p.Exe), ServiceFromExe
}

// exeName is the base name of an executable path, without the kernel's
// " (deleted)" mark.
func exeName(exe string) string {
	if exe == "" {
		return ""
	}
	return filepath.Base(strings.TrimSuffix(exe, " (deleted)"))
}
