package pyroscope_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"maps"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/goroscope/goroscope/pkg/fold"
	"github.com/goroscope/goroscope/pkg/snapshot"
	"github.com/goroscope/goroscope/push/endpoint"
	"github.com/goroscope/goroscope/push/pyroscope"
	"github.com/goroscope/goroscope/test/receivers"
)

// fixtureDir holds the requests goroscope's client makes, recorded by
// TestRecordFixtures: one legacy /ingest request per profile name the
// agent pushes, and one push API request holding them all.
const fixtureDir = "testdata/requests"

// legacyIDs are the profile type IDs the server stores each profile name
// under when it comes through /ingest: the server names it from its sample
// types and the form's sample_type_config, so goroutine_wall becomes
// "wall"; every other name comes out as pushed.
var legacyIDs = map[string][]string{
	fold.ProfileGoroutine:     {"goroutine:goroutine:count:goroutine:count"},
	fold.ProfileGoroutineWall: {"wall:wall:nanoseconds:wall:nanoseconds"},
	"process_cpu":             {"process_cpu:cpu:nanoseconds:cpu:nanoseconds", "process_cpu:samples:count:cpu:nanoseconds"},
	"memory": {"memory:alloc_objects:count:space:bytes", "memory:alloc_space:bytes:space:bytes",
		"memory:inuse_objects:count:space:bytes", "memory:inuse_space:bytes:space:bytes"},
	"mutex":         {"mutex:contentions:count:contentions:count", "mutex:delay:nanoseconds:contentions:count"},
	"block":         {"block:contentions:count:contentions:count", "block:delay:nanoseconds:contentions:count"},
	"goroutineleak": {"goroutineleak:goroutineleak:count:goroutineleak:count"},
}

// pushIDs are the IDs of the push API request, where __name__ is kept.
func pushIDs() []string {
	var out []string
	for name, ids := range legacyIDs {
		for _, id := range ids {
			if name == fold.ProfileGoroutineWall {
				id = "goroutine_wall" + strings.TrimPrefix(id, "wall")
			}
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// TestFixturesAcceptedByServerRules checks every recorded request of the
// client against Grafana Pyroscope's rules (receivers.CheckDump): each is
// accepted and stored under the expected IDs, and no sample of a stored
// goroutine profile lacks a stack (a running goroutine shows its sampled
// stack, or RunningFunction).
func TestFixturesAcceptedByServerRules(t *testing.T) {
	fixtures := receivers.ReadFixtures(t, fixtureDir)
	want := map[string][]string{"push": pushIDs()}
	for name, ids := range legacyIDs {
		want["legacy-"+name] = ids
	}
	if len(fixtures) != len(want) {
		t.Errorf("%d fixtures, want %d (%v)", len(fixtures), len(want), slices.Sorted(maps.Keys(want)))
	}
	for _, name := range slices.Sorted(maps.Keys(want)) {
		t.Run(name, func(t *testing.T) {
			v := receivers.CheckFixture(t, fixtures, name, want[name])
			for _, s := range v.Series {
				if s.Labels["service_name"] != "checkout" || s.Labels["pid"] != "42" {
					t.Errorf("series labels %v", s.Labels)
				}
				if !strings.HasPrefix(s.ProfileTypeID, "goroutine:") && !strings.HasPrefix(s.ProfileTypeID, "goroutine_wall:") && !strings.HasPrefix(s.ProfileTypeID, "wall:") {
					continue
				}
				// Goroutine 5 ran in main.burn most, then main.hash; 6 was
				// not sampled.
				want := map[string]int64{"main.burn": 1, fold.RunningFunction: 1}
				if !strings.HasPrefix(s.ProfileTypeID, "goroutine:") {
					want = map[string]int64{"main.burn": 2e7, "main.hash": 1e7}
				}
				running := map[string]int64{}
				for _, smp := range s.Profile.Sample {
					if len(smp.Location) == 0 {
						t.Errorf("%s: a sample without a stack, labels %v", s.ProfileTypeID, smp.Label)
					}
					if slices.Equal(smp.Label["state"], []string{"running"}) {
						running[leaf(smp)] += smp.Value[0]
					}
				}
				if !maps.Equal(running, want) {
					t.Errorf("%s: running goroutines by leaf %v, want %v", s.ProfileTypeID, running, want)
				}
			}
			if v.Path != "push.v1" && v.Path != "pprof (multipart)" {
				t.Errorf("server reads it as %s, want pprof (multipart)", v.Path)
			}
		})
	}
}

func leaf(s *profile.Sample) string {
	if len(s.Location) == 0 || len(s.Location[0].Line) == 0 {
		return ""
	}
	return s.Location[0].Line[0].Function.Name
}

// TestRecordFixtures records the fixtures again: GOROSCOPE_RECORD=1
// go test -run TestRecordFixtures ./push/pyroscope.
func TestRecordFixtures(t *testing.T) {
	if os.Getenv(receivers.RecordEnv) == "" {
		t.Skipf("set %s=1 to record the fixtures again", receivers.RecordEnv)
	}
	profiles := agentProfiles(t)
	labels := map[string]string{"service_name": "checkout", "pid": "42"}
	var items [][]byte
	for _, name := range slices.Sorted(maps.Keys(profiles)) {
		gz, err := pyroscope.EncodeProfile(profiles[name])
		if err != nil {
			t.Fatal(err)
		}
		extra := map[string]string{}
		if name == "memory" || name == "mutex" || name == "block" {
			extra[pyroscope.LabelDelta] = "false" // as the agent pushes scraped deltas
		}
		item, err := pyroscope.ProfileItem(name, gz, labels, extra)
		if err != nil {
			t.Fatal(err)
		}
		items = append(items, item)
	}
	out := map[string][]byte{}
	for _, legacy := range []bool{false, true} {
		rec := receivers.StartRecorder(t)
		c, err := pyroscope.New(pyroscope.Options{HTTP: endpoint.Config{URL: rec.URL}, Legacy: legacy})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Send(context.Background(), items); err != nil {
			t.Fatal(err)
		}
		dumps := rec.Dumps()
		if !legacy {
			if len(dumps) != 1 {
				t.Fatalf("%d push requests, want 1", len(dumps))
			}
			out["push"] = dumps[0]
			continue
		}
		names := slices.Sorted(maps.Keys(profiles))
		if len(dumps) != len(names) {
			t.Fatalf("%d ingest requests, want %d", len(dumps), len(names))
		}
		for i, d := range dumps { // one per item, in order
			out["legacy-"+names[i]] = d
		}
	}
	receivers.WriteFixtures(t, fixtureDir, out)
}

// agentProfiles returns a profile of every name the agent pushes, as it
// pushes them: the goroutine profiles folded from a snapshot with a
// running goroutine that the CPU sampler saw (goroutine 5) and one it did
// not (goroutine 6), the runtime's CPU, heap, mutex and block profiles of
// this process, and a goroutineleak profile as the scraper passes it on.
func agentProfiles(t *testing.T) map[string]*profile.Profile {
	t.Helper()
	park := []snapshot.Frame{
		{Function: "runtime.gopark", File: "/go/src/runtime/proc.go", Line: 435, PC: 0x401010},
		{Function: "main.worker", File: "/src/main.go", Line: 12, PC: 0x402020},
		{Function: "runtime.goexit", File: "/go/src/runtime/asm_amd64.s", Line: 1700, PC: 0x403030},
	}
	burn := []snapshot.Frame{{Function: "main.burn", File: "/src/main.go", Line: 30, PC: 0x404040}, park[2]}
	hash := []snapshot.Frame{{Function: "main.hash", File: "/src/main.go", Line: 40, PC: 0x405050}, park[2]}
	s := &snapshot.Snapshot{Time: time.Unix(1_800_000_000, 0), Goroutines: []snapshot.Goroutine{
		{ID: 1, State: snapshot.StateWaiting, WaitReason: "chan receive", WaitingSeconds: 30, Frames: park},
		{ID: 2, State: snapshot.StateWaiting, WaitReason: "chan receive", WaitingSeconds: 700, Frames: park},
		{ID: 5, State: snapshot.StateRunning},
		{ID: 6, State: snapshot.StateRunning},
	}}
	g, w := fold.ProfilesOnCPU(s, 10*time.Second, []fold.OnCPU{{Goid: 5, Frames: burn, Nanos: 2e7}, {Goid: 5, Frames: hash, Nanos: 1e7}})

	var cpu bytes.Buffer
	if err := pprof.StartCPUProfile(&cpu); err != nil {
		t.Fatal(err)
	}
	spin(200 * time.Millisecond)
	pprof.StopCPUProfile()
	runtime.SetMutexProfileFraction(1)
	runtime.SetBlockProfileRate(1)
	defer runtime.SetMutexProfileFraction(0)
	defer runtime.SetBlockProfileRate(0)
	contend()
	lookup := func(name string) *profile.Profile {
		var b bytes.Buffer
		if err := pprof.Lookup(name).WriteTo(&b, 0); err != nil {
			t.Fatal(err)
		}
		return parse(t, b.Bytes())
	}
	leak := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "goroutineleak", Unit: "count"}},
		PeriodType: &profile.ValueType{Type: "goroutineleak", Unit: "count"}, Period: 1,
		TimeNanos: s.Time.UnixNano(),
	}
	fn := &profile.Function{ID: 1, Name: "main.leak", Filename: "/src/main.go"}
	leak.Function = []*profile.Function{fn}
	leak.Location = []*profile.Location{{ID: 1, Address: 0x406060, Line: []profile.Line{{Function: fn, Line: 50}}}}
	leak.Sample = []*profile.Sample{{Location: leak.Location, Value: []int64{3}}}
	return map[string]*profile.Profile{
		fold.ProfileGoroutine: g, fold.ProfileGoroutineWall: w,
		"process_cpu": parse(t, cpu.Bytes()), "memory": lookup("heap"), "mutex": lookup("mutex"), "block": lookup("block"),
		"goroutineleak": leak,
	}
}

func parse(t *testing.T, b []byte) *profile.Profile {
	t.Helper()
	p, err := profile.ParseData(b)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

//go:noinline
func spin(d time.Duration) {
	var h [32]byte
	for end := time.Now().Add(d); time.Now().Before(end); {
		h = sha256.Sum256(h[:])
	}
	runtime.KeepAlive(h)
}

//go:noinline
func contend() {
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 50 {
				mu.Lock()
				time.Sleep(100 * time.Microsecond)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}

// TestLegacyNameParsedByServer: every legacy name, whatever the service
// name and label values hold, is one the server's label set parser reads
// back to the same labels (service names allow [a-zA-Z0-9_.-/], values end
// at ',' or '}'), so no upload is refused for its name.
func TestLegacyNameParsedByServer(t *testing.T) {
	tests := []struct {
		service, value   string
		wantApp, wantVal string
	}{
		{"checkout", "eu-west-1", "checkout", "eu-west-1"},
		{"k8s:team/checkout pod", "a,b{c}=d", "k8s_team/checkout_pod", "a_b_c__d"},
		{"café", "ünïcode", "caf_", "ünïcode"},
	}
	for _, tt := range tests {
		item := encode(t, map[string]string{"service_name": tt.service, "__name__": fold.ProfileGoroutine, "region": tt.value}, goroutineProfile(2, 2))
		rec := receivers.StartRecorder(t)
		c, err := pyroscope.New(pyroscope.Options{HTTP: endpoint.Config{URL: rec.URL}, Legacy: true})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Send(context.Background(), [][]byte{item}); err != nil {
			t.Fatal(err)
		}
		v, err := receivers.CheckDump(rec.Dumps()[0])
		if err != nil {
			t.Fatal(err)
		}
		if err := v.Err(); err != nil {
			t.Errorf("service %q, value %q: %v", tt.service, tt.value, err)
			continue
		}
		if l := v.Series[0].Labels; l["service_name"] != tt.wantApp || l["region"] != tt.wantVal {
			t.Errorf("service %q, value %q: stored with service_name %q, region %q; want %q, %q", tt.service, tt.value, l["service_name"], l["region"], tt.wantApp, tt.wantVal)
		}
	}
}
