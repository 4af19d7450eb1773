// The process page's charts (uPlot, vendored): goroutines by state and by
// wait reason over the page's range (GET series). The x axis spans the
// range (with the diff tab open: the baseline too, both shaded), in the
// page's time format; the y axis counts goroutines. Legends show the
// values under the cursor, the newest ones when the cursor is away.
// Runtime-internal wait reasons are one series, "runtime (system)",
// unless st.runtime asks for them apart; a folded series says what it
// holds (its legend row's title, and a note under the chart).
//
// On a chart: a click picks the moment under the cursor (v.pickMoment);
// a drag selects a range (v.setRange); a drag with Shift held selects the
// diff's baseline (v.setBaseline). Loading the series also sets
// st.moments (RFC 3339, oldest first), st.kinds (profile kinds stored in
// the range), st.interval (seconds between snapshots) and, for a
// relative range, st.anchor (the newest moment).
//
// The same series answer feeds the runtime health's charts
// (healthcharts.js), drawn with the same machinery: the same time axis,
// cursor, click and drags. The charts drawn are st.charts, by slot
// ("goroutines", "health").
import { api } from "./api.js";
import { el, showError } from "./dom.js";
import { PALETTE, STATES, STATE_COLORS, fmtNum, fmtTime } from "./format.js";
import { healthCharts } from "./healthcharts.js";
import { baselineOf, rangeOf } from "./timerange.js";

// Y_INCRS are the y axis' tick steps: whole goroutines.
const Y_INCRS = [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1e3, 2e3, 2500, 5e3, 1e4, 2e4, 25e3, 5e4, 1e5, 2e5, 25e4, 5e5, 1e6, 2e6, 5e6, 1e7];
const RUNTIME = "runtime (system)";

// chartWindow is the x span (ms) the charts show: the range, widened to
// the baseline on the diff tab, and at least a minute (one snapshot
// gets a sane axis, not years).
export function chartWindow(st) {
  const r = rangeOf(st);
  let lo = r.from, hi = r.to;
  if (st.tab === "diff") {
    const b = baselineOf(st);
    lo = Math.min(lo, b.from);
    hi = Math.max(hi, b.to);
  }
  if (hi - lo < 60000) {
    const mid = (lo + hi) / 2;
    lo = mid - 30000;
    hi = mid + 30000;
  }
  return [lo, hi];
}

// timeTicks are the x axis' labels: the time of day (seconds when the
// ticks are under a minute apart), the date under the first and under
// each tick on a new day, with the zone under the first.
function timeTicks(u, splits, axis, space, incr) {
  let day = "";
  return splits.map((s, i) => {
    const ms = s * 1000;
    const t = fmtTime(ms, incr < 60 ? "time" : "hm");
    const d = fmtTime(ms, "date");
    const line = d !== day ? `\n${d}${i === 0 ? ` ${fmtTime(ms, "zone")}` : ""}` : "";
    day = d;
    return t + line;
  });
}

// newestIndex is the index of the last non-null value of vs (-1: none).
function newestIndex(vs) {
  for (let i = vs.length - 1; i >= 0; i--) if (vs[i] !== null && vs[i] !== undefined) return i;
  return -1;
}

// GOROUTINES_AXIS is the goroutine charts' y axis: whole goroutines.
const GOROUTINES_AXIS = { label: "goroutines", size: 56, incrs: Y_INCRS, values: fmtNum };

// legendValue is series si's legend text at moment idx, the cursor's (null
// when away: the newest moment with a value, c.present's when given).
// c.fmt writes a value (default fmtNum), c.none[i](idx) says whether a
// missing value is "none" (else "–"); without either, a missing value is 0.
function legendValue(u, si, idx) {
  const c = u.spec;
  const vs = u.data[si];
  if (idx === null || idx === undefined) idx = newestIndex(c.present || vs);
  const y = idx >= 0 ? vs[idx] : null;
  if (!c.fmt) return fmtNum(y ?? 0);
  if (y !== null && y !== undefined) return c.fmt(y, si - 1);
  return idx >= 0 && c.none?.[si - 1]?.(idx) ? "none" : "–";
}

// yRange is the range of axis a's scale: from 0 to a tenth above the
// largest value, at least a.top (default 1).
const yRange = (a) => (u, min, max) => [0, Math.max(a.top ?? 1, (max || 0) * 1.1)];

// makeChart draws chart c into c.target: series c.names (colours
// c.colors, dashes c.dash, values c.data per moment xs, seconds; null:
// none) on the y axis c.axis ({label, size, incrs, values: a tick's text};
// default goroutines), those whose c.scales entry is "y2" on c.axis2 at
// the right; c.spanGaps joins the values across moments without one.
// titles explain a series (its legend row's title).
function makeChart(v, c, xs, titles) {
  const { st } = v;
  const { target, names, colors } = c;
  const axis = c.axis || GOROUTINES_AXIS;
  const width = Math.max(300, target.clientWidth || 600);
  let shift = false;
  const yAxis = (a, scale, side) => ({ scale, side, label: a.label, size: a.size || 56, ...(a.incrs ? { incrs: a.incrs } : {}),
    values: (u, ticks) => ticks.map(a.values), grid: { show: side !== 1 } });
  const opts = {
    width, height: 200,
    scales: {
      x: { time: true, range: () => chartWindow(st).map((ms) => ms / 1000) },
      y: { range: yRange(axis) },
      ...(c.axis2 ? { y2: { range: yRange(c.axis2) } } : {}),
    },
    series: [
      { label: "time", value: (u, x, si, i) => (i === null || i === undefined ? `newest ${fmtTime(u.data[0].at(-1) * 1000)}` : fmtTime(x * 1000)) },
      ...names.map((n, i) => ({
        label: n, stroke: colors[i], width: 1.5, ...(c.dash?.[i] ? { dash: c.dash[i] } : {}), scale: c.scales?.[i] || "y",
        spanGaps: !!c.spanGaps, points: { show: xs.length < 60 },
        value: (u, y, si, idx) => legendValue(u, si, idx),
      })),
    ],
    axes: [
      { values: timeTicks, space: 70, size: 44 },
      yAxis(axis, "y", 3),
      ...(c.axis2 ? [yAxis(c.axis2, "y2", 1)] : []),
    ],
    legend: { live: true },
    cursor: { drag: { x: true, y: false, setScale: false }, sync: { key: `goroscope-${v.pid}-${v.start}` } },
    hooks: {
      setSelect: [(u) => {
        if (u.select.width < 4) return;
        const a = u.posToVal(u.select.left, "x") * 1000, b = u.posToVal(u.select.left + u.select.width, "x") * 1000;
        u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
        if (shift) v.setBaseline(a, b);
        else v.setRange({ from: new Date(a).toISOString(), to: new Date(b).toISOString() });
      }],
      draw: [(u) => drawMarks(v, u)],
    },
  };
  // The spec the legend reads, before uPlot draws it (setData replaces it).
  const u = new globalThis.uPlot({ ...opts, hooks: { ...opts.hooks, init: [(u) => { u.spec = c; }] } }, [xs].concat(c.data), target);
  u.over.addEventListener("mousedown", (e) => { shift = e.shiftKey; });
  u.over.title = "click: the moment for the goroutine table; drag: a range; Shift+drag: the diff's baseline";
  // A click (not a drag: uPlot stops the click that ends a drag) picks
  // the moment nearest to it (from the event: the cursor may lag a frame).
  u.over.addEventListener("click", (e) => {
    const r = u.over.getBoundingClientRect();
    const i = u.valToIdx(u.posToVal(e.clientX - r.left, "x"));
    if (i !== null && i !== undefined && st.moments[i]) v.pickMoment(st.moments[i]);
  });
  explain(u, names, titles);
  u.names = names.join("\n");
  // The chart follows its card's width (a resized window, a scrollbar).
  const resize = new ResizeObserver(() => {
    const w = Math.max(300, target.clientWidth || 600);
    if (w !== u.width) u.setSize({ width: w, height: u.height });
  });
  resize.observe(target);
  const destroy = u.destroy.bind(u);
  u.destroy = () => { resize.disconnect(); destroy(); };
  return u;
}

// drawCharts draws the charts cs (see makeChart) in slot of st.charts:
// the same series as drawn get new data (no flicker, the cursor kept);
// others are drawn anew.
export function drawCharts(v, slot, cs, xs, titles) {
  const { st } = v;
  const old = st.charts[slot] || [];
  if (old.length && old.length === cs.length && cs.every((c, i) => old[i].names === c.names.join("\n") && old[i].root.isConnected)) {
    cs.forEach((c, i) => {
      const u = old[i];
      u.spec = c;
      u.setData([xs].concat(c.data));
      explain(u, c.names, titles);
    });
    return;
  }
  clearCharts(st, slot);
  st.charts[slot] = cs.map((c) => {
    c.target.replaceChildren();
    return makeChart(v, c, xs, titles);
  });
}

// clearCharts destroys the charts of slot (all: every slot's).
export function clearCharts(st, slot) {
  for (const k of slot ? [slot] : Object.keys(st.charts)) {
    (st.charts[k] || []).forEach((u) => u.destroy());
    delete st.charts[k];
  }
}

// explain sets the legend rows' titles (what a folded series holds).
function explain(u, names, titles) {
  const rows = u.root.querySelectorAll(".u-legend .u-series");
  names.forEach((n, i) => {
    const row = rows[i + 1];
    if (!row) return;
    row.dataset.series = n;
    if (titles[n]) row.title = titles[n];
  });
}

// drawMarks shades the diff's baseline and comparison ranges (diff tab)
// and draws the picked moment.
function drawMarks(v, u) {
  const { st } = v;
  const ctx = u.ctx;
  const { top, height } = u.bbox;
  const x = (ms) => u.valToPos(ms / 1000, "x", true);
  const band = (from, to, fill, label) => {
    const a = Math.max(u.bbox.left, x(from)), b = Math.min(u.bbox.left + u.bbox.width, x(to));
    if (b < a) return;
    ctx.fillStyle = fill;
    ctx.fillRect(a, top, Math.max(b - a, 2), height);
    ctx.fillStyle = "#374151";
    ctx.font = `${11 * devicePixelRatio}px system-ui, sans-serif`;
    ctx.fillText(label, a + 4, top + 12 * devicePixelRatio);
  };
  ctx.save();
  const r = rangeOf(st);
  if (st.tab === "diff") {
    const b = baselineOf(st);
    band(b.from, b.to, "rgba(22,163,74,.10)", "baseline");
    band(r.from, r.to, "rgba(220,38,38,.08)", "comparison");
  } else if (r.to - r.from < 60000) {
    band(r.from, r.to, "rgba(14,116,144,.10)", "range"); // a short range in its minute
  }
  // The window drawn (seconds), for a test to drag on.
  u.over.dataset.min = u.scales.x.min;
  u.over.dataset.max = u.scales.x.max;
  if (st.at) {
    const px = x(Date.parse(st.at));
    ctx.strokeStyle = "#0e7490";
    ctx.lineWidth = 2 * devicePixelRatio;
    ctx.setLineDash([4 * devicePixelRatio, 3 * devicePixelRatio]);
    ctx.beginPath();
    ctx.moveTo(px, top);
    ctx.lineTo(px, top + height);
    ctx.stroke();
  }
  ctx.restore();
}

// foldedTitles explain the folded series: {name: "what it holds"}.
function foldedTitles(folded) {
  const out = {};
  for (const [name, reasons] of Object.entries(folded || {})) {
    const what = name === RUNTIME ? "the runtime's own goroutines waiting" : "the smaller wait reasons, summed";
    out[name] = `${name}: ${what}: ${reasons.join(", ")}`;
  }
  return out;
}

// medianGap is the median of the gaps between moments (seconds), 0 when
// fewer than two.
function medianGap(moments) {
  const ts = moments.map((t) => Date.parse(t));
  const gaps = ts.slice(1).map((t, i) => (t - ts[i]) / 1000).filter((g) => g > 0).sort((a, b) => a - b);
  return gaps.length ? gaps[Math.floor(gaps.length / 2)] : 0;
}

// loadSeries asks for the series of the charts' window and draws (or
// updates) the charts in states and waits, and the runtime health's in
// health ({wrap, heap, cpu}: wrap hidden without any); note explains
// the wait reasons' series. signal aborts the request.
export async function loadSeries(v, { states, waits, note, health }, signal) {
  const { st } = v;
  const [lo, hi] = chartWindow(st);
  const r = rangeOf(st);
  const p = new URLSearchParams({ from: new Date(lo).toISOString() });
  // A relative range asks for everything newer too: its end slides to it.
  if (!r.relative) p.set("to", new Date(hi + 1).toISOString()); // to= is exclusive
  if (st.runtime) p.set("runtime", "1");
  let s;
  try {
    s = await api(`${v.base}/series?${p}`, signal);
  } catch (e) {
    if (signal?.aborted) throw e;
    showError(states, e);
    return;
  }
  if (st.destroyed || signal?.aborted) return;
  st.moments = s.moments;
  st.kinds = s.kinds || [];
  st.folded = s.folded || {};
  st.interval = s.step_seconds || medianGap(s.moments);
  if (r.relative && s.moments.length) {
    const last = s.moments[s.moments.length - 1];
    if (!st.anchor || Date.parse(last) > Date.parse(st.anchor)) st.anchor = last;
  }
  const xs = s.moments.map((t) => Date.parse(t) / 1000);
  const stateNames = STATES.filter((k) => s.states[k]);
  const reasons = Object.keys(s.wait_reasons).sort((a, b) => Math.max(...s.wait_reasons[b]) - Math.max(...s.wait_reasons[a]));
  const titles = foldedTitles(st.folded);
  const charts = [
    { target: states, names: ["total"].concat(stateNames), colors: ["#111827"].concat(stateNames.map((k) => STATE_COLORS[k])),
      data: [s.total].concat(stateNames.map((k) => s.states[k])) },
    { target: waits, names: reasons, colors: reasons.map((n, i) => (n === RUNTIME ? "#9ca3af" : PALETTE[i % PALETTE.length])),
      data: reasons.map((k) => s.wait_reasons[k]) },
  ];
  states.dataset.moments = s.moments.length;
  states.dataset.first = s.moments[0] || "";
  states.dataset.last = s.moments.at(-1) || "";
  note.replaceChildren(...Object.entries(titles).map(([n, t]) => el("div", { class: "series-folded", dataset: { series: n } }, t)));
  if (!xs.length) {
    clearCharts(st);
    states.replaceChildren(el("p", { class: "muted", id: "chart-empty" }, "No stored entries in this range."));
    waits.replaceChildren();
    if (health) health.wrap.hidden = true;
    return;
  }
  drawCharts(v, "goroutines", charts, xs, titles);
  if (!health) return;
  // The runtime health's charts, when any moment has a read.
  const hcs = healthCharts(s, health);
  health.wrap.hidden = !hcs.length;
  if (!hcs.length) {
    clearCharts(st, "health");
    return;
  }
  drawCharts(v, "health", hcs, xs, Object.fromEntries(hcs.flatMap((c) => Object.entries(c.titles || {}))));
}

// redrawMarks redraws the charts' shading and moment line.
export function redrawMarks(st) {
  Object.values(st.charts).flat().forEach((u) => u.redraw(false, false));
}

// momentAt is the moment of moments (oldest first) a time t stands for:
// the newest at or before it, else the oldest; t itself when there are
// no moments (yet) or t is empty.
export function momentAt(moments, t) {
  if (!t || !moments.length) return t;
  const at = Date.parse(t);
  if (isNaN(at)) return t;
  let best = moments[0];
  for (const m of moments) if (Date.parse(m) <= at) best = m;
  return best;
}
