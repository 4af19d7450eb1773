package remotewrite

import (
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
)

// TestSampleItem: the item decodes to the named series with its sample,
// and the shard key depends on the series alone, not on the sample.
func TestSampleItem(t *testing.T) {
	at := time.UnixMilli(1700000000123)
	labels := map[string]string{"pid": "7", "state": "waiting"}
	item, key, err := SampleItem("goroscope_goroutines", labels, 42, at)
	if err != nil {
		t.Fatal(err)
	}
	_, key2, err := SampleItem("goroscope_goroutines", map[string]string{"state": "waiting", "pid": "7"}, 1, at.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	_, other, err := SampleItem("goroscope_goroutines", map[string]string{"pid": "7", "state": "running"}, 42, at)
	if err != nil {
		t.Fatal(err)
	}
	if key != key2 || key == other {
		t.Errorf("keys %x, %x (same series), %x (another): want equal, then different", key, key2, other)
	}
	var ts prompb.TimeSeries
	if err := ts.Unmarshal(item); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, l := range ts.Labels {
		got[l.Name] = l.Value
	}
	if len(got) != 3 || got["__name__"] != "goroscope_goroutines" || got["pid"] != "7" || got["state"] != "waiting" ||
		len(ts.Samples) != 1 || ts.Samples[0].Value != 42 || ts.Samples[0].Timestamp != at.UnixMilli() {
		t.Errorf("item decodes to %v %v", got, ts.Samples)
	}
	if _, _, err := SampleItem("bad name", labels, 1, at); err == nil {
		t.Error("an invalid metric name was accepted")
	}
}
