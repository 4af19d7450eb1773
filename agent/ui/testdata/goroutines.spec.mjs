// Browser test of the goroutine table's groups, run by
// TestGoroutineGroupsInBrowser (agent/ui/goroutines_browser_test.go)
// against a UI serving a synthetic stored snapshot:
//
//	node goroutines.spec.mjs URL ARTIFACT_DIR PLAYWRIGHT_DIR
//
// URL is the process page's goroutine tab; PLAYWRIGHT_DIR is test/ui. It
// drives Debian's chromium: the per-goroutine view shows what a goroutine
// is blocked on; "grouped" lists the groups (largest first), sorted again
// by oldest wait; the largest group expands to its members, paged; a click
// on a channel lists everyone queued on it, and clearing that shows all
// again; searching an address finds the group blocked on it; hostile text
// (a frame, a label) shows as text. The charts of its one snapshot span
// the last hour up to it (not years). The last line printed is a JSON object
// of what it measured, for the Go test to compare with the API; any
// failure exits non-zero. Screenshots land in ARTIFACT_DIR.
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [url, outDir, pwDir] = process.argv.slice(2);
if (!url || !outDir || !pwDir) {
  console.error("usage: node goroutines.spec.mjs URL ARTIFACT_DIR PLAYWRIGHT_DIR");
  process.exit(2);
}
const { chromium } = await import(pathToFileURL(join(pwDir, "node_modules", "playwright-core", "index.mjs")).href);
const { check, openBrowser } = await import(pathToFileURL(join(pwDir, "browser.mjs")).href);
const { page, errors, shot, close } = await openBrowser(chromium, "goroutines", outDir);
const result = {};
const out = "#goroutines-out";
// groups are the grouped table's rows as "first id:count".
const groups = () => page.locator("#goroutine-groups tbody tr.group").evaluateAll((rs) => rs.map((r) => `${r.dataset.first}:${r.dataset.count}`));
const ids = (sel) => page.locator(sel).evaluateAll((rs) => rs.map((r) => Number(r.dataset.id)));
try {
  // 1. The per-goroutine view (groups are the default): what each is
  // blocked on.
  await page.goto(url);
  await page.waitForSelector(`${out}[data-view="groups"] #goroutine-groups tbody tr.group`);
  await page.click("#goroutines-view-each");
  await page.waitForSelector(`${out}[data-view="each"] #goroutines tbody tr.goroutine`);
  result.each_matched = Number(await page.getAttribute(out, "data-matched"));
  // One snapshot: the charts span the range (the last hour) up to it.
  await page.waitForSelector("#chart-states .u-over[data-max]");
  result.x_window = await page.locator("#chart-states .u-over").evaluate((o) => [Number(o.dataset.min), Number(o.dataset.max)]);
  result.each_blocked = (await page.locator('#goroutines tr.goroutine[data-id="1"] button.blocked-on').first().textContent()).trim();
  await shot("20-goroutines-each.png");

  // 2. Grouped, largest first.
  await page.click("#goroutines-view-groups");
  await page.waitForSelector(`${out}[data-view="groups"] #goroutine-groups[data-sort="count"] tbody tr.group`);
  result.groups_total = Number(await page.getAttribute(out, "data-groups"));
  result.matched = Number(await page.getAttribute(out, "data-matched"));
  result.by_count = await groups();
  const counts = result.by_count.map((r) => Number(r.split(":")[1]));
  check(counts.every((c, i) => i === 0 || c <= counts[i - 1]), `groups by count ${result.by_count}`);
  const stray = await page.locator(out).evaluate((o) => [...o.childNodes].filter((n) => n.nodeType === Node.TEXT_NODE).map((n) => n.textContent));
  check(stray.length === 0, `stray text in the table's box: ${JSON.stringify(stray)}`);
  await shot("21-goroutines-grouped.png");
  await shot("readme-goroutines.png");

  // 3. Sorted by oldest wait.
  await page.click("#groups-sort-wait");
  await page.waitForSelector('#goroutine-groups[data-sort="wait"] tbody tr.group');
  result.by_wait = await groups();
  const waits = await page.locator("#goroutine-groups tbody tr.group").evaluateAll((rs) => rs.map((r) => Number(r.dataset.oldest)));
  check(waits.every((w, i) => i === 0 || w <= waits[i - 1]), `groups by wait ${waits}`);
  await page.click("#groups-sort-count");
  await page.waitForSelector('#goroutine-groups[data-sort="count"] tbody tr.group');

  // 4. The largest group expands to its members, a page at a time.
  const largest = page.locator("#goroutine-groups tbody tr.group").first();
  const gid = await largest.getAttribute("data-id");
  await largest.locator("button.expand").click();
  const members = `#goroutine-groups tr.group-members[data-group="${gid}"]`;
  await page.waitForSelector(`${members} table.members tbody tr.goroutine`);
  result.members_n = Number(await page.getAttribute(`${members} > td`, "data-matched"));
  result.members = await ids(`${members} table.members tbody tr.goroutine`);
  await shot("22-goroutines-group-members.png");
  await page.click(`${members} button.next`);
  // The second page is drawn whole, rows and pager, before it is read.
  await page.waitForSelector(`${members} button.prev`);
  await page.waitForFunction((sel) => document.querySelector(`${sel} table.members tbody tr.goroutine`)?.dataset.id !== "1000", members);
  result.members2 = await ids(`${members} table.members tbody tr.goroutine`);

  // 5. Hostile text, as text.
  const hostile = page.locator("#goroutine-groups tbody tr.group", { hasText: "window.__xss" }).first();
  result.hostile_frame = (await hostile.locator("details summary").textContent()).replace(/ \(\d+ frames\)$/, "");
  result.hostile_label = (await hostile.locator(".labels span").first().textContent());
  const injected = await page.evaluate(() => ({ img: document.querySelectorAll("#app img").length, b: document.querySelectorAll("#app .panel b").length, xss: window.__xss !== undefined }));
  check(injected.img === 0 && injected.b === 0 && !injected.xss, `hostile text parsed as HTML: ${JSON.stringify(injected)}`);

  // 6. A channel's queue: a click on the chan receive group's channel.
  const recv = page.locator('#goroutine-groups tbody tr.group[data-first="1"]');
  const chan = recv.locator("button.blocked-on").first();
  result.queue_addr = await chan.getAttribute("data-addr");
  await chan.click();
  await page.waitForSelector(`#goroutines-addr[data-addr="${result.queue_addr}"]`);
  await page.waitForSelector(`${out}[data-view="each"] #goroutines tbody tr.goroutine`);
  result.queue_matched = Number(await page.getAttribute(out, "data-matched"));
  result.queue = await ids("#goroutines tbody tr.goroutine");
  await shot("23-goroutines-queue.png");
  await page.click("#goroutines-addr-clear");
  await page.waitForFunction((n) => !document.getElementById("goroutines-addr") &&
    Number(document.getElementById("goroutines-out")?.dataset.matched) > n, result.queue_matched);
  result.cleared = Number(await page.getAttribute(out, "data-matched"));

  // 7. An address search, grouped: the select blocked on that channel
  // among others.
  await page.click("#goroutines-view-groups");
  await page.waitForSelector(`${out}[data-view="groups"] #goroutine-groups tbody tr.group`);
  await page.fill("#search", "0xc000dd0000");
  await page.waitForFunction(() => Number(document.getElementById("goroutines-out")?.dataset.groups) === 1);
  result.search = await groups();
  await shot("24-goroutines-address-search.png");

  check(errors.length === 0, `page errors: ${errors.join("; ")}`);
  console.log(JSON.stringify(result));
} catch (e) {
  console.error(e.stack || String(e));
  console.error(`errors: ${errors.join("; ")}`);
  await shot("goroutines-failure.png").catch(() => {});
  process.exitCode = 1;
} finally {
  await close();
}
