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
//	                         first), service, pid, Go version, goroutines by state
//	#/p/PID/START?PARAMS     one process: its findings above everything else,
//	                         counts over time, flame graph with filters, diff
//	                         of two moments, goroutine table, downloads.
//	                         PARAMS (optional, a link's view): tab=, at=,
//	                         state=, wait_reason=, wait_duration=, label=,
//	                         q= (goroutine search), site= (goroutine table),
//	                         focus= (a function the flame graph highlights)
//
// JSON API. PID and START identify a process (START is its start time in
// clock ticks after boot, store.ProcessKey). AT, FROM and TO are RFC 3339
// times; each picks the newest stored entry at or before it (the oldest one
// when none is before it; the newest when empty). Filters, accepted by flame,
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
//	      findings_count, finding_kinds: [{kind, count}]}] live and stored
//	    processes; walker_reason says why the walker is not eBPF. findings
//	    (live processes) are those holding at the last snapshot, the worst
//	    first (docs/findings-json.md); findings_count and finding_kinds (the
//	    worst kind first) count them, for stored processes from the newest
//	    entry's summary. Processes with findings come first, the worst first.
//	GET /api/processes/{pid}/{start}/series?from=&to=
//	    {moments: [RFC 3339 times of stored snapshots], total: [n per moment],
//	     states: {state: [n per moment]}, wait_reasons: {reason: [n per moment]},
//	     kinds: [profile kinds stored in the range]}
//	    from the entries' summaries, without reading payloads.
//	GET /api/processes/{pid}/{start}/flame?kind=&at=&group=&filters
//	    {entry, unit, sample_type, total, unfiltered_total, root: {name,
//	     value, kind, children}, facets: {states, wait_reasons,
//	     wait_durations, labels}} where root is
//	    the filtered profile of kind (a profile kind, default goroutines) as a
//	    call tree (value includes children); group=state puts frames of
//	    kind "state" and, under them, "wait_reason" (the samples' labels)
//	    between the root and the stacks (a function's frame has no kind); and
//	    facets count the unfiltered profile's values per filterable label.
//	GET /api/processes/{pid}/{start}/diff?from=&to=&filters
//	    {from, to, from_total, to_total, appeared: [item], vanished: [item],
//	     omitted} where an item is {stack: [frames, leaf first], labels, from,
//	    to, delta}: goroutines grouped by stack and labels (wait_duration
//	    excluded, since it changes as goroutines keep waiting); appeared has
//	    delta > 0, vanished delta < 0, largest change first.
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
//     encoded size: flame, diff and filtered downloads refuse one larger
//     than Options.MaxProfileBytes decompressed (default 2 MiB) with 413,
//     naming the limit. The unfiltered pprof download serves any, as stored.
//     A diff reads its two profiles one after the other.
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
