// Browser test of the service page (#/s/NAME), run by
// TestServicePageInBrowser (agent/ui/service_browser_test.go) against a UI
// serving three processes of billing one after the other (the last one
// live), one of another service and one of a hostile name:
//
//	node service.spec.mjs URL ARTIFACT_DIR PLAYWRIGHT_DIR HOSTILE_NAME
//
// URL is the UI's root; PLAYWRIGHT_DIR is test/ui. It drives Debian's
// chromium: billing's page lists its processes, the newest first, each
// linking to its page, and charts a series and a start marker per
// process; the range picker narrows it to the last 15 minutes; a process
// link opens its page; the hostile service's name shows as text; an
// unknown service says so. The last line printed is a JSON object of
// what it measured, for the Go test to compare; any failure exits
// non-zero. Screenshots land in ARTIFACT_DIR.
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [url, outDir, pwDir, hostile] = process.argv.slice(2);
if (!url || !outDir || !pwDir || !hostile) {
  console.error("usage: node service.spec.mjs URL ARTIFACT_DIR PLAYWRIGHT_DIR HOSTILE_NAME");
  process.exit(2);
}
const { chromium } = await import(pathToFileURL(join(pwDir, "node_modules", "playwright-core", "index.mjs")).href);
const { check, openBrowser } = await import(pathToFileURL(join(pwDir, "browser.mjs")).href);
const { page, errors, shot, close } = await openBrowser(chromium, "service", outDir);
const result = {};
const cells = (sel) => page.locator("#service-processes tbody tr.proc").evaluateAll((rs, sel) => rs.map((r) => r.querySelector(sel)?.textContent.trim() ?? ""), sel);
const pids = () => page.locator("#service-processes tbody tr.proc").evaluateAll((rs) => rs.map((r) => r.dataset.pid));
// loaded waits for the page of the current hash: its table and chart.
const loaded = () => page.waitForFunction(() => document.querySelector("#service-processes") &&
  document.querySelector('#service-chart[data-rendered="1"]'));
try {
  // 1. billing: its three processes, the newest first, and the chart.
  await page.goto(`${url}#/s/billing`);
  await loaded();
  result.rows = await pids();
  await page.waitForSelector("#service-crashes tbody tr.crash");
  result.crash = await page.locator("#service-crashes tbody tr.crash").first().evaluate((r) => [
    r.dataset.pid, r.dataset.class, r.querySelector("td.mono").firstChild.textContent, r.querySelector("a.crash-goroutines").getAttribute("href")]);
  result.status = await cells("td:nth-child(4)");
  result.peaks = await cells("td:nth-child(5)");
  result.findings = await cells("td:nth-child(8)");
  result.links = await page.locator("#service-processes tbody tr.proc a.proc-link").evaluateAll((as) => as.map((a) => a.getAttribute("href")));
  const chart = page.locator("#service-chart");
  result.series = Number(await chart.getAttribute("data-series"));
  result.starts = Number(await chart.getAttribute("data-starts"));
  result.moments = Number(await chart.getAttribute("data-moments"));
  result.legend = await page.locator("#service-chart .u-legend .u-series .u-label").evaluateAll((ls) => ls.map((l) => l.textContent).filter((t) => t.startsWith("pid ")));
  check((await page.locator("#service-chart canvas").count()) === 1, "one chart canvas");
  result.count = (await page.textContent("#service-count")).trim();
  result.heading = (await page.textContent("#app h2")).trim();
  result.range = await page.inputValue("#range");
  await shot("60-service.png");

  // 2. The last 15 minutes: the oldest process is out of it.
  await page.selectOption("#range", "15m");
  await page.waitForFunction(() => location.hash.includes("range=15m"));
  await page.waitForFunction(() => document.querySelector('#service-processes[data-count="2"]'));
  result.hash_15m = await page.evaluate(() => location.hash);
  result.rows_15m = await pids();
  await shot("61-service-15m.png");
  await page.goBack();
  await page.waitForFunction(() => document.querySelector('#service-processes[data-count="3"]'));

  // 3. A process's link opens its page; back, the service again.
  await page.locator('#service-processes tbody tr.proc[data-pid="9101"] a.proc-link').click();
  await page.waitForFunction(() => location.hash.startsWith("#/p/9101/"));
  result.opened = await page.evaluate(() => location.hash);
  await page.waitForSelector('#flame[data-rendered="1"]');
  await page.goBack();
  await loaded();
  result.back = await pids();

  // 4. The hostile service: its name as text.
  await page.goto(`${url}#/s/${encodeURIComponent(hostile)}`);
  await page.waitForFunction(() => document.querySelector('#service-processes[data-count="1"]'));
  result.hostile = await page.textContent("#service-name");
  result.crumb = await page.textContent("#crumb-service");
  result.hostile_rows = await pids();
  const injected = await page.evaluate(() => ({ img: document.querySelectorAll("#app img, #crumb img").length, xss: window.__xss !== undefined }));
  check(injected.img === 0 && !injected.xss, `hostile text ran: ${JSON.stringify(injected)}`);
  await shot("62-service-hostile.png");

  // 5. An unknown service says so (its 404 is the one HTTP error expected).
  await page.goto(`${url}#/s/nosuch`);
  await page.waitForSelector("#service-table .error");
  result.unknown = (await page.textContent("#service-table .error")).trim();
  const unexpected = errors.filter((e) => !/^HTTP 404: .*\/api\/services\/nosuch\?/.test(e) && !/404 \(Not Found\)/.test(e));
  check(unexpected.length === 0, `page errors:\n${unexpected.join("\n")}`);
} catch (e) {
  await shot("69-service-failure.png").catch(() => {});
  console.error(e);
  if (errors.length) console.error(errors.join("\n"));
  await close();
  process.exit(1);
}
await close();
console.log(JSON.stringify(result));
