package remotewrite

import (
	"cmp"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/prometheus/prompb"

	"github.com/goroscope/goroscope/pkg/label"
)

// MetricNameLabel is the label that holds a series' metric name.
const MetricNameLabel = "__name__"

// Limits on one series, well inside every known receiver's defaults. A
// label's name and value are bounded by package label (MaxNameBytes,
// MaxValueBytes), as for Pyroscope.
const (
	MaxLabels           = 64
	MaxSamplesPerSeries = 100_000
)

// ErrInvalid marks label, sample and item errors: sending the same data
// again cannot succeed.
var ErrInvalid = errors.New("invalid series")

// LabelsFromMap turns a label map into labels sorted by name.
func LabelsFromMap(m map[string]string) []prompb.Label {
	ls := make([]prompb.Label, 0, len(m))
	for k, v := range m {
		ls = append(ls, prompb.Label{Name: k, Value: v})
	}
	slices.SortFunc(ls, func(a, b prompb.Label) int { return strings.Compare(a.Name, b.Name) })
	return ls
}

// EncodeSeries validates and normalises one series and returns it as a
// marshalled prompb.TimeSeries, the queue's item. Labels with empty values
// are dropped, labels are sorted by name, samples are sorted by timestamp;
// duplicate label names or duplicate timestamps are errors. The inputs are
// not modified.
func EncodeSeries(labels []prompb.Label, samples []prompb.Sample) ([]byte, error) {
	ts, err := normalise(labels, samples)
	if err != nil {
		return nil, err
	}
	return ts.Marshal()
}

// EncodeSeriesMap is EncodeSeries with the labels given as a map.
func EncodeSeriesMap(labels map[string]string, samples []prompb.Sample) ([]byte, error) {
	return EncodeSeries(LabelsFromMap(labels), samples)
}

// SampleItem is the queue item of one sample of the series name{labels}
// at time at, and its shard key: a hash of the series' labels (__name__
// first, then the others by name), so that one series always goes to one
// shard and its samples stay in order.
func SampleItem(name string, labels map[string]string, value float64, at time.Time) (item []byte, key uint64, err error) {
	l := make(map[string]string, len(labels)+1)
	maps.Copy(l, labels)
	l[MetricNameLabel] = name
	item, err = EncodeSeriesMap(l, []prompb.Sample{{Value: value, Timestamp: at.UnixMilli()}})
	if err != nil {
		return nil, 0, err
	}
	h := fnv.New64a()
	h.Write([]byte(MetricNameLabel + "\x00" + name + "\x00"))
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		h.Write([]byte(k + "\x00" + labels[k] + "\x00"))
	}
	return item, h.Sum64(), nil
}

// normalise returns a fresh series with labels cleaned and sorted and
// samples sorted, or an error wrapping ErrInvalid.
func normalise(labels []prompb.Label, samples []prompb.Sample) (prompb.TimeSeries, error) {
	ls := make([]prompb.Label, 0, len(labels))
	for _, l := range labels {
		if l.Value != "" {
			ls = append(ls, l)
		}
	}
	slices.SortFunc(ls, func(a, b prompb.Label) int { return strings.Compare(a.Name, b.Name) })
	if err := ValidateLabels(ls); err != nil {
		return prompb.TimeSeries{}, err
	}
	ss := slices.Clone(samples)
	if err := sortSamples(ss); err != nil {
		return prompb.TimeSeries{}, fmt.Errorf("series %s: %w", labelString(ls), err)
	}
	return prompb.TimeSeries{Labels: ls, Samples: ss}, nil
}

// sortSamples sorts samples by timestamp and rejects an empty set,
// duplicate timestamps and more than MaxSamplesPerSeries samples.
func sortSamples(ss []prompb.Sample) error {
	if len(ss) == 0 {
		return fmt.Errorf("%w: no samples; send at least one", ErrInvalid)
	}
	if len(ss) > MaxSamplesPerSeries {
		return fmt.Errorf("%w: %d samples, more than %d; split the series over several items", ErrInvalid, len(ss), MaxSamplesPerSeries)
	}
	slices.SortStableFunc(ss, func(a, b prompb.Sample) int { return cmp.Compare(a.Timestamp, b.Timestamp) })
	for i := 1; i < len(ss); i++ {
		if ss[i].Timestamp == ss[i-1].Timestamp {
			if sameValue(ss[i].Value, ss[i-1].Value) {
				continue
			}
			return fmt.Errorf("%w: two samples at timestamp %d ms (%g and %g); receivers reject duplicates, keep one",
				ErrInvalid, ss[i].Timestamp, ss[i-1].Value, ss[i].Value)
		}
	}
	return nil
}

// dedupSamples removes equal samples at equal timestamps from a sorted slice.
func dedupSamples(ss []prompb.Sample) []prompb.Sample {
	return slices.CompactFunc(ss, func(a, b prompb.Sample) bool {
		return a.Timestamp == b.Timestamp && sameValue(a.Value, b.Value)
	})
}

func sameValue(a, b float64) bool {
	return math.Float64bits(a) == math.Float64bits(b)
}

// ValidateLabels checks labels as the remote-write spec requires: a valid
// __name__, valid, unique names in sorted order, non-empty UTF-8 values,
// and the size limits (MaxLabels, label.MaxNameBytes, label.MaxValueBytes).
// Errors wrap ErrInvalid and say what to fix.
func ValidateLabels(ls []prompb.Label) error {
	if len(ls) > MaxLabels {
		return fmt.Errorf("%w: series %s has %d labels, more than %d; drop some", ErrInvalid, labelString(ls), len(ls), MaxLabels)
	}
	hasName := false
	for i, l := range ls {
		if i > 0 {
			switch c := strings.Compare(ls[i-1].Name, l.Name); {
			case c == 0:
				return fmt.Errorf("%w: series %s has label %q twice; keep one", ErrInvalid, labelString(ls), l.Name)
			case c > 0:
				return fmt.Errorf("%w: series %s: labels not sorted by name (%q before %q); sort them", ErrInvalid, labelString(ls), ls[i-1].Name, l.Name)
			}
		}
		if l.Name == MetricNameLabel {
			hasName = true
			if !ValidMetricName(l.Value) {
				return fmt.Errorf("%w: metric name %q must match [a-zA-Z_:][a-zA-Z0-9_:]*; replace other characters with '_'", ErrInvalid, l.Value)
			}
			continue
		}
		if !label.ValidName(l.Name) {
			return fmt.Errorf("%w: series %s: label name %q must match [a-zA-Z_][a-zA-Z0-9_]*; replace other characters with '_'", ErrInvalid, labelString(ls), l.Name)
		}
		if len(l.Name) > label.MaxNameBytes {
			return fmt.Errorf("%w: label name %.40q… is %d bytes, more than %d; shorten it", ErrInvalid, l.Name, len(l.Name), label.MaxNameBytes)
		}
		if l.Value == "" {
			return fmt.Errorf("%w: series %s: label %q has an empty value; drop the label (empty means absent)", ErrInvalid, labelString(ls), l.Name)
		}
		if len(l.Value) > label.MaxValueBytes {
			return fmt.Errorf("%w: label %q value is %d bytes, more than %d; shorten it", ErrInvalid, l.Name, len(l.Value), label.MaxValueBytes)
		}
		if !utf8.ValidString(l.Value) {
			return fmt.Errorf("%w: label %q value %q is not valid UTF-8; fix its encoding", ErrInvalid, l.Name, l.Value)
		}
	}
	if !hasName {
		return fmt.Errorf("%w: series %s has no %s label; every series needs a metric name", ErrInvalid, labelString(ls), MetricNameLabel)
	}
	return nil
}

// ValidMetricName reports whether s matches [a-zA-Z_:][a-zA-Z0-9_:]*.
func ValidMetricName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// labelString renders labels as {a="b", ...}, bounded for error messages.
func labelString(ls []prompb.Label) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, l := range ls {
		if i > 0 {
			b.WriteString(", ")
		}
		if b.Len() > 200 {
			b.WriteString("…")
			break
		}
		fmt.Fprintf(&b, "%s=%q", l.Name, l.Value)
	}
	b.WriteByte('}')
	return b.String()
}
