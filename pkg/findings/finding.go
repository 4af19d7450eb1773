package findings

import (
	"crypto/sha256"
	"encoding/hex"
	"time"

	"github.com/goroscope/goroscope/pkg/snapshot"
)

// Kinds of finding.
const (
	// KindLeak: a group that keeps growing while its goroutines stay.
	KindLeak = "leak"
	// KindStuck: many goroutines waiting on one object for long.
	KindStuck = "stuck"
	// KindAllAsleep: every goroutine of the program parked where only
	// another goroutine could wake it, for long; the runtime's own
	// deadlock detector stays silent while any thread (the network
	// poller's, a timer's) is left.
	KindAllAsleep = "all-asleep"
)

// Severity orders findings, the worst first.
func Severity(kind string) int {
	switch kind {
	case KindAllAsleep:
		return 3
	case KindLeak, KindGCOffUnbounded, KindNoMemoryLimit:
		return 2
	case KindStuck, KindGomaxprocsOverQuota, KindRunqueueBacklog:
		return 1
	}
	return 0
}

// Finding is one answer about a process, with its evidence.
type Finding struct {
	// ID is stable while the same problem lasts: kind and site (and, for
	// stuck, the object); a runtime finding's is its kind's.
	ID   string `json:"id"`
	Kind string `json:"kind"`
	// Summary says it in one sentence, numbers included.
	Summary string `json:"summary"`
	// Site is the group the finding is about (the largest one for stuck
	// and all-asleep); empty for the runtime findings, which are about the
	// whole process.
	Site   Site   `json:"site"`
	SiteID string `json:"site_id"`
	// Goroutines involved now (runqueue-backlog: those waiting to run; 0
	// for the other runtime findings).
	Goroutines int `json:"goroutines"`
	// FirstSeen is when the group (or the wait) was first seen; Time when
	// the finding was last judged true.
	FirstSeen time.Time `json:"first_seen"`
	Time      time.Time `json:"time"`
	// GrowthPerHour is the group's growth over the leak window (leak).
	GrowthPerHour float64 `json:"growth_per_hour,omitempty"`
	// OldestSeconds is how long the group's oldest goroutine has been in
	// it (leak), or has waited (stuck, all-asleep).
	OldestSeconds float64 `json:"oldest_seconds"`
	// Departed is the part of the group's goroutines that left it over the
	// leak window (leak).
	Departed float64 `json:"departed,omitempty"`
	// Objects are what the goroutines wait on, the most waited on first;
	// DistinctObjects counts them all.
	Objects         []Object `json:"objects,omitempty"`
	DistinctObjects int      `json:"distinct_objects,omitempty"`
	// Related are other sites parked as long, which may hold what the
	// goroutines wait for (stuck, all-asleep).
	Related []Site `json:"related,omitempty"`
	// ConfirmedByRuntime is set when Go 1.26's goroutine leak detector
	// proved goroutines of the group unreachable.
	ConfirmedByRuntime bool `json:"confirmed_by_runtime,omitempty"`
	// Example is one goroutine's stack; Labels pprof label values seen.
	Example []snapshot.Frame    `json:"example"`
	Labels  map[string][]string `json:"labels,omitempty"`
	// Fix says what to change (the runtime findings; Summary ends with
	// it too).
	Fix string `json:"fix,omitempty"`
	// Runtime is what a runtime finding was judged on.
	Runtime *RuntimeEvidence `json:"runtime,omitempty"`
}

// findingID is a kind and the hash of what identifies the finding.
func findingID(kind string, parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return kind + "-" + hex.EncodeToString(h.Sum(nil)[:6])
}
