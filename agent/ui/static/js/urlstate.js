// The process page's view in its URL: #/p/PID/START?PARAMS, kept up to
// date with history.replaceState as the view changes (no hashchange, so
// the router does not render again, and no history entry per change), so
// that a copied link reproduces the view. PARAMS:
//
//	tab=flame|diff|goroutines|downloads  kind=  (a profile kind)
//	range=15m|1h|6h|24h  or  from=&to=  (RFC 3339)    at=  (a moment)
//	state= wait_reason= wait_duration= label=k=v  (the shared filters)
//	focus= zoom=a;b;c (the flame graph's zoomed frame, its path from the
//	root) view=graph|table|sandwich fn= (the sandwich's function)
//	search= regexp=1 color=package|state group=state
//	base_from=&base_to= normalize=1  (the diff's baseline, normalising)
//	q= site= addr= gview=each|groups gsort=count|wait expand=GROUP
//	runtime=1 (the runtime's wait reasons apart)  refresh=SECONDS
import { DEFAULT_RANGE } from "./timerange.js";

// FIELDS map the view state (st) to URL parameters: [key, param, type];
// a value equal to the default is left out.
const FIELDS = [
  ["tab", "tab", "str", "flame"], ["kind", "kind", "str", "goroutines"],
  ["range", "range", "str", ""], ["from", "from", "str", ""], ["to", "to", "str", ""], ["at", "at", "str", ""],
  ["state", "state", "str", ""], ["wait_reason", "wait_reason", "str", ""], ["wait_duration", "wait_duration", "str", ""], ["label", "label", "str", ""],
  ["focus", "focus", "str", ""], ["zoom", "zoom", "path", []], ["flameView", "view", "str", "graph"], ["flameSandwich", "fn", "str", ""],
  ["flameSearch", "search", "str", ""], ["flameSearchRegexp", "regexp", "bool", false], ["flameColor", "color", "str", "package"],
  ["flameGroup", "group", "flag:state", false],
  ["baseFrom", "base_from", "str", ""], ["baseTo", "base_to", "str", ""], ["diffNormalize", "normalize", "bool", false],
  ["q", "q", "str", ""], ["site", "site", "str", ""], ["addr", "addr", "str", ""], ["gview", "gview", "str", "groups"],
  ["gsort", "gsort", "str", "count"], ["expand", "expand", "str", ""],
  ["runtime", "runtime", "bool", false], ["refreshSeconds", "refresh", "num", 0],
];

// LINK_RESET are what a link to a view sets to its own, or clears when it
// does not name them (a finding's link: its filters, its group); the
// others (the range, the kind, how graphs are drawn) stay as they are
// unless it names them.
const LINK_RESET = new Set(["at", "state", "wait_reason", "wait_duration", "label", "focus", "zoom", "flameSearch", "q", "site", "addr", "expand"]);

const ZOOM_SEP = ";";

function read(type, v) {
  switch (type) {
    case "path": return v ? v.split(ZOOM_SEP) : [];
    case "bool": return v === "1" || v === "true";
    case "flag:state": return v === "state";
    case "num": return Number(v) > 0 ? Number(v) : 0;
  }
  return v;
}

function write(type, v) {
  switch (type) {
    case "path": return v.join(ZOOM_SEP);
    case "bool": return v ? "1" : "";
    case "flag:state": return v ? "state" : "";
    case "num": return v ? String(v) : "";
  }
  return v;
}

// defaultState is the view with no parameters.
export function defaultState() {
  const st = {};
  for (const [k, , , def] of FIELDS) st[k] = Array.isArray(def) ? [] : def;
  st.range = DEFAULT_RANGE;
  return st;
}

// applyParams sets st from params (URLSearchParams): all of them on a
// page load (link false), a link's view otherwise (LINK_RESET). A range
// given as from/to makes it custom; range= makes it relative.
export function applyParams(st, params, link) {
  for (const [k, name, type, def] of FIELDS) {
    if (params.has(name)) st[k] = read(type, params.get(name));
    else if (!link || LINK_RESET.has(k)) st[k] = Array.isArray(def) ? [] : def;
  }
  if (params.has("from") && !params.has("range")) st.range = "";
  else if (params.has("range")) { st.from = ""; st.to = ""; }
  else if (!link && !st.from) st.range = DEFAULT_RANGE;
  if (!st.range && !st.from) st.range = DEFAULT_RANGE;
}

// stateParams are the parameters of st's view.
export function stateParams(st) {
  const p = new URLSearchParams();
  for (const [k, name, type] of FIELDS) {
    if (st.range && (k === "from" || k === "to")) continue;
    if (!st.range && k === "range") continue;
    const v = write(type, st[k]);
    const def = FIELDS.find((f) => f[0] === k)[3];
    if (v && (k === "range" || k === "tab" || v !== write(type, def))) p.set(name, v);
  }
  return p;
}

// saveURL puts st's view in the page's URL (#/p/PID/START?PARAMS) with
// history.replaceState, when it changed.
export function saveURL(pid, start, st) {
  const hash = `#/p/${pid}/${start}?${stateParams(st)}`;
  if (location.hash !== hash) history.replaceState(history.state, "", hash);
}
