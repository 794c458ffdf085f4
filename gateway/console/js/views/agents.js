// #/admin/agents: the staff table (role, team, skills, capacity, presence), the skills in use, and
// create / edit / set password / rotate API token. Forms live in agents_form.js.

import { api } from "../api.js";
import { h, mount, toast } from "../dom.js";
import { t } from "../i18n.js";
import "./agents_strings.js";
import { createForm, editForm, tokenBox } from "./agents_form.js";

let showInactive = false; // kept across re-renders of the page

/** Every skill held by an active agent, with how many agents hold it (most common first). */
export function skillsInUse(agents) {
  const counts = new Map();
  for (const agent of agents) {
    if (!agent.active) continue;
    for (const skill of agent.skills || []) counts.set(skill, (counts.get(skill) || 0) + 1);
  }
  return [...counts.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
}

function presenceBadge(presence) {
  const value = presence || "offline";
  return h("span", { class: ["badge", "adm-presence", value], dataset: { presence: value } }, t(`adm.presence.${value}`));
}

export async function render(root, ctx) {
  const tokenSlot = h("div", { id: "adm-token-slot" });
  const formSlot = h("div", { id: "adm-form-slot" });
  const skillsPanel = h("section", { class: "panel adm-skills", id: "adm-skills" });
  const body = h("tbody");
  let agents = [];

  const showToken = (agentId, token) => mount(tokenSlot, tokenBox(agentId, token, () => mount(tokenSlot)));
  const inUse = () => skillsInUse(agents).map(([skill]) => skill);

  const load = async () => {
    try {
      agents = (await api("GET", `/api/agents${showInactive ? "?all=1" : ""}`)).agents || [];
    } catch (err) {
      mount(body, h("tr", {}, h("td", { colspan: 9, class: "error" }, err.message)));
      return;
    }
    drawSkills();
    drawRows();
  };

  const drawSkills = () => {
    const skills = skillsInUse(agents);
    mount(skillsPanel,
      h("h2", {}, t("adm.skills.title")),
      skills.length
        ? h("div", { class: "adm-skill-list" }, skills.map(([skill, n]) =>
          h("span", { class: "adm-chip", dataset: { skill } }, skill, h("small", {}, ` ×${n}`))))
        : h("p", { class: "muted" }, t("adm.skills.none")),
      h("p", { class: "muted adm-hint" }, t("adm.skills.hint")));
  };

  const openCreate = () => {
    mount(formSlot, createForm(inUse(), async (created, token) => {
      mount(formSlot);
      if (created) { if (token) showToken(created.id, token); await load(); }
    }));
  };
  const openEdit = (agent) => {
    mount(formSlot, editForm(agent, ctx.me, inUse(), async (updated) => {
      mount(formSlot);
      if (updated) await load();
    }));
    formSlot.scrollIntoView({ block: "nearest" });
  };
  const rotate = async (agent) => {
    if (!window.confirm(t("adm.confirm.rotate", { id: agent.id }))) return;
    try {
      const answer = await api("POST", `/api/agents/${encodeURIComponent(agent.id)}/token`);
      showToken(agent.id, answer.token);
    } catch (err) {
      toast(err.message, "error");
    }
  };

  const drawRows = () => {
    if (!agents.length) {
      mount(body, h("tr", {}, h("td", { colspan: 9, class: "empty" }, t("adm.agents.empty"))));
      return;
    }
    mount(body, agents.map((a) => h("tr", { class: ["adm-agent", !a.active && "adm-inactive"], dataset: { agentId: a.id } },
      h("td", {}, h("code", {}, a.id), a.has_password ? h("small", { class: "adm-haspw" }, " · ", t("adm.password.set")) : null),
      h("td", {}, a.name),
      h("td", {}, h("span", { class: ["badge", `adm-role-${a.role}`] }, t(`role.${a.role}`))),
      h("td", {}, a.team),
      h("td", {}, (a.skills || []).map((skill) => h("span", { class: "adm-chip", dataset: { skill } }, skill))),
      h("td", { class: "num" }, String(a.max_concurrent)),
      h("td", {}, h("span", { class: ["badge", a.active ? "ok" : "breached"] }, t(a.active ? "adm.active" : "adm.inactive"))),
      h("td", {}, presenceBadge(a.presence)),
      h("td", { class: "adm-actions" },
        h("button", { type: "button", class: "link adm-edit", on: { click: () => openEdit(a) } }, t("adm.edit")),
        h("button", { type: "button", class: "link adm-rotate", on: { click: () => rotate(a) } }, t("adm.rotate"))))));
  };

  const inactive = h("input", { type: "checkbox", id: "adm-show-inactive", checked: showInactive,
    on: { change: () => { showInactive = inactive.checked; load(); } } });
  mount(root,
    h("div", { class: "row adm-head" },
      h("h1", { class: "grow" }, t("adm.agents.title")),
      h("label", { class: "adm-check" }, inactive, t("adm.agents.inactive")),
      h("button", { type: "button", id: "adm-agent-new", class: "primary", on: { click: openCreate } }, t("adm.agents.new"))),
    tokenSlot,
    h("div", { class: "adm-layout" },
      h("div", { class: "adm-main" },
        formSlot,
        h("table", { class: "grid", id: "adm-agents" },
          h("thead", {}, h("tr", {},
            ["id", "name", "role", "team", "skills"].map((c) => h("th", {}, t(`adm.col.${c}`))),
            h("th", { class: "num" }, t("adm.col.max")),
            ["active", "presence", "actions"].map((c) => h("th", {}, t(`adm.col.${c}`))))),
          body)),
      skillsPanel));
  await load();
}
