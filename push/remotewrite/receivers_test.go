package remotewrite_test

import (
	"context"
	"maps"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"

	"github.com/goroscope/goroscope/pkg/httpconf"
	"github.com/goroscope/goroscope/push/endpoint"
	"github.com/goroscope/goroscope/push/remotewrite"
	"github.com/goroscope/goroscope/push/senderr"
	"github.com/goroscope/goroscope/test/receivers"
)

// pushed is what the end-to-end tests write: two series of one metric with
// five samples each, 10s apart, ending 10s before now, plus external labels.
type pushed struct {
	start, end time.Time
	want       map[string][]receivers.Sample // by state label
}

func pushGoroutines(t *testing.T, writeURL string) pushed {
	t.Helper()
	c, err := remotewrite.New(remotewrite.Options{
		HTTP:           endpoint.Config{URL: writeURL, HTTPClientConfig: httpconf.HTTPClientConfig{Timeout: 10 * time.Second}},
		ExternalLabels: map[string]string{"cluster": "test", "service_name": "ext-default"},
	})
	if err != nil {
		t.Fatal(err)
	}
	end := time.Now().Add(-10 * time.Second).Truncate(time.Second)
	p := pushed{end: end, start: end.Add(-40 * time.Second), want: map[string][]receivers.Sample{}}
	var items [][]byte
	for si, state := range []string{"running", "chan_receive"} {
		var samples []prompb.Sample
		for i := range 5 {
			ts := p.start.Add(time.Duration(i) * 10 * time.Second).UnixMilli()
			v := float64(100*(si+1) + i)
			samples = append(samples, prompb.Sample{Timestamp: ts, Value: v})
			p.want[state] = append(p.want[state], receivers.Sample{TimestampMs: ts, Value: v})
		}
		slices.Reverse(samples) // EncodeSeries puts them in time order
		item, err := remotewrite.EncodeSeriesMap(map[string]string{
			"__name__": "goroscope_goroutines", "service_name": "population", "state": state,
		}, samples)
		if err != nil {
			t.Fatal(err)
		}
		items = append(items, item)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Send(ctx, items); err != nil {
		t.Fatalf("Send: %v", err)
	}
	return p
}

func checkSeries(t *testing.T, got []receivers.Series, p pushed) {
	t.Helper()
	if len(got) != len(p.want) {
		t.Fatalf("read back %d series, want %d: %+v", len(got), len(p.want), got)
	}
	for _, s := range got {
		state := s.Labels["state"]
		wantLabels := map[string]string{
			"__name__": "goroscope_goroutines", "cluster": "test", "service_name": "population", "state": state,
		}
		if !maps.Equal(s.Labels, wantLabels) {
			t.Errorf("labels %v, want %v", s.Labels, wantLabels)
		}
		sort.Slice(s.Samples, func(i, j int) bool { return s.Samples[i].TimestampMs < s.Samples[j].TimestampMs })
		if !slices.Equal(s.Samples, p.want[state]) {
			t.Errorf("state %s: samples %v, want %v", state, s.Samples, p.want[state])
		}
	}
}

func TestPrometheusReceiver(t *testing.T) {
	prom := receivers.StartPrometheus(t)
	p := pushGoroutines(t, prom.WriteURL)
	checkSeries(t, prom.Query(t, `goroscope_goroutines[2m]`), p)

	// Instant query: the latest sample of each series.
	inst := prom.Query(t, `sum(goroscope_goroutines)`)
	if len(inst) != 1 || len(inst[0].Samples) != 1 || inst[0].Samples[0].Value != 104+204 {
		t.Errorf("sum(goroscope_goroutines) = %+v, want 308", inst)
	}

	// A sample older than the head accepts is refused with a 400, not
	// retried; Prometheus says why.
	err := sendOne(t, prom.WriteURL, "goroscope_goroutines", p.start.Add(-time.Hour))
	if err == nil {
		t.Skip("this Prometheus accepted an out-of-order sample; nothing more to check")
	}
	se, ok := err.(*senderr.SendError)
	if !ok || se.Status != 400 || se.Retryable {
		t.Errorf("out-of-order sample: %v, want a permanent HTTP 400", err)
	}
}

func TestVictoriaMetricsReceiver(t *testing.T) {
	vm := receivers.StartVictoriaMetrics(t)
	p := pushGoroutines(t, vm.WriteURL)
	checkSeries(t, vm.Export(t, `{__name__="goroscope_goroutines"}`, p.start, p.end), p)
	checkSeries(t, vm.Query(t, `goroscope_goroutines[2m]`), p)
}

func sendOne(t *testing.T, url, name string, at time.Time) error {
	t.Helper()
	c, err := remotewrite.New(remotewrite.Options{HTTP: endpoint.Config{URL: url}})
	if err != nil {
		t.Fatal(err)
	}
	item, err := remotewrite.EncodeSeriesMap(map[string]string{"__name__": name, "service_name": "population", "state": "running"},
		[]prompb.Sample{{Timestamp: at.UnixMilli(), Value: 1}})
	if err != nil {
		t.Fatal(err)
	}
	return c.Send(context.Background(), [][]byte{item})
}
