// Left column of the workspace: the agent's presence, the live connection, and the ticket lists
// (mine / my skills' queue / everything for supervisors) in the order the API returns them
// (priority, then the SLA due soonest).

import { get, post } from "../api.js";
import { h, mount, toast } from "../dom.js";
import { t } from "../i18n.js";
import { channelLabel, clockTime, customerName, priorityLabel, serial, slaOf, slaText, statusLabel,
  visitorLabel } from "./workspace_util.js";

const TABS = [
  // [tab, API view, label key]; "all" shows every active ticket (resolved ones live in the dashboard)
  ["mine", "mine", "ws.tab.mine"],
  ["queue", "queue", "ws.tab.queue"],
  ["all", "active", "ws.tab.all"],
];
const PRESENCE = ["online", "away", "offline"];
const HEARTBEAT_MS = 20_000; // presence keys live 60 s on the server: beat well inside that

/** The presence picker: shows GET /api/me's state, sets it with POST /api/me/presence and keeps it
 * alive with heartbeats while online or away. Returns {el, stop}. */
export function createPresence(initial) {
  let status = PRESENCE.includes(initial) ? initial : "offline";
  const dot = h("span", { class: ["ws-dot", `ws-dot-${status}`], "aria-hidden": "true" });
  const select = h("select", { id: "ws-presence", "aria-label": t("ws.presence.label"),
    on: { change: () => set(select.value) } },
  PRESENCE.map((p) => h("option", { value: p, selected: p === status }, t(`ws.presence.${p}`))));
  async function set(next) {
    const before = status;
    try {
      await post("/api/me/presence", { status: next });
      status = next;
      toast(t("ws.presence.changed", { status: t(`ws.presence.${next}`) }));
    } catch (err) {
      status = before;
      toast(err.message, "error");
    }
    select.value = status;
    dot.className = `ws-dot ws-dot-${status}`;
    select.dataset.status = status;
  }
  select.dataset.status = status;
  const timer = setInterval(() => {
    if (status !== "offline") post("/api/me/presence", { status }).catch(() => { /* next beat retries */ });
  }, HEARTBEAT_MS);
  const el = h("label", { class: "ws-presence" }, h("span", { class: "ws-presence-title" }, t("ws.presence.label")),
    h("span", { class: "ws-presence-pick" }, dot, select));
  return { el, stop: () => clearInterval(timer) };
}

/**
 * The ticket lists. memory: per-tab state kept across re-renders ({tab}); onOpen(ticketId) opens one.
 * Returns {el, refresh(), draw(), select(id), showTab(tab)}.
 */
export function createQueue({ me, memory, onOpen }) {
  const supervisor = me.role === "supervisor" || me.role === "admin";
  const tabs = TABS.filter(([tab]) => tab !== "all" || supervisor);
  if (!tabs.some(([tab]) => tab === memory.tab)) memory.tab = "mine";
  const lists = {};
  let loaded = false;
  let selected = null;

  const counts = {};
  const tabBar = h("div", { class: "ws-tabs", role: "tablist" }, tabs.map(([tab, , label]) => {
    counts[tab] = h("span", { class: "ws-count" });
    return h("button", { type: "button", role: "tab", id: `ws-tab-${tab}`, class: "ws-tab", dataset: { tab },
      on: { click: () => { memory.tab = tab; draw(); } } }, t(label), counts[tab]);
  }));
  const list = h("div", { class: "ws-list", id: "ws-list", role: "listbox", "aria-label": t("ws.queue.title") });

  const refresh = serial(async () => {
    const results = await Promise.all(tabs.map(([, view]) => get(`/api/tickets?view=${view}&limit=200`)));
    tabs.forEach(([tab], i) => { lists[tab] = results[i].tickets || []; });
    loaded = true;
    draw();
  });

  function draw() {
    for (const [tab] of tabs) {
      const button = tabBar.querySelector(`[data-tab="${tab}"]`);
      button.classList.toggle("active", tab === memory.tab);
      button.setAttribute("aria-selected", String(tab === memory.tab));
      counts[tab].textContent = loaded ? String((lists[tab] || []).length) : "";
    }
    const rows = lists[memory.tab] || [];
    if (!loaded) { mount(list, h("p", { class: "empty" }, t("common.loading"))); return; }
    if (!rows.length) { mount(list, h("p", { class: "empty ws-empty-list" }, t(`ws.queue.empty.${memory.tab}`))); return; }
    mount(list, rows.map(card));
  }

  function card(row) {
    const sla = slaOf(row);
    const name = customerName(row.profile_name, row.customer_name, visitorLabel(row.customer_external_id));
    const last = row.last_message;
    const open = () => onOpen(row.id);
    return h("div", {
      class: ["ws-card", sla && sla.state !== "ok" && `sla-${sla.state}`, row.id === selected && "selected"],
      id: `ws-ticket-${row.id}`, dataset: { ticketId: String(row.id), status: row.status }, role: "option",
      tabindex: "0", "aria-selected": String(row.id === selected),
      on: { click: open, keydown: (ev) => { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); open(); } } },
    },
    h("div", { class: "ws-card-top" },
      h("span", { class: "ws-card-name", title: name }, name),
      row.tier === "vip" && h("span", { class: "badge ws-vip" }, "VIP"),
      h("span", { class: "grow" }),
      h("span", { class: `badge p${row.priority}`, title: t("ws.priority") }, priorityLabel(row.priority))),
    h("div", { class: "ws-card-preview" },
      last ? [h("span", { class: "ws-card-who" }, t("ws.card.who", { who: t(`ws.author.${last.author}`) })),
        last.text || t("ws.msg.attachment")]
        : row.summary || ""),
    h("div", { class: "ws-card-meta" },
      h("span", { class: "ws-chan", dataset: { channel: row.channel || "" } }, channelLabel(row.channel)),
      h("span", { class: ["badge", `ws-status-${row.status}`] }, statusLabel(row.status)),
      sla && h("span", { class: ["badge", sla.state], title: new Date(sla.due).toLocaleString() }, slaText(sla)),
      memory.tab === "all" && row.assignee_id && h("span", { class: "ws-card-assignee" }, row.assignee_id),
      h("span", { class: "grow" }),
      h("span", { class: "ws-card-time" }, clockTime(last ? last.created_at : row.updated_at))));
  }

  function select(id) {
    selected = id;
    for (const el of list.querySelectorAll(".ws-card")) {
      const on = Number(el.dataset.ticketId) === id;
      el.classList.toggle("selected", on);
      el.setAttribute("aria-selected", String(on));
    }
  }

  const el = h("div", { class: "ws-queue" }, tabBar, list);
  draw();
  function showTab(tab) {
    if (tabs.some(([name]) => name === tab)) memory.tab = tab;
    draw();
  }

  return {
    el, draw, select, showTab,
    refresh: () => refresh().catch((err) => toast(`${t("ws.queue.failed")}: ${err.message}`, "error")),
  };
}
