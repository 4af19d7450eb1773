// The README's screenshots of the real UI, taken from a running agent:
//
//	BASE_URL=http://127.0.0.1:7070/ OUT=docs/img node test/ui/screenshots.mjs
//
// It picks the live process with the most findings (else the most
// goroutines) and saves, at 1400x900: its flame graph over the last 15
// minutes: the top of its page, findings and charts (ui-overview.png), its
// flame graph grouped by state (ui-flame.png) and its goroutines grouped
// by stack (ui-goroutines.png).
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { chromium } from "playwright-core";
import { check, openBrowser } from "./browser.mjs";

const base = process.env.BASE_URL;
const out = resolve(process.env.OUT || "docs/img");
check(base, "BASE_URL is set");

const procs = await (await fetch(new URL("api/processes", base))).json();
const live = procs.filter((p) => p.live)
  .sort((a, b) => (b.findings_count || 0) - (a.findings_count || 0) || (b.total || 0) - (a.total || 0));
check(live.length > 0, "a live process is listed");
const p = live[0];
const view = (params) => new URL(`#/p/${p.pid}/${p.start_time}?${new URLSearchParams(params)}`, base).href;

const { page, errors, close } = await openBrowser(chromium, "screenshots", join(tmpdir(), "goroscope-screenshots"), 60000);
try {
  await page.goto(view({ range: "15m", group: "state", color: "state" }));
  await page.waitForSelector('#flame[data-rendered="1"] svg rect');
  // The frames' widths settle in a d3 transition after the render.
  await page.waitForFunction(() => {
    const svg = document.querySelector("#flame svg"), root = document.querySelector("#flame svg g rect");
    return svg && root && Number(root.getAttribute("width")) > 0.95 * Number(svg.getAttribute("width"));
  });
  await page.screenshot({ path: join(out, "ui-overview.png") });
  await page.evaluate(() => document.querySelector(".tabs").scrollIntoView({ block: "start" }));
  await page.screenshot({ path: join(out, "ui-flame.png") });

  await page.goto(view({ range: "15m", tab: "goroutines" }));
  await page.waitForSelector('#goroutines-out[data-view="groups"] #goroutine-groups tbody tr.group');
  await page.evaluate(() => document.querySelector(".tabs").scrollIntoView({ block: "start" }));
  await page.screenshot({ path: join(out, "ui-goroutines.png") });

} finally {
  await close();
}
check(errors.length === 0, `no page errors: ${errors.join("; ")}`);
console.log(`screenshots of pid ${p.pid} (${p.service_name}) in ${out}`);
