// Browser test of the process page's time range, run by TestRangeInBrowser
// (agent/ui/range_browser_test.go) against a UI over four stored
// snapshots: one ten minutes old (30 goroutines, 4 of them the runtime's)
// and three 10 s apart (3, 6 and 9 goroutines), in the Europe/Berlin zone:
//
//	node range.spec.mjs URL ARTIFACT_DIR PLAYWRIGHT_DIR
//
// URL is the process page with range=15m. It reads the default view (the
// charts' window, the legends with the cursor away, the runtime's wait
// reasons folded and apart, the flame graph's merged range), drags on a
// chart over the three snapshots (the flame graph averages them), clicks
// a moment for the goroutine table, picks a diff's baseline with
// Shift+drag and its comparison with a drag (colours, tooltip, the table
// of changes, normalised; its link on a fresh page), checks the filter
// bar on another tab, and opens copied links of the flame graph (kind,
// filter, zoom, search) and the goroutine table (grouped, a group
// expanded) on fresh pages. The last line printed is a JSON object of
// what it measured, for the Go test to compare; any failure exits
// non-zero. Screenshots (readme-flame.png, readme-diff.png among them)
// land in ARTIFACT_DIR.
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [url, outDir, pwDir] = process.argv.slice(2);
if (!url || !outDir || !pwDir) {
  console.error("usage: node range.spec.mjs URL ARTIFACT_DIR PLAYWRIGHT_DIR");
  process.exit(2);
}
const { chromium } = await import(pathToFileURL(join(pwDir, "node_modules", "playwright-core", "index.mjs")).href);
const { check, openBrowser } = await import(pathToFileURL(join(pwDir, "browser.mjs")).href);
const { context, page, errors, shot, close, watch } = await openBrowser(chromium, "range", outDir, 20000, { timezoneId: "Europe/Berlin" });
const result = {};
const T0 = Date.parse("2026-11-23T09:00:00Z");
const sec = (s) => T0 + s * 1000;

// at is where time t (ms) is on the chart sel: {x, y} in the page.
const at = (t, sel = "#chart-states") => page.evaluate(([t, sel]) => {
  const over = document.querySelector(`${sel} .u-over`);
  const r = over.getBoundingClientRect();
  const min = Number(over.dataset.min), max = Number(over.dataset.max);
  return { x: r.left + (t / 1000 - min) / (max - min) * r.width, y: r.top + r.height / 2 };
}, [t, sel]);
// drag drags on the states chart from time a to b, with Shift held when shift.
const drag = async (a, b, shift) => {
  const p = await at(a), q = await at(b);
  if (shift) await page.keyboard.down("Shift");
  await page.mouse.move(p.x, p.y);
  await page.mouse.down();
  await page.mouse.move(q.x, q.y, { steps: 8 });
  await page.mouse.up();
  if (shift) await page.keyboard.up("Shift");
  await page.mouse.move(1, 1); // away from the charts and graphs
};
// legend is a chart's legend rows as "series value".
const legend = (sel) => page.locator(`${sel} .u-legend tr[data-series]`).evaluateAll((rs) =>
  rs.map((r) => `${r.dataset.series} ${r.querySelector(".u-value").textContent}`));
const series = (sel) => page.locator(`${sel} .u-legend tr[data-series]`).evaluateAll((rs) => rs.map((r) => r.dataset.series));
// stable waits for box's graph to be drawn whole (d3 sets widths in a transition).
const stable = (box) => page.waitForFunction((box) => {
  const svg = document.querySelector(`${box} svg`);
  const root = [...(svg?.querySelectorAll("g") || [])].find((g) => g.__data__ && !g.__data__.parent);
  return root && Math.abs(Number(root.querySelector("rect").getAttribute("width")) - Number(svg.getAttribute("width"))) < 1;
}, box);
// frameValue is the value of the first drawn frame of fn in box.
const frameValue = (fn, box = "#flame") => page.evaluate(([fn, box]) =>
  [...document.querySelectorAll(`${box} svg g`)].find((g) => g.__data__?.data?.name === fn)?.__data__.data.value, [fn, box]);
// flameView is what the flame graph's view shows, to compare two pages.
const flameView = () => page.evaluate(() => [
  document.querySelector(".tabs button.active")?.id,
  document.getElementById("kind").value,
  document.getElementById("filter-wait-reason").value,
  [...document.querySelectorAll("#flame-crumbs .flame-crumb")].map((c) => c.textContent).join(" › "),
  document.getElementById("flame-search").value,
  `${document.querySelector(".range-picker").dataset.from}..${document.querySelector(".range-picker").dataset.to}`,
  document.getElementById("flame").dataset.total,
  document.getElementById("flame-search-note").dataset.value,
]);
const diffView = () => page.evaluate(() => [
  document.getElementById("diff-summary").dataset.baseTotal,
  document.getElementById("diff-summary").dataset.total,
  [...document.querySelectorAll("#diff-top tr.diff-fn")].map((r) => `${r.dataset.name}:${r.dataset.delta}`).join(),
]);
// fresh opens href in a new page of the same browser (a copied link) and
// returns it.
const fresh = async (href) => {
  const p = watch(await context.newPage());
  await p.goto(href);
  return p;
};

// matchedNot (in the page) says the goroutine table is drawn, with a
// count other than n.
await page.addInitScript(() => {
  window.matchedNot = (n) => {
    const m = document.getElementById("goroutines-out")?.dataset.matched;
    return m !== undefined && Number(m) !== n;
  };
});

try {
  // 1. The last 15 minutes: every snapshot, averaged.
  await page.goto(url);
  await page.waitForSelector('#flame[data-rendered="1"] svg rect');
  await page.waitForSelector("#chart-states .u-over[data-max]");
  await page.waitForSelector('#chart-waits tr[data-series="runtime (system)"]');
  const d = await page.evaluate(() => {
    const over = document.querySelector("#chart-states .u-over");
    const r = document.getElementById("flame-range");
    return {
      moments: Number(document.getElementById("chart-states").dataset.moments),
      total: Number(document.getElementById("flame").dataset.total),
      merged: Number(r.dataset.merged),
      merge: r.dataset.merge,
      range_text: r.textContent,
      span: Math.round(Number(over.dataset.max) - Number(over.dataset.min)),
      folded: document.querySelector('#series-note [data-series="runtime (system)"]')?.textContent || "",
      title: document.querySelector('#chart-waits tr[data-series="runtime (system)"]')?.title || "",
    };
  });
  d.legend = await legend("#chart-states");
  // The charts follow the window's width.
  const chartWidth = () => page.evaluate(() => document.querySelector("#chart-states .uplot").getBoundingClientRect().width);
  const wide = await chartWidth();
  await page.setViewportSize({ width: 1000, height: 900 });
  await page.waitForFunction((w) => document.querySelector("#chart-states .uplot").getBoundingClientRect().width < w - 100, wide);
  d.resized = [Math.round(wide), Math.round(await chartWidth())];
  await page.setViewportSize({ width: 1400, height: 900 });
  await page.waitForFunction((w) => Math.abs(document.querySelector("#chart-states .uplot").getBoundingClientRect().width - w) < 2, wide);
  d.reasons = await series("#chart-waits");
  await shot("range-01-default.png");
  // The runtime's reasons apart, and folded again.
  await page.check("#series-runtime");
  await page.waitForSelector('#chart-waits tr[data-series="GC worker (idle)"]');
  d.apart = await series("#chart-waits");
  check((await page.evaluate(() => location.hash)).includes("runtime=1"), "runtime=1 in the URL");
  await page.uncheck("#series-runtime");
  await page.waitForSelector('#chart-waits tr[data-series="runtime (system)"]');
  result.default = d;

  // 2. A drag over the three snapshots: a custom range, averaged.
  await drag(sec(-5), sec(25));
  await page.waitForFunction(() => document.querySelector('#flame[data-rendered="1"]') && document.getElementById("flame-range")?.dataset.merged === "3");
  await stable("#flame");
  result.drag = await page.evaluate(() => ({
    total: Number(document.getElementById("flame").dataset.total),
    merged: Number(document.getElementById("flame-range").dataset.merged),
    hash: location.hash,
    live: document.getElementById("live").dataset.state,
  }));
  result.drag.main_loop = await frameValue("main.loop");
  check(await page.getAttribute(".range-picker", "data-relative") === "", "the range is custom");
  await shot("readme-flame.png");

  // 3. A click on the chart picks the moment of the goroutine table.
  const p10 = await at(sec(10));
  await page.mouse.click(p10.x, p10.y);
  await page.mouse.move(1, 1);
  await page.waitForFunction(() => document.getElementById("at").dataset.picked);
  const picked = await page.getAttribute("#at", "data-picked");
  await page.click("#tab-goroutines");
  await page.waitForSelector("#goroutines-out[data-matched] tbody tr");
  const matched = Number(await page.getAttribute("#goroutines-out", "data-matched"));
  await page.click("#at-clear");
  await page.waitForFunction((n) => !document.getElementById("at").dataset.picked && matchedNot(n), matched);
  result.moment = { at: picked, matched, cleared: Number(await page.getAttribute("#goroutines-out", "data-matched")) };

  // 4. The diff: Shift+drag the baseline (the first snapshot), drag the
  // comparison (the last).
  await drag(sec(-5), sec(5), true);
  await page.waitForSelector("#tab-diff.active");
  await page.waitForSelector('#diff-flame[data-rendered="1"]');
  await drag(sec(15), sec(25));
  await page.waitForFunction(() => {
    const s = document.getElementById("diff-summary");
    return s?.dataset.total === "9" && s.dataset.baseTotal === "3" && document.querySelector('#diff-flame[data-rendered="1"] svg');
  });
  await stable("#diff-flame");
  const colours = await page.evaluate(() => {
    const out = { red: new Set(), green: new Set() };
    for (const g of document.querySelectorAll("#diff-flame svg g")) {
      const fill = g.querySelector("rect")?.getAttribute("fill") || "";
      const name = g.__data__?.data?.name;
      if (fill.startsWith("hsl(0,")) out.red.add(name);
      if (fill.startsWith("hsl(135,")) out.green.add(name);
    }
    return { red: [...out.red].sort(), green: [...out.green].sort() };
  });
  const tip = await page.evaluate(() => {
    const g = [...document.querySelectorAll("#diff-flame svg g")].find((x) => x.__data__?.data?.name === "main.loop");
    const r = g.querySelector("rect").getBoundingClientRect();
    g.dispatchEvent(new MouseEvent("mouseover", { bubbles: true, clientX: r.x + 2, clientY: r.y + 2 }));
    const t = [...document.querySelectorAll(".d3-flame-graph-tip")].find((x) => x.style.display !== "none");
    return t ? t.innerText.replace(/\s+/g, " ").trim() : "";
  });
  await page.mouse.move(1, 1);
  const loop = page.locator('#diff-top tr[data-name="main.loop"]');
  result.diff = {
    base: Number(await page.getAttribute("#diff-summary", "data-base-total")),
    total: Number(await page.getAttribute("#diff-summary", "data-total")),
    red: colours.red, green: colours.green, tip,
    loop_text: (await loop.locator("td").nth(3).textContent()).trim(),
  };
  await page.evaluate(() => document.querySelectorAll(".d3-flame-graph-tip").forEach((t) => { t.style.display = "none"; }));
  await shot("readme-diff.png");
  result.diff.before = await diffView();
  await page.check("#diff-normalize");
  await page.waitForFunction(() => document.getElementById("diff-summary").dataset.factor === "3");
  result.diff.normalised = Number(await loop.getAttribute("data-delta"));
  await page.uncheck("#diff-normalize");
  await page.waitForFunction(() => document.getElementById("diff-summary").dataset.factor === "1");
  const diffPage = await fresh(await page.evaluate(() => location.href));
  await diffPage.waitForSelector('#diff-flame[data-rendered="1"] svg');
  result.diff.fresh = await diffPage.evaluate(() => [
    document.getElementById("diff-summary").dataset.baseTotal,
    document.getElementById("diff-summary").dataset.total,
    [...document.querySelectorAll("#diff-top tr.diff-fn")].map((r) => `${r.dataset.name}:${r.dataset.delta}`).join(),
  ]);
  await diffPage.close();

  // 5. A filter set on the flame graph shows (and goes) on the goroutine table.
  await page.click("#tab-flame");
  await page.waitForSelector('#flame[data-rendered="1"] svg rect');
  await page.selectOption("#filter-wait-reason", "chan receive");
  await page.waitForFunction(() => document.getElementById("flame")?.dataset.total === "8");
  await page.click("#tab-goroutines");
  await page.waitForSelector("#goroutines-out[data-matched] tbody tr");
  const chips = await page.locator("#filter-bar .filter-chip").evaluateAll((cs) => cs.map((c) => `${c.dataset.key}=${c.dataset.value}`));
  const filtered = Number(await page.getAttribute("#goroutines-out", "data-matched"));
  await shot("range-05-filter-bar.png");
  await page.click('#filter-bar .filter-chip[data-key="wait_reason"] .filter-remove');
  await page.waitForFunction((n) => !document.querySelector("#filter-bar .filter-chip") && matchedNot(n), filtered);
  result.filters = { chips, matched: filtered, removed: Number(await page.getAttribute("#goroutines-out", "data-matched")) };

  // 6. A copied link: the flame graph's kind, filter, zoom and search.
  await page.click("#tab-flame");
  await page.waitForSelector('#flame[data-rendered="1"] svg rect');
  await page.selectOption("#kind", "goroutine_wall");
  await page.waitForSelector('#flame[data-rendered="1"][data-unit="nanoseconds"] svg rect');
  await page.selectOption("#filter-wait-reason", "chan receive");
  await page.waitForFunction(() => document.querySelector('#filter-bar .filter-chip[data-key="wait_reason"]') &&
    document.querySelector('#flame[data-rendered="1"] svg rect') && document.getElementById("filter-wait-reason").value === "chan receive");
  await page.evaluate(() => {
    const g = [...document.querySelectorAll("#flame svg g")].find((x) => x.__data__?.data?.name === "main.loop");
    g.dispatchEvent(new MouseEvent("click", { bubbles: true }));
  });
  await page.waitForFunction(() => document.getElementById("flame-crumbs").dataset.depth === "2");
  await page.fill("#flame-search", "gopark");
  await page.waitForSelector("#flame-search-note[data-frames]");
  await page.waitForFunction(() => location.hash.includes("search=gopark") && location.hash.includes("zoom="));
  const href = await page.evaluate(() => location.href);
  const before = await flameView();
  const flamePage = await fresh(href);
  await flamePage.waitForSelector('#flame[data-rendered="1"] svg rect');
  await flamePage.waitForFunction(() => document.getElementById("flame-crumbs")?.dataset.depth === "2" &&
    document.getElementById("flame-search-note")?.dataset.frames);
  const after = await flamePage.evaluate(() => [
    document.querySelector(".tabs button.active")?.id,
    document.getElementById("kind").value,
    document.getElementById("filter-wait-reason").value,
    [...document.querySelectorAll("#flame-crumbs .flame-crumb")].map((c) => c.textContent).join(" › "),
    document.getElementById("flame-search").value,
    `${document.querySelector(".range-picker").dataset.from}..${document.querySelector(".range-picker").dataset.to}`,
    document.getElementById("flame").dataset.total,
    document.getElementById("flame-search-note").dataset.value,
  ]);
  await flamePage.screenshot({ path: join(outDir, "range-06-link-fresh.png"), fullPage: true });
  await flamePage.close();
  // The goroutine table's: grouped, the largest group expanded.
  await page.click("#tab-goroutines");
  await page.click("#goroutines-view-groups");
  await page.waitForSelector('#goroutines-out[data-view="groups"] #goroutine-groups tbody tr.group');
  const gid = await page.locator("#goroutine-groups tbody tr.group").first().getAttribute("data-id");
  await page.locator("#goroutine-groups tbody tr.group").first().locator("button.expand").click();
  await page.waitForSelector(`tr.group-members[data-group="${gid}"]:not([hidden]) table.members tbody tr`);
  const groupsView = (p) => p.evaluate(() => `${document.getElementById("goroutines-out").dataset.view}:` +
    [...document.querySelectorAll("tr.group-members:not([hidden])")].map((r) => `${r.dataset.group}/${r.querySelectorAll("table.members tbody tr").length}`).join());
  const groupsBefore = await groupsView(page);
  const tablePage = await fresh(await page.evaluate(() => location.href));
  await tablePage.waitForSelector(`tr.group-members[data-group="${gid}"]:not([hidden]) table.members tbody tr`);
  const groupsAfter = await groupsView(tablePage);
  await tablePage.close();
  result.link = { href, before, after, groups: [groupsBefore, groupsAfter] };

  check(errors.length === 0, `browser errors:\n${errors.join("\n")}`);
} catch (e) {
  if (errors.length) console.error(`browser errors so far:\n${errors.join("\n")}`);
  await page.screenshot({ path: join(outDir, "range-failure.png"), fullPage: true }).catch(() => {});
  throw e;
} finally {
  await close();
}
console.log(JSON.stringify(result));
