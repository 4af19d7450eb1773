package ui

import (
	"reflect"
	"testing"
)

func TestSearchGoroutines(t *testing.T) {
	s := snapA() // ids 1-3 chan receive (handler=api), 10-11 mutex, 20 running
	tests := []struct {
		q             string
		f             Filter
		offset, limit int
		matched       int
		ids           []uint64
	}{
		{"", Filter{}, 0, 0, 6, []uint64{1, 2, 3, 10, 11, 20}},
		{"CHAN", Filter{}, 0, 0, 3, []uint64{1, 2, 3}},
		{"handler=api worker", Filter{}, 0, 0, 3, []uint64{1, 2, 3}},
		{"handler=api mutex", Filter{}, 0, 0, 0, []uint64{}},
		{"h.go:5", Filter{}, 0, 0, 2, []uint64{10, 11}},
		{"running", Filter{}, 0, 0, 1, []uint64{20}},
		{"20", Filter{}, 0, 0, 4, []uint64{1, 2, 3, 20}}, // id 20; chan.go:200 and w.go:20 in 1-3
		{"", Filter{WaitReason: "sync.Mutex.Lock"}, 0, 0, 2, []uint64{10, 11}},
		{"gopark", Filter{}, 1, 2, 5, []uint64{2, 3}},
		{"gopark", Filter{}, 10, 2, 5, []uint64{}},
	}
	for _, tt := range tests {
		p := SearchGoroutines(s, tt.f, tt.q, tt.offset, tt.limit)
		ids := []uint64{}
		for _, g := range p.Goroutines {
			ids = append(ids, g.ID)
		}
		if p.Total != 6 || p.Matched != tt.matched || !reflect.DeepEqual(ids, tt.ids) {
			t.Errorf("search %q %+v [%d:+%d]: total %d matched %d ids %v; want 6, %d, %v",
				tt.q, tt.f, tt.offset, tt.limit, p.Total, p.Matched, ids, tt.matched, tt.ids)
		}
	}
}
