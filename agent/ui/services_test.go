package ui

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/goroscope/goroscope/pkg/findings"
	"github.com/goroscope/goroscope/pkg/store"
)

// appendCount stores a goroutines entry of proc at at whose summary
// counts n goroutines (and findings, if any), without a payload: the
// service answer reads summaries only.
func appendCount(tb testing.TB, st *store.Store, proc store.Process, at time.Time, n int, nFindings int) {
	tb.Helper()
	sum := map[string]float64{summaryGoroutines: float64(n), summaryState + "waiting": float64(n)}
	if nFindings > 0 {
		sum[summaryFindings] = float64(nFindings)
		sum[summaryFindingKind+findings.KindLeak] = float64(nFindings)
	}
	if _, err := st.Append(store.Entry{Process: proc, Kind: store.KindGoroutines, Time: at, Summary: sum}); err != nil {
		tb.Fatal(err)
	}
}

// serviceFixture is a store with three processes of billing, one after
// the other (restarts), the last one live and growing; one of another
// service; and one of a hostile name.
func serviceFixture(t *testing.T) (*httptest.Server, []store.Process) {
	t.Helper()
	st := openStore(t)
	billing := func(pid int) store.Process {
		return store.Process{PID: pid, StartTime: uint64(pid) * 100, ServiceName: "billing", Exe: "/usr/bin/billing", GoVersion: "go1.26.8"}
	}
	ps := []store.Process{billing(101), billing(102), billing(103)}
	at := func(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }
	// 101: minutes 0-4, 10 goroutines growing by 2; 102: 6-9, 20; 103: 11-14, 30 growing by 10, live.
	for i := range 5 {
		appendCount(t, st, ps[0], at(i), 10+2*i, 0)
	}
	for i := 6; i < 10; i++ {
		appendCount(t, st, ps[1], at(i), 20, 1)
	}
	for i := 11; i < 15; i++ {
		appendCount(t, st, ps[2], at(i), 30+10*(i-11), 0)
	}
	other := store.Process{PID: 201, StartTime: 2, ServiceName: "billing-worker"}
	appendCount(t, st, other, at(3), 99, 0)
	hostile := store.Process{PID: 301, StartTime: 3, ServiceName: hostileService + "/../a b%2F?#"}
	appendCount(t, st, hostile, at(2), 7, 0)
	live := []Process{{Process: ps[2], Live: true, LastSnapshot: at(15), Counts: countsOf(75)}}
	srv := httptest.NewServer(New(testSource{Store: st, live: live}, nil))
	t.Cleanup(srv.Close)
	return srv, append(ps, hostile)
}

func TestServiceAPI(t *testing.T) {
	srv, ps := serviceFixture(t)
	at := func(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }
	q := func(tm time.Time) string { return url.QueryEscape(tm.Format(time.RFC3339)) }
	type proc struct {
		key         string
		live        bool
		first, last time.Time
		peak, lastN int
		findings    int
		moments     int
	}
	procsOf := func(a ServiceAnswer) []proc {
		var out []proc
		for _, p := range a.Processes {
			out = append(out, proc{p.Key, p.Live, p.FirstSeen, p.LastSeen, p.Peak, p.Last, p.FindingsCount, p.Moments})
		}
		return out
	}
	p101 := proc{"101/10100", false, at(0), at(4), 18, 18, 0, 5}
	p102 := proc{"102/10200", false, at(6), at(9), 20, 20, 1, 4}
	p103 := proc{"103/10300", true, at(11), at(15), 75, 75, 0, 4}

	t.Run("restarts", func(t *testing.T) {
		a := getJSON[ServiceAnswer](t, srv, "/api/services/billing")
		if !a.Newest.Equal(at(15)) {
			t.Errorf("newest %v, want the live process's last snapshot %v", a.Newest, at(15))
		}
		if want := []proc{p103, p102, p101}; a.Service != "billing" || !slices.Equal(procsOf(a), want) || a.Omitted != 0 || a.Truncated {
			t.Errorf("billing: %q, processes\n %+v\nwant\n %+v (omitted %d, truncated %v)", a.Service, procsOf(a), want, a.Omitted, a.Truncated)
		}
		s := a.Series
		if len(s.Moments) != 13 || !s.Moments[0].Equal(at(0)) || !s.Moments[12].Equal(at(14)) || s.Downsampled {
			t.Fatalf("moments %v (downsampled %v), want the 13 stored minutes 0-4, 6-9, 11-14", s.Moments, s.Downsampled)
		}
		wantTotal := []float64{10, 12, 14, 16, 18, 20, 20, 20, 20, 30, 40, 50, 60}
		if !slices.Equal(s.Total, wantTotal) {
			t.Errorf("total %v, want %v", s.Total, wantTotal)
		}
		if len(s.ByProcess) != 3 {
			t.Errorf("by_process has %d series, want 3", len(s.ByProcess))
		}
		for key, want := range map[string][]any{
			"101/10100": {10, 12, 14, 16, 18, nil, nil, nil, nil, nil, nil, nil, nil},
			"102/10200": {nil, nil, nil, nil, nil, 20, 20, 20, 20, nil, nil, nil, nil},
			"103/10300": {nil, nil, nil, nil, nil, nil, nil, nil, nil, 30, 40, 50, 60},
		} {
			if got := fmt.Sprint(deref(s.ByProcess[key])); got != fmt.Sprint(want) {
				t.Errorf("%s: %s, want %v", key, got, want)
			}
		}
		// The JSON as documented: nulls where a process has no moment.
		body := string(get(t, srv, "/api/services/billing", http.StatusOK))
		for _, want := range []string{`"service":"billing"`, `"key":"101/10100"`, `"by_process":{"101/10100":[10,12,14,16,18,null,`, `"first_seen":"2026-11-23T09:00:00Z"`, `"downsampled":false`} {
			if !strings.Contains(body, want) {
				t.Errorf("answer lacks %s:\n%s", want, body)
			}
		}
	})
	t.Run("range", func(t *testing.T) {
		a := getJSON[ServiceAnswer](t, srv, "/api/services/billing?from="+q(at(7))+"&to="+q(at(12)))
		p102r, p103r := p102, p103
		p102r.moments, p103r.moments = 3, 1
		p103r.peak = 30 // live now, but now is after the range
		if want := []proc{p103r, p102r}; !slices.Equal(procsOf(a), want) || a.Omitted != 1 || len(a.Series.Moments) != 4 || !slices.Equal(a.Series.Total, []float64{20, 20, 20, 30}) {
			t.Errorf("billing in [7m, 12m): %+v, omitted %d, total %v; want %+v, 1 omitted, 4 moments", procsOf(a), a.Omitted, a.Series.Total, want)
		}
		if !a.From.Equal(at(7)) || !a.To.Equal(at(12)) {
			t.Errorf("range echoed %v-%v", a.From, a.To)
		}
	})
	t.Run("hostile name", func(t *testing.T) {
		name := ps[3].ServiceName
		a := getJSON[ServiceAnswer](t, srv, "/api/services/"+url.PathEscape(name))
		if a.Service != name || len(a.Processes) != 1 || a.Processes[0].PID != 301 || a.Processes[0].ServiceName != name {
			t.Errorf("service %q: %+v", name, a)
		}
		// Its JSON escapes the markup.
		body := string(get(t, srv, "/api/services/"+url.PathEscape(name), http.StatusOK))
		if strings.Contains(body, "<img") {
			t.Errorf("answer holds raw markup: %s", body)
		}
	})
	for _, c := range []struct {
		name, path string
		status     int
		msg        string
	}{
		{"unknown", "/api/services/nosuch", 404, `no process of service "nosuch"`},
		{"prefix of a known name", "/api/services/billing-", 404, `service "billing-"`},
		{"unknown hostile", "/api/services/" + url.PathEscape(hostileService), 404, "no process of service"},
		{"empty name", "/api/services/", 404, `no process of service ""`},
		{"bad from", "/api/services/billing?from=yesterday", 400, "from="},
		{"bad to", "/api/services/billing?to=1", 400, "to="},
	} {
		t.Run(c.name, func(t *testing.T) {
			var e struct{ Error string }
			if err := json.Unmarshal(get(t, srv, c.path, c.status), &e); err != nil || !strings.Contains(e.Error, c.msg) {
				t.Errorf("GET %s: error %q (%v), want it to hold %q", c.path, e.Error, err, c.msg)
			}
		})
	}
}

// TestServiceBounds: a service of more processes than an answer lists
// keeps the most recently seen; more moments than maxServicePoints are
// downsampled into buckets keeping each one's most.
func TestServiceBounds(t *testing.T) {
	st := openStore(t)
	n := maxServiceProcesses + 7
	for i := range n {
		p := store.Process{PID: 1000 + i, StartTime: 1, ServiceName: "go-build"}
		appendCount(t, st, p, t0.Add(time.Duration(i)*time.Second), 3, 0)
	}
	long := store.Process{PID: 5, StartTime: 5, ServiceName: "long"}
	const moments = maxServicePoints*2 + 13
	for i := range moments {
		v := 1
		if i == moments/2 {
			v = 500 // a spike a bucket must keep
		}
		appendCount(t, st, long, t0.Add(time.Duration(i)*time.Second), v, 0)
	}
	srv := httptest.NewServer(New(testSource{Store: st}, nil))
	t.Cleanup(srv.Close)

	a := getJSON[ServiceAnswer](t, srv, "/api/services/go-build")
	if len(a.Processes) != maxServiceProcesses || a.Omitted != n-maxServiceProcesses || a.Processes[0].PID != 1000+n-1 {
		t.Errorf("go-build: %d processes listed (first pid %d), %d omitted; want %d, the newest %d first, %d omitted",
			len(a.Processes), a.Processes[0].PID, a.Omitted, maxServiceProcesses, 1000+n-1, n-maxServiceProcesses)
	}
	if len(a.Series.ByProcess) != maxServiceProcesses {
		t.Errorf("go-build: %d series, want %d", len(a.Series.ByProcess), maxServiceProcesses)
	}

	b := getJSON[ServiceAnswer](t, srv, "/api/services/long")
	s := b.Series
	if !s.Downsampled || len(s.Moments) > maxServicePoints || len(s.Moments) < maxServicePoints-1 || len(s.Total) != len(s.Moments) {
		t.Fatalf("long: %d moments (downsampled %v), %d totals; want at most %d buckets", len(s.Moments), s.Downsampled, len(s.Total), maxServicePoints)
	}
	if slices.Max(s.Total) != 500 || !s.Moments[0].Equal(t0) || b.Processes[0].Moments != moments || b.Processes[0].Peak != 500 {
		t.Errorf("long: peak %v of the totals, first moment %v, %d moments counted, peak %d; want the spike 500, t0, %d",
			slices.Max(s.Total), s.Moments[0], b.Processes[0].Moments, b.Processes[0].Peak, moments)
	}
	if !slices.IsSortedFunc(s.Moments, func(a, b time.Time) int { return a.Compare(b) }) {
		t.Error("moments not oldest first")
	}
}

func deref(vs []*float64) []any {
	out := make([]any, len(vs))
	for i, v := range vs {
		if v != nil {
			out[i] = *v
		}
	}
	return out
}
