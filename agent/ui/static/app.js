// goroscope UI: renders what the Go handlers under /api/ compute. Every
// value shown comes from a target process and is untrusted: text is only
// ever set with textContent (el()), never parsed as HTML.
"use strict";

const STATES = ["running", "runnable", "syscall", "waiting", "leaked"];
const STATE_COLORS = { running: "#16a34a", runnable: "#ca8a04", syscall: "#7c3aed", waiting: "#0284c7", leaked: "#dc2626" };
// Profile kinds the flame graph offers; a process has those its collectors give.
const PROFILE_KINDS = [
  ["goroutines", "goroutines (count)"], ["goroutine_wall", "goroutine_wall (time waited)"],
  ["process_cpu", "process_cpu (on-CPU time)"], ["memory", "memory (heap)"],
  ["mutex", "mutex (contention)"], ["block", "block (time blocked)"], ["goroutineleak", "goroutineleak (Go 1.26)"],
];
const PALETTE = ["#0284c7", "#ea580c", "#16a34a", "#9333ea", "#dc2626", "#0891b2", "#ca8a04", "#db2777", "#4b5563", "#65a30d", "#2563eb", "#a16207"];
const WAIT_BUCKETS = ["<1s", "1s-10s", "10s-1m", "1m-10m", ">10m"];

// el builds an element: attrs are properties (on* are listeners), children
// are nodes or strings (text).
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "class") e.className = v;
    else if (k === "dataset") Object.assign(e.dataset, v);
    else if (k in e) e[k] = v;
    else e.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

async function api(path) {
  const r = await fetch(path, { headers: { Accept: "application/json" } });
  const body = await r.json().catch(() => ({ error: `${r.status} ${r.statusText}` }));
  if (!r.ok) throw new Error(body.error || `${r.status} ${r.statusText}`);
  return body;
}

const fmtInt = (n) => Number(n).toLocaleString("en-US");
function fmtValue(v, unit) {
  if (unit === "nanoseconds") {
    const s = v / 1e9;
    return s >= 100 ? `${fmtInt(Math.round(s))} s` : `${s.toPrecision(3)} s`;
  }
  return fmtInt(v);
}
function fmtTime(t) {
  const d = new Date(t);
  return isNaN(d) || d.getFullYear() < 2000 ? "–" : d.toLocaleString("en-GB", { hour12: false });
}
function fmtWait(s) {
  if (!s) return "";
  if (s < 1) return `${Math.round(s * 1000)} ms`;
  if (s < 120) return `${s.toFixed(1)} s`;
  if (s < 7200) return `${(s / 60).toFixed(1)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}
function labelsEl(labels) {
  return el("span", { class: "labels" }, Object.keys(labels || {}).sort().map((k) => el("span", {}, `${k}=${labels[k]}`)));
}

// topFrame names a stack ("func file:line", leaf first) by its first
// frame outside the runtime.
function topFrame(stack) {
  const f = stack.find((x) => !x.startsWith("runtime.")) || stack[0] || "(no frames)";
  return f.split(" ")[0];
}

function showError(where, err) {
  where.replaceChildren(el("p", { class: "error" }, String(err && err.message ? err.message : err)));
}

// ---- routing ----

let current = null; // the active view, with a destroy() method

function route() {
  if (current && current.destroy) current.destroy();
  current = null;
  const app = document.getElementById("app");
  const crumb = document.getElementById("crumb");
  const m = location.hash.match(/^#\/p\/(\d+)\/(\d+)/);
  if (m) {
    current = processView(app, crumb, m[1], m[2]);
  } else {
    crumb.textContent = "processes";
    listView(app);
  }
}
window.addEventListener("hashchange", route);
window.addEventListener("DOMContentLoaded", route);

// ---- process list ----

async function listView(app) {
  app.replaceChildren(el("h2", {}, "Go processes"), el("p", { class: "muted" }, "Loading…"));
  let procs;
  try {
    procs = await api("api/processes");
  } catch (e) {
    showError(app, e);
    return;
  }
  const head = el("tr", {}, el("th", {}, "service"), el("th", { class: "num" }, "pid"), el("th", {}, "Go"), el("th", {}, "status"),
    el("th", { class: "num" }, "goroutines"), STATES.map((s) => el("th", { class: "num" }, s)), el("th", {}, "last snapshot"), el("th", {}, "executable"));
  const rows = procs.map((p) => {
    const href = `#/p/${p.pid}/${p.start_time}`;
    return el("tr", { class: "proc", onclick: () => { location.hash = href; }, dataset: { pid: p.pid } },
      el("td", {}, el("a", { href }, p.service_name || "(unnamed)")),
      el("td", { class: "num" }, p.pid),
      el("td", {}, p.go_version || ""),
      el("td", {}, p.live ? el("span", { class: "pill live", title: p.walker_reason ? `walker ${p.walker}: ${p.walker_reason}` : "" }, "live" + (p.walker ? ` · ${p.walker}` : "")) : el("span", { class: "pill gone" }, "stored"),
        p.error ? el("div", { class: "error" }, p.error) : null),
      el("td", { class: "num" }, fmtInt(p.total)),
      STATES.map((s) => el("td", { class: `num state-${s}` }, (p.counts && p.counts[s]) ? fmtInt(p.counts[s]) : "")),
      el("td", {}, fmtTime(p.last_snapshot)),
      el("td", { class: "mono" }, p.exe || ""));
  });
  app.replaceChildren(el("h2", {}, `Go processes (${procs.length})`),
    procs.length ? el("table", { id: "processes" }, el("thead", {}, head), el("tbody", {}, rows))
      : el("p", { class: "muted" }, "No Go processes seen yet."));
}

// ---- one process ----

function processView(app, crumb, pid, start) {
  const base = `api/processes/${pid}/${start}`;
  const st = {
    tab: "flame", kind: "goroutines", at: "", state: "", wait_reason: "", wait_duration: "", label: "",
    q: "", offset: 0, moments: [], charts: [], destroyed: false,
  };
  crumb.replaceChildren(el("a", { href: "#/", style: "color:#cbd5e1" }, "processes"), ` / pid ${pid}`);

  const info = el("div", { class: "info" });
  const chartState = el("div", { class: "card" }, el("h3", {}, "Goroutines by state"), el("div", { id: "chart-states" }));
  const chartWait = el("div", { class: "card" }, el("h3", {}, "Waiting goroutines by wait reason"), el("div", { id: "chart-waits" }));
  const atSel = el("select", { id: "at", onchange: () => { st.at = atSel.value; refresh(); } });
  const tabs = el("div", { class: "tabs" });
  const panel = el("div", { class: "panel" });
  const tabNames = { flame: "Flame graph", diff: "Diff", goroutines: "Goroutines", downloads: "Downloads" };
  for (const [k, name] of Object.entries(tabNames)) {
    tabs.append(el("button", { id: `tab-${k}`, onclick: () => { st.tab = k; refresh(); } }, name));
  }
  app.replaceChildren(el("h2", { id: "title" }, `pid ${pid}`), info,
    el("div", { class: "charts" }, chartState, chartWait),
    el("div", { class: "controls" }, el("label", {}, "moment", atSel), el("span", { class: "muted" }, "(or click a chart)")),
    tabs, panel);

  // filterText says which of the flame graph's filters apply here.
  function filterText(noDuration) {
    const p = filterParams();
    if (noDuration) p.delete("wait_duration");
    const parts = [...p.entries()].map(([k, v]) => `${k}=${v}`);
    return parts.length ? `filtered by ${parts.join(", ")} (set on the flame graph tab)` : "unfiltered (filters are set on the flame graph tab)";
  }

  function filterParams() {
    const p = new URLSearchParams();
    for (const k of ["state", "wait_reason", "wait_duration", "label"]) if (st[k]) p.set(k, st[k]);
    return p;
  }

  async function loadHeader() {
    try {
      const procs = await api("api/processes");
      const p = procs.find((x) => String(x.pid) === pid && String(x.start_time) === start);
      if (!p) { info.replaceChildren(el("span", { class: "muted" }, "process not in the list")); return; }
      document.getElementById("title").textContent = `${p.service_name || "(unnamed)"} · pid ${p.pid}`;
      info.replaceChildren(
        el("span", {}, el("b", {}, "Go "), p.go_version || "?"),
        el("span", {}, p.live ? el("span", { class: "pill live" }, "live") : el("span", { class: "pill gone" }, "stored")),
        el("span", {}, el("b", {}, "goroutines "), fmtInt(p.total)),
        el("span", {}, el("b", {}, "last snapshot "), fmtTime(p.last_snapshot)),
        p.walker ? el("span", { id: "walker" }, el("b", {}, "walker "), p.walker,
          p.walker_reason ? el("span", { class: "muted" }, ` (${p.walker_reason})`) : "") : "",
        el("span", { class: "mono" }, p.exe || ""),
        p.error ? el("span", { class: "error" }, p.error) : "");
    } catch (e) { showError(info, e); }
  }

  function makeChart(target, title, names, colors, xs, data) {
    const width = Math.max(300, target.clientWidth || 600);
    const opts = {
      width, height: 200,
      series: [{}].concat(names.map((n, i) => ({ label: n, stroke: colors[i], width: 1.5, points: { show: xs.length < 60 } }))),
      axes: [{}, { size: 50 }],
      legend: { live: true },
      cursor: { drag: { x: false, y: false } },
    };
    const u = new uPlot(opts, [xs].concat(data), target);
    u.over.addEventListener("click", () => {
      const i = u.cursor.idx;
      if (i !== null && i !== undefined && st.moments[i]) {
        st.at = st.moments[i];
        atSel.value = st.at;
        refresh();
      }
    });
    st.charts.push(u);
  }

  async function loadSeries() {
    let s;
    try {
      s = await api(`${base}/series`);
    } catch (e) { showError(chartState, e); return; }
    if (st.destroyed) return;
    st.moments = s.moments;
    st.kinds = s.kinds || [];
    const xs = s.moments.map((t) => new Date(t).getTime() / 1000);
    const states = STATES.filter((k) => s.states[k]);
    const stTarget = document.getElementById("chart-states");
    const wTarget = document.getElementById("chart-waits");
    stTarget.replaceChildren(); wTarget.replaceChildren();
    st.charts.forEach((u) => u.destroy()); st.charts = [];
    if (xs.length) {
      makeChart(stTarget, "states", ["total"].concat(states), ["#111827"].concat(states.map((k) => STATE_COLORS[k])), xs,
        [s.total].concat(states.map((k) => s.states[k])));
      const reasons = Object.keys(s.wait_reasons).sort((a, b) => Math.max(...s.wait_reasons[b]) - Math.max(...s.wait_reasons[a]));
      makeChart(wTarget, "wait reasons", reasons, reasons.map((_, i) => PALETTE[i % PALETTE.length]), xs, reasons.map((k) => s.wait_reasons[k]));
    } else {
      stTarget.append(el("p", { class: "muted" }, "No stored entries yet."));
    }
    atSel.replaceChildren(...s.moments.slice().reverse().map((t, i) => el("option", { value: t }, fmtTime(t) + (i === 0 ? " (newest)" : ""))));
    if (!st.at && s.moments.length) st.at = s.moments[s.moments.length - 1];
    atSel.value = st.at;
  }

  // ---- flame graph ----
  async function renderFlame() {
    const kindSel = el("select", { id: "kind", onchange: () => { st.kind = kindSel.value; refresh(); } },
      ...PROFILE_KINDS.filter(([k]) => k === st.kind || (st.kinds || []).includes(k)).map(([k, text]) => el("option", { value: k }, text)));
    kindSel.value = st.kind;
    const box = el("div", { id: "flame" });
    const details = el("div", { id: "flame-details" });
    const summary = el("div", { id: "flame-summary", class: "muted" }, "Loading…");
    const controls = el("div", { class: "controls" }, el("label", {}, "profile", kindSel));
    panel.replaceChildren(controls, summary, box, details);
    const p = filterParams();
    p.set("kind", st.kind);
    if (st.at) p.set("at", st.at);
    let f;
    try {
      f = await api(`${base}/flame?${p}`);
    } catch (e) { showError(summary, e); return; }
    if (st.destroyed || st.tab !== "flame") return;
    const facetSelect = (id, key, all, label, order) => {
      const names = order ? order.filter((k) => all[k] !== undefined) : Object.keys(all).sort((a, b) => all[b] - all[a]);
      const s = el("select", { id, onchange: () => { st[key] = s.value; refresh(); } },
        el("option", { value: "" }, `any ${label}`),
        names.map((k) => el("option", { value: k }, `${k} (${fmtValue(all[k], f.unit)})`)));
      if (st[key] && all[st[key]] === undefined) s.append(el("option", { value: st[key] }, st[key]));
      s.value = st[key];
      return el("label", {}, label, s);
    };
    const labelValues = {};
    for (const [k, vs] of Object.entries(f.facets.labels || {})) for (const [v, n] of Object.entries(vs)) labelValues[`${k}=${v}`] = n;
    controls.append(
      facetSelect("filter-state", "state", f.facets.states, "state", STATES),
      facetSelect("filter-wait-reason", "wait_reason", f.facets.wait_reasons, "wait reason"),
      facetSelect("filter-wait-duration", "wait_duration", f.facets.wait_durations, "waiting", WAIT_BUCKETS),
      facetSelect("filter-label", "label", labelValues, "label"),
      el("button", { id: "filter-reset", onclick: () => { st.state = st.wait_reason = st.wait_duration = st.label = ""; refresh(); } }, "reset"));
    const what = st.kind === "goroutines" ? "goroutines" : "waited";
    summary.replaceChildren(`${fmtValue(f.total, f.unit)} of ${fmtValue(f.unfiltered_total, f.unit)} ${what} at ${fmtTime(f.entry.time)}`,
      f.truncated ? " (tree truncated)" : "");
    box.dataset.total = f.total;
    box.dataset.unfilteredTotal = f.unfiltered_total;
    if (!f.total) { box.append(el("p", { class: "muted" }, "Nothing matches the filter.")); box.dataset.rendered = "1"; return; }
    const width = Math.max(600, panel.clientWidth - 24);
    const unit = f.unit;
    const tip = flamegraph.tooltip.defaultFlamegraphTooltip()
      .text((d) => `${d.data.name}: ${fmtValue(d.value, unit)} (${(100 * d.value / f.total).toFixed(1)}%)`);
    // Icicle: the root on top, so deep stacks grow down and the
    // goroutines' common frames stay in view.
    const chart = flamegraph.default().width(width).cellHeight(18).minFrameSize(2).transitionDuration(0)
      .selfValue(false).sort(true).inverted(true).tooltip(tip)
      .setDetailsElement(details);
    d3.select(box).datum(f.root).call(chart);
    box.dataset.rendered = "1";
  }

  // ---- diff ----
  async function renderDiff() {
    const moments = st.moments.slice().reverse();
    const opt = (t) => el("option", { value: t }, fmtTime(t));
    const fromSel = el("select", { id: "diff-from" }, moments.map(opt));
    const toSel = el("select", { id: "diff-to" }, moments.map(opt));
    if (!st.diffFrom) st.diffFrom = st.moments[0] || "";
    if (!st.diffTo) st.diffTo = st.at || st.moments[st.moments.length - 1] || "";
    fromSel.value = st.diffFrom; toSel.value = st.diffTo;
    const out = el("div", { id: "diff-out" });
    const run = () => { st.diffFrom = fromSel.value; st.diffTo = toSel.value; loadDiff(out); };
    panel.replaceChildren(el("div", { class: "controls" }, el("label", {}, "from", fromSel), el("label", {}, "to", toSel),
      el("button", { id: "diff-run", onclick: run }, "compare"),
      el("span", { class: "muted" }, "goroutines grouped by stack and labels; " + filterText(true))), out);
    if (st.diffFrom) run();
  }
  async function loadDiff(out) {
    out.replaceChildren(el("p", { class: "muted" }, "Loading…"));
    const p = filterParams();
    p.delete("wait_duration");
    p.set("from", st.diffFrom); p.set("to", st.diffTo);
    let d;
    try { d = await api(`${base}/diff?${p}`); } catch (e) { showError(out, e); return; }
    const table = (items, id) => items.length ? el("table", { id },
      el("thead", {}, el("tr", {}, el("th", { class: "num" }, "change"), el("th", { class: "num" }, "from → to"), el("th", {}, "labels"), el("th", {}, "stack (leaf first)"))),
      el("tbody", {}, items.map((it) => el("tr", {},
        el("td", { class: `num ${it.delta > 0 ? "delta-up" : "delta-down"}` }, (it.delta > 0 ? "+" : "") + fmtInt(it.delta)),
        el("td", { class: "num" }, `${fmtInt(it.from)} → ${fmtInt(it.to)}`),
        el("td", {}, labelsEl(it.labels)),
        el("td", {}, el("details", {}, el("summary", { class: "mono" }, topFrame(it.stack), ` (${it.stack.length} frames)`),
          el("div", { class: "stack" }, it.stack.join("\n")))))))) : el("p", { class: "muted" }, "none");
    out.replaceChildren(
      el("p", {}, `${fmtInt(d.from_total)} goroutines at ${fmtTime(d.from.time)} → ${fmtInt(d.to_total)} at ${fmtTime(d.to.time)}`,
        d.omitted ? ` (${fmtInt(d.omitted)} smaller changes not shown)` : ""),
      el("h2", {}, `Appeared (${d.appeared.length})`), table(d.appeared, "diff-appeared"),
      el("h2", {}, `Vanished (${d.vanished.length})`), table(d.vanished, "diff-vanished"));
  }

  // ---- goroutine table ----
  async function renderGoroutines() {
    const search = el("input", { id: "search", type: "search", placeholder: "search id, state, wait reason, label, function, file…", value: st.q, size: 50 });
    let timer = null;
    search.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(() => { st.q = search.value; st.offset = 0; loadGoroutines(out); }, 250);
    });
    const out = el("div", { id: "goroutines-out" });
    panel.replaceChildren(el("div", { class: "controls" }, search, el("span", { class: "muted", id: "goroutines-filters" }, filterText(false))), out);
    loadGoroutines(out);
  }
  async function loadGoroutines(out) {
    const p = filterParams();
    if (st.at) p.set("at", st.at);
    if (st.q) p.set("q", st.q);
    p.set("offset", st.offset); p.set("limit", 100);
    let g;
    try { g = await api(`${base}/goroutines?${p}`); } catch (e) { showError(out, e); return; }
    if (st.destroyed) return;
    const rows = g.goroutines.map((x) => {
      const frames = x.frames || [];
      const top = frames.find((f) => !f.function.startsWith("runtime.")) || frames[0];
      const stack = el("div", { class: "stack" }, frames.map((f) => el("div", {},
        el("span", { class: "fn" }, f.function + (f.inlined ? " (inlined)" : "")), `\n    ${f.file}:${f.line}`)),
        x.created_by ? el("div", { class: "sys" }, `created by ${x.created_by.function}\n    ${x.created_by.file}:${x.created_by.line}`) : null);
      return el("tr", { class: "goroutine", dataset: { id: x.id } },
        el("td", { class: "num mono" }, x.id),
        el("td", { class: `state-${x.state}` }, x.state + (x.system ? " (system)" : "")),
        el("td", {}, x.wait_reason || ""),
        el("td", { class: "num" }, fmtWait(x.waiting_seconds)),
        el("td", {}, labelsEl(x.labels)),
        el("td", {}, el("details", {}, el("summary", { class: "mono" }, top ? top.function : "(running: no stack)", ` (${frames.length} frames)`), stack)));
    });
    const pager = el("div", { class: "controls" },
      el("span", { id: "goroutines-count" }, `${fmtInt(g.matched)} of ${fmtInt(g.total)} goroutines match` +
        (g.matched > g.goroutines.length ? `, showing ${fmtInt(g.offset + 1)}–${fmtInt(g.offset + g.goroutines.length)}` : "")),
      g.offset > 0 ? el("button", { onclick: () => { st.offset = Math.max(0, st.offset - 100); loadGoroutines(out); } }, "previous") : null,
      g.offset + g.goroutines.length < g.matched ? el("button", { onclick: () => { st.offset += 100; loadGoroutines(out); } }, "next") : null);
    out.dataset.matched = g.matched;
    out.replaceChildren(pager, el("table", { id: "goroutines" },
      el("thead", {}, el("tr", {}, el("th", { class: "num" }, "id"), el("th", {}, "state"), el("th", {}, "wait reason"),
        el("th", { class: "num" }, "waiting"), el("th", {}, "labels"), el("th", {}, "stack"))),
      el("tbody", {}, rows)));
  }

  // ---- downloads ----
  function renderDownloads() {
    const link = (kind, format, text) => {
      const p = filterParams();
      p.set("kind", kind); p.set("format", format);
      if (st.at) p.set("at", st.at);
      return el("a", { href: `${base}/download?${p}`, download: "" }, text);
    };
    const row = (kind, desc) => kind !== "snapshot" && !(st.kinds || []).includes(kind) ? null :
      el("tr", {}, el("td", { class: "mono" }, kind), el("td", {}, desc),
        el("td", {}, link(kind, "pprof", "pprof"), link(kind, "folded", "folded"), link(kind, "json", "JSON")));
    panel.replaceChildren(
      el("p", { class: "muted" }, `At ${fmtTime(st.at)}, ${filterText(false)}. pprof files open with "go tool pprof".`),
      el("table", { class: "downloads", id: "downloads" }, el("tbody", {},
        row("goroutines", "goroutines per stack, state, wait reason, wait duration and label (count)"),
        row("goroutine_wall", "time goroutines have waited, per stack (nanoseconds)"),
        row("process_cpu", "on-CPU time per stack and goroutine labels (eBPF sampler or pprof endpoint)"),
        row("memory", "heap: allocations over the interval and memory in use (pprof endpoint)"),
        row("mutex", "lock contention over the interval (pprof endpoint)"),
        row("block", "time blocked over the interval (pprof endpoint)"),
        row("snapshot", "every goroutine with its full stack, as goroscope saw it"))));
  }

  function refresh() {
    for (const b of tabs.children) b.classList.toggle("active", b.id === `tab-${st.tab}`);
    ({ flame: renderFlame, diff: renderDiff, goroutines: renderGoroutines, downloads: renderDownloads })[st.tab]();
  }

  loadHeader();
  loadSeries().then(() => { if (!st.destroyed) refresh(); });
  return { destroy() { st.destroyed = true; st.charts.forEach((u) => u.destroy()); document.querySelectorAll(".d3-flame-graph-tip").forEach((e) => e.remove()); } };
}
