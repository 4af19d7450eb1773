package remotewrite

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/prompb"

	"github.com/goroscope/goroscope/pkg/label"
)

func l(kv ...string) []prompb.Label {
	var ls []prompb.Label
	for i := 0; i+1 < len(kv); i += 2 {
		ls = append(ls, prompb.Label{Name: kv[i], Value: kv[i+1]})
	}
	return ls
}

func s(tv ...float64) []prompb.Sample {
	var ss []prompb.Sample
	for i := 0; i+1 < len(tv); i += 2 {
		ss = append(ss, prompb.Sample{Timestamp: int64(tv[i]), Value: tv[i+1]})
	}
	return ss
}

func TestEncodeSeries(t *testing.T) {
	tests := []struct {
		name        string
		labels      []prompb.Label
		samples     []prompb.Sample
		wantLabels  []prompb.Label
		wantSamples []prompb.Sample
		wantErr     string
	}{
		{"sorted labels and samples", l("state", "running", "__name__", "goroutines", "job", "a"), s(3000, 3, 1000, 1, 2000, 2),
			l("__name__", "goroutines", "job", "a", "state", "running"), s(1000, 1, 2000, 2, 3000, 3), ""},
		{"empty value dropped", l("__name__", "m", "empty", ""), s(1, 1), l("__name__", "m"), s(1, 1), ""},
		{"colon in metric name", l("__name__", "job:rate:5m"), s(1, 1), l("__name__", "job:rate:5m"), s(1, 1), ""},
		{"equal duplicate sample kept", l("__name__", "m"), s(1, 5, 1, 5), l("__name__", "m"), s(1, 5, 1, 5), ""},
		{"NaN stale marker", l("__name__", "m"), []prompb.Sample{{Timestamp: 1, Value: math.Float64frombits(0x7ff0000000000002)}},
			l("__name__", "m"), []prompb.Sample{{Timestamp: 1, Value: math.Float64frombits(0x7ff0000000000002)}}, ""},
		{"no name", l("job", "a"), s(1, 1), nil, nil, `has no __name__ label`},
		{"bad metric name", l("__name__", "go-routines"), s(1, 1), nil, nil, `metric name "go-routines" must match`},
		{"metric name starts with digit", l("__name__", "1m"), s(1, 1), nil, nil, `metric name "1m" must match`},
		{"bad label name", l("__name__", "m", "wait.reason", "x"), s(1, 1), nil, nil, `label name "wait.reason" must match [a-zA-Z_][a-zA-Z0-9_]*`},
		{"colon in label name", l("__name__", "m", "a:b", "x"), s(1, 1), nil, nil, `label name "a:b"`},
		{"duplicate label", l("__name__", "m", "a", "1", "a", "2"), s(1, 1), nil, nil, `has label "a" twice`},
		{"invalid utf8", l("__name__", "m", "a", "\xff"), s(1, 1), nil, nil, `not valid UTF-8`},
		{"no samples", l("__name__", "m"), nil, nil, nil, `no samples`},
		{"conflicting duplicate", l("__name__", "m"), s(1, 1, 1, 2), nil, nil, `two samples at timestamp 1 ms`},
		{"too long value", l("__name__", "m", "a", strings.Repeat("x", label.MaxValueBytes+1)), s(1, 1), nil, nil, `more than 2048`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inLabels := append([]prompb.Label(nil), tt.labels...)
			inSamples := append([]prompb.Sample(nil), tt.samples...)
			b, err := EncodeSeries(tt.labels, tt.samples)
			if !reflect.DeepEqual(inLabels, tt.labels) || !sameSamples(inSamples, tt.samples) {
				t.Error("EncodeSeries modified its inputs")
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrInvalid) {
					t.Fatalf("err = %v, want ErrInvalid containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var ts prompb.TimeSeries
			if err := ts.Unmarshal(b); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(ts.Labels, tt.wantLabels) {
				t.Errorf("labels = %v, want %v", ts.Labels, tt.wantLabels)
			}
			if !sameSamples(ts.Samples, tt.wantSamples) {
				t.Errorf("samples = %v, want %v", ts.Samples, tt.wantSamples)
			}
		})
	}
}

func TestEncodeSeriesMap(t *testing.T) {
	b, err := EncodeSeriesMap(map[string]string{"z": "1", "__name__": "m", "a": "2"}, s(5, 1))
	if err != nil {
		t.Fatal(err)
	}
	var ts prompb.TimeSeries
	if err := ts.Unmarshal(b); err != nil {
		t.Fatal(err)
	}
	if want := l("__name__", "m", "a", "2", "z", "1"); !reflect.DeepEqual(ts.Labels, want) {
		t.Errorf("labels = %v, want %v", ts.Labels, want)
	}
}

func TestValidateLabelsOrder(t *testing.T) {
	err := ValidateLabels(l("b", "1", "__name__", "m"))
	if err == nil || !strings.Contains(err.Error(), `labels not sorted by name ("b" before "__name__")`) {
		t.Errorf("unsorted labels: %v", err)
	}
}

func TestValidNames(t *testing.T) {
	tests := []struct {
		s            string
		metric, labl bool
	}{
		{"a", true, true}, {"_", true, true}, {"A_9", true, true}, {":", true, false}, {"a:b", true, false},
		{"", false, false}, {"9a", false, false}, {"a-b", false, false}, {"é", false, false}, {"a b", false, false},
	}
	for _, tt := range tests {
		if got := ValidMetricName(tt.s); got != tt.metric {
			t.Errorf("ValidMetricName(%q) = %v", tt.s, got)
		}
		if got := label.ValidName(tt.s); got != tt.labl {
			t.Errorf("label.ValidName(%q) = %v", tt.s, got)
		}
	}
}

// sameSamples compares samples bit for bit (NaN stale markers included).
func sameSamples(a, b []prompb.Sample) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Timestamp != b[i].Timestamp || math.Float64bits(a[i].Value) != math.Float64bits(b[i].Value) {
			return false
		}
	}
	return true
}
