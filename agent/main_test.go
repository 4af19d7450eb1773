package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/google/pprof/profile"

	"github.com/goroscope/goroscope/agent/bpfload"
	"github.com/goroscope/goroscope/pkg/snapshot"
	"github.com/goroscope/goroscope/test/targettest"
)

// TestCommandLine runs the commands in-process against a real target.
func TestCommandLine(t *testing.T) {
	t.Setenv(bpfload.VerdictsEnv, filepath.Join(t.TempDir(), bpfload.VerdictsFile))
	if testing.Short() {
		t.Skip("builds a target")
	}
	bin := targettest.Build(t, "population", targettest.BuildOpts{})
	tgt := targettest.Start(t, bin)
	pid := strconv.Itoa(tgt.PID)
	for _, tc := range []struct {
		name    string
		args    []string
		usage   bool   // want a usage error
		help    bool   // want the help asked for
		errHas  string // want an error containing this
		outHas  string
		checkFn func(t *testing.T, out []byte)
	}{
		{name: "no command", args: nil, usage: true},
		{name: "unknown command", args: []string{"frobnicate"}, usage: true, errHas: `unknown command "frobnicate"`},
		{name: "missing pid", args: []string{"snapshot"}, usage: true, errHas: "--pid is required"},
		{name: "bad format", args: []string{"snapshot", "--pid", pid, "--format", "xml"}, usage: true, errHas: `--format "xml"`},
		{name: "bad walker", args: []string{"snapshot", "--pid", pid, "--walker", "magic"}, usage: true, errHas: `--walker "magic"`},
		{name: "bad flag", args: []string{"snapshot", "--frobs"}, usage: true, errHas: "flag provided but not defined"},
		{name: "no such pid", args: []string{"snapshot", "--pid", "1073741824", "--walker", "procmem"}, errHas: "no such process"},
		{name: "version", args: []string{"version"}, outHas: "goroscope "},
		{name: "help is not an error", args: []string{"agent", "-h"}, errHas: "goroscope agent flags:\n  --config\tYAML config file (see configs/goroscope.yaml)\n  --cpu-frequency\teBPF CPU sampling rate in Hz, 19 to 999; 0 turns it off (default 99)\n", help: true},
		{name: "a number for a duration", args: []string{"profile", "--pid", pid, "--duration", "5"}, usage: true, errHas: `"5" has no unit: write 5s`},
		{name: "no such pid, auto", args: []string{"snapshot", "--pid", "1073741824"}, errHas: "no such process"},
		{name: "ps", args: []string{"ps"}, outHas: "/population-"},
		{name: "ps loads no walker", args: []string{"ps", "--walker", "ebpf"}, usage: true, errHas: "flag provided but not defined"},
		{name: "json", args: []string{"snapshot", "--pid", pid, "--walker", "procmem"}, checkFn: func(t *testing.T, out []byte) {
			var s snapshot.Snapshot
			if err := json.Unmarshal(out, &s); err != nil {
				t.Fatalf("decode JSON: %v", err)
			}
			if s.PID != tgt.PID || s.Walker != "procmem" || s.Counts.Total() != len(s.Goroutines) || len(s.Goroutines) < tgt.Goroutines {
				t.Errorf("snapshot pid %d walker %q counts %+v with %d goroutines; target %d has %d", s.PID, s.Walker, s.Counts, len(s.Goroutines), tgt.PID, tgt.Goroutines)
			}
		}},
		{name: "text", args: []string{"snapshot", "--pid", pid, "--format", "text", "--walker", "procmem"}, outHas: "goroutine 1 [", checkFn: func(t *testing.T, out []byte) {
			if bytes.Contains(out, []byte("runtime.gopark")) {
				t.Errorf("text form shows runtime.gopark, which the runtime's dumps hide")
			}
		}},
		{name: "text all", args: []string{"snapshot", "--pid", pid, "--format", "text", "--all", "--walker", "procmem"}, outHas: "runtime.gopark(...)"},
		{name: "folded", args: []string{"snapshot", "--pid", pid, "--format", "folded", "--walker", "procmem"}, outHas: "waiting: chan receive;runtime.goexit;"},
		{name: "pprof", args: []string{"snapshot", "--pid", pid, "--format", "pprof", "--walker", "procmem"}, checkFn: func(t *testing.T, out []byte) {
			p, err := profile.ParseData(out)
			if err != nil {
				t.Fatalf("parse pprof: %v", err)
			}
			total := int64(0)
			for _, s := range p.Sample {
				total += s.Value[0]
				if len(s.Label["state"]) != 1 {
					t.Fatalf("sample without a state label: %v", s.Label)
				}
			}
			if p.SampleType[0].Type != "goroutine" || total < int64(tgt.Goroutines) {
				t.Errorf("pprof %s with %d goroutines; target has %d", p.SampleType[0].Type, total, tgt.Goroutines)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := run(context.Background(), tc.args, &out, &errOut)
			if tc.usage {
				if _, ok := err.(usageError); !ok {
					t.Fatalf("run(%q) = %v, want a usage error", tc.args, err)
				}
			}
			if _, ok := err.(helpRequested); ok != tc.help {
				t.Fatalf("run(%q) = %v; help requested %v, want %v", tc.args, err, ok, tc.help)
			}
			if tc.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errHas) {
					t.Fatalf("run(%q) = %v, want an error with %q", tc.args, err, tc.errHas)
				}
				return
			}
			if !tc.usage && err != nil {
				t.Fatalf("run(%q): %v\n%s", tc.args, err, errOut.String())
			}
			if tc.outHas != "" && !strings.Contains(out.String(), tc.outHas) {
				t.Errorf("run(%q) output lacks %q:\n%.2000s", tc.args, tc.outHas, out.String())
			}
			if tc.checkFn != nil {
				tc.checkFn(t, out.Bytes())
			}
		})
	}
}

// TestNoPrivileges: without root or CAP_SYS_PTRACE the error says what is
// missing and how to fix it.
func TestNoPrivileges(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the command and a target")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to drop to another user")
	}
	dir := t.TempDir()
	exe := filepath.Join(dir, "goroscope")
	if out, err := exec.Command("go", "build", "-o", exe, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	for d := dir; d != "/" && d != "."; d = filepath.Dir(d) {
		if strings.HasPrefix(d, os.TempDir()) && d != os.TempDir() {
			if err := os.Chmod(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	tgt := targettest.Start(t, targettest.Build(t, "population", targettest.BuildOpts{}))
	cmd := exec.Command(exe, "snapshot", "--pid", strconv.Itoa(tgt.PID))
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("snapshot as nobody succeeded:\n%s", out)
	}
	for _, want := range []string{"pid " + strconv.Itoa(tgt.PID), "permission denied", "CAP_SYS_PTRACE"} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if bytes.Contains(out, []byte("panic")) {
		t.Errorf("panicked:\n%s", out)
	}
}
