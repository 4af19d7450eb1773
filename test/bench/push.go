package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	rtmetrics "runtime/metrics"
	"strconv"
	"strings"
	"time"

	"github.com/google/pprof/profile"

	"github.com/goroscope/goroscope/collect/process"
	"github.com/goroscope/goroscope/collect/walk"
	"github.com/goroscope/goroscope/pkg/fold"
	"github.com/goroscope/goroscope/pkg/snapshot"
	"github.com/goroscope/goroscope/push/endpoint"
	"github.com/goroscope/goroscope/push/pyroscope"
	"github.com/goroscope/goroscope/push/queue"
	"github.com/goroscope/goroscope/push/remotewrite"
	"github.com/goroscope/goroscope/test/faults"

	"github.com/goroscope/goroscope/test/targettest"
)

// The push scenario measures what pushing costs, from real snapshots of the
// latency target folded and encoded exactly as the agent does
// (agent/daemon/push.go): one remote-write item per series with one sample,
// and one Pyroscope item per profile (goroutines, goroutine_wall).
//
//   - Encoding: the CPU time to turn one snapshot's series into items and
//     the items into one remote-write request body (merge, protobuf,
//     snappy), and to turn the two profiles into items (pprof, gzip).
//   - Wire: request body bytes per snapshot, sent by the real clients to an
//     in-process receiver (test/faults) that decodes every request; per
//     watched goroutine per hour at the default 10 s cadence.
//   - Outage: the default agent scenario (20 processes of 1k goroutines,
//     10 s cadence) with both endpoints down for 10 minutes, in simulated
//     time: the 60 rounds of snapshots are enqueued as fast as they fold,
//     into queues with the agent's default configuration (on-disk spools),
//     while the queues keep failing against the closed port. Then the
//     receiver comes back and the queues drain. Reported: spool bytes on
//     disk, live heap growth, drain time, and the receiver's exact count.

// pushCadence is the agent's default snapshot interval.
const pushCadence = 10 * time.Second

// pushRow is the encoding and wire cost of one target size.
type pushRow struct {
	size            int
	series          int           // remote-write series (= samples) per snapshot
	rwItems, rwBody time.Duration // per snapshot: items from series; one request body from the items
	rwItemBytes     int           // item bytes per snapshot
	rwWire          int64         // request body bytes per snapshot
	pyEncode        time.Duration // per snapshot: both profiles to items (pprof, gzip, series)
	pyRaw           int           // uncompressed pprof bytes of both profiles
	pyWire          int64         // request body bytes per snapshot
	err             string
}

// outageRow is the cost of one simulated outage.
type outageRow struct {
	procs, goroutines int
	outage            time.Duration // simulated
	rounds            int
	rwItems, pyItems  int
	fill              time.Duration // real time to produce and spool it
	rwSpool, pySpool  int64         // spool files on disk at the end of the outage
	heapGrowth        int64         // live heap (after GC) at the end of the outage minus before
	peakGrowth        int64         // highest live heap during the outage minus before
	drain             time.Duration // from the receiver coming back to every item delivered
	rwGot, pyGot      int
	dups              int
	requests          int
	wire              int64
	err               string
}

// pushReport is the push scenario's result.
type pushReport struct {
	rows   []pushRow
	outage outageRow
}

// measurePush runs the push scenario on fresh latency targets of the given
// sizes (the smallest also feeds the outage).
func measurePush(ctx context.Context, cfg config, procs *processes) (*pushReport, error) {
	dir, err := os.MkdirTemp("", "goroscope-bench-push-")
	if err != nil {
		return nil, fmt.Errorf("temp dir: %w", err)
	}
	defer os.RemoveAll(dir)
	bin, err := targettest.Compile("latency", targettest.BuildOpts{})
	if err != nil {
		return nil, err
	}
	rep := &pushReport{}
	var first *snapshot.Snapshot
	for _, n := range cfg.sizes {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		fmt.Fprintf(os.Stderr, "bench: push: target with %d goroutines\n", n)
		s, err := snapshotTarget(ctx, procs, bin, n)
		if err != nil {
			rep.rows = append(rep.rows, pushRow{size: n, err: err.Error()})
			continue
		}
		if first == nil {
			first = s
		}
		rep.rows = append(rep.rows, pushCost(n, s))
	}
	if first == nil {
		return rep, errors.New("push: no snapshot to simulate the outage with")
	}
	fmt.Fprintln(os.Stderr, "bench: push: simulated 10-minute outage of 20 processes")
	rep.outage = simulateOutage(ctx, dir, first, 20, 10*time.Minute)
	if rep.outage.err != "" {
		return rep, errors.New(rep.outage.err)
	}
	return rep, nil
}

// snapshotTarget starts a target, takes one snapshot of it and stops it.
func snapshotTarget(ctx context.Context, procs *processes, bin string, n int) (*snapshot.Snapshot, error) {
	t, err := startTarget(ctx, procs, bin, n)
	if err != nil {
		return nil, err
	}
	defer t.stop()
	at, err := process.Attach(t.PID)
	if err != nil {
		return nil, err
	}
	defer at.Close()
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	s, err := walk.NewSnapshotter(at, walk.ProcMemWalker{}).Snapshot(sctx)
	if err != nil {
		return nil, fmt.Errorf("snapshot of %d goroutines: %w", n, err)
	}
	if len(s.Goroutines) < n {
		return nil, fmt.Errorf("snapshot saw %d goroutines, the target parked %d", len(s.Goroutines), n)
	}
	return s, nil
}

// agentLabels are the target labels the agent gives a process.
func agentLabels(pid int) map[string]string {
	return map[string]string{"service_name": "latency", "pid": strconv.Itoa(pid)}
}

// rwItem is one remote-write item and its shard key.
type rwItem struct {
	item []byte
	key  uint64
}

// encodeSeries makes the remote-write items of one snapshot, as the agent.
func encodeSeries(series []fold.Series, at time.Time) ([]rwItem, error) {
	out := make([]rwItem, 0, len(series))
	for _, s := range series {
		item, key, err := remotewrite.SampleItem(s.Name, s.Labels, s.Value, at)
		if err != nil {
			return nil, err
		}
		out = append(out, rwItem{item, key})
	}
	return out, nil
}

// foldProfiles folds the two profiles the agent pushes for a snapshot.
func foldProfiles(s *snapshot.Snapshot) map[string]*profile.Profile {
	return map[string]*profile.Profile{"goroutines": fold.Goroutines(s), "goroutine_wall": fold.GoroutineWall(s, pushCadence)}
}

// encodeProfiles makes the Pyroscope items of one snapshot's profiles, as
// the agent.
func encodeProfiles(profiles map[string]*profile.Profile, labels map[string]string) ([][]byte, error) {
	var out [][]byte
	for name, p := range profiles {
		gz, err := pyroscope.EncodeProfile(p)
		if err != nil {
			return nil, err
		}
		item, err := pyroscope.ProfileItem(name, gz, labels)
		if err != nil {
			return nil, err
		}
		out = append(out, item)
	}
	return out, nil
}

// perOp is the median wall time of f over at least 5 runs and 300 ms after
// one untimed run (single-threaded work: wall time is CPU time).
func perOp(f func() error) (time.Duration, error) {
	if err := f(); err != nil { // warm caches and pools
		return 0, err
	}
	var ds []time.Duration
	deadline := time.Now().Add(300 * time.Millisecond)
	for i := 0; i < 5 || (time.Now().Before(deadline) && i < 1000); i++ {
		start := time.Now()
		if err := f(); err != nil {
			return 0, err
		}
		ds = append(ds, time.Since(start))
	}
	return median(ds), nil
}

// pushCost measures encoding and wire bytes for one snapshot of n goroutines.
func pushCost(n int, s *snapshot.Snapshot) pushRow {
	row := pushRow{size: n}
	fail := func(err error) pushRow {
		row.err = err.Error()
		fmt.Fprintf(os.Stderr, "bench: push, %d goroutines: %v\n", n, err)
		return row
	}
	labels := agentLabels(s.PID)
	series := fold.ProcessSeries(s, labels)
	row.series = len(series)
	srv, err := faults.New("127.0.0.1:0")
	if err != nil {
		return fail(err)
	}
	defer srv.Close()
	rw, py, err := benchClients(srv, "bench", "bench")
	if err != nil {
		return fail(err)
	}

	var items [][]byte
	if row.rwItems, err = perOp(func() error {
		its, err := encodeSeries(series, s.Time)
		items = items[:0]
		for _, it := range its {
			items = append(items, it.item)
		}
		return err
	}); err != nil {
		return fail(err)
	}
	for _, it := range items {
		row.rwItemBytes += len(it)
	}
	if row.rwBody, err = perOp(func() error { _, err := rw.Encode(items); return err }); err != nil {
		return fail(err)
	}
	profiles := foldProfiles(s)
	if row.pyEncode, err = perOp(func() error { _, err := encodeProfiles(profiles, labels); return err }); err != nil {
		return fail(err)
	}
	for _, p := range profiles {
		var b bytes.Buffer
		if err := p.WriteUncompressed(&b); err != nil {
			return fail(err)
		}
		row.pyRaw += b.Len()
	}

	// Six snapshots 10 s apart, one request per snapshot per endpoint, as the
	// agent sends them for one process.
	const rounds = 6
	ctx := context.Background()
	for i := range rounds {
		snap := *s
		snap.Time = s.Time.Add(time.Duration(i) * pushCadence)
		its, err := encodeSeries(fold.ProcessSeries(&snap, labels), snap.Time)
		if err != nil {
			return fail(err)
		}
		batch := make([][]byte, len(its))
		for j, it := range its {
			batch[j] = it.item
		}
		w0 := srv.Counts().WireBytes
		if err := rw.Send(ctx, batch); err != nil {
			return fail(fmt.Errorf("remote-write: %w", err))
		}
		w1 := srv.Counts().WireBytes
		profs, err := encodeProfiles(foldProfiles(&snap), labels)
		if err != nil {
			return fail(err)
		}
		if err := py.Send(ctx, profs); err != nil {
			return fail(fmt.Errorf("pyroscope: %w", err))
		}
		row.rwWire += w1 - w0
		row.pyWire += srv.Counts().WireBytes - w1
	}
	c := srv.Counts()
	if c.Samples != rounds*len(series) || c.Profiles != rounds*2 || c.SampleDups+c.ProfileDups != 0 || len(c.Errors) > 0 {
		return fail(fmt.Errorf("receiver got %d samples and %d profiles (want %d, %d), errors %v", c.Samples, c.Profiles, rounds*len(series), rounds*2, c.Errors))
	}
	row.rwWire /= rounds
	row.pyWire /= rounds
	fmt.Fprintf(os.Stderr, "bench: push %6d goroutines: %d series, rw %v+%v %d B/snapshot; py %v %d B/snapshot\n",
		n, row.series, row.rwItems.Round(time.Microsecond), row.rwBody.Round(time.Microsecond), row.rwWire,
		row.pyEncode.Round(time.Microsecond), row.pyWire)
	return row
}

// liveHeap is the heap in use after a full collection.
func liveHeap() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// peakLive samples the live heap (as of each GC) until stop is closed and
// returns its maximum.
func peakLive(stop <-chan struct{}) <-chan int64 {
	out := make(chan int64, 1)
	go func() {
		sample := []rtmetrics.Sample{{Name: "/gc/heap/live:bytes"}}
		peak := int64(0)
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			rtmetrics.Read(sample)
			if sample[0].Value.Kind() == rtmetrics.KindUint64 {
				peak = max(peak, int64(sample[0].Value.Uint64()))
			}
			select {
			case <-stop:
				out <- peak
				return
			case <-t.C:
			}
		}
	}()
	return out
}

// simulateOutage enqueues procs processes' snapshots of one outage while
// the receiver is down, then brings it back and drains.
func simulateOutage(ctx context.Context, dir string, s *snapshot.Snapshot, procs int, outage time.Duration) (row outageRow) {
	row = outageRow{procs: procs, goroutines: len(s.Goroutines), outage: outage, rounds: int(outage / pushCadence)}
	fail := func(err error) outageRow {
		row.err = fmt.Sprintf("outage: %v", err)
		fmt.Fprintf(os.Stderr, "bench: push: %s\n", row.err)
		return row
	}
	srv, err := faults.New("127.0.0.1:0")
	if err != nil {
		return fail(err)
	}
	defer srv.Close()
	if err := srv.SetMode(faults.Down); err != nil {
		return fail(err)
	}
	rwc, pyc, err := benchClients(srv, "rw", "py")
	if err != nil {
		return fail(err)
	}
	m, err := queue.NewMetrics(nil)
	if err != nil {
		return fail(err)
	}
	// The agent's configuration: defaults, a spool per endpoint.
	rwDir, pyDir := filepath.Join(dir, "spool", "rw"), filepath.Join(dir, "spool", "py")
	rwq, err := queue.New(queue.Config{SpoolDir: rwDir, Ordered: true}, rwc, m, nil)
	if err != nil {
		return fail(err)
	}
	defer func() { _ = rwq.Close() }() // the spools are thrown away
	pyq, err := queue.New(queue.Config{SpoolDir: pyDir}, pyc, m, nil)
	if err != nil {
		return fail(err)
	}
	defer func() { _ = pyq.Close() }()
	before := liveHeap()
	stopPeak := make(chan struct{})
	peak := peakLive(stopPeak)
	qctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 2)
	for _, q := range []*queue.Queue{rwq, pyq} {
		go func() { done <- q.Run(qctx) }()
	}
	stopQueues := func() error {
		cancel()
		return errors.Join(<-done, <-done)
	}

	start := time.Now()
	for r := range row.rounds {
		if err := ctx.Err(); err != nil {
			_ = stopQueues()
			return fail(err)
		}
		for p := range procs {
			snap := *s
			snap.PID = 100000 + p
			snap.Time = s.Time.Add(time.Duration(r) * pushCadence)
			labels := agentLabels(snap.PID)
			its, err := encodeSeries(fold.ProcessSeries(&snap, labels), snap.Time)
			if err != nil {
				_ = stopQueues()
				return fail(err)
			}
			for _, it := range its {
				if err := rwq.Enqueue(it.item, it.key); err != nil {
					_ = stopQueues()
					return fail(err)
				}
			}
			profs, err := encodeProfiles(foldProfiles(&snap), labels)
			if err != nil {
				_ = stopQueues()
				return fail(err)
			}
			for _, it := range profs {
				if err := pyq.Enqueue(it, 0); err != nil {
					_ = stopQueues()
					return fail(err)
				}
			}
			row.rwItems += len(its)
			row.pyItems += len(profs)
		}
	}
	row.fill = time.Since(start)
	row.heapGrowth = liveHeap() - before
	close(stopPeak)
	row.peakGrowth = <-peak - before
	row.rwSpool, row.pySpool = dirBytes(rwDir), dirBytes(pyDir)

	up := time.Now()
	if err := srv.SetMode(faults.OK); err != nil {
		_ = stopQueues()
		return fail(err)
	}
	fctx, fcancel := context.WithTimeout(ctx, 2*time.Minute)
	ferr := errors.Join(rwq.Flush(fctx), pyq.Flush(fctx))
	fcancel()
	row.drain = time.Since(up)
	if err := errors.Join(ferr, stopQueues()); err != nil {
		return fail(err)
	}
	c := srv.Counts()
	row.rwGot, row.pyGot = c.Samples, c.Profiles
	row.dups = c.SampleDups + c.ProfileDups + c.IDDups
	row.requests, row.wire = c.Requests, c.WireBytes
	if rwq.Len()+pyq.Len() != 0 || row.rwGot != row.rwItems || row.pyGot != row.pyItems || row.dups != 0 {
		row.err = fmt.Sprintf("outage: received %d of %d samples and %d of %d profiles, %d duplicates", row.rwGot, row.rwItems, row.pyGot, row.pyItems, row.dups)
	}
	fmt.Fprintf(os.Stderr, "bench: push outage: %d+%d items, spool %d+%d B, heap +%d B, fill %v, drain %v\n",
		row.rwItems, row.pyItems, row.rwSpool, row.pySpool, row.heapGrowth, row.fill.Round(time.Millisecond), row.drain.Round(time.Millisecond))
	return row
}

// markdown renders the push section.
func (r *pushReport) markdown() string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("## Pushing: encoding, bytes on the wire, outages\n\n")
	p("One snapshot (procmem walker) of `test/targets/latency -goroutines N`, folded and encoded as the agent does: one\n")
	p("remote-write item per series (one sample each) and one Pyroscope item per profile (goroutines, goroutine_wall).\n")
	p("*Items* is making the remote-write items from the series; *body* is one request body from them (merge, protobuf,\n")
	p("snappy); *profiles* is both folded profiles to pprof, gzip and push items. Medians, one core. *Wire* is request body bytes\n")
	p("per snapshot as sent by the real clients to an in-process receiver that decodes every request (HTTP headers\n")
	p("excluded); *per goroutine per hour* is both endpoints' bytes at the default %v cadence divided by N.\n", pushCadence)
	p("The target's goroutines share 4 stacks, so its profiles stay small whatever N; a program with more distinct\n")
	p("stacks sends proportionally larger profiles, and more series when it waits for more reasons.\n\n")
	p("| goroutines | series | items | body | samples/s | remote-write wire | profiles | pprof (raw) | MB/s of pprof | Pyroscope wire | bytes per goroutine per hour |\n")
	p("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, row := range r.rows {
		if row.err != "" {
			p("| %s | failed: %s | | | | | | | | | |\n", count(row.size), oneLine(row.err))
			continue
		}
		rwTime := row.rwItems + row.rwBody
		perHour := float64(row.rwWire+row.pyWire) * float64(time.Hour/pushCadence) / float64(row.size)
		p("| %s | %d | %s | %s | %s | %s | %s | %s | %.0f | %s | %s |\n", count(row.size), row.series,
			usDur(row.rwItems), usDur(row.rwBody), rate(float64(row.series), rwTime), bytesStr(row.rwWire),
			usDur(row.pyEncode), bytesStr(int64(row.pyRaw)), float64(row.pyRaw)/1e6/row.pyEncode.Seconds(),
			bytesStr(row.pyWire), bytesStr(int64(perHour)))
	}
	o := r.outage
	p("\n### A 10-minute outage\n\n")
	p("%d processes of %s goroutines at the %v cadence, both endpoints down for %v (%d rounds of snapshots), in\n",
		o.procs, count(o.goroutines), pushCadence, o.outage, o.rounds)
	p("simulated time: the rounds are folded and enqueued as fast as they can be (*fill*), into queues with the\n")
	p("agent's default configuration (spool per endpoint, fsync on segment roll), which keep retrying the closed port.\n")
	p("*Spool* is the spool files on disk at the end of the outage; *heap* the growth of this process's live heap\n")
	p("over the outage, at its end (after GC) and at its highest (as of each GC; it includes the encoding's garbage in flight),\n")
	p("which bounds what the queues hold in memory; *drain* is from the receiver coming back to the last item\n")
	p("delivered (it includes the wait for the next retry, under the backoff cap).\n\n")
	if o.err != "" && o.rwItems == 0 {
		p("Failed: %s\n\n", oneLine(o.err))
		return b.String()
	}
	p("| items (remote-write / Pyroscope) | fill | spool remote-write | spool Pyroscope | heap at end | heap at peak | drain | requests | bytes sent | received once | duplicates |\n")
	p("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|\n")
	p("| %d / %d | %s | %s | %s | %s | %s | %s | %d | %s | %d / %d | %d |\n", o.rwItems, o.pyItems, ms(o.fill),
		bytesStr(o.rwSpool), bytesStr(o.pySpool), bytesStr(o.heapGrowth), bytesStr(o.peakGrowth), ms(o.drain), o.requests,
		bytesStr(o.wire), o.rwGot, o.pyGot, o.dups)
	if o.err != "" {
		p("\n%s\n", oneLine(o.err))
	}
	p("\nPer hour of outage that is %s of spool for these 20 processes (the default budget is 256 MiB per endpoint;\n",
		bytesStr((o.rwSpool+o.pySpool)*int64(time.Hour/o.outage)))
	p("beyond it the oldest items are dropped and counted as `spool_full`).\n\n")
	return b.String()
}

// usDur formats a duration in microseconds (milliseconds from 10 ms).
func usDur(d time.Duration) string {
	if d >= 10*time.Millisecond {
		return ms(d)
	}
	return fmt.Sprintf("%.0f µs", float64(d)/1e3)
}

// rate formats n per d as a per-second rate.
func rate(n float64, d time.Duration) string {
	if d <= 0 {
		return "–"
	}
	v := n / d.Seconds()
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.1f M", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.0f k", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

// bytesStr formats a byte count in B, kB or MB (decimal).
func bytesStr(n int64) string {
	if n < 0 {
		return "−" + bytesStr(-n)
	}
	switch {
	case n >= 1e6:
		return mb(float64(n))
	case n >= 1e3:
		return fmt.Sprintf("%.1f kB", float64(n)/1e3)
	}
	return fmt.Sprintf("%d B", n)
}

// benchClients makes a remote-write and a Pyroscope client of srv, named
// rwName and pyName.
func benchClients(srv *faults.Server, rwName, pyName string) (*remotewrite.Client, *pyroscope.Client, error) {
	rw, err := remotewrite.New(remotewrite.Options{Name: rwName, HTTP: endpoint.Config{URL: srv.WriteURL}})
	if err != nil {
		return nil, nil, err
	}
	py, err := pyroscope.New(pyroscope.Options{Name: pyName, HTTP: endpoint.Config{URL: srv.URL}})
	if err != nil {
		return nil, nil, err
	}
	return rw, py, nil
}
