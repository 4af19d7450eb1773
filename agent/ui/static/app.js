// goroscope UI: renders what the Go handlers under /api/ compute. This is
// the entry module (loaded with <script type="module">): it routes the URL
// fragment to a view. The views and their shared helpers are ES modules
// under js/, served from the embedded files, with no build step:
//
//	js/api.js         fetch of /api/ answers; the kinds list (GET /api/kinds)
//	js/dom.js         el() and friends: target-controlled text is set as text only
//	js/format.js      states, colours, number/time formatting
//	js/timerange.js   the time range, its picker and the diff's baseline
//	js/urlstate.js    the process page's view in its URL
//	js/live.js        live refresh, paused while the user inspects
//	js/filterbar.js   the bar of active filters
//	js/tooltip.js     the graphs' tooltip
//	js/list.js        #/          the process list
//	js/service.js     #/s/NAME?PARAMS  one service across its processes (restarts)
//	js/crashes.js       its crashes
//	js/process.js     #/p/PID/START?PARAMS  one process: state, tabs, shared filters
//	js/findings.js      its findings panel (and the list's finding badges)
//	js/header.js        its header
//	js/charts.js        its charts: range drag, moment click
//	js/flame.js         flame graph tab (js/flametable.js: top table, sandwich)
//	js/diff.js          diff tab (js/difftree.js: the diff tree's sums)
//	js/goroutines.js    goroutine table tab
//	js/downloads.js     downloads tab
//
// Every value shown comes from a target process and is untrusted: text is
// only ever set with textContent (el()), never parsed as HTML.
import { listView } from "./js/list.js";
import { processView } from "./js/process.js";
import { serviceView } from "./js/service.js";

let current = null; // the active view, with a destroy() method

// serviceName is the service a #/s/NAME fragment names (NAME URL-encoded),
// or null.
function serviceName(hash) {
  const m = hash.match(/^#\/s\/([^?]*)(?:\?(.*))?$/);
  if (!m) return null;
  try {
    return { name: decodeURIComponent(m[1]), params: new URLSearchParams(m[2] || "") };
  } catch {
    return null; // a malformed escape: the list
  }
}

// route shows the view the fragment names: #/p/PID/START?PARAMS a process
// (a link to another view of the process shown updates it in place),
// #/s/NAME?PARAMS a service, else the process list.
function route() {
  const m = location.hash.match(/^#\/p\/(\d+)\/(\d+)[^?]*(?:\?(.*))?/);
  const params = new URLSearchParams(m?.[3] || "");
  if (m && current?.update && current.pid === m[1] && current.start === m[2]) {
    current.update(params);
    return;
  }
  if (current && current.destroy) current.destroy();
  current = null;
  const app = document.getElementById("app");
  const crumb = document.getElementById("crumb");
  const svc = m ? null : serviceName(location.hash);
  if (m) {
    current = processView(app, crumb, m[1], m[2], params);
  } else if (svc) {
    current = serviceView(app, crumb, svc.name, svc.params);
  } else {
    crumb.textContent = "processes";
    listView(app);
  }
}
window.addEventListener("hashchange", route);
// Modules run deferred, once the document is parsed.
if (document.readyState === "loading") window.addEventListener("DOMContentLoaded", route);
else route();
