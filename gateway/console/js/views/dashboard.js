// Supervisor dashboard: today's / the last 7 or 30 days' service figures from GET /api/metrics (see
// ticketing/metrics.py for every definition), the knowledge gaps, per-agent figures and the live
// supervisor alert queue. Refreshes every 30 s while the tab is visible; alerts refresh on live events.

import { ApiFailure, api, events } from "../api.js";
import { barChart, donut, legend, lineChart } from "../charts.js";
import { duration, h, mount, when } from "../dom.js";
import { lang, t } from "../i18n.js";
import "./dashboard_strings.js";

const PERIODS = ["today", "7d", "30d"];
const REFRESH_MS = 30_000;
const ALERT_DEBOUNCE_MS = 1_000;
const ALERT_EVENTS = ["sla_warning", "sla_breached", "escalated", "delivery_failed"];
const PRIORITIES = ["P0", "P1", "P2", "P3"];
const DRAFT_KEY = "huiliu.kb.draftQuestion";

// Kept across re-renders (leaving and coming back keeps the chosen period and table order).
let period = "today";
let agentSort = { key: "handled", dir: -1 };

// --- formatting -----------------------------------------------------------------------------------

const missing = (v) => v === null || v === undefined || Number.isNaN(v);
/** 0.6667 → "66.7%", 1 → "100%"; null → "—" (no data is not 0 %). */
export const pct = (r) => (missing(r) ? "—" : `${Math.round(r * 1000) / 10}%`);
const secs = (s) => (missing(s) ? "—" : duration(s));
const score = (v) => (missing(v) ? "—" : v.toFixed(1));
const channelName = (ch) => (t(`dash.channel.${ch}`) === `dash.channel.${ch}` ? ch : t(`dash.channel.${ch}`));
const clockName = (c) => t(`dash.clock.${c}`);

// --- data -------------------------------------------------------------------------------------------

async function load(which) {
  const base = `/api/metrics?period=${encodeURIComponent(which)}`;
  const trendQuery = which === "today" ? `${base}&group=hour` : `${base}&group=day`;
  const [report, trend, staff] = await Promise.all([
    api("GET", `${base}&group=agent`),
    api("GET", trendQuery).then((r) => ({ report: r, mode: which === "today" ? "hourly" : "daily" }))
      .catch((err) => {
        // An older server without hourly groups: show the week instead of nothing.
        if (which === "today" && err instanceof ApiFailure && err.status === 400) {
          return api("GET", "/api/metrics?period=7d&group=day").then((r) => ({ report: r, mode: "fallback" }));
        }
        throw err;
      }),
    api("GET", "/api/agents").then((r) => r.agents).catch(() => []),
  ]);
  return { report, trend, staff };
}

// --- KPI cards --------------------------------------------------------------------------------------

function kpi(name, value, raw, sub) {
  const tip = t(`dash.kpi.${name}.tip`);
  return h("div", { class: "panel kpi", id: `dash-kpi-${name}`, title: tip },
    h("div", { class: "kpi-label" }, t(`dash.kpi.${name}`),
      h("span", { class: "kpi-info", "aria-label": tip, title: tip }, "ⓘ")),
    h("div", { class: "kpi-value", dataset: { value: missing(raw) ? "" : String(raw) } }, value),
    h("div", { class: "kpi-sub" }, sub));
}

function kpis(report) {
  const o = report.overall;
  const d = report.deflection;
  const b = report.backlog;
  const messages = Object.values(report.volume_by_channel).reduce((n, v) => n + v.inbound_messages, 0);
  const f = o.first_response;
  const c = o.csat;
  const sla = o.sla;
  return h("div", { class: "kpis" },
    kpi("volume", String(d.conversations), d.conversations,
      t("dash.kpi.volume.sub", { messages, tickets: o.tickets_created })),
    kpi("deflection", pct(d.rate), d.rate, t("dash.kpi.deflection.sub", { deflected: d.deflected, total: d.conversations })),
    kpi("frt", secs(f.median), f.median, t("dash.kpi.frt.sub", { mean: secs(f.mean), p90: secs(f.p90),
      awaiting: f.awaiting })),
    kpi("aht", secs(o.handle_time.mean), o.handle_time.mean, t("dash.kpi.aht.sub", { count: o.handle_time.count })),
    kpi("fcr", pct(o.fcr.rate), o.fcr.rate, t("dash.kpi.fcr.sub", { first: o.fcr.first_contact, resolved: o.fcr.resolved })),
    kpi("csat", score(c.mean), c.mean, t("dash.kpi.csat.sub", { count: c.count, satisfied: pct(c.satisfied_share),
      rate: pct(c.response_rate) })),
    kpi("sla", pct(sla.rate), sla.rate, t("dash.kpi.sla.sub", { met: sla.met, judged: sla.judged,
      breaches: sla.breaches_total })),
    kpi("backlog", String(b.total), b.total, t("dash.kpi.backlog.sub", { waiting: b.waiting, overdue: b.overdue })));
}

// --- charts -----------------------------------------------------------------------------------------

function chartPanel(id, title, note, ...body) {
  return h("section", { class: "panel chart-panel", id },
    h("div", { class: "panel-head" }, h("h2", {}, title), note ? h("span", { class: "muted" }, note) : null),
    ...body);
}

function trendChart(trend) {
  const groups = trend.report.groups || {};
  const generated = new Date(trend.report.generated_at);
  // Hours after now hold nothing yet: leave them off rather than draw a cliff to zero.
  const keys = Object.keys(groups).filter((k) => trend.mode !== "hourly" || new Date(k) <= generated);
  const labels = keys.map((k) => (trend.mode === "hourly" ? k.slice(11, 16) : k.slice(5, 10)));
  const series = [
    { name: t("dash.series.volume"), cls: "s-volume", area: true, values: keys.map((k) => groups[k].deflection.conversations) },
    { name: t("dash.series.escalated"), cls: "s-escalated", values: keys.map((k) => groups[k].deflection.escalated) },
    { name: t("dash.series.rate"), cls: "s-rate", axis: "right", values: keys.map((k) => groups[k].deflection.rate) },
  ];
  return chartPanel("dash-chart-trend", t("dash.chart.trend"), t(`dash.chart.trend.${trend.mode}`),
    lineChart({ labels, keys, series, label: t("dash.chart.trend"), width: 640, height: 230, rightFormat: pct }),
    legend(series));
}

function channelChart(report) {
  const by = report.deflection.by_channel || {};
  const channels = Object.keys({ ...by, ...report.volume_by_channel }).sort();
  const deflected = t("dash.series.deflected");
  const escalated = t("dash.series.escalated");
  const items = channels.map((ch) => {
    const d = by[ch] || { conversations: 0, deflected: 0, escalated: 0 };
    const name = channelName(ch);
    return { key: ch, label: name, value: d.conversations,
      title: `${name}: ${d.conversations}（${deflected} ${d.deflected} · ${escalated} ${d.escalated}）`,
      parts: [{ value: d.deflected, cls: "s-deflected", title: `${name} · ${deflected}: ${d.deflected}` },
        { value: d.escalated, cls: "s-escalated", title: `${name} · ${escalated}: ${d.escalated}` }] };
  });
  return chartPanel("dash-chart-channel", t("dash.chart.channel"), null,
    items.length ? barChart({ items, label: t("dash.chart.channel"), width: 340, height: 230 })
      : h("p", { class: "empty" }, t("dash.nodata")),
    legend([{ name: deflected, cls: "s-deflected" }, { name: escalated, cls: "s-escalated" }]));
}

function backlogChart(report) {
  const grid = report.backlog.by_priority_status || {};
  const items = PRIORITIES.map((p) => {
    const row = grid[p] || {};
    const total = report.backlog.by_priority[p] ?? 0;
    return { key: p, label: p, value: total, cls: p.toLowerCase(), title: t("dash.backlog.tip", { priority: p, total,
      new: row.new ?? 0, assigned: row.assigned ?? 0, open: row.open ?? 0, pending: row.pending_customer ?? 0 }) };
  });
  return chartPanel("dash-chart-backlog", t("dash.chart.backlog"), null,
    barChart({ items, label: t("dash.chart.backlog"), width: 340, height: 230 }));
}

function slaChart(report) {
  const sla = report.overall.sla;
  const tone = missing(sla.rate) ? "" : sla.rate >= 0.9 ? "good" : sla.rate >= 0.75 ? "warn" : "bad";
  return chartPanel("dash-chart-sla", t("dash.chart.sla"), null,
    h("div", { class: "donut-box" },
      donut({ value: sla.rate, label: t("dash.chart.sla"), cls: tone, format: pct, size: 150,
        caption: t("dash.sla.caption", { met: sla.met, judged: sla.judged }) })),
    h("p", { class: "muted small" }, t("dash.sla.breaches", { first: sla.breaches.first_response,
      resolution: sla.breaches.resolution, next: sla.breaches.next_response })));
}

function csatChart(report) {
  const c = report.overall.csat;
  const items = ["1", "2", "3", "4", "5"].map((n) => ({ key: n, label: t("dash.csat.star", { n }),
    value: c.distribution[n] ?? 0, cls: `c${n}` }));
  return chartPanel("dash-chart-csat", t("dash.chart.csat"),
    t("dash.kpi.csat.sub", { count: c.count, satisfied: pct(c.satisfied_share), rate: pct(c.response_rate) }),
    barChart({ items, label: t("dash.chart.csat"), width: 340, height: 200 }));
}

// --- tables -----------------------------------------------------------------------------------------

function gapsTable(report, ctx) {
  const admin = ctx.me.role === "admin";
  const rows = report.top_unanswered.map((q) => h("tr", { dataset: { question: q.question } },
    h("td", { class: "gap-question" }, q.question),
    h("td", { class: "num" }, String(q.count)),
    h("td", {}, h("a", { href: `#/workspace/${q.latest_ticket_id}` }, `#${q.latest_ticket_id}`),
      h("span", { class: "muted" }, " ", when(q.latest_at, lang()))),
    admin ? h("td", {}, h("button", { type: "button", class: "link gap-write", on: { click: () => {
      sessionStorage.setItem(DRAFT_KEY, q.question);
      ctx.navigate("#/kb");
    } } }, t("dash.gaps.write"))) : null));
  return h("section", { class: "panel", id: "dash-gaps" },
    h("div", { class: "panel-head" }, h("h2", {}, t("dash.gaps")), h("span", { class: "muted" }, t("dash.gaps.hint"))),
    rows.length
      ? h("table", { class: "grid" }, h("thead", {}, h("tr", {},
        h("th", {}, t("dash.gaps.question")), h("th", { class: "num" }, t("dash.gaps.count")),
        h("th", {}, t("dash.gaps.latest")), admin ? h("th", {}, t("dash.gaps.action")) : null)),
      h("tbody", {}, rows))
      : h("p", { class: "empty" }, t("dash.gaps.empty")));
}

const AGENT_COLUMNS = [
  // key, label, numeric, sort value, cell
  ["agent", "dash.agents.agent", false, (r) => r.name.toLowerCase(),
    (r) => [r.name, r.name !== r.id ? h("span", { class: "muted" }, ` ${r.id}`) : null]],
  ["presence", "dash.agents.presence", false, (r) => ["online", "away", "offline"].indexOf(r.presence),
    (r) => (r.presence ? h("span", { class: ["badge", r.presence] }, t(`dash.presence.${r.presence}`)) : "—")],
  ["load", "dash.agents.load", true, (r) => r.load, (r) => (r.max ? `${r.load} / ${r.max}` : String(r.load))],
  ["handled", "dash.agents.handled", true, (r) => r.handled, (r) => String(r.handled)],
  ["frt", "dash.agents.frt", true, (r) => r.frt, (r) => secs(r.frt)],
  ["aht", "dash.agents.aht", true, (r) => r.aht, (r) => secs(r.aht)],
  ["csat", "dash.agents.csat", true, (r) => r.csat,
    (r) => (missing(r.csat) ? "—" : `${score(r.csat)} (${r.csatCount})`)],
  ["sla", "dash.agents.sla", true, (r) => r.sla, (r) => pct(r.sla)],
];

function agentRows(report, staff) {
  const info = new Map(staff.map((a) => [a.id, a]));
  return Object.entries(report.groups || {}).filter(([id]) => id !== "unassigned").map(([id, g]) => {
    const a = info.get(id);
    return { id, name: (g.agent && g.agent.name) || (a && a.name) || id, presence: a ? a.presence : null,
      load: report.backlog.by_assignee[id] ?? 0, max: a ? a.max_concurrent : null, handled: g.fcr.resolved,
      frt: g.first_response.median, aht: g.handle_time.mean, csat: g.csat.mean, csatCount: g.csat.count,
      sla: g.sla.rate };
  });
}

function sortRows(rows) {
  const column = AGENT_COLUMNS.find((c) => c[0] === agentSort.key) || AGENT_COLUMNS[3];
  const value = column[3];
  return [...rows].sort((a, b) => {
    const va = value(a);
    const vb = value(b);
    // No data sorts last whichever the direction: an agent without ratings is not the worst-rated.
    if (missing(va) || va === -1) return missing(vb) || vb === -1 ? a.id.localeCompare(b.id) : 1;
    if (missing(vb) || vb === -1) return -1;
    if (va < vb) return -agentSort.dir;
    if (va > vb) return agentSort.dir;
    return a.id.localeCompare(b.id);
  });
}

function agentsTable(rows) {
  const box = h("section", { class: "panel", id: "dash-agents" });
  const draw = () => {
    const head = AGENT_COLUMNS.map(([key, label, numeric]) => {
      const active = agentSort.key === key;
      return h("th", { class: [numeric && "num", "sortable", active && "sorted"],
        "aria-sort": active ? (agentSort.dir > 0 ? "ascending" : "descending") : "none" },
      h("button", { type: "button", class: "link sort", dataset: { sort: key }, on: { click: () => {
        agentSort = { key, dir: active ? -agentSort.dir : numeric ? -1 : 1 };
        draw();
      } } }, t(label), active ? (agentSort.dir > 0 ? " ▲" : " ▼") : ""));
    });
    const body = sortRows(rows).map((r) => h("tr", { dataset: { agent: r.id } },
      AGENT_COLUMNS.map(([key, , numeric, , cell]) => h("td", { class: [numeric && "num", `col-${key}`] }, cell(r)))));
    mount(box,
      h("div", { class: "panel-head" }, h("h2", {}, t("dash.agents")), h("span", { class: "muted" }, t("dash.agents.sort"))),
      rows.length ? h("table", { class: "grid" }, h("thead", {}, h("tr", {}, head)), h("tbody", {}, body))
        : h("p", { class: "empty" }, t("dash.agents.empty")));
  };
  draw();
  return box;
}

// --- alerts -----------------------------------------------------------------------------------------

function alertItem(a) {
  const ms = Number(String(a.id).split("-")[0]);
  const at = a.at || (Number.isFinite(ms) ? new Date(ms).toISOString() : "");
  const kind = a.kind || "";
  const tone = kind === "sla_warning" ? "warning" : "breached";
  const label = t(`dash.alert.${kind}`) === `dash.alert.${kind}` ? kind : t(`dash.alert.${kind}`);
  const facts = [
    a.ticket_id ? h("a", { href: `#/workspace/${a.ticket_id}` }, t("dash.alerts.ticket", { id: a.ticket_id })) : null,
    a.priority !== undefined && a.priority !== "" ? h("span", { class: ["badge", `p${a.priority}`] }, `P${a.priority}`) : null,
    a.clock ? h("span", {}, clockName(a.clock)) : null,
    a.due ? h("span", { class: "muted" }, t("dash.alerts.due", { time: when(a.due, lang()) })) : null,
    a.channel ? h("span", {}, channelName(a.channel)) : null,
    h("span", { class: "muted" }, a.assignee_id ? t("dash.alerts.assignee", { name: a.assignee_id })
      : t("dash.alerts.unassigned")),
  ];
  return h("li", { class: ["alert", `sla-${tone}`], dataset: { kind, id: a.id } },
    h("div", { class: "row" }, h("span", { class: ["badge", tone] }, label), h("span", { class: "grow" }),
      h("span", { class: "muted" }, when(at, lang()))),
    h("div", { class: "row alert-facts" }, facts),
    a.error ? h("div", { class: "error small" }, a.error) : null);
}

// --- the view ---------------------------------------------------------------------------------------

export function render(root, ctx) {
  let disposed = false;
  let seq = 0;
  let lastLoaded = 0;
  let alertTimer = null;

  const status = h("span", { class: "muted", id: "dash-updated" }, t("dash.loading"));
  const periodButtons = PERIODS.map((p) => h("button", { type: "button", id: `dash-period-${p}`, dataset: { period: p },
    "aria-pressed": String(p === period), on: { click: () => choose(p) } }, t(`dash.period.${p}`)));
  const body = h("div", { class: "dash-body" }, h("p", { class: "empty" }, t("dash.loading")));
  const alertList = h("ul", { class: "alerts", id: "dash-alerts-list" });
  const liveBadge = h("span", { class: "badge", id: "dash-live" }, "…");
  const alertsPanel = h("section", { class: "panel", id: "dash-alerts" },
    h("div", { class: "panel-head" }, h("h2", {}, t("dash.alerts")), liveBadge), alertList);
  const page = h("div", { class: "dash", dataset: { period, state: "loading" } },
    h("div", { class: "dash-head" },
      h("h1", {}, t("dash.title")),
      h("div", { class: "dash-periods", role: "group", "aria-label": t("dash.period") }, periodButtons),
      h("span", { class: "grow" }),
      status,
      h("span", { class: "muted small" }, t("dash.auto")),
      h("button", { type: "button", id: "dash-refresh", on: { click: () => refresh() } }, t("common.refresh"))),
    body);
  mount(root, page);

  function choose(p) {
    if (p === period && page.dataset.state !== "error") return;
    period = p;
    for (const b of periodButtons) b.setAttribute("aria-pressed", String(b.dataset.period === p));
    refresh();
  }

  async function refresh() {
    const mine = ++seq;
    const which = period;
    page.dataset.state = "loading";
    page.dataset.period = which;
    try {
      const data = await load(which);
      if (disposed || mine !== seq) return;
      draw(data);
      lastLoaded = Date.now();
      status.textContent = t("dash.updated", { time: new Date().toLocaleTimeString(lang() === "en" ? "en-GB" : "zh-CN") });
      page.dataset.state = "ready";
    } catch (err) {
      if (disposed || mine !== seq) return;
      page.dataset.state = "error";
      mount(body, h("p", { class: "error", id: "dash-error" }, t("dash.failed", { message: err.message })));
    }
  }

  function draw({ report, trend, staff }) {
    mount(body,
      kpis(report),
      h("div", { class: "dash-grid charts" }, trendChart(trend), channelChart(report), backlogChart(report)),
      h("div", { class: "dash-grid details" }, slaChart(report), csatChart(report), gapsTable(report, ctx)),
      h("div", { class: "dash-grid people" }, agentsTable(agentRows(report, staff)), alertsPanel));
  }

  async function refreshAlerts() {
    try {
      const { alerts } = await api("GET", "/api/supervisor/alerts");
      if (disposed) return;
      mount(alertList, alerts.length ? alerts.slice(0, 30).map(alertItem) : h("li", { class: "empty" }, t("dash.alerts.empty")));
    } catch (err) {
      if (!disposed) mount(alertList, h("li", { class: "error" }, err.message));
    }
  }

  function alertSoon() {
    clearTimeout(alertTimer);
    alertTimer = setTimeout(refreshAlerts, ALERT_DEBOUNCE_MS);
  }

  const handlers = { status: (s) => {
    liveBadge.textContent = s === "open" ? t("dash.alerts.live") : t("dash.alerts.offline");
    liveBadge.className = `badge ${s === "open" ? "online" : "away"}`;
  } };
  for (const kind of ALERT_EVENTS) handlers[kind] = alertSoon;
  const closeEvents = events(handlers);

  // Poll only while someone can see the page; catch up at once when the tab comes back.
  const timer = setInterval(() => { if (!document.hidden) { refresh(); refreshAlerts(); } }, REFRESH_MS);
  const onVisible = () => {
    if (!document.hidden && Date.now() - lastLoaded > REFRESH_MS) { refresh(); refreshAlerts(); }
  };
  document.addEventListener("visibilitychange", onVisible);

  refresh();
  refreshAlerts();

  return () => {
    disposed = true;
    clearInterval(timer);
    clearTimeout(alertTimer);
    document.removeEventListener("visibilitychange", onVisible);
    closeEvents();
  };
}
