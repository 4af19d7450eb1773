// What the flame graph tab computes from a flame tree (GET .../flame's
// root: {name, value, kind, children}, value including the children's),
// without the DOM: units, colours, the top table and the sandwich view.
import { STATE_COLORS, fmtInt, fmtNum, fmtWait } from "./format.js";

// COUNT_NOUNS name what a count profile counts, by its sample type.
const COUNT_NOUNS = {
  goroutine: "goroutines", goroutines: "goroutines", goroutineleak: "goroutines",
  contentions: "contentions", samples: "samples", count: "events",
  alloc_objects: "objects", inuse_objects: "objects", objects: "objects",
};
// TIME_WHAT say what a time profile's total is, by its sample type.
const TIME_WHAT = { wall: "waited", cpu: "on CPU", delay: "of delay", contentions: "contended" };

// fmtDuration formats nanoseconds: ns, µs, ms, s, min, h.
export function fmtDuration(ns) {
  const a = Math.abs(ns);
  if (a === 0) return "0 s";
  if (a < 1e3) return `${Math.round(ns)} ns`;
  if (a < 1e6) return `${(ns / 1e3).toPrecision(3)} µs`;
  if (a < 1e9) return `${(ns / 1e6).toPrecision(3)} ms`;
  if (a < 100e9) return `${(ns / 1e9).toPrecision(3)} s`;
  return fmtWait(ns / 1e9);
}

// fmtBytes formats bytes in binary units.
export function fmtBytes(b) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  let v = b;
  while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return i ? `${v.toPrecision(3)} ${units[i]}` : `${fmtInt(b)} B`;
}

// quantity says how to show a profile's values: fmt(v) with its unit
// ("12 goroutines", "6.7 goroutines" (an average), "232 ms", "1.5 MiB"),
// short(v) (counts as bare numbers) and summary(total, of) ("12 of 40
// goroutines", "232 ms of 1.2 s on CPU"); signed() formats changes.
export function quantity(unit, sampleType) {
  const type = sampleType || "";
  if (unit === "nanoseconds" || unit === "microseconds" || unit === "milliseconds" || unit === "seconds") {
    const scale = { nanoseconds: 1, microseconds: 1e3, milliseconds: 1e6, seconds: 1e9 }[unit];
    const fmt = (v) => fmtDuration(v * scale);
    const what = TIME_WHAT[type] || type;
    return { fmt, short: fmt, summary: (t, of) => `${fmt(t)} of ${fmt(of)}${what ? ` ${what}` : ""}` };
  }
  if (unit === "bytes") {
    const what = type.startsWith("alloc") ? "allocated" : type.startsWith("inuse") ? "in use" : type;
    return { fmt: fmtBytes, short: fmtBytes, summary: (t, of) => `${fmtBytes(t)} of ${fmtBytes(of)}${what ? ` ${what}` : ""}` };
  }
  const noun = COUNT_NOUNS[type] || (unit && unit !== "count" ? unit : type || "samples");
  // One of them is "1 goroutine", not "1 goroutines".
  const one = COUNT_NOUNS[type] && noun.endsWith("s") ? noun.slice(0, -1) : noun;
  const nounOf = (v) => (Math.abs(v) === 1 ? one : noun);
  return {
    fmt: (v) => `${fmtNum(v)} ${nounOf(v)}`,
    short: fmtNum,
    summary: (t, of) => `${fmtNum(t)} of ${fmtNum(of)} ${nounOf(of)}`,
  };
}

// signed formats a change d with q: "+1,300 goroutines", "−2 goroutines",
// "±0 goroutines".
export function signed(q, d) {
  return `${d > 0 ? "+" : d < 0 ? "−" : "±"}${q.fmt(Math.abs(d))}`;
}

// pct formats part of whole as a percentage.
export function pct(part, whole) {
  if (!whole) return "–";
  const p = 100 * part / whole;
  return `${p >= 10 || p === 0 ? p.toFixed(0) : p.toFixed(1)}%`;
}

// isFunction says whether n is a function's frame: not the root, not a
// grouped tree's state or wait reason frame.
export const isFunction = (n, root) => n !== root && !n.kind;

// pkgOf is the package path of a Go function name: "github.com/a/b.(*T).M"
// is "github.com/a/b", "main.main" "main"; "" for addresses and "?".
export function pkgOf(name) {
  if (!name || name.startsWith("0x") || name.startsWith("(") || name === "?") return "";
  const slash = name.lastIndexOf("/");
  const dot = name.indexOf(".", slash + 1);
  return dot < 0 ? name : name.slice(0, dot);
}

// hash is a stable 32-bit FNV-1a hash of s.
export function hash(s) {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

// packageColor: one hue per package path (the same package, the same hue
// on every graph and every load), the lightness varying a little by
// function so neighbours stay apart.
export function packageColor(name) {
  const p = pkgOf(name);
  if (!p) return "#d1d5db";
  const hue = hash(p) % 360;
  const light = 62 + (hash(name) % 5) * 3;
  return `hsl(${hue}, 62%, ${light}%)`;
}

// stateColor is a frame's colour by the state (and wait reason) of its
// grouped tree's state frame: the state's colour, lighter below, a shade
// per wait reason; grey outside any state.
export function stateColor(state, reason, depthBelow) {
  const base = STATE_COLORS[state];
  if (!base) return "#d1d5db";
  const light = Math.min(88, (reason ? 58 + (hash(reason) % 4) * 5 : 48) + (depthBelow ? 10 : 0));
  const [h, s] = hexHueSat(base);
  return `hsl(${h}, ${s}%, ${light}%)`;
}

// hexHueSat is the hue and saturation (%) of a #rrggbb colour.
function hexHueSat(hex) {
  const [r, g, b] = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16) / 255);
  const mx = Math.max(r, g, b), mn = Math.min(r, g, b), d = mx - mn, l = (mx + mn) / 2;
  if (!d) return [0, 0];
  let h = mx === r ? ((g - b) / d) % 6 : mx === g ? (b - r) / d + 2 : (r - g) / d + 4;
  h = Math.round(h * 60 + 360) % 360;
  return [h, Math.round(100 * d / (1 - Math.abs(2 * l - 1)))];
}

// functionSums walks root's function frames and sums, per function and
// per value (values: functions of a frame, each giving one side's value,
// its children's included), self (a frame's value less its children's)
// and total (the stacks it is in, a recursive call counted once):
// [{name, self: [per value], total: [per value]}].
export function functionSums(root, values) {
  const stats = new Map();
  const onPath = new Map();
  const stack = [[root, false]];
  while (stack.length) {
    const [n, exit] = stack.pop();
    const fn = isFunction(n, root) ? n.name : null;
    if (exit) {
      if (fn) onPath.set(fn, onPath.get(fn) - 1);
      continue;
    }
    if (fn) {
      let s = stats.get(fn);
      if (!s) stats.set(fn, (s = { name: fn, self: values.map(() => 0), total: values.map(() => 0) }));
      values.forEach((value, i) => {
        let below = 0;
        for (const c of n.children || []) below += value(c);
        s.self[i] += Math.max(0, value(n) - below);
        if (!onPath.get(fn)) s.total[i] += value(n);
      });
      onPath.set(fn, (onPath.get(fn) || 0) + 1);
    }
    stack.push([n, true]);
    for (const c of n.children || []) stack.push([c, false]);
  }
  return [...stats.values()];
}

// functionStats are the tree's functions, {name, self, total} each: self
// is the value of its frames' own (the frame's value less its children's),
// total the value of the stacks it is in (a recursive call counted once).
export function functionStats(root) {
  return functionSums(root, [(n) => n.value]).map((s) => ({ name: s.name, self: s.self[0], total: s.total[0] }));
}

// packageShares sums the functions' self values per package, largest first.
export function packageShares(stats) {
  const m = new Map();
  for (const s of stats) {
    const p = pkgOf(s.name);
    if (p) m.set(p, (m.get(p) || 0) + s.self);
  }
  return [...m.entries()].map(([pkg, self]) => ({ pkg, self })).sort((a, b) => b.self - a.self || (a.pkg < b.pkg ? -1 : 1));
}

// childNamed returns n's child named name of kind, adding it.
function childNamed(n, name, kind) {
  n.children ||= [];
  let c = n.children.find((x) => x.name === name && (x.kind || "") === (kind || ""));
  if (!c) {
    c = { name, value: 0, children: [] };
    if (kind) c.kind = kind;
    n.children.push(c);
  }
  return c;
}

// mergeInto adds the trees src to dst's children.
function mergeInto(dst, src) {
  const stack = [[dst, src || []]];
  while (stack.length) {
    const [d, cs] = stack.pop();
    for (const c of cs) {
      const x = childNamed(d, c.name, c.kind);
      x.value += c.value;
      if (c.children?.length) stack.push([x, c.children]);
    }
  }
}

// sandwich is function fn's callers and callees: two trees rooted at fn,
// callers' children its callers (then theirs), callees' what it calls, over
// its outermost frames (a recursive call counted once). Both are null when
// fn is not in the tree.
export function sandwich(root, fn) {
  const callers = { name: fn, value: 0, children: [] };
  const callees = { name: fn, value: 0, children: [] };
  let found = 0;
  const path = [];
  const stack = [[root, 0]];
  while (stack.length) {
    const [n, depth] = stack.pop();
    path.length = depth;
    path.push(n);
    if (isFunction(n, root) && n.name === fn) {
      found++;
      callers.value += n.value;
      callees.value += n.value;
      let cur = callers;
      for (let i = path.length - 2; i >= 1; i--) {
        cur = childNamed(cur, path[i].name, path[i].kind);
        cur.value += n.value;
      }
      mergeInto(callees, n.children);
      continue; // its own recursive calls are in its subtree
    }
    for (const c of n.children || []) stack.push([c, depth + 1]);
  }
  return found ? { callers, callees, frames: found } : null;
}
