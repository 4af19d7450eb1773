// Findings (docs/findings-json.md): the badges of the process list, and
// the process page's findings panel, above everything else. Each finding
// about a group links to it in the goroutine table (site=, exactly the
// group) and in the flame graph (its state and wait reason, its frame's
// function highlighted). A runtime finding (RUNTIME_KINDS: about the
// process's settings, no group) shows its fix first, and what it was
// judged on. Summaries, sites, objects and settings are the target's:
// text only.
import { api } from "./api.js";
import { el, labelsEl, showError } from "./dom.js";
import { fmtBytes, fmtCores, fmtInt, fmtPercent, fmtSeconds, fmtSpan, fmtTime, fmtWait } from "./format.js";

// FINDING_KINDS are the kinds of finding, the worst first (findings.Severity),
// then by name.
export const FINDING_KINDS = ["all-asleep", "gc-off-unbounded", "leak", "no-memory-limit", "gomaxprocs-over-quota", "runqueue-backlog", "stuck",
  "godebug-left-on"];
// RUNTIME_KINDS are the kinds about the process's runtime settings and
// health (findings.RuntimeKinds): no site, no goroutines to show.
export const RUNTIME_KINDS = ["gomaxprocs-over-quota", "no-memory-limit", "gc-off-unbounded", "runqueue-backlog", "godebug-left-on"];
const KIND_TITLE = {
  "all-asleep": "every goroutine parked, waiting on another, for long",
  leak: "a group of goroutines that keeps growing while its goroutines stay",
  stuck: "many goroutines waiting on one object for long",
  "gc-off-unbounded": "GOGC=off with no memory limit: the heap grows until the process is killed",
  "no-memory-limit": "a cgroup memory limit, no GOMEMLIMIT, and a live heap near it",
  "gomaxprocs-over-quota": "GOMAXPROCS above the cgroup's CPU quota, and the kernel throttling the process",
  "runqueue-backlog": "more goroutines ready to run than the Ps run, for long",
  "godebug-left-on": "GODEBUG debugging settings left on, costly in production",
};

// kindBadge is a finding kind's badge, coloured by severity; with a count
// when there are several.
export function kindBadge(kind, count) {
  const known = FINDING_KINDS.includes(kind) ? kind : "other";
  return el("span", { class: `badge badge-${known}`, dataset: { kind }, title: KIND_TITLE[kind] || "" },
    count > 1 ? `${kind} ×${count}` : kind);
}

// findingsCell is the process list's findings column: the count and a
// badge per kind, the worst first (the API orders them).
export function findingsCell(p) {
  const n = p.findings_count || 0;
  if (!n) return el("td", { class: "findings-cell" });
  return el("td", { class: "findings-cell" }, el("span", { class: "findings-count" }, fmtInt(n)),
    (p.finding_kinds || []).map((k) => kindBadge(k.kind, k.count)));
}

// funcOf is the function of a "function file:line" frame text.
const funcOf = (frame) => (frame || "").split(" ")[0];

// shortFrame is "function:line" of a "function file:line" frame text.
function shortFrame(frame) {
  const i = (frame || "").indexOf(" ");
  if (i < 0) return frame || "";
  const loc = frame.slice(i + 1);
  const c = loc.lastIndexOf(":");
  return frame.slice(0, i) + (c >= 0 ? loc.slice(c) : "");
}

// siteText is a site in short: where it blocks, who created it, and how.
export function siteText(s) {
  const where = s.frame ? shortFrame(s.frame) : `(${s.state})`;
  const how = s.wait_reason ? `${s.state}: ${s.wait_reason}` : s.state;
  return `${where}${s.created_by ? " ← " + shortFrame(s.created_by) : ""} [${how}]`;
}

// objectRow describes one object the goroutines wait on.
function objectRow(o) {
  const chan = o.kind === "chan";
  return el("tr", { class: "object" },
    el("td", { class: "mono" }, o.address || "?"),
    el("td", {}, o.kind || ""),
    el("td", {}, chan ? (o.capacity ? `buffer ${fmtInt(o.length)}/${fmtInt(o.capacity)}` : "unbuffered") : "–"),
    el("td", { class: "num" }, chan ? fmtInt(o.senders) : "–"),
    el("td", { class: "num" }, chan ? fmtInt(o.receivers) : "–"),
    el("td", {}, chan ? (o.closed ? "closed" : "not closed") : "–"),
    el("td", { class: "num" }, typeof o.goroutines === "number" ? fmtInt(o.goroutines) : "–"));
}

// links are a finding's ways into the page's views: the goroutine table
// filtered to exactly its group at moment at, and the flame graph of that
// moment (a range of just it) filtered to its state and wait reason with
// its frame's function in focus.
function links(v, site, siteID, at, confirmed) {
  const goroutines = { tab: "goroutines", site: siteID, at, gview: "each" };
  // Leaked goroutines (Go 1.26's detector) are in the group's site as
  // waiting, but carry their own state in profiles: no state filter then.
  const flame = { tab: "flame", wait_reason: site.wait_reason || "", from: at, to: at, focus: funcOf(site.frame) };
  if (!(confirmed && site.state === "waiting")) flame.state = site.state;
  return el("span", { class: "finding-links" },
    el("a", v.linkAttrs(goroutines, { class: "show-goroutines" }), "show these goroutines"),
    el("a", v.linkAttrs(flame, { class: "show-flame" }), "flame graph"));
}

// EVIDENCE are the fields of a runtime finding's evidence
// (findings.RuntimeEvidence) as shown: [field, label, format].
const EVIDENCE = [
  ["gomaxprocs", "GOMAXPROCS", fmtInt],
  ["cpu_quota_cores", "CPU quota", fmtCores],
  ["throttled_periods", "periods throttled", fmtInt],
  ["throttled_ratio", "share throttled", fmtPercent],
  ["throttled_seconds", "held back", fmtSeconds],
  ["window_seconds", "window", fmtSpan],
  ["gogc_percent", "GOGC", (n) => (n < 0 ? "off" : fmtInt(n))],
  ["memory_limit_bytes", "GOMEMLIMIT", (n) => (n >= 9e18 ? "none" : fmtBytes(n))],
  ["cgroup_memory_limit_bytes", "cgroup memory limit", fmtBytes],
  ["heap_live_bytes", "heap live", fmtBytes],
  ["heap_goal_bytes", "heap goal", fmtBytes],
  ["heap_inuse_bytes", "heap in use", fmtBytes],
  ["suggested_memory_limit_bytes", "suggested GOMEMLIMIT", fmtBytes],
  ["runqueue_goroutines", "goroutines waiting to run", fmtInt],
  ["runqueue_per_p", "per P", (n) => fmtInt(Math.round(n))],
  ["godebug", "GODEBUG", (vs) => vs.join(",")],
  ["set_by", "set by", String],
  ["go_version", "Go", String],
];

// runtimeCard is a runtime finding holding now: its fix first, then what
// it was judged on; no site, and no links to goroutines.
function runtimeCard(f, hist, a) {
  const ev = f.runtime || {};
  // The summary ends with the fix too: said once, in the fix's box.
  const summary = f.fix && (f.summary || "").endsWith(`; ${f.fix}`) ? f.summary.slice(0, -f.fix.length - 2) : f.summary || "";
  const since = hist ? el("span", { class: "since" }, `holding since ${fmtTime(hist.first)}`,
    a.truncated && hist.first === a.history_from ? " (or earlier: older history not read)" : "",
    hist.moments > 1 ? ` (${fmtInt(hist.moments)} stored moments)` : "") : null;
  return el("div", { class: `finding finding-runtime finding-${FINDING_KINDS.includes(f.kind) ? f.kind : "other"}`, dataset: { id: f.id, kind: f.kind } },
    el("div", { class: "finding-head" }, kindBadge(f.kind, 1), el("span", { class: "finding-summary" }, summary)),
    f.fix ? el("div", { class: "finding-fix" }, el("b", {}, "Fix: "), el("span", { class: "fix-text" }, f.fix)) : null,
    el("div", { class: "finding-evidence" }, EVIDENCE.filter(([k]) => ev[k] !== undefined && ev[k] !== null && ev[k] !== "").map(([k, label, fmt]) =>
      el("span", { dataset: { field: k } }, el("span", { class: "muted" }, `${label} `), el("span", { class: "ev-value" }, fmt(ev[k]))))),
    el("div", { class: "finding-facts" }, since, f.first_seen ? el("span", {}, "first seen ", fmtTime(f.first_seen)) : null));
}

// findingCard is one finding holding now, with its evidence.
function findingCard(v, f, hist, a) {
  if (RUNTIME_KINDS.includes(f.kind) || f.runtime) return runtimeCard(f, hist, a);
  const s = f.site || {};
  const facts = [
    `${fmtInt(f.goroutines)} goroutines`,
    f.growth_per_hour ? `+${fmtInt(Math.round(f.growth_per_hour))}/h` : null,
    f.oldest_seconds ? `the oldest for ${fmtWait(f.oldest_seconds)}` : null,
    f.departed ? `${Math.round(f.departed * 100)}% left the group` : null,
  ].filter(Boolean).join(", ");
  const since = hist ? el("span", { class: "since" }, `holding since ${fmtTime(hist.first)}`,
    a.truncated && hist.first === a.history_from ? " (or earlier: older history not read)" : "",
    hist.moments > 1 ? ` (${fmtInt(hist.moments)} stored moments)` : "") : null;
  const firstSeen = f.first_seen ? el("span", {}, f.kind === "leak" ? "group first seen " : "longest wait began ", fmtTime(f.first_seen)) : null;
  const objects = (f.objects || []).length ? el("div", { class: "finding-objects" },
    el("div", { class: "muted" }, f.distinct_objects > f.objects.length
      ? `waiting on ${fmtInt(f.distinct_objects)} distinct objects; the ${f.objects.length} most waited on:` : "waiting on:"),
    el("table", { class: "objects" },
      el("thead", {}, el("tr", {}, ["object", "kind", "buffer", "senders", "receivers", "closed", "goroutines"].map((h, i) =>
        el("th", { class: i >= 3 && i !== 5 ? "num" : "" }, h)))),
      el("tbody", {}, f.objects.map(objectRow)))) : null;
  const related = (f.related || []).length ? el("div", { class: "finding-related" },
    el("div", { class: "muted" }, "parked as long, may hold what they wait for:"),
    el("ul", {}, f.related.map((r) => el("li", { class: "mono" }, siteText(r))))) : null;
  const example = (f.example || []).length ? el("details", { class: "finding-example" },
    el("summary", {}, `example stack (${f.example.length} frames)`),
    el("div", { class: "stack" }, f.example.map((fr) => el("div", {},
      el("span", { class: "fn" }, fr.function + (fr.inlined ? " (inlined)" : "")), `\n    ${fr.file}:${fr.line}`)))) : null;
  return el("div", { class: `finding finding-${FINDING_KINDS.includes(f.kind) ? f.kind : "other"}`, dataset: { id: f.id, kind: f.kind, siteId: f.site_id } },
    el("div", { class: "finding-head" }, kindBadge(f.kind, 1), el("span", { class: "finding-summary" }, f.summary || "")),
    el("div", { class: "finding-site" },
      s.frame ? el("span", {}, "blocks in ", el("span", { class: "mono" }, s.frame)) : el("span", {}, `no frame outside the runtime (${s.state})`),
      s.created_by ? el("span", {}, "created by ", el("span", { class: "mono" }, s.created_by)) : el("span", { class: "muted" }, "the main goroutine"),
      el("span", {}, s.wait_reason ? `${s.state}: ${s.wait_reason}` : s.state)),
    el("div", { class: "finding-facts" }, el("span", {}, facts),
      f.confirmed_by_runtime ? el("span", { class: "confirmed" }, "confirmed by the runtime (Go's goroutine leak detector)") : null,
      since, firstSeen),
    objects, related,
    Object.keys(f.labels || {}).length ? el("div", {}, el("span", { class: "muted" }, "labels "), labelsEl(Object.fromEntries(
      Object.entries(f.labels).map(([k, vs]) => [k, vs.join(" | ")])))) : null,
    example,
    links(v, s, f.site_id, a.time, f.confirmed_by_runtime));
}

// historyItem is a finding seen earlier in the stored history that no
// longer holds.
function historyItem(v, h) {
  return el("li", { class: "finding-earlier", dataset: { id: h.id, kind: h.kind, siteId: h.site_id } },
    kindBadge(h.kind, 1), " ", el("span", { class: "finding-summary" }, h.summary || ""),
    el("span", { class: "muted" }, ` — held ${fmtTime(h.first)} to ${fmtTime(h.last)} (${fmtInt(h.moments)} stored moments) `),
    RUNTIME_KINDS.includes(h.kind) ? null : links(v, h.site || {}, h.site_id, h.last, false));
}

// loadFindings fills box, the panel above everything else on the process
// page, with GET findings: those holding now (a custom range: at its
// end), then the earlier ones. signal aborts the request.
export async function loadFindings(v, box, signal) {
  if (!box.childElementCount) box.replaceChildren(el("p", { class: "muted" }, "Loading findings…"));
  const p = new URLSearchParams();
  if (!v.st.range) p.set("to", new Date(Date.parse(v.atParam()) + 1).toISOString()); // to= is exclusive
  let a;
  try {
    a = await api(`${v.base}/findings?${p}`, signal);
  } catch (e) {
    if (signal?.aborted) return;
    showError(box, new Error(`findings: ${e.message || e}`));
    return;
  }
  if (v.st.destroyed || signal?.aborted) return;
  for (const x of [...a.findings, ...a.history]) if (x.site_id) v.sites[x.site_id] = x.site;
  const byID = Object.fromEntries(a.history.map((h) => [h.id, h]));
  const earlier = a.history.filter((h) => !h.holding);
  const where = a.live ? `live, last snapshot ${fmtTime(a.time)}` : `stored, ${fmtTime(a.time)}`;
  box.dataset.count = a.findings.length;
  if (!a.findings.length && !earlier.length) {
    box.replaceChildren(el("p", { class: "muted", id: "findings-none" },
      `No findings (${where}): no leak, stuck group, all-asleep program or runtime setting at odds with the process's limits in the stored history.`));
    siteChip(v);
    return;
  }
  const history = a.entries ? `history of ${fmtInt(a.entries)} stored moments from ${fmtTime(a.history_from)}` +
    (a.truncated ? " (older ones not read)" : "") + (a.skipped ? `, ${fmtInt(a.skipped)} too large to read` : "") : "no stored history";
  box.replaceChildren(
    el("h3", {}, a.findings.length ? `Findings (${a.findings.length})` : "No findings now",
      el("span", { class: "muted" }, ` — ${where}; ${history}`)),
    ...a.findings.map((f) => findingCard(v, f, byID[f.id], a)),
    ...(earlier.length ? [el("div", { class: "findings-earlier" }, el("h4", {}, `Earlier findings, no longer holding (${earlier.length})`),
      el("ul", {}, earlier.map((h) => historyItem(v, h))),
      a.omitted ? el("p", { class: "muted" }, `${fmtInt(a.omitted)} more not listed`) : null)] : []));
  siteChip(v);
}

// siteChip names the goroutine table's site filter, once the findings
// say which site its id is.
export function siteChip(v) {
  const label = document.getElementById("goroutines-site-label");
  const s = v.sites[v.st.site];
  if (label && s) label.textContent = siteText(s);
}
