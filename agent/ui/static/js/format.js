// Vocabulary and formatting shared by the views: states and colours,
// numbers, and the page's one time format (fmtTime: ISO-like, 24-hour,
// in the browser's zone, which it names: "2026-12-04 23:41:05 UTC" or
// "2026-12-04 23:41:05 +01:00"), used on axes, legends, tooltips,
// selectors and tables alike; parseTime reads it back.

export const STATES = ["running", "runnable", "syscall", "waiting", "leaked"];
export const STATE_COLORS = { running: "#16a34a", runnable: "#ca8a04", syscall: "#7c3aed", waiting: "#0284c7", leaked: "#dc2626" };
export const PALETTE = ["#0284c7", "#ea580c", "#16a34a", "#9333ea", "#dc2626", "#0891b2", "#ca8a04", "#db2777", "#4b5563", "#65a30d", "#2563eb", "#a16207"];
export const WAIT_BUCKETS = ["<1s", "1s-10s", "10s-1m", "1m-10m", ">10m"];

// fmtInt formats a whole number with thousands separators ("1,300").
export const fmtInt = (n) => Number(n).toLocaleString("en-US", { maximumFractionDigits: 0 });

// fmtNum formats a count that may be fractional (an average over
// snapshots): whole numbers as fmtInt, others with one decimal (two
// below 1): "1,300", "6.7", "0.25".
export function fmtNum(n) {
  const v = Number(n);
  if (Number.isInteger(v)) return fmtInt(v);
  return v.toLocaleString("en-US", { maximumFractionDigits: Math.abs(v) < 1 ? 2 : 1 });
}

const pad2 = (n) => String(n).padStart(2, "0");

// timeParts is t (a Date, epoch milliseconds or an RFC 3339 string) in the
// browser's zone: {date: "2026-12-04", time: "23:41:05", hm: "23:41",
// zone: "UTC" or "+01:00"}; null for no time (invalid, or the zero time).
function timeParts(t) {
  const d = t instanceof Date ? t : new Date(t);
  if (isNaN(d) || d.getFullYear() < 2000) return null;
  const off = -d.getTimezoneOffset();
  const zone = off === 0 ? "UTC" : `${off < 0 ? "-" : "+"}${pad2(Math.floor(Math.abs(off) / 60))}:${pad2(Math.abs(off) % 60)}`;
  const hm = `${pad2(d.getHours())}:${pad2(d.getMinutes())}`;
  return { date: `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())}`, hm, time: `${hm}:${pad2(d.getSeconds())}`, zone };
}

// fmtTime is the page's one time format: part "full" (the default)
// "2026-12-04 23:41:05 UTC"; "time" "23:41:05", "hm" "23:41", "date"
// "2026-12-04", "zone" "UTC" (the parts of the same, for axes). "–" for
// no time.
export function fmtTime(t, part = "full") {
  const p = timeParts(t);
  if (!p) return "–";
  switch (part) {
    case "time": return p.time;
    case "hm": return p.hm;
    case "date": return p.date;
    case "zone": return p.zone;
  }
  return `${p.date} ${p.time} ${p.zone}`;
}

// fmtRange is a time range in the same format, the date and zone said
// once when both ends share them: "2026-12-04 12:00:00–13:00:00 UTC".
export function fmtRange(a, b) {
  const p = timeParts(a), q = timeParts(b);
  if (!p || !q) return `${fmtTime(a)} – ${fmtTime(b)}`;
  if (p.date === q.date && p.zone === q.zone) return p.time === q.time ? fmtTime(a) : `${p.date} ${p.time}–${q.time} ${p.zone}`;
  return `${fmtTime(a)} – ${fmtTime(b)}`;
}

// parseTime reads a time typed in fmtTime's format ("2026-12-04
// 23:41[:05[.123]] [UTC|Z|+01:00]", the browser's zone when none is said)
// or RFC 3339; null when it is neither. With end, it is the last
// millisecond the typed time covers ("23:41" to 23:41:59.999, "23:41:05"
// to 23:41:05.999, nanoseconds rounded up), the end of a range.
export function parseTime(s, end) {
  const m = String(s).trim().match(/^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?\s*(UTC|Z|[+-]\d{2}:?\d{2})?$/i);
  if (!m) return null;
  const [, y, mo, d, h, mi, sec, frac = "", zone] = m;
  const ms = Number(frac.slice(0, 3).padEnd(3, "0"));
  let t;
  if (!zone) {
    t = new Date(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(sec || 0), ms);
  } else {
    t = new Date(Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(sec || 0), ms));
    const z = zone.toUpperCase();
    if (z !== "UTC" && z !== "Z") {
      const zm = z.match(/^([+-])(\d{2}):?(\d{2})$/);
      const off = (Number(zm[2]) * 60 + Number(zm[3])) * (zm[1] === "-" ? -1 : 1);
      t = new Date(t.getTime() - off * 60000);
    }
  }
  if (isNaN(t)) return null;
  if (end) {
    if (sec === undefined) t = new Date(t.getTime() + 59999);
    else if (frac.length < 3) t = new Date(t.getTime() + 10 ** (3 - frac.length) - 1);
    else if (/[1-9]/.test(frac.slice(3))) t = new Date(t.getTime() + 1);
  }
  return t;
}

// fmtSpan says how long a range is: "15 min", "1 h", "90 s".
export function fmtSpan(seconds) {
  const s = Math.round(seconds);
  if (s < 120) return `${s} s`;
  if (s < 3600) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${+(s / 3600).toFixed(1)} h`;
  return `${+(s / 86400).toFixed(1)} days`;
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

// fmtBytes formats a size in binary units: "0 B", "512 KiB", "9.5 MiB",
// "256 MiB", "1.5 GiB" (one decimal below 10).
export function fmtBytes(n) {
  let v = Number(n);
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${i === 0 ? Math.round(v) : +v.toFixed(Math.abs(v) < 10 ? 1 : 0)} ${units[i]}`;
}

// fmtCores formats CPU cores: "1 core", "0.5 cores", "2.25 cores".
export function fmtCores(c) {
  const v = +Number(c).toFixed(2);
  return `${v} ${v === 1 ? "core" : "cores"}`;
}

// fmtSeconds formats a duration in seconds, 0 included: "0 s", "350 ms",
// "4.2 s", "3.5 min".
export const fmtSeconds = (s) => (Number(s) > 0 ? fmtWait(Number(s)) : "0 s");

// fmtPercent formats a fraction as a percentage: "25%", "0.4%".
export const fmtPercent = (f) => `${+(100 * f).toFixed(100 * f < 1 && f > 0 ? 1 : 0)}%`;
