// Right column of the workspace: who the customer is across channels (GET
// /api/conversations/{id}/customer): name, tier, every linked identity with its proof, their orders
// and their other conversations (with a link to the open ticket, if any).

import { get } from "../api.js";
import { h, mount } from "../dom.js";
import { t } from "../i18n.js";
import { channelLabel, clockTime, customerName, fullTime, serial, statusLabel, visitorLabel } from "./workspace_util.js";

/** A proof as words: "order:12345" → "订单 12345 证明"; null → this conversation's own identity. */
export function proofText(proof) {
  if (!proof) return t("ws.proof.self");
  const [kind, ...rest] = String(proof).split(":");
  const value = rest.join(":");
  const key = `ws.proof.${kind}`;
  return t(key) === key ? String(proof) : t(key, { value });
}

/** onOpen(ticketId) opens another ticket of the customer. Returns {el, load(conversationId), clear()}. */
export function createCustomer({ onOpen }) {
  let conversationId = null;
  const body = h("div", { class: "ws-customer-body" });
  const el = h("aside", { class: "ws-customer", id: "ws-customer", "aria-label": t("ws.customer.title") },
    h("h2", { class: "ws-col-title" }, t("ws.customer.title")), body);
  clear();

  function clear() {
    conversationId = null;
    mount(body, h("p", { class: "empty" }, t("ws.customer.none")));
  }

  const load = serial(async () => {
    const id = conversationId;
    if (!id) return;
    let c;
    try {
      c = await get(`/api/conversations/${encodeURIComponent(id)}/customer`);
    } catch (err) {
      if (id === conversationId) mount(body, h("p", { class: "error" }, `${t("common.error")}: ${err.message}`));
      return;
    }
    if (id === conversationId) draw(c, id);
  });

  function draw(c, currentId) {
    const first = (c.identities || [])[0] || {};
    const name = customerName(c.name, visitorLabel(first.external_id));
    const section = (title, count, ...children) => h("section", { class: "ws-cust-section" },
      h("h3", {}, title, count !== null && h("span", { class: "ws-count" }, String(count))), children);
    mount(body,
      h("div", { class: "ws-cust-card" },
        h("div", { class: ["ws-avatar", c.tier === "vip" && "vip"], "aria-hidden": "true" }, Array.from(name)[0] || "?"),
        h("div", { class: "ws-cust-id" },
          h("div", { class: "ws-cust-name", id: "ws-customer-name" }, name),
          h("div", { class: "ws-cust-tags" },
            h("span", { class: ["badge", c.tier === "vip" ? "ws-vip" : "ws-tier"], id: "ws-customer-tier" },
              t(`ws.tier.${c.tier === "vip" ? "vip" : "normal"}`)),
            c.id !== null && c.id !== undefined && h("span", { class: "muted" }, t("ws.customer.profile", { id: c.id }))))),
      section(t("ws.customer.identities"), (c.identities || []).length,
        h("ul", { class: "ws-idents", id: "ws-identities" }, (c.identities || []).map((i) => h("li", {},
          h("span", { class: "ws-chan", dataset: { channel: i.channel } }, channelLabel(i.channel)),
          h("span", { class: "ws-ident-id", title: i.external_id }, i.external_id),
          h("span", { class: "ws-proof", title: i.linked_at ? fullTime(i.linked_at) : "" }, proofText(i.proven_by)))))),
      section(t("ws.customer.orders"), (c.orders || []).length,
        (c.orders || []).length === 0 ? h("p", { class: "muted ws-none" }, t("ws.customer.noorders"))
          : h("ul", { class: "ws-orders", id: "ws-orders" }, c.orders.map((o) => h("li", {},
            h("div", { class: "ws-order-top" }, h("span", { class: "ws-order-no" }, o.order_number),
              h("span", { class: ["badge", `ws-order-${o.status}`] }, o.status_text || o.status)),
            (o.items || []).length > 0 && h("div", { class: "ws-order-items" }, o.items.join("、")),
            (o.carrier || o.tracking_number) && h("div", { class: "muted ws-order-ship" },
              [o.carrier, o.tracking_number].filter(Boolean).join(" ")))))),
      section(t("ws.customer.conversations"), (c.conversations || []).length,
        h("ul", { class: "ws-convs", id: "ws-conversations" }, (c.conversations || []).map((v) => {
          const here = v.id === currentId;
          const ticket = v.open_ticket;
          const last = v.last_message;
          const head = h("div", { class: "ws-conv-top" },
            h("span", { class: "ws-chan", dataset: { channel: v.channel } }, channelLabel(v.channel)),
            here ? h("span", { class: "badge ok" }, t("ws.customer.current"))
              : ticket && h("span", { class: "badge" }, `#${ticket.id} ${statusLabel(ticket.status)}`),
            h("span", { class: "grow" }),
            h("time", { datetime: v.updated_at, title: fullTime(v.updated_at) }, clockTime(v.updated_at)));
          const preview = h("div", { class: "ws-conv-last" }, last ? last.text : t("ws.chat.nomessages"));
          if (ticket && !here) {
            return h("li", {}, h("a", { href: `#/workspace/${ticket.id}`, class: "ws-conv-link",
              dataset: { ticketId: String(ticket.id) },
              on: { click: (ev) => { ev.preventDefault(); onOpen(ticket.id); } } }, head, preview));
          }
          return h("li", { class: here ? "current" : "" }, head, preview);
        }))));
  }

  return {
    el, clear,
    load(id) {
      if (id !== conversationId) {
        conversationId = id;
        mount(body, h("p", { class: "empty" }, t("common.loading")));
      }
      return load();
    },
  };
}
