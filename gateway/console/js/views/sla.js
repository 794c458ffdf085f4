// #/admin/sla: the SLA targets per priority (standard and 双11 peak side by side) and the peak-season
// switch (PUT /api/sla {profile}). The targets themselves are server configuration (SLA_* settings);
// the API changes only the profile, so that is what this page edits.

import { ApiFailure, api } from "../api.js";
import { h, mount, toast } from "../dom.js";
import { register, t } from "../i18n.js";

register({
  zh: {
    "adm.sla.title": "SLA 与大促",
    "adm.sla.peak.title": "大促模式（双11 / 618）",
    "adm.sla.peak.on": "大促模式已开启",
    "adm.sla.peak.off": "标准模式",
    "adm.sla.peak.explain": "开启后，新工单的所有 SLA 目标（首次响应、再次响应、解决时限）放宽为 {factor} 倍；客户收到的等待提示会说明“当前咨询量较大”。已经打开的工单保留原来的到期时间；预警提前量不变。",
    "adm.sla.peak.confirm.on": "切换到大促模式？之后新建的工单 SLA 目标将放宽为 {factor} 倍。",
    "adm.sla.peak.confirm.off": "切换回标准模式？之后新建的工单使用标准 SLA 目标。",
    "adm.sla.switched.peak": "已切换到大促模式",
    "adm.sla.switched.standard": "已切换回标准模式",
    "adm.sla.table": "各优先级的 SLA 目标",
    "adm.sla.priority": "优先级",
    "adm.sla.first": "首次响应",
    "adm.sla.next": "再次响应",
    "adm.sla.resolution": "解决时限",
    "adm.sla.standard": "标准",
    "adm.sla.peak": "大促",
    "adm.sla.current": "（当前）",
    "adm.sla.p.P0": "紧急",
    "adm.sla.p.P1": "高",
    "adm.sla.p.P2": "普通",
    "adm.sla.p.P3": "咨询",
    "adm.sla.warn": "到期前 {warn} 发出预警（最多为目标时长的一半）。",
    "adm.sla.vip": "VIP 客户的首次响应和再次响应目标减半。",
    "adm.sla.min": "{n} 分钟",
    "adm.sla.hour": "{n} 小时",
    "adm.sla.day": "{n} 天",
    "adm.sla.hm": "{h} 小时 {m} 分",
    "adm.sla.config": "目标时长、大促倍数和预警提前量在服务器配置中设置（SLA_PEAK_FACTOR、SLA_WARN_BEFORE_MIN）；此页切换当前模式，对所有进程立即生效。",
  },
  en: {
    "adm.sla.title": "SLA & peak season",
    "adm.sla.peak.title": "Peak season mode (Double 11 / 618)",
    "adm.sla.peak.on": "Peak mode is on",
    "adm.sla.peak.off": "Standard mode",
    "adm.sla.peak.explain": "When on, every SLA target of new tickets (first response, next response, resolution) is relaxed {factor}×, and customers are told volumes are high. Tickets already open keep their due times; the warning lead time does not change.",
    "adm.sla.peak.confirm.on": "Switch to peak mode? New tickets will get SLA targets relaxed {factor}×.",
    "adm.sla.peak.confirm.off": "Switch back to standard mode? New tickets will get the standard SLA targets.",
    "adm.sla.switched.peak": "Switched to peak mode",
    "adm.sla.switched.standard": "Switched back to standard mode",
    "adm.sla.table": "SLA targets per priority",
    "adm.sla.priority": "Priority",
    "adm.sla.first": "First response",
    "adm.sla.next": "Next response",
    "adm.sla.resolution": "Resolution",
    "adm.sla.standard": "Standard",
    "adm.sla.peak": "Peak",
    "adm.sla.current": " (current)",
    "adm.sla.p.P0": "urgent",
    "adm.sla.p.P1": "high",
    "adm.sla.p.P2": "normal",
    "adm.sla.p.P3": "inquiry",
    "adm.sla.warn": "Warnings fire {warn} before a target is due (at most half the target).",
    "adm.sla.vip": "VIP customers get half the first- and next-response targets.",
    "adm.sla.min": "{n} min",
    "adm.sla.hour": "{n} h",
    "adm.sla.day": "{n} d",
    "adm.sla.hm": "{h} h {m} min",
    "adm.sla.config": "Targets, the peak factor and the warning lead time are server settings (SLA_PEAK_FACTOR, SLA_WARN_BEFORE_MIN); this page switches the mode in force, for every process at once.",
  },
});

/** A target as people say it: "10 分钟", "4 小时", "3 天" (targets are whole minutes). */
export function span(seconds) {
  const m = Math.round(seconds / 60);
  if (m < 60) return t("adm.sla.min", { n: m });
  if (m % 1440 === 0) return t("adm.sla.day", { n: m / 1440 });
  if (m % 60 === 0) return t("adm.sla.hour", { n: m / 60 });
  return t("adm.sla.hm", { h: Math.floor(m / 60), m: m % 60 });
}

const CLOCKS = [["first", "first_response_s"], ["next", "next_response_s"], ["resolution", "resolution_s"]];

/** Standard and peak seconds for a target, whichever profile the server described (it sends the
 * targets in force: peak ones are the standard ones times the factor). */
export function bothProfiles(seconds, profile, factor) {
  return profile === "peak"
    ? { standard: Math.round(seconds / factor), peak: seconds }
    : { standard: seconds, peak: Math.round(seconds * factor) };
}

function targetsTable(sla) {
  const peak = sla.profile === "peak";
  const sub = (name) => h("th", { class: ["num", (name === "peak") === peak && "adm-current"] },
    t(`adm.sla.${name}`), (name === "peak") === peak ? t("adm.sla.current") : "");
  const rows = Object.entries(sla.targets).sort(([a], [b]) => a.localeCompare(b)).map(([priority, target]) =>
    h("tr", { dataset: { priority } },
      h("td", {}, h("span", { class: ["badge", priority.toLowerCase()] }, priority), " ",
        t(`adm.sla.p.${priority}`)),
      CLOCKS.map(([, field]) => {
        const both = bothProfiles(target[field], sla.profile, sla.peak_factor);
        return [
          h("td", { class: ["num", !peak && "adm-current"], dataset: { clock: field, profile: "standard" } }, span(both.standard)),
          h("td", { class: ["num", peak && "adm-current"], dataset: { clock: field, profile: "peak" } }, span(both.peak)),
        ];
      })));
  return h("table", { class: "grid adm-sla-table", id: "adm-sla-table" },
    h("thead", {},
      h("tr", {}, h("th", { rowspan: 2 }, t("adm.sla.priority")),
        CLOCKS.map(([name]) => h("th", { colspan: 2, class: "adm-group" }, t(`adm.sla.${name}`)))),
      h("tr", {}, CLOCKS.map(() => [sub("standard"), sub("peak")]))),
    h("tbody", {}, rows));
}

export async function render(root) {
  const draw = (sla) => {
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
    mount(root,
      h("h1", {}, t("adm.sla.title")),
      h("section", { class: ["panel", "adm-peak", peak && "adm-peak-on"], id: "adm-sla-profile", dataset: { profile: sla.profile } },
        h("div", { class: "row" }, h("h2", { class: "grow" }, t("adm.sla.peak.title")), toggle),
        h("p", {}, t("adm.sla.peak.explain", { factor })),
        error),
      h("section", { class: "panel" },
        h("h2", {}, t("adm.sla.table")),
        targetsTable(sla),
        h("p", { class: "muted" }, t("adm.sla.warn", { warn: span(sla.warn_before_s) })),
        h("p", { class: "muted" }, t("adm.sla.vip")),
        h("p", { class: "muted" }, t("adm.sla.config"))));
  };
  try {
    draw(await api("GET", "/api/sla"));
  } catch (err) {
    mount(root, h("p", { class: "error" }, `${t("common.error")}: ${err.message}`));
  }
}
