package ui

import (
	"bytes"
	"encoding/json"
	"io"
	"testing"

	"github.com/klauspost/compress/gzip"

	"github.com/goroscope/goroscope/pkg/snapshot"
	"github.com/goroscope/goroscope/pkg/store"
)

// readSnapshot reads snapshot entry m whole, as openSnapshot streams it.
func readSnapshot(s *server, m store.Meta) (*snapshot.Snapshot, error) {
	st, err := s.openSnapshot(m)
	if err != nil {
		return nil, err
	}
	var gs []snapshot.Goroutine
	for {
		g, err := st.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		gs = append(gs, snapshot.KeepGoroutine(g))
	}
	out := *st.Header()
	if out.Goroutines != nil {
		out.Goroutines = append(out.Goroutines, gs...)
	}
	return &out, nil
}

// TestLoadSnapshotEncodings: snapshot entries load from the binary form
// the agent writes and from the JSON form older stores hold.
func TestLoadSnapshotEncodings(t *testing.T) {
	st := openStore(t)
	want := snapA()
	proc := store.Process{PID: 42, StartTime: 7, ServiceName: "svc"}
	gz := func(b []byte) []byte {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		if _, err := zw.Write(b); err != nil {
			t.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	js, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		data []byte
		err  bool
	}{
		{"binary", gz(snapshotBinary(want)), false},
		{"json", gz(js), false},
		{"garbage", gz([]byte("GRSNAP1\n\xff")), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := st.Append(store.Entry{Process: proc, Kind: store.KindSnapshot, Time: want.Time, Data: tc.data})
			if err != nil {
				t.Fatal(err)
			}
			got, err := readSnapshot(newServer(testSource{Store: st}, Options{}), m)
			if tc.err {
				if err == nil {
					t.Fatalf("loaded a corrupt entry: %+v", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Goroutines) != len(want.Goroutines) || got.Counts != want.Counts {
				t.Fatalf("loaded %d goroutines %+v, want %d %+v", len(got.Goroutines), got.Counts, len(want.Goroutines), want.Counts)
			}
			for i := range want.Goroutines {
				g, w := got.Goroutines[i], want.Goroutines[i]
				if g.ID != w.ID || g.WaitReason != w.WaitReason || len(g.Frames) != len(w.Frames) {
					t.Errorf("goroutine %d: %+v, want %+v", i, g, w)
				}
			}
		})
	}
}
