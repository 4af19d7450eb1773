package targettest

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/goroscope/goroscope/pkg/goroutinedump"
	"github.com/goroscope/goroscope/test/eventually"
)

var captureDir = flag.String("capture", "", "write the population dumps of every toolchain into this directory (for pkg/goroutinedump/testdata)")

func TestToolchains(t *testing.T) {
	tests := []struct {
		env  string
		set  bool
		want []string
	}{
		{set: false, want: append(append([]string(nil), DefaultToolchains...), runtime.Version())},
		{env: "go1.22.12, local,go1.22.12", set: true, want: []string{"go1.22.12", runtime.Version()}},
		{env: "", set: true, want: []string{runtime.Version()}},
	}
	for _, tt := range tests {
		if tt.set {
			t.Setenv("GOROSCOPE_GO_VERSIONS", tt.env)
		} else {
			t.Setenv("GOROSCOPE_GO_VERSIONS", "") // restores the environment's value at the end
			if err := os.Unsetenv("GOROSCOPE_GO_VERSIONS"); err != nil {
				t.Fatal(err)
			}
		}
		if got := Toolchains(); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Toolchains() with %q = %q, want %q", tt.env, got, tt.want)
		}
	}
}

func TestBuildOptsFlagsName(t *testing.T) {
	tests := []struct {
		o    BuildOpts
		want string
	}{
		{BuildOpts{}, "plain"},
		{BuildOpts{Stripped: true}, "stripped"},
		{BuildOpts{Stripped: true, PIE: true}, "stripped-pie"},
		{BuildOpts{PIE: true, Cgo: true}, "pie-cgo"},
	}
	for _, tt := range tests {
		if got := tt.o.flagsName(); got != tt.want {
			t.Errorf("%+v.flagsName() = %q, want %q", tt.o, got, tt.want)
		}
	}
}

func TestBuildRejectsBadPackage(t *testing.T) {
	for _, pkg := range []string{"", "../x", "a/b", "."} {
		if _, err := Compile(pkg, BuildOpts{}); err == nil {
			t.Errorf("Compile(%q) succeeded, want an error", pkg)
		}
	}
}

// TestLocalPopulation runs the population target built with the local
// toolchain and checks the dump, the population, labels and growth.
func TestLocalPopulation(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a target")
	}
	bin := Build(t, "population", BuildOpts{})
	if again := Build(t, "population", BuildOpts{}); again != bin {
		t.Errorf("second Build = %s, want the cached %s", again, bin)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	tg := StartWith(t, StartOpts{Env: []string{"GODEBUG=tracebacklabels=1"}}, bin, "-grow", "2")
	if tg.GoVersion != runtime.Version() {
		t.Errorf("target reports %s, want %s", tg.GoVersion, runtime.Version())
	}
	pop, err := tg.Population(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if pop.PID != tg.PID || pop.Total() < 60 {
		t.Fatalf("population pid %d total %d, want pid %d and >= 60 goroutines", pop.PID, pop.Total(), tg.PID)
	}
	gs, raw, err := tg.Dump(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := pop.Check(gs); err != nil {
		t.Fatalf("%v\n%s", err, raw)
	}
	// tracebacklabels=1 is go1.26+: labels must then appear in the headers.
	if strings.Contains(raw, "labels:{") {
		acme, _ := pop.Group("labels-acme")
		for _, g := range gs {
			if g.ID == acme.IDs[0] && g.Labels["tenant"] != "acme" {
				t.Errorf("goroutine %d labels %v, want tenant=acme", g.ID, g.Labels)
			}
		}
	}

	// -grow 2 adds two goroutines a second.
	eventually.Succeeds(t, 20*time.Second, func() error {
		p2, err := tg.Population(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if g, _ := p2.Group("grow"); len(g.IDs) < 4 {
			return fmt.Errorf("grow group has %d goroutines, want 4", len(g.IDs))
		}
		return nil
	})
}

// TestTracebackSystem checks the GOTRACEBACK=system crash format (gp=, m=,
// fp/sp/pc) through SIGQUIT.
func TestTracebackSystem(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a target")
	}
	tg := StartWith(t, StartOpts{Env: []string{"GOTRACEBACK=system"}}, Build(t, "population", BuildOpts{}))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pop, err := tg.Population(ctx)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := tg.Quit()
	if err != nil {
		t.Fatal(err)
	}
	gs, err := goroutinedump.ParseCrash(strings.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if err := pop.Check(gs); err != nil {
		t.Fatalf("%v\n%s", err, raw)
	}
	for _, g := range gs {
		if g.GAddr == 0 {
			t.Fatalf("goroutine %d: no gp= address at GOTRACEBACK=system", g.ID)
		}
		if len(g.Frames) > 0 && !g.Frames[0].Inlined && g.Frames[0].SP == 0 {
			t.Fatalf("goroutine %d: leaf frame without sp= at GOTRACEBACK=system", g.ID)
		}
	}
}

func TestStartNotGo(t *testing.T) {
	cmd := StartNotGo(t)
	exe, err := os.Readlink(filepath.Join("/proc", strconv.Itoa(cmd.Process.Pid), "exe"))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	if !strings.Contains(exe, "sleep") {
		t.Errorf("non-Go target runs %s, want sleep", exe)
	}
}

// TestAllToolchains builds the population target with every toolchain,
// stripped or not and as PIE, and checks that its debug=2 dump parses and
// matches the population.
func TestAllToolchains(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the target with every toolchain")
	}
	variants := []BuildOpts{{}, {Stripped: true}, {Stripped: true, PIE: true}}
	for _, v := range Toolchains() {
		for _, o := range variants {
			o.GoVersion = v
			t.Run(v+"-"+o.flagsName(), func(t *testing.T) {
				tg := Start(t, Build(t, "population", o), "-n", "2")
				if tg.GoVersion != v {
					t.Errorf("target reports %s, want %s", tg.GoVersion, v)
				}
				checkTarget(t, tg)
			})
		}
	}
	if *captureDir != "" {
		capture(t)
	}
}

func checkTarget(t *testing.T, tg *Target) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pop, err := tg.Population(ctx)
	if err != nil {
		t.Fatal(err)
	}
	gs, raw, err := tg.Dump(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := pop.Check(gs); err != nil {
		t.Fatalf("%v\n%s", err, raw)
	}
	for _, grp := range pop.Groups {
		t.Logf("%s: group %-18s status %q", pop.Go, grp.Name, grp.Status)
	}
}

// capture writes small dumps of every toolchain in several traceback
// modes into *captureDir.
func capture(t *testing.T) {
	modes := []struct {
		name string
		env  []string
	}{
		{"default", nil},
		{"ancestors", []string{"GODEBUG=tracebackancestors=2"}},
		{"labels", []string{"GODEBUG=tracebacklabels=1"}},
		{"crash", []string{"GOTRACEBACK=system"}},
	}
	for _, v := range Toolchains() {
		bin := Build(t, "population", BuildOpts{GoVersion: v})
		for _, m := range modes {
			tg := StartWith(t, StartOpts{Env: m.env}, bin, "-n", "1")
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			raw, err := tg.DumpRaw(ctx)
			cancel()
			if m.name == "crash" {
				raw, err = tg.Quit()
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.name == "labels" && !strings.Contains(raw, "labels:{") {
				tg.Stop()
				continue // no label support in this version
			}
			name := filepath.Join(*captureDir, v+"-"+m.name+".txt")
			if err := os.WriteFile(name, []byte(raw), 0o644); err != nil {
				t.Fatal(err)
			}
			tg.Stop()
			if _, err := goroutinedump.ParseCrash(strings.NewReader(raw)); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
	}
}
