// Middle column of the workspace: one ticket's header and actions (take over, transfer, resolve, hand
// back, reopen), the whole transcript with internal notes and ticket events woven in by time, the
// "customer is typing" line and the reply box (workspace_reply.js).

import { get, post } from "../api.js";
import { h, mount, toast } from "../dom.js";
import { t } from "../i18n.js";
import { createReply } from "./workspace_reply.js";
import { openTransfer } from "./workspace_transfer.js";
import { ACTIVE, channelLabel, clockTime, customerName, fullTime, priorityLabel, serial, slaOf, slaText,
  statusLabel, visitorLabel } from "./workspace_util.js";

const TYPING_MS = 4000;
// Audit-log kinds shown as a line in the transcript (others, e.g. "triaged", stay in the audit log).
const EVENT_KINDS = new Set(["escalated", "claim", "assign", "unassign", "resolve", "hand_back", "reopen",
  "reopened", "sla_warning", "sla_breach", "priority_raised", "csat"]);

function bubbleIcon() {
  return h("svg:svg", { viewBox: "0 0 48 48", fill: "none" },
    h("svg:path", { d: "M8 10h32a4 4 0 0 1 4 4v16a4 4 0 0 1-4 4H20l-8 7v-7H8a4 4 0 0 1-4-4V14a4 4 0 0 1 4-4z",
      fill: "#e8f0ff", stroke: "#9db8f5", "stroke-width": "2" }),
    h("svg:circle", { cx: "16", cy: "22", r: "2.5", fill: "#1664ff" }),
    h("svg:circle", { cx: "24", cy: "22", r: "2.5", fill: "#1664ff" }),
    h("svg:circle", { cx: "32", cy: "22", r: "2.5", fill: "#1664ff" }));
}

/** The conversation pane. onChanged(): a ticket changed here (the queue should reload);
 * onLoaded(ticket): a ticket was (re)loaded; onClaimed(): the agent took the open ticket. Returns {el, open(id), refresh(), tick(), typing(), stopTyping(),
 * ticket(), conversationId(), destroy()}. */
export function createChat({ me, onChanged, onLoaded, onClaimed }) {
  const supervisor = me.role === "supervisor" || me.role === "admin";
  let ticket = null;
  let ticketId = null;
  let drawnFor = null; // the ticket the transcript shows: a new ticket scrolls to its end
  let typingTimer = null;

  const header = h("header", { class: "ws-chat-head", id: "ws-chat-head" });
  const transcript = h("div", { class: "ws-transcript", id: "ws-transcript", role: "log", "aria-live": "polite" });
  const typingLine = h("div", { class: "ws-typing", id: "ws-typing", hidden: true },
    h("span", { class: "ws-typing-dots", "aria-hidden": "true" }, h("i"), h("i"), h("i")), t("ws.typing"));
  const reply = createReply({ me, ticket: () => ticket, afterSend: () => { load(); onChanged(); } });
  const body = h("div", { class: "ws-chat-body" }, header, transcript, typingLine, reply.el);
  const placeholder = h("div", { class: "ws-chat-empty" },
    h("div", { class: "ws-chat-empty-icon", "aria-hidden": "true" }, bubbleIcon()),
    h("p", {}, t("ws.chat.pick")));
  const el = h("section", { class: "ws-chat", id: "ws-chat", "aria-label": t("ws.chat.title") }, placeholder);

  const load = serial(async () => {
    const id = ticketId;
    if (id === null) return;
    let data;
    try {
      data = await get(`/api/tickets/${id}`);
    } catch (err) {
      if (id === ticketId) {
        ticket = null;
        mount(el, h("div", { class: "ws-chat-empty" }, h("p", { class: "error", id: "ws-chat-error" },
          err.status === 404 ? t("ws.chat.notfound") : `${t("common.error")}: ${err.message}`)));
      }
      return;
    }
    if (id !== ticketId) return;
    ticket = data;
    if (!el.contains(body)) mount(el, body);
    drawHeader();
    drawTranscript();
    reply.update(ticket);
    onLoaded(ticket);
  });

  function nameOf(tk) {
    const conv = tk.conversation || {};
    return customerName(tk.customer && tk.customer.name, conv.customer_name, visitorLabel(conv.customer_external_id));
  }

  function drawHeader() {
    const tk = ticket;
    const conv = tk.conversation || {};
    const mine = tk.assignee_id === me.id;
    const canAct = mine || supervisor;
    const active = ACTIVE.has(tk.status);
    const sla = slaOf(tk);
    const reasons = (tk.priority_reasons || []).map((r) => r.text || r.code).join("\n");
    const action = (id, label, cls, handler, show) => h("button", { type: "button", id, class: cls, hidden: !show,
      on: { click: (ev) => handler(ev.currentTarget) } }, label);
    mount(header,
      h("div", { class: "ws-head-main" },
        h("div", { class: "ws-head-title" },
          h("span", { class: "ws-head-id", id: "ws-ticket-id" }, `#${tk.id}`),
          h("span", { class: "ws-head-name", id: "ws-head-name" }, nameOf(tk)),
          tk.tier === "vip" && h("span", { class: "badge ws-vip" }, "VIP"),
          h("span", { class: `badge p${tk.priority}`, id: "ws-priority", title: reasons }, priorityLabel(tk.priority)),
          h("span", { class: ["badge", `ws-status-${tk.status}`], id: "ws-status", dataset: { status: tk.status } },
            statusLabel(tk.status)),
          sla && h("span", { class: ["badge", sla.state], id: "ws-sla", title: fullTime(sla.due) }, slaText(sla))),
        h("div", { class: "ws-head-sub" },
          h("span", { id: "ws-assignee", dataset: { assignee: tk.assignee_id || "" } }, t("ws.head.assignee"),
            tk.assignee_id ? (mine ? t("ws.head.me", { name: me.name || me.id }) : tk.assignee_id) : t("ws.head.unassigned")),
          h("span", {}, channelLabel(tk.channel || conv.channel)),
          tk.skills && tk.skills.length > 0 && h("span", {}, t("ws.head.skills"), tk.skills.join(", ")),
          h("span", { title: fullTime(tk.created_at) }, t("ws.head.created", { at: clockTime(tk.created_at) })))),
      h("div", { class: "ws-actions" },
        action("ws-claim", t("ws.action.claim"), "primary", (b) => act(b, "claim", "ws.done.claim", onClaimed),
          tk.status === "new" && !tk.assignee_id),
        action("ws-transfer", t("ws.action.transfer"), "", () => openTransfer(el, me, tk, () => { load(); onChanged(); }),
          active && canAct),
        action("ws-resolve", t("ws.action.resolve"), "ws-resolve", (b) => act(b, "resolve", "ws.done.resolve"),
          active && canAct && tk.status !== "new"),
        action("ws-handback", t("ws.action.handback"), "", (b) => act(b, "hand-back", "ws.done.handback"),
          active && canAct),
        action("ws-reopen", t("ws.action.reopen"), "", (b) => act(b, "reopen", "ws.done.reopen"),
          tk.status === "resolved" && canAct)));
  }

  async function act(button, path, doneKey, then = null) {
    button.disabled = true;
    try {
      await post(`/api/tickets/${ticket.id}/${path}`);
      toast(t(doneKey));
      if (then) then();
    } catch (err) {
      toast(err.message, "error");
    } finally {
      button.disabled = false;
      load();
      onChanged();
    }
  }

  function drawTranscript() {
    const nearEnd = transcript.scrollHeight - transcript.scrollTop - transcript.clientHeight < 80;
    const stick = drawnFor !== ticket.id || nearEnd;
    drawnFor = ticket.id;
    const messages = ticket.messages || [];
    const multi = new Set(messages.map((m) => m.channel)).size > 1;
    const name = nameOf(ticket);
    const items = [
      ...messages.map((m) => [Date.parse(m.created_at), () => messageNode(m, multi, name)]),
      ...(ticket.events || []).filter((e) => e.kind === "note" || EVENT_KINDS.has(e.kind))
        .map((e) => [Date.parse(e.at), () => (e.kind === "note" ? noteNode(e) : eventNode(e))]),
    ].sort((a, b) => a[0] - b[0]);
    if (!items.length) mount(transcript, h("p", { class: "empty" }, t("ws.chat.nomessages")));
    else mount(transcript, items.map(([, make]) => make()));
    if (stick) transcript.scrollTop = transcript.scrollHeight;
  }

  function stamp(iso) {
    return h("time", { datetime: iso, title: fullTime(iso) }, clockTime(iso));
  }

  function messageNode(m, multi, name) {
    const author = ["customer", "bot", "agent", "system"].includes(m.author) ? m.author : "system";
    const who = author === "customer" ? name : t(`ws.author.${author}`);
    return h("div", { class: ["ws-msg", `ws-msg-${author}`], dataset: { author, messageId: m.id } },
      h("div", { class: "ws-msg-meta" },
        h("span", { class: "ws-msg-who" }, who),
        multi && h("span", { class: "ws-chan" }, channelLabel(m.channel)),
        stamp(m.created_at),
        author === "customer" && mood(m.sentiment),
        m.automated && h("span", { class: "badge warning ws-automated", dataset: { automated: m.automated },
          title: t("ws.automated.why") }, t(`ws.automated.${m.automated}`))),
      h("div", { class: "ws-msg-bubble" },
        m.text && h("span", { class: "ws-msg-text" }, m.text),
        (m.attachments || []).map((a) => h("span", { class: "ws-attachment" },
          t("ws.msg.attachment"), " ", a.name || a.kind || ""))));
  }

  function mood(s) {
    if (!s) return null;
    const title = `negative ${s.negative ?? "-"} · anger ${s.anger ?? "-"} · urgency ${s.urgency ?? "-"}`;
    const chips = [];
    if ((s.anger ?? 0) >= 0.5) chips.push(h("span", { class: "badge breached", title }, t("ws.mood.angry")));
    else if ((s.negative ?? 0) >= 0.5) chips.push(h("span", { class: "badge warning", title }, t("ws.mood.negative")));
    if ((s.urgency ?? 0) >= 0.5) chips.push(h("span", { class: "badge warning", title }, t("ws.mood.urgent")));
    return chips;
  }

  function actorName(actor) {
    if (actor === me.id) return me.name || me.id;
    const key = `ws.actor.${actor}`;
    return t(key) === key ? actor : t(key);
  }

  function noteNode(e) {
    return h("div", { class: "ws-msg ws-msg-note", dataset: { author: "note" } },
      h("div", { class: "ws-msg-meta" },
        h("span", { class: "ws-msg-who" }, t("ws.note.label"), " · ", actorName(e.actor)), stamp(e.at)),
      h("div", { class: "ws-msg-bubble" }, h("span", { class: "ws-msg-text" }, (e.data && e.data.text) || "")));
  }

  function eventNode(e) {
    const d = e.data || {};
    const vars = { actor: actorName(e.actor), agent: d.agent_id ? actorName(d.agent_id) : "",
      reason: d.reason ? t(`ws.reason.${d.reason}`) : "", clock: d.clock ? t(`ws.sla.${d.clock}`) : "",
      score: d.score ?? "", to: d.to ?? "" };
    let key = `ws.event.${e.kind}`;
    if (e.kind === "unassign" && d.why === "transfer") key = "ws.event.transfer";
    return h("div", { class: ["ws-event", `ws-event-${e.kind}`], dataset: { kind: e.kind } },
      h("span", {}, t(key, vars)), " · ", stamp(e.at));
  }

  function typing() {
    if (!ticket) return;
    typingLine.hidden = false;
    clearTimeout(typingTimer);
    typingTimer = setTimeout(stopTyping, TYPING_MS);
  }

  function stopTyping() {
    clearTimeout(typingTimer);
    typingLine.hidden = true;
  }

  function open(id) {
    if (id === ticketId && ticket) return load();
    ticketId = id;
    ticket = null;
    drawnFor = null;
    stopTyping();
    reply.reset();
    mount(el, h("div", { class: "ws-chat-empty" }, h("p", { class: "muted" }, t("common.loading"))));
    return load();
  }

  return {
    el, open, typing, stopTyping,
    refresh: () => load(),
    tick: () => { if (ticket && el.contains(body)) drawHeader(); }, // the SLA badge's relative time
    ticket: () => ticket,
    ticketId: () => ticketId,
    conversationId: () => (ticket ? ticket.conversation_id : null),
    destroy: () => { stopTyping(); reply.destroy(); },
  };
}
