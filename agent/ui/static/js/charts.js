// The process page's charts (uPlot, vendored): goroutines by state and by
// wait reason over the stored moments. Loading them also fills the moment
// selector and the process's stored kinds (v.st.moments, v.st.kinds).
import { api } from "./api.js";
import { el, showError } from "./dom.js";
import { PALETTE, STATES, STATE_COLORS, fmtTime } from "./format.js";

function makeChart(v, target, title, names, colors, xs, data) {
  const { st, atSel } = v;
  const width = Math.max(300, target.clientWidth || 600);
  const opts = {
    width, height: 200,
    series: [{}].concat(names.map((n, i) => ({ label: n, stroke: colors[i], width: 1.5, points: { show: xs.length < 60 } }))),
    axes: [{}, { size: 50 }],
    legend: { live: true },
    cursor: { drag: { x: false, y: false } },
  };
  const u = new globalThis.uPlot(opts, [xs].concat(data), target);
  u.over.addEventListener("click", () => {
    const i = u.cursor.idx;
    if (i !== null && i !== undefined && st.moments[i]) {
      st.at = st.moments[i];
      atSel.value = st.at;
      v.refresh();
    }
  });
  st.charts.push(u);
}

export async function loadSeries(v, chartState) {
  const { st, atSel } = v;
  let s;
  try {
    s = await api(`${v.base}/series`);
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
    makeChart(v, stTarget, "states", ["total"].concat(states), ["#111827"].concat(states.map((k) => STATE_COLORS[k])), xs,
      [s.total].concat(states.map((k) => s.states[k])));
    const reasons = Object.keys(s.wait_reasons).sort((a, b) => Math.max(...s.wait_reasons[b]) - Math.max(...s.wait_reasons[a]));
    makeChart(v, wTarget, "wait reasons", reasons, reasons.map((_, i) => PALETTE[i % PALETTE.length]), xs, reasons.map((k) => s.wait_reasons[k]));
  } else {
    stTarget.append(el("p", { class: "muted" }, "No stored entries yet."));
  }
  atSel.replaceChildren(...s.moments.slice().reverse().map((t, i) => el("option", { value: t }, fmtTime(t) + (i === 0 ? " (newest)" : ""))));
  if (!st.at && s.moments.length) st.at = s.moments[s.moments.length - 1];
  st.at = momentAt(s.moments, st.at); // a link's time, as one of the moments
  atSel.value = st.at;
}

// momentAt is the moment of moments (oldest first) a time t stands for:
// the newest at or before it, else the oldest; t itself when there are
// no moments (yet) or t is empty.
export function momentAt(moments, t) {
  if (!t || !moments.length) return t;
  const at = new Date(t).getTime();
  if (isNaN(at)) return t;
  let best = moments[0];
  for (const m of moments) if (new Date(m).getTime() <= at) best = m;
  return best;
}
