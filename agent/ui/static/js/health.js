// The process page's runtime settings and health panel: the newest read
// of a live process's runtime (GOMAXPROCS, GOGC, GOMEMLIMIT, the heap, the
// GC, the run queues, threads) against its cgroup's limits (CPU quota and
// throttling, memory limit and usage, OOM kills), its GO* environment,
// and what could not be read and why (GET api/processes' runtime,
// pkg/findings.RuntimeHealth). The environment and the errors are the
// target's: text only.
import { el } from "./dom.js";
import { fmtBytes, fmtCores, fmtInt, fmtPercent, fmtSeconds, fmtTime } from "./format.js";

// NO_MEMORY_LIMIT: a GOMEMLIMIT at or above it is none (the runtime's
// math.MaxInt64, as JSON numbers read it: 9.22e18).
export const NO_MEMORY_LIMIT = 9e18;

// item is one figure: label, value, a note under it; warn marks a value
// that goes against a limit.
function item(key, label, value, note, warn) {
  return el("div", { class: `health-item${warn ? " warn" : ""}`, dataset: { key } },
    el("div", { class: "hl" }, label), el("div", { class: "hv" }, value), note ? el("div", { class: "hn" }, note) : null);
}

// group is a titled row of items.
function group(title, ...items) {
  const shown = items.flat().filter(Boolean);
  return shown.length ? el("div", { class: "health-group" }, el("h4", {}, title), el("div", { class: "health-grid" }, shown)) : null;
}

// cpuItems: GOMAXPROCS against the CPU quota, and the throttling.
function cpuItems(rt, cg) {
  const cpuRead = cg && !cg.cpu_error && cg.cpu_version;
  const quota = cpuRead ? cg.cpu_quota_cores : 0;
  const over = rt && quota > 0 && rt.gomaxprocs > Math.max(1, Math.ceil(quota - 1e-9));
  const out = [];
  if (rt) {
    out.push(item("gomaxprocs", "GOMAXPROCS", fmtInt(rt.gomaxprocs),
      !cpuRead ? "CPU quota not read" : quota > 0 ? `vs a CPU quota of ${fmtCores(quota)}` : "no CPU quota", over));
  }
  if (cpuRead) {
    out.push(item("cpu-quota", "CPU quota", quota > 0 ? fmtCores(quota) : "none", `cgroup v${cg.cpu_version}`));
    if (quota > 0) {
      const ratio = cg.cpu_periods ? cg.cpu_throttled_periods / cg.cpu_periods : 0;
      out.push(item("throttled", "Throttled", fmtSeconds(cg.cpu_throttled_seconds),
        `held back in ${fmtInt(cg.cpu_throttled_periods)} of ${fmtInt(cg.cpu_periods)} periods (${fmtPercent(ratio)}), since the cgroup began`,
        cg.cpu_throttled_periods > 0));
    }
  }
  return out;
}

// memoryItems: GOGC and GOMEMLIMIT against the cgroup's memory limit and
// usage, the heap, the GC's cycles, OOM kills.
function memoryItems(rt, cg) {
  const memRead = cg && !cg.memory_error && cg.memory_version;
  const cgLimit = memRead ? cg.memory_limit_bytes : 0;
  const out = [];
  if (rt) {
    const noLimit = rt.memory_limit_bytes >= NO_MEMORY_LIMIT;
    out.push(item("gogc", "GOGC", rt.gogc_percent < 0 ? "off" : fmtInt(rt.gogc_percent),
      rt.gogc_percent >= 0 ? "heap growth (%) before a GC" : noLimit ? "the GC is off: no memory limit to run it" : "the GC runs only near GOMEMLIMIT",
      rt.gogc_percent < 0 && noLimit));
    out.push(item("gomemlimit", "GOMEMLIMIT", noLimit ? "none" : fmtBytes(rt.memory_limit_bytes),
      cgLimit > 0 ? `vs a cgroup memory limit of ${fmtBytes(cgLimit)}` : memRead ? "no cgroup memory limit" : "cgroup memory not read",
      noLimit && cgLimit > 0));
  }
  if (memRead) {
    out.push(item("cgroup-memory-limit", "cgroup memory limit", cgLimit > 0 ? fmtBytes(cgLimit) : "none", `cgroup v${cg.memory_version}`));
    out.push(item("cgroup-memory-usage", "cgroup memory usage", fmtBytes(cg.memory_usage_bytes),
      cgLimit > 0 ? `${fmtPercent(cg.memory_usage_bytes / cgLimit)} of the limit` : "page cache included", cgLimit > 0 && cg.memory_usage_bytes > 0.9 * cgLimit));
  }
  if (rt) {
    out.push(item("heap-live", "Heap live", fmtBytes(rt.heap_live_bytes), "marked live by the last GC"));
    out.push(item("heap-goal", "Heap goal", fmtBytes(rt.heap_goal_bytes), "where the current GC cycle aims to end"));
    out.push(item("heap-inuse", "Heap in use", fmtBytes(rt.heap_inuse_bytes), "the heap's spans in use"));
    out.push(item("gc-cycles", "GC cycles", fmtInt(rt.gc_cycles), "completed"));
  }
  if (memRead) {
    out.push(item("oom-kills", "OOM kills", cg.have_oom_kills ? fmtInt(cg.oom_kills) : "not known",
      cg.have_oom_kills ? "processes of the cgroup killed" : "the kernel does not count them here", cg.oom_kills > 0));
  }
  return out;
}

// schedulerItems: the run queues, idle Ps and threads.
function schedulerItems(rt) {
  if (!rt) return [];
  const local = rt.runqueue_goroutines - rt.global_runqueue_goroutines;
  return [
    item("runqueue", "Run queue", fmtInt(rt.runqueue_goroutines),
      `goroutines waiting for a P: ${fmtInt(rt.global_runqueue_goroutines)} global, ${fmtInt(local)} in the Ps' queues`,
      rt.runqueue_goroutines > rt.gomaxprocs),
    item("idle-procs", "Idle Ps", fmtInt(rt.idle_procs), `of ${fmtInt(rt.gomaxprocs)}`),
    item("threads", "Threads", rt.threads >= 0 ? fmtInt(rt.threads) : "unknown", "of the process"),
  ];
}

// envTable lists the GO* variables the process started with, as the
// target has them.
function envTable(rh) {
  const env = rh.env || [];
  if (!env.length && !rh.env_error) return null;
  return el("div", { class: "health-group health-env" },
    el("h4", {}, "Environment (GO* variables the process started with)"),
    env.length ? el("table", { class: "env" },
      el("tbody", {}, env.map((e) => el("tr", { dataset: { name: e.name } },
        el("td", { class: "mono env-name" }, e.name),
        el("td", { class: "mono env-value" }, e.value, e.truncated ? el("span", { class: "muted" }, " … (cut at 1 KiB)") : null))))) : null,
    rh.env_error ? el("p", { class: "error", dataset: { error: "env" } }, `environment not read: ${rh.env_error}`) : null);
}

// errors says plainly what could not be read.
function errors(rh) {
  const cg = rh.cgroup || {};
  const errs = [
    ["runtime", "runtime not read", rh.runtime_error],
    ["cgroup", "cgroup not read", rh.cgroup_error],
    ["cpu", "cgroup CPU controller not read", cg.cpu_error],
    ["memory", "cgroup memory controller not read", cg.memory_error],
  ].filter((e) => e[2]);
  return errs.map(([k, what, msg]) => el("p", { class: "error", dataset: { error: k } }, `${what}: ${msg}`));
}

// renderHealth fills box with rh, a live process's newest runtime health
// read (GET api/processes' runtime); box is hidden without one. The
// panel folds (a details element), kept as the user left it.
export function renderHealth(box, rh) {
  box.hidden = !rh;
  if (!rh) { box.replaceChildren(); return; }
  const was = box.querySelector("details");
  const rt = rh.runtime, cg = rh.cgroup;
  box.dataset.time = rh.time || "";
  box.replaceChildren(el("details", { class: "card health-panel", open: was ? was.open : true },
    el("summary", {}, el("h3", {}, "Runtime settings and health"),
      el("span", { class: "muted" }, ` — read ${fmtTime(rh.time)}${rh.go_version ? `, ${rh.go_version}` : ""}`)),
    errors(rh),
    group("CPU", cpuItems(rt, cg)),
    group("Memory and GC", memoryItems(rt, cg)),
    group("Scheduler", schedulerItems(rt)),
    envTable(rh)));
}
