// Knowledge base import (JSONL file → POST /api/kb/import?mode=…) and export (GET /api/kb/export).
// Import is all or nothing on the server: a bad line comes back as a per-line error list and no
// article is written, so the page shows the lines to fix.

import { ApiFailure, api } from "../api.js";
import { h, mount } from "../dom.js";
import { t } from "../i18n.js";

/** The import/export panel; onImported() runs after a successful import (to reload the list). */
export function importExport(onImported) {
  // A plain link: the session cookie goes along with a same-origin GET, and the server names the file.
  const exportLink = h("a", { id: "kb-export", class: "btn", href: "/api/kb/export", download: "" }, t("kb.export"));
  // The native file input is hidden behind a label styled as a button: its own caption follows the
  // browser's UI language, not the console's.
  const fileName = h("span", { class: "muted kb-file-name", id: "kb-import-name" }, t("kb.import.nofile.chosen"));
  const file = h("input", { type: "file", id: "kb-import-file", accept: ".jsonl,.ndjson,.json,.txt,application/x-ndjson",
    on: { change: () => { fileName.textContent = file.files && file.files[0] ? file.files[0].name : t("kb.import.nofile.chosen"); } } });
  const mode = h("select", { id: "kb-import-mode" },
    h("option", { value: "merge" }, t("kb.import.mode.merge")),
    h("option", { value: "replace" }, t("kb.import.mode.replace")));
  const result = h("div", { id: "kb-import-result", class: "kb-import-result", role: "status" });
  const go = h("button", { type: "button", id: "kb-import-go" }, t("kb.import.go"));

  go.addEventListener("click", async () => {
    const chosen = file.files && file.files[0];
    if (!chosen) {
      result.dataset.outcome = "error";
      mount(result, h("p", { class: "error" }, t("kb.import.nofile")));
      return;
    }
    if (mode.value === "replace" && !window.confirm(t("kb.import.confirm.replace"))) return;
    go.disabled = true;
    delete result.dataset.outcome;
    try {
      const text = await chosen.text();
      const done = await api("POST", `/api/kb/import?mode=${encodeURIComponent(mode.value)}`, text);
      result.dataset.outcome = "ok";
      mount(result, h("p", { class: "kb-import-ok" }, t("kb.import.done", {
        created: done.created ?? 0, updated: done.updated ?? 0, unchanged: done.unchanged ?? 0,
        unpublished: done.unpublished ?? 0, total: done.total ?? 0 })));
      file.value = "";
      fileName.textContent = t("kb.import.nofile.chosen");
      onImported();
    } catch (err) {
      result.dataset.outcome = "error";
      const lines = err instanceof ApiFailure && err.body && Array.isArray(err.body.errors) ? err.body.errors : [];
      mount(result,
        h("p", { class: "error" }, t("kb.import.failed"), " ", err.message),
        lines.length ? h("ul", { class: "kb-import-errors" }, lines.map((e) => h("li", { dataset: { line: String(e.line) } },
          t("kb.import.line", { line: e.line, message: e.message })))) : null);
    } finally {
      go.disabled = false;
    }
  });

  return h("section", { class: "panel kb-io" },
    h("h3", {}, t("kb.io.title")),
    h("div", { class: "row" }, exportLink),
    h("div", { class: "row" }, h("label", { class: "btn kb-file" }, t("kb.import.file"), file), fileName),
    h("div", { class: "row" }, mode, go),
    result);
}
