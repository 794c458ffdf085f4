// The agent workspace (#/workspace, #/workspace/<ticket_id>): three columns -- the ticket lists with
// the agent's presence (workspace_queue.js), the open conversation (workspace_chat.js) and the
// customer (workspace_customer.js) -- kept live by the staff event stream.
//
// Opening a ticket from inside the view updates the address with history.pushState, which does not
// fire hashchange: the event stream stays open (a re-render would reconnect it and could miss events).

import { events, get } from "../api.js";
import { h, mount } from "../dom.js";
import { t } from "../i18n.js";
import "./workspace_text.js";
import { createChat } from "./workspace_chat.js";
import { createCustomer } from "./workspace_customer.js";
import { createPresence, createQueue } from "./workspace_queue.js";
import { debounce, liveSla } from "./workspace_util.js";

// Kept across re-renders (language switch, hash navigation): which list tab is showing.
const memory = { tab: "mine" };

// Event kinds that can change what the lists show (a new ticket, an assignment, a status, an SLA
// badge, the last message preview).
const QUEUE_KINDS = new Set(["escalated", "ticket_assigned", "ticket_updated", "message_received", "agent_replied",
  "note_added", "sla_warning", "sla_breached", "csat_recorded"]);
// Event kinds that change the open conversation's transcript or header.
const CHAT_KINDS = new Set(["message_received", "bot_replied", "escalated", "agent_replied", "note_added",
  "ticket_updated", "ticket_assigned", "sla_warning", "sla_breached", "csat_recorded", "delivery_failed"]);
const REDRAW_MS = 30_000; // relative SLA times ("剩 12m") age; lists redraw without a fetch
const RELOAD_MS = 120_000; // and reload now and then, in case a live event was lost

export async function render(root, ctx) {
  const me = await get("/api/me");
  let closeEvents = null;
  let dropped = false;

  const conn = h("span", { class: "ws-conn", id: "ws-conn", dataset: { state: "connecting" }, role: "status" },
    h("span", { class: "ws-conn-dot", "aria-hidden": "true" }), h("span", { class: "ws-conn-text" }, t("ws.conn.connecting")));
  const presence = createPresence(me.presence);
  const queue = createQueue({ me, memory, onOpen: (id) => openTicket(id) });
  const customer = createCustomer({ onOpen: (id) => openTicket(id) });
  const chat = createChat({
    me,
    onChanged: () => refreshQueue(),
    onLoaded: (ticket) => customer.load(ticket.conversation_id),
    onClaimed: () => queue.showTab("mine"), // the ticket leaves the queue: follow it to "mine"
  });

  const refreshQueue = debounce(() => queue.refresh(), 250);
  const refreshChat = debounce(() => chat.refresh(), 150);

  function openTicket(id, { push = true } = {}) {
    const ticketId = Number(id);
    if (!Number.isInteger(ticketId) || ticketId < 1) return;
    if (push && location.hash !== `#/workspace/${ticketId}`) history.pushState(null, "", `#/workspace/${ticketId}`);
    queue.select(ticketId);
    chat.open(ticketId);
  }

  function setConn(state) {
    conn.dataset.state = state;
    conn.querySelector(".ws-conn-text").textContent = t(`ws.conn.${state}`);
    if (state === "error") dropped = true;
    if (state === "open" && dropped) {
      // Events sent while we were disconnected are gone: reload what they would have changed.
      dropped = false;
      refreshQueue();
      refreshChat();
    }
  }

  function onEvent(ev) {
    const data = ev.data || {};
    const here = ev.conversation_id && ev.conversation_id === chat.conversationId();
    if (ev.kind === "customer_typing") {
      if (here) chat.typing();
      return;
    }
    if (ev.kind === "sla_warning" || ev.kind === "sla_breached") {
      liveSla.set(data.ticket_id, { kind: ev.kind === "sla_warning" ? "warning" : "breached", due: Date.parse(data.due) });
    }
    if (QUEUE_KINDS.has(ev.kind)) refreshQueue();
    if (here && CHAT_KINDS.has(ev.kind)) {
      if (ev.kind === "message_received") chat.stopTyping();
      refreshChat();
    }
  }

  mount(root, h("div", { class: "ws-layout", id: "ws-layout" },
    h("div", { class: "ws-left" },
      h("div", { class: "ws-left-top" }, presence.el, conn),
      queue.el),
    chat.el,
    customer.el));

  closeEvents = events({ "*": onEvent, status: setConn });
  const timers = [
    setInterval(() => { queue.draw(); chat.tick(); }, REDRAW_MS),
    setInterval(() => queue.refresh(), RELOAD_MS),
  ];
  queue.refresh();
  if (ctx.route.param) openTicket(ctx.route.param, { push: false });

  return () => {
    if (closeEvents) closeEvents();
    for (const timer of timers) clearInterval(timer);
    presence.stop();
    refreshQueue.cancel();
    refreshChat.cancel();
    chat.destroy();
  };
}
