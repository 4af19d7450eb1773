package receivers

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// Prometheus is a Prometheus server run for one test with its remote-write
// receiver enabled.
type Prometheus struct {
	// URL is the server's base URL, e.g. http://127.0.0.1:34567.
	URL string
	// WriteURL is the remote-write endpoint (URL + /api/v1/write).
	WriteURL string
	proc     *process
}

// StartPrometheus runs the Debian prometheus binary on a free 127.0.0.1 port
// with a fresh TSDB and an empty scrape configuration, waits until it is
// ready and stops it when the test ends.
func StartPrometheus(tb testing.TB) *Prometheus {
	tb.Helper()
	bin := findBinary(tb, "prometheus", "prometheus")
	dir := tb.TempDir()
	conf := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(conf, []byte("global:\n  scrape_interval: 1h\n  evaluation_interval: 1h\nscrape_configs: []\n"), 0o600); err != nil {
		tb.Fatal(err)
	}
	addr := freeAddr(tb)
	p := startProcess(tb, bin,
		"--config.file="+conf,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--web.enable-remote-write-receiver",
		"--log.level=warn",
	)
	base := "http://" + addr
	p.waitReady(tb, base+"/-/ready")
	return &Prometheus{URL: base, WriteURL: base + "/api/v1/write", proc: p}
}

// Query evaluates an instant PromQL query at now and returns its series:
// a vector gives one sample per series, a matrix (e.g. metric[10m]) every
// sample in the range.
func (p *Prometheus) Query(tb testing.TB, promql string) []Series {
	tb.Helper()
	s, err := queryAPI(p.URL, promql, time.Now())
	if err != nil {
		tb.Fatalf("prometheus query %q: %v\noutput:\n%s", promql, err, p.proc.out)
	}
	return s
}

// queryAPI runs /api/v1/query on a Prometheus-compatible API.
func queryAPI(base, promql string, at time.Time) ([]Series, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	q := url.Values{"query": {promql}, "time": {strconv.FormatFloat(float64(at.UnixMilli())/1000, 'f', 3, 64)}}
	body, err := getBody(ctx, base+"/api/v1/query?"+q.Encode())
	if err != nil {
		return nil, err
	}
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric map[string]string `json:"metric"`
				Value  []any             `json:"value"`
				Values [][]any           `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("decode %s: %w", body, err)
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("status %s: %s", r.Status, r.Error)
	}
	var out []Series
	for _, res := range r.Data.Result {
		s := Series{Labels: res.Metric}
		pairs := res.Values
		if res.Value != nil {
			pairs = [][]any{res.Value}
		}
		for _, pair := range pairs {
			smp, err := apiSample(pair)
			if err != nil {
				return nil, err
			}
			s.Samples = append(s.Samples, smp)
		}
		out = append(out, s)
	}
	return out, nil
}

// apiSample decodes a [<seconds float>, "<value>"] pair.
func apiSample(pair []any) (Sample, error) {
	if len(pair) != 2 {
		return Sample{}, fmt.Errorf("sample %v: want [time, value]", pair)
	}
	ts, ok1 := pair[0].(float64)
	vs, ok2 := pair[1].(string)
	if !ok1 || !ok2 {
		return Sample{}, fmt.Errorf("sample %v: want [number, string]", pair)
	}
	v, err := parseValue(vs)
	if err != nil {
		return Sample{}, fmt.Errorf("sample %v: %w", pair, err)
	}
	return Sample{TimestampMs: int64(math.Round(ts * 1000)), Value: v}, nil
}
