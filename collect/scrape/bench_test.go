package scrape

import (
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/goroscope/goroscope/test/targettest"
)

// BenchmarkHeapDelta measures the scraper's work on one heap profile of a
// real program: decode, sum by key, restart check, baseline and delta.
func BenchmarkHeapDelta(b *testing.B) {
	tgt := targettest.Start(b, targettest.Build(b, "pprofload", targettest.BuildOpts{}), "-spin", "0")
	resp, err := http.Get(tgt.URL("/debug/pprof/heap"))
	if err != nil {
		b.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		b.Fatal(err)
	}
	types := KindHeap.cumulativeTypes()
	decode := func() (*aggregateInput, error) {
		p, err := decodeProfile(response{body: body}, DefaultMaxProfileBytes)
		if err != nil {
			return nil, err
		}
		idx := indices(p, types)
		return &aggregateInput{p: p, a: aggregateSamples(p), idx: idx}, nil
	}
	first, err := decode()
	if err != nil {
		b.Fatal(err)
	}
	base := newBaseline(first.p, first.a, first.idx, time.Now())
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		in, err := decode()
		if err != nil {
			b.Fatal(err)
		}
		if why := base.restartEvidence(in.p, in.a, in.idx, types); why != "" {
			b.Fatal(why)
		}
		newBaseline(in.p, in.a, in.idx, time.Now())
		base.delta(in.p, in.a, in.idx, time.Now())
	}
	b.ReportMetric(float64(len(first.p.Sample)), "samples/op")
}

type aggregateInput struct {
	p   *profile.Profile
	a   *aggregate
	idx []int
}
