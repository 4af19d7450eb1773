// DOM helpers. Every value shown comes from a target process and is
// untrusted: text is only ever set with textContent (el() appends strings
// as text nodes), never parsed as HTML.

// el builds an element: attrs are properties (on* are listeners), children
// are nodes or strings (text).
export function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "class") e.className = v;
    else if (k === "dataset") Object.assign(e.dataset, v);
    else if (k in e) e[k] = v;
    else e.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

// labelsEl shows pprof labels as k=v chips, sorted by key.
export function labelsEl(labels) {
  return el("span", { class: "labels" }, Object.keys(labels || {}).sort().map((k) => el("span", {}, `${k}=${labels[k]}`)));
}

// showError replaces where's content with err's message.
export function showError(where, err) {
  where.replaceChildren(el("p", { class: "error" }, String(err && err.message ? err.message : err)));
}
