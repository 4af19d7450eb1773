// The goroutine table tab: the snapshot at the chosen moment, searched and
// paged by the Go handler; filtered to one site (a finding's group) when
// a finding's link says so. Two views: each goroutine (a row each, by id)
// and grouped (GET .../goroutines/groups: a row per stack, state, wait
// reason and creator, as debug=1 and panicparse group them, sortable by
// count and by wait; a group expands to its members, paged). What a
// goroutine is blocked on is shown; a click on a channel or semaphore
// lists everyone queued on it (addr=). The moment is the page's (the
// range's end, or one picked on a chart); the view, sort, search, queue
// and expanded group are the view's state (st), kept in the URL. All text
// comes from the target and is set as text (dom.js).
import { api } from "./api.js";
import { el, labelsEl, showError } from "./dom.js";
import { siteChip } from "./findings.js";
import { fmtInt, fmtTime, fmtWait } from "./format.js";

const PAGE = 100;
// GROUP_PAGE is how many groups a page shows; MEMBERS how many members an
// expanded group shows at a time.
const GROUP_PAGE = 100;
const MEMBERS = 100;

// renderGoroutines draws the tab into v.panel.
export function renderGoroutines(v) {
  const { st, panel } = v;
  st.gview ||= "groups"; // "groups" (by stack and state, as debug=1) or "each" (a row per goroutine)
  st.gsort ||= "count";
  st.goffset ||= 0;
  st.addr ||= "";
  v.saveURL();
  const search = el("input", { id: "search", type: "search", placeholder: "search id, state, wait reason, label, function, file, 0x address…", value: st.q, size: 50 });
  let timer = null;
  search.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => { st.q = search.value; st.offset = 0; st.goffset = 0; v.showFilters(); load(v, out); }, 250);
  });
  const out = el("div", { id: "goroutines-out", dataset: { view: st.gview } });
  // The site filter: exactly a finding's group, until cleared.
  const site = st.site ? el("span", { class: "chip", id: "goroutines-site", dataset: { site: st.site } },
    "group of the finding at ", el("span", { class: "mono", id: "goroutines-site-label" }, `site ${st.site}`),
    el("button", { id: "goroutines-site-clear", title: "show every goroutine", onclick: () => { st.site = ""; st.offset = 0; st.goffset = 0; v.refresh(); } }, "×")) : null;
  // The queue filter: the goroutines blocked on one channel or semaphore.
  const queue = st.addr ? el("span", { class: "chip", id: "goroutines-addr", dataset: { addr: st.addr } },
    "queued on ", el("span", { class: "mono" }, st.addr),
    el("button", { id: "goroutines-addr-clear", title: "show every goroutine", onclick: () => { st.addr = ""; st.offset = 0; st.goffset = 0; v.refresh(); } }, "×")) : null;
  const viewButton = (view, name) => el("button", {
    id: `goroutines-view-${view}`, class: st.gview === view ? "active" : "", "aria-pressed": String(st.gview === view),
    onclick: () => { if (st.gview !== view) { st.gview = view; v.refresh(); } },
  }, name);
  const toggle = el("span", { class: "view-toggle" }, viewButton("groups", "grouped"), viewButton("each", "each goroutine"));
  const moment = el("span", { class: "muted", id: "goroutines-moment" }, `at ${fmtTime(v.momentShown())}`);
  panel.dataset.view = "goroutines";
  panel.replaceChildren(el("div", { class: "controls" }, toggle, search, site, queue, moment), out);
  siteChip(v);
  load(v, out);
}

// refreshGoroutines is the live refresh: the same page of the newest
// snapshot (nothing when a moment is picked: that snapshot stays).
export function refreshGoroutines(v) {
  const out = document.getElementById("goroutines-out");
  if (!out || v.st.at) return Promise.resolve();
  const moment = document.getElementById("goroutines-moment");
  if (moment) moment.textContent = `at ${fmtTime(v.momentShown())}`;
  return load(v, out);
}

// load shows the page st asks for, in st's view.
function load(v, out) {
  return v.st.gview === "groups" ? loadGroups(v, out) : loadGoroutines(v, out);
}

// params are the query of the table's requests: filters, moment, search,
// site and queue.
function params(v) {
  const { st } = v;
  const p = v.filterParams();
  if (v.atParam()) p.set("at", v.atParam());
  if (st.q) p.set("q", st.q);
  if (st.site) p.set("site", st.site);
  if (st.addr) p.set("addr", st.addr);
  return p;
}

// fetchTable asks path for the table's page. A request in flight for an
// earlier search or page (or a live refresh) is aborted (v.load): the
// agent stops reading the snapshot for it, and its slot serves the new
// one. It returns null when the answer is not to be shown.
async function fetchTable(v, out, path) {
  const { st } = v;
  const signal = v.load("tab");
  try {
    const g = await api(path, signal);
    return st.destroyed || signal.aborted ? null : g;
  } catch (e) {
    if (!signal.aborted) showError(out, e);
    return null;
  }
}

// showQueue lists everyone blocked on addr (a channel or semaphore).
function showQueue(v, addr) {
  const { st } = v;
  st.addr = addr; st.gview = "each"; st.offset = 0; st.goffset = 0;
  v.refresh();
}

// blockedEl shows what a goroutine is blocked on: its kind and address (a
// button listing the queue), a channel's facts, a select's other channels.
function blockedEl(v, b) {
  if (!b) return null;
  const one = (x) => {
    const facts = x.kind === "chan" && x.address === b.address ? [
      x.capacity ? `cap ${fmtInt(x.capacity)}, len ${fmtInt(x.length)}` : "unbuffered",
      x.closed ? "closed" : null,
      `${fmtInt(x.senders)} senders, ${fmtInt(x.receivers)} receivers`,
    ].filter(Boolean).join(", ") : "";
    return el("span", { class: "blocked" },
      el("button", { class: "blocked-on mono", title: "list every goroutine queued on it", dataset: { addr: x.address, kind: x.kind }, onclick: () => showQueue(v, x.address) },
        `${x.kind} ${x.address}`),
      facts ? el("span", { class: "muted blocked-facts" }, ` ${facts}`) : null);
  };
  return el("span", { class: "blocked-list" }, one(b), (b.others || []).map(one));
}

// stackEl is a stack (leaf first) with its creator, folded to its first
// frame outside the runtime.
function stackEl(frames, createdBy, truncated) {
  frames = frames || [];
  const top = frames.find((f) => !f.function.startsWith("runtime.")) || frames[0];
  const stack = el("div", { class: "stack" }, frames.map((f) => el("div", {},
    el("span", { class: "fn" }, f.function + (f.inlined ? " (inlined)" : "")), `\n    ${f.file}:${f.line}`)),
    truncated ? el("div", { class: "sys" }, "…(deeper frames cut)") : null,
    createdBy ? el("div", { class: "sys" }, `created by ${createdBy.function}\n    ${createdBy.file}:${createdBy.line}`) : null);
  return el("details", {}, el("summary", { class: "mono" }, top ? top.function : "(running: no stack)", ` (${frames.length} frames)`), stack);
}

// creatorEl names a creator by its function, its place in the title.
function creatorEl(c) {
  return c ? el("span", { class: "mono creator", title: `${c.file}:${c.line}` }, c.function) : "";
}

// goroutineRows are the rows of the per-goroutine table.
function goroutineRows(v, gs) {
  return gs.map((x) => el("tr", { class: "goroutine", dataset: { id: x.id } },
    el("td", { class: "num mono" }, x.id),
    el("td", { class: `state-${x.state}` }, x.state + (x.system ? " (system)" : "")),
    el("td", {}, x.wait_reason || ""),
    el("td", { class: "num" }, fmtWait(x.waiting_seconds)),
    el("td", {}, labelsEl(x.labels)),
    el("td", {}, stackEl(x.frames, x.created_by, x.truncated)),
    el("td", {}, creatorEl(x.created_by)),
    el("td", {}, blockedEl(v, x.blocked_on))));
}

function goroutineHead() {
  return el("thead", {}, el("tr", {}, el("th", { class: "num" }, "id"), el("th", {}, "state"), el("th", {}, "wait reason"),
    el("th", { class: "num" }, "waiting"), el("th", {}, "labels"), el("th", {}, "stack"), el("th", {}, "created by"), el("th", {}, "blocked on")));
}

// pagerEl is a count and previous/next buttons.
function pagerEl(attrs, text, prev, next) {
  return el("div", { class: "controls" }, el("span", attrs, text),
    prev ? el("button", { class: "prev", onclick: prev }, "previous") : null,
    next ? el("button", { class: "next", onclick: next }, "next") : null);
}

// loadGoroutines shows the page of goroutines st asks for.
async function loadGoroutines(v, out) {
  const { st } = v;
  const p = params(v);
  p.set("offset", st.offset); p.set("limit", PAGE);
  const g = await fetchTable(v, out, `${v.base}/goroutines?${p}`);
  if (!g) return;
  const pager = pagerEl({ id: "goroutines-count" }, `${fmtInt(g.matched)} of ${fmtInt(g.total)} goroutines match` +
      (g.matched > g.goroutines.length ? `, showing ${fmtInt(g.offset + 1)}–${fmtInt(g.offset + g.goroutines.length)}` : ""),
    g.offset > 0 ? () => { st.offset = Math.max(0, st.offset - PAGE); loadGoroutines(v, out); } : null,
    g.offset + g.goroutines.length < g.matched ? () => { st.offset += PAGE; loadGoroutines(v, out); } : null);
  out.dataset.matched = g.matched;
  out.dataset.view = "each";
  delete out.dataset.groups;
  out.replaceChildren(pager, el("table", { id: "goroutines" }, goroutineHead(), el("tbody", {}, goroutineRows(v, g.goroutines))));
}

// loadGroups shows the page of groups st asks for, in st.gsort's order.
async function loadGroups(v, out) {
  const { st } = v;
  const p = params(v);
  p.set("sort", st.gsort); p.set("offset", st.goffset); p.set("limit", GROUP_PAGE);
  const g = await fetchTable(v, out, `${v.base}/goroutines/groups?${p}`);
  if (!g) return;
  const shown = g.groups.length;
  const pager = pagerEl({ id: "groups-count" }, `${fmtInt(g.groups_total)} groups of ${fmtInt(g.matched)} matching goroutines (of ${fmtInt(g.total)})` +
      (g.groups_total > shown ? `, showing ${fmtInt(g.offset + 1)}–${fmtInt(g.offset + shown)}` : ""),
    g.offset > 0 ? () => { st.goffset = Math.max(0, st.goffset - GROUP_PAGE); loadGroups(v, out); } : null,
    g.offset + shown < g.groups_total ? () => { st.goffset += GROUP_PAGE; loadGroups(v, out); } : null);
  const cut = g.cut ? el("p", { class: "error", id: "groups-cut" },
    `Only the first ${fmtInt(g.max_groups)} groups are kept: ${fmtInt(g.ungrouped)} goroutines in further groups are not shown here. Narrow the search or filters, or use the per-goroutine view.`) : null;
  const sortTh = (key, name, title) => el("th", { class: "num", "aria-sort": st.gsort === key ? "descending" : "none" },
    el("button", { id: `groups-sort-${key}`, class: `sort${st.gsort === key ? " active" : ""}`, title,
      onclick: () => { if (st.gsort !== key) { st.gsort = key; st.goffset = 0; v.saveURL(); loadGroups(v, out); } } }, name + (st.gsort === key ? " ▼" : "")));
  const body = el("tbody", {});
  const opens = [];
  for (const x of g.groups) {
    const [row, members, open] = groupRows(v, x);
    body.append(row, members);
    if (x.id === st.expand) opens.push(open);
  }
  out.dataset.matched = g.matched;
  out.dataset.groups = g.groups_total;
  out.dataset.view = "groups";
  out.replaceChildren(...[pager, cut].filter(Boolean), el("table", { id: "goroutine-groups", dataset: { sort: g.sort } },
    el("thead", {}, el("tr", {}, el("th", {}), sortTh("count", "count", "largest groups first"), el("th", {}, "state"),
      sortTh("wait", "oldest wait", "longest waiting first"), el("th", {}, "stack"), el("th", {}, "created by"),
      el("th", {}, "labels"), el("th", {}, "blocked on"))),
    body));
  opens.forEach((open) => open()); // the view's expanded group (a link's)
}

// groupRows are a group's row, the row its members expand into, and what
// expands it. The expanded group is the view's (st.expand, the last one
// opened).
function groupRows(v, x) {
  const { st } = v;
  const members = el("tr", { class: "group-members", hidden: true, dataset: { group: x.id } }, el("td", { colSpan: 8 }));
  let loaded = false;
  const toggle = () => {
    const open = members.hidden;
    members.hidden = !open;
    expand.textContent = open ? "▾" : "▸";
    expand.setAttribute("aria-expanded", String(open));
    if (open) st.expand = x.id;
    else if (st.expand === x.id) st.expand = "";
    v.saveURL();
    if (open && !loaded) { loaded = true; loadMembers(v, x, members.firstChild, 0); }
  };
  const expand = el("button", { class: "expand", title: "list its goroutines", "aria-expanded": "false", onclick: toggle }, "▸");
  const wait = x.oldest_wait ? el("span", { title: `goroutine ${x.oldest_id}` }, fmtWait(x.oldest_wait)) : "";
  const range = x.oldest_wait && x.min_wait !== x.oldest_wait ? el("div", { class: "muted" }, `from ${fmtWait(x.min_wait) || "0"}`) : null;
  let objects = null;
  if (x.objects.length > 1 || x.objects_more) {
    objects = el("div", { class: "muted group-objects" }, `${x.objects_more ? "more than " : ""}${fmtInt(x.objects.length)} objects: `,
      x.objects.slice(1).map((a) => el("button", { class: "blocked-on mono", dataset: { addr: a }, title: "list every goroutine queued on it", onclick: () => showQueue(v, a) }, a)));
  }
  const blocked = x.blocked ? el("div", {}, blockedEl(v, x.blocked_on),
    x.blocked < x.count ? el("div", { class: "muted" }, `${fmtInt(x.blocked)} of ${fmtInt(x.count)} blocked on an object`) : null, objects) : null;
  const row = el("tr", { class: "group", dataset: { id: x.id, count: x.count, first: x.first_id, oldest: x.oldest_wait } },
    el("td", {}, expand),
    el("td", { class: "num group-count" }, fmtInt(x.count)),
    el("td", { class: `state-${x.state}` }, x.state + (x.system ? " (system)" : ""), x.wait_reason ? el("div", { class: "muted" }, x.wait_reason) : null),
    el("td", { class: "num" }, wait, range),
    el("td", {}, stackEl(x.frames, x.created_by, x.truncated)),
    el("td", {}, creatorEl(x.created_by)),
    el("td", {}, labelsEl(x.labels), x.labels_vary ? el("span", { class: "muted labels-vary" }, " (varies)") : null),
    el("td", {}, blocked));
  return [row, members, () => { if (members.hidden) toggle(); }];
}

// loadMembers shows a page of a group's goroutines in cell.
async function loadMembers(v, x, cell, offset) {
  const { st } = v;
  const p = params(v);
  p.set("group", x.id); p.set("offset", offset); p.set("limit", MEMBERS);
  cell.replaceChildren(el("p", { class: "muted" }, "Loading…"));
  let g;
  try {
    g = await api(`${v.base}/goroutines?${p}`);
  } catch (e) {
    showError(cell, e);
    return;
  }
  if (st.destroyed) return;
  const pager = pagerEl({ class: "members-count" }, `${fmtInt(g.matched)} goroutines` +
      (g.matched > g.goroutines.length ? `, showing ${fmtInt(g.offset + 1)}–${fmtInt(g.offset + g.goroutines.length)}` : ""),
    g.offset > 0 ? () => loadMembers(v, x, cell, Math.max(0, offset - MEMBERS)) : null,
    g.offset + g.goroutines.length < g.matched ? () => loadMembers(v, x, cell, offset + MEMBERS) : null);
  cell.dataset.matched = g.matched;
  cell.replaceChildren(pager, el("table", { class: "members" }, goroutineHead(), el("tbody", {}, goroutineRows(v, g.goroutines))));
}
