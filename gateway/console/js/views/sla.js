// #/admin/sla: the peak-season switch (PUT /api/sla {profile}), the SLA targets in force (standard and
// 双11 peak side by side, both as the server computed them: GET /api/sla sends "standard" and "peak"),
// and the editor of the standard targets, peak factor and warning lead (sla_edit.js).

import { ApiFailure, api } from "../api.js";
import { h, mount, toast } from "../dom.js";
import { t } from "../i18n.js";
import { CLOCKS, durationText, editor } from "./sla_edit.js";
import "./sla_strings.js";

function targetsTable(sla) {
  const peak = sla.profile === "peak";
  const sub = (name) => h("th", { class: ["num", (name === "peak") === peak && "adm-current"] },
    t(`adm.sla.${name}`), (name === "peak") === peak ? t("adm.sla.current") : "");
  const rows = Object.keys(sla.standard).sort().map((priority) =>
    h("tr", { dataset: { priority } },
      h("td", {}, h("span", { class: ["badge", priority.toLowerCase()] }, priority), " ",
        t(`adm.sla.p.${priority}`)),
      CLOCKS.map(([, clock]) => [
        h("td", { class: ["num", !peak && "adm-current"], dataset: { clock, profile: "standard" } },
          durationText(sla.standard[priority][clock])),
        h("td", { class: ["num", peak && "adm-current"], dataset: { clock, profile: "peak" } },
          durationText(sla.peak[priority][clock])),
      ])));
  return h("table", { class: "grid adm-sla-table", id: "adm-sla-table" },
    h("thead", {},
      h("tr", {}, h("th", { rowspan: 2 }, t("adm.sla.priority")),
        CLOCKS.map(([name]) => h("th", { colspan: 2, class: "adm-group" }, t(`adm.sla.${name}`)))),
      h("tr", {}, CLOCKS.map(() => [sub("standard"), sub("peak")]))),
    h("tbody", {}, rows));
}

function peakPanel(sla, draw) {
  const peak = sla.profile === "peak";
  const factor = sla.peak_factor;
  const error = h("p", { class: "error", role: "alert" });
  const toggle = h("button", { type: "button", id: "adm-sla-peak", role: "switch", "aria-checked": String(peak),
    class: ["adm-switch", peak && "on"], dataset: { profile: sla.profile } },
  h("span", { class: "adm-switch-track" }, h("span", { class: "adm-switch-knob" })),
  h("span", { class: "adm-switch-label" }, t(peak ? "adm.sla.peak.on" : "adm.sla.peak.off")));
  toggle.addEventListener("click", async () => {
    const next = peak ? "standard" : "peak";
    if (!window.confirm(t(peak ? "adm.sla.peak.confirm.off" : "adm.sla.peak.confirm.on", { factor }))) return;
    toggle.disabled = true;
    try {
      const updated = await api("PUT", "/api/sla", { profile: next });
      toast(t(`adm.sla.switched.${updated.profile}`));
      draw(updated);
    } catch (err) {
      error.textContent = err instanceof ApiFailure ? err.message : String(err);
      toggle.disabled = false;
    }
  });
  return h("section", { class: ["panel", "adm-peak", peak && "adm-peak-on"], id: "adm-sla-profile",
    dataset: { profile: sla.profile } },
  h("div", { class: "row" }, h("h2", { class: "grow" }, t("adm.sla.peak.title")), toggle),
  h("p", {}, t("adm.sla.peak.explain", { factor })),
  error);
}

export async function render(root) {
  const draw = (sla) => {
    mount(root,
      h("h1", {}, t("adm.sla.title")),
      peakPanel(sla, draw),
      h("section", { class: "panel", id: "adm-sla-effective", dataset: { customized: String(sla.customized) } },
        h("h2", {}, t("adm.sla.table")),
        targetsTable(sla),
        h("p", { class: "muted" }, t("adm.sla.warn", { warn: durationText(sla.warn_before_s) })),
        h("p", { class: "muted" }, t("adm.sla.vip"))),
      editor(sla, draw));
  };
  try {
    draw(await api("GET", "/api/sla"));
  } catch (err) {
    mount(root, h("p", { class: "error" }, `${t("common.error")}: ${err.message}`));
  }
}
