// Requests to the Go handlers under /api/ (see package ui's documentation).

// busyRetries is how many times a request refused as busy (503 with
// Retry-After: the agent serves a few heavy requests at once) is retried
// before its error is shown.
const busyRetries = 2;

// api fetches a JSON answer; a 4xx or 5xx throws the answer's error. A
// busy refusal is retried after the delay the agent asks for. signal, if
// given, aborts the request (an AbortError is thrown).
export async function api(path, signal) {
  for (let attempt = 0; ; attempt++) {
    const r = await fetch(path, { headers: { Accept: "application/json" }, signal });
    const body = await r.json().catch(() => ({ error: `${r.status} ${r.statusText}` }));
    if (r.ok) return body;
    const wait = Number(r.headers.get("Retry-After"));
    if (r.status === 503 && wait > 0 && attempt < busyRetries) {
      await delay(wait * 1000, signal);
      continue;
    }
    throw new Error(body.error || `${r.status} ${r.statusText}`);
  }
}

// delay resolves after ms, or rejects when signal aborts first.
function delay(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) { reject(signal.reason); return; }
    const t = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => { clearTimeout(t); reject(signal.reason); }, { once: true });
  });
}

let kindsOnce = null;

// kinds is the stored kinds the page can show or download, in display
// order: [{kind, profile, value, description}] from GET /api/kinds, asked
// once per page load (the list is fixed in the agent's build).
export function kinds() {
  if (!kindsOnce) kindsOnce = api("api/kinds").catch((e) => { kindsOnce = null; throw e; });
  return kindsOnce;
}
