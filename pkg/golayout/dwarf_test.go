package golayout

import (
	"debug/dwarf"
	"strings"
	"testing"
)

func TestFromDWARFNil(t *testing.T) {
	if _, err := FromDWARF(nil, "go1.22.1"); err == nil || !strings.Contains(err.Error(), "ForVersion") {
		t.Errorf("FromDWARF(nil) error = %v", err)
	}
}

func TestLayoutFromTypesMissing(t *testing.T) {
	u64 := &dwarf.UintType{BasicType: dwarf.BasicType{CommonType: dwarf.CommonType{ByteSize: 8, Name: "uint64"}}}
	field := func(name string, off int64) *dwarf.StructField {
		return &dwarf.StructField{Name: name, Type: u64, ByteOffset: off}
	}
	strct := func(name string, fields ...*dwarf.StructField) *dwarf.StructType {
		return &dwarf.StructType{CommonType: dwarf.CommonType{ByteSize: 64, Name: name}, StructName: name, Kind: "struct", Field: fields}
	}
	// atomic is a field of one of the runtime's atomic types: a struct holding its value.
	atomic := func(name string, off int64) *dwarf.StructField {
		return &dwarf.StructField{Name: name, ByteOffset: off, Type: strct("atomic.Int64", field("value", 0))}
	}
	full := func() map[string]dwarf.Type {
		stack := strct("runtime.stack", field("lo", 0), field("hi", 8))
		gobuf := strct("runtime.gobuf", field("sp", 0), field("pc", 8), field("bp", 48))
		g := strct(dwG, &dwarf.StructField{Name: "stack", Type: stack}, field("m", 48),
			&dwarf.StructField{Name: "sched", Type: gobuf, ByteOffset: 56})
		for i, n := range []string{"syscallsp", "syscallpc", "atomicstatus", "goid", "waitsince", "waitreason",
			"trackingSeq", "lockedm", "parentGoid", "gopc", "startpc", "waiting", "labels"} {
			g.Field = append(g.Field, field(n, int64(120+8*i)))
		}
		return map[string]dwarf.Type{
			dwG:     g,
			dwSudog: strct(dwSudog, field("g", 0), field("next", 8), field("prev", 16), field("elem", 24), field("c", 80), field("waitlink", 64), field("isSelect", 52)),
			dwHchan: strct(dwHchan, field("qcount", 0), field("dataqsiz", 8), field("buf", 16), field("elemsize", 24), field("closed", 28), field("sendx", 40), field("recvx", 48), field("recvq", 56), field("sendq", 72)),
			dwWaitq: strct(dwWaitq, field("first", 0), field("last", 8)),
			dwM:     strct(dwM, field("procid", 72), field("curg", 192), field("id", 232)),
			dwSched: strct(dwSched, field("nmidle", 40), field("mnext", 48), field("maxmcount", 56), field("nmfreed", 64),
				atomic("npidle", 88), atomic("nmspinning", 92), field("runqsize", 120)),
			dwP: strct(dwP, field("id", 0), field("status", 4), field("runqhead", 400), field("runqtail", 404),
				&dwarf.StructField{Name: "runq", ByteOffset: 408, Type: &dwarf.ArrayType{Type: u64, Count: 256}}, field("runnext", 2456)),
			dwGCCtl: strct(dwGCCtl, atomic("gcPercent", 0), atomic("memoryLimit", 8), atomic("gcPercentHeapGoal", 72),
				atomic("sweepDistMinTrigger", 80), field("triggered", 88), atomic("heapLive", 104), field("heapMarked", 152),
				field("heapInUse", 272), field("heapFree", 288), atomic("totalAlloc", 296), atomic("totalFree", 304), atomic("mappedReady", 312)),
			dwMstats: strct(dwMstats, field("numgc", 7704), field("numforcedgc", 7708)),
		}
	}
	l, err := layoutFromTypes(full(), "go1.26.1")
	if err != nil {
		t.Fatalf("synthetic full layout: %v", err)
	}
	if l.G.SchedBP != 104 || l.G.SyscallBP != Absent || l.Labels.Kind != SliceLabels {
		t.Errorf("synthetic layout: sched.bp %d syscallbp %d labels %v", l.G.SchedBP, l.G.SyscallBP, l.Labels.Kind)
	}
	if l.Sched.Npidle != 88 || l.Sched.RunqSize != 120 || l.P.RunqCap != 256 || l.GCController.MemoryLimit != 8 || l.Mstats.Numforcedgc != 7708 {
		t.Errorf("synthetic layout: sched %+v, p %+v, gcController %+v, mstats %+v", l.Sched, l.P, l.GCController, l.Mstats)
	}
	// Go 1.25+: the global run queue's length is sched.runq.size.
	types := full()
	sched := types[dwSched].(*dwarf.StructType)
	sched.Field[len(sched.Field)-1] = &dwarf.StructField{Name: "runq", ByteOffset: 112,
		Type: strct("runtime.gQueue", field("head", 0), field("tail", 8), field("size", 16))}
	if l, err := layoutFromTypes(types, "go1.26.1"); err != nil || l.Sched.RunqSize != 128 {
		t.Errorf("runq.size: offset %d, %v; want 128", l.Sched.RunqSize, err)
	}

	tests := []struct {
		name    string
		mutate  func(map[string]dwarf.Type)
		version string
		want    string
	}{
		{"no g", func(m map[string]dwarf.Type) { delete(m, dwG) }, "go1.26.1", "struct runtime.g not found"},
		{"no hchan", func(m map[string]dwarf.Type) { delete(m, dwHchan) }, "go1.26.1", "struct runtime.hchan not found"},
		{"no goid", func(m map[string]dwarf.Type) {
			g := m[dwG].(*dwarf.StructType)
			for i, f := range g.Field {
				if f.Name == "goid" {
					g.Field = append(g.Field[:i:i], g.Field[i+1:]...)
					break
				}
			}
		}, "go1.26.1", "runtime.g: field goid not found"},
		{"no sched.bp", func(m map[string]dwarf.Type) {
			g := m[dwG].(*dwarf.StructType)
			g.Field[2].Type.(*dwarf.StructType).Field = g.Field[2].Type.(*dwarf.StructType).Field[:2]
		}, "go1.26.1", "runtime.g: field sched.bp not found"},
		{"no schedt", func(m map[string]dwarf.Type) { delete(m, dwSched) }, "go1.26.1", "struct runtime.schedt not found"},
		{"no runq length", func(m map[string]dwarf.Type) {
			s := m[dwSched].(*dwarf.StructType)
			s.Field = s.Field[:len(s.Field)-1]
		}, "go1.26.1", "runtime.schedt: field runq not found"},
		{"no gcPercent value", func(m map[string]dwarf.Type) {
			c := m[dwGCCtl].(*dwarf.StructType)
			c.Field[0] = field("gcPercent", 0)
		}, "go1.26.1", "runtime.gcControllerState: field gcPercent is not a struct"},
		{"p.runq not an array", func(m map[string]dwarf.Type) {
			p := m[dwP].(*dwarf.StructType)
			p.Field[4] = field("runq", 408)
		}, "go1.26.1", "runtime.p: field runq is not an array"},
		{"no hmap for old map labels", func(m map[string]dwarf.Type) {}, "go1.22.3", "struct runtime.hmap not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			types := full()
			tt.mutate(types)
			_, err := layoutFromTypes(types, tt.version)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestPtrOffMaybeTraceable(t *testing.T) {
	u64 := &dwarf.UintType{BasicType: dwarf.BasicType{CommonType: dwarf.CommonType{ByteSize: 8, Name: "uintptr"}}}
	mtp := &dwarf.StructType{StructName: "runtime.maybeTraceablePtr", Field: []*dwarf.StructField{
		{Name: "vp", Type: u64, ByteOffset: 0}, {Name: "vu", Type: u64, ByteOffset: 8}}}
	mtc := &dwarf.StructType{StructName: "runtime.maybeTraceableChan", Field: []*dwarf.StructField{
		{Name: "maybeTraceablePtr", Type: mtp, ByteOffset: 0}}}
	odd := &dwarf.StructType{StructName: "runtime.odd", Field: []*dwarf.StructField{{Name: "x", Type: u64}}}
	s := &dwarf.StructType{StructName: dwSudog, Field: []*dwarf.StructField{
		{Name: "elem", Type: mtp, ByteOffset: 24}, {Name: "c", Type: mtc, ByteOffset: 88},
		{Name: "p", Type: u64, ByteOffset: 8}, {Name: "bad", Type: odd, ByteOffset: 40}}}
	r := &resolver{}
	for _, tt := range []struct {
		field string
		want  int64
	}{{"elem", 32}, {"c", 96}, {"p", 8}} {
		if got := r.ptrOff(s, dwSudog, tt.field); got != tt.want || r.err != nil {
			t.Errorf("ptrOff(%s) = %d, %v; want %d", tt.field, got, r.err, tt.want)
		}
	}
	if got := r.ptrOff(s, dwSudog, "bad"); got != Absent || r.err == nil || !strings.Contains(r.err.Error(), "field bad") {
		t.Errorf("ptrOff(bad) = %d, %v; want an error naming the field", got, r.err)
	}
}
