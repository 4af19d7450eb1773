// The diff tab: goroutines grouped by stack and labels that appeared or
// vanished between two moments.
import { api } from "./api.js";
import { el, labelsEl, showError } from "./dom.js";
import { fmtInt, fmtTime, topFrame } from "./format.js";

export function renderDiff(v) {
  const { st, panel } = v;
  const moments = st.moments.slice().reverse();
  const opt = (t) => el("option", { value: t }, fmtTime(t));
  const fromSel = el("select", { id: "diff-from" }, moments.map(opt));
  const toSel = el("select", { id: "diff-to" }, moments.map(opt));
  if (!st.diffFrom) st.diffFrom = st.moments[0] || "";
  if (!st.diffTo) st.diffTo = st.at || st.moments[st.moments.length - 1] || "";
  fromSel.value = st.diffFrom; toSel.value = st.diffTo;
  const out = el("div", { id: "diff-out" });
  const run = () => { st.diffFrom = fromSel.value; st.diffTo = toSel.value; loadDiff(v, out); };
  panel.replaceChildren(el("div", { class: "controls" }, el("label", {}, "from", fromSel), el("label", {}, "to", toSel),
    el("button", { id: "diff-run", onclick: run }, "compare"),
    el("span", { class: "muted" }, "goroutines grouped by stack and labels; " + v.filterText(true))), out);
  if (st.diffFrom) run();
}

async function loadDiff(v, out) {
  const { st } = v;
  out.replaceChildren(el("p", { class: "muted" }, "Loading…"));
  const p = v.filterParams();
  p.delete("wait_duration");
  p.set("from", st.diffFrom); p.set("to", st.diffTo);
  let d;
  try { d = await api(`${v.base}/diff?${p}`); } catch (e) { showError(out, e); return; }
  const table = (items, id) => items.length ? el("table", { id },
    el("thead", {}, el("tr", {}, el("th", { class: "num" }, "change"), el("th", { class: "num" }, "from → to"), el("th", {}, "labels"), el("th", {}, "stack (leaf first)"))),
    el("tbody", {}, items.map((it) => el("tr", {},
      el("td", { class: `num ${it.delta > 0 ? "delta-up" : "delta-down"}` }, (it.delta > 0 ? "+" : "") + fmtInt(it.delta)),
      el("td", { class: "num" }, `${fmtInt(it.from)} → ${fmtInt(it.to)}`),
      el("td", {}, labelsEl(it.labels)),
      el("td", {}, el("details", {}, el("summary", { class: "mono" }, topFrame(it.stack), ` (${it.stack.length} frames)`),
        el("div", { class: "stack" }, it.stack.join("\n")))))))) : el("p", { class: "muted" }, "none");
  out.replaceChildren(
    el("p", {}, `${fmtInt(d.from_total)} goroutines at ${fmtTime(d.from.time)} → ${fmtInt(d.to_total)} at ${fmtTime(d.to.time)}`,
      d.omitted ? ` (${fmtInt(d.omitted)} smaller changes not shown)` : ""),
    el("h2", {}, `Appeared (${d.appeared.length})`), table(d.appeared, "diff-appeared"),
    el("h2", {}, `Vanished (${d.vanished.length})`), table(d.vanished, "diff-vanished"));
}
