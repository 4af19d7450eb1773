package golayout

import (
	"debug/dwarf"
	"errors"
	"fmt"
	"strings"
)

// DWARF type names FromDWARF looks up.
const (
	dwG        = "runtime.g"
	dwSudog    = "runtime.sudog"
	dwHchan    = "runtime.hchan"
	dwWaitq    = "runtime.waitq"
	dwM        = "runtime.m"
	dwHmap     = "runtime.hmap"
	dwLabelMap = "runtime/pprof.labelMap"
	dwHashSS   = "hash<string,string>"   // linker-synthesized hmap of map[string]string (≤1.23)
	dwBucketSS = "bucket<string,string>" // linker-synthesized bucket of map[string]string (≤1.23)
	dwSched    = "runtime.schedt"
	dwP        = "runtime.p"
	dwGCCtl    = "runtime.gcControllerState"
	dwMstats   = "runtime.mstats"
)

// maxDWARFEntries bounds the walk over a binary's DWARF entries.
const maxDWARFEntries = 50_000_000

// FromDWARF derives the layout from a binary's DWARF: runtime.g (with its
// stack and gobuf), runtime.sudog, runtime.hchan, runtime.waitq, runtime.m,
// runtime.schedt, runtime.p, runtime.gcControllerState, runtime.mstats,
// and for the label representation runtime/pprof.labelMap and the
// map[string]string hmap/bucket types when present. goVersion (the binary's
// build-info version) is recorded and used to choose the label form when
// runtime/pprof is not linked in. A missing struct or field is an error naming it.
func FromDWARF(d *dwarf.Data, goVersion string) (*Layout, error) {
	if d == nil {
		return nil, errors.New("layout from DWARF: no DWARF data (binary stripped?): use ForVersion tables instead")
	}
	types, err := findTypes(d, dwG, dwSudog, dwHchan, dwWaitq, dwM, dwHmap, dwLabelMap, dwHashSS, dwBucketSS,
		dwSched, dwP, dwGCCtl, dwMstats)
	if err != nil {
		return nil, fmt.Errorf("layout from DWARF: %w", err)
	}
	return layoutFromTypes(types, goVersion)
}

// layoutFromTypes builds the layout from the named DWARF types.
func layoutFromTypes(types map[string]dwarf.Type, goVersion string) (*Layout, error) {
	r := &resolver{types: types}
	l := &Layout{GoVersion: goVersion, Source: SourceDWARF}

	g := r.strct(dwG)
	l.G = GLayout{
		Size:         r.size(dwG),
		StackLo:      r.off(g, dwG, "stack", "lo"),
		StackHi:      r.off(g, dwG, "stack", "hi"),
		M:            r.off(g, dwG, "m"),
		SchedSP:      r.off(g, dwG, "sched", "sp"),
		SchedPC:      r.off(g, dwG, "sched", "pc"),
		SchedBP:      r.off(g, dwG, "sched", "bp"),
		SyscallSP:    r.off(g, dwG, "syscallsp"),
		SyscallPC:    r.off(g, dwG, "syscallpc"),
		SyscallBP:    r.optOff(g, "syscallbp"), // Go 1.23+
		AtomicStatus: r.off(g, dwG, "atomicstatus"),
		Goid:         r.off(g, dwG, "goid"),
		WaitSince:    r.off(g, dwG, "waitsince"),
		WaitReason:   r.off(g, dwG, "waitreason"),
		TrackingSeq:  r.off(g, dwG, "trackingSeq"),
		LockedM:      r.off(g, dwG, "lockedm"),
		ParentGoid:   r.off(g, dwG, "parentGoid"),
		Gopc:         r.off(g, dwG, "gopc"),
		Startpc:      r.off(g, dwG, "startpc"),
		Waiting:      r.off(g, dwG, "waiting"),
		Labels:       r.off(g, dwG, "labels"),
	}
	s := r.strct(dwSudog)
	l.Sudog = SudogLayout{
		Size:     r.size(dwSudog),
		G:        r.off(s, dwSudog, "g"),
		Next:     r.off(s, dwSudog, "next"),
		Prev:     r.off(s, dwSudog, "prev"),
		Elem:     r.ptrOff(s, dwSudog, "elem"),
		C:        r.ptrOff(s, dwSudog, "c"),
		WaitLink: r.off(s, dwSudog, "waitlink"),
		IsSelect: r.off(s, dwSudog, "isSelect"),
	}
	c := r.strct(dwHchan)
	l.Hchan = HchanLayout{
		Size:     r.size(dwHchan),
		Qcount:   r.off(c, dwHchan, "qcount"),
		Dataqsiz: r.off(c, dwHchan, "dataqsiz"),
		Closed:   r.off(c, dwHchan, "closed"),
		Recvq:    r.off(c, dwHchan, "recvq"),
		Sendq:    r.off(c, dwHchan, "sendq"),
		Buf:      r.off(c, dwHchan, "buf"),
		Elemsize: r.off(c, dwHchan, "elemsize"),
		Sendx:    r.off(c, dwHchan, "sendx"),
		Recvx:    r.off(c, dwHchan, "recvx"),
	}
	w := r.strct(dwWaitq)
	l.Waitq = WaitqLayout{First: r.off(w, dwWaitq, "first"), Last: r.off(w, dwWaitq, "last")}
	m := r.strct(dwM)
	l.M = MLayout{ID: r.off(m, dwM, "id"), Curg: r.off(m, dwM, "curg"), Procid: r.off(m, dwM, "procid")}
	l.Labels = r.labels(goVersion)
	r.runtimeState(l)
	if r.err != nil {
		return nil, fmt.Errorf("layout from DWARF (go version %q): %w", goVersion, r.err)
	}
	return l, nil
}

// findTypes returns the named top-level struct types (resolving typedefs).
func findTypes(d *dwarf.Data, names ...string) (map[string]dwarf.Type, error) {
	want := make(map[string]bool, len(names))
	for _, n := range names {
		want[n] = true
	}
	offs := make(map[string]dwarf.Offset, len(names))
	rd := d.Reader()
	for i := 0; i < maxDWARFEntries; i++ {
		e, err := rd.Next()
		if err != nil {
			return nil, fmt.Errorf("read DWARF entries: %w", err)
		}
		if e == nil {
			break
		}
		if e.Tag == dwarf.TagCompileUnit {
			continue // descend into the unit's children
		}
		if e.Tag == dwarf.TagStructType || e.Tag == dwarf.TagTypedef {
			if n, _ := e.Val(dwarf.AttrName).(string); want[n] {
				if _, seen := offs[n]; !seen || e.Tag == dwarf.TagStructType {
					offs[n] = e.Offset
				}
			}
		}
		if e.Children {
			rd.SkipChildren()
		}
	}
	out := make(map[string]dwarf.Type, len(offs))
	for n, off := range offs {
		t, err := d.Type(off)
		if err != nil {
			return nil, fmt.Errorf("read DWARF type %s: %w", n, err)
		}
		out[n] = t
	}
	return out, nil
}

// resolver looks up struct fields, remembering the first error so the
// layout can be filled in one pass.
type resolver struct {
	types map[string]dwarf.Type
	err   error
}

func (r *resolver) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

// strct returns the named struct type, or nil (recording an error).
func (r *resolver) strct(name string) *dwarf.StructType {
	t, ok := r.types[name]
	if !ok {
		r.fail(fmt.Errorf("struct %s not found in DWARF", name))
		return nil
	}
	st, ok := underlying(t).(*dwarf.StructType)
	if !ok {
		r.fail(fmt.Errorf("DWARF type %s is %T, not a struct", name, underlying(t)))
		return nil
	}
	return st
}

func (r *resolver) size(name string) int64 {
	t, ok := r.types[name]
	if !ok {
		return Absent // strct already reported it
	}
	return t.Size()
}

// off returns the offset of the (possibly nested) field path in st, or
// Absent recording an error that names owner and the path.
func (r *resolver) off(st *dwarf.StructType, owner string, path ...string) int64 {
	if st == nil {
		return Absent
	}
	o, err := fieldOffset(st, path...)
	if err != nil {
		r.fail(fmt.Errorf("%s: %w", owner, err))
		return Absent
	}
	return o
}

// ptrOff is off for a pointer-valued field that newer runtimes wrap in a
// struct: Go 1.26's maybeTraceablePtr{vp, vu} (and maybeTraceableChan, which
// embeds it) keep the address in vu, the source of truth (vp may be nil while
// the GC hides the pointer), so the offset of vu is returned.
func (r *resolver) ptrOff(st *dwarf.StructType, owner, name string) int64 {
	o := r.off(st, owner, name)
	if o == Absent {
		return Absent
	}
	cur, _ := underlying(findField(st, name).Type).(*dwarf.StructType)
	if cur == nil {
		return o // a plain pointer
	}
	for depth := 0; depth < 4; depth++ {
		if vu := findField(cur, "vu"); vu != nil {
			return o + vu.ByteOffset
		}
		if len(cur.Field) == 0 {
			break
		}
		next, _ := underlying(cur.Field[0].Type).(*dwarf.StructType)
		if next == nil {
			break
		}
		o += cur.Field[0].ByteOffset // descend into an embedded wrapper
		cur = next
	}
	r.fail(fmt.Errorf("%s: field %s is a struct %s without a vu address word", owner, name, cur.StructName))
	return Absent
}

// optOff is off for fields that only some versions have.
func (r *resolver) optOff(st *dwarf.StructType, path ...string) int64 {
	if st == nil {
		return Absent
	}
	o, err := fieldOffset(st, path...)
	if err != nil {
		return Absent
	}
	return o
}

// fieldOffset sums the byte offsets along a field path, e.g. "sched", "sp".
func fieldOffset(st *dwarf.StructType, path ...string) (int64, error) {
	var total int64
	cur := st
	for i, name := range path {
		if cur == nil {
			return Absent, fmt.Errorf("field %s is not a struct", strings.Join(path[:i], "."))
		}
		f := findField(cur, name)
		if f == nil {
			return Absent, fmt.Errorf("field %s not found in DWARF", strings.Join(path[:i+1], "."))
		}
		total += f.ByteOffset
		cur, _ = underlying(f.Type).(*dwarf.StructType)
	}
	return total, nil
}

func findField(st *dwarf.StructType, name string) *dwarf.StructField {
	for _, f := range st.Field {
		if f.Name == name {
			return f
		}
	}
	return nil
}

// underlying strips typedefs (bounded: typedef chains are short).
func underlying(t dwarf.Type) dwarf.Type {
	for i := 0; i < 16; i++ {
		td, ok := t.(*dwarf.TypedefType)
		if !ok {
			return t
		}
		t = td.Type
	}
	return t
}

// labels works out the representation of g.labels.
func (r *resolver) labels(goVersion string) LabelsLayout {
	if t, ok := r.types[dwLabelMap]; ok {
		switch u := underlying(t).(type) {
		case *dwarf.PtrType: // labelMap map[string]string: the map word points at hash<string,string>
			if st, ok := underlying(u.Type).(*dwarf.StructType); ok {
				return r.mapLabels(st, dwLabelMap+" hmap")
			}
		case *dwarf.StructType: // labelMap struct{ LabelSet{ list []label } }
			return r.sliceLabels(u)
		}
		r.fail(fmt.Errorf("%s has unexpected DWARF type %s", dwLabelMap, t))
		return LabelsLayout{Kind: UnknownLabels}
	}
	// runtime/pprof is not linked in: decide by version.
	if v, err := ParseVersion(goVersion); err == nil && v.Major == 1 && v.Minor <= 23 {
		if _, ok := r.types[dwHashSS]; ok {
			return r.mapLabels(r.strct(dwHashSS), dwHashSS)
		}
		return r.mapLabels(r.strct(dwHmap), dwHmap)
	}
	return sliceLabels()
}

// mapLabels fills the map form from an hmap struct; the bucket comes from
// the hmap's buckets pointer type, the synthesized bucket<string,string>, or
// the fixed classic layout when the binary has no map[string]string.
func (r *resolver) mapLabels(h *dwarf.StructType, owner string) LabelsLayout {
	a := Absent
	l := LabelsLayout{Kind: MapLabels, ListOffset: a, LabelSize: a, LabelKey: a, LabelValue: a}
	if h == nil {
		return l
	}
	l.Hmap = HmapLayout{
		Size:       h.ByteSize,
		Count:      r.off(h, owner, "count"),
		Flags:      r.off(h, owner, "flags"),
		B:          r.off(h, owner, "B"),
		Buckets:    r.off(h, owner, "buckets"),
		Oldbuckets: r.off(h, owner, "oldbuckets"),
		Nevacuate:  r.off(h, owner, "nevacuate"),
	}
	var b *dwarf.StructType
	if f := findField(h, "buckets"); f != nil {
		if p, ok := underlying(f.Type).(*dwarf.PtrType); ok {
			b, _ = underlying(p.Type).(*dwarf.StructType)
		}
	}
	if b == nil {
		if t, ok := r.types[dwBucketSS]; ok {
			b, _ = underlying(t).(*dwarf.StructType)
		}
	}
	if b == nil {
		// Classic bucket of map[string]string on amd64: 8 tophash bytes,
		// 8 keys, 8 values, overflow pointer.
		l.Bucket = BucketLayout{Size: 272, Tophash: 0, Keys: 8, Values: 136, Overflow: 264, KeySize: 16, ValueSize: 16}
		return l
	}
	const bn = "map[string]string bucket"
	l.Bucket = BucketLayout{
		Size:      b.ByteSize,
		Tophash:   r.off(b, bn, "tophash"),
		Keys:      r.off(b, bn, "keys"),
		Values:    r.off(b, bn, "values"),
		Overflow:  r.off(b, bn, "overflow"),
		KeySize:   arrayElemSize(b, "keys"),
		ValueSize: arrayElemSize(b, "values"),
	}
	return l
}

// arrayElemSize returns the element size of an array field, or Absent.
func arrayElemSize(st *dwarf.StructType, name string) int64 {
	f := findField(st, name)
	if f == nil {
		return Absent
	}
	at, ok := underlying(f.Type).(*dwarf.ArrayType)
	if !ok || at.Count <= 0 {
		return Absent
	}
	return at.Size() / at.Count
}

// sliceLabels fills the slice form from the labelMap struct.
func (r *resolver) sliceLabels(lm *dwarf.StructType) LabelsLayout {
	h, b := absentMapLabels()
	l := LabelsLayout{Kind: SliceLabels, Hmap: h, Bucket: b, ListOffset: Absent, LabelSize: Absent, LabelKey: Absent, LabelValue: Absent}
	if len(lm.Field) == 0 {
		r.fail(fmt.Errorf("%s: struct has no fields in DWARF", dwLabelMap))
		return l
	}
	set := lm.Field[0] // embedded LabelSet (≤1.25) or label.Set (1.26+)
	setSt, ok := underlying(set.Type).(*dwarf.StructType)
	if !ok {
		r.fail(fmt.Errorf("%s.%s: not a struct in DWARF", dwLabelMap, set.Name))
		return l
	}
	list := findField(setSt, "list")
	if list == nil {
		list = findField(setSt, "List")
	}
	if list == nil {
		r.fail(fmt.Errorf("%s.%s: field list/List not found in DWARF", dwLabelMap, set.Name))
		return l
	}
	l.ListOffset = set.ByteOffset + list.ByteOffset
	sl, ok := underlying(list.Type).(*dwarf.StructType) // Go slices are {array, len, cap} structs
	var elem *dwarf.StructType
	if ok {
		if arr := findField(sl, "array"); arr != nil {
			if p, ok := underlying(arr.Type).(*dwarf.PtrType); ok {
				elem, _ = underlying(p.Type).(*dwarf.StructType)
			}
		}
	}
	if elem == nil {
		r.fail(fmt.Errorf("%s label list: element type not found in DWARF", dwLabelMap))
		return l
	}
	l.LabelSize = elem.ByteSize
	for _, f := range elem.Field {
		switch f.Name {
		case "key", "Key":
			l.LabelKey = f.ByteOffset
		case "value", "Value":
			l.LabelValue = f.ByteOffset
		}
	}
	if l.LabelKey == Absent || l.LabelValue == Absent {
		r.fail(fmt.Errorf("%s label element %s: key/value fields not found in DWARF", dwLabelMap, elem.StructName))
	}
	return l
}
