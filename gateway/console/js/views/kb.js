// #/kb and #/kb/<article id>: the knowledge-base editor for admins. Three columns — the article list
// (with import/export under it), the editor, and "try it" — plus a second tab for canned responses.
// The pieces live in kb_*.js; this module wires them together and keeps the page state.

import { api } from "../api.js";
import { h, mount } from "../dom.js";
import { t } from "../i18n.js";
import "./kb_strings.js";
import { renderCanned } from "./kb_canned.js";
import { articleEditor, editorPlaceholder } from "./kb_editor.js";
import { importExport } from "./kb_io.js";
import { articleList } from "./kb_list.js";
import { tryBox } from "./kb_try.js";

// Page state that survives re-renders (opening an article changes the hash and re-renders the view).
const state = { articles: [], filter: "", status: "", selected: null };
let tab = "articles";
// The "new article" form has no URL of its own: opening it from #/kb/<id> navigates to #/kb and
// leaves this flag for that next render (and only that one) to pick up.
let wantNew = false;

async function loadArticles() {
  const data = await api("GET", "/api/kb/articles");
  state.articles = (data.articles || []).slice()
    .sort((a, b) => String(b.updated_at).localeCompare(String(a.updated_at)) || a.id.localeCompare(b.id));
}

function tabs(draw) {
  const button = (name) => h("button", { type: "button", id: `kb-tab-${name}`, role: "tab",
    class: ["kb-tab", tab === name && "active"], "aria-selected": String(tab === name),
    on: { click: () => { tab = name; draw(); } } }, t(`kb.tab.${name}`));
  return h("div", { class: "kb-tabs", role: "tablist" }, button("articles"), button("canned"));
}

export async function render(root, ctx) {
  const param = ctx.route.param;
  const startNew = wantNew && !param;
  wantNew = false;
  if (param || startNew) tab = "articles";
  const body = h("div", { class: "kb-body" });
  const draw = () => {
    mount(root, tabs(draw), body);
    return tab === "canned" ? renderCanned(body) : drawArticles(body, ctx, param, startNew);
  };
  await draw();
}

async function drawArticles(body, ctx, param, startNew) {
  let newOpen = startNew;
  const listSlot = h("div", { class: "kb-col kb-col-list" });
  const editorSlot = h("div", { class: "kb-col kb-col-editor" });
  const trySlot = h("div", { class: "kb-col kb-col-try" });
  mount(body, h("div", { class: "kb-layout" }, listSlot, editorSlot, trySlot));

  const open = (id) => {
    const hash = `#/kb/${encodeURIComponent(id)}`;
    if (location.hash === hash) return;
    ctx.navigate(hash);
  };
  const byId = (id) => state.articles.find((a) => a.id === id) || null;
  const trial = tryBox({ onOpen: open, articleById: byId });

  const hooks = {
    saved: async (article, { created }) => {
      if (created) { newOpen = false; open(article.id); return; }
      await refresh(article.id);
      trial.rerun();
    },
    deleted: () => { state.selected = null; ctx.navigate("#/kb"); },
  };
  const listInner = h("div", { class: "kb-list-slot" });
  // Built once: the import result must survive the list reload that follows an import.
  const io = importExport(async () => { await loadArticles(); showList(); trial.rerun(); });
  const showList = () => mount(listInner,
    articleList(state, {
      onOpen: open,
      onNew: () => {
        state.selected = null;
        if (param) { wantNew = true; ctx.navigate("#/kb"); return; }
        newOpen = true;
        showList();
        mount(editorSlot, articleEditor(null, hooks));
        editorSlot.querySelector("#kb-title").focus();
      },
    }));
  const showEditor = async (id) => {
    if (!id) { mount(editorSlot, newOpen ? articleEditor(null, hooks) : editorPlaceholder(null)); return; }
    let article = byId(id);
    if (!article) {
      try { article = await api("GET", `/api/kb/articles/${encodeURIComponent(id)}`); } catch { article = null; }
    }
    mount(editorSlot, article ? articleEditor(article, hooks) : editorPlaceholder(id));
  };
  const refresh = async (id) => {
    await loadArticles();
    state.selected = id || null;
    showList();
    await showEditor(id);
  };

  mount(trySlot, trial.el);
  mount(listSlot, listInner, io);
  mount(listInner, h("p", { class: "empty" }, t("common.loading")));
  await refresh(param);
  trial.rerun();
}
