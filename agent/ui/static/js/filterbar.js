// The process page's active filters, in one bar above the tabs on every
// tab, each removable (×), each saying where it applies: the shared
// filters (state, wait reason, wait duration, label) narrow the flame
// graph, the diff, the goroutine table and the downloads alike; the
// others belong to one tab. Values are the target's: text only.
import { el } from "./dom.js";

// CHIPS are the filters the bar shows, in order: [state key, name, scope].
const CHIPS = [
  ["state", "state", "all tabs"],
  ["wait_reason", "wait reason", "all tabs"],
  ["wait_duration", "waiting", "all tabs"],
  ["label", "label", "all tabs"],
  ["focus", "focus", "flame graph"],
  ["site", "finding's group", "goroutines"],
  ["q", "search", "goroutines"],
  ["addr", "queued on", "goroutines"],
];

// renderFilterBar shows v's active filters in box; remove(keys) clears
// those.
export function renderFilterBar(v, box, remove) {
  const { st } = v;
  const on = CHIPS.filter(([k]) => st[k]);
  box.dataset.count = on.length;
  if (!on.length) {
    box.replaceChildren(el("span", { class: "muted" }, "No filters: every tab shows every goroutine. Filter on the flame graph tab (state, wait reason, waiting, label)."));
    return;
  }
  const siteName = (id) => v.sites[id]?.frame ? `${v.sites[id].frame.split(" ")[0]} (${id})` : id;
  box.replaceChildren(el("span", { class: "muted" }, "Filters:"),
    ...on.map(([k, name, scope]) => el("span", { class: "chip filter-chip", dataset: { key: k, value: st[k] }, title: `applies to: ${scope}` },
      `${name} `, el("span", { class: "mono" }, k === "site" ? siteName(st[k]) : st[k]), el("span", { class: "muted filter-scope" }, ` · ${scope}`),
      el("button", { class: "filter-remove", title: `remove the ${name} filter`, onclick: () => remove([k]) }, "×"))),
    on.length > 1 ? el("button", { id: "filter-clear", onclick: () => remove(on.map(([k]) => k)) }, "clear all") : "");
}
