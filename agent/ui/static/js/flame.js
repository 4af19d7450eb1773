// The flame graph tab (d3-flame-graph, vendored): one profile kind at the
// chosen moment, with the filters every other tab reuses, and a function
// in focus (a finding's frame): highlighted wherever it is, and zoomed to
// the frame that holds all its occurrences.
import { api } from "./api.js";
import { el, showError } from "./dom.js";
import { STATES, WAIT_BUCKETS, fmtTime, fmtValue } from "./format.js";

// kindOptions offers the profile kinds the API lists (GET /api/kinds) that
// the process has stored, and the selected one.
function kindOptions(v) {
  const { st } = v;
  const known = v.kinds.filter((k) => k.profile);
  if (!known.some((k) => k.kind === st.kind)) known.unshift({ kind: st.kind, value: "" });
  return known.filter((k) => k.kind === st.kind || (st.kinds || []).includes(k.kind))
    .map((k) => el("option", { value: k.kind }, k.value ? `${k.kind} (${k.value})` : k.kind));
}

export async function renderFlame(v) {
  const { st, panel, base } = v;
  const kindSel = el("select", { id: "kind", onchange: () => { st.kind = kindSel.value; v.refresh(); } }, kindOptions(v));
  kindSel.value = st.kind;
  const box = el("div", { id: "flame" });
  const details = el("div", { id: "flame-details" });
  const summary = el("div", { id: "flame-summary", class: "muted" }, "Loading…");
  const controls = el("div", { class: "controls" }, el("label", {}, "profile", kindSel));
  panel.replaceChildren(controls, summary, box, details);
  if (v.kindsError) controls.append(el("span", { class: "error" }, `profile kinds: ${v.kindsError.message || v.kindsError}`));
  const p = v.filterParams();
  p.set("kind", st.kind);
  if (st.at) p.set("at", st.at);
  let f;
  try {
    f = await api(`${base}/flame?${p}`);
  } catch (e) { showError(summary, e); return; }
  if (st.destroyed || st.tab !== "flame") return;
  const facetSelect = (id, key, all, label, order) => {
    const names = order ? order.filter((k) => all[k] !== undefined) : Object.keys(all).sort((a, b) => all[b] - all[a]);
    const s = el("select", { id, onchange: () => { st[key] = s.value; v.refresh(); } },
      el("option", { value: "" }, `any ${label}`),
      names.map((k) => el("option", { value: k }, `${k} (${fmtValue(all[k], f.unit)})`)));
    if (st[key] && all[st[key]] === undefined) s.append(el("option", { value: st[key] }, st[key]));
    s.value = st[key];
    return el("label", {}, label, s);
  };
  const labelValues = {};
  for (const [k, vs] of Object.entries(f.facets.labels || {})) for (const [val, n] of Object.entries(vs)) labelValues[`${k}=${val}`] = n;
  controls.append(
    facetSelect("filter-state", "state", f.facets.states, "state", STATES),
    facetSelect("filter-wait-reason", "wait_reason", f.facets.wait_reasons, "wait reason"),
    facetSelect("filter-wait-duration", "wait_duration", f.facets.wait_durations, "waiting", WAIT_BUCKETS),
    facetSelect("filter-label", "label", labelValues, "label"),
    el("button", { id: "filter-reset", onclick: () => { st.state = st.wait_reason = st.wait_duration = st.label = st.focus = ""; v.refresh(); } }, "reset"));
  const focusNote = el("span", { id: "flame-focus-note", class: "muted" });
  if (st.focus) {
    controls.append(el("span", { class: "chip", id: "flame-focus" }, "focus ", el("span", { class: "mono" }, st.focus),
      el("button", { title: "no focus", onclick: () => { st.focus = ""; v.refresh(); } }, "×")), focusNote);
  }
  const what = st.kind === "goroutines" ? "goroutines" : "waited";
  summary.replaceChildren(`${fmtValue(f.total, f.unit)} of ${fmtValue(f.unfiltered_total, f.unit)} ${what} at ${fmtTime(f.entry.time)}`,
    f.truncated ? " (tree truncated)" : "");
  box.dataset.total = f.total;
  box.dataset.unfilteredTotal = f.unfiltered_total;
  if (!f.total) { box.append(el("p", { class: "muted" }, "Nothing matches the filter.")); box.dataset.rendered = "1"; return; }
  const width = Math.max(600, panel.clientWidth - 24);
  const unit = f.unit;
  const { flamegraph, d3 } = globalThis;
  // One tooltip per page: drop those of earlier renders.
  document.querySelectorAll(".d3-flame-graph-tip").forEach((e) => e.remove());
  // The tooltip is set as text, never as HTML: frame names are the target's.
  const tip = flamegraph.tooltip.defaultFlamegraphTooltip()
    .text((d) => `${d.data.name}: ${fmtValue(d.value, unit)} (${(100 * d.value / f.total).toFixed(1)}%)`);
  // Icicle: the root on top, so deep stacks grow down and the
  // goroutines' common frames stay in view.
  const chart = flamegraph.default().width(width).cellHeight(18).minFrameSize(2).transitionDuration(0)
    .selfValue(false).sort(true).inverted(true).tooltip(tip)
    .setDetailsElement(details);
  d3.select(box).datum(f.root).call(chart);
  if (st.focus) {
    const n = focusOn(chart, box, st.focus);
    focusNote.textContent = n ? `highlighted in ${n} place${n > 1 ? "s" : ""}` : "not in this graph";
  }
  box.dataset.rendered = "1";
}

// focusOn highlights the frames of function fn (a d3-flame-graph search
// for exactly its name) and zooms to the deepest frame above all of those
// drawn; it returns how many are drawn.
function focusOn(chart, box, fn) {
  chart.search(`^${fn.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`);
  // d3 keeps each drawn frame's node (a d3-hierarchy node) on its element.
  const nodes = [...box.querySelectorAll("svg g")].map((g) => g.__data__).filter((d) => d?.data?.name === fn);
  box.dataset.focusMatches = nodes.length;
  if (!nodes.length) return 0;
  const above = (a, d) => { for (let x = d; x; x = x.parent) if (x === a) return true; return false; };
  let common = nodes[0];
  while (common && !nodes.every((d) => above(common, d))) common = common.parent;
  if (common?.parent) chart.zoomTo(common);
  return nodes.length;
}
