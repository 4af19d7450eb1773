// The process page's header: title and what the agent knows of the
// process (GET api/processes).
import { api } from "./api.js";
import { el, showError } from "./dom.js";
import { fmtInt, fmtTime } from "./format.js";

// loadHeader fills info and returns the process's row of the list (null
// when it is not listed or the list failed).
export async function loadHeader(v, info) {
  try {
    const procs = await api("api/processes");
    const p = procs.find((x) => String(x.pid) === v.pid && String(x.start_time) === v.start);
    if (!p) { info.replaceChildren(el("span", { class: "muted" }, "process not in the list")); return null; }
    document.getElementById("title").textContent = `${p.service_name || "(unnamed)"} · pid ${p.pid}`;
    info.replaceChildren(
      el("span", {}, el("b", {}, "Go "), p.go_version || "?"),
      el("span", {}, p.live ? el("span", { class: "pill live" }, "live") : el("span", { class: "pill gone" }, "stored")),
      el("span", {}, el("b", {}, "goroutines "), fmtInt(p.total)),
      el("span", {}, el("b", {}, "last snapshot "), fmtTime(p.last_snapshot)),
      p.walker ? el("span", { id: "walker" }, el("b", {}, "walker "), p.walker,
        p.walker_reason ? el("span", { class: "muted" }, ` (${p.walker_reason})`) : "") : "",
      el("span", { class: "mono" }, p.exe || ""),
      el("a", { id: "service-history", href: `#/s/${encodeURIComponent(p.service_name || "")}`,
        title: "this service's processes over time, restarts included" }, "service history"),
      p.error ? el("span", { class: "error" }, p.error) : "");
    return p;
  } catch (e) { showError(info, e); return null; }
}
