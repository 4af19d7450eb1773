// Browser test of the runtime settings and health views, run by
// TestHealthInBrowser (agent/ui/health_browser_test.go) against a UI over
// four stored snapshots 10 s apart, the runtime health read at three of
// them, and a live process holding the newest read and its runtime
// findings:
//
//	node health.spec.mjs URL ARTIFACT_DIR PLAYWRIGHT_DIR
//
// URL is the UI's root. It reads the process list's badges, then on the
// process page the runtime settings and health panel (each figure's value
// and note, the environment as text), the heap and CPU charts (their
// legends with the cursor away and at the moment without a read, the
// series whose colour is drawn), and the findings panel's runtime cards
// (fix, evidence, no links to goroutines); then drags on the heap chart,
// which picks a range as the goroutine charts do. The last line printed is
// a JSON object of what it measured, for the Go test to compare; any
// failure exits non-zero. Screenshots (readme-health.png among them) land
// in ARTIFACT_DIR.
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [url, outDir, pwDir] = process.argv.slice(2);
if (!url || !outDir || !pwDir) {
  console.error("usage: node health.spec.mjs URL ARTIFACT_DIR PLAYWRIGHT_DIR");
  process.exit(2);
}
const { chromium } = await import(pathToFileURL(join(pwDir, "node_modules", "playwright-core", "index.mjs")).href);
const { check, openBrowser } = await import(pathToFileURL(join(pwDir, "browser.mjs")).href);
const { page, errors, shot, close } = await openBrowser(chromium, "health", outDir);
const result = {};
const T0 = Date.parse("2026-11-23T09:00:00Z");

// legend is a chart's legend rows as "series value".
const legend = (sel) => page.locator(`${sel} .u-legend tr[data-series]`).evaluateAll((rs) =>
  rs.map((r) => `${r.dataset.series} ${r.querySelector(".u-value").textContent}`));
// at is where time t (ms) is on chart sel: {x, y} in the page.
const at = (t, sel) => page.evaluate(([t, sel]) => {
  const over = document.querySelector(`${sel} .u-over`);
  const r = over.getBoundingClientRect();
  const min = Number(over.dataset.min), max = Number(over.dataset.max);
  return { x: r.left + (t / 1000 - min) / (max - min) * r.width, y: r.top + r.height / 2 };
}, [t, sel]);
// drawn counts the series of chart sel whose colour (their legend
// marker's) is on its canvas: coloured pixels nearest to it, in number.
const drawn = (sel) => page.evaluate((sel) => {
  const colours = [...document.querySelectorAll(`${sel} .u-legend tr[data-series] .u-marker`)].map((m) =>
    getComputedStyle(m).borderColor.match(/\d+/g).slice(0, 3).map(Number));
  const cv = document.querySelector(`${sel} canvas`);
  const px = cv.getContext("2d").getImageData(0, 0, cv.width, cv.height).data;
  const counts = colours.map(() => 0);
  for (let i = 0; i < px.length; i += 4) {
    const [r, g, b, a] = [px[i], px[i + 1], px[i + 2], px[i + 3]];
    if (a < 128 || Math.max(r, g, b) - Math.min(r, g, b) < 60) continue; // blank, grey or black: axes, grid
    let best = -1, dist = Infinity;
    colours.forEach((c, j) => {
      const d = Math.hypot(c[0] - r, c[1] - g, c[2] - b);
      if (d < dist) { dist = d; best = j; }
    });
    if (dist < 80) counts[best]++;
  }
  return counts.filter((n) => n >= 10).length;
}, sel);
try {
  // 1. The process list: a badge per runtime finding.
  await page.goto(url);
  await page.waitForSelector("#processes tbody tr.proc");
  const row = page.locator('#processes tbody tr.proc[data-pid="4242"]');
  result.list_badges = await row.locator(".badge").evaluateAll((bs) => bs.map((b) => `${b.dataset.kind}:${b.className}`));
  const colours = await row.locator(".badge").evaluateAll((bs) => bs.map((b) => getComputedStyle(b).backgroundColor));
  check(new Set(colours).size === colours.length && !colours.includes("rgb(107, 114, 128)"), `badge colours ${colours}: want one each, none "other"`);

  // 2. The process page: the panel.
  await page.goto(`${url}#/p/4242/777?range=15m`);
  await page.waitForSelector("#health details .health-item");
  await page.waitForSelector("#findings .finding");
  await page.waitForSelector("#chart-heap .u-legend tr[data-series]");
  await page.waitForSelector("#chart-cpu .u-legend tr[data-series]");
  await page.waitForSelector("#chart-heap .u-over[data-max]");
  result.panel = await page.locator("#health .health-item").evaluateAll((items) => Object.fromEntries(items.map((i) =>
    [i.dataset.key, [i.querySelector(".hv").textContent, i.querySelector(".hn")?.textContent || ""]])));
  result.env = await page.locator("#health table.env tr").evaluateAll((rs) => Object.fromEntries(rs.map((r) =>
    [r.querySelector(".env-name").textContent, r.querySelector(".env-value").textContent])));
  result.xss = await page.evaluate(() => window.__xss !== undefined);
  result.images = await page.locator("#app img").count();
  check(await page.locator("#health details[open]").count() === 1, "the panel is open");

  // 3. The charts: legends, the cursor away (the newest read), and at the
  // moment without a read; the series drawn.
  await page.mouse.move(1, 1);
  result.heap = await legend("#chart-heap");
  result.cpu = await legend("#chart-cpu");
  result.drawn = [await drawn("#chart-heap"), await drawn("#chart-cpu")];
  await page.locator("#chart-heap").scrollIntoViewIfNeeded();
  const gap = await at(T0 + 10000, "#chart-heap");
  await page.mouse.move(gap.x, gap.y);
  await page.waitForFunction(() => document.querySelector('#chart-heap .u-legend tr[data-series="heap live"] .u-value')?.textContent === "–");
  result.gap = await legend("#chart-heap");
  await page.mouse.move(1, 1);
  // The panel and the charts, for the README.
  const box = await page.evaluate(() => {
    const a = document.getElementById("health").getBoundingClientRect(), b = document.getElementById("health-charts").getBoundingClientRect();
    return { x: 0, y: a.top + scrollY - 8, width: document.documentElement.clientWidth, height: b.bottom - a.top + 16 };
  });
  await page.screenshot({ path: join(outDir, "readme-health.png"), fullPage: true, clip: box });
  await shot("health-page.png");

  // 4. The findings: runtime cards with their fix, no goroutine links.
  result.cards = await page.locator("#findings .finding").evaluateAll((cs) => cs.map((c) => ({
    kind: c.dataset.kind,
    summary: c.querySelector(".finding-summary").textContent,
    fix: c.querySelector(".fix-text")?.textContent || "",
    evidence: [...c.querySelectorAll(".finding-evidence > span")].map((s) => s.textContent).join("; "),
    site: c.querySelectorAll(".finding-site").length,
  })));
  result.links = await page.locator("#findings .show-goroutines, #findings .show-flame").count();
  await shot("health-findings.png");

  // 5. A drag on the heap chart picks a range, as on the goroutine charts.
  await page.locator("#chart-heap").scrollIntoViewIfNeeded();
  const p = await at(T0 + 5000, "#chart-heap"), q = await at(T0 + 25000, "#chart-heap");
  await page.mouse.move(p.x, p.y);
  await page.mouse.down();
  await page.mouse.move(q.x, q.y, { steps: 8 });
  await page.mouse.up();
  await page.mouse.move(1, 1);
  await page.waitForFunction(() => location.hash.includes("from="));
  result.dragged = await page.evaluate(() => location.hash);
  await page.waitForSelector("#chart-heap .u-legend tr[data-series]");
  await shot("health-dragged.png");

  check(errors.length === 0, `browser errors:\n${errors.join("\n")}`);
} catch (e) {
  if (errors.length) console.error(`browser errors so far:\n${errors.join("\n")}`);
  await page.screenshot({ path: join(outDir, "health-failure.png"), fullPage: true }).catch(() => {});
  throw e;
} finally {
  await close();
}
console.log(JSON.stringify(result));
