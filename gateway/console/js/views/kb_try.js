// "Try it": ask the knowledge index a question the way the bot does (POST /api/kb/search) and show
// what would happen — which article answers and with what score, or that the bot declines and hands
// the customer to a human because the best score is under the threshold.

import { ApiFailure, api } from "../api.js";
import { h, mount } from "../dom.js";
import { t } from "../i18n.js";

// Kept across re-renders of the page (opening an article re-renders it), so the result stays in view
// next to the article it points at and is re-run against the index after every edit.
let lastQuery = "";
let seq = 0;

const score = (value) => (typeof value === "number" ? value.toFixed(3) : "—");

/** One hit: title, score bar with the threshold marked, matched phrasing; click opens the article. */
function hitRow(hit, result, onOpen) {
  const answering = hit.article_id === result.answer;
  const fill = h("span", { class: "kb-bar-fill" });
  fill.style.width = `${Math.max(0, Math.min(1, hit.score)) * 100}%`;
  const mark = h("span", { class: "kb-bar-threshold", title: t("kb.try.threshold", { threshold: score(result.threshold) }) });
  mark.style.left = `${Math.max(0, Math.min(1, result.threshold)) * 100}%`;
  return h("li", {},
    h("button", { type: "button", class: ["kb-hit", answering && "kb-hit-answer", hit.score < result.threshold && "kb-hit-low"],
      dataset: { articleId: hit.article_id }, on: { click: () => onOpen(hit.article_id) } },
    h("span", { class: "kb-hit-head" },
      h("span", { class: "kb-hit-title" }, hit.title || hit.article_id),
      h("span", { class: "kb-score" }, score(hit.score))),
    h("span", { class: "kb-bar" }, fill, mark),
    h("span", { class: "kb-hit-meta muted" }, t("kb.try.matched", { text: hit.matched })),
    h("span", { class: "kb-hit-meta muted" }, t("kb.try.parts", { dense: score(hit.dense), lexical: score(hit.lexical) }))));
}

/** Render a search answer {hits, answer, declined, reason, threshold} into box. */
function showResult(box, result, { onOpen, articleById }) {
  const best = result.hits.length ? Math.max(...result.hits.map((x) => x.score)) : null;
  const vars = { score: score(best), threshold: score(result.threshold) };
  const answering = result.hits.find((x) => x.article_id === result.answer);
  const article = result.answer ? articleById(result.answer) : null;
  box.dataset.verdict = result.declined ? "decline" : "answer";
  box.dataset.answer = result.answer || "";
  mount(box,
    h("div", { class: ["kb-verdict", result.declined ? "kb-verdict-decline" : "kb-verdict-answer"], id: "kb-try-verdict" },
      h("strong", {}, t(result.declined ? "kb.try.decline" : "kb.try.answer")),
      answering ? h("span", { class: "kb-verdict-title" }, t("kb.try.quoted", { title: answering.title || answering.article_id })) : null,
      h("span", { class: "kb-verdict-why" }, t(`kb.try.reason.${result.reason}`, vars)),
      // The reasons that compare a score already name the threshold.
      result.reason === "no_articles"
        ? h("span", { class: "kb-verdict-threshold" }, t("kb.try.threshold", { threshold: score(result.threshold) }))
        : null),
    article && article.answer
      ? h("div", { class: "kb-reply" }, h("small", {}, t("kb.try.reply")), h("p", {}, article.answer))
      : null,
    h("h3", {}, t("kb.try.hits")),
    result.hits.length
      ? h("ol", { class: "kb-hits" }, result.hits.map((hit) => hitRow(hit, result, onOpen)))
      : h("p", { class: "muted" }, t("kb.try.nohits")));
}

/**
 * The try-it panel. opts: onOpen(id) opens an article; articleById(id) → the loaded article or null
 * (to show the reply text). Returns {el, rerun} — rerun() repeats the last question (after an edit).
 */
export function tryBox(opts) {
  const input = h("input", { id: "kb-try-input", class: "grow", placeholder: t("kb.try.placeholder"),
    value: lastQuery, maxLength: 2000 });
  const result = h("div", { id: "kb-try-result", class: "kb-try-result", "aria-live": "polite" });
  const go = h("button", { type: "submit", id: "kb-try-go", class: "primary" }, t("kb.try.go"));

  const run = async () => {
    const text = input.value.trim();
    if (!text) return;
    lastQuery = text;
    const mine = ++seq; // answers can overtake each other: only the newest question is shown
    result.dataset.state = "loading";
    try {
      const answer = await api("POST", "/api/kb/search", { text, k: 5 });
      if (mine !== seq) return;
      showResult(result, answer, opts);
      result.dataset.query = text;
    } catch (err) {
      if (mine !== seq) return;
      delete result.dataset.verdict;
      mount(result, h("p", { class: "error" }, err instanceof ApiFailure ? err.message : String(err)));
    } finally {
      if (mine === seq) result.dataset.state = "done";
    }
  };

  const el = h("section", { class: "panel kb-try", id: "kb-try" },
    h("h2", {}, t("kb.try.title")),
    h("p", { class: "muted" }, t("kb.try.hint")),
    h("form", { class: "row", on: { submit: (ev) => { ev.preventDefault(); run(); } } }, input, go),
    result);
  return { el, rerun: () => (input.value.trim() ? run() : undefined) };
}
