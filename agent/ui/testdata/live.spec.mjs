// Browser test of the process page's live refresh, run by
// TestLiveRefreshInBrowser (agent/ui/range_browser_test.go) against a UI
// over four stored snapshots, whose POST test/append stores one more, 10 s
// after the newest:
//
//	node live.spec.mjs URL ARTIFACT_DIR PLAYWRIGHT_DIR
//
// URL is the process page with a relative range and refresh=1 (every
// second). A snapshot appended shows in the charts and the flame graph
// without a reload; not while paused (the indicator's button) nor while
// the pointer is on the graph, and then once resumed or the pointer gone;
// a zoomed graph stays zoomed, the page's scroll stays; no two requests
// for the same thing are in flight at once. The last line printed is a
// JSON object of what it measured, for the Go test to compare; any failure
// exits non-zero. Screenshots land in ARTIFACT_DIR.
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [url, outDir, pwDir] = process.argv.slice(2);
if (!url || !outDir || !pwDir) {
  console.error("usage: node live.spec.mjs URL ARTIFACT_DIR PLAYWRIGHT_DIR");
  process.exit(2);
}
const { chromium } = await import(pathToFileURL(join(pwDir, "node_modules", "playwright-core", "index.mjs")).href);
const { check, openBrowser } = await import(pathToFileURL(join(pwDir, "browser.mjs")).href);
const { page, errors, shot, close } = await openBrowser(chromium, "live", outDir);
const result = { states: [] };

// Requests in flight by kind (series, flame, ...), and the most at once.
const inflight = {};
let maxInflight = 0;
const kindOf = (u) => u.match(/\/api\/processes\/\d+\/\d+\/([a-z]+)\?/)?.[1];
page.on("request", (r) => {
  const k = kindOf(r.url());
  if (!k) return;
  inflight[k] = (inflight[k] || 0) + 1;
  maxInflight = Math.max(maxInflight, inflight[k]);
});
const done = (r) => { const k = kindOf(r.url()); if (k) inflight[k]--; };
page.on("requestfinished", done);
page.on("requestfailed", done);

const append = async () => {
  const r = await page.request.post(new URL("test/append", url).href);
  check(r.ok(), `append: ${r.status()}`);
};
// counts are the moments charted and the snapshots the flame graph merged.
const counts = () => page.evaluate(() => [Number(document.getElementById("chart-states").dataset.moments),
  Number(document.getElementById("flame-range")?.dataset.merged)]);
const waitCounts = (n) => page.waitForFunction((n) => document.getElementById("chart-states").dataset.moments === String(n) &&
  document.querySelector('#flame[data-rendered="1"]') && document.getElementById("flame-range")?.dataset.merged === String(n), n);
const state = (s) => page.waitForSelector(`#live[data-state="${s}"]`).then(() => result.states.push(s));
// ticks waits for the live loop to look n more times (500 ms each).
const ticks = async (n) => {
  const t = Number(await page.getAttribute("#live", "data-ticks"));
  await page.waitForFunction((t) => Number(document.getElementById("live").dataset.ticks) >= t, t + n);
};
const away = () => page.mouse.move(1, 1);

try {
  await page.goto(url);
  await page.waitForSelector('#flame[data-rendered="1"] svg rect');
  await away();
  await page.evaluate(() => { window.__loaded = true; });
  await state("live");
  result.start = await counts();

  // 1. An append shows without a reload.
  await append();
  await waitCounts(5);
  result.appended = await counts();
  await shot("live-01-appended.png");

  // 2. Refreshes keep the page's scroll.
  await page.evaluate(() => window.scrollTo(0, 200));
  const y = await page.evaluate(() => window.scrollY);
  const n = Number(await page.getAttribute("#live", "data-refreshes"));
  await page.waitForFunction((n) => Number(document.getElementById("live").dataset.refreshes) >= n + 2, n);
  result.scroll_kept = y > 0 && await page.evaluate(() => window.scrollY) === y;
  await page.evaluate(() => window.scrollTo(0, 0));

  // 3. Paused: an append waits for the resume.
  await page.click("#live-toggle");
  await away();
  await state("paused");
  await append();
  await ticks(6);
  result.paused = await counts();
  await page.click("#live-toggle");
  await away();
  await waitCounts(6);
  result.resumed = await counts();

  // 4. The pointer on the graph: an append waits for it to go.
  const r = await page.locator("#flame svg rect").first().boundingBox();
  await page.mouse.move(r.x + r.width / 2, r.y + r.height / 2);
  await state("inspecting");
  result.why = await page.locator("#live .live-text").textContent();
  await shot("live-02-inspecting.png");
  await append();
  await ticks(6);
  result.inspecting = await counts();
  await away();
  await waitCounts(7);
  result.left = await counts();

  // 5. A zoomed graph stays zoomed: no refresh while zoomed.
  await page.evaluate(() => {
    const g = [...document.querySelectorAll("#flame svg g")].find((x) => x.__data__?.data?.name === "main.loop");
    g.dispatchEvent(new MouseEvent("click", { bubbles: true }));
  });
  await page.waitForFunction(() => document.getElementById("flame-crumbs").dataset.depth === "2");
  await away();
  await state("inspecting");
  const zoomedBy = await page.locator("#live .live-text").textContent();
  await ticks(4);
  result.zoom_kept = zoomedBy.includes("zoomed") && await page.getAttribute("#flame-crumbs", "data-depth") === "2";
  await page.click("#flame-zoom-reset");
  await away();
  await state("live");

  result.newest_legend = await page.locator('#chart-states tr[data-series="total"]').evaluate((r) => `total ${r.querySelector(".u-value").textContent}`);
  result.reloaded = !(await page.evaluate(() => window.__loaded === true));
  result.max_inflight = maxInflight;
  check(errors.length === 0, `browser errors:\n${errors.join("\n")}`);
} catch (e) {
  if (errors.length) console.error(`browser errors so far:\n${errors.join("\n")}`);
  await page.screenshot({ path: join(outDir, "live-failure.png"), fullPage: true }).catch(() => {});
  throw e;
} finally {
  await close();
}
console.log(JSON.stringify(result));
