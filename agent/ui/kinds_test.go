package ui

import (
	"bytes"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"path"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/pprof/profile"

	"github.com/goroscope/goroscope/pkg/store"
)

// TestCPUProfileKind: a process_cpu entry shows among the process's kinds
// and its flame graph is valued in CPU time (the last sample type), not in
// sample counts.
func TestCPUProfileKind(t *testing.T) {
	st := openStore(t)
	appendSnapshot(t, st, testProc, snapA())
	fn := &profile.Function{ID: 1, Name: "main.burn", SystemName: "main.burn", Filename: "burn.go"}
	loc := &profile.Location{ID: 1, Address: 0x1000, Line: []profile.Line{{Function: fn, Line: 9}}}
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "samples", Unit: "count"}, {Type: "cpu", Unit: "nanoseconds"}},
		PeriodType: &profile.ValueType{Type: "cpu", Unit: "nanoseconds"}, Period: 10101010,
		Sample:   []*profile.Sample{{Location: []*profile.Location{loc}, Value: []int64{99, 999_999_990}}},
		Location: []*profile.Location{loc}, Function: []*profile.Function{fn}, TimeNanos: t0.UnixNano(),
	}
	var buf bytes.Buffer
	if err := p.Write(&buf); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Append(store.Entry{Process: testProc, Kind: store.KindCPU, Time: t0, Data: buf.Bytes()}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(New(testSource{Store: st}, nil))
	t.Cleanup(srv.Close)

	s := getJSON[Series](t, srv, procPath+"/series")
	if !slices.Equal(s.Kinds, []string{store.KindGoroutines, store.KindGoroutineWall, store.KindCPU}) {
		t.Errorf("kinds %v, want goroutines, goroutine_wall, process_cpu", s.Kinds)
	}
	f := getJSON[FlameAnswer](t, srv, procPath+"/flame?kind=process_cpu")
	if f.SampleType != "cpu" || f.Unit != "nanoseconds" || f.Total != 999_999_990 {
		t.Errorf("process_cpu flame: %s/%s total %v, want cpu/nanoseconds 999999990", f.SampleType, f.Unit, f.Total)
	}
}

// TestKinds: GET /api/kinds lists every kind pkg/store defines for the UI
// (store.ProfileKinds, then the snapshot), each described, and a process
// holding all of them has each listed in its series, shown as a flame
// graph and downloadable in every format.
func TestKinds(t *testing.T) {
	st := openStore(t)
	appendSnapshot(t, st, testProc, snapA())
	appendOtherKinds(t, st, testProc, t0)
	srv := httptest.NewServer(New(testSource{Store: st}, nil))
	t.Cleanup(srv.Close)

	got := getJSON[[]KindInfo](t, srv, "/api/kinds")
	var names []string
	for _, k := range got {
		names = append(names, k.Kind)
		if k.Description == "" || (k.Profile && k.Value == "") {
			t.Errorf("kind %s is not described: %+v (add it to kindText)", k.Kind, k)
		}
		if k.Profile != slices.Contains(store.ProfileKinds, k.Kind) {
			t.Errorf("kind %s: profile %v", k.Kind, k.Profile)
		}
	}
	if want := append(slices.Clone(store.ProfileKinds), store.KindSnapshot); !slices.Equal(names, want) {
		t.Errorf("/api/kinds lists %v, want %v", names, want)
	}
	if !slices.Contains(names, store.KindGoroutineLeak) {
		t.Errorf("/api/kinds lacks %s", store.KindGoroutineLeak)
	}
	for k := range kindText {
		if !slices.Contains(names, k) {
			t.Errorf("kindText describes %q, which /api/kinds does not list", k)
		}
	}

	s := getJSON[Series](t, srv, procPath+"/series")
	if !slices.Equal(s.Kinds, store.ProfileKinds) {
		t.Errorf("series kinds %v, want %v", s.Kinds, store.ProfileKinds)
	}
	for _, k := range got {
		if k.Profile {
			if f := getJSON[FlameAnswer](t, srv, procPath+"/flame?kind="+k.Kind); f.Total <= 0 {
				t.Errorf("%s flame total %v", k.Kind, f.Total)
			}
		}
		for _, format := range []string{"pprof", "folded", "json"} {
			if body := get(t, srv, procPath+"/download?kind="+k.Kind+"&format="+format, 200); len(body) == 0 {
				t.Errorf("%s %s download is empty", k.Kind, format)
			}
		}
	}
}

// TestStaticModules: the page loads app.js as an ES module; every .js file
// is served as JavaScript (browsers run modules only then, nosniff being
// set), every relative import resolves to an embedded file, and no module
// parses strings as HTML (target-controlled text is set as text only).
func TestStaticModules(t *testing.T) {
	srv := httptest.NewServer(New(testSource{Store: openStore(t)}, nil))
	t.Cleanup(srv.Close)
	importRE := regexp.MustCompile(`(?m)^\s*import\s[^;]*?from\s+"([^"]+)"`)
	htmlRE := regexp.MustCompile(`innerHTML|outerHTML|insertAdjacentHTML|document\.write|\.html\(|createContextualFragment|DOMParser`)
	seen := map[string]bool{}
	queue := []string{"app.js"}
	for len(queue) > 0 {
		name := queue[0]
		queue = queue[1:]
		if seen[name] {
			continue
		}
		seen[name] = true
		resp, err := http.Get(srv.URL + "/static/" + name)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			t.Errorf("GET /static/%s: %d %v", name, resp.StatusCode, err)
			continue
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/javascript") {
			t.Errorf("/static/%s served as %q, want text/javascript", name, ct)
		}
		if m := htmlRE.Find(body); m != nil {
			t.Errorf("%s uses %s: set text with el()/textContent instead", name, m)
		}
		for _, m := range importRE.FindAllSubmatch(body, -1) {
			spec := string(m[1])
			if !strings.HasPrefix(spec, "./") && !strings.HasPrefix(spec, "../") {
				t.Errorf("%s imports %q: only relative imports of embedded files", name, spec)
				continue
			}
			queue = append(queue, path.Join(path.Dir(name), spec))
		}
	}
	// Every module under static/ (the vendored libraries aside) is reached
	// from app.js.
	err := fs.WalkDir(staticFiles, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".js") || strings.HasPrefix(p, "static/vendor/") {
			return err
		}
		if name := strings.TrimPrefix(p, "static/"); !seen[name] {
			t.Errorf("%s is embedded but not imported from app.js", name)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) < 10 {
		t.Errorf("app.js reaches %d modules: %v", len(seen), seen)
	}
}
