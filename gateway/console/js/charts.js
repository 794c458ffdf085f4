// Small SVG charts for the dashboard, drawn with h("svg:…") so every label is a text node (customer
// text such as a channel name can never become markup). No chart library: the console has no build
// step and no third-party code. Colours come from CSS classes (css/dashboard.css), never from here, so
// a series looks the same in its chart, its legend and a priority badge. Each chart is responsive
// through its viewBox (the <svg> is drawn at 100 % of its panel's width); hovering a bar or a point
// shows its exact value through an SVG <title>.

import { h } from "./dom.js";

const PAD = { top: 16, right: 12, bottom: 30, left: 40 };

/** Round numbers for an axis from 0 to at least max: [0, step, 2·step, …] with step 1, 2 or 5 × 10ⁿ. */
export function ticks(max, { count = 4, integer = false } = {}) {
  const top = Math.max(Number(max) || 0, integer ? 1 : 0) || 1;
  const raw = top / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  let step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw) ?? 10 * power;
  if (integer) step = Math.max(1, Math.ceil(step));
  const out = [];
  for (let v = 0; v < top + step - 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

function frame(width, height, label, ...children) {
  return h("svg:svg", { viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img", "aria-label": label,
    preserveAspectRatio: "xMidYMid meet" }, h("svg:title", {}, label), ...children);
}

/** Horizontal grid lines with their values on the left (or right) edge of the plot. */
function yAxis(values, scale, { x1, x2, format, side = "left" }) {
  return h("svg:g", { class: ["axis", `axis-${side}`] }, values.map((v) => {
    const y = scale(v);
    return [
      side === "left" ? h("svg:line", { class: "gridline", x1, x2, y1: y, y2: y }) : null,
      h("svg:text", { x: side === "left" ? x1 - 6 : x2 + 6, y: y + 4, "text-anchor": side === "left" ? "end" : "start" },
        format(v)),
    ];
  }));
}

/** Show at most about one x label per minGap units, always including the last. */
function labelEvery(n, plotWidth, minGap = 46) {
  return Math.max(1, Math.ceil(n / Math.max(1, Math.floor(plotWidth / minGap))));
}

/**
 * Vertical bars, one series, optionally stacked: items = [{key, label, value, cls, title}] or with
 * `parts: [{value, cls, title}]` for a stacked bar (value = the sum). The total is written above
 * each bar. Each bar is a <g data-key=…> so tests and styles can find it.
 */
export function barChart({ items, label, width = 360, height = 220, format = String, integer = true }) {
  const plotW = width - PAD.left - PAD.right;
  const plotH = height - PAD.top - PAD.bottom;
  const max = Math.max(0, ...items.map((it) => it.value || 0));
  const axis = ticks(max, { integer });
  const top = axis[axis.length - 1] || 1;
  const y = (v) => PAD.top + plotH - (v / top) * plotH;
  const band = plotW / Math.max(1, items.length);
  const barW = Math.min(band * 0.6, 56);
  const every = labelEvery(items.length, plotW);
  const bars = items.map((it, i) => {
    const x = PAD.left + band * i + (band - barW) / 2;
    let base = 0;
    const parts = (it.parts || [{ value: it.value, cls: it.cls, title: it.title }]).map((part) => {
      const y0 = y(base);
      base += part.value || 0;
      const y1 = y(base);
      return h("svg:rect", { class: ["bar-part", part.cls], x, y: y1, width: barW, height: Math.max(0, y0 - y1),
        rx: 2 }, h("svg:title", {}, part.title ?? `${it.label}: ${format(part.value)}`));
    });
    const showLabel = i % every === 0 || i === items.length - 1;
    return h("svg:g", { class: ["bar", it.cls], dataset: { key: it.key ?? it.label, value: String(it.value ?? "") } },
      h("svg:title", {}, it.title ?? `${it.label}: ${format(it.value)}`),
      parts,
      h("svg:text", { class: "bar-value", x: x + barW / 2, y: y(it.value || 0) - 4, "text-anchor": "middle" },
        format(it.value ?? 0)),
      showLabel ? h("svg:text", { class: "bar-label", x: x + barW / 2, y: height - PAD.bottom + 16,
        "text-anchor": "middle" }, it.label) : null);
  });
  return frame(width, height, label,
    yAxis(axis, y, { x1: PAD.left, x2: width - PAD.right, format: integer ? String : format }),
    h("svg:line", { class: "baseline", x1: PAD.left, x2: width - PAD.right, y1: y(0), y2: y(0) }),
    bars);
}

/**
 * Lines over a shared x axis: labels = x labels; series = [{name, cls, values: [number|null], axis:
 * "left"|"right", area}]. The right axis is a rate (0..1) drawn as a percentage. A null value breaks
 * the line (no data that hour/day), it is never drawn as 0.
 */
export function lineChart({ labels, keys = labels, series, label, width = 640, height = 240, leftFormat = String,
  rightFormat = (v) => `${Math.round(v * 100)}%`, integer = true }) {
  const hasRight = series.some((s) => s.axis === "right");
  const pad = { ...PAD, right: hasRight ? 44 : PAD.right };
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const leftMax = Math.max(0, ...series.filter((s) => s.axis !== "right").flatMap((s) => s.values.map((v) => v || 0)));
  const leftTicks = ticks(leftMax, { integer });
  const leftTop = leftTicks[leftTicks.length - 1] || 1;
  const n = labels.length;
  const x = (i) => (n <= 1 ? pad.left + plotW / 2 : pad.left + (i * plotW) / (n - 1));
  const yLeft = (v) => pad.top + plotH - (v / leftTop) * plotH;
  const yRight = (v) => pad.top + plotH - v * plotH;
  const every = labelEvery(n, plotW);
  const drawn = series.map((s) => {
    const yOf = s.axis === "right" ? yRight : yLeft;
    const fmt = s.axis === "right" ? rightFormat : leftFormat;
    let d = "";
    let pen = false;
    s.values.forEach((v, i) => {
      if (v === null || v === undefined) { pen = false; return; }
      d += `${pen ? "L" : "M"}${x(i).toFixed(1)},${yOf(v).toFixed(1)} `;
      pen = true;
    });
    const area = s.area && n > 1
      ? h("svg:path", { class: ["area", s.cls], d: `M${x(0)},${yOf(0)} ${s.values.map((v, i) =>
        `L${x(i).toFixed(1)},${yOf(v || 0).toFixed(1)}`).join(" ")} L${x(n - 1)},${yOf(0)} Z` })
      : null;
    const points = s.values.map((v, i) => (v === null || v === undefined ? null
      : h("svg:circle", { class: ["point", s.cls], cx: x(i), cy: yOf(v), r: 3 },
        h("svg:title", {}, `${labels[i]} · ${s.name}: ${fmt(v)}`))));
    return h("svg:g", { class: ["series", s.cls], dataset: { series: s.name } }, area,
      h("svg:path", { class: ["line", s.cls], d: d.trim() || "M0,0" }), points);
  });
  const xLabels = labels.map((text, i) => (i % every === 0 || i === n - 1
    ? h("svg:text", { class: "x-label", x: x(i), y: height - pad.bottom + 16, "text-anchor": "middle" }, text) : null));
  // Invisible columns: each x position's key for tests, and a hover target summing up that point.
  const columns = labels.map((text, i) => h("svg:rect", { class: "hover-col", dataset: { key: keys[i] },
    x: x(i) - plotW / Math.max(1, n - 1) / 2, y: pad.top, width: plotW / Math.max(1, n - 1), height: plotH },
  h("svg:title", {}, [text, ...series.map((s) => `${s.name}: ${s.values[i] === null || s.values[i] === undefined
    ? "—" : (s.axis === "right" ? rightFormat : leftFormat)(s.values[i])}`)].join("\n"))));
  return frame(width, height, label,
    yAxis(leftTicks, yLeft, { x1: pad.left, x2: width - pad.right, format: leftFormat }),
    hasRight ? yAxis([0, 0.5, 1], yRight, { x1: pad.left, x2: width - pad.right, format: rightFormat, side: "right" })
      : null,
    h("svg:line", { class: "baseline", x1: pad.left, x2: width - pad.right, y1: yLeft(0), y2: yLeft(0) }),
    h("svg:g", { class: "hover-cols" }, columns),
    drawn, xLabels);
}

/**
 * A ring showing a rate (0..1, or null for "no data"): the number in the middle, a caption below.
 * cls picks the arc colour (e.g. "good" / "warn" / "bad").
 */
export function donut({ value, label, caption = "", size = 140, cls = "", format = (v) => `${Math.round(v * 100)}%` }) {
  const r = size / 2 - 12;
  const c = 2 * Math.PI * r;
  const mid = size / 2;
  const shown = value === null || value === undefined ? "—" : format(value);
  const arc = value === null || value === undefined ? null
    : h("svg:circle", { class: ["donut-arc", cls], cx: mid, cy: mid, r, "stroke-dasharray": `${(c * Math.min(1,
      Math.max(0, value))).toFixed(2)} ${c.toFixed(2)}`, transform: `rotate(-90 ${mid} ${mid})` },
    h("svg:title", {}, `${label}: ${shown}`));
  return frame(size, size + (caption ? 18 : 0), label,
    h("svg:circle", { class: "donut-track", cx: mid, cy: mid, r }),
    arc,
    h("svg:text", { class: "donut-value", x: mid, y: mid + 7, "text-anchor": "middle" }, shown),
    caption ? h("svg:text", { class: "donut-caption", x: mid, y: size + 12, "text-anchor": "middle" }, caption) : null);
}

/** A legend in HTML: [{name, cls}] → swatches coloured by the same classes as the chart. */
export function legend(series) {
  return h("ul", { class: "legend" }, series.map((s) =>
    h("li", {}, h("span", { class: ["swatch", s.cls], "aria-hidden": "true" }), s.name)));
}
