// One process (#/p/PID/START?PARAMS): its findings above everything else,
// header, charts, the moment selector and the tabs. The view state and
// helpers the tabs share are one object, v. PARAMS describe a view (a
// finding's links use them): tab, at, the filters, q, site and focus.
import { kinds } from "./api.js";
import { loadSeries, momentAt } from "./charts.js";
import { renderDiff } from "./diff.js";
import { el } from "./dom.js";
import { renderDownloads } from "./downloads.js";
import { loadFindings } from "./findings.js";
import { renderFlame } from "./flame.js";
import { renderGoroutines } from "./goroutines.js";
import { loadHeader } from "./header.js";

const TABS = {
  flame: ["Flame graph", renderFlame],
  diff: ["Diff", renderDiff],
  goroutines: ["Goroutines", renderGoroutines],
  downloads: ["Downloads", renderDownloads],
};
const FILTERS = ["state", "wait_reason", "wait_duration", "label"];
// VIEW_PARAMS are what a link to a view sets, the filters of every tab
// and: q, the goroutine search; site, the goroutine table's site filter (a
// finding's site_id); focus, a function the flame graph highlights.
const VIEW_PARAMS = [...FILTERS, "q", "site", "focus"];

// processView renders the process page into app and returns the view, with
// update(params) (a link to another view of the process) and destroy()
// methods; params (URLSearchParams) set the first view.
export function processView(app, crumb, pid, start, params) {
  const st = {
    tab: "flame", kind: "goroutines", at: "", state: "", wait_reason: "", wait_duration: "", label: "",
    q: "", site: "", focus: "", offset: 0, moments: [], charts: [], destroyed: false,
    goroutinesLoad: null, // the goroutine table's request in flight (an AbortController)
  };
  crumb.replaceChildren(el("a", { href: "#/", style: "color:#cbd5e1" }, "processes"), ` / pid ${pid}`);

  const info = el("div", { class: "info" });
  const findingsBox = el("section", { id: "findings", class: "findings" });
  const chartState = el("div", { class: "card" }, el("h3", {}, "Goroutines by state"), el("div", { id: "chart-states" }));
  const chartWait = el("div", { class: "card" }, el("h3", {}, "Waiting goroutines by wait reason"), el("div", { id: "chart-waits" }));
  const atSel = el("select", { id: "at", onchange: () => { st.at = atSel.value; refresh(); } });
  const tabs = el("div", { class: "tabs" });
  const panel = el("div", { class: "panel" });

  const v = {
    pid, start, st, panel, atSel,
    base: `api/processes/${pid}/${start}`,
    // sites are the findings' sites by site_id, to name a site filter.
    sites: {},
    // kinds are GET /api/kinds' answer, loaded before the first tab renders.
    kinds: [], kindsError: null,
    refresh,
    filterParams() {
      const p = new URLSearchParams();
      for (const k of FILTERS) if (st[k]) p.set(k, st[k]);
      return p;
    },
    // filterText says which of the flame graph's filters apply here.
    filterText(noDuration) {
      const p = v.filterParams();
      if (noDuration) p.delete("wait_duration");
      const parts = [...p.entries()].map(([k, val]) => `${k}=${val}`);
      return parts.length ? `filtered by ${parts.join(", ")} (set on the flame graph tab)` : "unfiltered (filters are set on the flame graph tab)";
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
    tabs.append(el("button", { id: `tab-${k}`, onclick: () => { st.tab = k; refresh(); } }, name));
  }
  app.replaceChildren(el("h2", { id: "title" }, `pid ${pid}`), findingsBox, info,
    el("div", { class: "charts" }, chartState, chartWait),
    el("div", { class: "controls" }, el("label", {}, "moment", atSel), el("span", { class: "muted" }, "(or click a chart)")),
    tabs, panel);

  function refresh() {
    for (const b of tabs.children) b.classList.toggle("active", b.id === `tab-${st.tab}`);
    TABS[st.tab][1](v);
  }

  // apply sets the view params describe: the tab and moment they name,
  // and every filter to theirs (none when absent).
  function apply(params) {
    for (const k of VIEW_PARAMS) st[k] = params.get(k) || "";
    st.offset = 0;
    if (TABS[params.get("tab")]) st.tab = params.get("tab");
    if (params.get("at")) st.at = momentAt(st.moments, params.get("at"));
  }

  // update shows the view params describe, and brings the tabs into view.
  let ready = false;
  function update(params) {
    apply(params);
    if (!ready) return;
    atSel.value = st.at;
    refresh();
    if (params.get("tab")) tabs.scrollIntoView({ block: "start" });
  }

  apply(params || new URLSearchParams());
  loadFindings(v, findingsBox);
  loadHeader(v, info);
  Promise.all([
    loadSeries(v, chartState),
    kinds().then((ks) => { v.kinds = ks; }, (e) => { v.kindsError = e; }),
  ]).then(() => {
    if (st.destroyed) return;
    ready = true;
    refresh();
    if (params?.get("tab")) tabs.scrollIntoView({ block: "start" });
  });
  return { pid, start, update, destroy() { st.destroyed = true; st.goroutinesLoad?.abort(); st.charts.forEach((u) => u.destroy()); document.querySelectorAll(".d3-flame-graph-tip").forEach((e) => e.remove()); } };
}
