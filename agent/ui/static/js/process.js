// One process (#/p/PID/START): header, charts, the moment selector and the
// tabs. The view state and helpers the tabs share are one object, v.
import { kinds } from "./api.js";
import { loadSeries } from "./charts.js";
import { renderDiff } from "./diff.js";
import { el } from "./dom.js";
import { renderDownloads } from "./downloads.js";
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

// processView renders the process page into app and returns the view, with
// a destroy() method.
export function processView(app, crumb, pid, start) {
  const st = {
    tab: "flame", kind: "goroutines", at: "", state: "", wait_reason: "", wait_duration: "", label: "",
    q: "", offset: 0, moments: [], charts: [], destroyed: false,
    goroutinesLoad: null, // the goroutine table's request in flight (an AbortController)
  };
  crumb.replaceChildren(el("a", { href: "#/", style: "color:#cbd5e1" }, "processes"), ` / pid ${pid}`);

  const info = el("div", { class: "info" });
  const chartState = el("div", { class: "card" }, el("h3", {}, "Goroutines by state"), el("div", { id: "chart-states" }));
  const chartWait = el("div", { class: "card" }, el("h3", {}, "Waiting goroutines by wait reason"), el("div", { id: "chart-waits" }));
  const atSel = el("select", { id: "at", onchange: () => { st.at = atSel.value; refresh(); } });
  const tabs = el("div", { class: "tabs" });
  const panel = el("div", { class: "panel" });

  const v = {
    pid, start, st, panel, atSel,
    base: `api/processes/${pid}/${start}`,
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
  };

  for (const [k, [name]] of Object.entries(TABS)) {
    tabs.append(el("button", { id: `tab-${k}`, onclick: () => { st.tab = k; refresh(); } }, name));
  }
  app.replaceChildren(el("h2", { id: "title" }, `pid ${pid}`), info,
    el("div", { class: "charts" }, chartState, chartWait),
    el("div", { class: "controls" }, el("label", {}, "moment", atSel), el("span", { class: "muted" }, "(or click a chart)")),
    tabs, panel);

  function refresh() {
    for (const b of tabs.children) b.classList.toggle("active", b.id === `tab-${st.tab}`);
    TABS[st.tab][1](v);
  }

  loadHeader(v, info);
  Promise.all([
    loadSeries(v, chartState),
    kinds().then((ks) => { v.kinds = ks; }, (e) => { v.kindsError = e; }),
  ]).then(() => { if (!st.destroyed) refresh(); });
  return { destroy() { st.destroyed = true; st.goroutinesLoad?.abort(); st.charts.forEach((u) => u.destroy()); document.querySelectorAll(".d3-flame-graph-tip").forEach((e) => e.remove()); } };
}
