// The diff tab: a differential flame graph of one profile kind (any: the
// kind selector) between two ranges, merged by the server as the flame
// graph is (GET diff): the comparison is the page's range, the baseline
// by default the equally long range just before it (or one typed here,
// or dragged on a chart with Shift held). A frame is as wide as both
// ranges' values together, red where it grew and green where it shrank,
// the stronger the larger the change; its tooltip says the baseline, the
// comparison, the change and their shares. "normalise" scales the
// baseline to the comparison's total first (compares shapes, not sizes).
// Below, the functions that changed most (total and self). The shared
// filters apply. Frame names are the target's: text only.
import { api } from "./api.js";
import { el, showError } from "./dom.js";
import { diffColor, drawnTree, functionChanges } from "./difftree.js";
import { kindOptions, rangeText } from "./flame.js";
import { pct, pkgOf, quantity, signed } from "./flametable.js";
import { fmtRange, fmtTime, parseTime } from "./format.js";
import { baselineOf, rangeOf } from "./timerange.js";
import { makeTip, removeTips } from "./tooltip.js";

// TOP_ROWS is how many functions the table of changes lists.
const TOP_ROWS = 100;

// pctChange is the change from base to cmp in percent ("+200%", "new").
function pctChange(cmp, base) {
  if (!base) return cmp ? "new" : "±0%";
  if (!cmp) return "gone";
  const p = 100 * (cmp - base) / base;
  const a = Math.abs(p);
  return `${p > 0 ? "+" : p < 0 ? "−" : "±"}${a >= 10 || a === 0 ? a.toFixed(0) : a.toFixed(1)}%`;
}

// renderDiff draws the tab into v.panel; a redraw (a live refresh, a new
// baseline) keeps the graph until the answer is in.
export async function renderDiff(v) {
  const { st, panel } = v;
  const signal = v.load("tab");
  const b = baselineOf(st);
  const r = rangeOf(st);
  const kindSel = el("select", { id: "diff-kind", onchange: () => { st.kind = kindSel.value; v.refresh(); } }, kindOptions(v));
  kindSel.value = st.kind;
  const baseFrom = el("input", { id: "diff-base-from", type: "text", size: 27, spellcheck: false, value: fmtTime(b.from) });
  const baseTo = el("input", { id: "diff-base-to", type: "text", size: 27, spellcheck: false, value: fmtTime(b.to) });
  const baseNote = el("span", { class: "muted" });
  const applyBase = () => {
    const x = parseTime(baseFrom.value), y = parseTime(baseTo.value, true);
    baseFrom.classList.toggle("invalid", !x);
    baseTo.classList.toggle("invalid", !y);
    if (!x || !y) { baseNote.textContent = "type times as 2026-12-04 23:41:05 UTC"; return; }
    v.setBaseline(x.getTime(), y.getTime());
  };
  for (const x of [baseFrom, baseTo]) x.addEventListener("keydown", (e) => { if (e.key === "Enter") applyBase(); });
  const normalize = el("input", { id: "diff-normalize", type: "checkbox", checked: st.diffNormalize,
    onchange: () => { st.diffNormalize = normalize.checked; v.saveURL(); draw(); } });
  const controls = el("div", { class: "controls" },
    el("label", {}, "profile", kindSel),
    el("label", {}, "baseline from", baseFrom), el("label", {}, "to", baseTo),
    el("button", { id: "diff-base-apply", onclick: applyBase }, "apply"),
    b.custom ? el("button", { id: "diff-base-reset", title: "the equally long range before the comparison",
      onclick: () => v.setBaseline(null) }, "previous range") : null,
    baseNote,
    el("label", { title: "scale the baseline to the comparison's total: compare shapes, not sizes" }, normalize, "normalise to totals"));
  const hint = el("div", { id: "diff-hint", class: "muted" }, `comparison: the page's range (${fmtRange(r.from, r.to)}${r.relative ? ", newest" : ""}); `,
    "baseline: ", b.custom ? "as typed or dragged" : "the equally long range just before it",
    ". Shift+drag on a chart picks the baseline.");
  if (panel.dataset.view !== "diff") {
    panel.dataset.view = "diff";
    removeTips();
    panel.replaceChildren(controls, hint, el("div", { id: "diff-summary", class: "muted" }, "Loading…"));
  }
  const p = v.filterParams();
  p.set("kind", st.kind);
  v.rangeParams(p);
  // Without a baseline of the user's, the server picks the default (the
  // range before, else the range's first quarter) and says which.
  if (b.custom) {
    p.set("base_from", new Date(b.from).toISOString());
    p.set("base_to", new Date(b.to).toISOString());
  }
  let d;
  try {
    d = await api(`${v.base}/diff?${p}`, signal);
  } catch (e) {
    if (signal.aborted || st.destroyed) return;
    removeTips();
    const summary = el("div", { id: "diff-summary" });
    showError(summary, e);
    summary.append(el("p", { class: "muted" }, "Pick other ranges: the baseline above (or Shift+drag on a chart), the comparison with the page's range."));
    panel.replaceChildren(controls, hint, summary);
    return;
  }
  if (st.destroyed || signal.aborted || st.tab !== "diff") return;
  if (!b.custom) {
    baseFrom.value = fmtTime(d.base.from);
    baseTo.value = fmtTime(d.base.to);
    hint.replaceChildren(`comparison: the page's range (${fmtRange(r.from, r.to)}${r.relative ? ", newest" : ""}); baseline: `,
      { first_quarter: "the range's first quarter, since nothing is stored before the range",
        previous_moment: "the newest snapshot before the range" }[d.base_default] || "the equally long range just before it",
      ". Shift+drag on a chart picks the baseline.");
    hint.dataset.baseDefault = d.base_default || "";
  }
  const q = quantity(d.unit, d.sample_type);
  const summary = el("div", { id: "diff-summary" });
  const legend = el("div", { class: "flame-legend diff-legend" },
    el("span", { class: "flame-legend-item" }, el("span", { class: "swatch", style: `background:${diffColor(1, 0)}` }), "grew"),
    el("span", { class: "flame-legend-item" }, el("span", { class: "swatch", style: `background:${diffColor(0, 1)}` }), "shrank"),
    el("span", { class: "flame-legend-item" }, el("span", { class: "swatch", style: `background:${diffColor(1, 1)}` }), "unchanged"),
    el("span", { class: "muted" }, "the stronger, the larger the change; a frame is as wide as both ranges together"));
  const box = el("div", { id: "diff-flame", class: "inspect" });
  const details = el("div", { id: "diff-details", class: "muted" });
  const table = el("div", { id: "diff-table" });
  const scrollTop = document.getElementById("diff-flame")?.scrollTop || 0;
  removeTips();
  panel.replaceChildren(controls, hint, summary, legend, box, details, table);
  let tip = null;
  draw();
  box.scrollTop = scrollTop;

  // draw draws the summary, the graph and the table (again when the
  // normalisation changes).
  function draw() {
    tip?.destroy();
    const factor = st.diffNormalize && d.base_total > 0 ? d.total / d.base_total : 1;
    const baseTotal = d.base_total * factor;
    const side = (name, rg, total) => el("span", { class: `diff-side diff-${name}` }, el("span", { class: "diff-side-name" }, name), ": ",
      rangeText(rg, st.kind), ": ", el("span", { class: "diff-total" }, q.fmt(total)));
    summary.replaceChildren(side("baseline", d.base, d.base_total), " → ", side("comparison", d.comparison, d.total),
      el("span", { id: "diff-change" }, ` (${signed(q, d.total - d.base_total)}, ${pctChange(d.total, d.base_total)})`),
      factor !== 1 ? el("span", { class: "muted" }, ` — baseline normalised ×${factor.toPrecision(3)} to the comparison's total`) : "",
      d.truncated ? el("span", { class: "muted" }, " (tree truncated)") : "",
      (d.base?.merged ?? d.base?.entries) === 0 ? el("div", { class: "error", id: "diff-no-base" },
        "No stored entry in the baseline range: pick another (type it above, or Shift+drag on a chart).") : "");
    Object.assign(summary.dataset, { baseTotal: d.base_total, total: d.total, factor });
    box.replaceChildren();
    box.dataset.baseTotal = d.base_total;
    box.dataset.total = d.total;
    const root = drawnTree(d.root, factor);
    if (!root.value) {
      box.append(el("p", { class: "muted" }, "Nothing in either range matches the filter."));
      table.replaceChildren();
      box.dataset.rendered = "1";
      return;
    }
    const width = Math.max(600, panel.clientWidth - 24);
    tip = makeTip((n) => {
      const x = n.data;
      const kind = { state: "state", wait_reason: "wait reason" }[x.kind] || "";
      const pkg = kind ? "" : pkgOf(x.name);
      return [
        el("div", { class: "flame-tip-name" }, x.name),
        kind || pkg ? el("div", { class: "flame-tip-muted" }, kind || `package ${pkg}`) : null,
        el("div", {}, `baseline ${q.fmt(x.base)} (${pct(x.base, baseTotal)} of its total)`),
        el("div", {}, `comparison ${q.fmt(x.cmp)} (${pct(x.cmp, d.total)} of its total)`),
        el("div", { class: "flame-tip-value" }, `change ${signed(q, x.cmp - x.base)} (${pctChange(x.cmp, x.base)})`,
          n.parent ? ` · ${pct(x.cmp, n.parent.data.cmp)} of parent` : ""),
        factor !== 1 ? el("div", { class: "flame-tip-muted" }, `baseline normalised ×${factor.toPrecision(3)}`) : null,
      ].filter(Boolean);
    });
    const label = (n) => `${n.data.name}: ${q.fmt(n.data.base)} → ${q.fmt(n.data.cmp)} (${signed(q, n.data.cmp - n.data.base)})`;
    const chart = globalThis.flamegraph.default().width(width).cellHeight(18).minFrameSize(2).transitionDuration(0)
      .selfValue(false).sort(true).inverted(true).tooltip(tip).label(label)
      .setColorMapper((n) => (n.parent ? diffColor(n.data.cmp, n.data.base) : "#e5e7eb"))
      .setDetailsElement(details);
    globalThis.d3.select(box).datum(root).call(chart);
    box.onmouseleave = () => tip.hide();
    drawTable(table, q, functionChanges(d.root, factor));
    box.dataset.rendered = "1";
  }
}

// drawTable lists the functions that changed most, by total (the stacks
// they are in) or self (their own frames) change.
function drawTable(box, q, rows) {
  let key = "total";
  const draw = () => {
    const delta = (r) => (key === "total" ? r.cmp - r.base : r.cmpSelf - r.baseSelf);
    const changed = rows.filter((r) => Math.abs(delta(r)) > 1e-9);
    const top = changed.sort((a, b) => Math.abs(delta(b)) - Math.abs(delta(a)) || (a.name < b.name ? -1 : 1)).slice(0, TOP_ROWS);
    const th = (k, name) => el("th", { class: "num", "aria-sort": key === k ? "descending" : "none" },
      el("button", { class: `sort${key === k ? " active" : ""}`, id: `diff-sort-${k}`, onclick: () => { key = k; draw(); } }, name + (key === k ? " ▼" : "")));
    box.replaceChildren(
      el("h3", {}, "Biggest changes by function"),
      top.length ? el("table", { id: "diff-top", dataset: { sort: key } },
        el("thead", {}, el("tr", {}, el("th", {}, "function"), el("th", { class: "num" }, "baseline"), el("th", { class: "num" }, "comparison"),
          th("total", "total change"), el("th", { class: "num" }, "%"), th("self", "self change"))),
        el("tbody", {}, top.map((r) => el("tr", { class: "diff-fn", dataset: { name: r.name, base: r.base, cmp: r.cmp, delta: r.cmp - r.base, self: r.cmpSelf - r.baseSelf } },
          el("td", { class: "mono" }, r.name),
          el("td", { class: "num" }, q.fmt(r.base)),
          el("td", { class: "num" }, q.fmt(r.cmp)),
          el("td", { class: `num ${r.cmp > r.base ? "delta-up" : r.cmp < r.base ? "delta-down" : ""}` }, signed(q, r.cmp - r.base)),
          el("td", { class: "num" }, pctChange(r.cmp, r.base)),
          el("td", { class: `num ${r.cmpSelf > r.baseSelf ? "delta-up" : r.cmpSelf < r.baseSelf ? "delta-down" : ""}` }, signed(q, r.cmpSelf - r.baseSelf)))))) :
        el("p", { class: "muted", id: "diff-top-none" }, "No function changed."),
      changed.length > TOP_ROWS ? el("p", { class: "muted" }, `The ${TOP_ROWS} largest of ${changed.length} functions' changes.`) : "");
  };
  draw();
}
