// What the diff tab computes from a diff tree (GET .../diff's root:
// {name, value, base, kind, children}, value the comparison range's and
// base the baseline's, each including the children's), without the DOM:
// the tree drawn (frames as wide as both values together), the colour of
// a change, and the functions' changes for the table.
import { functionSums } from "./flametable.js";

// drawnTree is root as d3-flame-graph draws it: each frame's value (its
// width) the comparison's plus the baseline's times factor (1, or the
// totals' ratio when normalised), with cmp and base (scaled) kept;
// frames of no value either side are left out.
export function drawnTree(root, factor) {
  const conv = (n) => {
    const base = (n.base || 0) * factor, cmp = n.value || 0;
    const out = { name: n.name, value: cmp + base, cmp, base };
    if (n.kind) out.kind = n.kind;
    const cs = (n.children || []).map(conv).filter((c) => c.value > 0);
    if (cs.length) out.children = cs;
    return out;
  };
  return conv(root);
}

// change is the relative change of a frame, from -1 (gone) to 1 (new):
// (comparison - baseline) / the larger of the two.
export function change(cmp, base) {
  const m = Math.max(cmp, base);
  return m > 0 ? (cmp - base) / m : 0;
}

// diffColor is a change's colour: red where it grew, green where it
// shrank, the stronger the larger the change; grey when (nearly) equal.
export function diffColor(cmp, base) {
  const c = change(cmp, base);
  if (Math.abs(c) < 0.02) return "hsl(220, 12%, 86%)";
  const a = Math.min(1, Math.abs(c));
  return c > 0 ? `hsl(0, 78%, ${Math.round(90 - 42 * a)}%)` : `hsl(135, 55%, ${Math.round(88 - 45 * a)}%)`;
}

// functionChanges are the tree's functions, {name, base, cmp, baseSelf,
// cmpSelf}: totals (the stacks a function is in, a recursive call
// counted once) and selves (its own frames' value less their children's)
// on both sides, the baseline's times factor.
export function functionChanges(root, factor) {
  return functionSums(root, [(n) => n.value || 0, (n) => (n.base || 0) * factor]).map((s) =>
    ({ name: s.name, cmp: s.total[0], base: s.total[1], cmpSelf: s.self[0], baseSelf: s.self[1] }));
}
