// The process list (#/).
import { api } from "./api.js";
import { el, showError } from "./dom.js";
import { findingsCell } from "./findings.js";
import { STATES, fmtInt, fmtTime } from "./format.js";

export async function listView(app) {
  app.replaceChildren(el("h2", {}, "Go processes"), el("p", { class: "muted" }, "Loading…"));
  let procs;
  try {
    procs = await api("api/processes");
  } catch (e) {
    showError(app, e);
    return;
  }
  // The API lists the processes with findings first, the worst first.
  const head = el("tr", {}, el("th", {}, "findings"), el("th", {}, "service"), el("th", { class: "num" }, "pid"), el("th", {}, "Go"), el("th", {}, "status"),
    el("th", { class: "num" }, "goroutines"), STATES.map((s) => el("th", { class: "num" }, s)), el("th", {}, "last snapshot"), el("th", {}, "executable"));
  const rows = procs.map((p) => {
    const href = `#/p/${p.pid}/${p.start_time}`;
    return el("tr", { class: "proc", onclick: () => { location.hash = href; }, dataset: { pid: p.pid, findings: p.findings_count || 0 } },
      findingsCell(p),
      el("td", {}, el("a", { href }, p.service_name || "(unnamed)")),
      el("td", { class: "num" }, p.pid),
      el("td", {}, p.go_version || ""),
      el("td", {}, p.live ? el("span", { class: "pill live", title: p.walker_reason ? `walker ${p.walker}: ${p.walker_reason}` : "" }, "live" + (p.walker ? ` · ${p.walker}` : "")) : el("span", { class: "pill gone" }, "stored"),
        p.error ? el("div", { class: "error" }, p.error) : null),
      el("td", { class: "num" }, fmtInt(p.total)),
      STATES.map((s) => el("td", { class: `num state-${s}` }, (p.counts && p.counts[s]) ? fmtInt(p.counts[s]) : "")),
      el("td", {}, fmtTime(p.last_snapshot)),
      el("td", { class: "mono" }, p.exe || ""));
  });
  app.replaceChildren(el("h2", {}, `Go processes (${procs.length})`),
    procs.length ? el("table", { id: "processes" }, el("thead", {}, head), el("tbody", {}, rows))
      : el("p", { class: "muted" }, "No Go processes seen yet."));
}
