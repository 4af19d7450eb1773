// Shared setup of the browser specs (ui.spec.mjs, and agent/ui's
// testdata/findings.spec.mjs): Debian's chromium through playwright-core,
// headless, a throwaway profile, and every page error, console error,
// failed request and HTTP error collected.
import { mkdtemp, mkdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

// check throws when cond is false, saying what failed.
export function check(cond, msg) {
  if (!cond) throw new Error(`check failed: ${msg}`);
}

// openBrowser starts chromium with a fresh profile named after name, and a
// page whose errors go to errors; shot saves a full-page screenshot in
// outDir; watch(page) collects another page's errors too. close ends the
// browser and removes the profile. opts.timezoneId sets the browser's
// zone (default: the machine's).
export async function openBrowser(chromium, name, outDir, timeout = 20000, opts = {}) {
  await mkdir(outDir, { recursive: true });
  const userDataDir = await mkdtemp(join(tmpdir(), `goroscope-${name}-chromium-`));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    viewport: { width: 1400, height: 900 },
    acceptDownloads: false,
    ...(opts.timezoneId ? { timezoneId: opts.timezoneId } : {}),
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"],
  });
  const errors = [];
  const watch = (page) => {
    page.setDefaultTimeout(timeout);
    page.on("pageerror", (e) => errors.push(`page error: ${e.message}`));
    page.on("console", (m) => { if (m.type() === "error") errors.push(`console error: ${m.text()}`); });
    page.on("response", (r) => { if (r.status() >= 400) errors.push(`HTTP ${r.status()}: ${r.url()}`); });
    // A request the page aborts (a newer one replaces it) is no error.
    page.on("requestfailed", (r) => { if (r.failure()?.errorText !== "net::ERR_ABORTED") errors.push(`request failed: ${r.url()} ${r.failure()?.errorText}`); });
    return page;
  };
  const page = watch(context.pages()[0] || await context.newPage());
  const shot = (file) => page.screenshot({ path: join(outDir, file), fullPage: true });
  const close = async () => {
    await context.close();
    await rm(userDataDir, { recursive: true, force: true });
  };
  return { context, page, errors, shot, close, watch };
}
