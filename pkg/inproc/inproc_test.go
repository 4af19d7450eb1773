package inproc_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"golang.org/x/sys/unix"

	"github.com/goroscope/goroscope/pkg/httpconf"
	"github.com/goroscope/goroscope/pkg/inproc"
	"github.com/goroscope/goroscope/push/endpoint"
	"github.com/goroscope/goroscope/test/eventually"
	"github.com/goroscope/goroscope/test/receivers"
)

// population is a known set of parked goroutines: chanN in parkOnChan
// (wait reason "chan receive"), condN in waitOnCond ("sync.Cond.Wait") and
// labelledN in parkLabelled under the pprof label worker=w1.
type population struct {
	ch   chan struct{}
	mu   sync.Mutex
	cond *sync.Cond
	done bool
	wg   sync.WaitGroup
}

const (
	chanN     = 50
	condN     = 20
	labelledN = 5
)

func startPopulation(t *testing.T) {
	t.Helper()
	p := &population{ch: make(chan struct{})}
	p.cond = sync.NewCond(&p.mu)
	for range chanN {
		p.wg.Go(func() { parkOnChan(p.ch) })
	}
	for range condN {
		p.wg.Go(func() { waitOnCond(p) })
	}
	for range labelledN {
		p.wg.Go(func() {
			pprof.Do(context.Background(), pprof.Labels("worker", "w1"), func(context.Context) { parkLabelled(p.ch) })
		})
	}
	// Wait until all are parked: each shows up in the goroutine profile.
	eventually.True(t, 5*time.Second, "the population parked", func() bool {
		return countStacks("parkOnChan", "waitOnCond", "parkLabelled") >= chanN+condN+labelledN
	})
	t.Cleanup(func() {
		close(p.ch)
		p.mu.Lock()
		p.done = true
		p.cond.Broadcast()
		p.mu.Unlock()
		p.wg.Wait()
	})
}

//go:noinline
func parkOnChan(ch chan struct{}) { <-ch }

//go:noinline
func parkLabelled(ch chan struct{}) { <-ch }

//go:noinline
func waitOnCond(p *population) {
	p.mu.Lock()
	for !p.done {
		p.cond.Wait()
	}
	p.mu.Unlock()
}

// countStacks counts goroutines whose stack holds a function with one of
// the given name suffixes, from the runtime's own goroutine profile.
func countStacks(fns ...string) int {
	var recs []runtime.StackRecord
	n, ok := runtime.GoroutineProfile(nil)
	for !ok {
		recs = make([]runtime.StackRecord, n+64)
		n, ok = runtime.GoroutineProfile(recs)
	}
	count := 0
	for _, r := range recs[:n] {
		frames := runtime.CallersFrames(r.Stack())
		for {
			f, more := frames.Next()
			if slices.ContainsFunc(fns, func(s string) bool { return strings.HasSuffix(f.Function, "."+s) }) {
				count++
				break
			}
			if !more {
				break
			}
		}
	}
	return count
}

// stackHas reports whether a sample's stack holds function name suffix fn.
func stackHas(s *profile.Sample, fn string) bool {
	for _, loc := range s.Location {
		for _, l := range loc.Line {
			if strings.HasSuffix(l.Function.Name, "."+fn) {
				return true
			}
		}
	}
	return false
}

// sumWhere sums value 0 of the samples holding fn with the given sample
// labels.
func sumWhere(p *profile.Profile, fn string, labels map[string]string) (total int64, samples int) {
	for _, s := range p.Sample {
		if !stackHas(s, fn) {
			continue
		}
		match := true
		for k, v := range labels {
			if len(s.Label[k]) != 1 || s.Label[k][0] != v {
				match = false
			}
		}
		if match {
			total += s.Value[0]
			samples++
		}
	}
	return total, samples
}

func testEndpoint(url string) inproc.Endpoint {
	return inproc.Endpoint{HTTP: endpoint.Config{URL: url}}
}

func stop(t *testing.T, p *inproc.Profiler) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := p.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
}

// noLeftovers fails if, shortly after Stop, a goroutine still runs code of
// the profiler, its queues or pyroscope-go.
func noLeftovers(t *testing.T) {
	t.Helper()
	owners := []string{"github.com/grafana/pyroscope-go", "goroscope/push/queue.", "pkg/inproc.(*Profiler)", "pkg/inproc.(*sinks)", "pkg/inproc.Start"}
	if err := eventually.Wait(time.Second, func() error {
		buf := make([]byte, 8<<20)
		dump := string(buf[:runtime.Stack(buf, true)])
		var left []string
		for _, g := range strings.Split(dump, "\n\n") {
			if slices.ContainsFunc(owners, func(o string) bool { return strings.Contains(g, o) }) {
				left = append(left, g)
			}
		}
		if len(left) > 0 {
			return fmt.Errorf("%d goroutines left after Stop, the first:\n%s", len(left), strings.Join(left[:min(len(left), 3)], "\n\n"))
		}
		return nil
	}); err != nil {
		t.Error(err)
	}
}

func waitCollections(t *testing.T, p *inproc.Profiler, n int) {
	t.Helper()
	eventually.Succeeds(t, 10*time.Second, func() error {
		if st := p.Stats(); st.Collections < n {
			return fmt.Errorf("%d collections, want %d; stats %+v", st.Collections, n, st)
		}
		return nil
	})
}

// TestGoroutineProfiles pushes goroutine profiles of a known population,
// through the push API and through legacy /ingest, and checks every one
// that arrives: labels, sample types, and the population's counts by
// state and wait reason.
func TestGoroutineProfiles(t *testing.T) {
	startPopulation(t)
	pid := strconv.Itoa(os.Getpid())
	for _, legacy := range []bool{false, true} {
		t.Run("legacy="+strconv.FormatBool(legacy), func(t *testing.T) {
			srv := receivers.StartPyroscope(t)
			const interval = 150 * time.Millisecond
			ep := testEndpoint(srv.URL)
			ep.Legacy = legacy
			p, err := inproc.Start(context.Background(), inproc.Config{
				ApplicationName:   "inproc-test",
				Pyroscope:         []inproc.Endpoint{ep},
				Tags:              map[string]string{"env": "test"},
				ProfileTypes:      []inproc.ProfileType{},
				GoroutineInterval: interval,
			})
			if err != nil {
				t.Fatal(err)
			}
			waitCollections(t, p, 3)
			stop(t, p)
			st := p.Stats()
			if errs := srv.Errors(); len(errs) > 0 {
				t.Fatalf("server decode errors: %v", errs)
			}
			byType := map[string][]receivers.ReceivedProfile{}
			for _, rp := range srv.Profiles() {
				if rp.Legacy != legacy {
					t.Errorf("profile came through legacy=%v, want %v", rp.Legacy, legacy)
				}
				want := map[string]string{"service_name": "inproc-test", "pid": pid, "env": "test"}
				name := strings.Join(rp.SampleTypes(), ",")
				// The IDs Grafana lists them under: through /ingest the
				// server names the wall profile "wall" from its sample type.
				var id string
				switch name {
				case "goroutine/count":
					id = "goroutine:goroutine:count:goroutine:count"
					if !legacy {
						want["__name__"] = inproc.ProfileGoroutine
					}
				case "wall/nanoseconds":
					id = "goroutine_wall:wall:nanoseconds:wall:nanoseconds"
					if !legacy {
						want["__name__"] = inproc.ProfileGoroutineWall
					} else {
						id = "wall:wall:nanoseconds:wall:nanoseconds"
					}
				default:
					t.Fatalf("unexpected profile with sample types %s", name)
				}
				if !mapsEqual(rp.Labels, want) {
					t.Errorf("%s profile labels %v, want %v", name, rp.Labels, want)
				}
				if !slices.Equal(rp.ProfileTypes, []string{id}) {
					t.Errorf("%s profile stored as %v, want %s", name, rp.ProfileTypes, id)
				}
				byType[name] = append(byType[name], rp)
			}
			// One of each per collection, the final one at Stop included.
			if st.Profiles.Sent != 2*st.Collections || st.Profiles.Rejected+st.Profiles.Dropped+st.Profiles.Pending != 0 {
				t.Errorf("profile delivery %+v, want all %d sent", st.Profiles, 2*st.Collections)
			}
			if g, w := len(byType["goroutine/count"]), len(byType["wall/nanoseconds"]); g != st.Collections || w != st.Collections || st.Collections < 4 {
				t.Fatalf("%d goroutines and %d goroutine_wall profiles for %d collections (want equal, at least 4)", g, w, st.Collections)
			}
			if st.Errors != 0 || st.Goroutines < chanN+condN+labelledN || st.LastPause <= 0 || st.MaxPause < st.LastPause || st.TotalPause < st.MaxPause {
				t.Errorf("stats %+v", st)
			}
			for i, rp := range byType["goroutine/count"] {
				waitingChan := map[string]string{"state": "waiting", "wait_reason": "chan receive"}
				if n, k := sumWhere(rp.Profile, "parkOnChan", waitingChan); n != chanN || k != 1 {
					t.Errorf("goroutines profile %d: parkOnChan waiting on chan receive: %d goroutines in %d samples, want %d in 1", i, n, k, chanN)
				}
				if n, _ := sumWhere(rp.Profile, "waitOnCond", map[string]string{"state": "waiting", "wait_reason": "sync.Cond.Wait"}); n != condN {
					t.Errorf("goroutines profile %d: waitOnCond in sync.Cond.Wait: %d, want %d", i, n, condN)
				}
				if n, _ := sumWhere(rp.Profile, "parkLabelled", waitingChan); n != labelledN {
					t.Errorf("goroutines profile %d: parkLabelled: %d, want %d", i, n, labelledN)
				}
				// Only the collector itself is running (a dump has its stack).
				if n, k := sumState(rp.Profile, "running"); n != 1 || k != 1 {
					t.Errorf("goroutines profile %d: %d running goroutines in %d samples, want the collector alone", i, n, k)
				}
				// All of them (exact counts against runtime.NumGoroutine are
				// TestCollectMatchesNumGoroutine's).
				if tot := rp.Total(0); tot < chanN+condN+labelledN+1 {
					t.Errorf("goroutines profile %d: %d goroutines in all, want at least the population (%d) and the collector", i, tot, chanN+condN+labelledN)
				}
			}
			for i, rp := range byType["wall/nanoseconds"] {
				d := rp.Profile.DurationNanos
				if d <= 0 || d > int64(5*time.Second) {
					t.Errorf("goroutine_wall profile %d covers %s", i, time.Duration(d))
					continue
				}
				// Each parked goroutine contributes the whole interval.
				if n, _ := sumWhere(rp.Profile, "parkOnChan", map[string]string{"state": "waiting"}); n != chanN*d {
					t.Errorf("goroutine_wall profile %d: parkOnChan %d ns, want %d × %d", i, n, chanN, d)
				}
			}
		})
	}
}

func sumState(p *profile.Profile, state string) (total int64, samples int) {
	for _, s := range p.Sample {
		if len(s.Label["state"]) == 1 && s.Label["state"][0] == state {
			total += s.Value[0]
			samples++
		}
	}
	return total, samples
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestPprofLabels checks that pprof labels reach the goroutine profile when
// the runtime prints them (GODEBUG=tracebacklabels=1, Go 1.26+).
func TestPprofLabels(t *testing.T) {
	t.Setenv("GODEBUG", "tracebacklabels=1")
	startPopulation(t)
	srv := receivers.StartPyroscope(t)
	p, err := inproc.Start(context.Background(), inproc.Config{
		ApplicationName: "inproc-labels", Pyroscope: []inproc.Endpoint{testEndpoint(srv.URL)},
		ProfileTypes: []inproc.ProfileType{}, GoroutineInterval: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	stop(t, p)
	var found bool
	for _, rp := range srv.Profiles() {
		if rp.Labels["__name__"] != inproc.ProfileGoroutine {
			continue
		}
		found = true
		if n, k := sumWhere(rp.Profile, "parkLabelled", map[string]string{"worker": "w1", "state": "waiting"}); n != labelledN || k != 1 {
			t.Errorf("parkLabelled with worker=w1: %d goroutines in %d samples, want %d in 1", n, k, labelledN)
		}
		if n, _ := sumWhere(rp.Profile, "parkOnChan", map[string]string{"worker": "w1"}); n != 0 {
			t.Errorf("%d unlabelled goroutines carry worker=w1", n)
		}
	}
	if !found {
		t.Fatal("no goroutines profile arrived")
	}
}

// burnCPU spins on one thread until that thread has used d of CPU time
// (not wall time: a busy machine must not shrink the profile), or 10s.
//
//go:noinline
func burnCPU(t *testing.T, d time.Duration) uint64 {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cpu := func() time.Duration {
		var ru unix.Rusage
		if err := unix.Getrusage(unix.RUSAGE_THREAD, &ru); err != nil {
			t.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	var h [32]byte
	start, deadline := cpu(), time.Now().Add(10*time.Second)
	for cpu()-start < d && time.Now().Before(deadline) {
		for range 1000 {
			h = sha256.Sum256(h[:])
		}
	}
	return uint64(h[0])
}

//go:noinline
func contendMutex(d time.Duration) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	end := time.Now().Add(d)
	for range 4 {
		wg.Go(func() {
			for time.Now().Before(end) {
				mu.Lock()
				time.Sleep(50 * time.Microsecond)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}

// TestRuntimeProfilesAndStopFlush runs pyroscope-go's CPU, heap, mutex and
// block profiles with an upload rate and goroutine interval longer than the
// test: everything that arrives was flushed by Stop, through /ingest for
// pyroscope-go and the push API for the goroutine profile, with the same
// labels, auth and tenant on every request.
func TestRuntimeProfilesAndStopFlush(t *testing.T) {
	srv := receivers.StartPyroscope(t)
	ep := testEndpoint(srv.URL)
	ep.HTTP.Tenant = "team-a"
	ep.HTTP.BasicAuth = &httpconf.BasicAuth{Username: "u", Password: "p"}
	p, err := inproc.Start(context.Background(), inproc.Config{
		ApplicationName:   "inproc-cpu",
		Pyroscope:         []inproc.Endpoint{ep},
		Tags:              map[string]string{"env": "test"},
		UploadRate:        time.Hour,
		GoroutineInterval: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	burnCPU(t, 400*time.Millisecond)
	contendMutex(200 * time.Millisecond)
	keep := make([][]byte, 0, 1000)
	for range 1000 {
		keep = append(keep, make([]byte, 4096))
	}
	stop(t, p)
	noLeftovers(t)
	runtime.KeepAlive(keep)
	if len(srv.Profiles()) == 0 {
		t.Fatal("nothing arrived")
	}
	if errs := srv.Errors(); len(errs) > 0 {
		t.Fatalf("server decode errors: %v", errs)
	}
	for i, r := range srv.Requests() {
		if r.Header.Get("X-Scope-Orgid") != "team-a" || r.Header.Get("Authorization") != "Basic dTpw" || !strings.HasPrefix(r.Header.Get("User-Agent"), "goroscope/") {
			t.Errorf("request %d to %s: headers %v", i, r.Path, r.Header)
		}
	}
	pid := strconv.Itoa(os.Getpid())
	kinds := map[string]int{}
	var cpuSamples, cpuTotal int64
	for _, rp := range srv.Profiles() {
		st := strings.Join(rp.SampleTypes(), ",")
		if rp.Labels["service_name"] != "inproc-cpu" || rp.Labels["pid"] != pid || rp.Labels["env"] != "test" {
			t.Errorf("%s profile labels %v", st, rp.Labels)
		}
		if !rp.Legacy {
			if rp.Labels["__name__"] != inproc.ProfileGoroutine && rp.Labels["__name__"] != inproc.ProfileGoroutineWall {
				t.Errorf("push API profile %s named %q", st, rp.Labels["__name__"])
			}
			kinds[rp.Labels["__name__"]]++
			continue
		}
		// Forwarded as pyroscope-go built them: no format parameter (the
		// server then reads the multipart form as pprof).
		if _, ok := rp.Query["format"]; ok || rp.Query["spyName"] != "gospy" {
			t.Errorf("ingest query %v", rp.Query)
		}
		if ids, want := rp.ProfileTypes, ingestIDs[st]; !slices.Equal(ids, want) && !slices.Equal(ids, ingestIDs["block "+st]) {
			t.Errorf("%s upload stored as %v, want %v", st, ids, want)
		}
		switch st {
		case "samples/count,cpu/nanoseconds":
			// One from Flush; maybe a second, near-empty one from the
			// moment between Flush and Stop.
			kinds["cpu"] = 1
			n, _ := sumWhere(rp.Profile, "burnCPU", nil)
			cpuSamples += n
			cpuTotal += rp.Total(0)
		case "alloc_objects/count,alloc_space/bytes,inuse_objects/count,inuse_space/bytes":
			kinds["heap"]++
		case "contentions/count,delay/nanoseconds":
			kinds["contentions"]++
			if n, _ := sumWhere(rp.Profile, "contendMutex.func1", nil); n > 0 {
				kinds["contendMutex"]++
			}
		default:
			t.Errorf("unexpected ingest profile with sample types %s", st)
		}
	}
	// The test burnt 400ms of CPU at pyroscope-go's 100 Hz. Under the race
	// detector most samples land in its own C code instead.
	if lo := map[bool]int64{false: 34, true: 1}[raceEnabled]; cpuSamples < lo || cpuSamples > 50 || cpuTotal < 34 {
		t.Errorf("CPU profiles: %d samples in burnCPU of %d, want about 40 of about 40", cpuSamples, cpuTotal)
	}
	want := map[string]int{"cpu": 1, "heap": 1, "contentions": 2, "contendMutex": 2, inproc.ProfileGoroutine: 1, inproc.ProfileGoroutineWall: 1}
	if !mapsEqualInt(kinds, want) {
		t.Errorf("profiles by kind %v, want %v", kinds, want)
	}
	if st := p.Stats(); st.Uploads.Sent < 4 || st.Uploads.Sent != len(srv.Profiles())-2 || st.Uploads.Rejected+st.Uploads.Dropped+st.Uploads.Pending != 0 {
		t.Errorf("upload delivery %+v, want the %d uploads sent", st.Uploads, len(srv.Profiles())-2)
	}
}

// ingestIDs are the profile type IDs the server stores pyroscope-go's
// uploads under, by their sample types (mutex and block profiles have the
// same ones; "block " marks the block profile's).
var ingestIDs = map[string][]string{
	"samples/count,cpu/nanoseconds": {"process_cpu:cpu:nanoseconds:cpu:nanoseconds", "process_cpu:samples:count:cpu:nanoseconds"},
	"alloc_objects/count,alloc_space/bytes,inuse_objects/count,inuse_space/bytes": {
		"memory:alloc_objects:count:space:bytes", "memory:alloc_space:bytes:space:bytes",
		"memory:inuse_objects:count:space:bytes", "memory:inuse_space:bytes:space:bytes"},
	"contentions/count,delay/nanoseconds":       {"mutex:contentions:count:contentions:count", "mutex:delay:nanoseconds:contentions:count"},
	"block contentions/count,delay/nanoseconds": {"block:contentions:count:contentions:count", "block:delay:nanoseconds:contentions:count"},
}

func mapsEqualInt(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestRetriesAndPermanentFailures: 503s are retried until delivered within
// Stop; a 400 drops the batch at once instead of retrying it forever.
func TestRetriesAndPermanentFailures(t *testing.T) {
	// A collection pushes two profiles, in one request or two.
	tests := []struct {
		name        string
		fail        []receivers.Failure
		minProfiles int
		maxProfiles int
	}{
		{"503 twice then accepted", []receivers.Failure{{Status: 503, Message: "not ready"}, {Status: 503, Message: "not ready"}}, 2, 2},
		{"400 dropped", []receivers.Failure{{Status: 400, Message: "bad profile"}}, 0, 1},
		{"422 dropped", []receivers.Failure{{Status: 422, Message: "bad profile"}}, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := receivers.StartPyroscope(t)
			srv.FailNext(tt.fail...)
			p, err := inproc.Start(context.Background(), inproc.Config{
				ApplicationName: "inproc-retry", Pyroscope: []inproc.Endpoint{testEndpoint(srv.URL)},
				ProfileTypes: []inproc.ProfileType{}, GoroutineInterval: time.Hour,
			})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			err = p.Stop(ctx)
			failed := 0 // answered with a failure: the server decoded nothing
			for _, r := range srv.Requests() {
				if r.Series == 0 {
					failed++
				}
			}
			got := len(srv.Profiles())
			if got < tt.minProfiles || got > tt.maxProfiles || failed != len(tt.fail) {
				t.Errorf("%d profiles arrived after %d failed requests, want %d-%d after %d", got, failed, tt.minProfiles, tt.maxProfiles, len(tt.fail))
			}
			// What was lost is counted and reported by Stop.
			st := p.Stats().Profiles
			if st.Sent != got || st.Rejected != 2-got || st.Dropped+st.Pending != 0 {
				t.Errorf("delivery %+v with %d profiles received, want them sent and the rest rejected", st, got)
			}
			switch {
			case st.Rejected == 0 && err != nil:
				t.Errorf("Stop: %v, want nil: nothing was lost", err)
			case st.Rejected > 0 && (err == nil || !strings.Contains(err.Error(), fmt.Sprintf("goroutine profiles: %d of 2 (%d rejected by the endpoint)", st.Rejected, st.Rejected)) || !strings.Contains(err.Error(), "bad profile")):
				t.Errorf("Stop: %v, want the loss of %d profiles and the server's message", err, st.Rejected)
			}
		})
	}
}

// TestRemoteWriteSeries writes the goroutine series to a real Prometheus
// and reads them back.
func TestRemoteWriteSeries(t *testing.T) {
	prom := receivers.StartPrometheus(t)
	startPopulation(t)
	p, err := inproc.Start(context.Background(), inproc.Config{
		ApplicationName: "inproc-rw", RemoteWrite: []inproc.Endpoint{testEndpoint(prom.WriteURL)},
		Tags: map[string]string{"env": "test"}, ProfileTypes: []inproc.ProfileType{}, GoroutineInterval: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	stop(t, p)
	pid := strconv.Itoa(os.Getpid())
	got := prom.Query(t, `goroscope_goroutines{service_name="inproc-rw",state="waiting",wait_reason="sync.Cond.Wait"}`)
	if len(got) != 1 || got[0].Samples[0].Value != condN || got[0].Labels["pid"] != pid || got[0].Labels["env"] != "test" {
		t.Errorf("sync.Cond.Wait series %+v, want one with value %d, pid %s, env test", got, condN, pid)
	}
	info := prom.Query(t, `goroscope_process_info{service_name="inproc-rw"}`)
	if len(info) != 1 || info[0].Labels["go_version"] != runtime.Version() || info[0].Samples[0].Value != 1 {
		t.Errorf("process info %+v", info)
	}
	total := prom.Query(t, `sum(goroscope_goroutines{service_name="inproc-rw"})`)
	if len(total) != 1 || int(total[0].Samples[0].Value) != p.Stats().Goroutines {
		t.Errorf("sum of goroscope_goroutines %+v, want %d", total, p.Stats().Goroutines)
	}
}

// TestBadConfig: every invalid configuration is refused with an error
// naming the field.
func TestBadConfig(t *testing.T) {
	ok := func() inproc.Config {
		return inproc.Config{ApplicationName: "app", Pyroscope: []inproc.Endpoint{testEndpoint("http://127.0.0.1:4040")}}
	}
	tests := []struct {
		name   string
		mutate func(*inproc.Config)
		want   []string
	}{
		{"no name", func(c *inproc.Config) { c.ApplicationName = " " }, []string{"ApplicationName: empty"}},
		{"reserved name chars", func(c *inproc.Config) { c.ApplicationName = "app{x=y}" }, []string{"ApplicationName", "reserves"}},
		{"no endpoint", func(c *inproc.Config) { c.Pyroscope = nil }, []string{"Pyroscope: no endpoint"}},
		{"bad URL", func(c *inproc.Config) { c.Pyroscope[0].HTTP.URL = "ftp://x" }, []string{"Pyroscope[0]", "scheme \"ftp\""}},
		{"two auths", func(c *inproc.Config) {
			c.Pyroscope[0].HTTP.BearerToken = "t"
			c.Pyroscope[0].HTTP.BasicAuth = &httpconf.BasicAuth{Username: "u", Password: "p"}
		}, []string{"Pyroscope[0]", "one kind of auth"}},
		{"bad remote-write", func(c *inproc.Config) { c.RemoteWrite = []inproc.Endpoint{testEndpoint("")} }, []string{"RemoteWrite[0]", "url: missing"}},
		{"bad tag name", func(c *inproc.Config) { c.Tags = map[string]string{"my-tag": "x"} }, []string{"Tags.my-tag", "must match"}},
		{"reserved tag", func(c *inproc.Config) { c.Tags = map[string]string{"__x": "x"} }, []string{"Tags.__x", "reserved"}},
		{"pid tag", func(c *inproc.Config) { c.Tags = map[string]string{"pid": "1"} }, []string{"Tags.pid", "set by the profiler"}},
		{"state tag", func(c *inproc.Config) { c.Tags = map[string]string{"state": "x"} }, []string{"Tags.state", "rename"}},
		{"empty tag", func(c *inproc.Config) { c.Tags = map[string]string{"a": ""} }, []string{"Tags.a", "empty value"}},
		{"pyroscope goroutines", func(c *inproc.Config) { c.ProfileTypes = []inproc.ProfileType{"goroutines"} }, []string{"ProfileTypes[0]", "collected by goroscope"}},
		{"unknown type", func(c *inproc.Config) { c.ProfileTypes = []inproc.ProfileType{"cpu", "wall"} }, []string{"ProfileTypes[1]", "unknown profile type \"wall\""}},
		{"duplicate type", func(c *inproc.Config) { c.ProfileTypes = []inproc.ProfileType{"cpu", "cpu"} }, []string{"ProfileTypes[1]", "twice"}},
		{"types without pyroscope", func(c *inproc.Config) {
			c.Pyroscope, c.RemoteWrite = nil, []inproc.Endpoint{testEndpoint("http://127.0.0.1:9090/api/v1/write")}
		}, []string{"ProfileTypes: pyroscope-go profiles need a Pyroscope endpoint"}},
		{"short interval", func(c *inproc.Config) { c.GoroutineInterval = time.Millisecond }, []string{"GoroutineInterval", "shorter than 100ms"}},
		{"nothing on", func(c *inproc.Config) { c.GoroutineInterval, c.ProfileTypes = -1, []inproc.ProfileType{} }, []string{"nothing to profile"}},
		{"short upload", func(c *inproc.Config) { c.UploadRate = time.Millisecond }, []string{"UploadRate"}},
		{"bad rates", func(c *inproc.Config) { c.MutexProfileFraction, c.BlockProfileRate = -2, -5 }, []string{"MutexProfileFraction: -2", "BlockProfileRate: -5"}},
		{"small dump", func(c *inproc.Config) { c.MaxDumpBytes = 100 }, []string{"MaxDumpBytes"}},
		{"negative memory", func(c *inproc.Config) { c.MemoryItems = -1 }, []string{"MemoryItems"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok()
			tt.mutate(&c)
			p, err := inproc.Start(context.Background(), c)
			if err == nil {
				stop(t, p)
				t.Fatal("Start accepted the config")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// TestContextEndsProfiling: cancelling Start's context stops the profiler
// without Stop; Stop afterwards returns at once.
func TestContextEndsProfiling(t *testing.T) {
	srv := receivers.StartPyroscope(t)
	ctx, cancel := context.WithCancel(context.Background())
	p, err := inproc.Start(ctx, inproc.Config{
		ApplicationName: "inproc-ctx", Pyroscope: []inproc.Endpoint{testEndpoint(srv.URL)},
		ProfileTypes: []inproc.ProfileType{inproc.ProfileCPU}, GoroutineInterval: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	waitCollections(t, p, 1)
	cancel()
	start := time.Now()
	stop(t, p)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Stop after cancellation took %s", d)
	}
	noLeftovers(t)
	n := p.Stats().Collections
	// Three goroutine intervals in which nothing may happen: no condition
	// can end this wait sooner.
	time.Sleep(300 * time.Millisecond)
	if m := p.Stats().Collections; m != n {
		t.Errorf("%d collections after stopping, then %d", n, m)
	}
	// CPU profiling is free again for others.
	if err := pprof.StartCPUProfile(discard{}); err != nil {
		t.Errorf("CPU profiling still held after stop: %v", err)
	} else {
		pprof.StopCPUProfile()
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
