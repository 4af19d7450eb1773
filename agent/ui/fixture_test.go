package ui

import (
	"bytes"
	"compress/gzip"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/goroscope/goroscope/pkg/fold"
	"github.com/goroscope/goroscope/pkg/snapshot"
	"github.com/goroscope/goroscope/pkg/store"
)

// Stacks of the hand-made snapshots, leaf first. main.worker is inlined
// into main.loop (one PC, two frames).
var (
	stackRecv = []snapshot.Frame{
		{Function: "runtime.gopark", File: "/go/src/runtime/proc.go", Line: 100, PC: 0x100},
		{Function: "runtime.chanrecv1", File: "/go/src/runtime/chan.go", Line: 200, PC: 0x200},
		{Function: "main.worker", File: "/app/w.go", Line: 10, PC: 0x300, Inlined: true},
		{Function: "main.loop", File: "/app/w.go", Line: 20, PC: 0x300},
		{Function: "main.start", File: "/app/w.go", Line: 30, PC: 0x400},
	}
	stackMutex = []snapshot.Frame{
		{Function: "runtime.gopark", File: "/go/src/runtime/proc.go", Line: 100, PC: 0x100},
		{Function: "sync.(*Mutex).Lock", File: "/go/src/sync/mutex.go", Line: 50, PC: 0x500},
		{Function: "main.handle", File: "/app/h.go", Line: 5, PC: 0x600},
		{Function: "main.start", File: "/app/w.go", Line: 30, PC: 0x400},
	}
	stackSelect = []snapshot.Frame{
		{Function: "runtime.gopark", File: "/go/src/runtime/proc.go", Line: 100, PC: 0x100},
		{Function: "runtime.selectgo", File: "/go/src/runtime/select.go", Line: 300, PC: 0x700},
		{Function: "main.poll", File: "/app/p.go", Line: 7, PC: 0x800},
	}
)

var (
	testProc = store.Process{PID: 4242, StartTime: 777, ServiceName: "checkout", Exe: "/usr/bin/checkout", GoVersion: "go1.26.8"}
	t0       = time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	t1       = t0.Add(30 * time.Second)
)

// goroutines makes n goroutines parked on stack.
func goroutines(firstID uint64, n int, reason string, wait float64, labels map[string]string, stack []snapshot.Frame) []snapshot.Goroutine {
	out := make([]snapshot.Goroutine, n)
	for i := range out {
		out[i] = snapshot.Goroutine{ID: firstID + uint64(i), State: snapshot.StateWaiting, WaitReason: reason,
			WaitingSeconds: wait, Labels: labels, Frames: stack}
	}
	return out
}

func makeSnapshot(at time.Time, gs ...[]snapshot.Goroutine) *snapshot.Snapshot {
	s := &snapshot.Snapshot{PID: testProc.PID, Exe: testProc.Exe, GoVersion: testProc.GoVersion, Time: at, Walker: "procmem"}
	for _, g := range gs {
		s.Goroutines = append(s.Goroutines, g...)
	}
	for i := range s.Goroutines {
		s.Counts.Add(s.Goroutines[i].State)
	}
	return s
}

// snapA: 3 chan receive (<1s, handler=api), 2 sync.Mutex.Lock (10s-1m), 1 running.
func snapA() *snapshot.Snapshot {
	return makeSnapshot(t0,
		goroutines(1, 3, "chan receive", 0.5, map[string]string{"handler": "api"}, stackRecv),
		goroutines(10, 2, "sync.Mutex.Lock", 20, nil, stackMutex),
		[]snapshot.Goroutine{{ID: 20, State: snapshot.StateRunning}})
}

// snapB: 5 chan receive (now 1s-10s), the mutex waiters gone, 2 new select, 1 running.
func snapB() *snapshot.Snapshot {
	return makeSnapshot(t1,
		goroutines(1, 5, "chan receive", 1.5, map[string]string{"handler": "api"}, stackRecv),
		goroutines(30, 2, "select", 3, nil, stackSelect),
		[]snapshot.Goroutine{{ID: 20, State: snapshot.StateRunning}})
}

// wallInterval is the snapshot interval the test data's goroutine_wall
// profiles cover.
const wallInterval = 10 * time.Second

// appendSnapshot stores s as the agent does: goroutines and goroutine_wall
// profiles (gzipped pprof) and the gzipped binary snapshot, with summaries.
func appendSnapshot(tb testing.TB, st *store.Store, proc store.Process, s *snapshot.Snapshot) {
	tb.Helper()
	appendSnapshotSummary(tb, st, proc, s, fold.Summary(s))
}

// appendSnapshotSummary is appendSnapshot with the entries' summary sum.
func appendSnapshotSummary(tb testing.TB, st *store.Store, proc store.Process, s *snapshot.Snapshot, sum map[string]float64) {
	tb.Helper()
	var gp, wp bytes.Buffer
	if err := fold.Goroutines(s).Write(&gp); err != nil {
		tb.Fatal(err)
	}
	if err := fold.GoroutineWall(s, wallInterval).Write(&wp); err != nil {
		tb.Fatal(err)
	}
	var js bytes.Buffer
	zw := gzip.NewWriter(&js)
	if _, err := zw.Write(snapshotBinary(s)); err != nil {
		tb.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	for kind, data := range map[string][]byte{store.KindGoroutines: gp.Bytes(), store.KindGoroutineWall: wp.Bytes(), store.KindSnapshot: js.Bytes()} {
		if _, err := st.Append(store.Entry{Process: proc, Kind: kind, Time: s.Time, Summary: sum, Data: data}); err != nil {
			tb.Fatalf("append %s: %v", kind, err)
		}
	}
}

// testSource is the UI's Source over a real store and a fixed live list.
type testSource struct {
	*store.Store
	live []Process
}

func (s testSource) Processes() []Process { return s.live }

// openStore opens a store in a temporary directory. Its clock stands
// just after t1, so that its age retention never drops the test entries,
// dated t0 and t1, however long a test takes to append them.
func openStore(tb testing.TB) *store.Store {
	tb.Helper()
	st, err := store.Open(tb.TempDir(), store.Options{Now: func() time.Time { return t1.Add(time.Minute) }})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := st.Close(); err != nil {
			tb.Errorf("close store: %v", err)
		}
	})
	return st
}

// snapshotBinary is s in the binary form the agent stores.
func snapshotBinary(s *snapshot.Snapshot) []byte { return snapshot.AppendBinary(nil, s) }

// hostileFrame and hostileLabel are a function name and a pprof label
// value a target controls, made to be parsed as HTML if the page ever did;
// the browser test checks they show as text.
const (
	hostileFrame = `main.leak<img src=x onerror="window.__xss=1">`
	hostileLabel = `<b>x</b><img src=x onerror="window.__xss=2">`
)

// appendOtherKinds stores a small pprof profile at at for every profile
// kind appendSnapshot does not write (process_cpu, memory, mutex, block,
// goroutineleak, ...: whatever store.ProfileKinds lists), so a process has
// every kind the UI offers. The goroutineleak profile's leaf is hostileFrame
// and its sample is labelled handler=hostileLabel.
func appendOtherKinds(tb testing.TB, st *store.Store, proc store.Process, at time.Time) {
	tb.Helper()
	for i, kind := range store.ProfileKinds {
		if kind == store.KindGoroutines || kind == store.KindGoroutineWall {
			continue
		}
		leaf := "main." + kind + "Leaf"
		var labels map[string][]string
		if kind == store.KindGoroutineLeak {
			leaf = hostileFrame
			labels = map[string][]string{"handler": {hostileLabel}}
		}
		root := &profile.Function{ID: 1, Name: "main.main", SystemName: "main.main", Filename: "/app/main.go"}
		fn := &profile.Function{ID: 2, Name: leaf, SystemName: leaf, Filename: "/app/" + kind + ".go"}
		locRoot := &profile.Location{ID: 1, Address: 0x1000, Line: []profile.Line{{Function: root, Line: 3}}}
		loc := &profile.Location{ID: 2, Address: 0x2000, Line: []profile.Line{{Function: fn, Line: 9}}}
		p := &profile.Profile{
			SampleType: []*profile.ValueType{{Type: kind, Unit: "count"}},
			Sample:     []*profile.Sample{{Location: []*profile.Location{loc, locRoot}, Value: []int64{int64(i + 1)}, Label: labels}},
			Location:   []*profile.Location{loc, locRoot}, Function: []*profile.Function{fn, root}, TimeNanos: at.UnixNano(),
		}
		var buf bytes.Buffer
		if err := p.Write(&buf); err != nil {
			tb.Fatal(err)
		}
		if _, err := st.Append(store.Entry{Process: proc, Kind: kind, Time: at, Data: buf.Bytes()}); err != nil {
			tb.Fatalf("append %s: %v", kind, err)
		}
	}
}
