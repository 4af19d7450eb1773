// The downloads tab: every kind the API lists (GET /api/kinds) that the
// process has stored, plus the snapshot, as pprof, folded and JSON.
import { el } from "./dom.js";
import { fmtTime } from "./format.js";

export function renderDownloads(v) {
  const { st, panel, base } = v;
  const link = (kind, format, text) => {
    const p = v.filterParams();
    p.set("kind", kind); p.set("format", format);
    if (st.at) p.set("at", st.at);
    return el("a", { href: `${base}/download?${p}`, download: "" }, text);
  };
  const rows = v.kinds.filter((k) => !k.profile || (st.kinds || []).includes(k.kind)).map((k) =>
    el("tr", { dataset: { kind: k.kind } }, el("td", { class: "mono" }, k.kind), el("td", {}, k.description || ""),
      el("td", {}, link(k.kind, "pprof", "pprof"), link(k.kind, "folded", "folded"), link(k.kind, "json", "JSON"))));
  panel.replaceChildren(
    el("p", { class: "muted" }, `At ${fmtTime(st.at)}, ${v.filterText(false)}. pprof files open with "go tool pprof".`),
    ...(v.kindsError ? [el("p", { class: "error" }, `profile kinds: ${v.kindsError.message || v.kindsError}`)] : []),
    el("table", { class: "downloads", id: "downloads" }, el("tbody", {}, rows)));
}
