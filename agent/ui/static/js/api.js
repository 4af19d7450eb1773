// Requests to the Go handlers under /api/ (see package ui's documentation).

// api fetches a JSON answer; a 4xx or 5xx throws the answer's error.
export async function api(path) {
  const r = await fetch(path, { headers: { Accept: "application/json" } });
  const body = await r.json().catch(() => ({ error: `${r.status} ${r.statusText}` }));
  if (!r.ok) throw new Error(body.error || `${r.status} ${r.statusText}`);
  return body;
}

let kindsOnce = null;

// kinds is the stored kinds the page can show or download, in display
// order: [{kind, profile, value, description}] from GET /api/kinds, asked
// once per page load (the list is fixed in the agent's build).
export function kinds() {
  if (!kindsOnce) kindsOnce = api("api/kinds").catch((e) => { kindsOnce = null; throw e; });
  return kindsOnce;
}
