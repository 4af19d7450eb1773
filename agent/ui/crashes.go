package ui

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"

	"github.com/goroscope/goroscope/pkg/crash"
	"github.com/goroscope/goroscope/pkg/store"
)

// Crash answer bounds: the newest records listed, and each record's size.
const (
	maxCrashRecords     = 200
	maxCrashRecordBytes = 1 << 20
)

// CrashesAnswer is the crashes endpoint's answer.
type CrashesAnswer struct {
	// Crashes are the records, the newest first.
	Crashes []crash.Record `json:"crashes"`
	// Skipped counts records that could not be read.
	Skipped int `json:"skipped,omitempty"`
}

// crashes lists the stored crash records (pkg/crash.Record), the newest
// first: of one service (service=, any bytes; "" matches every service),
// in [from, to).
func (s *server) crashes(r *http.Request) (any, error) {
	from, to, err := parseRange(r)
	if err != nil {
		return nil, err
	}
	q := r.URL.Query()
	service, byService := q.Get("service"), q.Has("service")
	ms, err := s.src.List(store.Query{Kind: store.KindCrash, From: from, To: to, Limit: maxStoredProcessEntries})
	if err != nil {
		return nil, fmt.Errorf("list crash records: %w", err)
	}
	slices.SortStableFunc(ms, func(a, b store.Meta) int { return b.Time.Compare(a.Time) })
	ans := &CrashesAnswer{Crashes: []crash.Record{}}
	for _, m := range ms {
		if byService && m.Process.ServiceName != service {
			continue
		}
		if len(ans.Crashes) == maxCrashRecords {
			break
		}
		var rec crash.Record
		b, err := s.src.Read(m.ID)
		if err == nil && len(b) > maxCrashRecordBytes {
			err = fmt.Errorf("crash record %d is %d bytes, over %d", m.ID, len(b), maxCrashRecordBytes)
		}
		if err == nil {
			err = json.Unmarshal(b, &rec)
		}
		if err != nil {
			s.log.Warn("ui: crash record left out", "id", m.ID, "err", err)
			ans.Skipped++
			continue
		}
		ans.Crashes = append(ans.Crashes, rec)
	}
	return ans, nil
}
