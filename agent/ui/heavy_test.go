package ui

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/goroscope/goroscope/pkg/fold"
	"github.com/goroscope/goroscope/pkg/snapshot"
	"github.com/goroscope/goroscope/pkg/store"
)

// bigSnapshot is n goroutines parked in few places, as a large server's
// are: 48 stacks, 3 label sets, 64 channels, one creator per stack; every
// tenth goroutine runs (no stack). Goroutines sharing a stack share its
// slice, as the walkers' do.
func bigSnapshot(n int) *snapshot.Snapshot {
	type place struct {
		frames  []snapshot.Frame
		creator *snapshot.Frame
		reason  string
	}
	var places []place
	for i := range 48 {
		base := [][]snapshot.Frame{stackRecv, stackMutex, stackSelect}[i%3]
		handler := snapshot.Frame{Function: fmt.Sprintf("main.handler%02d", i), File: fmt.Sprintf("/app/h%02d.go", i), Line: 10 + i, PC: uint64(0x9000 + i)}
		frames := append(append([]snapshot.Frame{}, base...), handler)
		reason := []string{"chan receive", "sync.Mutex.Lock", "select"}[i%3]
		places = append(places, place{frames, &snapshot.Frame{Function: fmt.Sprintf("main.serve%d", i%5), File: "/app/serve.go", Line: i}, reason})
	}
	labels := []map[string]string{{"handler": "api"}, {"tenant": "t1", "handler": "batch"}, nil}
	s := &snapshot.Snapshot{PID: testProc.PID, Exe: testProc.Exe, GoVersion: testProc.GoVersion, Time: t1, Walker: "procmem",
		Goroutines: make([]snapshot.Goroutine, n)}
	for i := range s.Goroutines {
		g := &s.Goroutines[i]
		p := places[(i*7)%len(places)]
		*g = snapshot.Goroutine{ID: uint64(i + 1), State: snapshot.StateWaiting, WaitReason: p.reason, WaitingSeconds: float64(i % 3600),
			WaitingSource: snapshot.WaitObserved, ParentID: 1, CreatedBy: p.creator, Labels: labels[i%len(labels)], Frames: p.frames, Addr: 0xc000000000 + uint64(i)*0x400}
		if p.reason == "chan receive" {
			g.BlockedOn = &snapshot.BlockedOn{Kind: snapshot.BlockedOnChan, Address: fmt.Sprintf("0xc0000%04x", i%64), Capacity: 1, Receivers: 3}
		}
		if i%10 == 0 {
			g.State, g.WaitReason, g.WaitingSeconds, g.WaitingSource, g.Frames, g.BlockedOn = snapshot.StateRunning, "", 0, "", nil, nil
		}
		s.Counts.Add(g.State)
	}
	return s
}

// storeSnapshotOnly stores s as a gzipped binary snapshot entry, without
// the profiles appendSnapshot folds from it.
func storeSnapshotOnly(tb testing.TB, st *store.Store, s *snapshot.Snapshot) store.Meta {
	tb.Helper()
	m, err := st.Append(store.Entry{Process: testProc, Kind: store.KindSnapshot, Time: s.Time, Summary: fold.Summary(s), Data: gzipped(tb, snapshotBinary(s))})
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// refSearchGoroutines is SearchGoroutines as it was, over a snapshot held
// whole: what the streaming search must answer.
func refSearchGoroutines(s *snapshot.Snapshot, f Filter, query string, offset, limit int) Page {
	words := strings.Fields(strings.ToLower(query))
	if len(words) > maxSearchWords {
		words = words[:maxSearchWords]
	}
	if limit <= 0 {
		limit = defaultPageSize
	}
	limit = min(limit, maxPageSize)
	offset = max(offset, 0)
	p := Page{Total: len(s.Goroutines), Offset: offset, Goroutines: []snapshot.Goroutine{}}
	for i := range s.Goroutines {
		g := &s.Goroutines[i]
		if !f.MatchGoroutine(g) || !refMatchWords(g, words) {
			continue
		}
		if p.Matched >= offset && len(p.Goroutines) < limit {
			p.Goroutines = append(p.Goroutines, *g)
		}
		p.Matched++
	}
	return p
}

// refMatchWords is matchWords as it was: every word in g's text.
func refMatchWords(g *snapshot.Goroutine, words []string) bool {
	if len(words) == 0 {
		return true
	}
	var b strings.Builder
	b.WriteString(strconv.FormatUint(g.ID, 10) + "\n" + string(g.State) + "\n" + g.WaitReason + "\n")
	for k, v := range g.Labels {
		b.WriteString(k + "=" + v + "\n")
	}
	for _, fr := range g.Frames {
		b.WriteString(fr.Function + " " + fr.File + ":" + strconv.Itoa(fr.Line) + "\n")
	}
	if g.CreatedBy != nil {
		b.WriteString(g.CreatedBy.Function + "\n")
	}
	text := strings.ToLower(b.String())
	for _, w := range words {
		if !strings.Contains(text, w) {
			return false
		}
	}
	return true
}

// TestGoroutinesPaging pages through a stored snapshot of 150k goroutines
// (30k under -short) with the API and checks every answer against the
// search over the snapshot held whole; and through the same snapshot in
// the JSON form older stores hold.
func TestGoroutinesPaging(t *testing.T) {
	n := 150_000
	if testing.Short() {
		n = 30_000
	}
	snap := bigSnapshot(n)
	js, err := json.Marshal(snap)
	if err != nil {
		t.Fatal(err)
	}
	st := openStore(t)
	storeSnapshotOnly(t, st, snap)
	jsonProc := testProc
	jsonProc.PID++
	if _, err := st.Append(store.Entry{Process: jsonProc, Kind: store.KindSnapshot, Time: snap.Time, Data: gzipped(t, js)}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(New(testSource{Store: st}, nil))
	t.Cleanup(srv.Close)
	tests := []struct {
		query         string
		f             Filter
		offset, limit int
		// json reads the entry in the JSON form.
		json bool
	}{
		{"", Filter{}, 0, 0, false},
		{"", Filter{}, n - 50, 100, false},
		{"", Filter{}, 1234, 5000, false}, // limit capped at maxPageSize
		{"", Filter{}, n + 1, 10, false},  // past the end: counts, no goroutines
		{"", Filter{State: "running"}, 100, 100, false},
		{"", Filter{WaitReason: "select", Labels: []LabelFilter{{"handler", "batch"}}}, 7, 20, false},
		{"", Filter{WaitDuration: "10s-1m"}, 0, 1000, false},
		{"12345", Filter{}, 0, 100, false},
		{"HANDLER17", Filter{}, 40, 100, false},
		{"h07.go:17 tenant=t1", Filter{}, 0, 100, false},
		{"serve3 chanrecv", Filter{WaitReason: "chan receive"}, 500, 100, false},
		{"gopark running", Filter{}, 0, 100, false},
		{"nothing-matches-this", Filter{}, 0, 100, false},
		{"", Filter{}, n - 50, 100, true},
		{"h07.go:17 tenant=t1", Filter{WaitDuration: "1m-10m"}, 3, 100, true},
	}
	for _, tt := range tests {
		q := tt.f.Query()
		q.Set("q", tt.query)
		q.Set("offset", strconv.Itoa(tt.offset))
		q.Set("limit", strconv.Itoa(tt.limit))
		path := procPath
		if tt.json {
			path = fmt.Sprintf("/api/processes/%d/%d", jsonProc.PID, jsonProc.StartTime)
		}
		t.Run(path+"?"+q.Encode(), func(t *testing.T) {
			got := getJSON[GoroutinesAnswer](t, srv, path+"/goroutines?"+q.Encode())
			want := refSearchGoroutines(snap, tt.f, tt.query, tt.offset, tt.limit)
			gotJS, err := json.Marshal(got.Page)
			if err != nil {
				t.Fatal(err)
			}
			wantJS, err := json.Marshal(want)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(gotJS, wantJS) {
				t.Errorf("page: total %d matched %d offset %d, %d goroutines; want %d %d %d, %d (or the goroutines differ)",
					got.Total, got.Matched, got.Offset, len(got.Goroutines), want.Total, want.Matched, want.Offset, len(want.Goroutines))
			}
			if got.Total != n {
				t.Errorf("total %d, want %d", got.Total, n)
			}
		})
	}
}

// TestSearchGoroutinesEqualsReference: the search by lines and kept bit
// sets answers as the search over each goroutine's whole text did.
func TestSearchGoroutinesEqualsReference(t *testing.T) {
	s := bigSnapshot(5000)
	s.Goroutines[3].Labels = map[string]string{"Ünïcode": "ÀB", "k": "v w"}
	s.Goroutines[4].Frames = []snapshot.Frame{{Function: "main.ÉTÉ", File: "/x/Y.go", Line: 7}}
	for _, q := range []string{"", "ünï", "àb", "été y.go:7", "k=v", "=", ":", "1 2 3", "main.serve0", "0xc", "api handler", "waiting h0", "\u00c0"} {
		got := SearchGoroutines(s, Filter{}, q, 0, maxPageSize)
		want := refSearchGoroutines(s, Filter{}, q, 0, maxPageSize)
		if got.Matched != want.Matched || len(got.Goroutines) != len(want.Goroutines) {
			t.Errorf("search %q: matched %d, want %d", q, got.Matched, want.Matched)
			continue
		}
		for i := range got.Goroutines {
			if got.Goroutines[i].ID != want.Goroutines[i].ID {
				t.Errorf("search %q: goroutine %d is %d, want %d", q, i, got.Goroutines[i].ID, want.Goroutines[i].ID)
				break
			}
		}
	}
}

// heldWriter is a ResponseWriter that keeps a digest of the body only,
// so measuring a request does not measure its answer held whole. At its
// first write and every heldEvery-th after, it collects garbage and notes
// the live heap: what the request holds while it answers.
type heldWriter struct {
	header http.Header
	status int
	n      int64
	sum    hash.Hash
	writes int
	// peak is the largest live heap seen at a write.
	peak uint64
}

// heldEvery is how many writes (of up to 64 KiB) a heldWriter lets pass
// between measures.
const heldEvery = 64

func newHeldWriter() *heldWriter { return &heldWriter{header: http.Header{}, sum: sha256.New()} }

func (w *heldWriter) Header() http.Header { return w.header }
func (w *heldWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}

func (w *heldWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	if w.writes%heldEvery == 0 {
		w.peak = max(w.peak, liveHeap())
	}
	w.writes++
	w.n += int64(len(p))
	return w.sum.Write(p)
}

// liveHeap collects garbage and returns the bytes of the live heap. It
// collects twice: sync.Pool's caches outlive one collection.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// usage is what serving one request cost, beyond the stored payload.
type usage struct {
	// allocated is every byte allocated, garbage included.
	allocated int64
	// held is the most the request held live at once, as heldWriter saw.
	held int64
}

// serve runs one request on h, measuring it; payload is the size of the
// stored payload it reads, which Source.Read returns whole.
func serve(h http.Handler, path string, w *heldWriter, payload int64) usage {
	base := liveHeap()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
	runtime.ReadMemStats(&after)
	return usage{allocated: int64(after.TotalAlloc-before.TotalAlloc) - payload, held: int64(w.peak) - int64(base) - payload}
}

// TestHeavyRequestMemory: a goroutine-table request and a JSON download of
// a stored snapshot of 150k goroutines (and of 1M, without -short) hold
// a few MB beyond the stored payload, however many goroutines; the table
// request allocates no more than that. The download is WriteJSON's
// output, byte for byte.
func TestHeavyRequestMemory(t *testing.T) {
	sizes := []int{150_000, 1_000_000}
	if testing.Short() {
		sizes = sizes[:1]
	}
	const mb = 1 << 20
	for _, n := range sizes {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			st := openStore(t)
			snap := bigSnapshot(n)
			m := storeSnapshotOnly(t, st, snap)
			wantSum := sha256.New()
			if err := snapshot.WriteJSON(wantSum, snap); err != nil {
				t.Fatal(err)
			}
			snap = nil // measure without it
			h := New(testSource{Store: st}, nil)
			for _, tt := range []struct {
				name, path string
				// maxAllocated and maxHeld bound the request's usage (0:
				// not bounded): allocated for the table, which writes its
				// answer once done with the snapshot (so held is not seen
				// while it reads); held for the download, whose JSON
				// encoding makes garbage per goroutine. sum is the
				// answer's digest, if checked.
				maxAllocated, maxHeld int64
				sum                   []byte
			}{
				{"table", procPath + "/goroutines?offset=" + strconv.Itoa(n/2) + "&limit=1000", 8 * mb, 0, nil},
				{"table search", procPath + "/goroutines?q=handler17+tenant&limit=1000", 8 * mb, 0, nil},
				{"json download", procPath + "/download?kind=snapshot&format=json", 0, 8 * mb, wantSum.Sum(nil)},
			} {
				t.Run(tt.name, func(t *testing.T) {
					w := newHeldWriter()
					u := serve(h, tt.path, w, m.Size)
					if w.status != http.StatusOK {
						t.Fatalf("status %d", w.status)
					}
					held := "not seen"
					if tt.maxHeld > 0 {
						held = fmt.Sprintf("%.1f MB", float64(u.held)/1e6)
					}
					t.Logf("%d goroutines, %s: stored payload %.1f MB; beyond it, held %s, allocated %.1f MB (%.0f bytes per goroutine); answer %.1f MB",
						n, tt.name, float64(m.Size)/1e6, held, float64(u.allocated)/1e6, float64(u.allocated)/float64(n), float64(w.n)/1e6)
					if tt.maxHeld > 0 && u.held > tt.maxHeld {
						t.Errorf("held %.1f MB beyond the stored payload, want at most %d MiB", float64(u.held)/1e6, tt.maxHeld/mb)
					}
					if tt.maxAllocated > 0 && u.allocated > tt.maxAllocated {
						t.Errorf("allocated %.1f MB beyond the stored payload, want at most %d MiB", float64(u.allocated)/1e6, tt.maxAllocated/mb)
					}
					if tt.sum != nil && !bytes.Equal(w.sum.Sum(nil), tt.sum) {
						t.Errorf("download differs from WriteJSON's output (%d bytes)", w.n)
					}
				})
			}
		})
	}
}

// TestSnapshotDownloads: the snapshot downloads, streamed, equal what
// folding and encoding the snapshot held whole gives: JSON and folded byte
// for byte, pprof sample for sample; for one chunk and for several, from
// the binary form and from the JSON form older stores hold.
func TestSnapshotDownloads(t *testing.T) {
	for _, n := range []int{100, foldChunk + 17} {
		snap := bigSnapshot(n)
		snap.Stride, snap.Dropped = 3, 2 // members the JSON form puts after the goroutines
		js, err := json.Marshal(snap)
		if err != nil {
			t.Fatal(err)
		}
		var fromJSON snapshot.Snapshot // what the JSON entry holds: no PCs
		if err := json.Unmarshal(js, &fromJSON); err != nil {
			t.Fatal(err)
		}
		for _, enc := range []struct {
			name   string
			data   []byte
			stored *snapshot.Snapshot
		}{{"binary", snapshotBinary(snap), snap}, {"json", js, &fromJSON}} {
			st := openStore(t)
			if _, err := st.Append(store.Entry{Process: testProc, Kind: store.KindSnapshot, Time: snap.Time, Data: gzipped(t, enc.data)}); err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(New(testSource{Store: st}, nil))
			for _, f := range []Filter{{}, {WaitReason: "select"}, {State: "syscall"}, {Labels: []LabelFilter{{"handler", "api"}}}} {
				keep := *enc.stored
				keep.Goroutines = []snapshot.Goroutine{}
				for i := range enc.stored.Goroutines {
					if f.MatchGoroutine(&enc.stored.Goroutines[i]) {
						keep.Goroutines = append(keep.Goroutines, enc.stored.Goroutines[i])
					}
				}
				q := f.Query()
				q.Set("kind", "snapshot")
				t.Run(fmt.Sprint(n, enc.name, q.Encode()), func(t *testing.T) {
					var js, folded bytes.Buffer
					if err := snapshot.WriteJSON(&js, &keep); err != nil {
						t.Fatal(err)
					}
					if err := snapshot.WriteFolded(&folded, &keep); err != nil {
						t.Fatal(err)
					}
					q.Set("format", "json")
					if got := get(t, srv, procPath+"/download?"+q.Encode(), 200); !bytes.Equal(got, js.Bytes()) {
						t.Errorf("json download differs from WriteJSON: %d bytes, want %d", len(got), js.Len())
					}
					q.Set("format", "folded")
					if got := get(t, srv, procPath+"/download?"+q.Encode(), 200); !bytes.Equal(got, folded.Bytes()) {
						t.Errorf("folded download differs from WriteFolded:\n%s\nwant\n%s", got, folded.Bytes())
					}
					q.Set("format", "pprof")
					p, err := profile.Parse(bytes.NewReader(get(t, srv, procPath+"/download?"+q.Encode(), 200)))
					if err != nil {
						t.Fatal(err)
					}
					want := fold.Goroutines(&keep)
					if got, want := profileSamples(p), profileSamples(want); got != want {
						t.Errorf("pprof download differs from fold.Goroutines:\n%s\nwant\n%s", got, want)
					}
					if !slices.Equal(p.Comments, want.Comments) {
						t.Errorf("pprof comments %q, want %q", p.Comments, want.Comments)
					}
				})
			}
			srv.Close()
		}
	}
}

// gzipped is data compressed as the agent stores payloads.
func gzipped(tb testing.TB, data []byte) []byte {
	tb.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(data); err != nil {
		tb.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// TestDownloadCorrupt: a snapshot entry that turns out corrupt before the
// first bytes of a download went out is answered with an error status;
// after, the response is cut short, so the client sees a failed transfer
// and not a file that looks whole.
func TestDownloadCorrupt(t *testing.T) {
	data := snapshotBinary(bigSnapshot(20_000))
	st := openStore(t)
	early, err := st.Append(store.Entry{Process: testProc, Kind: store.KindSnapshot, Time: t0, Data: gzipped(t, data[:2000])})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Append(store.Entry{Process: testProc, Kind: store.KindSnapshot, Time: t1, Data: gzipped(t, data[:len(data)-2000])}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(New(testSource{Store: st}, nil))
	t.Cleanup(srv.Close)
	body := get(t, srv, procPath+"/download?kind=snapshot&format=json&at="+url.QueryEscape(t0.Format(time.RFC3339)), http.StatusInternalServerError)
	if want := fmt.Sprintf("snapshot entry %d", early.ID); !strings.Contains(string(body), want) {
		t.Errorf("early corruption: %s; want an error naming %s", body, want)
	}
	resp, err := http.Get(srv.URL + procPath + "/download?kind=snapshot&format=json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK || err == nil {
		t.Errorf("late corruption: status %d, %d bytes read, error %v; want 200 and a transfer cut short", resp.StatusCode, n, err)
	}
}

// profileSamples lists a profile's samples as sorted "labels stack value"
// lines, stacks and labels summed over, to compare profiles by content.
func profileSamples(p *profile.Profile) string {
	sums := map[string]int64{}
	for _, s := range p.Sample {
		var b strings.Builder
		for _, k := range slices.Sorted(maps.Keys(s.Label)) {
			fmt.Fprintf(&b, "%s=%s,", k, s.Label[k])
		}
		for _, loc := range s.Location {
			for _, ln := range loc.Line {
				fmt.Fprintf(&b, ";%s:%d", ln.Function.Name, ln.Line)
			}
		}
		sums[b.String()] += s.Value[0]
	}
	var lines []string
	for k, v := range sums {
		lines = append(lines, fmt.Sprintf("%s %d", k, v))
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// TestBusy: with MaxHeavyRequests requests in flight, another heavy one
// is refused at once with 503 and Retry-After, and counted; light ones
// still answer; once one finishes, heavy ones are served again.
func TestBusy(t *testing.T) {
	st := openStore(t)
	appendSnapshot(t, st, testProc, snapA())
	src := &blockingSource{testSource: testSource{Store: st}, entered: make(chan struct{}), release: make(chan struct{})}
	reg := prometheus.NewRegistry()
	srv := httptest.NewServer(NewWithOptions(src, Options{MaxHeavyRequests: 2, Registerer: reg}))
	t.Cleanup(srv.Close)

	src.block(true)
	statuses := make(chan string, 2)
	for _, path := range []string{"/goroutines", "/flame"} {
		go func() {
			resp, err := http.Get(srv.URL + procPath + path)
			if err != nil {
				statuses <- err.Error()
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body) // the whole answer: the handler returned, its slot freed
			resp.Body.Close()
			statuses <- fmt.Sprint(path, " ", resp.StatusCode)
		}()
		<-src.entered // in the handler, holding a slot
	}
	for _, path := range []string{"/goroutines", "/flame", "/diff?from=" + url.QueryEscape(t0.Format(time.RFC3339)), "/download?kind=snapshot&format=json", "/findings"} {
		resp, err := http.Get(srv.URL + procPath + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(body), "busy") {
			t.Errorf("%s while full: %d, Retry-After %q, %s; want 503 with Retry-After", path, resp.StatusCode, resp.Header.Get("Retry-After"), body)
		}
	}
	get(t, srv, "/api/processes", http.StatusOK) // light requests are not limited
	if got := testutil.ToFloat64(refusedCounter(reg).WithLabelValues("busy")); got != 5 {
		t.Errorf("%s{reason=busy} = %v, want 5", refusedMetric, got)
	}
	src.block(false)
	close(src.release)
	for range 2 {
		if st := <-statuses; !strings.HasSuffix(st, " 200") {
			t.Errorf("request holding a slot: %s, want 200", st)
		}
	}
	get(t, srv, procPath+"/goroutines", http.StatusOK)
}

// blockingSource is a Source whose Read, while blocking, signals entered
// and waits for release.
type blockingSource struct {
	testSource
	mu       sync.Mutex
	blocking bool
	entered  chan struct{}
	release  chan struct{}
}

func (s *blockingSource) block(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.blocking = on
}

func (s *blockingSource) Read(id uint64) ([]byte, error) {
	s.mu.Lock()
	blocking := s.blocking
	s.mu.Unlock()
	if blocking {
		s.entered <- struct{}{}
		<-s.release
	}
	return s.testSource.Read(id)
}

// TestProfileTooLarge: a stored profile past MaxProfileBytes decompressed
// is refused with 413 naming the limit, and counted, wherever it would be
// parsed; the unfiltered pprof download, which does not parse it, serves it.
func TestProfileTooLarge(t *testing.T) {
	st := openStore(t)
	appendSnapshot(t, st, testProc, snapA())
	appendSnapshot(t, st, testProc, snapB())
	reg := prometheus.NewRegistry()
	const limit = 512 // bytes: the test profiles are larger
	srv := httptest.NewServer(NewWithOptions(testSource{Store: st}, Options{MaxProfileBytes: limit, Registerer: reg}))
	t.Cleanup(srv.Close)
	paths := []string{"/flame", "/flame?from=" + url.QueryEscape(t0.Format(time.RFC3339)),
		"/diff?base_from=" + url.QueryEscape(t0.Format(time.RFC3339)) + "&from=" + url.QueryEscape(t0.Format(time.RFC3339)), "/download?state=waiting", "/download?format=folded"}
	for _, path := range paths {
		body := get(t, srv, procPath+path, http.StatusRequestEntityTooLarge)
		if !strings.Contains(string(body), "larger than 512 bytes") || !strings.Contains(string(body), "MaxProfileBytes") {
			t.Errorf("%s: %s; want the limit named", path, body)
		}
	}
	get(t, srv, procPath+"/download", http.StatusOK)
	get(t, srv, procPath+"/goroutines", http.StatusOK) // snapshots are streamed, not held
	if got := testutil.ToFloat64(refusedCounter(reg).WithLabelValues("too_large")); got != float64(len(paths)) {
		t.Errorf("%s{reason=too_large} = %v, want %d", refusedMetric, got, len(paths))
	}
}

// TestCappedReader: exactly the limit reads; one byte more fails with
// the 413 error, however the reads are cut.
func TestCappedReader(t *testing.T) {
	tooLarge := &httpError{http.StatusRequestEntityTooLarge, "too large"}
	for _, tc := range []struct {
		size, limit int
		ok          bool
	}{{0, 0, true}, {10, 10, true}, {11, 10, false}, {1 << 20, 1<<20 - 1, false}, {5, 1 << 20, true}} {
		r := &cappedReader{r: bytes.NewReader(make([]byte, tc.size)), left: int64(tc.limit), tooLarge: tooLarge}
		n, err := io.Copy(io.Discard, r)
		if tc.ok && (err != nil || n != int64(tc.size)) || !tc.ok && (err != tooLarge || n != int64(tc.limit)) {
			t.Errorf("%d bytes, limit %d: read %d, %v", tc.size, tc.limit, n, err)
		}
	}
}

// TestCanceledSearch: a search whose request is gone stops with its error.
func TestCanceledSearch(t *testing.T) {
	s := bigSnapshot(3 * checkEvery)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := searchStream(ctx, sliceNext(s.Goroutines), Filter{}, "", 0, 10); err != context.Canceled {
		t.Errorf("search after cancel: %v, want %v", err, context.Canceled)
	}
}
