// DOM helpers. Every string passed as a child becomes a text node: this is how the console escapes
// customer-supplied text (names, messages, article bodies); no markup is ever parsed from strings.

/**
 * Build an element. attrs: class, dataset {…}, on {event: fn}, style {…}, any other key is set as a
 * property when the element has one (value, checked, disabled, …) or else as an attribute.
 * Children: strings/numbers (text nodes), nodes, arrays (flattened), null/undefined/false (skipped).
 */
export function h(tag, attrs = {}, ...children) {
  const el = tag.startsWith("svg:")
    ? document.createElementNS("http://www.w3.org/2000/svg", tag.slice(4))
    : document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.setAttribute("class", Array.isArray(value) ? value.filter(Boolean).join(" ") : value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "style") Object.assign(el.style, value);
    else if (key === "on") for (const [ev, fn] of Object.entries(value)) el.addEventListener(ev, fn);
    else if (key.startsWith("on")) throw new Error(`use on: {…} for ${key}`); // no string handlers
    else if (!(el instanceof SVGElement) && key in el && typeof el[key] !== "function") el[key] = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

/** Append children (same rules as h). */
export function append(el, children) {
  for (const child of [children].flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Remove every child. */
export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

/** Replace the children of el. */
export function mount(el, ...children) {
  return append(clear(el), children);
}

export const qs = (sel, root = document) => root.querySelector(sel);
export const qsa = (sel, root = document) => [...root.querySelectorAll(sel)];

/** Format an ISO instant in the viewer's locale and zone. */
export function when(iso, lang = "zh") {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return d.toLocaleString(lang === "en" ? "en-GB" : "zh-CN", { month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit" });
}

/** A short human duration from seconds: 45s, 12m, 3h 5m, 2d. */
export function duration(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return "—";
  const s = Math.round(Math.abs(seconds));
  if (s < 60) return `${s}s`;
  // Round once, to whole minutes, then split: rounding each unit separately printed 3590 s as "60m"
  // and 23 h 59.6 m as "23h 60m".
  const m = Math.round(s / 60);
  if (m < 60) return `${m}m`;
  if (m < 1440) return `${Math.floor(m / 60)}h ${m % 60}m`;
  return `${Math.round(m / 1440)}d`;
}

/** A transient message at the bottom of the screen (errors and confirmations). */
export function toast(text, kind = "info") {
  let box = qs("#toasts");
  if (!box) box = document.body.appendChild(h("div", { id: "toasts", role: "status" }));
  const item = h("div", { class: ["toast", `toast-${kind}`] }, text);
  box.append(item);
  setTimeout(() => item.remove(), kind === "error" ? 8000 : 4000);
}
