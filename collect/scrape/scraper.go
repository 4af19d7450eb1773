package scrape

import (
	"bytes"
	"context"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net/http"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/pprof/profile"

	"github.com/goroscope/goroscope/pkg/goroutinedump"
	"github.com/goroscope/goroscope/pkg/httpconf"
	"github.com/goroscope/goroscope/pkg/snapshot"
)

// leakReprobe is how long a target that lacks /debug/pprof/goroutineleak
// is not asked for it again (unless it restarts).
const leakReprobe = time.Hour

// maxCmdlineBytes bounds /debug/pprof/cmdline.
const maxCmdlineBytes = 64 << 10

// Options are the scraper's settings that do not come from the
// configuration file.
type Options struct {
	// Logger receives errors (once per new error per profile, repeats at
	// debug level), recoveries and restarts; nil discards.
	Logger *slog.Logger
	// Version is goroscope's version for the User-Agent header.
	Version string
}

// Scraper collects profiles from the configured targets.
type Scraper struct {
	interval time.Duration
	slots    chan struct{} // bounds responses being read and decoded
	log      *slog.Logger
	m        *metrics
	targets  []*target
	emitMu   sync.Mutex
}

// Result is one collection cycle of one target.
type Result struct {
	// Target is the target's name.
	Target string
	// Labels are service_name, instance (the target's name) and the
	// target's configured labels, for every profile of the result.
	Labels map[string]string
	// Time is when the cycle started.
	Time time.Time
	// Profiles are the collected pprof profiles, in AllKinds order.
	Profiles []Profile
	// Snapshot is the goroutine dump as a snapshot (nil when the goroutine
	// profile is not collected or failed). Fold it like a walker's
	// snapshot: fold.Goroutines, fold.GoroutineWall, fold.ProcessSeries.
	Snapshot *snapshot.Snapshot
	// Errors are the failed collections, one per profile.
	Errors []*Error
	// Restarted is non-empty when the target restarted since the previous
	// cycle: why the scraper concluded so. Delta profiles are then missing
	// from this result and start again from the next cycle.
	Restarted string
}

// Profile is one collected profile.
type Profile struct {
	Kind Kind
	// Name is the name to push it under (Kind.ProfileName).
	Name    string
	Profile *profile.Profile
	// Delta is set for heap, mutex and block: their cumulative sample types
	// hold the change since the previous cycle, not totals since the
	// process started. Push them with Pyroscope's __delta__="false" label
	// so that the server does not subtract again.
	Delta bool
}

// target is one configured target and what the scraper remembers of it.
type target struct {
	r      resolved
	client *http.Client

	mu          sync.Mutex // one cycle at a time; guards the fields below
	bases       map[Kind]*baseline
	noLeakUntil time.Time
	exe         string
	cmdline     cmdlineState
	lastErr     map[Kind]string
}

type cmdlineState int

const (
	cmdlineUnknown cmdlineState = iota
	cmdlineKnown
	cmdlineUnavailable
)

// New validates cfg and builds the HTTP clients.
func New(cfg Config, o Options) (*Scraper, error) {
	set, rs, err := cfg.resolve()
	if err != nil {
		return nil, fmt.Errorf("pprof scrape config: %w", err)
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Scraper{
		interval: set.interval,
		slots:    make(chan struct{}, set.concurrency),
		log:      log,
		m:        newMetrics(),
	}
	for _, r := range rs {
		c, err := httpconf.NewClient(r.http, httpconf.ClientOptions{Version: o.Version, Origin: r.base})
		if err != nil {
			return nil, fmt.Errorf("pprof scrape target %s: %w", r.Name, err)
		}
		s.targets = append(s.targets, &target{r: r, client: c, bases: map[Kind]*baseline{}, lastErr: map[Kind]string{}})
	}
	return s, nil
}

// Close closes the idle connections to the targets (Run does so when it
// returns).
func (s *Scraper) Close() {
	for _, t := range s.targets {
		t.client.CloseIdleConnections()
	}
}

// Interval is the collection interval.
func (s *Scraper) Interval() time.Duration { return s.interval }

// Targets returns the targets' names in configuration order.
func (s *Scraper) Targets() []string {
	out := make([]string, len(s.targets))
	for i, t := range s.targets {
		out[i] = t.r.Name
	}
	return out
}

// Run collects every target once per interval until ctx ends, each target
// on its own schedule (spread over the interval by a hash of its name), and
// hands each cycle's Result to emit. emit is never called concurrently; a
// slow emit delays the other targets' results, not their collection.
// Run returns ctx's error once every cycle in progress has stopped.
func (s *Scraper) Run(ctx context.Context, emit func(Result)) error {
	var wg sync.WaitGroup
	for _, t := range s.targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.loop(ctx, t, emit)
		}()
	}
	wg.Wait()
	s.Close()
	return ctx.Err()
}

func (s *Scraper) loop(ctx context.Context, t *target, emit func(Result)) {
	h := fnv.New64a()
	h.Write([]byte(t.r.Name))
	offset := time.Duration(h.Sum64() % uint64(s.interval))
	timer := time.NewTimer(offset)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return
	case <-timer.C:
	}
	tick := time.NewTicker(s.interval)
	defer tick.Stop()
	for {
		res := s.cycle(ctx, t)
		if ctx.Err() != nil {
			return // a cycle cut short by shutdown is not a result
		}
		s.emitMu.Lock()
		emit(res)
		s.emitMu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-tick.C: // a cycle longer than the interval skips ticks
		}
	}
}

// Scrape runs one cycle of every target, concurrently, and returns the
// results in configuration order. It shares state with Run (baselines of
// delta profiles), so a cycle of Scrape counts as a cycle of Run.
func (s *Scraper) Scrape(ctx context.Context) []Result {
	out := make([]Result, len(s.targets))
	var wg sync.WaitGroup
	for i, t := range s.targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = s.cycle(ctx, t)
		}()
	}
	wg.Wait()
	return out
}

// acquire takes a decode slot; the returned function gives it back.
func (s *Scraper) acquire(ctx context.Context) (func(), error) {
	select {
	case s.slots <- struct{}{}:
		return func() { <-s.slots }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// collected is the outcome of one request.
type collected struct {
	kind Kind
	prof *profile.Profile
	agg  *aggregate // of prof, for cumulative kinds
	idx  []int      // of the cumulative types in prof
	snap *snapshot.Snapshot
	at   time.Time // when the response was complete
	err  *Error
}

// cycle collects every profile of t once: the CPU profile in the
// background for its duration, the others one after the other (a target
// is asked one thing at a time, besides its CPU profile).
func (s *Scraper) cycle(ctx context.Context, t *target) Result {
	t.mu.Lock()
	defer t.mu.Unlock()
	res := Result{Target: t.r.Name, Time: time.Now()}
	if t.cmdline == cmdlineUnknown {
		s.readCmdline(ctx, t)
	}

	var cpu collected
	var cpuDone chan struct{}
	if slices.Contains(t.r.kinds, KindCPU) {
		cpuDone = make(chan struct{})
		go func() {
			defer close(cpuDone)
			cpu = s.collect(ctx, t, KindCPU)
		}()
	}
	var got []collected
	for _, k := range t.r.kinds {
		if k == KindCPU || k == KindGoroutineLeak && time.Now().Before(t.noLeakUntil) {
			continue
		}
		got = append(got, s.collect(ctx, t, k))
	}
	if cpuDone != nil {
		<-cpuDone
		got = append([]collected{cpu}, got...)
	}
	for i := range got {
		if ctx.Err() != nil {
			break // stopping cut the requests short: no failure of the target's
		}
		s.account(t, &got[i])
	}

	// Cumulative profiles: a restart seen in any of them resets them all.
	for i := range got {
		c := &got[i]
		if c.prof == nil || !c.kind.cumulative() {
			continue
		}
		types := c.kind.cumulativeTypes()
		c.agg, c.idx = aggregateSamples(c.prof), indices(c.prof, types)
		if b := t.bases[c.kind]; b != nil && res.Restarted == "" {
			if why := b.restartEvidence(c.prof, c.agg, c.idx, types); why != "" {
				res.Restarted = fmt.Sprintf("%s profile: %s", c.kind, why)
			}
		}
	}
	if res.Restarted != "" {
		s.log.Info("pprof target restarted; delta profiles start again from this collection", "target", t.r.Name, "evidence", res.Restarted)
		s.m.restarts.WithLabelValues(t.r.Name).Inc()
		clear(t.bases)
		t.noLeakUntil = time.Time{}
		s.m.unsupported.WithLabelValues(t.r.Name, string(KindGoroutineLeak)).Set(0)
		t.cmdline = cmdlineUnknown
	}

	for _, c := range got {
		if c.err != nil {
			res.Errors = append(res.Errors, c.err)
		}
		if c.snap != nil { // a partial dump comes with an error
			res.Snapshot = c.snap
		}
		switch {
		case c.prof == nil:
		case c.kind.cumulative():
			next := newBaseline(c.prof, c.agg, c.idx, c.at)
			if b := t.bases[c.kind]; b != nil {
				res.Profiles = append(res.Profiles, Profile{Kind: c.kind, Name: c.kind.ProfileName(), Profile: b.delta(c.prof, c.agg, c.idx, c.at), Delta: true})
			}
			t.bases[c.kind] = next
		default:
			res.Profiles = append(res.Profiles, Profile{Kind: c.kind, Name: c.kind.ProfileName(), Profile: c.prof})
		}
	}
	if res.Snapshot != nil {
		res.Snapshot.Exe = t.exe
	}
	res.Labels = t.labels()
	return res
}

// labels are the labels of every profile of t.
func (t *target) labels() map[string]string {
	l := make(map[string]string, len(t.r.Labels)+2)
	for k, v := range t.r.Labels {
		l[k] = v
	}
	l["instance"] = t.r.Name
	switch {
	case t.r.ServiceName != "":
		l["service_name"] = t.r.ServiceName
	case t.exe != "":
		l["service_name"] = path.Base(t.exe)
	default:
		l["service_name"] = t.r.Name
	}
	return l
}

func indices(p *profile.Profile, types []valueType) []int {
	idx := make([]int, len(types))
	for i, vt := range types {
		idx[i] = typeIndex(p, vt)
	}
	return idx
}

// url is the address of kind k's endpoint with its query.
func (t *target) url(k Kind) string {
	u := *t.r.base
	u.Path += k.path()
	switch k {
	case KindCPU:
		u.RawQuery = fmt.Sprintf("seconds=%d", int(t.r.cpuDuration/time.Second))
	case KindGoroutine:
		u.RawQuery = "debug=2"
	}
	return u.String()
}

// collect requests one profile and decodes it. It only reads t's
// configuration: the CPU profile is collected while the cycle's goroutine
// collects the others.
func (s *Scraper) collect(ctx context.Context, t *target, k Kind) collected {
	u := t.url(k)
	timeout := t.r.timeout
	if k == KindCPU {
		timeout += t.r.cpuDuration
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	s.m.requests.WithLabelValues(t.r.Name, string(k)).Inc()
	start := time.Now()
	c := collected{kind: k}
	err := func() error {
		resp, release, err := fetch(rctx, t.client, u, s.acquire)
		if err != nil {
			return err
		}
		defer release()
		c.at = time.Now()
		if k == KindGoroutine {
			if !bytes.HasPrefix(resp.body, []byte("goroutine ")) {
				return classify(ReasonNotPprof, fmt.Errorf("not a goroutine dump (Content-Type %q), it starts with %s; check the URL and that the program serves net/http/pprof there", resp.contentType, preview(resp.body)))
			}
			gs, perr := goroutinedump.Parse(bytes.NewReader(resp.body))
			if perr != nil && len(gs) == 0 {
				return classify(ReasonParse, perr)
			}
			c.snap = Snapshot(gs, start, c.at.Sub(start))
			if perr != nil {
				return classify(ReasonPartialDump, fmt.Errorf("kept the %d goroutines before the error: %w", len(gs), perr))
			}
			return nil
		}
		p, err := decodeProfile(resp, t.r.maxProfile)
		if err != nil {
			return err
		}
		if err := checkTypes(k, p); err != nil {
			return err
		}
		c.prof = p
		return nil
	}()
	s.m.duration.WithLabelValues(t.r.Name, string(k)).Set(time.Since(start).Seconds())
	if err != nil {
		c.err = &Error{Target: t.r.Name, Kind: k, URL: u, Reason: reasonOf(err), Err: err}
	}
	return c
}

// account records the outcome of one collection of t in its state, the
// metrics and the log. It runs on the cycle's goroutine, after the
// collections, so that only one goroutine touches t.
func (s *Scraper) account(t *target, c *collected) {
	k := c.kind
	if c.err == nil {
		if t.lastErr[k] != "" {
			s.log.Info("pprof scrape recovered", "target", t.r.Name, "profile", k)
			delete(t.lastErr, k)
		}
		if k == KindGoroutineLeak {
			s.m.unsupported.WithLabelValues(t.r.Name, string(k)).Set(0)
		}
		s.m.lastSuccess.WithLabelValues(t.r.Name, string(k)).Set(float64(time.Now().UnixNano()) / 1e9)
		return
	}
	if k == KindGoroutineLeak && c.err.Reason == ReasonNotFound {
		// Not an error: the target was built without the experiment.
		c.err = nil
		t.noLeakUntil = time.Now().Add(leakReprobe)
		s.m.unsupported.WithLabelValues(t.r.Name, string(k)).Set(1)
		s.log.Info("pprof target does not offer the goroutineleak profile (Go 1.26 built with GOEXPERIMENT=goroutineleakprofile); asking again in an hour or after a restart", "target", t.r.Name)
		return
	}
	s.m.errors.WithLabelValues(t.r.Name, string(k), c.err.Reason).Inc()
	msg := c.err.Error()
	if t.lastErr[k] != msg {
		s.log.Warn("pprof scrape failed", "target", t.r.Name, "profile", k, "reason", c.err.Reason, "err", c.err)
	} else {
		s.log.Debug("pprof scrape failed again", "target", t.r.Name, "profile", k, "reason", c.err.Reason, "err", c.err)
	}
	t.lastErr[k] = msg
}

// readCmdline learns the target's executable from /debug/pprof/cmdline
// (os.Args joined by NUL bytes); failures only leave it unknown.
func (s *Scraper) readCmdline(ctx context.Context, t *target) {
	u := *t.r.base
	u.Path += "/debug/pprof/cmdline"
	rctx, cancel := context.WithTimeout(ctx, t.r.timeout)
	defer cancel()
	resp, release, err := fetch(rctx, t.client, u.String(), func(context.Context) (func(), error) { return func() {}, nil })
	if err != nil {
		if r := reasonOf(err); r == ReasonNotFound || r == ReasonStatus {
			t.cmdline = cmdlineUnavailable // asked again after a restart
		}
		s.log.Debug("pprof target's cmdline unavailable", "target", t.r.Name, "err", err)
		return
	}
	defer release()
	body := resp.body
	if len(body) > maxCmdlineBytes || bytes.HasPrefix(bytes.TrimSpace(body), []byte("<")) {
		t.cmdline = cmdlineUnavailable // not what net/http/pprof serves
		return
	}
	argv0, _, _ := strings.Cut(string(body), "\x00")
	argv0, _, _ = strings.Cut(argv0, "\n")
	if argv0 == "" || !labelValueOK(path.Base(argv0)) || len(argv0) > 4096 {
		t.cmdline = cmdlineUnavailable
		return
	}
	t.exe = argv0
	t.cmdline = cmdlineKnown
}
