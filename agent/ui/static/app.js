// goroscope UI: renders what the Go handlers under /api/ compute. This is
// the entry module (loaded with <script type="module">): it routes the URL
// fragment to a view. The views and their shared helpers are ES modules
// under js/, served from the embedded files, with no build step:
//
//	js/api.js         fetch of /api/ answers; the kinds list (GET /api/kinds)
//	js/dom.js         el() and friends: target-controlled text is set as text only
//	js/format.js      states, colours, number/time formatting
//	js/list.js        #/          the process list
//	js/process.js     #/p/PID/START?PARAMS  one process: state, tabs, shared filters
//	js/findings.js      its findings panel (and the list's finding badges)
//	js/header.js        its header
//	js/charts.js        its charts and moments
//	js/flame.js         flame graph tab
//	js/diff.js          diff tab
//	js/goroutines.js    goroutine table tab
//	js/downloads.js     downloads tab
//
// Every value shown comes from a target process and is untrusted: text is
// only ever set with textContent (el()), never parsed as HTML.
import { listView } from "./js/list.js";
import { processView } from "./js/process.js";

let current = null; // the active view, with a destroy() method

// route shows the view the fragment names: #/p/PID/START?PARAMS a process
// (a link to another view of the process shown updates it in place), else
// the process list.
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
  if (m) {
    current = processView(app, crumb, m[1], m[2], params);
  } else {
    crumb.textContent = "processes";
    listView(app);
  }
}
window.addEventListener("hashchange", route);
// Modules run deferred, once the document is parsed.
if (document.readyState === "loading") window.addEventListener("DOMContentLoaded", route);
else route();
