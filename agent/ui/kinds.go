package ui

import (
	"net/http"

	"github.com/goroscope/goroscope/pkg/store"
)

// KindInfo describes one stored kind to the browser (GET /api/kinds), so
// the page offers whatever the store holds without a list of its own.
type KindInfo struct {
	// Kind is the store's kind name (store.Kind*).
	Kind string `json:"kind"`
	// Profile is set for the pprof kinds (store.ProfileKinds): those the
	// flame graph shows. The snapshot is downloadable only.
	Profile bool `json:"profile"`
	// Value says what the kind measures, shown next to its name in the
	// flame graph's profile selector; empty when unknown.
	Value string `json:"value"`
	// Description is a sentence for the downloads table; empty when unknown.
	Description string `json:"description"`
}

// kindText is the text shown for each kind: {Value, Description}. The kinds
// themselves and their order come from pkg/store; a kind missing here is
// still listed, by name only (TestKindsDescribed keeps this complete).
var kindText = map[string][2]string{
	store.KindGoroutines:    {"count", "goroutines per stack, state, wait reason, wait duration and label (count)"},
	store.KindGoroutineWall: {"time waited", "time goroutines have waited, per stack (nanoseconds)"},
	store.KindCPU:           {"on-CPU time", "on-CPU time per stack and goroutine labels (eBPF sampler or pprof endpoint)"},
	store.KindMemory:        {"heap", "heap: allocations over the interval and memory in use (pprof endpoint)"},
	store.KindMutex:         {"contention", "lock contention over the interval (pprof endpoint)"},
	store.KindBlock:         {"time blocked", "time blocked over the interval (pprof endpoint)"},
	store.KindGoroutineLeak: {"Go 1.26", "goroutines the runtime's leak detector found blocked forever, per stack (pprof endpoint; Go 1.26 built with GOEXPERIMENT=goroutineleakprofile)"},
	store.KindSnapshot:      {"", "every goroutine with its full stack, as goroscope saw it"},
}

// downloadKinds are the kinds the download endpoint serves: every profile
// kind, then the snapshot.
func downloadKinds() []string {
	return append(append([]string(nil), store.ProfileKinds...), store.KindSnapshot)
}

// Kinds describes every kind the UI can show or download, in display
// order: store.ProfileKinds, then the snapshot.
func Kinds() []KindInfo {
	out := make([]KindInfo, 0, len(store.ProfileKinds)+1)
	for _, k := range downloadKinds() {
		t := kindText[k]
		out = append(out, KindInfo{Kind: k, Profile: k != store.KindSnapshot, Value: t[0], Description: t[1]})
	}
	return out
}

func (s *server) kinds(*http.Request) (any, error) { return Kinds(), nil }
