//go:build linux

package bpf

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

// keptRecord is a GRecord copied out of the callback.
type keptRecord struct {
	GRecord
	status uint32
	goid   uint64
}

func collect(t testing.TB, w *GoroutineWalker, ti targetInfo, req WalkRequest) ([]keptRecord, WalkStats) {
	t.Helper()
	var recs []keptRecord
	start := time.Now()
	stats, err := w.Walk(context.Background(), req, func(r *GRecord) error {
		k := keptRecord{GRecord: GRecord{
			Index: r.Index, GAddr: r.GAddr, Flags: r.Flags,
			G: slices.Clone(r.G), PCs: slices.Clone(r.PCs),
		}}
		k.status = binary.LittleEndian.Uint32(r.G[req.Off.AtomicStatus:]) &^ 0x1000
		k.goid = binary.LittleEndian.Uint64(r.G[ti.goidOff:])
		recs = append(recs, k)
		return nil
	})
	if err != nil {
		t.Fatalf("Walk: %v (stats %+v)", err, stats)
	}
	t.Logf("walk of %d goroutines: %v, stats %+v", len(recs), time.Since(start), stats)
	return recs, stats
}

// funcs returns the function names of pcs (return addresses are looked up at pc-1).
func funcs(ti targetInfo, pcs []uint64) []string {
	var names []string
	for i, pc := range pcs {
		if i > 0 {
			pc-- // a return address; its call is the instruction before
		}
		if fn := ti.table.PCToFunc(pc); fn != nil {
			names = append(names, fn.Name)
		} else {
			names = append(names, "?")
		}
	}
	return names
}

func checkRecords(t *testing.T, ti targetInfo, req WalkRequest, recs []keptRecord, stats WalkStats, parked int) {
	t.Helper()
	if stats.Emitted != uint32(len(recs)) {
		t.Errorf("stats.Emitted = %d, callback saw %d records", stats.Emitted, len(recs))
	}
	if stats.Visited < stats.Emitted+stats.Dead {
		t.Errorf("stats.Visited = %d < Emitted %d + Dead %d", stats.Visited, stats.Emitted, stats.Dead)
	}
	if len(recs) < parked {
		t.Fatalf("got %d records, want at least %d", len(recs), parked)
	}
	goids := make(map[uint64]bool)
	var nParked int
	for i, r := range recs {
		if i > 0 && r.Index <= recs[i-1].Index {
			t.Fatalf("record %d has allgs index %d after %d: not in allgs order", i, r.Index, recs[i-1].Index)
		}
		if r.goid == 0 || r.goid > 1<<40 || goids[r.goid] {
			t.Fatalf("record %d (g %#x): implausible or duplicate goid %d", r.Index, r.GAddr, r.goid)
		}
		goids[r.goid] = true
		if r.status == 0 || r.status == 6 || r.status > 9 {
			t.Fatalf("record %d (goid %d): status %d should not be emitted", r.Index, r.goid, r.status)
		}
		names := funcs(ti, r.PCs)
		if !slices.Contains(names, "main.parkedWorker") {
			continue
		}
		nParked++
		if r.status != 4 {
			t.Errorf("goroutine %d in main.parkedWorker has status %d, want 4 (waiting)", r.goid, r.status)
		}
		if len(r.PCs) < 3 {
			t.Errorf("parked goroutine %d has %d PCs (%v), want >= 3", r.goid, len(r.PCs), names)
		}
		if r.Flags != 0 {
			t.Errorf("parked goroutine %d has flags %#x, want 0", r.goid, r.Flags)
		}
		if names[len(names)-1] != "runtime.goexit" {
			t.Errorf("parked goroutine %d stack %v does not end in runtime.goexit", r.goid, names)
		}
	}
	if nParked < parked {
		t.Errorf("%d goroutines show main.parkedWorker, want %d", nParked, parked)
	}
}

// compareWithUserspace re-walks parked goroutines with process_vm_readv.
func compareWithUserspace(t *testing.T, pid uint32, ti targetInfo, req WalkRequest, recs []keptRecord, limit int) {
	t.Helper()
	compared := 0
	for _, r := range recs {
		if r.status != 4 || compared >= limit {
			continue
		}
		pcs, flags, ok, err := userWalk(pid, req, r.GAddr)
		if err != nil {
			t.Fatalf("userspace walk of g %#x: %v", r.GAddr, err)
		}
		if !ok || flags != r.Flags || !slices.Equal(pcs, r.PCs) {
			t.Errorf("goroutine %d: BPF PCs %x flags %#x, userspace PCs %x flags %#x (ok %v)", r.goid, r.PCs, r.Flags, pcs, flags, ok)
		}
		compared++
	}
	if compared == 0 {
		t.Error("no parked goroutine to compare")
	}
}

func TestWalk(t *testing.T) {
	w := loadWalker(t)
	for _, toolchain := range []string{"local", "go1.21.13", "go1.23.12"} {
		t.Run(toolchain, func(t *testing.T) {
			const n = 300
			bin := targetBinary(t, toolchain)
			ti := inspectTarget(t, bin)
			pid := startTarget(t, bin, n)
			req := ti.req
			req.PID = pid
			recs, stats := collect(t, w, ti, req)
			checkRecords(t, ti, req, recs, stats, n)
			compareWithUserspace(t, pid, ti, req, recs, len(recs))

			// The main goroutine blocks in a read(2) of stdin: status syscall.
			var main *keptRecord
			for i := range recs {
				if recs[i].goid == 1 {
					main = &recs[i]
				}
			}
			if main == nil {
				t.Fatal("no record for goroutine 1")
			}
			names := funcs(ti, main.PCs)
			t.Logf("goroutine 1: status %d flags %#x stack %v", main.status, main.Flags, names)
			if main.status == 3 {
				if req.Off.SyscallBP == -1 {
					if main.Flags&FlagNeedsFP == 0 || len(main.PCs) != 1 {
						t.Errorf("syscall goroutine without syscallbp: flags %#x PCs %d, want FlagNeedsFP and 1 PC", main.Flags, len(main.PCs))
					}
				} else if !slices.Contains(names, "main.main") {
					t.Errorf("syscall goroutine 1 stack %v lacks main.main", names)
				}
			}

			// A short MaxFrames truncates.
			req.MaxFrames = 2
			recs, _ = collect(t, w, ti, req)
			truncated := 0
			for _, r := range recs {
				if len(r.PCs) > 2 {
					t.Fatalf("goroutine %d has %d PCs with MaxFrames 2", r.goid, len(r.PCs))
				}
				if r.status == 4 && r.Flags&FlagTruncated != 0 {
					truncated++
				}
			}
			if truncated < n {
				t.Errorf("%d parked goroutines truncated with MaxFrames 2, want >= %d", truncated, n)
			}
			compareWithUserspace(t, pid, ti, req, recs, 50)
		})
	}
}

func TestWalk100k(t *testing.T) {
	w := loadWalker(t)
	const n = 100000
	bin := targetBinary(t, "local")
	ti := inspectTarget(t, bin)
	req := ti.req
	req.PID = startTarget(t, bin, n)
	recs, stats := collect(t, w, ti, req)
	checkRecords(t, ti, req, recs, stats, n)
	compareWithUserspace(t, req.PID, ti, req, recs, 1000)
	if stats.AllgLen < n {
		t.Errorf("AllgLen %d < %d", stats.AllgLen, n)
	}
}

// TestWalkResumes stalls the consumer so the ring fills (or the pass budget
// runs out) and checks the resumed passes lose and repeat nothing.
func TestWalkResumes(t *testing.T) {
	w := loadWalker(t)
	const n = 100000
	bin := targetBinary(t, "local")
	ti := inspectTarget(t, bin)
	req := ti.req
	req.PID = startTarget(t, bin, n)
	var idx []uint32
	stats, err := w.Walk(context.Background(), req, func(r *GRecord) error {
		if len(idx) == 0 {
			time.Sleep(time.Second) // the stall under test: the ring fills meanwhile
		}
		idx = append(idx, r.Index)
		return nil
	})
	if err != nil {
		t.Fatalf("Walk: %v", err)
	}
	t.Logf("stats %+v", stats)
	if stats.Passes < 2 {
		t.Errorf("Passes = %d; a stalled consumer should force a resumed pass", stats.Passes)
	}
	if len(idx) < n || uint32(len(idx)) != stats.Emitted {
		t.Errorf("got %d records, stats.Emitted %d, want >= %d", len(idx), stats.Emitted, n)
	}
	for i := 1; i < len(idx); i++ {
		if idx[i] <= idx[i-1] {
			t.Fatalf("index %d after %d: repeated or out of order", idx[i], idx[i-1])
		}
	}
}

func TestWalkErrors(t *testing.T) {
	w := loadWalker(t)
	bin := targetBinary(t, "local")
	ti := inspectTarget(t, bin)

	// A pid that existed and is gone.
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	gone := ti.req
	gone.PID = uint32(cmd.Process.Pid)

	live := ti.req
	live.PID = startTarget(t, bin, 10)
	badAddr := live
	badAddr.Allgs, badAddr.Allglen = 0x10, 0x18
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	stopErr := errors.New("stop")
	noGoid := live
	noGoid.SkipUnchanged = true
	noGoid.Off.Goid = -1
	badSeq := live
	badSeq.SkipUnchanged = true
	badSeq.Off.TrackingSeq = int32(live.GSize)

	tests := []struct {
		name    string
		ctx     context.Context
		req     WalkRequest
		fn      func(*GRecord) error
		wantIs  error
		wantSub string
	}{
		{"gone", context.Background(), gone, nil, os.ErrNotExist, "no such process"},
		{"bad address", context.Background(), badAddr, nil, nil, "read runtime.allgs"},
		{"cancelled", cancelled, live, nil, context.Canceled, ""},
		{"callback error", context.Background(), live, func(*GRecord) error { return stopErr }, stopErr, ""},
		{"bad request", context.Background(), WalkRequest{PID: 1}, nil, nil, "invalid request"},
		{"skip without goid", context.Background(), noGoid, nil, nil, "offset Goid=-1"},
		{"skip with trackingSeq outside g", context.Background(), badSeq, nil, nil, "offset TrackingSeq"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fn := tt.fn
			if fn == nil {
				fn = func(*GRecord) error { return nil }
			}
			_, err := w.Walk(tt.ctx, tt.req, fn)
			if err == nil {
				t.Fatal("Walk succeeded, want an error")
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("error %v does not wrap %v", err, tt.wantIs)
			}
			if !strings.Contains(err.Error(), tt.wantSub) {
				t.Errorf("error %q does not mention %q", err, tt.wantSub)
			}
		})
	}
	// The walker still works after all that.
	recs, stats := collect(t, w, ti, live)
	checkRecords(t, ti, live, recs, stats, 10)
}

// TestWalkSkipUnchanged walks a target again and again with SkipUnchanged:
// goroutines parked as the previous walk saw them come back FlagUnchanged
// without PCs; goroutines woken and parked again at the same place, and
// new ones, are walked in full.
func TestWalkSkipUnchanged(t *testing.T) {
	w := loadWalker(t)
	const parked, poked, spawned = 300, 50, 40
	bin := targetBinary(t, "local")
	ti := inspectTarget(t, bin)
	rt := runTarget(t, bin, "-n", fmt.Sprint(parked), "-poke", fmt.Sprint(poked))
	req := ti.req
	req.PID = rt.pid
	req.SkipUnchanged = true

	// The first walk has nothing to skip: full records, as without SkipUnchanged.
	first, stats := collect(t, w, ti, req)
	checkRecords(t, ti, req, first, stats, parked)
	compareWithUserspace(t, rt.pid, ti, req, first, len(first))
	role := make(map[uint64]string) // goid -> its worker function, or "other"
	before := make(map[uint64]keptRecord)
	for _, r := range first {
		if r.Flags&FlagUnchanged != 0 {
			t.Errorf("first walk: goroutine %d is FlagUnchanged", r.goid)
		}
		before[r.goid] = r
		role[r.goid] = "other"
		for _, fn := range funcs(ti, r.PCs) {
			if fn == "main.parkedWorker" || fn == "main.pokedWorker" {
				role[r.goid] = fn
			}
		}
	}

	// check walks again and counts, per role, the records flagged unchanged.
	// Unchanged records have no PCs; the others are compared with a
	// userspace walk of the same rules.
	check := func(step string, wantUnchanged map[string]bool) (recs []keptRecord, unchanged, walked map[string]int) {
		t.Helper()
		recs, _ = collect(t, w, ti, req)
		unchanged, walked = make(map[string]int), make(map[string]int)
		for _, r := range recs {
			fn, ok := role[r.goid]
			if !ok {
				fn = "new"
				if slices.Contains(funcs(ti, r.PCs), "main.parkedWorker") {
					fn = "new main.parkedWorker"
				}
			}
			if r.Flags&FlagUnchanged == 0 {
				walked[fn]++
				continue
			}
			unchanged[fn]++
			if r.Flags != FlagUnchanged || len(r.PCs) != 0 {
				t.Errorf("%s: unchanged goroutine %d has flags %#x and %d PCs, want only FlagUnchanged and none", step, r.goid, r.Flags, len(r.PCs))
			}
			if r.status == 2 || r.status == 8 {
				t.Errorf("%s: goroutine %d in status %d is FlagUnchanged", step, r.goid, r.status)
			}
		}
		for fn, want := range wantUnchanged {
			if want && walked[fn] != 0 {
				t.Errorf("%s: %d goroutines in %s walked again, want all %d unchanged", step, walked[fn], fn, unchanged[fn]+walked[fn])
			}
			if !want && unchanged[fn] != 0 {
				t.Errorf("%s: %d goroutines in %s flagged unchanged, want all %d walked", step, unchanged[fn], fn, unchanged[fn]+walked[fn])
			}
		}
		var changed []keptRecord
		for _, r := range recs {
			if r.Flags&FlagUnchanged == 0 {
				changed = append(changed, r)
			}
		}
		if len(changed) > 0 {
			compareWithUserspace(t, rt.pid, ti, req, changed, len(changed))
		}
		t.Logf("%s: unchanged %v, walked %v", step, unchanged, walked)
		return recs, unchanged, walked
	}

	_, unchanged, _ := check("second walk", map[string]bool{"main.parkedWorker": true, "main.pokedWorker": true})
	if unchanged["main.parkedWorker"] != parked || unchanged["main.pokedWorker"] != poked {
		t.Errorf("second walk: unchanged %v, want %d main.parkedWorker and %d main.pokedWorker", unchanged, parked, poked)
	}

	// A walk without SkipUnchanged neither consults nor disturbs the map.
	plain := req
	plain.SkipUnchanged = false
	recs, stats := collect(t, w, ti, plain)
	checkRecords(t, ti, plain, recs, stats, parked)

	// Poked goroutines left their park and came back to the same place
	// (same sp and pc): only trackingSeq tells them apart.
	rt.command(t, "poke")
	third, _, walked := check("after poke", map[string]bool{"main.parkedWorker": true, "main.pokedWorker": false})
	if walked["main.pokedWorker"] != poked {
		t.Errorf("after poke: %d main.pokedWorker goroutines walked, want %d", walked["main.pokedWorker"], poked)
	}
	samePlace := 0
	for _, r := range third {
		if role[r.goid] == "main.pokedWorker" && slices.Equal(r.PCs, before[r.goid].PCs) {
			samePlace++
		}
	}
	t.Logf("after poke: %d of %d poked goroutines parked again with the stack of the first walk", samePlace, poked)

	// New goroutines are walked; the poked ones are unchanged again.
	rt.command(t, fmt.Sprintf("spawn %d", spawned))
	_, unchanged, walked = check("after spawn", map[string]bool{
		"main.parkedWorker": true, "main.pokedWorker": true, "new main.parkedWorker": false,
	})
	if walked["new main.parkedWorker"] != spawned {
		t.Errorf("after spawn: %d new main.parkedWorker goroutines walked, want %d", walked["new main.parkedWorker"], spawned)
	}
	if unchanged["main.pokedWorker"] != poked {
		t.Errorf("after spawn: %d main.pokedWorker goroutines unchanged, want %d", unchanged["main.pokedWorker"], poked)
	}
}

// BenchmarkWalk100k walks 100k parked goroutines, in full and, after a
// first walk, with SkipUnchanged (all of them unchanged).
func BenchmarkWalk100k(b *testing.B) {
	w := loadWalker(b)
	const n = 100000
	bin := targetBinary(b, "local")
	ti := inspectTarget(b, bin)
	req := ti.req
	req.PID = startTarget(b, bin, n)
	for _, skip := range []bool{false, true} {
		b.Run(fmt.Sprintf("skip=%v", skip), func(b *testing.B) {
			req := req
			req.SkipUnchanged = skip
			walk := func() (got, unchanged int, stats WalkStats) {
				stats, err := w.Walk(context.Background(), req, func(r *GRecord) error {
					got++
					if r.Flags&FlagUnchanged != 0 {
						unchanged++
					}
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
				if got < n {
					b.Fatalf("walk saw %d goroutines, want >= %d", got, n)
				}
				return got, unchanged, stats
			}
			walk() // fills the seen map
			var passes int
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				_, unchanged, stats := walk()
				if skip && unchanged < n || !skip && unchanged != 0 {
					b.Fatalf("%d goroutines unchanged with SkipUnchanged %v", unchanged, skip)
				}
				passes += stats.Passes
			}
			b.ReportMetric(float64(passes)/float64(b.N), "passes/op")
		})
	}
}
