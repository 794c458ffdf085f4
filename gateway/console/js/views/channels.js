// #/admin/channels: which channels are configured and whether their intake works (GET /api/channels).
// One card per channel (configuration by variable NAME only, where messages come in, live health,
// last-24h counts) and a pipeline panel; refreshed by hand and every 30 s while the page is open.
// Error texts come from platforms and exceptions: they are rendered as text nodes like everything else.

import { api } from "../api.js";
import { h, mount, toast, when } from "../dom.js";
import { lang, t } from "../i18n.js";
import "./channels_strings.js"; // registers the "chan." strings

const REFRESH_MS = 30_000;

/** The URL to paste into a platform's console: this console's own origin plus the webhook path. */
export function fullUrl(path) {
  return `${location.origin}${path}`;
}

const num = (n) => Number(n || 0).toLocaleString(lang() === "en" ? "en-GB" : "zh-CN");

function badge(state) {
  const cls = { ok: "ok", warning: "warning", error: "breached" }[state] || "chan-unknown";
  return h("span", { class: ["badge", cls], dataset: { state: state || "none" } }, t(`chan.state.${state || "none"}`));
}

async function copy(text) {
  try {
    await navigator.clipboard.writeText(text);
    toast(t("chan.copied"));
  } catch {
    toast(t("chan.copy.failed"), "error");
  }
}

function inbound(row) {
  const { kind, path } = row.inbound;
  const ch = row.channel;
  if (!path) return h("div", { class: "chan-inbound", dataset: { kind } }, h("span", { class: "muted" }, t(`chan.kind.${kind}`)));
  const url = fullUrl(path);
  return h("div", { class: "chan-inbound", dataset: { kind } },
    h("div", { class: "muted" }, t(`chan.kind.${kind}`)),
    h("div", { class: "chan-url-row" },
      h("code", { class: "chan-url", id: `chan-url-${ch}`, dataset: { testid: `chan-url-${ch}` } }, url),
      h("button", { type: "button", class: "link", title: t("chan.copy"), on: { click: () => copy(url) } }, t("chan.copy"))),
    kind === "webhook" ? h("p", { class: "chan-hint muted" }, t(`chan.hint.${ch}`)) : null);
}

function facts(row) {
  const f = (row.health && row.health.facts) || {};
  const items = [];
  const yes = (v) => t(v ? "chan.yes" : "chan.no");
  if ("consumer_active" in f) items.push([t("chan.fact.consumer"), yes(f.consumer_active)]);
  if ("poller_active" in f) items.push([t("chan.fact.poller"), yes(f.poller_active)]);
  if ("cursor" in f) items.push([t("chan.fact.cursor"), yes(f.cursor)]);
  if ("last_uid" in f) items.push([t("chan.fact.last_uid"), f.last_uid ?? "—"]);
  if ("offset" in f) items.push([t("chan.fact.offset"), f.offset ?? t("chan.fact.offset.none")]);
  if ("pending_callbacks" in f) items.push([t("chan.fact.pending_callbacks"), num(f.pending_callbacks)]);
  const list = items.length
    ? h("dl", { class: "chan-facts" }, items.map(([k, v]) => [h("dt", {}, k), h("dd", {}, String(v))]))
    : null;
  const accounts = Array.isArray(f.accounts)
    ? h("div", { class: "chan-accounts" },
      h("div", { class: "muted" }, t("chan.fact.accounts", { n: f.accounts.length })),
      f.accounts.map((a) => h("span", { class: ["chan-chip", a.cursor ? "chan-chip-ok" : "chan-chip-warn"] },
        a.open_kfid, " · ", t(a.cursor ? "chan.fact.has_cursor" : "chan.fact.no_cursor"))))
    : null;
  return [list, accounts];
}

function health(row) {
  if (!row.configured) return null;
  const hl = row.health;
  const ch = row.channel;
  if (!hl) {
    return h("div", { class: "chan-health", dataset: { testid: `chan-health-${ch}` } },
      badge(null), " ", h("span", { class: "muted" }, t("chan.health.pushed")));
  }
  return h("div", { class: "chan-health", dataset: { testid: `chan-health-${ch}`, state: hl.state || "none" } },
    h("div", { class: "row" },
      badge(hl.state),
      hl.permanent ? h("span", { class: "badge breached" }, t("chan.permanent")) : null,
      h("span", { class: "grow" }),
      hl.updated ? h("small", { title: hl.updated }, t("chan.updated", { when: when(hl.updated, lang()) })) : null),
    hl.error ? h("pre", { class: "chan-error", id: `chan-error-${ch}`, dataset: { testid: `chan-error-${ch}` } }, hl.error) : null,
    hl.note ? h("p", { class: "muted chan-note" }, t(`chan.note.${hl.note}`)) : null,
    hl.state === null && !hl.note ? h("p", { class: "muted chan-note" }, t("chan.health.nosignal")) : null,
    facts(row));
}

function settingsList(row) {
  if (row.configured) {
    return h("ul", { class: "chan-settings" }, row.settings.map((s) =>
      h("li", { class: s.set ? "chan-set" : "chan-missing", dataset: { name: s.name } },
        h("code", {}, s.name), ": ", t(s.set ? "chan.set" : (s.required ? "chan.missing" : "chan.unset.optional")))));
  }
  const required = row.settings.filter((s) => s.required);
  const optional = row.settings.filter((s) => !s.required);
  return h("div", { class: "chan-todo" },
    h("p", {}, t("chan.todo")),
    h("ul", { class: "chan-settings" }, required.map((s) =>
      h("li", { class: "chan-missing", dataset: { name: s.name } }, h("code", {}, s.name), s.set ? ` (${t("chan.set")})` : ""))),
    optional.length ? h("p", { class: "muted" }, t("chan.optional"), " ",
      optional.map((s, i) => [i ? ", " : "", h("code", { dataset: { name: s.name } }, s.name)])) : null,
    h("p", { class: "muted chan-hint" }, t("chan.todo.restart")));
}

function card(row) {
  const ch = row.channel;
  const counts = row.messages_24h || { in: 0, out: 0 };
  return h("section", { class: ["panel", "chan-card", !row.configured && "chan-off",
    row.health && row.health.state === "error" && "chan-failing"],
  id: `chan-card-${ch}`, dataset: { channel: ch, configured: String(row.configured) } },
  h("div", { class: "row chan-head" },
    h("h2", { class: "grow" }, t(`chan.name.${ch}`)),
    h("span", { class: ["badge", row.configured ? "ok" : "chan-unknown"], dataset: { testid: `chan-configured-${ch}` } },
      t(row.configured ? "chan.configured" : "chan.unconfigured"))),
  row.mode && row.configured ? h("div", { class: "muted" }, t("chan.mode"), ": ", t(`chan.mode.${row.mode}`)) : null,
  inbound(row),
  health(row),
  h("div", { class: "chan-counts", dataset: { testid: `chan-count-${ch}` } },
    h("span", { class: "muted" }, t("chan.count24")),
    h("span", { dataset: { dir: "in" } }, t("chan.count.in", { n: num(counts.in) })),
    h("span", { dataset: { dir: "out" } }, t("chan.count.out", { n: num(counts.out) }))),
  settingsList(row));
}

function stat(id, label, value, warn) {
  return h("div", { class: ["chan-stat", warn && "chan-stat-warn"], id, dataset: { value: String(value) } },
    h("div", { class: "chan-stat-value" }, num(value)), h("div", { class: "chan-stat-label" }, label));
}

function pipeline(p) {
  const inb = p.inbound;
  const out = p.outbound;
  const groups = [...inb.groups.map((g) => ["in", g]), ...out.groups.map((g) => ["out", g])];
  return h("section", { class: "panel chan-pipeline", id: "chan-pipeline" },
    h("h2", {}, t("chan.pipeline")),
    h("div", { class: "chan-stats" },
      stat("chan-in-backlog", t("chan.in.backlog"), inb.backlog, inb.backlog > 0),
      stat("chan-in-pending", t("chan.in.pending"), inb.pending, false),
      stat("chan-out-backlog", t("chan.out.backlog"), out.backlog, out.backlog > 0),
      stat("chan-out-pending", t("chan.out.pending"), out.pending, false),
      stat("chan-dead", t("chan.dead"), inb.dead_letters + out.dead_letters, inb.dead_letters + out.dead_letters > 0),
      stat("chan-retries", t("chan.retries"), out.delayed_retries, out.delayed_retries > 0)),
    groups.length ? h("p", { class: "muted chan-groups" }, t("chan.groups"), " ",
      groups.map(([stream, g], i) => [i ? " · " : "", t(`chan.stream.${stream}`), " ", h("code", {}, g.name), " ",
        t("chan.group.figures", { pending: num(g.pending), consumers: num(g.consumers) })])) : null,
    h("p", { class: "muted chan-hint" }, t("chan.dead.hint", { inbound: num(inb.dead_letters), outbound: num(out.dead_letters) })));
}

export async function render(root) {
  let alive = true;
  let busy = false;
  const stamp = h("small", { id: "chan-stamp", class: "muted" });
  const problem = h("p", { class: "error", id: "chan-problem", role: "alert" });
  const body = h("div", { id: "chan-body" }, h("p", { class: "empty" }, t("common.loading")));
  const button = h("button", { type: "button", id: "chan-refresh", on: { click: () => load() } }, t("common.refresh"));

  async function load() {
    if (busy || !alive) return;
    busy = true;
    button.disabled = true;
    try {
      const data = await api("GET", "/api/channels");
      if (!alive) return;
      problem.textContent = "";
      const rows = data.channels;
      const configured = rows.filter((r) => r.configured).length;
      mount(body,
        pipeline(data.pipeline),
        h("p", { class: "muted chan-summary" }, t("chan.summary", { configured, total: rows.length })),
        // configured channels first (the ones to watch), each group in the server's order
        h("div", { class: "chan-grid", id: "chan-cards" },
          [...rows.filter((r) => r.configured), ...rows.filter((r) => !r.configured)].map(card)));
      body.dataset.generated = data.generated_at;
      stamp.textContent = t("chan.stamp", { time: new Date(data.generated_at).toLocaleTimeString(lang() === "en" ? "en-GB" : "zh-CN") });
    } catch (err) {
      if (alive) problem.textContent = `${t("common.error")}: ${err.message}`;
    } finally {
      busy = false;
      button.disabled = false;
    }
  }

  mount(root,
    h("div", { class: "row chan-top" },
      h("h1", { class: "grow" }, t("chan.title")), stamp, h("small", { class: "muted" }, t("chan.auto")), button),
    problem, body);
  await load();
  const timer = setInterval(load, REFRESH_MS);
  return () => { alive = false; clearInterval(timer); };
}
