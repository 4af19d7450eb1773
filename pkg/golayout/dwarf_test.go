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
		}
	}
	l, err := layoutFromTypes(full(), "go1.26.1")
	if err != nil {
		t.Fatalf("synthetic full layout: %v", err)
	}
	if l.G.SchedBP != 104 || l.G.SyscallBP != Absent || l.Labels.Kind != SliceLabels {
		t.Errorf("synthetic layout: sched.bp %d syscallbp %d labels %v", l.G.SchedBP, l.G.SyscallBP, l.Labels.Kind)
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
