package receivers

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// VictoriaMetrics is a single-node VictoriaMetrics run for one test.
type VictoriaMetrics struct {
	// URL is the server's base URL.
	URL string
	// WriteURL is the remote-write endpoint (URL + /api/v1/write).
	WriteURL string
	proc     *process
}

// StartVictoriaMetrics runs the Debian victoria-metrics binary on a free
// 127.0.0.1 port with fresh storage, no query latency offset and no result
// cache (so data is visible as soon as it is flushed), waits until it is
// healthy and stops it when the test ends.
func StartVictoriaMetrics(tb testing.TB) *VictoriaMetrics {
	tb.Helper()
	bin := findBinary(tb, "victoria-metrics", "victoria-metrics")
	dir := tb.TempDir()
	addr := freeAddr(tb)
	p := startProcess(tb, bin,
		"-httpListenAddr="+addr,
		"-storageDataPath="+filepath.Join(dir, "data"),
		"-retentionPeriod=1d",
		"-search.latencyOffset=0s",
		"-search.disableCache",
		"-loggerLevel=ERROR",
	)
	base := "http://" + addr
	p.waitReady(tb, base+"/health")
	return &VictoriaMetrics{URL: base, WriteURL: base + "/api/v1/write", proc: p}
}

// Flush makes everything written so far searchable (/internal/force_flush).
func (v *VictoriaMetrics) Flush(tb testing.TB) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := getBody(ctx, v.URL+"/internal/force_flush"); err != nil {
		tb.Fatalf("victoria-metrics force_flush: %v\noutput:\n%s", err, v.proc.out)
	}
}

// Query flushes, then evaluates an instant query at now, as Prometheus.Query.
func (v *VictoriaMetrics) Query(tb testing.TB, promql string) []Series {
	tb.Helper()
	v.Flush(tb)
	s, err := queryAPI(v.URL, promql, time.Now())
	if err != nil {
		tb.Fatalf("victoria-metrics query %q: %v\noutput:\n%s", promql, err, v.proc.out)
	}
	return s
}

// Export flushes, then returns every raw sample of the series matching the
// selector (e.g. {__name__="x"}) between start and end (/api/v1/export).
func (v *VictoriaMetrics) Export(tb testing.TB, selector string, start, end time.Time) []Series {
	tb.Helper()
	v.Flush(tb)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	q := url.Values{
		"match[]": {selector},
		"start":   {strconv.FormatInt(start.Unix(), 10)},
		"end":     {strconv.FormatInt(end.Unix()+1, 10)},
	}
	body, err := getBody(ctx, v.URL+"/api/v1/export?"+q.Encode())
	if err != nil {
		tb.Fatalf("victoria-metrics export %s: %v\noutput:\n%s", selector, err, v.proc.out)
	}
	var out []Series
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		var line struct {
			Metric     map[string]string `json:"metric"`
			Values     []float64         `json:"values"`
			Timestamps []int64           `json:"timestamps"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			tb.Fatalf("victoria-metrics export line %q: %v", sc.Text(), err)
		}
		if len(line.Values) != len(line.Timestamps) {
			tb.Fatalf("victoria-metrics export: %d values for %d timestamps", len(line.Values), len(line.Timestamps))
		}
		s := Series{Labels: line.Metric}
		for i := range line.Values {
			s.Samples = append(s.Samples, Sample{TimestampMs: line.Timestamps[i], Value: line.Values[i]})
		}
		out = append(out, s)
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(fmt.Errorf("victoria-metrics export: %w", err))
	}
	return out
}
