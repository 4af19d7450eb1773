package fold

import (
	"cmp"
	"hash/maphash"
	"slices"

	"github.com/goroscope/goroscope/pkg/label"
)

// Bounds on the target pprof labels of one process (LabelLimits).
const (
	// DefaultMaxLabelKeys is how many distinct label keys a process may
	// put in its profiles.
	DefaultMaxLabelKeys = 32
	// DefaultMaxLabelValues is how many distinct values each key may take.
	DefaultMaxLabelValues = 100
	// OtherValue replaces the values of a key beyond its first
	// MaxValues; a target's own value "other" merges with them.
	OtherValue = "other"
)

// Reasons a LabelLimiter changes a label, LabelOverflow.Reason.
const (
	// OverflowValues: the key had MaxValues values already; the value
	// became OtherValue.
	OverflowValues = "values"
	// OverflowKeys: the process had MaxKeys keys already; the label was
	// left out (LabelOverflow.Key is "": the names are unbounded).
	OverflowKeys = "keys"
	// OverflowTruncated: the value was longer than label.MaxValueBytes; it
	// was cut, ending in label.TruncatedMarker.
	OverflowTruncated = "truncated"
)

// LabelLimits bounds the pprof labels of one process. Zero fields take
// the defaults.
type LabelLimits struct {
	MaxKeys   int
	MaxValues int
}

// LabelOverflow counts the labels a LabelLimiter changed for one key and
// reason.
type LabelOverflow struct {
	Key, Reason string
	// N counts label sets (goroutines, or on-CPU sample stacks) in which
	// the label was changed, one per call of Labels.
	N int64
}

// LabelLimiter bounds the pprof label values of one process across its
// profiles: its first MaxKeys keys are kept and, of each, the first
// MaxValues distinct values; later values become OtherValue and later
// keys are left out. Values longer than label.MaxValueBytes are
// truncated (label.Truncate) first. Nothing is changed silently: every
// change is counted, for TakeOverflows. The admitted keys and values are
// kept for the life of the limiter (as hashes), so a process's label set
// is stable from one profile to the next. The daemon holds one per
// process; it is not safe for concurrent use. A nil *LabelLimiter leaves
// labels as they are.
type LabelLimiter struct {
	limits LabelLimits
	seed   maphash.Seed
	// values are the admitted keys and the hashes of their values.
	values map[string]map[uint64]struct{}
	// overflow counts changes since the last TakeOverflows.
	overflow map[overflowKey]int64
}

type overflowKey struct{ key, reason string }

// NewLabelLimiter returns a limiter with limits l (zero fields: defaults).
func NewLabelLimiter(l LabelLimits) *LabelLimiter {
	if l.MaxKeys <= 0 {
		l.MaxKeys = DefaultMaxLabelKeys
	}
	if l.MaxValues <= 0 {
		l.MaxValues = DefaultMaxLabelValues
	}
	return &LabelLimiter{limits: l, seed: maphash.MakeSeed(), values: map[string]map[uint64]struct{}{}, overflow: map[overflowKey]int64{}}
}

// Labels returns m bounded by the limits. m itself is never modified: it
// is returned as is when within them, else a changed copy.
func (l *LabelLimiter) Labels(m map[string]string) map[string]string {
	if l == nil || len(m) == 0 || l.admitted(m) {
		return m
	}
	// Admit new keys and values in a stable order.
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make(map[string]string, len(m))
	for _, k := range keys {
		v, cut := label.Truncate(m[k])
		vals, ok := l.values[k]
		if !ok {
			if len(l.values) >= l.limits.MaxKeys {
				l.overflow[overflowKey{"", OverflowKeys}]++
				continue
			}
			vals = map[uint64]struct{}{}
			l.values[k] = vals
		}
		if cut {
			l.overflow[overflowKey{k, OverflowTruncated}]++
		}
		if v != OtherValue {
			h := maphash.String(l.seed, v)
			if _, ok := vals[h]; !ok {
				if len(vals) >= l.limits.MaxValues {
					l.overflow[overflowKey{k, OverflowValues}]++
					v = OtherValue
				} else {
					vals[h] = struct{}{}
				}
			}
		}
		out[k] = v
	}
	return out
}

// admitted reports whether every key and value of m is admitted already
// and no value needs truncating: the common case, without allocation.
func (l *LabelLimiter) admitted(m map[string]string) bool {
	for k, v := range m {
		if len(v) > label.MaxValueBytes {
			return false
		}
		vals, ok := l.values[k]
		if !ok {
			return false
		}
		if v == OtherValue {
			continue
		}
		if _, ok := vals[maphash.String(l.seed, v)]; !ok {
			return false
		}
	}
	return true
}

// TakeOverflows returns the changes counted since the previous call,
// sorted by key and reason, and resets the counts.
func (l *LabelLimiter) TakeOverflows() []LabelOverflow {
	if l == nil || len(l.overflow) == 0 {
		return nil
	}
	out := make([]LabelOverflow, 0, len(l.overflow))
	for k, n := range l.overflow {
		out = append(out, LabelOverflow{Key: k.key, Reason: k.reason, N: n})
	}
	clear(l.overflow)
	slices.SortFunc(out, func(a, b LabelOverflow) int {
		return cmp.Or(cmp.Compare(a.Key, b.Key), cmp.Compare(a.Reason, b.Reason))
	})
	return out
}
