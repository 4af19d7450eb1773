// Package ui is goroscope's own web UI, served by the agent (127.0.0.1:7070
// by default) and the embedded default when no backend is configured. It
// reads the agent's live view of processes and the local store (pkg/store).
// All filtering, tree building and diffing is Go code in this package; the
// browser only renders (plain HTML and ES modules, one per view, under
// static/app.js and static/js/, no build step; libraries vendored under
// static/vendor; all embedded, so building needs no network).
//
// Pages (one HTML page, routed by the URL fragment):
//
//	#/                       process list: findings (count and a badge per
//	                         kind; those with findings first, the worst
//	                         first), growth over 15 min (sortable; growing
//	                         processes just after those with findings),
//	                         service, pid, Go version, goroutines by state;
//	                         live short-lived processes hidden until shown
//	#/s/NAME?PARAMS          one service (NAME URL-encoded) across its
//	                         processes, restarts and all: each process's
//	                         goroutines and their total over the range
//	                         (range=15m|1h|6h|24h ending at the service's
//	                         newest moment, or from=&to=), and its processes,
//	                         the newest first, each linking to its page, and
//	                         its crash records (GET /api/crashes), each
//	                         linking to its last snapshot
//	#/p/PID/START?PARAMS     one process: its findings above everything else,
//	                         its runtime settings and health (live, once
//	                         read), counts over a time range (picked, or
//	                         dragged on a chart) and the runtime health's
//	                         series (heap and memory limits; GOMAXPROCS,
//	                         CPU quota and throttling), the flame graph merged over the range,
//	                         the diff flame graph of a baseline range against
//	                         it, goroutine table (at the range's end, or a
//	                         moment clicked on a chart), downloads. The whole
//	                         view is kept in PARAMS (history.replaceState),
//	                         so a copied link reproduces it; with a relative
//	                         range the page refreshes itself, pausing while
//	                         the user inspects. PARAMS, listed in
//	                         static/js/urlstate.js: tab=, kind=,
//	                         range=15m|1h|6h|24h or from=&to=, at=, the
//	                         filters (state=, wait_reason=, wait_duration=,
//	                         label=), focus=, zoom=a;b;c, view=, fn=,
//	                         search=, regexp=, color=, group=state,
//	                         base_from=, base_to=, normalize=, q=, site=,
//	                         addr=, gview=, gsort=, expand=, runtime=,
//	                         refresh=
//
// JSON API. PID and START identify a process (START is its start time in
// clock ticks after boot, store.ProcessKey). Times are RFC 3339: at= picks
// the newest stored entry at or before it (the oldest one when none is
// before it; the newest when empty); from= and to= (base_from=, base_to=)
// bound a range, from <= time < to for series and findings, from <= time
// <= to for flame and diff (to= empty: up to the newest). Filters, accepted by flame,
// diff, goroutines and download: state=, wait_reason=, wait_duration= (one of
// fold.WaitBuckets) and label=k=v (repeatable; all must match); site= (a
// finding's site_id: exactly the goroutines of that group, as pkg/findings
// groups them) by goroutines and kind=snapshot downloads only, since profile
// samples carry no site. Errors are {"error": "..."} with a 4xx or 5xx status.
//
//	GET /api/kinds
//	    [{kind, profile, value, description}] every kind the UI shows or
//	    downloads, in display order: store.ProfileKinds (profile set: flame
//	    graphs), then the snapshot. The page has no list of its own.
//	GET /api/processes
//	    [{pid, start_time, service_name, exe, go_version, live, counts,
//	      total, last_snapshot, walker, walker_reason, error, findings,
//	      runtime, findings_count, finding_kinds: [{kind, count}]}] live
//	    and stored processes; walker_reason says why the walker is not
//	    eBPF. runtime (live processes, once read) is the newest read of the
//	    runtime settings and health (pkg/findings.RuntimeHealth): {time,
//	    go_version, runtime: {gomaxprocs, gogc_percent (-1: off),
//	    memory_limit_bytes (9223372036854775807: no GOMEMLIMIT),
//	    heap_live_bytes, heap_goal_bytes, heap_inuse_bytes, gc_cycles,
//	    runqueue_goroutines, global_runqueue_goroutines, idle_procs, threads
//	    (-1: unknown)}, runtime_error, cgroup: {cpu_version, memory_version,
//	    cpu_quota_cores (0: none), cpu_periods, cpu_throttled_periods,
//	    cpu_throttled_seconds, memory_limit_bytes (0: none),
//	    memory_usage_bytes, oom_kills, have_oom_kills, cpu_error,
//	    memory_error}, cgroup_error, env: [{name, value, truncated}] (the GO*
//	    variables the process started with, as the target has them),
//	    env_error}; runtime is absent where it could not be read (the errors
//	    say why), cgroup likewise. findings
//	    (live processes) are those holding at the last snapshot, the worst
//	    first (docs/findings-json.md); findings_count and finding_kinds (the
//	    worst kind first) count them, for stored processes from the newest
//	    entry's summary. Also first_seen, growth: {window_seconds, since,
//	    from, to, delta, growing}, short_lived, exited. first_seen is the
//	    oldest stored snapshot read. growth (absent without a stored moment
//	    in the window) runs from the oldest stored moment in the 15 minutes
//	    before the last snapshot (since, from) to the last (to); growing when
//	    delta is at least 10 and 10% of from. short_lived: a live process
//	    without findings seen for under a minute with at most 32 goroutines
//	    (the list hides them by default). exited: the agent still lists it
//	    but its last snapshot found it gone (live is false). Order: findings
//	    first, the worst first; then growing, the largest growth first; then
//	    live; then service and pid. All from the newest 20000 goroutines
//	    entries' summaries.
//	GET /api/crashes?service=&from=&to=
//	    {crashes: [pkg/crash.Record], skipped} the stored crash records,
//	    the newest first (at most 200): why each watched process died (its
//	    exit's reason, code or signal, the runtime's message when seen,
//	    class and hint: docs/crashes.md), its last snapshot's time and
//	    age, the findings holding then and its runtime health. service=
//	    (any bytes) keeps one service's; skipped counts unreadable ones.
//	GET /api/services/{name}?from=&to=
//	    {service, from, to, newest, processes: [{pid, start_time,
//	     service_name, exe, go_version, key, live, exited, first_seen,
//	     last_seen, peak, last, findings_count, moments}], omitted, truncated,
//	     series: {moments, downsampled, by_process: {key: [n or null per
//	     moment]}, total: [n per moment]}}
//	    one service's history across restarts; name is URL-escaped (any
//	    bytes; empty: the unnamed). Processes are the live ones and those in
//	    the newest 20000 stored goroutines entries; listed are those live or
//	    with moments in [from, to), the 50 most recently seen, newest first
//	    by first_seen; omitted counts the rest. key is "PID/START".
//	    first_seen/last_seen span its stored snapshots (its newest 10000
//	    read; truncated when more), last_seen the live last snapshot if
//	    newer; peak is its most goroutines at a moment in the range (or live
//	    now), last those at last_seen, findings_count those holding then,
//	    moments its stored moments in the range. newest: the newest moment of
//	    any of its processes, whatever the range. series: one time axis, the
//	    stored moments or, past 1000, the starts of 1000 equal buckets (empty
//	    ones left out; a bucket holds a process's most); by_process null where
//	    a process has no moment; total sums per moment each process's latest
//	    value from its first moment to its last. Summaries only, never
//	    payloads. 404 for an unknown service.
//	GET /api/processes/{pid}/{start}/series?from=&to=&runtime=
//	    {moments: [RFC 3339 times of stored snapshots], total: [n per moment],
//	     states: {state: [n per moment]}, wait_reasons: {reason: [n per moment]},
//	     folded: {series: [reasons]}, step_seconds, kinds: [profile kinds
//	     stored in the range], runtime: {series: [value or null per moment]}}
//	    from the entries' summaries, without reading payloads. The wait
//	    reasons only the runtime's own goroutines wait with (GC workers,
//	    sweeper, scavenger, finalizer and cleanup goroutines, forcegc, trace
//	    reader, GOMAXPROCS updater: IsRuntimeReason) are summed into one
//	    series "runtime (system)" unless runtime=1; past 12 series the
//	    smallest peaks are summed into "other (smaller wait reasons)";
//	    folded names the reasons each of these two sums, the largest peak
//	    first (no key when the series is absent). step_seconds is the median time
//	    between two moments (0 with fewer than two). runtime are the series
//	    of the runtime health, named as agent/daemon's goroscope_go_* and
//	    goroscope_cgroup_* metrics without "goroscope_" (go_gomaxprocs,
//	    go_heap_live_bytes, go_memory_limit_bytes, cgroup_memory_limit_bytes,
//	    cgroup_cpu_throttled_seconds_total, ...; counters keep their _total),
//	    null at the moments the health was not read (it is read at some
//	    snapshots only) or the series does not apply (no cgroup limit); {}
//	    when no moment has a read.
//	GET /api/processes/{pid}/{start}/flame?kind=&at=&group=&filters
//	GET /api/processes/{pid}/{start}/flame?kind=&from=&to=&group=&filters
//	    {entry, unit, sample_type, total, unfiltered_total, root: {name,
//	     value, kind, children}, facets: {states, wait_reasons,
//	     wait_durations, labels}, truncated, range} where root is
//	    the filtered profile of kind (a profile kind, default goroutines) as a
//	    call tree (value includes children); group=state puts frames of
//	    kind "state" and, under them, "wait_reason" (the samples' labels)
//	    between the root and the stacks (a function's frame has no kind); and
//	    facets count the unfiltered profile's values per filterable label.
//	    With at= (or nothing: the newest) it is the one entry at that
//	    moment and there is no range. With from= it is every entry of kind
//	    with from <= time <= to (to= empty: up to the newest) merged into
//	    one profile by the kind's rule (MergeRule, by the sample type
//	    shown): "average" for populations at a moment (goroutines,
//	    goroutineleak, memory's inuse_space), value = sum / merged;
//	    "sum" for totals over each entry's interval (goroutine_wall,
//	    process_cpu, mutex, block, alloc_*), value = sum * entries /
//	    merged. Values, totals and facets are JSON numbers, fractional for
//	    an average; a child never exceeds its parent. entry is then the
//	    newest entry merged, and range is {from, to (to= resolved: the
//	    newest entry's time when empty), first, last (times of the oldest
//	    and newest entries merged), entries (the kind's entries in the
//	    range), merged (entries read and merged), skipped (read but left
//	    out: too large or unreadable), merge ("average" or "sum"), scale
//	    (what the merged entries' summed values were multiplied by)}.
//	    at= and from= together, or to= without from=, are refused (400).
//	GET /api/processes/{pid}/{start}/diff?kind=&base_from=&base_to=&from=&to=&group=&filters
//	    {unit, sample_type, merge, base: range, comparison: range,
//	     base_total, total, truncated, base_default, root: {name, value,
//	     base, kind, children}}: a diff flame graph of any profile kind
//	    (default goroutines). The comparison is from..to merged (from=
//	    required), the baseline base_from..base_to, each as flame's
//	    from=..to= (to= empty: the newest entry). Without base_from= the
//	    baseline is the equally long range just before the comparison
//	    (base_default "previous"); when nothing is stored there, the newest
//	    entry before the comparison ("previous_moment"); when there is none,
//	    the first quarter of the comparison's span, at least its oldest
//	    entry ("first_quarter").
//	    root is the union of both trees: value is a frame's comparison
//	    value, base its baseline value (0 on a side without the frame);
//	    base_total and total are the sides' filtered totals. Filters and
//	    group=state apply to both sides (wait_duration= to each entry's
//	    own buckets).
//	GET /api/processes/{pid}/{start}/goroutines?at=&q=&offset=&limit=&filters
//	    {entry, total, matched, offset, goroutines: [snapshot.Goroutine]} from
//	    the snapshot entry; q is words that must all appear (case-insensitive)
//	    in the id, state, wait reason, labels or any frame's function or file.
//	GET /api/processes/{pid}/{start}/findings?from=&to=
//	    {live, time, entry, findings: [finding], history: [{id, kind, summary,
//	     site, site_id, goroutines, first_seen, first, last, moments, holding}],
//	     history_from, history_to, entries, truncated, skipped, omitted}:
//	    findings are those holding at time: the live process's (live set;
//	    when to= is empty), else those stored at the newest stored moment
//	    before to= (none when that moment had none). history is every finding
//	    stored in [from, to), by id, with its newest summary and the first
//	    and last stored moments it held at (holding ones first, then the
//	    worst first). It reads the newest 2000 findings entries of the range,
//	    at most 4 MiB decompressed each and 64 MiB in all (truncated when
//	    older ones were left unread; skipped counts larger ones).
//	GET /api/processes/{pid}/{start}/download?kind=&at=&format=pprof|folded|json&filters
//	    an attachment (kind defaults to goroutines, format to pprof): pprof
//	    is gzipped pprof (the stored payload itself when unfiltered; for
//	    kind=snapshot the goroutines profile folded from it), folded is
//	    "state: wait reason;root;...;leaf value" lines, json is the snapshot
//	    (kind=snapshot) or the flame answer (profile kinds).
//
// Bounds. The agent runs in a fixed memory budget whatever its targets look
// like, so the answers stream or page on the server side:
//
//   - Snapshots are read one goroutine at a time (snapshot.Stream), never
//     held whole: the goroutine table keeps the page asked for (limit at
//     most 1000), the JSON download is written as it is read, the folded
//     and pprof downloads hold a count per stack (pprof: a chunk of
//     goroutines at a time).
//   - A pprof profile is parsed in memory, which takes 5 to 18 times its
//     encoded size: one larger than Options.MaxProfileBytes decompressed
//     (default 2 MiB) is refused by flame at=, filtered downloads and
//     JSON downloads with 413, naming the limit, and skipped (counted in
//     the range's skipped) by a merged range, which fails with 413 only
//     when every entry it read was. The unfiltered pprof download serves
//     any, as stored.
//   - A merged range (flame from=, diff) reads its profiles one at a time
//     into one tree, checking between two that the request is still
//     wanted: at most 240 profiles per request (a diff: 120 per range),
//     spread evenly over the range (its oldest and newest included) when
//     it holds more. It lists the range from the store's index 10000
//     entries at a time, keeping only those it reads.
//   - A flame or diff tree holds at most 200000 frames (a diff's two sides
//     together); frames past it are folded into their parent, and the
//     answer is marked truncated.
//   - A service answer reads summaries only: at most 50 processes, 10000
//     entries each, 1000 moments.
//   - A findings answer reads its entries one at a time, and the history one
//     finding at a time, within the bounds above.
//   - flame, diff, goroutines, download and findings are served Options.MaxHeavyRequests
//     at a time (default 4); past it they are refused at once with 503 and
//     Retry-After (the page retries twice, then shows the error).
//
// Refusals are counted in goroscope_ui_requests_refused_total{reason="busy"
// (503) or "too_large" (413)}, registered with Options.Registerer.
//
// It is internal to goroscope, not meant for import by other modules: its
// API may change at any time. The one public API is pkg/inproc.
package ui
