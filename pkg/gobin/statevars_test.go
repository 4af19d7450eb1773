package gobin

import (
	"errors"
	"strings"
	"testing"

	"github.com/goroscope/goroscope/pkg/golayout"
)

// tableLayout is the built-in layout of b's Go version.
func tableLayout(t *testing.T, b *Binary) *golayout.Layout {
	t.Helper()
	l, err := golayout.ForVersion(b.GoVersion())
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// checkStateVars checks StateVars's source and that the disassembler agrees with the symbol
// table, where there is one.
func checkStateVars(t *testing.T, b *Binary, tb testBuild) StateVars {
	l := tableLayout(t, b)
	v, err := b.StateVars(l)
	if err != nil {
		t.Fatal(err)
	}
	checkSource(t, v.Source, tb)
	if v.Gomaxprocs == 0 || v.Allp == 0 || v.Sched == 0 || v.GCController == 0 || v.Memstats == 0 || v.ExtraMs[0] == 0 || v.ExtraMs[1] == 0 {
		t.Errorf("StateVars = %+v: missing addresses", v)
	}
	d, err := b.stateFromDisasm(offsetsOf(l))
	if err != nil {
		t.Fatalf("stateFromDisasm: %v", err)
	}
	d.Source = v.Source
	if d.ExtraMs[0] == v.ExtraMs[1] && d.ExtraMs[1] == v.ExtraMs[0] { // in either order from the code
		d.ExtraMs = v.ExtraMs
	}
	if d != v {
		t.Errorf("disasm %+v != %+v", d, v)
	}
	return v
}

// TestStateVarsWrongOffsets checks that offsets of another layout find nothing rather than a
// wrong address, and that the error names the variable and the binary.
func TestStateVarsWrongOffsets(t *testing.T) {
	b := mustOpen(t, buildCallers(t, testBuild{toolchain: "local", stripped: true}))
	l := tableLayout(t, b)
	bad := *l
	bad.Sched.Mnext += 8
	if _, err := b.stateFromDisasm(offsetsOf(&bad)); err == nil || !errors.Is(err, errNone) {
		t.Errorf("sched with a wrong mnext offset: %v, want no candidate", err)
	}
	bad = *l
	bad.Mstats.Numforcedgc += 4
	if _, err := b.StateVars(&bad); err == nil {
		t.Error("memstats with a wrong numforcedgc offset: no error")
	} else if msg := err.Error(); !strings.Contains(msg, "runtime.memstats") || !strings.Contains(msg, b.Name()) {
		t.Errorf("error %q does not name runtime.memstats and the binary", msg)
	}
	bad.Sched.Mnext = golayout.Absent
	if _, err := b.StateVars(&bad); err == nil {
		t.Error("absent field: no error")
	}
	// The memo follows the offsets: the right ones still work.
	if _, err := b.StateVars(l); err != nil {
		t.Errorf("StateVars after wrong offsets: %v", err)
	}
}
