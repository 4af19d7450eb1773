// Browser test of the process list, run by TestProcessListInBrowser
// (agent/ui/list_browser_test.go) against a UI serving live and stored
// synthetic processes:
//
//	node list.spec.mjs URL ARTIFACT_DIR PLAYWRIGHT_DIR
//
// URL is the list (#/); PLAYWRIGHT_DIR is test/ui. It drives Debian's
// chromium: the default filter shows the live processes but the
// short-lived ones and the stored ones with findings, the stored ones of
// one service collapsed into a service row, findings first, then growing;
// a toggle shows the short-lived ones and hides them again; a service row
// expands to its processes; the filter shows the live, the stored or all;
// an exited process says so, not as an error; a click on a header sorts
// by it (growth too), another reverses it, with an arrow; the search
// keeps the rows whose service, pid or executable hold it; a hostile
// service name shows as text; a service row and a process's history link
// lead to the service's page. The last line printed is a JSON object of what it measured, for
// the Go test to compare; any failure exits non-zero. Screenshots land in
// ARTIFACT_DIR.
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [url, outDir, pwDir] = process.argv.slice(2);
if (!url || !outDir || !pwDir) {
  console.error("usage: node list.spec.mjs URL ARTIFACT_DIR PLAYWRIGHT_DIR");
  process.exit(2);
}
const { chromium } = await import(pathToFileURL(join(pwDir, "node_modules", "playwright-core", "index.mjs")).href);
const { check, openBrowser } = await import(pathToFileURL(join(pwDir, "browser.mjs")).href);
const { page, errors, shot, close } = await openBrowser(chromium, "list", outDir);
const result = {};
// rows are the table's rows: "group:service:count", "proc:pid",
// "member:pid" or "empty".
const rows = () => page.locator("#processes tbody tr").evaluateAll((rs) => rs.map((r) => {
  if (r.classList.contains("service-group")) return `group:${r.dataset.service}:${r.dataset.count}`;
  if (r.classList.contains("proc")) return `${r.classList.contains("member") ? "member" : "proc"}:${r.dataset.pid}`;
  return r.className;
}));
const keys = (k) => page.locator("#processes tbody tr").evaluateAll((rs, k) => rs.map((r) => Number(r.dataset[k])), k);
const sorted = (xs, dir) => xs.every((x, i) => i === 0 || (dir === "asc" ? x >= xs[i - 1] : x <= xs[i - 1]));
const table = (attrs) => page.waitForSelector(`#processes${Object.entries(attrs).map(([k, v]) => `[data-${k}="${v}"]`).join("")}`);
const search = async (q) => {
  await page.fill("#processes-search", q);
  await page.waitForFunction((q) => document.querySelector("#processes-search").value === q, q);
  return rows();
};
try {
  // 1. The default: live, and stored with findings; findings first.
  await page.goto(url);
  await page.waitForSelector("#processes tbody tr.proc");
  await table({ sort: "findings", dir: "desc", filter: "default" });
  result.default = await rows();
  result.default_pressed = await page.getAttribute("#processes-filter-default", "aria-pressed");
  result.findings_header = (await page.locator("#processes thead th").first().textContent()).trim();
  result.first_proc = Number(await page.locator("#processes tbody tr.proc").first().getAttribute("data-pid"));
  const group = page.locator("#processes tbody tr.service-group").first();
  result.group_findings = Number(await group.getAttribute("data-findings"));
  result.group_badges = await group.locator(".badge").evaluateAll((bs) => bs.map((b) => b.textContent));
  result.group_text = (await group.locator("td").nth(1).textContent()).replace(/\s+/g, " ").trim();
  result.count_text = (await page.textContent("#processes-count")).trim();
  await shot("50-list-default.png");

  // 1b. The short-lived processes: hidden, shown, hidden again.
  result.short_button = (await page.textContent("#processes-short")).trim();
  await page.click("#processes-short");
  await table({ "short-shown": "1" });
  result.short_shown = await rows();
  result.short_hide_button = (await page.textContent("#processes-short")).trim();
  await shot("50b-list-short-lived.png");
  await page.click("#processes-short");
  await table({ "short-shown": "0" });
  result.short_hidden = await rows();

  // 2. The service row expands to its processes, and collapses again.
  await group.locator("button.expand").click();
  await page.waitForSelector("#processes tbody tr.proc.member");
  result.expanded = await rows();
  await shot("51-list-expanded.png");
  await page.locator("#processes tbody tr.service-group").first().locator("button.expand").click();
  await page.waitForFunction(() => !document.querySelector("#processes tbody tr.proc.member"));

  // 3. The filter.
  const filter = async (f) => {
    await page.click(`#processes-filter-${f}`);
    await table({ filter: f });
    return rows();
  };
  result.live = await filter("live");
  await page.click("#processes-short");
  await table({ filter: "live", "short-shown": "1" });
  result.live_short = await rows();
  await page.click("#processes-short");
  await table({ filter: "live", "short-shown": "0" });
  result.stored = await filter("stored");
  result.exited_status = (await page.locator('#processes tbody tr.proc[data-pid="5301"] .pill').textContent()).trim();
  await shot("52-list-stored.png");
  result.all = await filter("all");
  result.all_shown = Number(await page.getAttribute("#processes", "data-shown"));
  result.errors = await page.locator("#processes .error").count();

  // 4. Sorting, on all of them: each header, then reversed.
  const sortBy = async (key, dir) => {
    await page.click(`#processes-sort-${key}`);
    await table({ sort: key, dir });
    const arrow = await page.locator(`#processes-sort-${key}`).evaluate((b) => getComputedStyle(b, "::after").content);
    check(arrow === (dir === "asc" ? '" ▲"' : '" ▼"'), `arrow of ${key} ${dir}: ${arrow}`);
    const sort = await page.getAttribute(`#processes-sort-${key} >> xpath=..`, "aria-sort");
    check(sort === (dir === "asc" ? "ascending" : "descending"), `aria-sort of ${key} ${dir}: ${sort}`);
    const arrows = await page.locator("#processes thead button.sort").evaluateAll((bs) => bs.filter((b) => /[▲▼]/.test(getComputedStyle(b, "::after").content)).length);
    check(arrows === 1, `${arrows} arrows in the headers`);
    return rows();
  };
  result.by_goroutines = await sortBy("goroutines", "desc");
  check(sorted(await keys("total"), "desc"), `goroutines descending: ${await keys("total")}`);
  result.by_goroutines_asc = await sortBy("goroutines", "asc");
  check(sorted(await keys("total"), "asc"), `goroutines ascending: ${await keys("total")}`);
  result.by_growth = await sortBy("growth", "desc");
  const growths = () => page.locator("#processes tbody tr").evaluateAll((rs) => rs.map((r) => r.dataset.growth).filter((g) => g !== "").map(Number));
  check(sorted(await growths(), "desc"), `growth descending: ${await growths()}`);
  const ledger = page.locator('#processes tbody tr.proc[data-pid="5101"] td.growth');
  result.growth_text = (await ledger.textContent()).trim();
  result.growth_class = await ledger.getAttribute("class");
  check(/since/.test(await ledger.getAttribute("title")), "growth's title says since when");
  await shot("53b-list-by-growth.png");
  result.by_growth_asc = await sortBy("growth", "asc");
  check(sorted(await growths(), "asc"), `growth ascending: ${await growths()}`);
  result.by_last = await sortBy("last", "desc");
  check(sorted(await keys("last"), "desc"), `last snapshot descending: ${await keys("last")}`);
  result.by_service = await sortBy("service", "asc");
  await shot("53-list-by-service.png");
  result.by_findings_asc = await sortBy("findings", "desc").then(() => sortBy("findings", "asc"));
  result.by_findings = await sortBy("findings", "desc");

  // 5. The search: service, pid, executable; case-insensitive.
  result.search_service = await search("COMPILE");
  result.search_pid = await search("6002");
  result.search_exe = await search("usr/LIB/billing");
  await shot("54-list-search.png");
  result.search_none = await search("no-such-process");
  result.search_cleared = await search("");

  // 6. The hostile service name, as text.
  await filter("live");
  result.hostile = (await page.locator('#processes tbody tr.proc[data-pid="5001"] a.proc-name').textContent()).trim();
  result.injected = await page.evaluate(() => ({ img: document.querySelectorAll("#app img").length, xss: window.__xss !== undefined }));
  check(result.injected.img === 0 && !result.injected.xss, `hostile text ran: ${JSON.stringify(result.injected)}`);

  // 7. A service row's name leads to the service's page, and so does a
  // process's history link.
  await filter("default");
  await page.locator("#processes tbody tr.service-group a.service-name").first().click();
  await page.waitForFunction(() => location.hash.startsWith("#/s/"));
  result.service_link = await page.evaluate(() => location.hash);
  await page.waitForSelector("#service-processes");
  result.service_rows = Number(await page.getAttribute("#service-processes", "data-count"));
  await page.goBack();
  await table({ filter: "default" });
  await page.locator('#processes tbody tr.proc[data-pid="5101"] a.service-link').click();
  await page.waitForFunction(() => location.hash.startsWith("#/s/"));
  result.history_link = await page.evaluate(() => location.hash);
  await page.waitForSelector("#service-processes");
  await page.goBack();
  await table({ filter: "default" });
  await filter("live");

  // 8. A process row still opens its page; back, the list is as it was.
  await search("checkout");
  await page.locator("#processes tbody tr.proc").first().click();
  await page.waitForFunction(() => location.hash.startsWith("#/p/"));
  result.opened = await page.evaluate(() => location.hash);
  await page.waitForSelector('#flame[data-rendered="1"]');
  await page.goBack();
  await table({ filter: "live" });
  result.back_search = await page.inputValue("#processes-search");
  result.back = await rows();
  check(errors.length === 0, `page errors:\n${errors.join("\n")}`);
} catch (e) {
  await shot("59-list-failure.png").catch(() => {});
  console.error(e);
  if (errors.length) console.error(errors.join("\n"));
  await close();
  process.exit(1);
}
await close();
console.log(JSON.stringify(result));
