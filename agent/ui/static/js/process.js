// One process (#/p/PID/START?PARAMS): its findings above everything else,
// header, runtime settings and health, the time range (picker, moment,
// live refresh), charts (goroutines; the runtime health's), the active
// filters and the tabs. The view state and helpers the tabs share
// are one object, v; the state (v.st) is kept in the URL (urlstate.js),
// so a copied link reproduces the view.
import { kinds } from "./api.js";
import { chartWindow, clearCharts, loadSeries, momentAt, redrawMarks } from "./charts.js";
import { renderDiff } from "./diff.js";
import { el } from "./dom.js";
import { renderDownloads } from "./downloads.js";
import { renderFilterBar } from "./filterbar.js";
import { loadFindings } from "./findings.js";
import { renderFlame } from "./flame.js";
import { fmtTime } from "./format.js";
import { refreshGoroutines, renderGoroutines } from "./goroutines.js";
import { loadHeader } from "./header.js";
import { renderHealth } from "./health.js";
import { liveRefresh } from "./live.js";
import { rangeOf, rangePicker, setRangeParams } from "./timerange.js";
import { tipShown, removeTips } from "./tooltip.js";
import { applyParams, defaultState, saveURL } from "./urlstate.js";

// TABS: [name, render(v), refresh(v) (a live refresh: the same view, newer
// data, the page as it was)].
const TABS = {
  flame: ["Flame graph", renderFlame, renderFlame],
  diff: ["Diff", renderDiff, renderDiff],
  goroutines: ["Goroutines", renderGoroutines, refreshGoroutines],
  downloads: ["Downloads", renderDownloads, renderDownloads],
};
const FILTERS = ["state", "wait_reason", "wait_duration", "label"];
// DEFAULT_REFRESH is the live refresh's interval (seconds) unless the
// agent's snapshots are further apart.
const DEFAULT_REFRESH = 10;

// SLOW_REFRESH_MS is how often a live page reloads its findings, header and
// runtime health panel.
const SLOW_REFRESH_MS = 60000;

// processView renders the process page into app and returns the view, with
// update(params) (a link to another view of the process) and destroy()
// methods; params (URLSearchParams) set the first view.
export function processView(app, crumb, pid, start, params) {
  const st = {
    ...defaultState(),
    anchor: "", offset: 0, goffset: 0, moments: [], kinds: [], folded: {}, interval: 0, destroyed: false,
    charts: {}, // uPlot charts by slot: "goroutines", "health"
    loads: {}, // requests in flight by slot (AbortControllers): "series", "tab", "findings"
  };
  applyParams(st, params || new URLSearchParams(), false);
  if (!TABS[st.tab]) st.tab = "flame";
  crumb.replaceChildren(el("a", { href: "#/", style: "color:#cbd5e1" }, "processes"), ` / pid ${pid}`);

  const info = el("div", { class: "info" });
  const healthBox = el("section", { id: "health", class: "health", hidden: true });
  const findingsBox = el("section", { id: "findings", class: "findings" });
  const chartBoxes = {
    states: el("div", { id: "chart-states" }),
    waits: el("div", { id: "chart-waits" }),
    note: el("div", { id: "series-note", class: "muted" }),
    health: { heap: el("div", { id: "chart-heap" }), cpu: el("div", { id: "chart-cpu" }) },
  };
  chartBoxes.health.wrap = el("div", { id: "health-charts", class: "charts", hidden: true },
    el("div", { class: "card" }, el("h3", {}, "Heap and memory limits"), chartBoxes.health.heap),
    el("div", { class: "card" }, el("h3", {}, "CPU: GOMAXPROCS, quota and throttling"), chartBoxes.health.cpu));
  const runtimeToggle = el("input", { id: "series-runtime", type: "checkbox", checked: st.runtime,
    onchange: () => { st.runtime = runtimeToggle.checked; save(); reloadSeries(); } });
  const chartState = el("div", { class: "card" }, el("h3", {}, "Goroutines by state"), chartBoxes.states);
  const chartWait = el("div", { class: "card" }, el("h3", {}, "Waiting goroutines by wait reason",
    el("label", { class: "series-toggle", title: "the runtime's own wait reasons (GC, finalizers, timers...) as series of their own" },
      runtimeToggle, "runtime's reasons apart")), chartBoxes.waits, chartBoxes.note);
  const moment = el("span", { id: "at", class: "moment" });
  const filterBar = el("div", { id: "filter-bar", class: "filter-bar" });
  const tabs = el("div", { class: "tabs" });
  const panel = el("div", { class: "panel" });
  let picker = null, live = null, ready = false;

  const v = {
    pid, start, st, panel,
    base: `api/processes/${pid}/${start}`,
    // sites are the findings' sites by site_id, to name a site filter.
    sites: {},
    // kinds are GET /api/kinds' answer, loaded before the first tab renders.
    kinds: [], kindsError: null,
    refresh,
    saveURL: save,
    // showFilters redraws the filter bar (a tab changed one) and the URL.
    showFilters() { renderFilterBar(v, filterBar, removeFilters); save(); },
    // load aborts the request in flight in slot and returns the signal of
    // the next: a view asks for one thing at a time.
    load(slot) {
      st.loads[slot]?.abort();
      const c = new AbortController();
      st.loads[slot] = c;
      return c.signal;
    },
    filterParams() {
      const p = new URLSearchParams();
      for (const k of FILTERS) if (st[k]) p.set(k, st[k]);
      return p;
    },
    // rangeParams sets p's from= and to= to the page's range.
    rangeParams: (p) => setRangeParams(st, p),
    // atParam is the moment of the goroutine table and the downloads: the
    // one picked on a chart, else the range's end ("" is the newest).
    atParam() {
      if (st.at) return st.at;
      return st.range ? "" : new Date(rangeOf(st).to).toISOString();
    },
    // momentShown is that moment as a stored one, for people.
    momentShown() {
      const t = v.atParam() || st.anchor;
      return momentAt(st.moments, t) || t;
    },
    // setRange shows the range r ({range} relative or {from, to}).
    setRange(r) {
      if (r.range) { st.range = r.range; st.from = st.to = ""; } else { st.range = ""; st.from = r.from; st.to = r.to; }
      st.at = "";
      changedRange();
    },
    // setBaseline sets the diff's baseline range (ms; null: the default,
    // the range before the page's) and shows the diff.
    setBaseline(a, b) {
      st.baseFrom = a === null ? "" : new Date(Math.min(a, b)).toISOString();
      st.baseTo = a === null ? "" : new Date(Math.max(a, b)).toISOString();
      setTab("diff", true);
    },
    // pickMoment sets the goroutine table's moment (a chart's click).
    pickMoment(t) {
      st.at = t;
      showMoment();
      redrawMarks(st);
      if (st.tab === "goroutines" || st.tab === "downloads") refresh();
      else save();
    },
    // linkAttrs are the attributes of a link to the view params describe
    // (an object): a real link (#/p/PID/START?params), applied in place
    // when it is the page's own already.
    linkAttrs(params, attrs) {
      const q = new URLSearchParams();
      for (const [k, val] of Object.entries(params)) if (val) q.set(k, val);
      const href = `#/p/${pid}/${start}?${q}`;
      return {
        ...attrs, href,
        onclick: (e) => {
          if (e.button !== 0 || e.ctrlKey || e.metaKey || e.shiftKey || e.altKey) return; // a new tab or window
          if (new URL(e.currentTarget.href).hash !== location.hash) return; // hashchange: update()
          e.preventDefault();
          update(q);
        },
      };
    },
  };

  for (const [k, [name]] of Object.entries(TABS)) {
    tabs.append(el("button", { id: `tab-${k}`, onclick: () => setTab(k) }, name));
  }
  picker = rangePicker(st, (r) => v.setRange(r));
  live = liveRefresh({
    enabled: () => ready && !!st.range,
    interval: () => st.refreshSeconds || Math.max(DEFAULT_REFRESH, Math.round(st.interval || 0)),
    inspecting,
    refresh: refreshAll,
  });
  app.replaceChildren(el("h2", { id: "title" }, `pid ${pid}`), findingsBox, info, healthBox,
    el("div", { class: "controls timebar" }, picker, moment, live.el),
    el("div", { class: "charts" }, chartState, chartWait), chartBoxes.health.wrap,
    filterBar, tabs, panel);
  picker.update();

  // hovered is the element under the pointer (the live refresh waits
  // while it is a graph or a table).
  let hovered = null;
  const onOver = (e) => { hovered = e.target; };
  const onLeave = () => { hovered = null; };
  document.addEventListener("pointerover", onOver);
  document.documentElement.addEventListener("pointerleave", onLeave);

  // inspecting says why the user is inspecting the view ("" when not).
  function inspecting() {
    const h = hovered?.isConnected ? hovered : null;
    if (h?.closest("#flame, .flame-sandwich-graph, #diff-flame")) return "the pointer is on the graph";
    if (h?.closest(".panel table")) return "the pointer is on the table";
    if (tipShown()) return "a tooltip is open";
    if (st.tab === "flame" && st.zoom.length) return "the flame graph is zoomed";
    if (panel.querySelector("tr.group-members:not([hidden]), details[open]")) return "a row is expanded";
    const a = document.activeElement;
    if (a && app.contains(a) && a.matches("input[type=search], input[type=text], textarea")) return "a field has the focus";
    return "";
  }

  function save() {
    if (!st.destroyed) saveURL(pid, start, st);
  }

  function showMoment() {
    const t = v.momentShown();
    moment.dataset.at = v.atParam();
    moment.dataset.picked = st.at;
    moment.dataset.moment = t || "";
    moment.replaceChildren(el("span", { class: "muted" }, "goroutine table at "), el("span", { class: "moment-time" }, t ? fmtTime(t) : "the newest snapshot"),
      st.at ? el("span", { class: "muted" }, " (picked on a chart) ") : el("span", { class: "muted" }, " (the range's end; click a chart to pick another) "),
      st.at ? el("button", { id: "at-clear", title: "back to the range's end", onclick: () => { st.at = ""; showMoment(); redrawMarks(st); refresh(); } }, "×") : "");
  }

  function removeFilters(keys) {
    for (const k of keys) st[k] = "";
    st.offset = 0; st.goffset = 0;
    refresh();
  }

  // refresh renders the current tab, and what says the view: the tab
  // buttons, the filters, the moment, the URL.
  function refresh() {
    for (const b of tabs.children) b.classList.toggle("active", b.id === `tab-${st.tab}`);
    renderFilterBar(v, filterBar, removeFilters);
    showMoment();
    save();
    if (ready) TABS[st.tab][1](v);
  }

  // setTab shows tab k; the charts widen to the diff's baseline, or back.
  function setTab(k, force) {
    if (st.tab === k && !force) return;
    const before = chartWindow(st).join();
    st.tab = k;
    removeTips();
    if (chartWindow(st).join() !== before) reloadSeries();
    else redrawMarks(st);
    refresh();
  }

  let seriesLoading = null;
  // reloadSeries draws the charts of the current window.
  function reloadSeries() {
    seriesLoading = loadSeries(v, chartBoxes, v.load("series")).catch(() => {}).then(() => { picker.update(); showMoment(); });
    return seriesLoading;
  }

  // changedRange shows a new range: charts, findings, the tab.
  async function changedRange() {
    picker.update();
    save();
    await reloadSeries();
    if (st.destroyed) return;
    live.restart();
    loadFindings(v, findingsBox, v.load("findings"));
    refresh();
  }

  // refreshAll is the live refresh: the charts (sliding the range to the
  // newest moment), then the tab, its requests aborted by signal; the
  // findings (a heavy request), the header and the runtime health panel
  // once a minute.
  let slowLoaded = Date.now();
  async function refreshAll(signal) {
    if (Date.now() - slowLoaded >= SLOW_REFRESH_MS) {
      slowLoaded = Date.now();
      loadFindings(v, findingsBox, v.load("findings"));
      loadHeader(v, info).then((p) => { if (p && !st.destroyed) renderHealth(healthBox, p.runtime); });
    }
    await loadSeries(v, chartBoxes, signal);
    if (st.destroyed || signal.aborted) return;
    picker.update();
    showMoment();
    await TABS[st.tab][2](v);
  }

  // apply sets the view a link's params describe.
  function apply(params) {
    const before = `${st.range}|${st.from}|${st.to}`;
    applyParams(st, params, true);
    if (!TABS[st.tab]) st.tab = "flame";
    st.offset = 0; st.goffset = 0;
    return before !== `${st.range}|${st.from}|${st.to}`;
  }

  // update shows the view params describe, and brings the tabs into view.
  function update(params) {
    const rangeChanged = apply(params);
    runtimeToggle.checked = st.runtime;
    if (!ready) return;
    if (rangeChanged) changedRange();
    else { redrawMarks(st); refresh(); }
    if (params.get("tab")) tabs.scrollIntoView({ block: "start" });
  }

  refresh();
  const headerLoad = loadHeader(v, info);
  const kindsLoad = kinds().then((ks) => { v.kinds = ks; }, (e) => { v.kindsError = e; });
  (async () => {
    // A relative range ends at the newest stored moment: the process's
    // last snapshot, until the series says newer.
    const p = await headerLoad;
    if (p && Date.parse(p.last_snapshot) > Date.UTC(2000, 0, 1)) st.anchor = p.last_snapshot;
    renderHealth(healthBox, p?.runtime);
    picker.update();
    loadFindings(v, findingsBox, v.load("findings"));
    await Promise.all([reloadSeries(), kindsLoad]);
    if (st.destroyed) return;
    ready = true;
    live.restart();
    refresh();
    if (params?.get("tab")) tabs.scrollIntoView({ block: "start" });
  })();
  return {
    pid, start, update,
    destroy() {
      st.destroyed = true;
      live.stop();
      Object.values(st.loads).forEach((c) => c.abort());
      clearCharts(st);
      document.removeEventListener("pointerover", onOver);
      document.documentElement.removeEventListener("pointerleave", onLeave);
      removeTips();
    },
  };
}
