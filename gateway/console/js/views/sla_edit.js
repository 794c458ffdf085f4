// The SLA editor of #/admin/sla: standard targets per priority × clock (minutes or hours), the peak
// factor and the warning lead time. Save sends only what changed (PUT /api/sla merges it onto the
// policy in force and validates the whole); Reset goes back to the server's defaults
// (DELETE /api/sla/policy). Either way only new tickets are affected, which the panel says.

import { ApiFailure, api } from "../api.js";
import { h, qsa, toast, when } from "../dom.js";
import { lang, t } from "../i18n.js";
import "./sla_strings.js";

export const CLOCKS = [["first", "first_response_s"], ["next", "next_response_s"], ["resolution", "resolution_s"]];
const UNITS = [["min", 60], ["hour", 3600]];

/** A number as short text: 1.5, not 1.5000001 (inputs show durations in the chosen unit). */
function plain(n) {
  return String(Number(n.toFixed(2)));
}

/** Hours for whole hours from 1 h up, minutes otherwise (so 10 min, 4 h, 72 h read naturally). */
function unitFor(seconds) {
  return seconds >= 3600 && seconds % 3600 === 0 ? 3600 : 60;
}

/** A number input with a unit select, remembering the server's seconds in data-seconds. */
function durationInput(id, field, seconds, label) {
  const unit = unitFor(seconds);
  const input = h("input", { type: "number", id, min: "0", step: "any", class: "adm-dur-value", value: plain(seconds / unit),
    "aria-label": label, dataset: { field, seconds: String(seconds) } });
  const select = h("select", { id: `${id}-unit`, class: "adm-dur-unit", "aria-label": `${label} · ${t("adm.sla.unit")}` },
    UNITS.map(([name, size]) => h("option", { value: String(size), selected: size === unit }, t(`adm.sla.unit.${name}`))));
  input.dataset.unit = String(unit);
  select.addEventListener("change", () => {
    // Keep the duration, change how it is written: 60 分钟 becomes 1 小时.
    const size = Number(select.value);
    if (Number.isFinite(input.valueAsNumber)) input.value = plain((input.valueAsNumber * Number(input.dataset.unit)) / size);
    input.dataset.unit = String(size);
  });
  return h("span", { class: "adm-dur" }, input, select);
}

/** Seconds the admin typed into a duration input; NaN when empty or not positive. A value still
 * showing the server's target (perhaps rounded, 10 min = 0.17 h) is that target, not a change. */
function typedSeconds(input) {
  const value = input.valueAsNumber;
  const unit = Number(input.dataset.unit);
  const original = Number(input.dataset.seconds);
  if (input.value === plain(original / unit)) return original;
  return Number.isFinite(value) && value > 0 ? Math.round(value * unit) : NaN;
}

function markInvalid(root, field) {
  for (const el of qsa(".adm-invalid", root)) {
    el.classList.remove("adm-invalid");
    el.removeAttribute("aria-invalid");
  }
  const target = qsa("[data-field]", root).find((el) => el.dataset.field === field);
  if (target) {
    target.classList.add("adm-invalid");
    target.setAttribute("aria-invalid", "true");
    target.focus();
  }
}

/** The body of PUT /api/sla with only the changed values, or throws {field} for an unreadable input. */
function changes(root, sla) {
  const body = {};
  for (const input of qsa("input.adm-dur-value", root)) {
    const seconds = typedSeconds(input);
    if (Number.isNaN(seconds)) throw Object.assign(new Error(t("adm.sla.edit.bad")), { field: input.dataset.field });
    if (seconds !== Number(input.dataset.seconds)) {
      const [, priority, clock] = input.dataset.field.split(".");
      ((body.targets ||= {})[priority] ||= {})[clock] = seconds;
    }
  }
  const factor = qsa("#adm-sla-factor", root)[0];
  if (!Number.isFinite(factor.valueAsNumber) || factor.valueAsNumber <= 0) {
    throw Object.assign(new Error(t("adm.sla.edit.bad")), { field: "peak_factor" });
  }
  if (factor.valueAsNumber !== sla.peak_factor) body.peak_factor = factor.valueAsNumber;
  const warn = qsa("#adm-sla-warn", root)[0];
  if (!Number.isFinite(warn.valueAsNumber) || warn.valueAsNumber < 0) {
    throw Object.assign(new Error(t("adm.sla.edit.bad")), { field: "warn_before_s" });
  }
  const warnSeconds = Math.round(warn.valueAsNumber * 60);
  if (warnSeconds !== sla.warn_before_s) body.warn_before_s = warnSeconds;
  return body;
}

/** The editor panel; onChanged(describe) re-renders the page with what the server now says. */
export function editor(sla, onChanged) {
  const error = h("p", { class: "error", role: "alert", id: "adm-sla-error" });
  const rows = Object.entries(sla.standard).map(([priority, target]) =>
    h("tr", { dataset: { priority } },
      h("td", {}, h("span", { class: ["badge", priority.toLowerCase()] }, priority), " ", t(`adm.sla.p.${priority}`)),
      CLOCKS.map(([name, clock]) => h("td", {},
        durationInput(`adm-sla-in-${priority}-${clock}`, `targets.${priority}.${clock}`, target[clock],
          `${priority} ${t(`adm.sla.${name}`)}`),
        h("small", { class: "adm-dur-peak", dataset: { clock } },
          `${t("adm.sla.peak")} ${durationText(sla.peak[priority][clock])}`)))));
  const save = h("button", { type: "submit", class: "primary", id: "adm-sla-save" }, t("adm.sla.edit.save"));
  const reset = h("button", { type: "button", id: "adm-sla-reset", disabled: !sla.customized }, t("adm.sla.edit.reset"));
  const form = h("form", { class: "adm-sla-edit", id: "adm-sla-edit", novalidate: true },
    h("table", { class: "grid adm-sla-edit-table" },
      h("thead", {}, h("tr", {}, h("th", {}, t("adm.sla.priority")), CLOCKS.map(([name]) => h("th", {}, t(`adm.sla.${name}`))))),
      h("tbody", {}, rows)),
    h("div", { class: "row adm-sla-knobs" },
      h("label", {}, t("adm.sla.edit.factor"),
        h("input", { type: "number", id: "adm-sla-factor", min: "1", max: "10", step: "0.1", value: plain(sla.peak_factor),
          dataset: { field: "peak_factor" } })),
      h("label", {}, t("adm.sla.edit.warn"),
        h("input", { type: "number", id: "adm-sla-warn", min: "0", step: "any", value: plain(sla.warn_before_s / 60),
          dataset: { field: "warn_before_s" } }))),
    error,
    h("div", { class: "row adm-sla-actions" }, save, reset,
      h("span", { class: "muted grow", id: "adm-sla-meta", dataset: { customized: String(sla.customized) } },
        sla.customized
          ? t("adm.sla.edit.changed", { who: sla.updated_by, at: when(sla.updated_at, lang()) })
          : t("adm.sla.edit.default"))));

  const busy = (on) => { save.disabled = on; reset.disabled = on || !sla.customized; };
  const fail = (err) => {
    error.textContent = err instanceof ApiFailure || err.field !== undefined ? err.message : String(err);
    markInvalid(form, err instanceof ApiFailure ? err.body && err.body.field : err.field);
  };
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    let body;
    try {
      body = changes(form, sla);
    } catch (err) {
      fail(err);
      return;
    }
    if (!Object.keys(body).length) {
      toast(t("adm.sla.edit.nochange"));
      return;
    }
    if (!window.confirm(t("adm.sla.edit.confirm"))) return;
    busy(true);
    try {
      const updated = await api("PUT", "/api/sla", body);
      toast(t("adm.sla.edit.saved"));
      onChanged(updated);
    } catch (err) {
      fail(err);
      busy(false);
    }
  });
  reset.addEventListener("click", async () => {
    if (!window.confirm(t("adm.sla.edit.reset.confirm"))) return;
    busy(true);
    try {
      const updated = await api("DELETE", "/api/sla/policy");
      toast(t("adm.sla.edit.reset.done"));
      onChanged(updated);
    } catch (err) {
      fail(err);
      busy(false);
    }
  });

  return h("section", { class: "panel adm-sla-editor", id: "adm-sla-editor" },
    h("h2", {}, t("adm.sla.edit.title")),
    h("p", { class: "adm-sla-note", id: "adm-sla-note" }, t("adm.sla.edit.note")),
    h("p", { class: "muted" }, t("adm.sla.edit.help")),
    form);
}

/** A target as people say it: "10 分钟", "4 小时", "3 天", "2 小时 30 分" (peak ones may be fractional). */
export function durationText(seconds) {
  const m = seconds / 60;
  if (m < 60) return t("adm.sla.min", { n: plain(m) });
  if (m % 1440 === 0) return t("adm.sla.day", { n: m / 1440 });
  if (m % 60 === 0) return t("adm.sla.hour", { n: m / 60 });
  return t("adm.sla.hm", { h: Math.floor(m / 60), m: plain(m % 60) });
}
