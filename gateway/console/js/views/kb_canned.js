// Canned responses (快捷回复): list, create, edit, delete. Templates may use the placeholders the
// server knows (ticketing/canned.py VARIABLES); the chips insert them at the cursor.

import { ApiFailure, api } from "../api.js";
import { h, mount, toast, when } from "../dom.js";
import { lang, t } from "../i18n.js";

const VARIABLES = ["customer_name", "order_number", "agent_name", "ticket_id"];

function insertAtCursor(area, text) {
  const start = area.selectionStart ?? area.value.length;
  const end = area.selectionEnd ?? start;
  area.value = area.value.slice(0, start) + text + area.value.slice(end);
  area.focus();
  area.selectionStart = area.selectionEnd = start + text.length;
}

/** The form for item (null: a new response); done() after a save or cancel. */
function cannedForm(item, done) {
  const title = h("input", { id: "kb-canned-title", value: item ? item.title : "", maxLength: 128 });
  const text = h("textarea", { id: "kb-canned-text", rows: 5, value: item ? item.text : "", maxLength: 4000 });
  const language = h("select", { id: "kb-canned-language" },
    h("option", { value: "zh" }, t("kb.lang.zh")), h("option", { value: "en" }, t("kb.lang.en")));
  language.value = item && item.language === "en" ? "en" : "zh";
  const error = h("p", { class: "error", role: "alert" });
  const save = h("button", { type: "submit", id: "kb-canned-save", class: "primary" }, t("common.save"));
  const chips = VARIABLES.map((name) => h("button", { type: "button", class: "kb-chip kb-var", dataset: { var: name },
    title: t(`kb.canned.var.${name}`), on: { click: () => insertAtCursor(text, `{${name}}`) } },
  `{${name}}`, h("small", {}, " ", t(`kb.canned.var.${name}`))));
  return h("form", { class: "panel kb-canned-form", id: "kb-canned-form", on: { submit: async (ev) => {
    ev.preventDefault();
    error.textContent = "";
    save.disabled = true;
    const body = { title: title.value.trim(), text: text.value, language: language.value };
    try {
      if (item) await api("PUT", `/api/canned/${item.id}`, body);
      else await api("POST", "/api/canned", body);
      toast(t("common.saved"));
      done(true);
    } catch (err) {
      error.textContent = err instanceof ApiFailure ? err.message : String(err);
    } finally {
      save.disabled = false;
    }
  } } },
  h("h3", {}, t(item ? "kb.canned.edit" : "kb.canned.new")),
  h("div", { class: "kb-editor-head" },
    h("label", { class: "grow" }, t("kb.canned.field.title"), title),
    h("label", {}, t("kb.canned.field.language"), language)),
  h("label", {}, t("kb.canned.field.text"), text),
  h("div", { class: "kb-vars" }, h("span", { class: "muted" }, t("kb.canned.vars")), chips),
  h("p", { class: "muted kb-vars-hint" }, t("kb.canned.vars.hint")),
  error,
  h("div", { class: "row" }, save,
    h("button", { type: "button", on: { click: () => done(false) } }, t("common.cancel"))));
}

/** The canned-responses tab, rendered into root. */
export async function renderCanned(root) {
  const formSlot = h("div", { class: "kb-canned-slot" });
  const body = h("tbody");
  const table = h("table", { class: "grid", id: "kb-canned-list" },
    h("thead", {}, h("tr", {},
      h("th", {}, t("kb.canned.col.title")), h("th", {}, t("kb.canned.col.text")),
      h("th", {}, t("kb.canned.col.lang")), h("th", {}, t("kb.canned.col.by")),
      h("th", {}, t("kb.col.updated")), h("th", {}))),
    body);

  const load = async () => {
    let items = [];
    try {
      items = (await api("GET", "/api/canned")).canned || [];
    } catch (err) {
      mount(body, h("tr", {}, h("td", { colspan: 6, class: "error" }, err.message)));
      return;
    }
    if (!items.length) {
      mount(body, h("tr", {}, h("td", { colspan: 6, class: "empty" }, t("kb.canned.empty"))));
      return;
    }
    mount(body, items.map((item) => h("tr", { dataset: { cannedId: String(item.id) } },
      h("td", {}, item.title),
      h("td", { class: "kb-canned-text" }, item.text),
      h("td", {}, t(item.language === "en" ? "kb.lang.en" : "kb.lang.zh")),
      h("td", { class: "muted" }, item.created_by),
      h("td", { class: "muted" }, when(item.updated_at, lang())),
      h("td", { class: "kb-canned-actions" },
        h("button", { type: "button", class: "link kb-canned-edit", on: { click: () => open(item) } }, t("kb.canned.edit.btn")),
        h("button", { type: "button", class: "link kb-canned-delete", on: { click: () => remove(item) } },
          t("common.delete"))))));
  };
  const open = (item) => {
    mount(formSlot, cannedForm(item, (changed) => { mount(formSlot); if (changed) load(); }));
    formSlot.querySelector("input").focus();
  };
  const remove = async (item) => {
    if (!window.confirm(t("kb.canned.confirm.delete", { title: item.title }))) return;
    try {
      await api("DELETE", `/api/canned/${item.id}`);
      load();
    } catch (err) {
      toast(err.message, "error");
    }
  };

  mount(root, h("section", { class: "panel kb-canned" },
    h("div", { class: "row" },
      h("h2", { class: "grow" }, t("kb.canned.title")),
      h("button", { type: "button", id: "kb-canned-new", class: "primary", on: { click: () => open(null) } },
        t("kb.canned.new"))),
    formSlot, table));
  await load();
}
