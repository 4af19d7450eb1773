package cgroup

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Bounds of what is read of /proc: a host's mount table can be long (a Kubernetes node has a
// few mounts per container), a process's cgroup list is short.
const (
	maxMountinfoBytes = 8 << 20
	maxCgroupFile     = 64 << 10
)

// Mount is one cgroup filesystem mount of the agent's mount namespace.
type Mount struct {
	// V2 is set for the unified hierarchy (cgroup2); else Controllers are the v1 hierarchy's
	// (its super options: "cpu", "cpuacct", "memory", "name=systemd", ...).
	V2          bool
	Controllers []string
	// Root is the cgroup the mount shows at Point, as the kernel names it to the agent: relative
	// to the agent's cgroup namespace ("/" in the host's; "/../.." for a host hierarchy mounted
	// into a container that has a cgroup namespace of its own).
	Root  string
	Point string
}

// Mounts are the cgroup mounts of a mount table.
type Mounts []Mount

// ReadMounts reads the cgroup mounts of the agent's mount namespace from proc/self/mountinfo
// (proc is "/proc" but in tests).
func ReadMounts(proc string) (Mounts, error) {
	f, err := os.Open(filepath.Join(proc, "self", "mountinfo"))
	if err != nil {
		return nil, fmt.Errorf("read the mount table: %w", err)
	}
	defer f.Close()
	return ParseMountinfo(io.LimitReader(f, maxMountinfoBytes))
}

// ParseMountinfo keeps the cgroup and cgroup2 mounts of a mountinfo file (proc(5)): "id parent
// major:minor root point options [optional fields...] - fstype source super-options".
func ParseMountinfo(r io.Reader) (Mounts, error) {
	var out Mounts
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			return nil, fmt.Errorf("mountinfo line %d: no \" - \" separator: %q", n, clip(line))
		}
		f, g := strings.Fields(pre), strings.Fields(post)
		if len(f) < 6 || len(g) < 2 {
			return nil, fmt.Errorf("mountinfo line %d: %d fields before the separator (want 6 or more) and %d after (want 3): %q", n, len(f), len(g), clip(line))
		}
		m := Mount{Root: unescape(f[3]), Point: unescape(f[4])}
		switch g[0] {
		case "cgroup2":
			m.V2 = true
		case "cgroup":
			if len(g) >= 3 {
				for _, o := range strings.Split(g[2], ",") {
					if o != "rw" && o != "ro" && o != "" {
						m.Controllers = append(m.Controllers, o)
					}
				}
			}
		default:
			continue
		}
		out = append(out, m)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("mountinfo line %d: %w", n+1, err)
	}
	return out, nil
}

// unescape undoes mountinfo's octal escapes of space, tab, newline and backslash (\040,
// \011, \012, \134).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }

// clip shortens a line quoted in an error.
func clip(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}

// membership is one line of /proc/PID/cgroup: "hierarchy-ID:controllers:path".
type membership struct {
	v2          bool
	controllers []string
	path        string
}

// parseProcCgroup parses /proc/PID/cgroup, for v1, v2 and hybrid hosts.
func parseProcCgroup(b []byte) ([]membership, error) {
	var out []membership
	for i, line := range bytes.Split(bytes.TrimSpace(b), []byte{'\n'}) {
		f := strings.SplitN(string(line), ":", 3)
		if len(f) != 3 || !strings.HasPrefix(f[2], "/") {
			return nil, fmt.Errorf("line %d is not hierarchy-ID:controllers:/path: %q", i+1, clip(string(line)))
		}
		m := membership{path: f[2]}
		if f[0] == "0" && f[1] == "" {
			m.v2 = true
		} else {
			m.controllers = strings.Split(f[1], ",")
		}
		out = append(out, m)
	}
	if len(out) == 0 {
		return nil, errors.New("no cgroup listed")
	}
	return out, nil
}

// errOutside reports a cgroup no mount of the agent shows.
var errOutside = errors.New("not under any cgroup mount the agent has: the agent runs in a cgroup namespace of its own " +
	"(a container's, the default with cgroup v2) and the process's cgroup is outside it; run the agent in the host's " +
	"cgroup namespace (docker run --cgroupns=host), or mount the host's cgroup filesystem into its container " +
	"(which shows the cgroups that share no ancestor with the agent's below the host's root)")

// resolve finds the directory of cgroup path in the mounts that show the hierarchy (v2, or
// the v1 one of controller), and the directory of the mount's root: the highest ancestor the
// agent sees. Paths and roots are compared component by component: a path the kernel names
// from outside the agent's cgroup namespace starts with "..", and is found only under a mount
// whose root starts with as many.
func (ms Mounts) resolve(v2 bool, controller, path string) (dir, top string, err error) {
	parts := splitPath(path)
	best, bestLen := -1, -1
	for i, m := range ms {
		if m.V2 != v2 || (!v2 && !slices.Contains(m.Controllers, controller)) {
			continue
		}
		root := splitPath(m.Root)
		if len(root) > len(parts) || !slices.Equal(root, parts[:len(root)]) || slices.Contains(parts[len(root):], "..") {
			continue
		}
		if len(root) > bestLen {
			best, bestLen = i, len(root)
		}
	}
	if best < 0 {
		return "", "", fmt.Errorf("cgroup %s: %w", path, errOutside)
	}
	point := filepath.Clean(ms[best].Point)
	return filepath.Join(append([]string{point}, parts[bestLen:]...)...), point, nil
}

// splitPath splits a cgroup path into its components; "/" has none.
func splitPath(p string) []string {
	var out []string
	for _, c := range strings.Split(p, "/") {
		if c != "" && c != "." {
			out = append(out, c)
		}
	}
	return out
}

// hasV1 reports whether a v1 hierarchy of the mounts lists controller c.
func (ms Mounts) hasV1(c string) bool {
	for _, m := range ms {
		if !m.V2 && slices.Contains(m.Controllers, c) {
			return true
		}
	}
	return false
}
