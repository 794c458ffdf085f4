// The reply box of the workspace: knowledge-base suggestions for the customer's last message, canned
// responses (previewed with their variables filled by the server, sent by id), internal notes, and
// Ctrl/Cmd+Enter to send.

import { ApiFailure, get, post } from "../api.js";
import { h, mount, toast } from "../dom.js";
import { t } from "../i18n.js";
import { ACTIVE } from "./workspace_util.js";

const VARIABLE_LABELS = ["customer_name", "order_number", "agent_name", "ticket_id"];

/** Names from a missing_variables answer ("缺少变量 / missing variables: order_number, x"). */
export function missingNames(message) {
  const m = /missing variables:\s*(.+)$/.exec(message || "");
  return m ? m[1].split(",").map((s) => s.trim()).filter(Boolean) : [];
}

/** ticket(): the open ticket (or null); afterSend(): something was sent. Returns {el, update(ticket),
 * reset(), destroy()}. */
export function createReply({ me, ticket, afterSend }) {
  const supervisor = me.role === "supervisor" || me.role === "admin";
  let canned = null; // {id, title, rendered, variables}
  let cannedList = null;
  let cannedLoading = null;
  let suggestionsFor = null; // "<ticket id>|<last customer message id>" the strip shows
  let busy = false;

  const suggestions = h("div", { class: "ws-suggestions", id: "ws-suggestions", hidden: true });
  const text = h("textarea", { id: "ws-reply-text", rows: 3, maxLength: 4000,
    on: { keydown: onKey, input: onEdit } });
  const send = h("button", { type: "button", id: "ws-reply-send", class: "primary", on: { click: () => submit() } },
    t("ws.reply.send"));
  const noteToggle = h("input", { type: "checkbox", id: "ws-note-toggle", on: { change: drawMode } });
  const picker = h("select", { id: "ws-canned", "aria-label": t("ws.canned.label"),
    on: { change: () => pick(picker.value) } }, h("option", { value: "" }, t("ws.canned.placeholder")));
  const chip = h("div", { class: "ws-canned-chip", id: "ws-canned-chip", hidden: true });
  const missing = h("div", { class: "ws-canned-missing", id: "ws-canned-missing", role: "alert", hidden: true });
  const hint = h("span", { class: "ws-reply-hint muted", id: "ws-reply-hint" });
  const box = h("div", { class: "ws-reply", id: "ws-reply" },
    h("div", { class: "ws-reply-tools" },
      picker,
      h("label", { class: "ws-note-switch" }, noteToggle, h("span", {}, t("ws.note.toggle"))),
      h("span", { class: "grow" }), hint),
    chip, missing, text,
    h("div", { class: "ws-reply-foot" }, h("span", { class: "muted ws-keys" }, t("ws.reply.keys")),
      h("span", { class: "grow" }), send));
  const el = h("div", { class: "ws-compose" }, suggestions, box);

  function onKey(ev) {
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) {
      ev.preventDefault();
      submit();
    }
  }

  function onEdit() {
    if (canned) chip.classList.toggle("edited", text.value !== canned.rendered);
  }

  function canReply(tk) {
    return tk && ACTIVE.has(tk.status) && tk.status !== "new" && (tk.assignee_id === me.id || supervisor);
  }

  function drawMode() {
    const tk = ticket();
    const note = noteToggle.checked;
    box.classList.toggle("note-mode", note);
    picker.disabled = note;
    send.textContent = note ? t("ws.note.send") : t("ws.reply.send");
    const allowed = note ? Boolean(tk) : canReply(tk);
    text.disabled = !allowed;
    send.disabled = !allowed || busy;
    text.placeholder = note ? t("ws.note.placeholder")
      : allowed ? t("ws.reply.placeholder") : t(tk && tk.status === "new" ? "ws.reply.claimfirst" : "ws.reply.closed");
    hint.textContent = note ? t("ws.note.hint") : "";
  }

  function loadCanned() {
    cannedLoading ||= fetchCanned(); // once per workspace; a failure lets the next ticket load retry
    return cannedLoading;
  }

  async function fetchCanned() {
    try {
      cannedList = (await get("/api/canned")).canned || [];
    } catch (err) {
      cannedLoading = null;
      toast(`${t("ws.canned.failed")}: ${err.message}`, "error");
      return;
    }
    const groups = {};
    for (const c of cannedList) (groups[c.language] ||= []).push(c);
    mount(picker, h("option", { value: "" }, t("ws.canned.placeholder")),
      Object.entries(groups).map(([language, items]) => h("optgroup", { label: t(`ws.lang.${language}`) },
        items.map((c) => h("option", { value: String(c.id), title: c.text }, c.title)))));
  }

  async function pick(value, variables = {}) {
    const item = (cannedList || []).find((c) => String(c.id) === value);
    const tk = ticket();
    if (!item || !tk) { clearCanned(); return; }
    missing.hidden = true;
    try {
      const { text: rendered } = await post(`/api/tickets/${tk.id}/reply-preview`, { canned_id: item.id, variables });
      canned = { id: item.id, title: item.title, rendered, variables };
      text.value = rendered;
      mount(chip, h("span", { class: "ws-chip-label" }, t("ws.canned.chosen", { title: item.title })),
        h("span", { class: "ws-chip-edited" }, t("ws.canned.edited")),
        h("button", { type: "button", class: "link", id: "ws-canned-clear", on: { click: () => { clearCanned(); text.value = ""; } } },
          t("ws.canned.clear")));
      chip.hidden = false;
      chip.classList.remove("edited");
      text.focus();
    } catch (err) {
      showProblem(err, item, variables);
    }
  }

  function showProblem(err, item, variables) {
    if (!(err instanceof ApiFailure) || err.code !== "missing_variables") {
      toast(err.message, "error");
      return;
    }
    const names = missingNames(err.message);
    const inputs = names.map((name) => h("input", { id: `ws-var-${name}`, dataset: { name },
      placeholder: VARIABLE_LABELS.includes(name) ? t(`ws.var.${name}`) : name, value: variables[name] || "" }));
    mount(missing,
      h("p", { class: "error" }, t("ws.canned.missing", { title: item.title })),
      h("div", { class: "ws-var-row" }, names.map((name, i) => h("label", {},
        VARIABLE_LABELS.includes(name) ? t(`ws.var.${name}`) : name, h("code", {}, `{${name}}`), inputs[i])),
      h("button", { type: "button", id: "ws-canned-apply", on: { click: () => {
        const filled = { ...variables };
        for (const input of inputs) if (input.value.trim()) filled[input.dataset.name] = input.value.trim();
        pick(String(item.id), filled);
      } } }, t("ws.canned.apply"))));
    missing.hidden = false;
    if (inputs[0]) inputs[0].focus();
  }

  function clearCanned() {
    canned = null;
    picker.value = "";
    chip.hidden = true;
    missing.hidden = true;
  }

  async function submit() {
    const tk = ticket();
    if (!tk || busy) return;
    const note = noteToggle.checked;
    const body = text.value.trim();
    const useCanned = !note && canned && text.value === canned.rendered;
    if (!useCanned && !body) { text.focus(); return; }
    busy = true;
    send.disabled = true;
    try {
      if (note) await post(`/api/tickets/${tk.id}/note`, { text: body });
      else if (useCanned) await post(`/api/tickets/${tk.id}/reply`, { canned_id: canned.id, variables: canned.variables });
      else await post(`/api/tickets/${tk.id}/reply`, { text: body });
      text.value = "";
      clearCanned();
      toast(t(note ? "ws.done.note" : "ws.done.reply"));
      afterSend();
    } catch (err) {
      if (useCanned) showProblem(err, canned, canned.variables);
      else toast(err.message, "error");
    } finally {
      busy = false;
      drawMode();
    }
  }

  function insert(answer) {
    if (canned) clearCanned();
    if (text.disabled) { toast(t("ws.reply.claimfirst"), "error"); return; }
    const start = text.selectionStart ?? text.value.length;
    const end = text.selectionEnd ?? text.value.length;
    text.value = text.value.slice(0, start) + answer + text.value.slice(end);
    text.focus();
    text.selectionStart = text.selectionEnd = start + answer.length;
  }

  async function loadSuggestions(tk) {
    const lastIn = [...(tk.messages || [])].reverse().find((m) => m.direction === "in" && (m.text || "").trim());
    const key = `${tk.id}|${lastIn ? lastIn.id : ""}`;
    if (key === suggestionsFor) return;
    suggestionsFor = key;
    if (!lastIn) { suggestions.hidden = true; return; }
    let data;
    try {
      data = await get(`/api/tickets/${tk.id}/suggestions`);
    } catch {
      suggestionsFor = null; // retried on the next load
      return;
    }
    if (suggestionsFor !== key) return;
    const items = data.suggestions || [];
    mount(suggestions,
      h("div", { class: "ws-sugg-head" },
        h("span", { class: "ws-sugg-title" }, t("ws.sugg.title")),
        h("span", { class: "ws-sugg-query", title: data.query || "" }, t("ws.sugg.for"), "「", data.query || "", "」"),
        !data.confident && items.length > 0 && h("span", { class: "badge" }, t("ws.sugg.unsure"))),
      items.length === 0 ? h("p", { class: "muted ws-sugg-none" }, t("ws.sugg.none"))
        : h("div", { class: "ws-sugg-list" }, items.map((s, i) => h("button", {
          type: "button", class: "ws-sugg", id: `ws-suggestion-${i}`, dataset: { articleId: s.article_id },
          title: t("ws.sugg.insert"), on: { click: () => insert(s.answer) } },
        h("span", { class: "ws-sugg-top" }, h("span", { class: "ws-sugg-name" }, s.title),
          h("span", { class: "ws-sugg-score" }, `${Math.round((s.score || 0) * 100)}%`)),
        h("span", { class: "ws-sugg-answer" }, s.answer)))));
    suggestions.hidden = false;
  }

  return {
    el,
    update(tk) {
      drawMode();
      loadCanned();
      loadSuggestions(tk);
    },
    reset() {
      clearCanned();
      text.value = "";
      noteToggle.checked = false;
      suggestionsFor = null;
      suggestions.hidden = true;
      drawMode();
    },
    destroy() {},
  };
}
