package remotewrite

import (
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"

	"github.com/goroscope/goroscope/push/endpoint"
)

// BenchmarkEncodeBatch measures what Send does before the network for a
// batch of 10,000 samples (1,000 series of 10 samples, 6 labels each):
// decode the items, add external labels, merge, marshal, snappy.
func BenchmarkEncodeBatch(b *testing.B) {
	items := benchItems(b, 1000, 10)
	raw := 0
	for _, it := range items {
		raw += len(it)
	}
	c, err := New(Options{HTTP: endpoint.Config{URL: "http://127.0.0.1:1"}, ExternalLabels: map[string]string{"cluster": "bench"}})
	if err != nil {
		b.Fatal(err)
	}
	var compressed int
	b.ReportAllocs()
	b.SetBytes(int64(raw))
	for b.Loop() {
		body, err := c.Encode(items)
		if err != nil {
			b.Fatal(err)
		}
		compressed = len(body)
	}
	b.ReportMetric(float64(compressed)/10000, "B/sample")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/10000, "ns/sample")
}

// BenchmarkEncodeSeries measures making the items: 1,000 series of 10
// samples per op.
func BenchmarkEncodeSeries(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		benchItems(b, 1000, 10)
	}
}

func benchItems(tb testing.TB, series, samples int) [][]byte {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	items := make([][]byte, 0, series)
	ss := make([]prompb.Sample, samples)
	for i := range series {
		for j := range ss {
			ss[j] = prompb.Sample{Timestamp: now + int64(j)*15000, Value: float64((i*7919+j*104729)%100003) + 0.25}
		}
		item, err := EncodeSeries([]prompb.Label{
			{Name: "__name__", Value: "goroscope_goroutines"},
			{Name: "service_name", Value: fmt.Sprintf("svc-%d", i%20)},
			{Name: "pid", Value: fmt.Sprint(1000 + i%50)},
			{Name: "state", Value: []string{"running", "runnable", "waiting", "syscall"}[i%4]},
			{Name: "wait_reason", Value: fmt.Sprintf("reason_%d", i%25)},
			{Name: "host", Value: "bench-host"},
		}, ss)
		if err != nil {
			tb.Fatal(err)
		}
		items = append(items, item)
	}
	return items
}
