// The runtime health's charts on the process page, from the series
// answer's runtime series (agent/daemon's goroscope_go_* and
// goroscope_cgroup_* by name without "goroscope_", null at the moments the
// health was not read): the heap against the memory limits, and
// GOMAXPROCS against the CPU quota with the throttling it causes. Drawn
// by charts.js like the goroutine charts (its makeChart specs).
import { fmtBytes, fmtCores, fmtNum, fmtSeconds } from "./format.js";
import { NO_MEMORY_LIMIT } from "./health.js";

// BYTES_INCRS are the bytes axis' tick steps: powers of two, from bytes
// to TiB.
const BYTES_INCRS = [0, 10, 20, 30, 40].flatMap((p) => [1, 2, 4, 8, 16, 32, 64, 128, 256, 512].map((m) => m * 2 ** p));

const BYTES_AXIS = { label: "bytes", size: 72, incrs: BYTES_INCRS, values: fmtBytes };
const CORES_AXIS = { label: "cores", size: 50, values: fmtNum };
const THROTTLED_AXIS = { label: "throttled s per s", size: 56, top: 0.1, values: (v) => `${+v.toFixed(2)}` };

// What each series shows, for its legend row's title.
const TITLES = {
  "heap live": "the heap the last GC cycle marked live",
  "heap goal": "the heap size the current GC cycle aims to end at (GOGC, GOMEMLIMIT)",
  "heap in use": "bytes of the heap's spans in use",
  GOMEMLIMIT: "the runtime's soft memory limit (GOMEMLIMIT, debug.SetMemoryLimit); none: not set",
  "cgroup limit": "the memory limit of the process's cgroup, the tightest of its ancestors'; none: no limit",
  "cgroup usage": "memory charged to the process's cgroup, page cache included",
  GOMAXPROCS: "the Ps running Go code at once (GOMAXPROCS)",
  "CPU quota": "the cgroup's CPU bandwidth limit, in cores (quota over period); none: no quota",
  throttled: "time the threads of the cgroup were held back by the CPU quota, per second, between two reads (right axis)",
};

// rate is a counter's growth per second between two reads (xs in
// seconds), at the later one; null at the first read and where the
// counter went back (another cgroup, a restart).
function rate(vs, xs) {
  const out = vs.map(() => null);
  let prev = -1;
  vs.forEach((v, i) => {
    if (v === null) return;
    if (prev >= 0 && v >= vs[prev] && xs[i] > xs[prev]) out[i] = (v - vs[prev]) / (xs[i] - xs[prev]);
    prev = i;
  });
  return out;
}

// chart makes a chart spec of rows [name, colour, dash, values, format,
// none(i): whether a missing value means none, scale], read[i] saying
// whether the health was read at moment i.
function chart(target, axis, rows, read, axis2) {
  return {
    target, axis, axis2, spanGaps: true, present: read,
    names: rows.map((r) => r[0]), colors: rows.map((r) => r[1]), dash: rows.map((r) => r[2]),
    data: rows.map((r) => r[3]), none: rows.map((r) => r[5]), scales: rows.map((r) => r[6] || "y"),
    fmt: (y, i) => rows[i][4](y),
    titles: Object.fromEntries(rows.map((r) => [r[0], TITLES[r[0]]])),
  };
}

// healthCharts are the specs of the runtime health's charts of series
// answer s, drawn into heap and cpu; none without runtime series.
export function healthCharts(s, { heap, cpu }) {
  const rt = s.runtime || {};
  const n = s.moments.length;
  const all = Object.values(rt);
  if (!all.length) return [];
  const read = Array.from({ length: n }, (_, i) => all.some((vs) => vs[i] !== null));
  const has = (k) => !!rt[k];
  const col = (k) => rt[k] || Array(n).fill(null);
  const out = [];

  // Memory: the heap, the runtime's soft limit and the cgroup's.
  if (["go_heap_live_bytes", "go_heap_goal_bytes", "go_heap_inuse_bytes", "cgroup_memory_usage_bytes"].some(has)) {
    const rows = [];
    if (has("go_heap_live_bytes")) rows.push(["heap live", "#0284c7", null, col("go_heap_live_bytes"), fmtBytes]);
    if (has("go_heap_inuse_bytes")) rows.push(["heap in use", "#a16207", [2, 2], col("go_heap_inuse_bytes"), fmtBytes]);
    if (has("go_heap_goal_bytes")) rows.push(["heap goal", "#65a30d", [6, 4], col("go_heap_goal_bytes"), fmtBytes]);
    if (has("go_memory_limit_bytes")) {
      const raw = col("go_memory_limit_bytes");
      rows.push(["GOMEMLIMIT", "#dc2626", [10, 4], raw.map((v) => (v !== null && v >= NO_MEMORY_LIMIT ? null : v)), fmtBytes,
        (i) => raw[i] !== null && raw[i] >= NO_MEMORY_LIMIT]);
    }
    if (has("cgroup_memory_usage_bytes")) {
      const usage = col("cgroup_memory_usage_bytes"), limit = col("cgroup_memory_limit_bytes");
      rows.push(["cgroup limit", "#9333ea", [3, 3], limit, fmtBytes, (i) => usage[i] !== null && limit[i] === null]);
      rows.push(["cgroup usage", "#ea580c", null, usage, fmtBytes]);
    }
    out.push(chart(heap, BYTES_AXIS, rows, read));
  }

  // CPU: GOMAXPROCS, the quota, and the throttling (right axis).
  if (has("go_gomaxprocs") || has("cgroup_cpu_quota_cores")) {
    const procs = col("go_gomaxprocs"), quota = col("cgroup_cpu_quota_cores");
    const rows = [["GOMAXPROCS", "#0284c7", null, procs, fmtNum],
      ["CPU quota", "#dc2626", [10, 4], quota, fmtCores, (i) => procs[i] !== null && quota[i] === null]];
    if (has("cgroup_cpu_throttled_seconds_total")) {
      const xs = s.moments.map((t) => Date.parse(t) / 1000);
      rows.push(["throttled", "#ca8a04", null, rate(col("cgroup_cpu_throttled_seconds_total"), xs), (y) => `${fmtSeconds(y)}/s`, null, "y2"]);
    }
    out.push(chart(cpu, CORES_AXIS, rows, read, rows.length > 2 ? THROTTLED_AXIS : undefined));
  }
  return out;
}
