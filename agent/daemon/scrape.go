package daemon

import (
	"context"
	"errors"
	"hash/fnv"
	"time"

	"github.com/goroscope/goroscope/collect/scrape"
	"github.com/goroscope/goroscope/pkg/findings"
	"github.com/goroscope/goroscope/pkg/fold"
	"github.com/goroscope/goroscope/pkg/store"
	"github.com/goroscope/goroscope/push/pyroscope"
)

// scrapeFold turns the pprof scraper's results into Outputs for the
// agent's sink: their profiles as they are, their goroutine dumps folded
// like the walker's snapshots. The scraper calls emit from one goroutine at
// a time.
type scrapeFold struct {
	a   *Agent
	enc encoder
	buf []byte
	// interval is the scraper's, for the first goroutine_wall of a target.
	interval time.Duration
	// last is each target's previous snapshot time, for goroutine_wall.
	last map[string]time.Time
	// limits bound each target's pprof label values across its dumps;
	// trackers judge its dumps into findings, said are those logged.
	limits   map[string]*fold.LabelLimiter
	trackers map[string]*findings.Tracker
	said     map[string]map[string]bool
}

// runScraper collects from the configured pprof endpoints until ctx is
// done. It owns s: s.Run closes it when it returns.
func (a *Agent) runScraper(ctx context.Context, s *scrape.Scraper) {
	f := &scrapeFold{a: a, interval: s.Interval(), last: map[string]time.Time{}, limits: map[string]*fold.LabelLimiter{},
		trackers: map[string]*findings.Tracker{}, said: map[string]map[string]bool{}}
	emit := func(r scrape.Result) { f.emit(ctx, r) }
	if err := s.Run(ctx, emit); err != nil && ctx.Err() == nil {
		a.log.Error("pprof scraper stopped", "err", err)
	}
}

// scrapeProcess is the store's identity of a scrape target: it has no pid,
// so its name stands in for the start time.
func scrapeProcess(r *scrape.Result) store.Process {
	h := fnv.New32a()
	h.Write([]byte(r.Target))
	return store.Process{PID: 0, StartTime: uint64(h.Sum32()), ServiceName: r.Labels["service_name"], Exe: r.Target}
}

// emit folds and encodes one scrape result and hands it to the sink.
func (s *scrapeFold) emit(ctx context.Context, r scrape.Result) {
	a := s.a
	proc := scrapeProcess(&r)
	var profs []namedProfile
	for _, p := range r.Profiles {
		np := namedProfile{name: p.Name, p: p.Profile, dur: time.Duration(p.Profile.DurationNanos)}
		if p.Delta {
			np.labels = map[string]string{pyroscope.LabelDelta: "false"}
		}
		profs = append(profs, np)
	}
	enc, err := encodeProfiles(&s.enc, profs)
	if err != nil {
		a.metrics.errors.WithLabelValues("encode").Inc()
		a.log.Warn("encode scraped profiles", "target", r.Target, "err", err)
	}
	if len(enc) > 0 {
		a.record(ctx, Output{Process: proc, Labels: r.Labels, Time: r.Time, Profiles: enc})
	}
	if r.Snapshot == nil {
		return
	}
	interval := s.interval
	if prev, ok := s.last[r.Target]; ok && r.Snapshot.Time.After(prev) {
		interval = r.Snapshot.Time.Sub(prev)
	}
	s.last[r.Target] = r.Snapshot.Time
	lim := s.limits[r.Target]
	if lim == nil {
		lim = fold.NewLabelLimiter(a.cfg.Limits.labelLimits())
		s.limits[r.Target] = lim
	}
	o, err := foldSnapshot(&s.enc, &s.buf, proc, r.Labels, r.Snapshot, interval, nil, lim, fold.Executable{})
	a.metrics.countLabelOverflows(r.Labels["service_name"], lim)
	tr := s.trackers[r.Target]
	if tr == nil {
		tr = findings.NewTracker(a.cfg.Findings.forService(r.Labels["service_name"]))
		s.trackers[r.Target] = tr
	}
	fs, ferr := a.addFindings(&o, &s.enc, tr, r.Snapshot, nil)
	err = errors.Join(err, ferr)
	s.said[r.Target] = a.sayFindings(s.said[r.Target], fs, "target", r.Target, "service_name", r.Labels["service_name"])
	if err != nil {
		a.metrics.errors.WithLabelValues("encode").Inc()
		a.log.Warn("encode scraped goroutines", "target", r.Target, "err", err)
	}
	a.metrics.snapshots.WithLabelValues("pprof").Inc()
	a.record(ctx, o)
}
