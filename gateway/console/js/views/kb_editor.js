// The article editor: title, answer, alternate phrasings (one per line), tags; save, publish,
// unpublish, delete. Article text is admin-supplied and only ever set as input values / text nodes.

import { ApiFailure, api } from "../api.js";
import { h, mount, toast, when } from "../dom.js";
import { lang, t } from "../i18n.js";
import { statusBadge } from "./kb_list.js";

const ID_RULE = /^[A-Za-z0-9._-]{1,128}$/;

/** "a, b，c  d" → ["a", "b", "c", "d"] (ASCII and full-width commas, any whitespace). */
export function splitTags(text) {
  return [...new Set(text.split(/[,，、\s]+/).map((s) => s.trim()).filter(Boolean))];
}

/** One phrasing per line, trimmed, blank lines and repeats dropped. */
export function splitLines(text) {
  return [...new Set(text.split("\n").map((s) => s.trim()).filter(Boolean))];
}

/** A fresh id for a new article: readable date plus a random suffix (ids are never reused). */
function freshId() {
  const d = new Date();
  const stamp = `${d.getFullYear()}${String(d.getMonth() + 1).padStart(2, "0")}${String(d.getDate()).padStart(2, "0")}`;
  return `faq-${stamp}-${Math.random().toString(36).slice(2, 6)}`;
}

/**
 * Build the editor for article (null: a new one). hooks.saved(article, {created}) after every
 * successful write, hooks.deleted(id) after a delete.
 */
export function articleEditor(article, hooks) {
  const isNew = !article;
  const a = article || { id: freshId(), title: "", answer: "", questions: [], tags: [], language: "zh", status: "draft" };
  const error = h("p", { class: "error", id: "kb-editor-error", role: "alert" });
  const dirtyMark = h("span", { class: "badge warning kb-dirty", hidden: true }, t("kb.dirty"));
  const phrasingCount = h("small", { class: "muted", id: "kb-questions-count" });

  const idInput = h("input", { id: "kb-id", value: a.id, readOnly: !isNew, maxLength: 128 });
  const language = h("select", { id: "kb-language" },
    h("option", { value: "zh" }, t("kb.lang.zh")), h("option", { value: "en" }, t("kb.lang.en")));
  language.value = a.language === "en" ? "en" : "zh";
  const title = h("input", { id: "kb-title", value: a.title, maxLength: 500 });
  const answer = h("textarea", { id: "kb-answer", rows: 6, value: a.answer });
  const questions = h("textarea", { id: "kb-questions", rows: 5, value: (a.questions || []).join("\n") });
  const tags = h("input", { id: "kb-tags", value: (a.tags || []).join(", ") });

  const read = () => ({
    id: idInput.value.trim(),
    title: title.value.trim(),
    answer: answer.value.trim(),
    questions: splitLines(questions.value),
    tags: splitTags(tags.value),
    language: language.value,
  });
  const snapshot = () => JSON.stringify(read());
  const clean = snapshot();
  const isDirty = () => snapshot() !== clean;
  const onInput = () => {
    dirtyMark.hidden = !isDirty();
    const form = read();
    phrasingCount.textContent = t("kb.questions.count",
      { n: new Set([form.title, ...form.questions].filter(Boolean)).size });
  };
  for (const el of [idInput, title, answer, questions, tags, language]) el.addEventListener("input", onInput);

  const validate = (form) => {
    if (!ID_RULE.test(form.id)) return t("kb.err.id");
    if (!form.title) return t("kb.err.title");
    if (!form.answer) return t("kb.err.answer");
    return "";
  };

  // Every write goes through here so the buttons are disabled while one is in flight.
  const buttons = [];
  const busy = async (work) => {
    error.textContent = "";
    buttons.forEach((b) => { b.disabled = true; });
    try {
      await work();
    } catch (err) {
      error.textContent = err instanceof ApiFailure ? err.message : String(err.message || err);
    } finally {
      buttons.forEach((b) => { b.disabled = false; });
    }
  };

  // PUT replaces the whole article, status included, so the status to keep is always sent.
  const write = async (status) => {
    const form = read();
    const problem = validate(form);
    if (problem) throw new Error(problem);
    const body = { ...form, status };
    const saved = isNew
      ? await api("POST", "/api/kb/articles", body)
      : await api("PUT", `/api/kb/articles/${encodeURIComponent(a.id)}`, body);
    return saved;
  };

  const save = () => busy(async () => {
    const saved = await write(a.status);
    toast(t("kb.saved"));
    hooks.saved(saved, { created: isNew });
  });

  // Publishing unsaved edits saves them in the same request; otherwise the status endpoints are used.
  const setStatus = (status) => busy(async () => {
    let saved;
    if (isNew || isDirty()) saved = await write(status);
    else saved = await api("POST", `/api/kb/articles/${encodeURIComponent(a.id)}/${status === "published" ? "publish" : "unpublish"}`);
    toast(t(status === "published" ? "kb.published" : "kb.unpublished"));
    hooks.saved(saved, { created: isNew });
  });

  const remove = () => busy(async () => {
    if (!window.confirm(t("kb.confirm.delete", { title: a.title || a.id }))) return;
    await api("DELETE", `/api/kb/articles/${encodeURIComponent(a.id)}`);
    toast(t("kb.deleted"));
    hooks.deleted(a.id);
  });

  const saveBtn = h("button", { type: "button", id: "kb-save", on: { click: save } }, t("kb.save"));
  const publishBtn = h("button", { type: "button", id: "kb-publish", class: "primary",
    hidden: a.status === "published" && !isNew, on: { click: () => setStatus("published") } }, t("kb.publish"));
  const unpublishBtn = h("button", { type: "button", id: "kb-unpublish",
    hidden: a.status !== "published" || isNew, on: { click: () => setStatus("draft") } }, t("kb.unpublish"));
  const deleteBtn = h("button", { type: "button", id: "kb-delete", class: "danger", hidden: isNew,
    on: { click: remove } }, t("kb.delete"));
  buttons.push(saveBtn, publishBtn, unpublishBtn, deleteBtn);
  onInput();
  dirtyMark.hidden = true;

  const panel = h("section", { class: "panel kb-editor", id: "kb-editor", dataset: { articleId: isNew ? "" : a.id } },
    h("div", { class: "row" },
      h("h2", { class: "grow" }, t(isNew ? "kb.editor.new" : "kb.editor.edit")),
      isNew ? null : statusBadge(a.status),
      dirtyMark,
      isNew ? null : h("small", { class: "muted" }, when(a.updated_at, lang()))),
    h("div", { class: "kb-editor-head" },
      h("label", { class: "grow" }, t("kb.field.id"), idInput),
      h("label", {}, t("kb.field.language"), language)),
    h("label", {}, t("kb.field.title"), title),
    h("label", {}, t("kb.field.answer"), answer),
    h("label", {}, t("kb.field.questions"), questions, phrasingCount),
    h("label", {}, t("kb.field.tags"), tags),
    error,
    h("div", { class: "row kb-actions" }, saveBtn, publishBtn, unpublishBtn, h("span", { class: "grow" }), deleteBtn));
  return panel;
}

/** The right-hand placeholder when no article is open (or the id in the URL does not exist). */
export function editorPlaceholder(missingId) {
  return mount(h("section", { class: "panel kb-editor kb-editor-empty", id: "kb-editor" }),
    h("p", { class: "empty" }, missingId ? t("kb.notfound", { id: missingId }) : t("kb.pick")));
}
