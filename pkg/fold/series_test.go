package fold

import (
	"testing"
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
