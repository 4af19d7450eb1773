package scrape

import (
	"fmt"
	"strings"
)

// Kind is a profile the scraper can collect from a net/http/pprof server.
type Kind string

// The kinds, as written in the configuration's profiles lists.
const (
	// KindCPU is /debug/pprof/profile?seconds=N, passed on as is.
	KindCPU Kind = "cpu"
	// KindHeap is /debug/pprof/heap: alloc_objects and alloc_space become
	// deltas between collections, inuse_objects and inuse_space stay as is.
	KindHeap Kind = "heap"
	// KindMutex is /debug/pprof/mutex: contentions and delay become deltas.
	KindMutex Kind = "mutex"
	// KindBlock is /debug/pprof/block: contentions and delay become deltas.
	KindBlock Kind = "block"
	// KindGoroutine is /debug/pprof/goroutine?debug=2, parsed into a
	// snapshot.Snapshot (the model the eBPF walker produces).
	KindGoroutine Kind = "goroutine"
	// KindGoroutineLeak is Go 1.26's /debug/pprof/goroutineleak (built
	// with GOEXPERIMENT=goroutineleakprofile): the goroutines its leak
	// detector proved unreachable, passed on as is.
	KindGoroutineLeak Kind = "goroutineleak"
)

// AllKinds lists every kind in collection order. It is also the default
// profiles list; goroutineleak is skipped for targets that do not offer it.
var AllKinds = []Kind{KindCPU, KindGoroutineLeak, KindGoroutine, KindHeap, KindMutex, KindBlock}

// ParseKind returns the kind named s.
func ParseKind(s string) (Kind, error) {
	for _, k := range AllKinds {
		if string(k) == s {
			return k, nil
		}
	}
	names := make([]string, len(AllKinds))
	for i, k := range AllKinds {
		names[i] = string(k)
	}
	return "", fmt.Errorf("%q is not a profile; use one of %s", s, strings.Join(names, ", "))
}

// path is the endpoint under the target's base URL.
func (k Kind) path() string {
	if k == KindCPU {
		return "/debug/pprof/profile"
	}
	return "/debug/pprof/" + string(k)
}

// ProfileName is the name profiles of this kind are pushed under
// (Pyroscope's __name__, the names Grafana Alloy uses): process_cpu,
// memory, mutex, block, goroutineleak. Goroutine dumps are folded from
// their snapshot instead and have none.
func (k Kind) ProfileName() string {
	switch k {
	case KindCPU:
		return "process_cpu"
	case KindHeap:
		return "memory"
	case KindMutex, KindBlock, KindGoroutineLeak:
		return string(k)
	}
	return ""
}

// valueType is a pprof sample type (type and unit).
type valueType struct{ typ, unit string }

func (v valueType) String() string { return v.typ + "/" + v.unit }

// cumulativeTypes are the sample types that count since the process
// started; the scraper turns them into deltas between collections. Nil for
// kinds that are not cumulative.
func (k Kind) cumulativeTypes() []valueType {
	switch k {
	case KindHeap:
		return []valueType{{"alloc_objects", "count"}, {"alloc_space", "bytes"}}
	case KindMutex, KindBlock:
		return []valueType{{"contentions", "count"}, {"delay", "nanoseconds"}}
	}
	return nil
}

// requiredTypes are the sample types a profile of this kind must have; a
// profile without them came from something other than the Go runtime's
// endpoint (a proxy's page, another program's profile).
func (k Kind) requiredTypes() []valueType {
	switch k {
	case KindCPU:
		return []valueType{{"samples", "count"}, {"cpu", "nanoseconds"}}
	case KindHeap:
		return []valueType{{"alloc_objects", "count"}, {"alloc_space", "bytes"}, {"inuse_objects", "count"}, {"inuse_space", "bytes"}}
	case KindMutex, KindBlock:
		return k.cumulativeTypes()
	case KindGoroutineLeak:
		return []valueType{{"goroutineleak", "count"}}
	}
	return nil
}

// cumulative reports whether the kind's profiles count since process start.
func (k Kind) cumulative() bool { return k.cumulativeTypes() != nil }
