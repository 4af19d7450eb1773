// The goroutine table tab: the snapshot at the chosen moment, searched and
// paged by the Go handler; filtered to one site (a finding's group) when
// a finding's link says so.
import { api } from "./api.js";
import { el, labelsEl, showError } from "./dom.js";
import { siteChip } from "./findings.js";
import { fmtInt, fmtWait } from "./format.js";

const PAGE = 100;

export function renderGoroutines(v) {
  const { st, panel } = v;
  const search = el("input", { id: "search", type: "search", placeholder: "search id, state, wait reason, label, function, file…", value: st.q, size: 50 });
  let timer = null;
  search.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => { st.q = search.value; st.offset = 0; loadGoroutines(v, out); }, 250);
  });
  const out = el("div", { id: "goroutines-out" });
  // The site filter: exactly a finding's group, until cleared.
  const site = st.site ? el("span", { class: "chip", id: "goroutines-site", dataset: { site: st.site } },
    "group of the finding at ", el("span", { class: "mono", id: "goroutines-site-label" }, `site ${st.site}`),
    el("button", { id: "goroutines-site-clear", title: "show every goroutine", onclick: () => { st.site = ""; st.offset = 0; renderGoroutines(v); } }, "×")) : null;
  panel.replaceChildren(el("div", { class: "controls" }, search, site, el("span", { class: "muted", id: "goroutines-filters" }, v.filterText(false))), out);
  siteChip(v);
  loadGoroutines(v, out);
}

// loadGoroutines shows the page st asks for. A request in flight for an
// earlier search or page is aborted (st.goroutinesLoad): the agent stops
// reading the snapshot for it, and its slot serves the new one.
async function loadGoroutines(v, out) {
  const { st } = v;
  const p = v.filterParams();
  if (st.at) p.set("at", st.at);
  if (st.q) p.set("q", st.q);
  if (st.site) p.set("site", st.site);
  p.set("offset", st.offset); p.set("limit", PAGE);
  st.goroutinesLoad?.abort();
  const mine = new AbortController();
  st.goroutinesLoad = mine;
  let g;
  try {
    g = await api(`${v.base}/goroutines?${p}`, mine.signal);
  } catch (e) {
    if (!mine.signal.aborted) showError(out, e);
    return;
  } finally {
    if (st.goroutinesLoad === mine) st.goroutinesLoad = null;
  }
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
    g.offset > 0 ? el("button", { onclick: () => { st.offset = Math.max(0, st.offset - PAGE); loadGoroutines(v, out); } }, "previous") : null,
    g.offset + g.goroutines.length < g.matched ? el("button", { onclick: () => { st.offset += PAGE; loadGoroutines(v, out); } }, "next") : null);
  out.dataset.matched = g.matched;
  out.replaceChildren(pager, el("table", { id: "goroutines" },
    el("thead", {}, el("tr", {}, el("th", { class: "num" }, "id"), el("th", {}, "state"), el("th", {}, "wait reason"),
      el("th", { class: "num" }, "waiting"), el("th", {}, "labels"), el("th", {}, "stack"))),
    el("tbody", {}, rows)));
}
