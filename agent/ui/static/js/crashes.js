// A service's crashes (GET api/crashes?service=): why each of its
// processes died, the class and hint (docs/crashes.md), and links to the
// process's last snapshot: its goroutine groups and its flame graph.
import { api } from "./api.js";
import { el, showError } from "./dom.js";
import { fmtTime } from "./format.js";

// loadCrashes fills box with the crash records of service; signal aborts.
export async function loadCrashes(box, service, signal) {
  let a;
  try {
    a = await api(`api/crashes?${new URLSearchParams({ service })}`, signal);
  } catch (e) {
    if (!signal?.aborted) showError(box, e);
    return;
  }
  if (signal?.aborted) return;
  if (!a.crashes.length) {
    box.replaceChildren(el("p", { class: "muted", id: "service-crashes-none" }, "No crash recorded."));
    return;
  }
  const head = el("tr", {}, ["time", "process", "ended", "class", "message", "last snapshot", ""].map((h) => el("th", {}, h)));
  const rows = a.crashes.map((c) => {
    const ended = c.signal ? `${c.reason} (${c.signal}${c.core_dumped ? ", core dumped" : ""})` : `${c.reason} ${c.code}`;
    const at = c.last_snapshot && !c.last_snapshot.startsWith("0001") ? c.last_snapshot : "";
    const view = (tab) => `#/p/${c.pid}/${c.start_time}?${new URLSearchParams({ tab, at, from: at, to: at })}`;
    return el("tr", { class: "crash", dataset: { pid: c.pid, class: c.class } },
      el("td", {}, fmtTime(c.time)),
      el("td", {}, el("a", { href: `#/p/${c.pid}/${c.start_time}` }, `pid ${c.pid}`)),
      el("td", {}, ended),
      el("td", { title: c.hint }, el("span", { class: "pill gone" }, c.class), el("div", { class: "muted" }, c.hint)),
      el("td", { class: "mono" }, c.message || "(no message seen)",
        c.stack?.length ? el("details", {}, el("summary", {}, `${c.goid ? `goroutine ${c.goid}` : "stack"} (${c.stack.length} frames)`), el("div", { class: "stack" }, c.stack.join("\n"))) : "",
        c.system_stack?.length ? el("details", {}, el("summary", {}, `runtime stack (${c.system_stack.length} frames)`), el("div", { class: "stack" }, c.system_stack.join("\n"))) : ""),
      el("td", {}, at ? `${fmtTime(at)} (${c.last_snapshot_age_seconds.toFixed(1)} s before)` : "none stored"),
      el("td", {}, at ? [el("a", { href: view("goroutines"), class: "crash-goroutines" }, "goroutines"), " ",
        el("a", { href: view("flame"), class: "crash-flame" }, "flame graph")] : ""));
  });
  box.replaceChildren(el("table", { id: "service-crashes", dataset: { count: a.crashes.length } }, el("thead", {}, head), el("tbody", {}, rows)),
    a.skipped ? el("p", { class: "muted" }, `${a.skipped} unreadable records left out`) : "");
}
