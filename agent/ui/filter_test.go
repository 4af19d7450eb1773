package ui

import (
	"net/url"
	"reflect"
	"testing"

	"github.com/goroscope/goroscope/pkg/snapshot"
)

func TestParseFilter(t *testing.T) {
	tests := []struct {
		query   string
		want    Filter
		wantErr bool
	}{
		{"", Filter{}, false},
		{"state=waiting&wait_reason=chan+receive&wait_duration=%3C1s",
			Filter{State: "waiting", WaitReason: "chan receive", WaitDuration: "<1s"}, false},
		{"label=handler%3Dapi&label=k%3Da%3Db", Filter{Labels: []LabelFilter{{"handler", "api"}, {"k", "a=b"}}}, false},
		{"label=k%3D", Filter{Labels: []LabelFilter{{"k", ""}}}, false},
		{"site=0123456789ab&state=waiting", Filter{State: "waiting", Site: "0123456789ab"}, false},
		{"site=0123456789", Filter{}, true},
		{"site=0123456789AB", Filter{}, true},
		{"state=sleeping", Filter{}, true},
		{"wait_duration=5s", Filter{}, true},
		{"label=novalue", Filter{}, true},
		{"label=%3Dv", Filter{}, true},
		{"label=a=1&label=a=1&label=a=1&label=a=1&label=a=1&label=a=1&label=a=1&label=a=1&label=a=1&label=a=1&label=a=1&label=a=1&label=a=1&label=a=1&label=a=1&label=a=1&label=a=1", Filter{}, true},
	}
	for _, tt := range tests {
		q, err := url.ParseQuery(tt.query)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseFilter(q)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseFilter(%q) error = %v, want error %v", tt.query, err, tt.wantErr)
			continue
		}
		if !tt.wantErr && !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseFilter(%q) = %+v, want %+v", tt.query, got, tt.want)
		}
		if !tt.wantErr {
			back, err := ParseFilter(got.Query())
			if err != nil || !reflect.DeepEqual(back, got) {
				t.Errorf("ParseFilter(%q).Query() does not round-trip: %+v, %v", tt.query, back, err)
			}
		}
	}
}

func TestFilterMatch(t *testing.T) {
	g := snapshot.Goroutine{State: snapshot.StateWaiting, WaitReason: "chan receive", WaitingSeconds: 12,
		Labels: map[string]string{"handler": "api", "tenant": "a"}}
	labels := map[string][]string{"state": {"waiting"}, "wait_reason": {"chan receive"}, "wait_duration": {"10s-1m"},
		"handler": {"api"}, "tenant": {"a"}}
	tests := []struct {
		f    Filter
		want bool
	}{
		{Filter{}, true},
		{Filter{State: "waiting"}, true},
		{Filter{State: "running"}, false},
		{Filter{WaitReason: "chan receive"}, true},
		{Filter{WaitReason: "select"}, false},
		{Filter{WaitDuration: "10s-1m"}, true},
		{Filter{WaitDuration: "<1s"}, false},
		{Filter{Labels: []LabelFilter{{"handler", "api"}}}, true},
		{Filter{Labels: []LabelFilter{{"handler", "api"}, {"tenant", "b"}}}, false},
		{Filter{Labels: []LabelFilter{{"missing", ""}}}, false},
		{Filter{State: "waiting", WaitReason: "chan receive", WaitDuration: "10s-1m", Labels: []LabelFilter{{"tenant", "a"}}}, true},
	}
	for _, tt := range tests {
		if got := tt.f.MatchGoroutine(&g); got != tt.want {
			t.Errorf("%+v.MatchGoroutine = %v, want %v", tt.f, got, tt.want)
		}
		if got := tt.f.MatchLabels(labels); got != tt.want {
			t.Errorf("%+v.MatchLabels = %v, want %v", tt.f, got, tt.want)
		}
	}
}
