// One service across its processes (#/s/NAME?range=|from=&to=): restarts
// and all. A chart of the goroutines of every process of the service over
// the range (one series per process, labelled by pid and first seen, a
// dashed marker where each one starts, and their total), and a table of
// the processes, the newest first, each linking to its page. The Go
// handler (GET /api/services/NAME) computes everything; the service name
// is the target's: text only.
import { api } from "./api.js";
import { loadCrashes } from "./crashes.js";
import { el, showError } from "./dom.js";
import { PALETTE, fmtInt, fmtTime } from "./format.js";
import { DEFAULT_RANGE, PRESETS, rangeOf, rangePicker } from "./timerange.js";

// TOTAL_COLOR is the total's line.
const TOTAL_COLOR = "#111827";

// anchors are the newest moment of each service seen (its answer's
// newest): where a relative range ends.
const anchors = new Map();

export const serviceHash = (name, params) => `#/s/${encodeURIComponent(name || "")}${params && String(params) ? `?${params}` : ""}`;

// serviceView renders service name's page into app; params
// (URLSearchParams) hold its range: range= (a PRESETS name) or from= and
// to=. It returns the view, with destroy().
export function serviceView(app, crumb, name, params) {
  const st = {
    range: params.get("range") || (params.get("from") ? "" : DEFAULT_RANGE),
    from: params.get("from") || "", to: params.get("to") || "",
    anchor: anchors.get(name) || "",
  };
  if (st.range && !PRESETS[st.range]) st.range = DEFAULT_RANGE;
  const ctl = new AbortController();
  let chart = null;
  crumb.replaceChildren(el("a", { href: "#/", style: "color:#cbd5e1" }, "processes"), " / service ", el("span", { id: "crumb-service" }, name || "(unnamed)"));

  const picker = rangePicker(st, (r) => {
    const p = new URLSearchParams();
    if (r.range) p.set("range", r.range);
    else { p.set("from", r.from); p.set("to", r.to); }
    location.hash = serviceHash(name, p);
  });
  const count = el("p", { class: "muted", id: "service-count" }, "Loading…");
  const chartBox = el("div", { id: "service-chart" });
  const tableBox = el("div", { id: "service-table" });
  const crashBox = el("div", { id: "service-crashes-box" }, el("p", { class: "muted" }, "Loading…"));
  app.replaceChildren(
    el("h2", {}, "Service ", el("span", { id: "service-name" }, name || "(unnamed)")),
    el("div", { class: "controls" }, picker),
    count,
    el("div", { class: "card" }, el("h3", {}, "Goroutines of its processes"), chartBox),
    el("div", { class: "card" }, el("h3", {}, "Processes, the newest first"), tableBox),
    el("div", { class: "card" }, el("h3", {}, "Crashes, the newest first"), crashBox));
  picker.update();
  loadCrashes(crashBox, name, ctl.signal);

  const base = `api/services/${encodeURIComponent(name)}`;
  const query = () => {
    const r = rangeOf(st);
    const p = new URLSearchParams({ from: new Date(r.from).toISOString() });
    if (!r.relative) p.set("to", new Date(r.to).toISOString());
    return `${base}?${p}`;
  };
  (async () => {
    let a;
    try {
      const asked = rangeOf(st);
      a = await api(query(), ctl.signal);
      // A relative range ends at the service's newest moment: asked again
      // when that moves it by more than a twentieth of its span (the
      // service has been gone for a while).
      if (st.range && a.newest && a.newest !== st.anchor) {
        st.anchor = a.newest;
        anchors.set(name, a.newest);
        picker.update();
        if (Math.abs(rangeOf(st).to - asked.to) > (asked.to - asked.from) / 20) a = await api(query(), ctl.signal);
      }
    } catch (e) {
      if (ctl.signal.aborted) return;
      count.replaceChildren();
      showError(tableBox, e);
      return;
    }
    if (ctl.signal.aborted) return;
    count.textContent = countText(a);
    chart = drawChart(chartBox, a, rangeOf(st));
    tableBox.replaceChildren(processTable(a));
  })();

  return { name, destroy() { ctl.abort(); if (chart) chart.destroy(); } };
}

// countText says what the page shows.
function countText(a) {
  const n = a.processes.length;
  const live = a.processes.filter((p) => p.live).length;
  return `${fmtInt(n)} process${n === 1 ? "" : "es"} in the range` + (live ? ` (${fmtInt(live)} live)` : "") +
    (a.omitted ? `; ${fmtInt(a.omitted)} other${a.omitted === 1 ? "" : "s"} of this service outside it or beyond the newest listed` : "") +
    (a.series.downsampled ? `; ${fmtInt(a.series.moments.length)} moments, each the most of its span` : "") +
    (a.truncated ? "; the oldest entries of a long-lived process not read" : "");
}

// label names a process in the chart: its pid and when it was first seen.
const label = (p) => `pid ${p.pid}` + (p.first_seen ? ` · ${fmtTime(p.first_seen)}` : "");

// drawChart draws the processes' series and their total into box, over
// range r ({from, to} ms) or the moments, whichever is wider.
function drawChart(box, a, r) {
  const s = a.series;
  box.dataset.series = a.processes.length;
  box.dataset.moments = s.moments.length;
  if (!s.moments.length) {
    box.replaceChildren(el("p", { class: "muted", id: "service-chart-empty" }, "No stored moments in the range."));
    box.dataset.rendered = "1";
    return null;
  }
  box.replaceChildren();
  const xs = s.moments.map((t) => Date.parse(t) / 1000);
  const color = (i) => PALETTE[i % PALETTE.length];
  // starts are where each process's series begins: its restart marker.
  const starts = a.processes.map((p, i) => {
    const vs = s.by_process[p.key] || [];
    const j = vs.findIndex((v) => v !== null);
    return j < 0 ? null : { x: xs[j], pid: p.pid, color: color(i) };
  }).filter(Boolean);
  const lo = Math.min(xs[0], r.from / 1000), hi = Math.max(xs[xs.length - 1], r.to / 1000);
  const span = hi - lo;
  const opts = {
    width: Math.max(300, box.clientWidth || 600), height: 240,
    series: [{ value: (u, v) => (v === null ? "–" : fmtTime(v * 1000)) },
      // Dashed, under the processes' lines (drawn after it).
      { label: "all processes", stroke: TOTAL_COLOR, width: 1.5, dash: [6, 4], points: { show: false } },
      ...a.processes.map((p, i) => ({ label: label(p), stroke: color(i), width: 1.5, spanGaps: true, points: { show: xs.length < 60 } }))],
    scales: { x: { time: true, range: () => [lo, hi] } },
    axes: [{ values: (u, splits) => splits.map((v) => fmtTime(v * 1000, span > 2 * 86400 ? "date" : span > 600 ? "hm" : "time")) }, { size: 50 }],
    legend: { live: true },
    cursor: { drag: { x: false, y: false } },
    hooks: { draw: [(u) => drawStarts(u, starts)] },
  };
  const data = [xs, s.total, ...a.processes.map((p) => s.by_process[p.key] || xs.map(() => null))];
  const u = new globalThis.uPlot(opts, data, box);
  box.dataset.rendered = "1";
  box.dataset.starts = starts.length;
  return u;
}

// drawStarts marks where each process starts: a dashed line in its colour,
// its pid at the top.
function drawStarts(u, starts) {
  const { ctx, bbox } = u;
  ctx.save();
  ctx.setLineDash([4, 4]);
  ctx.lineWidth = 1;
  ctx.font = `${Math.round(10 * devicePixelRatio)}px sans-serif`;
  for (const s of starts) {
    const x = Math.round(u.valToPos(s.x, "x", true));
    if (x < bbox.left || x > bbox.left + bbox.width) continue;
    ctx.strokeStyle = s.color;
    ctx.fillStyle = s.color;
    ctx.beginPath();
    ctx.moveTo(x, bbox.top);
    ctx.lineTo(x, bbox.top + bbox.height);
    ctx.stroke();
    ctx.fillText(String(s.pid), x + 3, bbox.top + 10 * devicePixelRatio);
  }
  ctx.restore();
}

// processTable lists the processes, the newest first, each linking to its page.
function processTable(a) {
  const head = el("tr", {}, ["process", "first seen", "last seen", "status", "peak", "last", "Go", "findings", "executable"].map((h, i) =>
    el("th", { class: i === 4 || i === 5 || i === 7 ? "num" : null, title: TITLES[h] || "" }, h)));
  const body = el("tbody", {}, a.processes.map((p, i) => {
    const href = `#/p/${p.pid}/${p.start_time}`;
    return el("tr", { class: "proc", dataset: { pid: p.pid, key: p.key, live: p.live ? "1" : "0" } },
      el("td", {}, el("span", { class: "swatch", style: `color:${PALETTE[i % PALETTE.length]}` }, "■ "), el("a", { href, class: "proc-link" }, `pid ${p.pid}`)),
      el("td", {}, fmtTime(p.first_seen)),
      el("td", {}, fmtTime(p.last_seen)),
      el("td", {}, p.live ? el("span", { class: "pill live" }, "live") : el("span", { class: "pill gone" }, p.exited ? "exited" : "gone")),
      el("td", { class: "num" }, fmtInt(p.peak)),
      el("td", { class: "num" }, fmtInt(p.last)),
      el("td", {}, p.go_version || ""),
      el("td", { class: "num" }, p.findings_count ? fmtInt(p.findings_count) : ""),
      el("td", { class: "mono" }, p.exe || ""));
  }));
  if (!a.processes.length) body.append(el("tr", { class: "empty" }, el("td", { colSpan: 9, class: "muted" }, "No process of this service in the range.")));
  return el("table", { id: "service-processes", dataset: { count: a.processes.length } }, el("thead", {}, head), body);
}

// TITLES explain the table's headers.
const TITLES = {
  "first seen": "its oldest stored snapshot",
  "last seen": "its newest snapshot",
  peak: "the most goroutines at one of its moments in the range",
  last: "its goroutines at its newest snapshot",
  findings: "the findings holding at its newest snapshot",
};
