// Live refresh of the process page: with a relative range, the page's
// refresh (its charts and the open tab) runs every interval, one at a
// time: a refresh still running when the next is due is aborted (its
// requests cancelled) before the next starts. It waits while the user
// inspects (inspecting() names why: the pointer on a graph or a table, a
// zoomed graph, an open tooltip, an expanded group, a focused field), and
// stops while paused with its button. Its indicator (#live, data-state
// "live", "inspecting", "paused" or "off"; data-refreshes counts the
// refreshes done, data-ticks the looks) says which.
import { el } from "./dom.js";

// TICK is how often (ms) the state is looked at.
const TICK = 500;

// liveRefresh starts the loop: enabled() says whether the range is
// relative, interval() the seconds between refreshes, refresh(signal)
// refreshes (a promise; signal aborts it). It returns {el, stop(),
// restart()}: restart() counts the interval from now (after the page
// loaded by other means).
export function liveRefresh({ enabled, interval, inspecting, refresh }) {
  let paused = false, last = Date.now(), running = null, refreshes = 0, ticks = 0, stopped = false, timer = 0;
  const text = el("span", { class: "live-text" });
  const button = el("button", { id: "live-toggle", onclick: () => { paused = !paused; tick(); } });
  const box = el("span", { id: "live", class: "live", dataset: { state: "off", refreshes: "0" } }, el("span", { class: "live-dot" }), text, button);

  function show(state, why) {
    box.dataset.state = state;
    const secs = interval();
    text.textContent = {
      off: "fixed range: not refreshed",
      paused: "paused",
      inspecting: `paused while you inspect (${why})`,
      live: `live: refreshed every ${secs} s`,
    }[state];
    button.textContent = paused ? "resume" : "pause";
    button.hidden = state === "off";
  }

  async function run() {
    running?.abort();
    const mine = new AbortController();
    running = mine;
    last = Date.now();
    try {
      await refresh(mine.signal);
      if (!mine.signal.aborted) box.dataset.refreshes = String(++refreshes);
    } catch (e) {
      if (!mine.signal.aborted) console.warn("live refresh:", e);
    } finally {
      if (running === mine) running = null;
    }
  }

  function tick() {
    if (stopped) return;
    clearTimeout(timer);
    timer = setTimeout(tick, TICK);
    box.dataset.ticks = String(++ticks);
    if (!enabled()) { show("off"); last = Date.now(); return; }
    if (paused) { show("paused"); return; }
    const why = inspecting();
    if (why) { show("inspecting", why); return; }
    show("live");
    if (Date.now() - last >= interval() * 1000) run();
  }
  tick();
  return {
    el: box,
    stop() { stopped = true; clearTimeout(timer); running?.abort(); },
    restart() { last = Date.now(); tick(); },
  };
}
