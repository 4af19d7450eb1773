// The flame graphs' tooltip (flame.js, diff.js): one box per graph, on
// document.body, its content set as text or nodes (never parsed as HTML),
// placed next to the pointer and kept inside the viewport (flipped to the
// pointer's other side near an edge). Tooltips are hidden when the page
// scrolls or a graph redraws, and removed when their view goes.
import { el } from "./dom.js";

// removeTips drops every flame graph tooltip on the page.
export function removeTips() {
  document.querySelectorAll(".d3-flame-graph-tip").forEach((e) => e.remove());
}

// hideTips hides every flame graph tooltip (a redraw moves the frames
// from under the pointer, and no mouseout follows).
export function hideTips() {
  document.querySelectorAll(".d3-flame-graph-tip").forEach((e) => { e.style.display = "none"; });
}
window.addEventListener("scroll", hideTips, { passive: true, capture: true });

// tipShown says whether a tooltip is open (the live refresh waits then).
export function tipShown() {
  return [...document.querySelectorAll(".d3-flame-graph-tip")].some((e) => e.style.display !== "none");
}

// makeTip is a tooltip as d3-flame-graph takes one (called with the svg,
// then show(event, node) and hide()), its content lines(node) (nodes or
// text, never HTML).
export function makeTip(lines) {
  const box = el("div", { class: "d3-flame-graph-tip flame-tip", role: "tooltip" });
  box.style.display = "none";
  document.body.append(box);
  const tip = () => {};
  tip.show = (event, d) => {
    box.replaceChildren(...lines(d));
    box.style.display = "block";
    box.style.left = "0px";
    box.style.top = "0px";
    const w = box.offsetWidth, h = box.offsetHeight, pad = 4;
    const vw = document.documentElement.clientWidth, vh = document.documentElement.clientHeight;
    let x = event.clientX + 12, y = event.clientY + 14;
    if (x + w > vw - pad) x = event.clientX - w - 12;
    if (y + h > vh - pad) y = event.clientY - h - 14;
    box.style.left = `${Math.max(pad, Math.min(x, vw - w - pad))}px`;
    box.style.top = `${Math.max(pad, Math.min(y, vh - h - pad))}px`;
    return tip;
  };
  tip.hide = () => { box.style.display = "none"; return tip; };
  tip.destroy = () => box.remove();
  tip.node = box;
  return tip;
}
