// The process list (#/): searched, filtered and sorted in the page; the
// stored processes of one service (restarts, short-lived tools) collapse
// into one row per service, which links to the service's history
// (#/s/NAME). Each row shows its goroutines' growth over the API's growth
// window; live short-lived processes (the API's short_lived: a go build's
// tools) are hidden by the default and live filters until shown.
import { api } from "./api.js";
import { el, showError } from "./dom.js";
import { FINDING_KINDS, findingsCell } from "./findings.js";
import { STATES, fmtInt, fmtSpan, fmtTime } from "./format.js";
import { serviceHash } from "./service.js";

// FILTERS are the filter's choices: which processes it shows.
// SHORT_FILTERS are those hiding short-lived processes until shown.
const SHORT_FILTERS = new Set(["default", "live"]);
const FILTERS = [
  ["default", "live + findings", "the live processes, and the stored ones with findings", (p) => p.live || (p.findings_count || 0) > 0],
  ["live", "live", "the live processes", (p) => p.live],
  ["stored", "stored", "the processes no longer live, from the store", (p) => !p.live],
  ["all", "all", "every process", () => true],
];

// SORTS are the sortable columns: the header, the direction a first click
// sorts in, and the comparison in ascending order. "findings" is the API's
// order (findings first, the worst first): its descending is that order.
const SORTS = {
  findings: { name: "findings", first: "desc", cmp: (a, b) => b.order - a.order },
  service: { name: "service", first: "asc", cmp: (a, b) => a.service.localeCompare(b.service) || b.order - a.order },
  goroutines: { name: "goroutines", first: "desc", cmp: (a, b) => a.total - b.total || b.order - a.order },
  // Without a growth (fewer than two moments in the window): below any.
  growth: { name: "growth", first: "desc", cmp: (a, b) => cmpGrowth(a.growth, b.growth) || b.order - a.order },
  last: { name: "last snapshot", first: "desc", cmp: (a, b) => a.last - b.last || b.order - a.order },
};

// cmpGrowth compares two growths, null (none) the least.
const cmpGrowth = (a, b) => (a === null ? (b === null ? 0 : -1) : b === null ? 1 : a - b);

// state outlives a visit to a process page: back on the list, the same
// search, filter, sort, expanded services and short-lived shown or not.
const state = { q: "", filter: "default", sort: "findings", dir: "desc", expanded: new Set(), showShort: false };

export async function listView(app) {
  app.replaceChildren(el("h2", {}, "Go processes"), el("p", { class: "muted" }, "Loading…"));
  let procs;
  try {
    procs = await api("api/processes");
  } catch (e) {
    showError(app, e);
    return;
  }
  if (!procs.length) {
    app.replaceChildren(el("h2", {}, "Go processes (0)"), el("p", { class: "muted" }, "No Go processes seen yet."));
    return;
  }
  // The API lists the processes with findings first, the worst first: that
  // order is kept as each one's rank, the default sort.
  procs.forEach((p, i) => { p._order = i; });
  const out = el("div", { id: "processes-out" });
  const search = el("input", { id: "processes-search", type: "search", placeholder: "search service, pid, executable…", value: state.q, size: 40,
    oninput: () => { state.q = search.value; render(); } });
  const filterButton = ([key, name, title]) => el("button", {
    id: `processes-filter-${key}`, title: `show ${title}`,
    onclick: () => { if (state.filter !== key) { state.filter = key; render(); } },
  }, name);
  const toggle = el("span", { class: "view-toggle", id: "processes-filter" }, FILTERS.map(filterButton));
  const render = () => {
    for (const b of toggle.children) {
      const on = b.id === `processes-filter-${state.filter}`;
      b.className = on ? "active" : "";
      b.setAttribute("aria-pressed", String(on));
    }
    renderTable(out, procs, render);
  };
  app.replaceChildren(el("h2", {}, `Go processes (${fmtInt(procs.length)})`),
    el("div", { class: "controls" }, search, toggle), out);
  render();
}

// matches says whether p matches the search q (lower case): a substring of
// its service name, pid or executable.
function matches(p, q) {
  if (!q) return true;
  return (p.service_name || "").toLowerCase().includes(q) || String(p.pid).includes(q) || (p.exe || "").toLowerCase().includes(q);
}

// sortKey is what SORTS compare of a process.
const sortKey = (p) => ({ order: p._order, service: p.service_name || "", total: p.total || 0, last: Date.parse(p.last_snapshot) || 0,
  growth: p.growth ? p.growth.delta : null });

// renderTable draws the processes the search and filter keep into out.
function renderTable(out, procs, render) {
  const q = state.q.trim().toLowerCase();
  const keep = FILTERS.find(([key]) => key === state.filter)[3];
  const found = procs.filter((p) => keep(p) && matches(p, q));
  const hideShort = SHORT_FILTERS.has(state.filter);
  const short = hideShort ? found.filter((p) => p.short_lived).length : 0;
  const shown = state.showShort ? found : found.filter((p) => !(hideShort && p.short_lived));
  const sort = SORTS[state.sort];
  const sign = state.dir === "asc" ? 1 : -1;
  const byKey = (a, b) => sign * sort.cmp(a.key, b.key);

  // Stored processes of one service collapse into a service row when
  // there are two or more of them; live ones always have their own row.
  const byService = new Map();
  for (const p of shown) {
    if (p.live) continue;
    const s = p.service_name || "";
    if (!byService.has(s)) byService.set(s, []);
    byService.get(s).push(p);
  }
  const items = [];
  const grouped = new Set();
  for (const [service, members] of byService) {
    if (members.length < 2) continue;
    members.forEach((p) => grouped.add(p));
    const ms = members.map((p) => ({ p, key: sortKey(p) })).sort(byKey);
    const growths = ms.map((m) => m.key.growth).filter((g) => g !== null);
    items.push({ service, members: ms.map((m) => m.p), key: {
      order: Math.min(...ms.map((m) => m.key.order)), service,
      total: Math.max(...ms.map((m) => m.key.total)), last: Math.max(...ms.map((m) => m.key.last)),
      growth: growths.length ? Math.max(...growths) : null,
    } });
  }
  for (const p of shown) if (!grouped.has(p)) items.push({ p, key: sortKey(p) });
  // Ascending on the groups' keys: the best member leads in the findings
  // order, the largest and newest in the others.
  items.sort(byKey);

  const sortTh = (key, cls) => {
    const on = state.sort === key;
    return el("th", { class: cls, "aria-sort": on ? (state.dir === "asc" ? "ascending" : "descending") : "none" },
      // The arrow is the button's ::after (style.css): the header's text
      // stays its name.
      el("button", { id: `processes-sort-${key}`, class: `sort${on ? ` active ${state.dir}` : ""}`, title: `sort by ${SORTS[key].name}`,
        onclick: () => {
          if (on) state.dir = state.dir === "asc" ? "desc" : "asc";
          else { state.sort = key; state.dir = SORTS[key].first; }
          render();
        } }, SORTS[key].name));
  };
  const head = el("tr", {}, sortTh("findings"), sortTh("service"), el("th", { class: "num" }, "pid"), el("th", {}, "Go"), el("th", {}, "status"),
    sortTh("goroutines", "num"), sortTh("growth", "num"), STATES.map((s) => el("th", { class: "num" }, s)), sortTh("last"), el("th", {}, "executable"));
  const cols = 9 + STATES.length;
  const body = el("tbody", {});
  for (const it of items) {
    if (!it.members) {
      body.append(procRow(it.p));
      continue;
    }
    const open = state.expanded.has(it.service);
    body.append(serviceRow(it, open, () => {
      if (open) state.expanded.delete(it.service); else state.expanded.add(it.service);
      render();
    }));
    if (open) body.append(...it.members.map((p) => procRow(p, it.service)));
  }
  if (!items.length) body.append(el("tr", { class: "empty" }, el("td", { colSpan: cols, class: "muted" }, "No process matches the search and filter.")));
  const hidden = procs.length - found.length;
  // The short-lived toggle: how many the filter hides, and a button to
  // show (or hide again) them.
  const shortToggle = short ? el("button", {
    id: "processes-short", class: "link", "aria-pressed": String(state.showShort),
    title: "live processes seen for under a minute with few goroutines and no findings (a go build's tools)",
    onclick: () => { state.showShort = !state.showShort; render(); },
  }, state.showShort ? `hide ${plural(short, "short-lived process", "short-lived processes")}` : `${fmtInt(short)} short-lived hidden — show`) : null;
  out.replaceChildren(
    el("p", { class: "muted", id: "processes-count" }, `${fmtInt(shown.length)} of ${fmtInt(procs.length)} processes` +
      (hidden ? `, ${fmtInt(hidden)} hidden by the ${q ? "search and " : ""}filter` : "") +
      (grouped.size ? `; ${fmtInt(grouped.size)} stored processes in ${plural(items.filter((i) => i.members).length, "service row")}` : ""),
      shortToggle ? "; " : null, shortToggle),
    el("table", { id: "processes", dataset: { sort: state.sort, dir: state.dir, filter: state.filter, shown: shown.length,
      short: short, shortShown: state.showShort && short ? "1" : "0" } },
      el("thead", {}, head), body));
}

// plural is "n thing" or "n things" (or "n" and the plural given).
const plural = (n, thing, things) => `${fmtInt(n)} ${n === 1 ? thing : things || thing + "s"}`;

// growthCell shows a growth ({window_seconds, since, from, to, delta,
// growing}, or none): the change, signed, over the time since.
function growthCell(g, title) {
  if (!g) return el("td", { class: "num growth" });
  const sign = g.delta > 0 ? "+" : g.delta < 0 ? "−" : "±";
  return el("td", { class: `num growth${g.growing ? " growing" : ""}`, title: title || growthTitle(g) }, `${sign}${fmtInt(Math.abs(g.delta))}`);
}

// growthTitle says what a growth measured.
function growthTitle(g) {
  return `${fmtInt(g.from)} → ${fmtInt(g.to)} goroutines since ${fmtTime(g.since)}` +
    ` (growth over up to ${fmtSpan(g.window_seconds)} before the last snapshot)${g.growing ? ": growing" : ""}`;
}

// statusCell says whether p is live (and how it is walked), exited (the
// agent's last snapshot found it gone: not an error) or stored only.
function statusCell(p) {
  if (p.live) {
    return el("td", {}, el("span", { class: "pill live", title: p.walker_reason ? `walker ${p.walker}: ${p.walker_reason}` : "" }, "live" + (p.walker ? ` · ${p.walker}` : "")),
      p.short_lived ? " " : null, p.short_lived ? el("span", { class: "pill short", title: "seen for under a minute, with few goroutines" }, "short-lived") : null,
      p.error ? el("div", { class: "error" }, p.error) : null);
  }
  if (p.exited) return el("td", {}, el("span", { class: "pill gone exited", title: p.error || "" }, "exited"));
  return el("td", {}, el("span", { class: "pill gone" }, "stored"));
}

// procRow is one process's row; member of the service row of service, if
// given.
function procRow(p, service) {
  const href = `#/p/${p.pid}/${p.start_time}`;
  const k = sortKey(p);
  const dataset = { pid: p.pid, findings: p.findings_count || 0, live: p.live ? "1" : "0", total: k.total, last: k.last,
    growth: k.growth === null ? "" : k.growth, shortLived: p.short_lived ? "1" : "0", exited: p.exited ? "1" : "0" };
  if (service !== undefined) dataset.service = service;
  // A member's service row links to the service's history already.
  const history = service === undefined ? el("a", { class: "service-link", href: serviceHash(p.service_name),
    title: "this service's processes over time, across restarts", onclick: (e) => e.stopPropagation() }, "history") : null;
  return el("tr", { class: service !== undefined ? "proc member" : "proc", onclick: () => { location.hash = href; }, dataset },
    findingsCell(p),
    el("td", { class: service !== undefined ? "member-name" : null }, el("a", { href, class: "proc-name" }, p.service_name || "(unnamed)"),
      history ? " " : null, history),
    el("td", { class: "num" }, p.pid),
    el("td", {}, p.go_version || ""),
    statusCell(p),
    el("td", { class: "num" }, fmtInt(p.total)),
    growthCell(p.growth),
    STATES.map((s) => el("td", { class: `num state-${s}` }, (p.counts && p.counts[s]) ? fmtInt(p.counts[s]) : "")),
    el("td", {}, fmtTime(p.last_snapshot)),
    el("td", { class: "mono" }, p.exe || ""));
}

// serviceRow is the row standing for the stored processes of one service:
// their findings summed (kinds worst first, as the API lists them), the
// newest snapshot, the executable when they share one.
function serviceRow(it, open, toggle) {
  const byKind = new Map();
  let findings = 0;
  for (const p of it.members) {
    findings += p.findings_count || 0;
    for (const k of p.finding_kinds || []) byKind.set(k.kind, (byKind.get(k.kind) || 0) + k.count);
  }
  // The worst kind first (unknown kinds after the known), then by name.
  const rank = (k) => { const i = FINDING_KINDS.indexOf(k); return i < 0 ? FINDING_KINDS.length : i; };
  const kinds = [...byKind].map(([kind, count]) => ({ kind, count })).sort((a, b) => rank(a.kind) - rank(b.kind) || a.kind.localeCompare(b.kind));
  const exes = new Set(it.members.map((p) => p.exe || ""));
  const n = it.members.length;
  const growth = it.key.growth;
  return el("tr", { class: "service-group", dataset: { service: it.service, count: n, findings, total: it.key.total, last: it.key.last,
    growth: growth === null ? "" : growth, open: open ? "1" : "0" } },
    findingsCell({ findings_count: findings, finding_kinds: kinds }),
    el("td", { colSpan: 4 },
      el("button", { class: "expand", "aria-expanded": String(open), title: open ? "hide these processes" : "show these processes", onclick: toggle }, open ? "▾" : "▸"),
      " ", el("a", { class: "service-name", href: serviceHash(it.service), title: "this service's processes over time, across restarts" },
        el("b", {}, it.service || "(unnamed)")),
      el("span", { class: "muted" }, ` — ${fmtInt(n)} earlier processes`)),
    el("td", { class: "num", title: "the most of any of them" }, fmtInt(it.key.total)),
    growth === null ? growthCell(null) : growthCell({ delta: growth, growing: it.members.some((p) => p.growth?.growing) }, "the largest growth of any of them"),
    STATES.map(() => el("td", {})),
    el("td", {}, fmtTime(it.key.last)),
    el("td", { class: "mono" }, exes.size === 1 ? [...exes][0] : ""));
}
