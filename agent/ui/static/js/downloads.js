// The downloads tab: every kind the API lists (GET /api/kinds) that the
// process has stored in the range, plus the snapshot, as pprof, folded
// and JSON, at the page's moment (the range's end, or one picked on a
// chart) with the shared filters.
import { el } from "./dom.js";
import { fmtTime } from "./format.js";

export function renderDownloads(v) {
  const { st, panel, base } = v;
  const link = (kind, format, text) => {
    const p = v.filterParams();
    p.set("kind", kind); p.set("format", format);
    if (v.atParam()) p.set("at", v.atParam());
    return el("a", { href: `${base}/download?${p}`, download: "" }, text);
  };
  const rows = v.kinds.filter((k) => !k.profile || (st.kinds || []).includes(k.kind)).map((k) =>
    el("tr", { dataset: { kind: k.kind } }, el("td", { class: "mono" }, k.kind), el("td", {}, k.description || ""),
      el("td", {}, link(k.kind, "pprof", "pprof"), link(k.kind, "folded", "folded"), link(k.kind, "json", "JSON"))));
  const filters = [...v.filterParams().entries()].map(([k, val]) => `${k}=${val}`);
  panel.dataset.view = "downloads";
  panel.replaceChildren(
    el("p", { class: "muted" }, `The stored entry of each kind at or before ${fmtTime(v.momentShown())}, `,
      filters.length ? `filtered by ${filters.join(", ")}` : "unfiltered", `. pprof files open with "go tool pprof".`),
    ...(v.kindsError ? [el("p", { class: "error" }, `profile kinds: ${v.kindsError.message || v.kindsError}`)] : []),
    el("table", { class: "downloads", id: "downloads" }, el("tbody", {}, rows)));
}
