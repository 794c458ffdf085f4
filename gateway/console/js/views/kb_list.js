// The article list of the knowledge-base page: filter box, status filter and a clickable table.
// Filtering is client-side: a shop's FAQ is a few hundred articles at most, already loaded.

import { h, mount, when } from "../dom.js";
import { lang, t } from "../i18n.js";

/** Whether an article matches a free-text filter (id, title, phrasings, tags; case-insensitive). */
export function matches(article, text) {
  const needle = text.trim().toLowerCase();
  if (!needle) return true;
  return [article.id, article.title, ...(article.questions || []), ...(article.tags || [])]
    .some((field) => String(field).toLowerCase().includes(needle));
}

export function statusBadge(status) {
  return h("span", { class: ["badge", "kb-status", status === "published" ? "ok" : "kb-draft"],
    dataset: { status } }, t(status === "published" ? "kb.status.published" : "kb.status.draft"));
}

export function tagChips(tags) {
  return (tags || []).map((tag) => h("span", { class: "kb-chip" }, tag));
}

/**
 * Build the list panel. state: {articles, filter, status, selected}; onOpen(id) opens an article,
 * onChange() is called after the filter changed (the caller keeps the state across re-renders).
 */
export function articleList(state, { onOpen, onNew }) {
  const body = h("tbody");
  const count = h("span", { class: "muted kb-count" });
  const refresh = () => {
    const shown = state.articles.filter((a) => matches(a, state.filter) && (!state.status || a.status === state.status));
    count.textContent = t("kb.count", { shown: shown.length, total: state.articles.length });
    if (!shown.length) {
      mount(body, h("tr", {}, h("td", { colspan: 3, class: "empty" }, t("kb.list.empty"))));
      return;
    }
    mount(body, shown.map((a) => h("tr", {
      class: ["kb-row", a.id === state.selected && "selected"],
      dataset: { articleId: a.id },
      tabindex: 0,
      on: {
        click: () => onOpen(a.id),
        keydown: (ev) => { if (ev.key === "Enter") onOpen(a.id); },
      },
    },
    h("td", {},
      h("div", { class: "kb-row-title" }, a.title || a.id),
      h("div", { class: "kb-row-meta" }, h("span", { class: "muted" }, a.id), tagChips(a.tags))),
    h("td", {}, statusBadge(a.status)),
    h("td", { class: "muted kb-when" }, when(a.updated_at, lang())))));
  };
  const filter = h("input", { id: "kb-filter", type: "search", class: "grow", placeholder: t("kb.filter"),
    value: state.filter, on: { input: () => { state.filter = filter.value; refresh(); } } });
  const status = h("select", { id: "kb-status-filter", on: { change: () => { state.status = status.value; refresh(); } } },
    h("option", { value: "" }, t("kb.status.all")),
    h("option", { value: "published" }, t("kb.status.published")),
    h("option", { value: "draft" }, t("kb.status.draft")));
  status.value = state.status;
  refresh();
  return h("section", { class: "panel kb-list" },
    h("div", { class: "row" },
      h("h2", { class: "grow" }, t("kb.title")),
      h("button", { type: "button", id: "kb-new", class: "primary", on: { click: onNew } }, t("kb.new"))),
    h("div", { class: "row kb-filters" }, filter, status),
    count,
    h("div", { class: "kb-table-wrap" },
      h("table", { class: "grid", id: "kb-articles" },
        h("thead", {}, h("tr", {},
          h("th", {}, t("kb.col.title")), h("th", {}, t("kb.col.status")), h("th", {}, t("kb.col.updated")))),
        body)));
}
