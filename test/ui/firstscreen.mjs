// The UI speed measurement of `make bench` (test/bench/ui.go): how long the
// first screen of the largest watched process takes to render, and how many
// bytes the page fetches for it. It opens the process page RUNS times, each
// in a new page of one browser (the first run is cold: nothing cached), and
// times from navigation to the first screen: the header, the goroutine chart
// and the flame graph drawn. Then it opens the goroutine table tab and times
// it until its first rows show. Every response's body size is summed, so a
// view that loads a whole snapshot shows up in the bytes.
//
//	BASE_URL=http://127.0.0.1:7070/ RUNS=5 OUT=result.json node firstscreen.mjs
import { writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { check, openBrowser } from "./browser.mjs";

const base = process.env.BASE_URL;
const runs = Number(process.env.RUNS || 5);
const outDir = process.env.ARTIFACT_DIR || join(tmpdir(), "goroscope-firstscreen");
check(base, "BASE_URL is set");

const procs = await (await fetch(new URL("api/processes", base))).json();
const live = procs.filter((p) => p.live).sort((a, b) => (b.total || 0) - (a.total || 0));
check(live.length > 0, "a live process is listed");
const target = live[0];
const url = new URL(`#/p/${target.pid}/${target.start_time}`, base).href;

const { context, errors, close } = await openBrowser(chromium, "firstscreen", outDir, 60000);
const result = { pid: target.pid, goroutines: target.total, url, runs: [] };
try {
  for (let i = 0; i < runs; i++) {
    const page = await context.newPage();
    page.setDefaultTimeout(60000);
    page.on("pageerror", (e) => errors.push(`page error: ${e.message}`));
    page.on("response", (r) => { if (r.status() >= 400) errors.push(`HTTP ${r.status()}: ${r.url()}`); });
    let bytes = 0, largest = 0, requests = 0;
    page.on("requestfinished", async (req) => {
      const s = await req.sizes().catch(() => null);
      if (!s) return;
      requests++;
      bytes += s.responseBodySize;
      largest = Math.max(largest, s.responseBodySize);
    });
    const t0 = Date.now();
    await page.goto(url, { waitUntil: "commit" });
    await page.waitForFunction(() =>
      document.querySelector("#chart-states canvas") &&
      document.querySelectorAll("#flame svg rect").length > 0);
    const first = Date.now() - t0;
    const firstBytes = bytes, firstRequests = requests, firstLargest = largest;
    const t1 = Date.now();
    await page.click("#tab-goroutines");
    await page.waitForFunction(() => document.querySelectorAll(".panel table tbody tr").length > 0);
    const table = Date.now() - t1;
    if (i === runs - 1) await page.screenshot({ path: join(outDir, "firstscreen-100k.png"), fullPage: true });
    result.runs.push({ first_ms: first, first_bytes: firstBytes, first_requests: firstRequests, first_largest: firstLargest,
      table_ms: table, total_bytes: bytes, largest });
    await page.close();
  }
} finally {
  await close();
}
check(errors.length === 0, `no page errors: ${errors.join("; ")}`);
const out = JSON.stringify(result, null, 1);
if (process.env.OUT) await writeFile(process.env.OUT, out);
else console.log(out);
