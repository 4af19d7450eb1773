package ui

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/goroscope/goroscope/pkg/findings"
	"github.com/goroscope/goroscope/pkg/store"
)

// Bounds of the findings endpoint. A findings entry holds the findings of
// one snapshot (a few KiB each: an example stack, objects, labels); the
// history reads the newest entries of the range, one at a time, one
// finding at a time.
const (
	// maxFindingsEntries bounds the stored findings entries one request
	// reads: about 5.5 hours of history at the default 10 s snapshot
	// interval. Older entries of the range are not read (truncated).
	maxFindingsEntries = 2000
	// maxFindingsBytes bounds one findings entry's decompressed size: the
	// current findings are held whole. A larger entry is refused with 413
	// (the current one) or skipped (in the history).
	maxFindingsBytes = 4 << 20
	// maxFindingsReadBytes bounds the decompressed bytes one request
	// reads over all its entries: past it the history is truncated.
	maxFindingsReadBytes = 64 << 20
	// maxFindingsHistory bounds the findings (ids) the history lists; the
	// newest are kept, the others counted in omitted.
	maxFindingsHistory = 500
)

// FindingsAnswer is the findings endpoint's answer: the findings holding
// at the process's newest moment, and which findings held over a range of
// stored moments.
type FindingsAnswer struct {
	// Live is set when Findings are the live process's, judged at Time,
	// its last snapshot. Else they are the stored ones at Time, the
	// newest stored moment (before to=, when given), from Entry; none
	// when that moment had none (Entry is then absent, or older).
	Live     bool               `json:"live"`
	Time     time.Time          `json:"time"`
	Entry    *store.Meta        `json:"entry,omitempty"`
	Findings []findings.Finding `json:"findings"`
	// History is every finding stored in the range (from= and to=, the
	// newest maxFindingsEntries entries), those holding now first, then
	// the worst first, then the most recently seen.
	History []FindingHistory `json:"history"`
	// HistoryFrom and HistoryTo are the times of the oldest and newest
	// entries read; Entries how many were read.
	HistoryFrom time.Time `json:"history_from"`
	HistoryTo   time.Time `json:"history_to"`
	Entries     int       `json:"entries"`
	// Truncated is set when older entries of the range were not read
	// (the bounds above): a history item's first time is then a bound.
	Truncated bool `json:"truncated,omitempty"`
	// Skipped counts entries not read: larger than the UI's limit, or
	// dropped by the store's retention meanwhile.
	Skipped int `json:"skipped,omitempty"`
	// Omitted counts findings left out of History (maxFindingsHistory).
	Omitted int `json:"omitted,omitempty"`
}

// FindingHistory is one finding (by id) over the stored moments read.
type FindingHistory struct {
	ID   string `json:"id"`
	Kind string `json:"kind"`
	// Summary, Site, SiteID, Goroutines and FirstSeen are the newest
	// stored finding's (see findings.Finding).
	Summary    string        `json:"summary"`
	Site       findings.Site `json:"site"`
	SiteID     string        `json:"site_id"`
	Goroutines int           `json:"goroutines"`
	FirstSeen  time.Time     `json:"first_seen"`
	// First and Last are the oldest and newest stored moments it held
	// at; Moments counts the moments it held at.
	First   time.Time `json:"first"`
	Last    time.Time `json:"last"`
	Moments int       `json:"moments"`
	// Holding is set when it is among the answer's Findings.
	Holding bool `json:"holding"`
}

// findingBrief is the part of a stored finding the history keeps.
type findingBrief struct {
	ID         string        `json:"id"`
	Kind       string        `json:"kind"`
	Summary    string        `json:"summary"`
	Site       findings.Site `json:"site"`
	SiteID     string        `json:"site_id"`
	Goroutines int           `json:"goroutines"`
	FirstSeen  time.Time     `json:"first_seen"`
}

// storedFindings is a findings entry's payload (docs/findings-json.md).
type storedFindings struct {
	PID      int                `json:"pid"`
	Time     string             `json:"time"`
	Findings []findings.Finding `json:"findings"`
}

func (s *server) findingsAnswer(r *http.Request) (any, error) {
	k, err := processKey(r)
	if err != nil {
		return nil, err
	}
	from, to, err := parseRange(r)
	if err != nil {
		return nil, err
	}
	ans := &FindingsAnswer{Findings: []findings.Finding{}, History: []FindingHistory{}}
	budget := s.findingsReadBytes
	var cur *store.Meta
	live, isLive := s.liveProcess(k)
	if isLive && to.IsZero() {
		ans.Live, ans.Time = true, live.LastSnapshot
		ans.Findings = append(ans.Findings, live.Findings...)
	} else {
		if cur, err = s.currentFindings(k, to, ans, &budget); err != nil {
			return nil, err
		}
		if cur == nil && ans.Time.IsZero() && !isLive {
			return nil, notFound("nothing stored for pid %d (start %d)%s", k.PID, k.StartTime, beforeText(to))
		}
	}
	slices.SortStableFunc(ans.Findings, func(a, b findings.Finding) int {
		return cmp.Compare(findings.Severity(b.Kind), findings.Severity(a.Kind))
	})
	if err := s.findingsHistory(r.Context(), k, from, to, cur, ans, budget); err != nil {
		return nil, err
	}
	return ans, nil
}

func beforeText(to time.Time) string {
	if to.IsZero() {
		return ""
	}
	return " before " + to.Format(time.RFC3339Nano)
}

// liveProcess is the live process k, if the agent watches it.
func (s *server) liveProcess(k store.ProcessKey) (Process, bool) {
	for _, p := range s.src.Processes() {
		if p.Live && p.Key() == k {
			return p, true
		}
	}
	return Process{}, false
}

// currentFindings fills ans with the findings stored at process k's
// newest moment before to (any time when zero) and returns the entry
// they come from, nil when that moment had none. Findings entries are
// stored only when there are findings: a newer goroutines (or snapshot)
// entry means none held at its moment.
func (s *server) currentFindings(k store.ProcessKey, to time.Time, ans *FindingsAnswer, budget *int64) (*store.Meta, error) {
	ms, err := s.src.List(store.Query{Process: k, Kind: store.KindFindings, To: to, Limit: 1})
	if err != nil {
		return nil, fmt.Errorf("list findings entries of pid %d: %w", k.PID, err)
	}
	var newest time.Time
	for _, kind := range []string{store.KindGoroutines, store.KindSnapshot} {
		moments, err := s.src.List(store.Query{Process: k, Kind: kind, To: to, Limit: 1})
		if err != nil {
			return nil, fmt.Errorf("list %s entries of pid %d: %w", kind, k.PID, err)
		}
		if len(moments) > 0 {
			newest = moments[0].Time
			break
		}
	}
	if len(ms) == 0 || newest.After(ms[0].Time) {
		ans.Time = newest
		return nil, nil
	}
	m := ms[0]
	var entry storedFindings
	if err := s.readFindings(m, maxFindingsBytes, budget, func(r io.Reader) error { return json.NewDecoder(r).Decode(&entry) }); err != nil {
		return nil, err
	}
	ans.Time, ans.Entry = m.Time, &m
	if entry.Findings != nil {
		ans.Findings = entry.Findings
	}
	return &m, nil
}

// findingsHistory reads the findings entries of process k in [from, to),
// the newest first, into ans.History. The entry cur was read already:
// its findings are ans.Findings.
func (s *server) findingsHistory(ctx context.Context, k store.ProcessKey, from, to time.Time, cur *store.Meta, ans *FindingsAnswer, budget int64) error {
	ms, err := s.src.List(store.Query{Process: k, Kind: store.KindFindings, From: from, To: to, Limit: s.findingsEntries + 1})
	if err != nil {
		return fmt.Errorf("list findings entries of pid %d: %w", k.PID, err)
	}
	if len(ms) > s.findingsEntries {
		ms, ans.Truncated = ms[1:], true
	}
	byID := map[string]*FindingHistory{}
	var order []*FindingHistory
	note := func(at time.Time, b *findingBrief) {
		h := byID[b.ID]
		if h == nil {
			if len(byID) >= maxFindingsHistory {
				ans.Omitted++
				byID[b.ID] = &FindingHistory{} // counted once, not listed
				return
			}
			h = &FindingHistory{ID: b.ID, Kind: b.Kind, Summary: b.Summary, Site: b.Site, SiteID: b.SiteID,
				Goroutines: b.Goroutines, FirstSeen: b.FirstSeen, Last: at}
			byID[b.ID] = h
			order = append(order, h)
		}
		if h.ID == "" || h.First.Equal(at) { // omitted, or twice in one entry
			return
		}
		h.First = at
		h.Moments++
	}
	var briefs []findingBrief // one entry's, noted once it is read whole
read:
	for i := len(ms) - 1; i >= 0; i-- {
		m := ms[i]
		if err := ctx.Err(); err != nil {
			return context.Cause(ctx)
		}
		briefs = briefs[:0]
		if cur != nil && m.ID == cur.ID {
			for j := range ans.Findings {
				f := &ans.Findings[j]
				briefs = append(briefs, findingBrief{ID: f.ID, Kind: f.Kind, Summary: f.Summary, Site: f.Site, SiteID: f.SiteID,
					Goroutines: f.Goroutines, FirstSeen: f.FirstSeen})
			}
		} else {
			if budget <= 0 {
				ans.Truncated = true
				break
			}
			limit := min(int64(maxFindingsBytes), budget)
			err := s.readFindings(m, limit, &budget, func(r io.Reader) error {
				return decodeFindingBriefs(r, func(b *findingBrief) { briefs = append(briefs, *b) })
			})
			if err != nil {
				tooLarge := statusOf(err) == http.StatusRequestEntityTooLarge
				switch {
				case tooLarge && limit < maxFindingsBytes: // the request's read budget ran out
					ans.Truncated = true
					break read
				case tooLarge || errors.Is(err, store.ErrNotFound):
					ans.Skipped++
					continue
				default:
					return err
				}
			}
		}
		for j := range briefs {
			note(m.Time, &briefs[j])
		}
		ans.Entries++
		if ans.HistoryTo.IsZero() {
			ans.HistoryTo = m.Time
		}
		ans.HistoryFrom = m.Time
	}
	holding := map[string]bool{}
	for _, f := range ans.Findings {
		holding[f.ID] = true
	}
	for _, h := range order {
		h.Holding = holding[h.ID]
		ans.History = append(ans.History, *h)
	}
	slices.SortStableFunc(ans.History, func(a, b FindingHistory) int {
		if a.Holding != b.Holding {
			if a.Holding {
				return -1
			}
			return 1
		}
		return cmp.Or(cmp.Compare(findings.Severity(b.Kind), findings.Severity(a.Kind)), b.Last.Compare(a.Last), strings.Compare(a.ID, b.ID))
	})
	return nil
}

// readFindings opens findings entry m, capped at limit bytes decompressed,
// hands it to decode, and takes what was read from budget.
func (s *server) readFindings(m store.Meta, limit int64, budget *int64, decode func(io.Reader) error) error {
	r, _, err := openPayload(s.src, m, limit, "findings (one findings entry, or what one request reads)")
	if err != nil {
		return err
	}
	cr := &countingReader{r: r}
	err = decode(cr)
	*budget -= cr.n
	if err != nil {
		if statusOf(err) != http.StatusInternalServerError {
			return err
		}
		return fmt.Errorf("parse %s entry %d: %w", m.Kind, m.ID, err)
	}
	return nil
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// decodeFindingBriefs reads a findings entry's JSON one finding at a
// time, handing each to each: only one finding is held at a time.
func decodeFindingBriefs(r io.Reader, each func(*findingBrief)) error {
	dec := json.NewDecoder(r)
	if err := expectDelim(dec, '{'); err != nil {
		return err
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		if key, _ := tok.(string); key != "findings" {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return err
			}
			continue
		}
		tok, err = dec.Token()
		if err != nil {
			return err
		}
		if tok == nil { // "findings": null
			continue
		}
		if d, ok := tok.(json.Delim); !ok || d != '[' {
			return fmt.Errorf("findings: want an array, got %v", tok)
		}
		for dec.More() {
			var b findingBrief
			if err := dec.Decode(&b); err != nil {
				return err
			}
			each(&b)
		}
		if err := expectDelim(dec, ']'); err != nil {
			return err
		}
	}
	return expectDelim(dec, '}')
}

func expectDelim(dec *json.Decoder, want json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != want {
		return fmt.Errorf("want %q, got %v", want, tok)
	}
	return nil
}
