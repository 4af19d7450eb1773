// Browser test of the flame graph's tools, run by TestFlameInBrowser
// (agent/ui/flame_browser_test.go) against a UI over hand-made snapshots
// and an on-CPU profile:
//
//	node flame.spec.mjs URL ARTIFACT_DIR PLAYWRIGHT_DIR
//
// URL is the process page; PLAYWRIGHT_DIR is test/ui, whose node_modules
// hold playwright-core. It checks the summary and tooltip units, that the
// tooltip stays in the viewport and goes on a redraw, searches (substring,
// regexp, invalid regexp), zooms and walks the breadcrumb back, opens the
// top table (sorting, a click highlighting the function) and the sandwich
// view, colours by state, and shows the on-CPU profile in time units with
// its hostile frame name as text. The last line printed is a JSON object of
// what it measured, for the Go test to compare; any failure exits non-zero.
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [url, outDir, pwDir] = process.argv.slice(2);
if (!url || !outDir || !pwDir) {
  console.error("usage: node flame.spec.mjs URL ARTIFACT_DIR PLAYWRIGHT_DIR");
  process.exit(2);
}
const { chromium } = await import(pathToFileURL(join(pwDir, "node_modules", "playwright-core", "index.mjs")).href);
const { check, openBrowser } = await import(pathToFileURL(join(pwDir, "browser.mjs")).href);
const { context, page, errors, shot, close } = await openBrowser(chromium, "flame", outDir);
const result = {};

// hover dispatches a mouseover on the first drawn frame of fn (in box),
// at its right end when right, and returns the tooltip's text and box.
const hover = (fn, right, box = "#flame") => page.evaluate(([fn, right, box]) => {
  const g = [...document.querySelectorAll(`${box} svg g`)].find((x) => x.__data__?.data?.name === fn);
  if (!g) return null;
  const r = g.querySelector("rect").getBoundingClientRect();
  const x = right ? Math.min(r.right, document.documentElement.clientWidth) - 2 : r.x + 2;
  g.dispatchEvent(new MouseEvent("mouseover", { bubbles: true, clientX: x, clientY: r.y + 2 }));
  const tip = [...document.querySelectorAll(".d3-flame-graph-tip")].find((t) => t.style.display !== "none");
  if (!tip) return { text: "", inside: false };
  const b = tip.getBoundingClientRect();
  return {
    text: tip.innerText.replace(/\s+/g, " ").trim(),
    inside: b.left >= 0 && b.top >= 0 && b.right <= document.documentElement.clientWidth && b.bottom <= document.documentElement.clientHeight,
  };
}, [fn, right, box]);
// frames lists the drawn frames of box: {name, kind, depth, x, highlight, width}.
const frames = (box = "#flame") => page.evaluate((box) => [...document.querySelectorAll(`${box} svg g`)]
  .map((g) => g.__data__).filter((d) => d?.data)
  .map((d) => ({ name: d.data.name, kind: d.data.kind || "", depth: d.depth, x: d.x0, highlight: !!d.highlight }))
  .sort((a, b) => a.depth - b.depth || a.x - b.x), box);
const rendered = () => page.waitForSelector('#flame[data-rendered="1"] svg rect');
const crumbs = () => page.locator("#flame-crumbs .flame-crumb").allTextContents();

try {
  // 1. The goroutines profile: units in the summary and the tooltip.
  await page.goto(url);
  await rendered();
  result.summary = await page.locator("#flame-total").textContent();
  result.range = await page.locator("#flame-range").textContent();
  // A range of one moment: the charts span the minute around it.
  await page.waitForSelector("#chart-states .u-over[data-max]");
  result.x_window = await page.locator("#chart-states .u-over").evaluate((o) => [Number(o.dataset.min), Number(o.dataset.max)]);
  const tip = await hover("main.start", false);
  check(tip, "main.start drawn");
  result.tip = tip.text;
  // A frame reaching the right edge: the tooltip flips to stay inside.
  const edge = await hover("main.start", true);
  result.tip_inside = edge.inside;
  await shot("flame-01-tooltip.png");

  // 2. Search (a redraw: the tooltip goes).
  await page.fill("#flame-search", "chanrecv");
  await page.waitForSelector("#flame-search-note[data-frames]");
  result.tip_after_redraw = await page.evaluate(() => [...document.querySelectorAll(".d3-flame-graph-tip")].map((t) => t.style.display).join() || "none");
  const note = page.locator("#flame-search-note");
  result.search_value = Number(await note.getAttribute("data-value"));
  result.search_percent = await note.getAttribute("data-percent");
  const noteText = await note.textContent();
  check(noteText.includes("5 goroutines of 8 goroutines") && noteText.includes("63%"), `search note "${noteText}"`);
  result.search_names = [...new Set((await frames()).filter((f) => f.highlight).map((f) => f.name))];
  check(result.search_names.join() === "runtime.chanrecv1", `highlighted ${result.search_names}`);
  check(Number(await page.getAttribute("#flame", "data-highlighted")) === 1, "one highlighted frame drawn");
  await shot("flame-02-search.png");
  await page.check("#flame-search-regexp");
  await page.fill("#flame-search", "^main\\.(loop|poll)$");
  await page.waitForFunction(() => document.getElementById("flame-search-note").dataset.value === "7");
  result.regexp_value = Number(await note.getAttribute("data-value"));
  await page.fill("#flame-search", "(");
  await page.waitForSelector("#flame-search.invalid");
  check((await note.textContent()).startsWith("invalid regexp"), "invalid regexp said");
  await page.fill("#flame-search", "");
  await page.waitForFunction(() => document.getElementById("flame").dataset.highlighted === "0");

  // 3. Zoom to main.worker, the breadcrumb back to main.start, reset.
  await page.evaluate(() => {
    const g = [...document.querySelectorAll("#flame svg g")].find((x) => x.__data__?.data?.name === "main.worker");
    g.dispatchEvent(new MouseEvent("click", { bubbles: true }));
  });
  await page.waitForFunction(() => document.getElementById("flame-crumbs").dataset.depth === "3");
  result.crumbs = await crumbs();
  // The zoomed frame spans the graph (d3 sets the width in a transition).
  await page.waitForFunction(() => {
    const g = [...document.querySelectorAll("#flame svg g")].find((x) => x.__data__?.data?.name === "main.worker");
    return Math.abs(Number(g?.querySelector("rect").getAttribute("width")) - Number(document.querySelector("#flame svg").getAttribute("width"))) < 1;
  });
  await shot("flame-03-zoom.png");
  await page.locator("#flame-crumbs button.flame-crumb", { hasText: /^main\.start$/ }).click();
  await page.waitForFunction(() => document.getElementById("flame-crumbs").dataset.depth === "1");
  result.crumbs_back = await crumbs();
  await page.click("#flame-zoom-reset");
  await page.waitForFunction(() => document.getElementById("flame-crumbs").dataset.depth === "0");
  result.reset_depth = Number(await page.getAttribute("#flame-crumbs", "data-depth"));
  check(await page.locator("#flame-zoom-reset").isDisabled(), "reset disabled when not zoomed");

  // 4. The top table: by self, sorted by total, a click highlights.
  await page.click("#flame-view-table");
  await page.waitForSelector("#flame-top tbody tr.flame-fn");
  check(await page.locator("#flame").isHidden(), "graph hidden under the table");
  result.top_first = (await page.locator("#flame-top tbody tr").first().locator("td").allTextContents()).slice(0, 5);
  await page.click('#flame-top th[data-sort="total"] button');
  await page.waitForSelector('#flame-top th[data-sort="total"][aria-sort="descending"]');
  result.top_by_total = await page.locator("#flame-top tbody tr").first().getAttribute("data-name");
  const totals = await page.locator("#flame-top tbody tr").evaluateAll((rs) => rs.map((r) => Number(r.dataset.total)));
  check(totals.every((t, i) => !i || totals[i - 1] >= t), `sorted by total: ${totals}`);
  await shot("flame-04-top.png");
  await page.locator('#flame-top tr[data-name="main.loop"] button.flame-fn-name').click();
  await page.waitForSelector("#flame", { state: "visible" });
  await page.waitForFunction(() => document.getElementById("flame-search-note").dataset.value === "5");
  result.top_clicked = [...new Set((await frames()).filter((f) => f.highlight).map((f) => f.name))];

  // 5. The sandwich of runtime.gopark.
  await page.click("#flame-view-table");
  await page.locator('#flame-top tr[data-name="runtime.gopark"] button.flame-fn-sandwich').click();
  await page.waitForSelector("#flame-callers svg rect");
  result.callers = (await frames("#flame-callers")).map((f) => f.name);
  result.callees = (await frames("#flame-callees")).map((f) => f.name);
  const swTip = await hover("runtime.selectgo", false, "#flame-callers");
  check(swTip.text.includes("2 goroutines") && swTip.text.includes("29% of parent"), `sandwich tooltip "${swTip.text}"`);
  await shot("flame-05-sandwich.png");

  // 6. Colour by state: the state frames come, the legend names the states.
  await page.click("#flame-view-graph");
  await page.fill("#flame-search", ""); // the search stays over reloads: clear it
  await page.waitForFunction(() => document.getElementById("flame").dataset.highlighted === "0");
  await page.selectOption("#flame-color", "state");
  await page.waitForSelector('#flame-legend[data-mode="state"]');
  await rendered();
  result.state_frames = (await frames()).filter((f) => f.kind).map((f) => `${f.kind}:${f.name}`);
  result.state_legend = await page.locator("#flame-legend .flame-legend-item").evaluateAll((is) => is.map((i) => i.dataset.name));
  const fills = await page.evaluate(() => {
    const fill = (n) => [...document.querySelectorAll("#flame svg g")].find((x) => x.__data__?.data?.name === n)?.querySelector("rect").getAttribute("fill");
    return { recv: fill("runtime.chanrecv1"), poll: fill("main.poll") };
  });
  check(fills.recv && fills.poll && /^hsl\(200,/.test(fills.recv.replace(/\s/g, "")), `waiting frames coloured by state: ${JSON.stringify(fills)}`);
  await shot("flame-06-state.png");
  await page.selectOption("#flame-color", "package");
  await page.waitForSelector('#flame-legend[data-mode="package"]');
  await page.uncheck("#flame-group");
  await page.waitForFunction(() => document.getElementById("flame-group") && !document.getElementById("flame-group").checked &&
    document.getElementById("flame").dataset.rendered === "1");

  // 7. The on-CPU profile: time units; the hostile frame as text.
  await page.selectOption("#kind", "process_cpu");
  await page.waitForFunction(() => document.getElementById("flame")?.dataset.unit === "nanoseconds" && document.getElementById("flame").dataset.rendered === "1");
  result.cpu_summary = await page.locator("#flame-total").textContent();
  result.cpu_tip = (await hover("main.main", false)).text;
  result.package_legend = await page.locator("#flame-legend .flame-legend-item").evaluateAll((is) => is.map((i) => i.dataset.name));
  await page.click("#flame-view-table");
  await page.waitForSelector("#flame-top tbody tr.flame-fn");
  const hostile = await page.evaluate(() => ({
    names: [...document.querySelectorAll("#flame-top tbody tr")].map((r) => r.querySelector(".flame-fn-name").textContent),
    img: document.querySelectorAll("#app img, .d3-flame-graph-tip img").length,
    xss: window.__xss !== undefined,
  }));
  const row = await page.locator("#flame-top tbody tr").first().locator("td").allTextContents();
  check(row[1] === "150 ms" && row[0] === "runtime.memmove", `cpu top row ${row}`);
  await page.locator("#flame-top tbody tr").filter({ hasText: "main.leak<img" }).locator("button.flame-fn-sandwich").click();
  await page.waitForSelector("#flame-callers svg rect");
  const title = await page.locator("#flame-sandwich-title").textContent();
  result.cpu_hostile = hostile.names.some((n) => n.startsWith("main.leak<img")) && hostile.img === 0 && !hostile.xss &&
    title.includes("main.leak<img") && title.includes("32.0 ms") &&
    await page.evaluate(() => document.querySelectorAll("#app img").length === 0 && window.__xss === undefined);
  await shot("flame-07-cpu.png");

  check(errors.length === 0, `browser errors:\n${errors.join("\n")}`);
} catch (e) {
  if (errors.length) console.error(`browser errors so far:\n${errors.join("\n")}`);
  await context.pages()[0]?.screenshot({ path: join(outDir, "flame-failure.png"), fullPage: true }).catch(() => {});
  throw e;
} finally {
  await close();
}
console.log(JSON.stringify(result));
