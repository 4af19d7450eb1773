package pyroscope

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/google/pprof/profile"
	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"
	"github.com/klauspost/compress/gzip"

	"github.com/goroscope/goroscope/pkg/label"
)

// Label names with a meaning to the server or to goroscope.
const (
	LabelServiceName = "service_name"
	LabelProfileName = "__name__"
	// LabelDelta "false" tells the server a profile's cumulative sample
	// types (alloc_*, contentions, delay) already hold deltas, as the pprof
	// scraper computes them; without it the server would take deltas again.
	LabelDelta      = "__delta__"
	LabelState      = "state"
	LabelWaitReason = "wait_reason"
)

// MaxLabels bounds the labels of one series, Pyroscope's default
// validation limit; a label's name and value are bounded by package label
// (MaxNameBytes, MaxValueBytes), also Pyroscope's defaults.
const MaxLabels = 30

// ErrInvalid marks label, profile and item errors: sending the same data
// again cannot succeed.
var ErrInvalid = errors.New("invalid profile series")

// EncodeProfile writes p as gzip-compressed pprof, the form the push API
// expects in RawSample.RawProfile.
func EncodeProfile(p *profile.Profile) ([]byte, error) {
	if p == nil {
		return nil, fmt.Errorf("%w: nil profile", ErrInvalid)
	}
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if err != nil {
		return nil, err
	}
	if err := p.WriteUncompressed(zw); err != nil {
		return nil, fmt.Errorf("encode pprof: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("gzip pprof: %w", err)
	}
	return buf.Bytes(), nil
}

// ProfileItem is the queue item of one gzip-compressed pprof profile pushed
// as __name__=name with the union of the label sets (later sets win).
func ProfileItem(name string, gz []byte, labels ...map[string]string) ([]byte, error) {
	l := map[string]string{}
	for _, ls := range labels {
		maps.Copy(l, ls)
	}
	l[LabelProfileName] = name
	return EncodeSeries(l, gz)
}

// EncodeSeries validates labels (a map, see ValidateLabels) and returns a
// marshalled pushv1.RawProfileSeries holding the given gzip-compressed pprof
// profiles, each with a fresh random ID, as the queue's item.
func EncodeSeries(labels map[string]string, profiles ...[]byte) ([]byte, error) {
	if len(profiles) == 0 {
		return nil, fmt.Errorf("%w: no profiles; give at least one", ErrInvalid)
	}
	ls := make([]*typesv1.LabelPair, 0, len(labels))
	for k, v := range labels {
		ls = append(ls, &typesv1.LabelPair{Name: k, Value: v})
	}
	slices.SortFunc(ls, func(a, b *typesv1.LabelPair) int { return strings.Compare(a.Name, b.Name) })
	if err := ValidateLabels(ls); err != nil {
		return nil, err
	}
	s := &pushv1.RawProfileSeries{Labels: ls}
	for i, p := range profiles {
		if !isGzip(p) {
			return nil, fmt.Errorf("%w: profile %d is not gzip-compressed; encode it with EncodeProfile", ErrInvalid, i)
		}
		s.Samples = append(s.Samples, &pushv1.RawSample{RawProfile: p, ID: newID()})
	}
	return s.MarshalVT()
}

// ValidateLabels checks a series' labels, sorted by name: service_name and
// __name__ present, names valid and unique, values non-empty UTF-8, and
// Pyroscope's default limits. Errors wrap ErrInvalid and say what to fix.
func ValidateLabels(ls []*typesv1.LabelPair) error {
	if len(ls) > MaxLabels {
		return fmt.Errorf("%w: %d labels, more than the server's default %d; drop some", ErrInvalid, len(ls), MaxLabels)
	}
	var service, name bool
	for i, l := range ls {
		if i > 0 && ls[i-1].Name >= l.Name {
			if ls[i-1].Name == l.Name {
				return fmt.Errorf("%w: label %q twice; keep one", ErrInvalid, l.Name)
			}
			return fmt.Errorf("%w: labels not sorted by name (%q before %q); sort them", ErrInvalid, ls[i-1].Name, l.Name)
		}
		switch {
		case l.Name == LabelServiceName:
			service = true
		case l.Name == LabelProfileName:
			name = true
			if !label.ValidName(l.Value) {
				return fmt.Errorf("%w: profile name (__name__) %q must match [a-zA-Z_][a-zA-Z0-9_]*, e.g. goroutines", ErrInvalid, l.Value)
			}
		case l.Name == LabelDelta:
			if l.Value != "true" && l.Value != "false" {
				return fmt.Errorf("%w: label %s=%q: want true (the server computes deltas of cumulative types) or false (already deltas)", ErrInvalid, LabelDelta, l.Value)
			}
		case strings.HasPrefix(l.Name, "__"):
			return fmt.Errorf("%w: label %q: names starting with __ are reserved by the server; rename it", ErrInvalid, l.Name)
		case !label.ValidName(l.Name):
			return fmt.Errorf("%w: label name %q must match [a-zA-Z_][a-zA-Z0-9_]*; replace other characters with '_'", ErrInvalid, l.Name)
		}
		if len(l.Name) > label.MaxNameBytes {
			return fmt.Errorf("%w: label name %.40q… longer than %d bytes; shorten it", ErrInvalid, l.Name, label.MaxNameBytes)
		}
		if l.Value == "" {
			return fmt.Errorf("%w: label %q has an empty value; give a value or drop the label", ErrInvalid, l.Name)
		}
		if len(l.Value) > label.MaxValueBytes {
			return fmt.Errorf("%w: label %q value is %d bytes, more than %d; shorten it", ErrInvalid, l.Name, len(l.Value), label.MaxValueBytes)
		}
		if !utf8.ValidString(l.Value) {
			return fmt.Errorf("%w: label %q value is not valid UTF-8; fix its encoding", ErrInvalid, l.Name)
		}
	}
	if !service {
		return fmt.Errorf("%w: no %s label; name the application", ErrInvalid, LabelServiceName)
	}
	if !name {
		return fmt.Errorf("%w: no %s label; give the profile type name, e.g. goroutines", ErrInvalid, LabelProfileName)
	}
	return nil
}

func isGzip(b []byte) bool { return len(b) >= 2 && b[0] == 0x1f && b[1] == 0x8b }

// newID returns a random RFC 4122 version 4 UUID string.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
