// The process page's time range: a relative one (the last 15 min, 1 h,
// 6 h or 24 h, ending at the newest stored moment, so that a process
// gone an hour ago still shows its last hour) or a custom one (from, to),
// with the picker that sets it, and the diff's baseline (by default the
// equally long range just before it). Times are epoch milliseconds here
// and RFC 3339 in requests and the URL.
import { el } from "./dom.js";
import { fmtSpan, fmtTime, parseTime } from "./format.js";

// PRESETS are the relative ranges, by their URL name (range=1h).
export const PRESETS = { "15m": 15 * 60, "1h": 3600, "6h": 6 * 3600, "24h": 24 * 3600 };
export const DEFAULT_RANGE = "1h";

const iso = (ms) => new Date(ms).toISOString();

// rangeOf is the range st describes: {relative, from, to, seconds} (ms).
// A relative range ends at st.anchor (the newest stored moment known,
// else now).
export function rangeOf(st) {
  if (PRESETS[st.range]) {
    const anchor = Date.parse(st.anchor);
    const to = isNaN(anchor) ? Date.now() : anchor;
    return { relative: true, from: to - PRESETS[st.range] * 1000, to, seconds: PRESETS[st.range] };
  }
  let from = Date.parse(st.from), to = Date.parse(st.to);
  if (isNaN(to)) to = isNaN(Date.parse(st.anchor)) ? Date.now() : Date.parse(st.anchor);
  if (isNaN(from)) from = to - PRESETS[DEFAULT_RANGE] * 1000;
  return { relative: false, from, to, seconds: (to - from) / 1000 };
}

// setRangeParams sets from= and to= of a request (URLSearchParams p) for
// the range: a relative range's to= is empty (the newest entry); a custom
// one's are as given (a link's may be finer than milliseconds).
export function setRangeParams(st, p) {
  const r = rangeOf(st);
  p.set("from", r.relative || isNaN(Date.parse(st.from)) ? iso(r.from) : st.from);
  if (!r.relative) p.set("to", isNaN(Date.parse(st.to)) ? iso(r.to) : st.to);
  return p;
}

// baselineOf is the diff's baseline range {from, to, custom} (ms): the one
// st names, else the equally long range just before the range (at least
// a minute long, ending a millisecond before it starts).
export function baselineOf(st) {
  const a = Date.parse(st.baseFrom), b = Date.parse(st.baseTo);
  if (!isNaN(a) && !isNaN(b)) return { from: Math.min(a, b), to: Math.max(a, b), custom: true };
  const r = rangeOf(st);
  const span = Math.max(r.to - r.from, 60000);
  return { from: r.from - 1 - span, to: r.from - 1, custom: false };
}

// rangePicker is the range's controls: the relative ranges and "custom",
// and the range's two ends in the page's time format (typing one and
// pressing Enter or "apply" makes the range custom). set({range} or
// {from, to}) is called with the choice; update() shows st's range.
export function rangePicker(st, set) {
  const sel = el("select", { id: "range", title: "time range of the charts, the flame graph and the diff" },
    Object.keys(PRESETS).map((k) => el("option", { value: k }, `last ${fmtSpan(PRESETS[k])}`)),
    el("option", { value: "" }, "custom"));
  const from = el("input", { id: "range-from", type: "text", size: 27, spellcheck: false });
  const to = el("input", { id: "range-to", type: "text", size: 27, spellcheck: false });
  const note = el("span", { id: "range-note", class: "muted" });
  const apply = () => {
    const a = parseTime(from.value), b = parseTime(to.value, true);
    from.classList.toggle("invalid", !a);
    to.classList.toggle("invalid", !b);
    if (!a || !b) { note.textContent = "type times as 2026-12-04 23:41:05 UTC (or +01:00; none: this browser's zone)"; return; }
    note.textContent = "";
    set({ from: iso(Math.min(a, b)), to: iso(Math.max(a, b)) });
  };
  sel.addEventListener("change", () => {
    if (sel.value) set({ range: sel.value });
    else { from.focus(); }
  });
  for (const x of [from, to]) x.addEventListener("keydown", (e) => { if (e.key === "Enter") apply(); });
  const box = el("span", { class: "range-picker" }, el("label", {}, "range", sel), el("label", {}, "from", from), el("label", {}, "to", to),
    el("button", { id: "range-apply", onclick: apply }, "apply"), note);
  box.update = () => {
    const r = rangeOf(st);
    sel.value = r.relative ? st.range : "";
    if (document.activeElement !== from) from.value = fmtTime(r.from);
    if (document.activeElement !== to) to.value = fmtTime(r.to);
    from.classList.remove("invalid");
    to.classList.remove("invalid");
    box.dataset.from = iso(r.from);
    box.dataset.to = iso(r.to);
    box.dataset.relative = r.relative ? st.range : "";
  };
  return box;
}
