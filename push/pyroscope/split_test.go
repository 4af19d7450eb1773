package pyroscope

import (
	"slices"
	"strings"
	"testing"

	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"
)

// TestSplitTracksItems: every request knows which batch items its series
// come from, through size splits, per-sample splits of a large item,
// oversized profiles and the legacy one-profile-per-request split.
func TestSplitTracksItems(t *testing.T) {
	profile := func(n int) *pushv1.RawSample { return &pushv1.RawSample{RawProfile: []byte(strings.Repeat("p", n))} }
	series := func(sizes ...int) *pushv1.RawProfileSeries {
		s := &pushv1.RawProfileSeries{Labels: []*typesv1.LabelPair{{Name: "service_name", Value: "svc"}}}
		for _, n := range sizes {
			s.Samples = append(s.Samples, profile(n))
		}
		return s
	}
	// Item 1 does not decode; item 3 has three profiles, too big together;
	// item 5's profile alone exceeds the limit.
	in := []itemSeries{{0, series(300)}, {2, series(300)}, {3, series(400, 400, 400)}, {4, series(100)}, {5, series(2000)}, {6, series(100)}}
	invalid := []bool{false, true, false, false, false, false, false}
	reqs, tooBig := split(in, 1000, invalid)
	var got [][]int
	for _, r := range reqs {
		got = append(got, r.items)
		if size := r.msg.SizeVT(); size > 1000 {
			t.Errorf("request of %d bytes, limit 1000", size)
		}
	}
	want := [][]int{{0, 2}, {3, 3}, {3, 4, 6}}
	if !slices.EqualFunc(got, want, slices.Equal[[]int]) || tooBig != 1 || !invalid[5] || invalid[4] {
		t.Fatalf("requests carry items %v (tooBig %d, invalid %v); want %v, 1 too big, item 5 invalid", got, tooBig, invalid, want)
	}
	one := oneProfileEach(reqs)
	got = got[:0]
	for _, r := range one {
		got = append(got, r.items)
		if len(r.msg.Series) != 1 || len(r.msg.Series[0].Samples) != 1 {
			t.Fatalf("legacy request with %d series", len(r.msg.Series))
		}
	}
	want = [][]int{{0}, {2}, {3}, {3}, {3}, {4}, {6}}
	if !slices.EqualFunc(got, want, slices.Equal[[]int]) {
		t.Fatalf("legacy requests carry items %v, want %v", got, want)
	}
}
