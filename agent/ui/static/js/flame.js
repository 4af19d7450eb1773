// The flame graph tab (d3-flame-graph, vendored): one profile kind over
// the page's range, merged by the server (goroutine counts averaged over
// the snapshots, time profiles summed; the summary says which, over how
// many entries and when), with the filters every other tab reuses, and a
// function in focus (a finding's frame): highlighted wherever it is, and
// zoomed to the frame that holds all its occurrences. Around the graph: a
// search (substring or regexp) saying how much of the total the matching
// frames cover, a breadcrumb of the zoom and a reset, colours by package
// or by state (a goroutine profile grouped by state and wait reason, which
// the server then puts in the tree), a legend, a top table of functions
// (self and total) and a sandwich view of one function (its callers
// above, its callees below). Values say their unit (quantity,
// flametable.js). The zoom, view, search and colours are the view's state
// (st), kept in the URL; a live refresh draws the new answer keeping them
// and the graph's scroll. Frame names are the target's: text only.
import { api } from "./api.js";
import { el, showError } from "./dom.js";
import { STATES, STATE_COLORS, WAIT_BUCKETS, fmtInt, fmtRange, fmtTime } from "./format.js";
import {
  functionStats, isFunction, packageColor, packageShares, pct, pkgOf, quantity, sandwich, stateColor,
} from "./flametable.js";
import { makeTip, removeTips } from "./tooltip.js";

const HIGHLIGHT = "#E600E6";
const TOP_ROWS = 500;

// kindOptions offers the profile kinds the API lists (GET /api/kinds) that
// the process has stored in the range, and the selected one (the flame
// graph's and the diff's selector).
export function kindOptions(v) {
  const { st } = v;
  const known = v.kinds.filter((k) => k.profile);
  if (!known.some((k) => k.kind === st.kind)) known.unshift({ kind: st.kind, value: "" });
  return known.filter((k) => k.kind === st.kind || (st.kinds || []).includes(k.kind))
    .map((k) => el("option", { value: k.kind }, k.value ? `${k.kind} (${k.value})` : k.kind));
}

// frameKind names a frame for people: a function, or a grouped tree's
// state or wait reason.
const frameKind = (d) => ({ state: "state", wait_reason: "wait reason" }[d.data.kind] || "");

// rangeText says what a merged answer's range is: "average of 42
// snapshots, 2026-12-04 12:00:00–13:00:00 UTC", "sum over 6 profiles, …",
// or "at …" for one entry.
export function rangeText(r, kind, fallback) {
  if (!r) return fallback ? `at ${fmtTime(fallback)}` : "";
  const noun = kind === "goroutines" ? "snapshot" : "profile";
  const n = r.merged ?? r.entries;
  if (!n) return `no stored ${noun}s in ${fmtRange(r.from, r.to)}`;
  if (n === 1) return `1 ${noun} at ${fmtTime(r.last || r.first)}`;
  const how = r.merge === "sum" ? "sum over" : "average of";
  const more = r.entries > n ? ` (the newest ${fmtInt(n)} of ${fmtInt(r.entries)})` : "";
  return `${how} ${fmtInt(n)} ${noun}s${more}, ${fmtRange(r.first, r.last)}`;
}

export async function renderFlame(v) {
  const { st, panel, base } = v;
  st.flameColor ||= "package";
  st.flameView ||= "graph";
  const signal = v.load("tab");
  // A first render shows its controls and "Loading…"; a redraw (a live
  // refresh, another filter) keeps the graph until the answer is in.
  const kindSel = el("select", { id: "kind", onchange: () => { st.kind = kindSel.value; st.zoom = []; v.refresh(); } }, kindOptions(v));
  kindSel.value = st.kind;
  const controls = el("div", { class: "controls" }, el("label", {}, "profile", kindSel));
  if (v.kindsError) controls.append(el("span", { class: "error" }, `profile kinds: ${v.kindsError.message || v.kindsError}`));
  if (panel.dataset.view !== "flame") {
    panel.dataset.view = "flame";
    removeTips();
    panel.replaceChildren(controls, el("div", { id: "flame-summary", class: "muted" }, "Loading…"));
  }
  const p = v.filterParams();
  p.set("kind", st.kind);
  v.rangeParams(p);
  if (st.flameGroup) p.set("group", "state");
  let f;
  try {
    f = await api(`${base}/flame?${p}`, signal);
  } catch (e) {
    if (signal.aborted || st.destroyed) return;
    removeTips();
    const summary = el("div", { id: "flame-summary", class: "muted" });
    showError(summary, e);
    panel.replaceChildren(controls, summary);
    return;
  }
  if (st.destroyed || signal.aborted || st.tab !== "flame") return;
  const scrollTop = document.getElementById("flame")?.scrollTop || 0;
  removeTips();
  const box = el("div", { id: "flame", class: "inspect" });
  const details = el("div", { id: "flame-details" });
  const summary = el("div", { id: "flame-summary", class: "muted" });
  const q = quantity(f.unit, f.sample_type);
  const facetSelect = (id, key, all, label, order) => {
    const names = order ? order.filter((k) => all[k] !== undefined) : Object.keys(all).sort((a, b) => all[b] - all[a]);
    const s = el("select", { id, onchange: () => { st[key] = s.value; v.refresh(); } },
      el("option", { value: "" }, `any ${label}`),
      names.map((k) => el("option", { value: k }, `${k} (${q.short(all[k])})`)));
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
    el("button", { id: "filter-reset", onclick: () => { st.state = st.wait_reason = st.wait_duration = st.label = st.focus = ""; st.zoom = []; v.refresh(); } }, "reset"));
  const focusNote = el("span", { id: "flame-focus-note", class: "muted" });
  if (st.focus) {
    controls.append(el("span", { class: "chip", id: "flame-focus" }, "focus ", el("span", { class: "mono" }, st.focus),
      el("button", { title: "no focus", onclick: () => { st.focus = ""; v.refresh(); } }, "×")), focusNote);
  }
  const r = f.range;
  summary.replaceChildren(el("span", { id: "flame-total" }, q.summary(f.total, f.unfiltered_total)),
    f.total !== f.unfiltered_total ? ` (${pct(f.total, f.unfiltered_total)})` : "",
    f.truncated ? " (tree truncated)" : "", " — ",
    el("span", { id: "flame-range", dataset: r ? { merge: r.merge || "", entries: r.entries, merged: r.merged ?? r.entries, first: r.first || "", last: r.last || "" } : {} },
      rangeText(r, st.kind, f.entry?.time)));
  box.dataset.total = f.total;
  box.dataset.unfilteredTotal = f.unfiltered_total;
  box.dataset.unit = f.unit || "";
  if (!f.total) {
    box.append(el("p", { class: "muted" }, r && !(r.merged ?? r.entries) ? "No stored profile of this kind in the range: pick another range or kind." : "Nothing matches the filter."));
    panel.replaceChildren(controls, summary, box);
    box.dataset.rendered = "1";
    return;
  }

  // Tools: search, views, colours, zoom.
  const hasStates = Object.keys(f.facets.states || {}).length > 0;
  if (!hasStates && st.flameColor === "state") st.flameColor = "package";
  const search = el("input", { id: "flame-search", type: "search", placeholder: "search functions", size: 28, value: st.flameSearch || "" });
  const regexp = el("input", { id: "flame-search-regexp", type: "checkbox", checked: !!st.flameSearchRegexp });
  const searchNote = el("span", { id: "flame-search-note", class: "muted" });
  const colorSel = el("select", { id: "flame-color" }, el("option", { value: "package" }, "package"),
    hasStates ? el("option", { value: "state" }, "state / wait reason") : null);
  colorSel.value = st.flameColor;
  const group = el("input", { id: "flame-group", type: "checkbox", checked: !!st.flameGroup });
  const viewButtons = el("span", { class: "flame-views" },
    [["graph", "graph"], ["table", "top table"], ["sandwich", "sandwich"]].map(([k, name]) =>
      el("button", { id: `flame-view-${k}`, dataset: { view: k }, onclick: () => show(k) }, name)));
  const tools = el("div", { class: "controls flame-tools" },
    viewButtons,
    el("label", {}, "search", search), el("label", { title: "the search is a regular expression" }, regexp, "regexp"), searchNote,
    el("label", {}, "colour by", colorSel),
    hasStates ? el("label", { title: "frames for the state and wait reason under the root" }, group, "state frames") : null);
  const legend = el("div", { id: "flame-legend", class: "flame-legend" });
  const crumbs = el("div", { id: "flame-crumbs", class: "flame-crumbs" });
  const graphView = el("div", { id: "flame-graph-view" }, crumbs, box, details);
  const tableView = el("div", { id: "flame-table-view", hidden: true });
  const sandwichView = el("div", { id: "flame-sandwich-view", hidden: true });
  panel.replaceChildren(controls, summary, tools, legend, graphView, tableView, sandwichView);

  const width = Math.max(600, panel.clientWidth - 24);
  const { flamegraph, d3 } = globalThis;
  const total = f.total;
  // The tooltip: the name (as text), the value with its unit, its share of
  // the total and of its parent, and its own (self) value.
  const tip = makeTip((d) => {
    const val = d.data.value;
    let below = 0;
    for (const c of d.data.children || []) below += c.value;
    const kind = frameKind(d);
    const pkg = kind ? "" : pkgOf(d.data.name);
    return [
      el("div", { class: "flame-tip-name" }, d.data.name),
      kind || pkg ? el("div", { class: "flame-tip-muted" }, kind || `package ${pkg}`) : null,
      el("div", { class: "flame-tip-value" }, q.fmt(val), ` · ${pct(val, total)} of total`,
        d.parent ? ` · ${pct(val, d.parent.data.value)} of parent` : ""),
      d.data.children?.length ? el("div", { class: "flame-tip-muted" }, `self ${q.fmt(Math.max(0, val - below))}`) : null,
    ].filter(Boolean);
  });
  // The label (details line, and the svg title): name and value, as text.
  const label = (d) => `${d.data.name}: ${q.fmt(d.data.value)} (${pct(d.data.value, total)} of total)`;

  // Colours: by package, or by the state frame above (grouped trees).
  const colorOf = (d) => {
    if (!d.parent) return "#e5e7eb";
    if (st.flameColor === "state") {
      let s = d, reason = "", below = false;
      for (; s && s.data.kind !== "state"; s = s.parent) {
        if (s.data.kind === "wait_reason") reason = s.data.name;
        else below = true;
      }
      return stateColor(s?.data.name, reason, below);
    }
    if (d.data.kind) return stateColor(d.data.kind === "state" ? d.data.name : d.parent.data.name, d.data.kind === "wait_reason" ? d.data.name : "", false);
    return packageColor(d.data.name);
  };
  // While a search (or focus) highlights frames, the others are greyed.
  let searching = false;
  const colorMapper = (d) => (d.highlight ? HIGHLIGHT : searching ? "#e5e7eb" : colorOf(d));

  // The match: a function of the name, passed to d3-flame-graph's search
  // as its term.
  let matcher = null;
  // The sandwich's trees are the graph's turned around: by package, or a
  // state frame's own colour.
  const sandwichColor = (d) => (d.data.kind ? colorOf(d) : packageColor(d.data.name));
  const newChart = (inverted, mapper = colorMapper) => flamegraph.default().width(width).cellHeight(18).minFrameSize(2).transitionDuration(0)
    .selfValue(false).sort(true).inverted(inverted).tooltip(tip).label(label)
    .setColorMapper(mapper)
    .setSearchMatch((d, term) => typeof term === "function" && term(d.data.name, d.data));
  // Icicle: the root on top, so deep stacks grow down and the
  // goroutines' common frames stay in view.
  const chart = newChart(true).setDetailsElement(details).setSearchHandler((results, sum) => {
    if (!matcher) { searchNote.textContent = ""; return; }
    const fns = new Set(results.map((d) => d.data.name));
    searchNote.textContent = `${results.length} frame${results.length === 1 ? "" : "s"} of ${fns.size} function${fns.size === 1 ? "" : "s"}: ` +
      `${q.fmt(sum)} of ${q.fmt(total)} (${pct(sum, total)})`;
    searchNote.dataset.frames = results.length;
    searchNote.dataset.value = sum;
    searchNote.dataset.percent = (100 * sum / total).toFixed(1);
  });
  d3.select(box).datum(f.root).call(chart);
  box.addEventListener("mouseleave", () => tip.hide());

  // Breadcrumb: the zoomed frame's ancestors, each a button zooming out
  // to it. The zoom is the view's (st.zoom, the names from the root down),
  // unless keep (the first draw, before the view's zoom is restored).
  const showCrumbs = (node, keep) => {
    const path = [];
    for (let x = node; x; x = x.parent) path.unshift(x);
    if (!keep) {
      st.zoom = path.slice(1).map((x) => x.data.name);
      v.saveURL();
    }
    crumbs.replaceChildren(...[
      el("button", { id: "flame-zoom-reset", disabled: path.length < 2, onclick: () => { tip.hide(); chart.resetZoom(); } }, "reset zoom"),
      el("span", { class: "flame-crumb-path" }, path.flatMap((x, i) => [
        i ? el("span", { class: "muted" }, " › ") : null,
        i === path.length - 1
          ? el("span", { class: "flame-crumb current mono", title: label(x) }, x.data.name)
          : el("button", { class: "flame-crumb mono", title: label(x), onclick: () => { tip.hide(); chart.zoomTo(x); } }, x.data.name),
      ])),
      path.length > 1 && isFunction(node.data)
        ? el("button", { id: "flame-crumb-sandwich", title: "its callers and callees", onclick: () => openSandwich(node.data.name) }, "sandwich")
        : null,
    ].filter(Boolean));
    crumbs.dataset.depth = path.length - 1;
  };
  chart.onClick((node) => showCrumbs(node));
  const firstFrame = box.querySelector("svg g");
  if (firstFrame?.__data__) {
    let r = firstFrame.__data__;
    while (r.parent) r = r.parent;
    showCrumbs(r, true);
  }

  // Search: substring (case-insensitive) or regexp.
  const runSearch = () => {
    tip.hide();
    st.flameSearch = search.value;
    st.flameSearchRegexp = regexp.checked;
    v.saveURL();
    search.classList.remove("invalid");
    searchNote.textContent = "";
    delete searchNote.dataset.frames;
    const term = search.value;
    if (!term) { matcher = null; searching = false; chart.clear(); markHighlighted(); return; }
    if (regexp.checked) {
      let re;
      try { re = new RegExp(term, "i"); } catch (e) {
        search.classList.add("invalid");
        searchNote.textContent = `invalid regexp: ${e.message}`;
        matcher = null; searching = false; chart.clear(); markHighlighted();
        return;
      }
      matcher = (name) => re.test(name);
    } else {
      const t = term.toLowerCase();
      matcher = (name) => name.toLowerCase().includes(t);
    }
    searching = true;
    chart.search(matcher);
    markHighlighted();
  };
  // markHighlighted counts the highlighted frames drawn (box.dataset).
  const markHighlighted = () => {
    box.dataset.highlighted = [...box.querySelectorAll("svg g")].filter((g) => g.__data__?.highlight).length;
  };
  let timer = 0;
  search.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(runSearch, 150); });
  search.addEventListener("keydown", (e) => { if (e.key === "Enter") { clearTimeout(timer); runSearch(); } });
  regexp.addEventListener("change", runSearch);
  // highlightFunction searches for exactly fn (the top table's click).
  const highlightFunction = (fn) => {
    search.value = `^${fn.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`;
    regexp.checked = true;
    show("graph");
    runSearch();
  };

  // Colours and the legend.
  let stats = null;
  const getStats = () => (stats ||= functionStats(f.root));
  const drawLegend = () => {
    const items = st.flameColor === "state"
      ? STATES.filter((s) => f.facets.states[s] !== undefined).map((s) => ({ name: s, color: STATE_COLORS[s], value: f.facets.states[s] }))
      : packageShares(getStats()).slice(0, 12).map((x) => ({ name: x.pkg, color: packageColor(`${x.pkg}.x`), value: x.self }));
    legend.replaceChildren(el("span", { class: "muted" }, st.flameColor === "state" ? "states (unfiltered):" : "packages by self value:"),
      ...items.map((x) => el("span", { class: "flame-legend-item", dataset: { name: x.name } },
        el("span", { class: "swatch", style: `background:${x.color}` }), el("span", { class: "mono" }, x.name),
        el("span", { class: "muted" }, ` ${q.short(x.value)}`))));
    legend.dataset.mode = st.flameColor;
  };
  colorSel.addEventListener("change", () => {
    st.flameColor = colorSel.value;
    if (st.flameColor === "state" && !st.flameGroup) { st.flameGroup = true; v.refresh(); return; }
    v.saveURL();
    tip.hide();
    chart.update();
    drawLegend();
    if (st.flameView === "sandwich") drawSandwich();
  });
  group.addEventListener("change", () => {
    st.flameGroup = group.checked;
    if (!st.flameGroup && st.flameColor === "state") st.flameColor = "package";
    v.refresh();
  });

  // Views: the graph, the top table, the sandwich.
  function show(view) {
    tip.hide();
    st.flameView = view;
    v.saveURL();
    graphView.hidden = view !== "graph";
    tableView.hidden = view !== "table";
    sandwichView.hidden = view !== "sandwich";
    for (const b of viewButtons.children) b.classList.toggle("active", b.dataset.view === view);
    if (view === "table") drawTable();
    if (view === "sandwich") drawSandwich();
  }

  // The top table: functions by self (or another column), top TOP_ROWS.
  let sortKey = "self", sortDesc = true, tableDrawn = "";
  function drawTable() {
    const key = `${sortKey}/${sortDesc}`;
    if (tableDrawn === key) return;
    tableDrawn = key;
    const rows = [...getStats()].sort((a, b) => {
      const c = sortKey === "name" ? (a.name < b.name ? -1 : a.name > b.name ? 1 : 0) : a[sortKey] - b[sortKey];
      return (sortDesc ? -c : c) || (a.name < b.name ? -1 : 1);
    });
    const th = (k, name, cls) => el("th", { class: cls, dataset: { sort: k }, "aria-sort": sortKey === k ? (sortDesc ? "descending" : "ascending") : "none" },
      el("button", { class: "flame-sort", onclick: () => { sortDesc = sortKey === k ? !sortDesc : k !== "name"; sortKey = k; drawTable(); } },
        name, sortKey === k ? (sortDesc ? " ▼" : " ▲") : ""));
    const table = el("table", { id: "flame-top" },
      el("thead", {}, el("tr", {}, th("name", "function"), th("self", "self", "num"), el("th", { class: "num" }, "self %"),
        th("total", "total", "num"), el("th", { class: "num" }, "total %"), el("th", {}, ""))),
      el("tbody", {}, rows.slice(0, TOP_ROWS).map((r) => el("tr", { class: "flame-fn", dataset: { name: r.name, self: r.self, total: r.total } },
        el("td", { class: "mono" }, el("button", { class: "flame-fn-name", title: "highlight in the graph", onclick: () => highlightFunction(r.name) }, r.name)),
        el("td", { class: "num" }, q.fmt(r.self)), el("td", { class: "num" }, pct(r.self, total)),
        el("td", { class: "num" }, q.fmt(r.total)), el("td", { class: "num" }, pct(r.total, total)),
        el("td", {}, el("button", { class: "flame-fn-sandwich", onclick: () => openSandwich(r.name) }, "sandwich"))))));
    tableView.replaceChildren(
      el("p", { class: "muted" }, `${rows.length} functions${rows.length > TOP_ROWS ? `, the top ${TOP_ROWS} shown` : ""}: ` +
        "self is the value of the function's own frames, total that of the stacks it is in. Click a function to highlight it in the graph."),
      table);
  }

  // The sandwich: the function's callers above it, its callees below.
  function openSandwich(fn) {
    st.flameSandwich = fn;
    sandwichDrawn = "";
    show("sandwich");
  }
  let sandwichDrawn = "";
  function drawSandwich() {
    const fn = st.flameSandwich;
    const key = `${fn}/${st.flameColor}`;
    if (sandwichDrawn === key) return;
    sandwichDrawn = key;
    const sw = fn ? sandwich(f.root, fn) : null;
    if (!sw) {
      sandwichView.replaceChildren(el("p", { class: "muted", id: "flame-sandwich-empty" },
        fn ? "The function is not in this graph." : "Pick a function: its sandwich button in the top table, or zoom to a frame and use the breadcrumb's."));
      return;
    }
    const callers = el("div", { id: "flame-callers", class: "flame-sandwich-graph" });
    const callees = el("div", { id: "flame-callees", class: "flame-sandwich-graph" });
    sandwichView.replaceChildren(
      el("h4", { id: "flame-sandwich-title" }, el("span", { class: "mono" }, fn), ` ${q.fmt(sw.callers.value)} (${pct(sw.callers.value, total)} of total)`),
      el("div", { class: "muted" }, "callers (above, the direct callers next to it)"), callers,
      el("div", { class: "muted" }, "callees (below)"), callees);
    sandwichView.dataset.function = fn;
    sandwichView.dataset.value = sw.callers.value;
    // Callers: a flame graph (root at the bottom) of the reversed stacks.
    // (Not chart.destroy(): it would destroy the shared tooltip.)
    const up = newChart(false, sandwichColor);
    d3.select(callers).datum(sw.callers).call(up);
    const down = newChart(true, sandwichColor);
    d3.select(callees).datum(sw.callees).call(down);
    callers.addEventListener("mouseleave", () => tip.hide());
    callees.addEventListener("mouseleave", () => tip.hide());
  }

  drawLegend();
  if (st.focus) {
    searching = true;
    const n = focusOn(chart, box, st.focus, !st.zoom.length);
    focusNote.textContent = n ? `highlighted in ${n} place${n > 1 ? "s" : ""}` : "not in this graph";
  } else if (search.value) {
    runSearch();
  }
  // Zooming (a frame's click, focusOn, the view's zoom) updates the
  // crumbs through onClick.
  if (st.zoom.length) zoomToPath(chart, box, st.zoom);
  show(st.flameView === "sandwich" && !st.flameSandwich ? "graph" : st.flameView);
  box.scrollTop = scrollTop;
  box.dataset.rendered = "1";
}

// zoomToPath zooms to the frame at path (names from the root down), or
// as deep along it as the graph goes.
function zoomToPath(chart, box, path) {
  let node = box.querySelector("svg g")?.__data__;
  while (node?.parent) node = node.parent;
  if (!node) return;
  for (const name of path) {
    const next = (node.children || []).find((c) => c.data.name === name);
    if (!next) break;
    node = next;
  }
  if (node.parent) chart.zoomTo(node);
}

// focusOn highlights the frames of function fn (a d3-flame-graph search
// for exactly its name) and, when zoom, zooms to the deepest frame above
// all of those drawn; it returns how many are drawn.
function focusOn(chart, box, fn, zoom) {
  chart.search((name, data) => name === fn && !data.kind);
  // d3 keeps each drawn frame's node (a d3-hierarchy node) on its element.
  const nodes = [...box.querySelectorAll("svg g")].map((g) => g.__data__).filter((d) => d?.data?.name === fn && !d.data.kind);
  box.dataset.focusMatches = nodes.length;
  if (!nodes.length) return 0;
  const above = (a, d) => { for (let x = d; x; x = x.parent) if (x === a) return true; return false; };
  let common = nodes[0];
  while (common && !nodes.every((d) => above(common, d))) common = common.parent;
  if (zoom && common?.parent) chart.zoomTo(common);
  return nodes.length;
}
