package ui

import (
	"bytes"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/google/pprof/profile"

	"github.com/goroscope/goroscope/pkg/store"
)

// TestCPUProfileKind: a process_cpu entry shows among the process's kinds
// and its flame graph is valued in CPU time (the last sample type), not in
// sample counts.
func TestCPUProfileKind(t *testing.T) {
	st := openStore(t)
	appendSnapshot(t, st, testProc, snapA())
	fn := &profile.Function{ID: 1, Name: "main.burn", SystemName: "main.burn", Filename: "burn.go"}
	loc := &profile.Location{ID: 1, Address: 0x1000, Line: []profile.Line{{Function: fn, Line: 9}}}
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "samples", Unit: "count"}, {Type: "cpu", Unit: "nanoseconds"}},
		PeriodType: &profile.ValueType{Type: "cpu", Unit: "nanoseconds"}, Period: 10101010,
		Sample:   []*profile.Sample{{Location: []*profile.Location{loc}, Value: []int64{99, 999_999_990}}},
		Location: []*profile.Location{loc}, Function: []*profile.Function{fn}, TimeNanos: t0.UnixNano(),
	}
	var buf bytes.Buffer
	if err := p.Write(&buf); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Append(store.Entry{Process: testProc, Kind: store.KindCPU, Time: t0, Data: buf.Bytes()}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(New(testSource{Store: st}, nil))
	t.Cleanup(srv.Close)

	s := getJSON[Series](t, srv, procPath+"/series")
	if !slices.Equal(s.Kinds, []string{store.KindGoroutines, store.KindGoroutineWall, store.KindCPU}) {
		t.Errorf("kinds %v, want goroutines, goroutine_wall, process_cpu", s.Kinds)
	}
	f := getJSON[FlameAnswer](t, srv, procPath+"/flame?kind=process_cpu")
	if f.SampleType != "cpu" || f.Unit != "nanoseconds" || f.Total != 999_999_990 {
		t.Errorf("process_cpu flame: %s/%s total %d, want cpu/nanoseconds 999999990", f.SampleType, f.Unit, f.Total)
	}
}
