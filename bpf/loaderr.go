//go:build linux

package bpf

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"golang.org/x/sys/unix"
)

// Object identifies one of the embedded BPF objects by its bytes: a kernel
// build's verifier passes the same verdict on the same bytes every time, so
// Object.Hash and KernelBuild together key a remembered rejection.
type Object struct {
	Name string // "goroutines" or "cpu"
	Hash string // hex SHA-256 of the object file
}

// GoroutinesObject is the goroutine walker's object (LoadGoroutineWalker).
func GoroutinesObject() Object { return objectOf("goroutines", _GoroutinesBytes) }

// CPUObject is the CPU sampler's object (LoadCPUSampler).
func CPUObject() Object { return objectOf("cpu", _CpuBytes) }

func objectOf(name string, b []byte) Object {
	sum := sha256.Sum256(b)
	return Object{Name: name, Hash: hex.EncodeToString(sum[:])}
}

// KernelBuild identifies the running kernel's build: its release and
// version strings (uname -r, uname -v) and the size of its BTF, which
// together change whenever the kernel (and so its verifier) does.
func KernelBuild() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "unknown"
	}
	s := unix.ByteSliceToString(u.Release[:]) + " " + unix.ByteSliceToString(u.Version[:])
	if fi, err := os.Stat("/sys/kernel/btf/vmlinux"); err == nil {
		s += fmt.Sprintf(" btf:%d", fi.Size())
	}
	return s
}

// LoadError is why an embedded BPF object did not load. Its message is one
// line with the real cause (never the verifier's whole log) and, when
// something can be done about it, the fix.
type LoadError struct {
	// What was loaded: "goroutine walker" or "CPU sampler".
	What string
	// Kernel is the running kernel's release (uname -r).
	Kernel string
	// Program names the program the verifier rejected, when it did.
	Program string
	// Cause is the cause in a few words, e.g. "verifier: too complex,
	// 1,000,001 instructions processed, limit 1,000,000", "no BTF", or
	// "missing CAP_BPF and CAP_PERFMON".
	Cause string
	// Fix is what would make the object load, if the host can do anything.
	Fix string
	// Rejected says the kernel's verifier refused the object: this kernel
	// build refuses these bytes again on every load, so the verdict may be
	// remembered (see KernelBuild and Object).
	Rejected bool
	// VerifierLog is the verifier's log of the load, at the statistics
	// level the loaders ask for: its error messages and its counts.
	VerifierLog []string
	// Err is the error of the failed step.
	Err error
}

func (e *LoadError) Error() string {
	s := "load " + e.What + ": " + e.Cause
	if e.Program != "" {
		s += " (program " + e.Program + ", kernel " + e.Kernel + ")"
	}
	if e.Fix != "" {
		s += "; " + e.Fix
	}
	return s
}

func (e *LoadError) Unwrap() error { return e.Err }

// checkPrivileges fails clearly when the process cannot load tracing BPF
// programs or read kernel BTF: the steps every load starts with.
func checkPrivileges(what string) error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return &LoadError{What: what, Kernel: kernelRelease(), Cause: "read capabilities: " + err.Error(), Err: err}
	}
	has := func(c uint) bool { return data[c/32].Effective&(1<<(c%32)) != 0 }
	if !has(unix.CAP_SYS_ADMIN) && !(has(unix.CAP_BPF) && has(unix.CAP_PERFMON)) {
		return &LoadError{What: what, Kernel: kernelRelease(),
			Cause: fmt.Sprintf("missing CAP_BPF and CAP_PERFMON (uid %d has neither them nor CAP_SYS_ADMIN)", os.Geteuid()),
			Fix:   "run as root or with CAP_BPF and CAP_PERFMON", Err: os.ErrPermission}
	}
	if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err != nil {
		return &LoadError{What: what, Kernel: kernelRelease(), Cause: "no BTF: " + err.Error(),
			Fix: "it needs a kernel built with CONFIG_DEBUG_INFO_BTF=y", Err: err}
	}
	return nil
}

// checkCaps fails clearly when the process cannot load tracing BPF programs.
func checkCaps() error { return checkPrivileges("goroutine walker") }

// explainLoadError turns a failed load of an object into a LoadError with
// the cause in one line. features lists what the object needs of the
// kernel, for the message when the kernel lacks one.
func explainLoadError(what, features string, err error) *LoadError {
	e := &LoadError{What: what, Kernel: kernelRelease(), Err: err}
	e.Program = programOf(err)
	var verr *ebpf.VerifierError
	// The verifier reports rejections as EACCES/EINVAL too, so look at its log first.
	switch {
	case errors.As(err, &verr):
		e.VerifierLog = verr.Log
		e.Cause = VerifierCause(verr.Cause, verr.Log)
		e.Rejected = isVerdict(verr.Cause)
		if missingFeature(e.Cause) {
			e.Fix = e.needsNewerKernel(features)
		}
	case errors.Is(err, btf.ErrNotSupported):
		e.Cause = "no BTF: " + err.Error()
		e.Fix = "it needs a kernel built with CONFIG_DEBUG_INFO_BTF=y"
	case errors.Is(err, ebpf.ErrNotSupported):
		e.Cause = "kernel feature missing: " + err.Error()
		e.Fix = e.needsNewerKernel(features)
	case errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES):
		e.Cause = "permission denied: " + err.Error()
		e.Fix = "run as root or with CAP_BPF and CAP_PERFMON (and no kernel lockdown of BPF)"
	default:
		e.Cause = err.Error()
	}
	return e
}

// needsNewerKernel names the kernel a missing feature calls for: a version
// only when this kernel is older than the one that brought every feature.
func (e *LoadError) needsNewerKernel(features string) string {
	if kernelOlderThan(e.Kernel, minKernel) {
		return fmt.Sprintf("it needs %s: Linux >= %s", features, minKernel)
	}
	return fmt.Sprintf("it needs %s, which this kernel (%s) was built without", features, e.Kernel)
}

// isVerdict says whether a verifier error is its judgement of the program
// (the same bytes fail the same way on this kernel build), not a passing
// condition such as memory pressure or privileges.
func isVerdict(errno error) bool {
	for _, e := range []unix.Errno{unix.EACCES, unix.EINVAL, unix.E2BIG, enotsupp, unix.EOPNOTSUPP} {
		if errors.Is(errno, e) {
			return true
		}
	}
	return false
}

// enotsupp is the kernel's own ENOTSUPP (524), which BPF returns for an
// unsupported attach or feature; x/sys/unix has no name for it.
const enotsupp = unix.Errno(524)

var (
	tooLargeRE  = regexp.MustCompile(`BPF program is too large\. Processed (\d+) insn`)
	limitRE     = regexp.MustCompile(`processed (\d+) insns \(limit (\d+)\)`)
	statsLineRE = regexp.MustCompile(`^(processed \d+ insns|verification time \d+ usec|stack depth [\d+]+$)`)
)

// VerifierCause is the cause of a verifier rejection in one line, from the
// error the load returned (E2BIG, EACCES, ...) and the verifier's log:
// "verifier: too complex, 1,000,001 instructions processed, limit
// 1,000,000" when the program exceeded the kernel's instruction limit,
// else the verifier's last message, e.g. "verifier: R2 invalid mem access
// 'scalar' (EACCES)".
func VerifierCause(errno error, log []string) string {
	processed, limit := -1, -1
	tooLarge := false
	for _, line := range log {
		if m := tooLargeRE.FindStringSubmatch(line); m != nil {
			tooLarge = true
			processed, _ = strconv.Atoi(m[1])
		}
		if m := limitRE.FindStringSubmatch(line); m != nil {
			processed, _ = strconv.Atoi(m[1])
			limit, _ = strconv.Atoi(m[2])
		}
	}
	if tooLarge || (errors.Is(errno, unix.E2BIG) && processed >= 0 && limit > 0 && processed > limit) {
		s := "verifier: too complex"
		if processed >= 0 {
			s += ", " + thousands(processed) + " instructions processed"
		}
		if limit > 0 {
			s += ", limit " + thousands(limit)
		}
		return s
	}
	msg := ""
	for i := len(log) - 1; i >= 0 && msg == ""; i-- {
		if l := strings.TrimSpace(log[i]); l != "" && !statsLineRE.MatchString(l) {
			msg = l
		}
	}
	name := errnoName(errno)
	switch {
	case msg == "" && errors.Is(errno, unix.E2BIG):
		return "verifier: too complex (E2BIG, no log)"
	case msg == "":
		return "verifier: rejected with " + name + " (no log)"
	case errors.Is(errno, unix.E2BIG):
		return "verifier: too complex: " + msg
	}
	return "verifier: " + msg + " (" + name + ")"
}

// missingFeature says whether a verifier message means the kernel lacks a
// helper, kfunc or program type rather than that the program is wrong.
func missingFeature(cause string) bool {
	for _, s := range []string{"unknown func", "invalid func", "cannot use helper", "sleepable", "attach_btf_id", "not supported", "unknown kfunc"} {
		if strings.Contains(cause, s) {
			return true
		}
	}
	return false
}

func errnoName(err error) string {
	var errno unix.Errno
	if errors.As(err, &errno) {
		if n := unix.ErrnoName(errno); n != "" {
			return n
		}
	}
	if err == nil {
		return "no error"
	}
	return err.Error()
}

// thousands writes n with commas between groups of three digits.
func thousands(n int) string {
	s := strconv.Itoa(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 && s[i-1] != '-' {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// programOf finds the rejected program's name in cilium/ebpf's wrapping
// ("program walk_goroutines: load program: ...").
func programOf(err error) string {
	_, rest, ok := strings.Cut(err.Error(), "program ")
	if !ok {
		return ""
	}
	name, _, ok := strings.Cut(rest, ":")
	if !ok || strings.ContainsAny(name, " \t") {
		return ""
	}
	return name
}

// kernelOlderThan reports whether release (uname -r, "5.15.0-91-generic")
// is older than min ("5.18"); an unparsable release is not.
func kernelOlderThan(release, min string) bool {
	parse := func(s string) (int, int, bool) {
		maj, rest, ok := strings.Cut(s, ".")
		if !ok {
			return 0, 0, false
		}
		end := strings.IndexFunc(rest, func(r rune) bool { return r < '0' || r > '9' })
		if end >= 0 {
			rest = rest[:end]
		}
		a, err1 := strconv.Atoi(maj)
		b, err2 := strconv.Atoi(rest)
		return a, b, err1 == nil && err2 == nil
	}
	a, b, ok := parse(release)
	c, d, ok2 := parse(min)
	if !ok || !ok2 {
		return false
	}
	return a < c || (a == c && b < d)
}

func kernelRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "(unknown)"
	}
	return unix.ByteSliceToString(u.Release[:])
}
