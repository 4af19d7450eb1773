// Package fold turns goroutine snapshots into flame profiles (pprof) and
// series. It is pure: no I/O, no clocks.
//
// It is internal to goroscope, not meant for import by other modules: its
// API may change at any time. The one public API is pkg/inproc.
package fold

// WaitBucket names the range a wait duration falls in, in words a person
// reads at a glance; "" for goroutines that are not waiting.
func WaitBucket(seconds float64) string {
	switch {
	case seconds <= 0:
		return ""
	case seconds < 1:
		return "<1s"
	case seconds < 10:
		return "1s-10s"
	case seconds < 60:
		return "10s-1m"
	case seconds < 600:
		return "1m-10m"
	}
	return ">10m"
}

// WaitBuckets lists the bucket names in increasing order.
var WaitBuckets = [...]string{"<1s", "1s-10s", "10s-1m", "1m-10m", ">10m"}
