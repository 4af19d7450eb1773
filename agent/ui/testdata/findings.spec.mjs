// Browser test of goroscope's findings views, run by TestUIInBrowser
// (agent/ui/browser_test.go) after test/ui/ui.spec.mjs, against the same
// agent UI:
//
//	node findings.spec.mjs URL ARTIFACT_DIR PLAYWRIGHT_DIR
//
// PLAYWRIGHT_DIR is test/ui, whose node_modules hold playwright-core. It
// drives Debian's chromium: the process list shows the process's findings
// count and badges; the process page shows the findings panel above
// everything else, target-controlled text as text; "show these goroutines"
// lands on the goroutine table filtered to exactly the group (followed as
// a link, again in place, and as a deep link on a fresh page); "flame
// graph" lands on the flame graph filtered to the group's state and wait
// reason with its frame's function highlighted. The last line printed is a
// JSON object of what it measured, for the Go test to compare with the
// store; any failure exits non-zero. Screenshots land in ARTIFACT_DIR.
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [url, outDir, pwDir] = process.argv.slice(2);
if (!url || !outDir || !pwDir) {
  console.error("usage: node findings.spec.mjs URL ARTIFACT_DIR PLAYWRIGHT_DIR");
  process.exit(2);
}
const { chromium } = await import(pathToFileURL(join(pwDir, "node_modules", "playwright-core", "index.mjs")).href);
const { check, openBrowser } = await import(pathToFileURL(join(pwDir, "browser.mjs")).href);
const { context, page, errors, shot, close } = await openBrowser(chromium, "findings", outDir);
const result = {};
try {
  const injected = () => page.evaluate(() => ({
    img: document.querySelectorAll("#app img").length,
    bold: document.querySelectorAll("#app b").length - document.querySelectorAll("#app .info b").length,
    xss: window.__xss !== undefined,
  }));

  // 1. The process list: the findings column, the process first.
  await page.goto(url);
  await page.waitForSelector("#processes tbody tr.proc");
  const row = page.locator("#processes tbody tr.proc").first();
  result.list_pid = Number(await row.getAttribute("data-pid"));
  result.list_findings = Number(await row.getAttribute("data-findings"));
  result.list_count = (await row.locator(".findings-count").textContent()).trim();
  result.list_badges = await row.locator(".badge").evaluateAll((bs) => bs.map((b) => `${b.dataset.kind}:${b.textContent}:${b.className}`));
  result.list_header = (await page.locator("#processes thead th").first().textContent()).trim();
  await shot("08-findings-list.png");

  // 2. The process page: the findings panel above everything else.
  await row.click();
  await page.waitForSelector("#findings .finding");
  await page.waitForSelector('#flame[data-rendered="1"]');
  const panel = await page.evaluate(() => {
    const box = document.getElementById("findings");
    const app = document.getElementById("app");
    const f = box.querySelector(".finding");
    const text = (sel) => f.querySelector(sel)?.textContent.replace(/\s+/g, " ").trim() || "";
    return {
      // Its place: after the title, before everything else.
      position: [...app.children].indexOf(box),
      title: app.children[0].id,
      cards: box.querySelectorAll(".finding").length,
      kind: f.dataset.kind,
      id: f.dataset.id,
      site_id: f.dataset.siteId,
      badge: text(".badge"),
      summary: text(".finding-summary"),
      site: text(".finding-site"),
      facts: text(".finding-facts"),
      objects: f.querySelectorAll("table.objects tbody tr").length,
      object: [...(f.querySelector("table.objects tbody tr")?.cells || [])].map((c) => c.textContent),
      related: [...f.querySelectorAll(".finding-related li")].map((li) => li.textContent),
      labels: text(".labels"),
      links: [...f.querySelectorAll(".finding-links a")].map((a) => a.textContent),
    };
  });
  result.panel = panel;
  check(panel.title === "title" && panel.position === 1, `findings panel at child ${panel.position} of the page, want right after the title`);
  check(panel.badge === "leak" && panel.kind === "leak", `finding badge "${panel.badge}"`);
  check(panel.site.includes("blocks in main.parkChanRecv") && panel.site.includes("created by "), `finding site "${panel.site}"`);
  check(panel.facts.includes("holding since"), `finding facts "${panel.facts}"`);
  check(panel.links.join() === "show these goroutines,flame graph", `finding links ${panel.links}`);
  const inj = await injected();
  check(inj.img === 0 && inj.bold === 0 && !inj.xss, `target-controlled text in the findings parsed as HTML: ${JSON.stringify(inj)}`);
  await page.locator("#findings").screenshot({ path: join(outDir, "09-findings-panel.png") });

  // 3. "show these goroutines": the goroutine table, only the group.
  const goroutinesView = async () => {
    await page.waitForSelector("#tab-goroutines.active");
    await page.waitForSelector("#goroutines-site");
    await page.waitForSelector("#goroutines-out[data-matched] #goroutines tbody tr.goroutine");
    return page.evaluate(() => ({
      matched: Number(document.getElementById("goroutines-out").dataset.matched),
      ids: [...document.querySelectorAll("#goroutines tbody tr.goroutine")].map((tr) => Number(tr.dataset.id)),
      site: document.getElementById("goroutines-site").dataset.site,
      chip: document.getElementById("goroutines-site").textContent,
      states: [...new Set([...document.querySelectorAll("#goroutines tbody tr.goroutine td:nth-child(2)")].map((td) => td.textContent))],
      count: document.getElementById("goroutines-count").textContent,
      hash: location.hash,
    }));
  };
  await page.click('#findings .finding[data-kind="leak"] a.show-goroutines');
  const table = await goroutinesView();
  result.goroutines = table;
  check(table.site === panel.site_id, `goroutine table filtered to site ${table.site}, want ${panel.site_id}`);
  check(table.chip.includes("main.parkChanRecv"), `site filter chip "${table.chip}"`);
  check(table.hash.includes("tab=goroutines") && table.hash.includes(`site=${panel.site_id}`), `hash ${table.hash}`);
  await shot("10-findings-goroutines.png");

  // 4. "flame graph": filtered to the group's state and wait reason, its
  // function highlighted.
  await page.click('#findings .finding[data-kind="leak"] a.show-flame');
  await page.waitForSelector("#tab-flame.active");
  await page.waitForSelector("#flame-focus");
  await page.waitForSelector('#flame[data-rendered="1"][data-focus-matches]');
  const flame = await page.evaluate(() => {
    const box = document.getElementById("flame");
    const gs = [...box.querySelectorAll("svg g")];
    return {
      total: Number(box.dataset.total),
      unfiltered: Number(box.dataset.unfilteredTotal),
      focus_matches: Number(box.dataset.focusMatches),
      highlighted: [...new Set(gs.filter((g) => g.__data__?.highlight).map((g) => g.__data__.data.name))],
      state: document.getElementById("filter-state").value,
      wait_reason: document.getElementById("filter-wait-reason").value,
      focus: document.getElementById("flame-focus").textContent,
      note: document.getElementById("flame-focus-note").textContent,
    };
  });
  result.flame = flame;
  check(flame.state === "waiting" && flame.wait_reason === "chan receive", `flame filters ${flame.state} / ${flame.wait_reason}`);
  check(flame.focus_matches > 0 && flame.highlighted.join() === "main.parkChanRecv", `flame focus: ${flame.focus_matches} drawn, highlighted ${flame.highlighted}`);
  check(flame.total > 0 && flame.total < flame.unfiltered, `flame total ${flame.total} of ${flame.unfiltered}`);
  await shot("11-findings-flame.png");

  // 5. The same link again, from another tab: applied in place (the
  // fragment does not change, no hashchange).
  await page.click('#findings .finding[data-kind="leak"] a.show-goroutines');
  await page.click("#tab-downloads");
  await page.waitForSelector("#downloads");
  await page.click('#findings .finding[data-kind="leak"] a.show-goroutines');
  const again = await goroutinesView();
  check(again.matched === table.matched && again.site === table.site, `the link again: ${JSON.stringify(again)}`);

  // 6. The link as a deep link, on a fresh page load.
  const deep = new URL(url);
  deep.hash = table.hash;
  await page.goto("about:blank");
  await page.goto(deep.href);
  const fresh = await goroutinesView();
  result.deep_link = fresh;
  check(fresh.matched === table.matched && fresh.ids.join() === table.ids.join(), `deep link: ${JSON.stringify(fresh)}`);
  check(await page.getAttribute("#at", "data-at") !== "", "deep link: its moment picked");

  // 7. Clearing the site filter shows every goroutine.
  await page.click("#goroutines-site-clear");
  await page.waitForFunction((n) => !document.getElementById("goroutines-site") &&
    Number(document.getElementById("goroutines-out")?.dataset.matched) > n, table.matched);
  result.cleared_matched = Number(await page.getAttribute("#goroutines-out", "data-matched"));

  check(errors.length === 0, `browser errors:\n${errors.join("\n")}`);
} catch (e) {
  // What the page said before the failure, and what it looked like.
  if (errors.length) console.error(`browser errors so far:\n${errors.join("\n")}`);
  await context.pages()[0]?.screenshot({ path: join(outDir, "findings-failure.png"), fullPage: true }).catch(() => {});
  throw e;
} finally {
  await close();
}
console.log(JSON.stringify(result));
