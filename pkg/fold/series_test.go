package fold

import (
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/goroscope/goroscope/pkg/label"
	"github.com/goroscope/goroscope/pkg/snapshot"
)

func TestProcessSeries(t *testing.T) {
	s := testSnapshot()
	s.Exe, s.GoVersion = "/bin/app", "go1.26.8"
	s.Counts.Waiting, s.Counts.Running = 4, 1
	got := map[string]float64{}
	for _, sr := range ProcessSeries(s, map[string]string{"service_name": "app", "pid": "7"}) {
		key := ""
		for _, kv := range sr.SortedLabels() {
			key += kv[0] + "=" + kv[1] + ","
		}
		if _, dup := got[key]; dup {
			t.Errorf("duplicate series %s", key)
		}
		got[key] = sr.Value
	}
	for _, tc := range []struct {
		key  string
		want float64
	}{
		{"__name__=goroscope_process_info,exe=/bin/app,go_version=go1.26.8,pid=7,service_name=app,", 1},
		{"__name__=goroscope_goroutines,pid=7,service_name=app,state=waiting,wait_reason=chan receive,", 4},
		{"__name__=goroscope_goroutines,pid=7,service_name=app,state=running,", 1},
		{"__name__=goroscope_goroutines,pid=7,service_name=app,state=syscall,", 0},
		{"__name__=goroscope_goroutine_blocked_seconds_bucket,le=1,pid=7,service_name=app,wait_reason=chan receive,", 1},
		{"__name__=goroscope_goroutine_blocked_seconds_bucket,le=60,pid=7,service_name=app,wait_reason=chan receive,", 4},
		{"__name__=goroscope_goroutine_blocked_seconds_bucket,le=+Inf,pid=7,service_name=app,wait_reason=chan receive,", 4},
		{"__name__=goroscope_goroutine_blocked_seconds_sum,pid=7,service_name=app,wait_reason=chan receive,", 105.5},
		{"__name__=goroscope_goroutine_blocked_seconds_count,pid=7,service_name=app,wait_reason=chan receive,", 4},
	} {
		if v, ok := got[tc.key]; !ok || v != tc.want {
			t.Errorf("%s = %v (present %v), want %v", tc.key, v, ok, tc.want)
		}
	}
	sum := Summary(s)
	if sum["goroutines"] != 5 || sum["state/waiting"] != 4 || sum["wait_reason/chan receive"] != 4 {
		t.Errorf("Summary = %v", sum)
	}
}

// TestSampledSnapshot: a snapshot that kept every third goroutine folds
// each kept goroutine as three, in profiles, series and summary, and says
// so in the profiles' comments.
func TestSampledSnapshot(t *testing.T) {
	full := testSnapshot()
	s := testSnapshot()
	s.Stride = 3
	s.Counts = snapshot.Counts{Waiting: 13, Running: 2} // exact, not 3x the kept
	sum := func(p *profile.Profile) int64 {
		var n int64
		for _, x := range p.Sample {
			n += x.Value[0]
		}
		return n
	}
	g, wall := Profiles(s, time.Second)
	gf, wallf := Profiles(full, time.Second)
	for _, tc := range []struct {
		name          string
		got, unsample int64
		comments      []string
	}{
		{"goroutine", sum(g), sum(gf), g.Comments},
		{"goroutine_wall", sum(wall), sum(wallf), wall.Comments},
	} {
		if tc.got != 3*tc.unsample {
			t.Errorf("%s: total %d, want 3 x %d", tc.name, tc.got, tc.unsample)
		}
		if len(tc.comments) != 1 || !strings.Contains(tc.comments[0], "one in 3 kept") {
			t.Errorf("%s: comments %q, want the sampling said", tc.name, tc.comments)
		}
	}
	if c := Goroutines(full).Comments; c != nil {
		t.Errorf("unsampled profile has comments %q", c)
	}
	for _, sr := range ProcessSeries(s, nil) {
		if sr.Name == MetricGoroutines && sr.Labels["state"] == "waiting" && sr.Value != 12 {
			t.Errorf("waiting series %v = %v, want 3 x 4", sr.Labels, sr.Value)
		}
	}
	if m := Summary(s); m["goroutines"] != 15 || m["wait_reason/chan receive"] != 12 {
		t.Errorf("Summary = %v, want 15 goroutines (the counts) and 12 chan receive", m)
	}
}

// TestProcessInfoBounded: the executable path and Go version a target
// shows become bounded, printable label values.
func TestProcessInfoBounded(t *testing.T) {
	s := testSnapshot()
	s.Exe = "/tmp/" + strings.Repeat("x", 5000)
	s.GoVersion = "go1.22\n" + strings.Repeat("v", 100)
	for _, sr := range ProcessSeries(s, nil) {
		if sr.Name != MetricProcessInfo {
			continue
		}
		exe, ver := sr.Labels["exe"], sr.Labels["go_version"]
		if len(exe) > MaxExeLabelBytes || !strings.HasPrefix(exe, "/tmp/xxx") || !strings.HasSuffix(exe, label.TruncatedMarker) {
			t.Errorf("exe label of %d bytes: %.40q…", len(exe), exe)
		}
		if len(ver) > MaxGoVersionLabelBytes || strings.ContainsRune(ver, '\n') {
			t.Errorf("go_version label %q", ver)
		}
		return
	}
	t.Fatal("no goroscope_process_info series")
}
