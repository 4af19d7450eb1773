// Browser test of goroscope's web UI, run by TestUIInBrowser (agent/ui):
//
//	node ui.spec.mjs URL ARTIFACT_DIR
//
// It drives Debian's chromium through playwright-core: opens the process
// list, a process (reading which walker serves it and why), checks the
// flame graph rendered the last hour (every snapshot, averaged), filters
// it by the "chan receive" wait reason and checks it changed, narrows the
// range to the last snapshot and diffs it with the first (the range
// fields, the baseline fields), opens the goroutine table, searches,
// checks the downloads and the flame graph's
// profile selector offer every kind GET api/kinds lists (goroutineleak's
// flame graph rendering its hostile frame name as text), and saves
// screenshots in ARTIFACT_DIR. The last
// line printed is a JSON object of what it measured, for the Go test to
// compare with the store; any failure exits non-zero.
import { chromium } from "playwright-core";
import { check, openBrowser } from "./browser.mjs";

const [url, outDir] = process.argv.slice(2);
if (!url || !outDir) {
  console.error("usage: node ui.spec.mjs URL ARTIFACT_DIR");
  process.exit(2);
}
const { context, page, errors, shot, close } = await openBrowser(chromium, "ui", outDir);
const result = {};
try {
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
  result.moments = Number(await page.getAttribute("#chart-states", "data-moments"));
  result.merged = Number(await page.getAttribute("#flame-range", "data-merged"));
  check(await page.getAttribute("#flame-range", "data-merge") === "average", "goroutines averaged over the range");
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
  const fmtTotal = all.total.toLocaleString("en-US", { maximumFractionDigits: all.total < 1 ? 2 : 1 });
  check(summary.includes(`of ${fmtTotal}`) && summary.includes(`average of ${result.merged} snapshots`), `summary "${summary}"`);
  await shot("03-flame-chan-receive.png");

  // 4. The range narrowed to the newest snapshot (typed in the range's
  // fields), diffed with the oldest (typed as the baseline); the filter
  // applies.
  const first = await page.getAttribute("#chart-states", "data-first");
  const last = await page.getAttribute("#chart-states", "data-last");
  await page.fill("#range-from", last);
  await page.fill("#range-to", last);
  await page.click("#range-apply");
  await page.waitForFunction((last) => document.querySelector(".range-picker").dataset.from === new Date(last).toISOString() &&
    document.querySelector("#flame-range")?.dataset.merged === "1", last);
  await page.click("#tab-diff");
  await page.waitForSelector('#diff-flame[data-rendered="1"], #diff-summary .error');
  // A range of one moment: the default baseline is the snapshot before it.
  check(await page.locator("#diff-summary .error").count() === 0, "the default diff answered without error");
  result.diff_default_base = await page.getAttribute("#diff-hint", "data-base-default");
  await page.fill("#diff-base-from", first);
  await page.fill("#diff-base-to", first);
  await page.click("#diff-base-apply");
  await page.waitForFunction(() => !document.getElementById("diff-hint")?.dataset.baseDefault &&
    /1 snapshot at/.test(document.querySelector("#diff-summary .diff-baseline")?.textContent || "") &&
    document.querySelector('#diff-flame[data-rendered="1"]'));
  check(await page.locator("#diff-summary .error").count() === 0, "diff answered without error");
  result.diff_base = Number(await page.getAttribute("#diff-summary", "data-base-total"));
  result.diff_total = Number(await page.getAttribute("#diff-summary", "data-total"));
  const recv = page.locator('#diff-top tr[data-name="main.parkChanRecv"]');
  result.diff_recv_delta = Number(await recv.getAttribute("data-delta"));
  result.diff_recv_text = (await recv.locator("td").nth(3).textContent()).trim();
  await shot("04-diff.png");

  // 5. Goroutine table and search.
  await page.click("#tab-goroutines");
  await page.click("#goroutines-view-each");
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

  // 6. Downloads: a row per kind the API lists (the process has them all
  // stored), three links each, and every link answers. The "chan receive"
  // filter still applies: the goroutine kinds and the snapshot have
  // matching goroutines; the other kinds carry no wait reasons, so their
  // folded files are empty.
  const apiKinds = await (await page.request.get(new URL("api/kinds", url).href)).json();
  check(Array.isArray(apiKinds) && apiKinds.length > 0, `GET api/kinds: ${JSON.stringify(apiKinds)}`);
  result.api_kinds = apiKinds.map((k) => k.kind);
  check(result.api_kinds.includes("goroutineleak"), `api/kinds lists ${result.api_kinds}, want goroutineleak among them`);
  const withGoroutines = new Set(["goroutines", "goroutine_wall", "snapshot"]);
  const checkDownloads = async (filtered) => {
    await page.click("#tab-downloads");
    await page.waitForSelector("#downloads a");
    const stray = await page.evaluate(() => [...document.querySelector(".panel").childNodes].filter((n) => n.nodeType !== Node.ELEMENT_NODE).map((n) => n.textContent));
    check(stray.length === 0, `downloads panel has stray text ${JSON.stringify(stray)}`);
    const rows = await page.locator("#downloads tr").evaluateAll((trs) => trs.map((tr) => ({
      kind: tr.dataset.kind, name: tr.cells[0].textContent, description: tr.cells[1].textContent,
      links: [...tr.querySelectorAll("a")].map((a) => ({ href: a.href, text: a.textContent })),
    })));
    check(rows.map((r) => r.kind).join() === result.api_kinds.join(),
      `download rows ${rows.map((r) => r.kind)}, want every kind the API lists: ${result.api_kinds}`);
    for (const [i, row] of rows.entries()) {
      check(row.name === row.kind && row.description === apiKinds[i].description, `download row ${JSON.stringify(row)}`);
      check(row.links.map((l) => l.text).join() === "pprof,folded,JSON", `download links of ${row.kind}: ${row.links.map((l) => l.text)}`);
      for (const [j, format] of ["pprof", "folded", "json"].entries()) {
        const q = new URL(row.links[j].href).searchParams;
        check(q.get("kind") === row.kind && q.get("format") === format, `download link ${row.links[j].href}`);
        check((q.get("wait_reason") === "chan receive") === filtered, `download link ${row.links[j].href} filtered: want ${filtered}`);
      }
    }
    const links = rows.flatMap((r) => r.links.map((l) => ({ kind: r.kind, href: l.href })));
    for (const { kind, href } of links) {
      const r = await page.request.get(href);
      const body = await r.body();
      const mayBeEmpty = filtered && !withGoroutines.has(kind) && href.includes("format=folded");
      check(r.ok() && (body.length > 0 || mayBeEmpty), `download ${href}: ${r.status()}, ${body.length} bytes`);
    }
    return { rows, links };
  };
  const filteredDownloads = await checkDownloads(true);
  const links = filteredDownloads.links;
  check(links.length === 3 * apiKinds.length, `${links.length} download links, want ${3 * apiKinds.length}`);
  result.downloads = links.length;
  await shot("06-downloads.png");

  // 7. Every kind: the flame graph's profile selector offers each profile
  // kind the API lists; goroutineleak renders, its hostile frame name
  // (<img ...>) shown as text in the graph, the tooltip and the details;
  // unfiltered, every download is non-empty.
  await page.click("#tab-flame");
  await page.waitForSelector('#flame[data-rendered="1"]');
  await page.click("#filter-reset");
  await page.waitForFunction(() => {
    const box = document.getElementById("flame");
    return box && box.dataset.rendered === "1" && box.dataset.total === box.dataset.unfilteredTotal && !document.getElementById("filter-wait-reason").value;
  });
  result.kind_options = await page.locator("#kind option").evaluateAll((os) => os.map((o) => o.value));
  const profileKinds = apiKinds.filter((k) => k.profile).map((k) => k.kind);
  check(result.kind_options.join() === profileKinds.join(), `profile selector offers ${result.kind_options}, want ${profileKinds}`);
  const leakOption = await page.locator('#kind option[value="goroutineleak"]').textContent();
  const leakKind = apiKinds.find((k) => k.kind === "goroutineleak");
  check(leakOption === `goroutineleak (${leakKind.value})`, `goroutineleak option "${leakOption}"`);
  await page.selectOption("#kind", "goroutineleak");
  await page.waitForFunction(() => {
    const box = document.getElementById("flame");
    return box && box.dataset.rendered === "1" && [...box.querySelectorAll(".d3-flame-graph-label")].some((d) => d.textContent.includes("<img"));
  });
  const leak = await page.evaluate(() => {
    const box = document.getElementById("flame");
    const g = [...box.querySelectorAll("svg g")].find((x) => x.__data__?.data?.name.startsWith("main.leak<img"));
    const r = g.querySelector("rect").getBoundingClientRect();
    g.dispatchEvent(new MouseEvent("mouseover", { bubbles: true, clientX: r.x + 2, clientY: r.y + 2 }));
    const tips = document.querySelectorAll(".d3-flame-graph-tip");
    const tip = tips[tips.length - 1];
    return {
      total: Number(box.dataset.total),
      name: g.__data__.data.name,
      label: g.querySelector(".d3-flame-graph-label").textContent,
      tip: tip ? tip.textContent : "",
      details: document.getElementById("flame-details").textContent,
      labelOptions: [...document.querySelectorAll("#filter-label option")].map((o) => o.textContent),
      injected: document.querySelectorAll("#app img, .d3-flame-graph-tip img").length,
      xss: window.__xss !== undefined,
    };
  });
  result.leak_frame = leak.name;
  result.leak_label = (leak.labelOptions.find((o) => o.startsWith("handler=")) || "").replace(/^handler=/, "").replace(/ \(\d+\)$/, "");
  check(leak.total > 0, `goroutineleak flame total ${leak.total}`);
  check(leak.label.includes(leak.name) && leak.tip.includes(leak.name) && leak.details.includes(leak.name),
    `hostile frame name shown as text: label "${leak.label}", tooltip "${leak.tip}", details "${leak.details}"`);
  check(leak.injected === 0 && !leak.xss, `target-controlled text (frame name, label) parsed as HTML: ${leak.injected} img elements, xss ${leak.xss}`);
  await shot("07-flame-goroutineleak.png");
  const unfilteredDownloads = await checkDownloads(false);
  result.download_kinds = unfilteredDownloads.rows.map((r) => r.kind);

  check(errors.length === 0, `browser errors:\n${errors.join("\n")}`);
} finally {
  await close();
}
console.log(JSON.stringify(result));
