package rtstate

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
)

// Bounds of what is kept of a process's environment, which is untrusted.
const (
	maxEnvBytes    = 1 << 20 // read of /proc/PID/environ
	maxEnvVars     = 64      // GO* variables kept
	maxEnvValueLen = 1024    // bytes of a value kept
)

// EnvVar is one variable of a process's environment.
type EnvVar struct {
	Name, Value string
	// Truncated says Value was cut at 1 KiB.
	Truncated bool `json:",omitempty"`
}

// urlUserinfo matches the user:password@ of URLs (GOPROXY=https://user:token@host), which is
// redacted.
var urlUserinfo = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*://)[^/@\s,|]*@`)

// secretName matches the names of variables whose values are redacted whole.
var secretName = regexp.MustCompile(`AUTH|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|KEY`)

// readEnv reads the GO* variables of the environment process pid started with. Reading
// another user's process needs the rights to read its memory (root, CAP_SYS_PTRACE).
func readEnv(pid int) ([]EnvVar, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		return nil, fmt.Errorf("read environment of pid %d: %w", pid, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxEnvBytes))
	if err != nil {
		return nil, fmt.Errorf("read environment of pid %d: %w", pid, err)
	}
	return parseEnv(b), nil
}

// parseEnv keeps the GO* variables of a NUL-separated environment block: the first definition
// of a name wins, as getenv finds it. Values are made valid UTF-8, cut at maxEnvValueLen, and
// redacted where they may hold credentials.
func parseEnv(b []byte) []EnvVar {
	var out []EnvVar
	seen := map[string]bool{}
	for len(b) > 0 && len(out) < maxEnvVars {
		var kv []byte
		kv, b, _ = bytes.Cut(b, []byte{0})
		name, value, ok := bytes.Cut(kv, []byte{'='})
		if !ok || !goName(name) || seen[string(name)] {
			continue
		}
		v := EnvVar{Name: string(name)}
		seen[v.Name] = true
		if len(value) > maxEnvValueLen {
			value, v.Truncated = value[:maxEnvValueLen], true // a character cut in two becomes U+FFFD
		}
		v.Value = redact(v.Name, strings.ToValidUTF8(string(value), "\uFFFD"))
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b EnvVar) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// goName reports whether name is GO followed by upper-case letters, digits and underscores.
func goName(name []byte) bool {
	if len(name) < 3 || len(name) > 64 || !bytes.HasPrefix(name, []byte("GO")) {
		return false
	}
	for _, c := range name {
		if (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}

// redact hides what may be a credential in variable name's value.
func redact(name, value string) string {
	if secretName.MatchString(name) && value != "" {
		return "REDACTED"
	}
	return urlUserinfo.ReplaceAllString(value, "${1}REDACTED@")
}
