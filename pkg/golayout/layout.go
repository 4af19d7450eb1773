package golayout

// Absent is the offset recorded for a field that does not exist in a Go version.
const Absent int64 = -1

// Sources of a Layout.
const (
	SourceDWARF = "dwarf" // derived from the target binary's own DWARF
	SourceTable = "table" // taken from the built-in per-version tables
)

// Layout holds the byte offsets (and sizes) of runtime structures for one Go
// version. An offset of Absent (-1) means the field does not exist in that version.
type Layout struct {
	GoVersion string // "go1.22" for tables (minor granularity), the full version when from DWARF
	Source    string // SourceDWARF or SourceTable
	G         GLayout
	Sudog     SudogLayout
	Hchan     HchanLayout
	Waitq     WaitqLayout
	M         MLayout
	Labels    LabelsLayout
	// Scheduler and GC state (collect/rtstate).
	Sched        SchedLayout
	P            PLayout
	GCController GCControllerLayout
	Mstats       MstatsLayout
}

// GLayout is the layout of runtime.g. Sched* are g.sched (a gobuf) fields,
// already offset from the start of g; StackLo/StackHi are g.stack.lo/hi.
type GLayout struct {
	Size, StackLo, StackHi, M, SchedSP, SchedPC, SchedBP, SyscallSP, SyscallPC, SyscallBP int64
	AtomicStatus, Goid, WaitSince, WaitReason, TrackingSeq, LockedM, ParentGoid           int64
	Gopc, Startpc, Waiting, Labels                                                        int64
}

// SudogLayout is the layout of runtime.sudog. Elem and C are the offsets of
// the word holding the address: in Go 1.26+ these fields are
// maybeTraceablePtr{vp, vu} structs and the offset is that of vu, the source
// of truth (vp may be nil while the GC hides the pointer).
type SudogLayout struct {
	Size, G, Next, Prev, Elem, C, WaitLink, IsSelect int64
}

// HchanLayout is the layout of runtime.hchan (the object a chan value points to).
// Buf, Elemsize, Sendx and Recvx are extras for reading buffered channels.
type HchanLayout struct {
	Size, Qcount, Dataqsiz, Closed, Recvq, Sendq int64
	Buf, Elemsize, Sendx, Recvx                  int64
}

// WaitqLayout is the layout of runtime.waitq (a list of *sudog).
type WaitqLayout struct {
	First, Last int64
}

// MLayout is the layout of the runtime.m fields a reader needs.
type MLayout struct {
	ID, Curg, Procid int64
}

// LabelsKind tells how the memory g.labels points to is laid out.
type LabelsKind uint8

const (
	// UnknownLabels means the representation could not be determined.
	UnknownLabels LabelsKind = iota
	// MapLabels (Go 1.21–1.23): g.labels points to a runtime/pprof.labelMap,
	// which is a map[string]string, i.e. one word holding a *hmap (classic Go map).
	MapLabels
	// SliceLabels (Go 1.24+): g.labels points to a labelMap struct holding a
	// LabelSet whose only field is a []label{key, value string} slice header.
	SliceLabels
)

// String returns "map", "slice" or "unknown".
func (k LabelsKind) String() string {
	switch k {
	case MapLabels:
		return "map"
	case SliceLabels:
		return "slice"
	default:
		return "unknown"
	}
}

// Map bucket constants of the classic (pre-swiss) Go map, fixed in 1.21–1.23.
const (
	BucketCnt        = 8 // slots per bucket
	TopHashEmptyRest = 0 // this slot and all later ones (and overflows) are empty
	TopHashEmptyOne  = 1 // this slot is empty
	TopHashMin       = 5 // tophash values below this are markers, not hashes
	HmapSameSizeGrow = 8 // hmap.flags bit: growing to a map of the same size
)

// StringHeaderSize is the size of a Go string header {ptr, len} on amd64.
const StringHeaderSize = 16

// LabelsLayout describes the memory behind g.labels. Fields that do not apply
// to Kind are Absent.
type LabelsLayout struct {
	Kind LabelsKind

	// SliceLabels: offset of the []label slice header inside labelMap, and
	// the size of one label and the offsets of its key and value strings.
	ListOffset, LabelSize, LabelKey, LabelValue int64

	// MapLabels: the hmap and bucket layouts for map[string]string.
	Hmap   HmapLayout
	Bucket BucketLayout
}

// HmapLayout is the layout of the classic runtime.hmap (Go ≤1.23).
// The map has 1<<B buckets; while growing, Oldbuckets is non-nil and holds
// 1<<(B-1) buckets (or 1<<B for a same-size grow), those below Nevacuate
// already moved.
type HmapLayout struct {
	Size, Count, Flags, B, Buckets, Oldbuckets, Nevacuate int64
}

// BucketLayout is the layout of a map[string]string bucket: BucketCnt tophash
// bytes, then BucketCnt keys, then BucketCnt values, then the overflow pointer.
type BucketLayout struct {
	Size, Tophash, Keys, Values, Overflow, KeySize, ValueSize int64
}

// absentMapLabels returns a map/bucket layout with every offset Absent.
func absentMapLabels() (HmapLayout, BucketLayout) {
	a := Absent
	return HmapLayout{a, a, a, a, a, a, a}, BucketLayout{a, a, a, a, a, a, a}
}

// sliceLabels is the Go 1.24+ label layout on amd64, used when the binary's
// DWARF does not describe runtime/pprof.labelMap (pprof not linked in).
func sliceLabels() LabelsLayout {
	h, b := absentMapLabels()
	return LabelsLayout{Kind: SliceLabels, ListOffset: 0, LabelSize: 32, LabelKey: 0, LabelValue: 16, Hmap: h, Bucket: b}
}
