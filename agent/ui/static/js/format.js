// Vocabulary and formatting shared by the views.

export const STATES = ["running", "runnable", "syscall", "waiting", "leaked"];
export const STATE_COLORS = { running: "#16a34a", runnable: "#ca8a04", syscall: "#7c3aed", waiting: "#0284c7", leaked: "#dc2626" };
export const PALETTE = ["#0284c7", "#ea580c", "#16a34a", "#9333ea", "#dc2626", "#0891b2", "#ca8a04", "#db2777", "#4b5563", "#65a30d", "#2563eb", "#a16207"];
export const WAIT_BUCKETS = ["<1s", "1s-10s", "10s-1m", "1m-10m", ">10m"];

export const fmtInt = (n) => Number(n).toLocaleString("en-US");

export function fmtValue(v, unit) {
  if (unit === "nanoseconds") {
    const s = v / 1e9;
    return s >= 100 ? `${fmtInt(Math.round(s))} s` : `${s.toPrecision(3)} s`;
  }
  return fmtInt(v);
}

export function fmtTime(t) {
  const d = new Date(t);
  return isNaN(d) || d.getFullYear() < 2000 ? "–" : d.toLocaleString("en-GB", { hour12: false });
}

export function fmtWait(s) {
  if (!s) return "";
  if (s < 1) return `${Math.round(s * 1000)} ms`;
  if (s < 120) return `${s.toFixed(1)} s`;
  if (s < 7200) return `${(s / 60).toFixed(1)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

// topFrame names a stack ("func file:line", leaf first) by its first
// frame outside the runtime.
export function topFrame(stack) {
  const f = stack.find((x) => !x.startsWith("runtime.")) || stack[0] || "(no frames)";
  return f.split(" ")[0];
}
