// Browser test of goroscope's web UI, run by TestUIInBrowser (agent/ui):
//
//	node ui.spec.mjs URL ARTIFACT_DIR
//
// It drives Debian's chromium through playwright-core: opens the process
// list, a process (reading which walker serves it and why), checks the
// flame graph rendered, filters it by the
// "chan receive" wait reason and checks it changed, opens the diff and the
// goroutine table, searches, and saves screenshots in ARTIFACT_DIR. The last
// line printed is a JSON object of what it measured, for the Go test to
// compare with the store; any failure exits non-zero.
import { chromium } from "playwright-core";
import { mkdtemp, mkdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

const [url, outDir] = process.argv.slice(2);
if (!url || !outDir) {
  console.error("usage: node ui.spec.mjs URL ARTIFACT_DIR");
  process.exit(2);
}
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
const timeout = 20000;

function check(cond, msg) {
  if (!cond) throw new Error(`check failed: ${msg}`);
}

await mkdir(outDir, { recursive: true });
const userDataDir = await mkdtemp(join(tmpdir(), "goroscope-ui-chromium-"));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath,
  headless: true,
  viewport: { width: 1400, height: 900 },
  acceptDownloads: false,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"],
});
const errors = [];
const result = {};
try {
  const page = context.pages()[0] || await context.newPage();
  page.setDefaultTimeout(timeout);
  page.on("pageerror", (e) => errors.push(`page error: ${e.message}`));
  page.on("console", (m) => { if (m.type() === "error") errors.push(`console error: ${m.text()}`); });
  page.on("response", (r) => { if (r.status() >= 400) errors.push(`HTTP ${r.status()}: ${r.url()}`); });
  page.on("requestfailed", (r) => errors.push(`request failed: ${r.url()} ${r.failure()?.errorText}`));
  const shot = (name) => page.screenshot({ path: join(outDir, name), fullPage: true });

  // 1. Process list.
  await page.goto(url);
  await page.waitForSelector("#processes tbody tr.proc");
  result.processes = await page.locator("#processes tbody tr.proc").count();
  result.list_pid = Number(await page.locator("#processes tbody tr.proc").first().getAttribute("data-pid"));
  await shot("01-processes.png");

  // 2. One process: charts and flame graph.
  await page.locator("#processes tbody tr.proc").first().click();
  await page.waitForSelector('#flame[data-rendered="1"] svg rect');
  await page.waitForSelector("#chart-states .uplot");
  await page.waitForSelector("#chart-waits .uplot");
  await page.waitForSelector("#walker");
  result.walker = (await page.locator("#walker").textContent()).replace(/\s+/g, " ").trim();
  const flameState = async () => page.evaluate(() => {
    const box = document.getElementById("flame");
    return {
      total: Number(box.dataset.total),
      unfiltered: Number(box.dataset.unfilteredTotal),
      rects: box.querySelectorAll("svg rect").length,
      // d3 keeps each drawn frame's datum on its element.
      names: [...box.querySelectorAll("svg g")].map((g) => g.__data__?.data?.name).filter(Boolean),
    };
  });
  const all = await flameState();
  check(all.rects > 10, `flame graph has ${all.rects} frames, want > 10`);
  check(all.total > 0 && all.total === all.unfiltered, `unfiltered flame total ${all.total} of ${all.unfiltered}`);
  check(all.names.some((n) => n === "main.parkMutex"), "flame graph shows main.parkMutex");
  result.unfiltered = all.unfiltered;
  result.rects_all = all.rects;
  result.moments = await page.locator("#at option").count();
  await shot("02-process-flame.png");

  // 3. Filter by wait reason.
  const optionValue = await page.locator("#filter-wait-reason option", { hasText: /^chan receive \(\d/ }).getAttribute("value");
  check(optionValue === "chan receive", `wait reason option value ${optionValue}`);
  await page.selectOption("#filter-wait-reason", "chan receive");
  await page.waitForFunction((before) => {
    const box = document.getElementById("flame");
    return box && box.dataset.rendered === "1" && Number(box.dataset.total) !== before;
  }, all.total);
  await page.waitForSelector('#flame[data-rendered="1"] svg rect');
  const chan = await flameState();
  check(chan.total > 0 && chan.total < all.total, `filtered total ${chan.total}, unfiltered ${all.total}`);
  check(chan.unfiltered === all.unfiltered, "unfiltered total unchanged by the filter");
  check(chan.rects < all.rects, `filtered flame graph has ${chan.rects} frames, unfiltered ${all.rects}`);
  check(chan.names.some((n) => n === "main.parkChanRecv"), "filtered flame graph shows main.parkChanRecv");
  check(!chan.names.some((n) => n === "main.parkMutex"), "filtered flame graph hides main.parkMutex");
  result.chan_receive = chan.total;
  result.rects_chan = chan.rects;
  const summary = await page.locator("#flame-summary").textContent();
  check(summary.includes(`of ${all.total.toLocaleString("en-US")}`), `summary "${summary}"`);
  await shot("03-flame-chan-receive.png");

  // 4. Diff between the oldest and the newest moment (the filter applies).
  await page.click("#tab-diff");
  await page.waitForSelector("#diff-appeared tbody tr, #diff-out p.error");
  check(await page.locator("#diff-out p.error").count() === 0, "diff answered without error");
  const firstAppeared = await page.locator("#diff-appeared tbody tr").first().locator("td").allInnerTexts();
  result.diff_top = firstAppeared.join(" | ").replace(/\s+/g, " ").trim().slice(0, 200);
  check(/^\+\d+/.test(result.diff_top), `first appeared row "${result.diff_top}"`);
  const deltaText = await page.locator("#diff-appeared tbody tr td").first().textContent();
  result.diff_top_delta = Number(deltaText.replace(/[+,]/g, ""));
  await page.locator("#diff-appeared tbody tr details summary").first().click();
  await shot("04-diff.png");

  // 5. Goroutine table and search.
  await page.click("#tab-goroutines");
  await page.waitForSelector("#goroutines tbody tr.goroutine");
  const before = Number(await page.getAttribute("#goroutines-out", "data-matched"));
  await page.fill("#search", "parkChanRecv");
  await page.waitForFunction((b) => Number(document.getElementById("goroutines-out")?.dataset.matched) !== b, before);
  result.search_matched = Number(await page.getAttribute("#goroutines-out", "data-matched"));
  result.search_before = before;
  const rows = await page.locator("#goroutines tbody tr.goroutine").count();
  check(result.search_matched > 0 && rows === Math.min(100, result.search_matched), `search matched ${result.search_matched}, ${rows} rows`);
  await page.locator("#goroutines tbody tr.goroutine details summary").first().click();
  const stack = await page.locator("#goroutines tbody tr.goroutine .stack").first().textContent();
  check(stack.includes("main.parkChanRecv"), "expanded stack shows main.parkChanRecv");
  await shot("05-goroutines-search.png");

  // 6. Downloads: every link answers.
  await page.click("#tab-downloads");
  await page.waitForSelector("#downloads a");
  const links = await page.locator("#downloads a").evaluateAll((as) => as.map((a) => a.href));
  check(links.length === 9, `${links.length} download links, want 9`);
  for (const href of links) {
    const r = await page.request.get(href);
    const body = await r.body();
    check(r.ok() && body.length > 0, `download ${href}: ${r.status()}, ${body.length} bytes`);
  }
  result.downloads = links.length;
  await shot("06-downloads.png");

  check(errors.length === 0, `browser errors:\n${errors.join("\n")}`);
} finally {
  await context.close();
  await rm(userDataDir, { recursive: true, force: true });
}
console.log(JSON.stringify(result));
