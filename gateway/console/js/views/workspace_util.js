// Small pure helpers of the agent workspace: SLA state of a ticket row, names, times, labels.
// Everything returns plain strings or numbers; callers put them in the DOM as text nodes.

import { lang, t } from "../i18n.js";

export const ACTIVE = new Set(["new", "assigned", "open", "pending_customer"]);
const RANK = { ok: 0, warning: 1, breached: 2 };

/** Live SLA alerts seen on the event stream, by ticket id: {kind: "warning"|"breached", due: ms}. They
 * colour a badge at once; the next reload brings the same fact in the row's sla_fired. */
export const liveSla = new Map();

function fired(row, clock, dueMs, kind) {
  for (const key of row.sla_fired || []) {
    if (clock !== "next_response") {
      if (key === `${clock}:${kind}`) return true;
    } else if (key.startsWith("next_response:") && key.endsWith(`:${kind}`)) {
      // next-response keys carry their due instant: "next_response:<iso>:warning"
      if (Date.parse(key.slice("next_response:".length, -(kind.length + 1))) === dueMs) return true;
    }
  }
  return false;
}

/**
 * The SLA clock that matters now for an active ticket row: {clock, due (ms), seconds left (negative
 * when overdue), state: ok|warning|breached}; null when no clock runs (resolved, or no SLA).
 */
export function slaOf(row, now = Date.now()) {
  if (!row || !ACTIVE.has(row.status)) return null;
  let clock = null;
  let due = null;
  if (!row.first_responded_at && row.first_response_due) [clock, due] = ["first_response", row.first_response_due];
  else if (row.next_response_due) [clock, due] = ["next_response", row.next_response_due];
  else if (row.resolution_due) [clock, due] = ["resolution", row.resolution_due];
  if (!clock) return null;
  const dueMs = Date.parse(due);
  if (Number.isNaN(dueMs)) return null;
  let state = "ok";
  if (dueMs <= now || fired(row, clock, dueMs, "breach")) state = "breached";
  else if (fired(row, clock, dueMs, "warning")) state = "warning";
  const live = liveSla.get(row.id);
  if (live && live.due === dueMs && RANK[live.kind] > RANK[state]) state = live.kind;
  return { clock, due: dueMs, seconds: (dueMs - now) / 1000, state };
}

/** A short span, rounded down so it never overstates the time left: 45s, 12m, 3h 5m, 2d 4h. */
export function span(seconds) {
  const s = Math.floor(Math.abs(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

/** "首响 剩 12m" / "1st reply overdue 3m". */
export function slaText(sla) {
  const clock = t(`ws.sla.${sla.clock}`);
  const d = span(sla.seconds);
  return sla.seconds > 0 ? t("ws.sla.in", { clock, d }) : t("ws.sla.over", { clock, d });
}

/** The name to show for a customer: profile name, the name the channel gave, or "访客 ab12cd". */
export function customerName(...candidates) {
  for (const c of candidates) if (typeof c === "string" && c.trim()) return c.trim();
  return t("ws.customer.anonymous");
}

/** A visitor label from an external id when no name is known ("访客 3f9a1c"). */
export function visitorLabel(externalId) {
  const id = String(externalId || "").replace(/^v_/, "");
  return id ? `${t("ws.customer.anonymous")} ${id.slice(0, 6)}` : t("ws.customer.anonymous");
}

export function priorityLabel(p) {
  return `P${Number.isInteger(p) ? p : 2}`;
}

export function channelLabel(channel) {
  const key = `ws.channel.${channel}`;
  const text = t(key);
  return text === key ? String(channel || "") : text;
}

export function statusLabel(status) {
  const key = `ws.status.${status}`;
  const text = t(key);
  return text === key ? String(status || "") : text;
}

/** 10:32 today, 03-14 10:32 on other days (viewer's zone). */
export function clockTime(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "";
  const pad = (n) => String(n).padStart(2, "0");
  const hm = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  return d.toDateString() === new Date().toDateString() ? hm : `${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${hm}`;
}

/** A full local timestamp for tooltips. */
export function fullTime(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "";
  return d.toLocaleString(lang() === "en" ? "en-GB" : "zh-CN");
}

/** Collapse a function's calls within `ms` into one (trailing). */
export function debounce(fn, ms) {
  let timer = null;
  const run = (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => { timer = null; fn(...args); }, ms);
  };
  run.cancel = () => clearTimeout(timer);
  return run;
}

/** Run an async function at most once at a time; a call during a run schedules exactly one more. */
export function serial(fn) {
  let running = null;
  let again = false;
  const run = async () => {
    if (running) { again = true; return running; }
    running = (async () => {
      try {
        do { again = false; await fn(); } while (again);
      } finally {
        running = null;
      }
    })();
    return running;
  };
  return run;
}
