// Forms of the agents page: create a staff account, edit one (PATCH + set password), and the box that
// shows a fresh API token exactly once.

import { ApiFailure, api } from "../api.js";
import { h, toast } from "../dom.js";
import { t } from "../i18n.js";

const ID_RULE = /^[A-Za-z0-9_.-]{1,64}$/;
export const ROLES = ["agent", "supervisor", "admin"];

/** "returns, VIP lang:en" → ["returns", "vip", "lang:en"] (the server lowercases too). */
export function splitSkills(text) {
  return [...new Set(text.split(/[,，、\s]+/).map((s) => s.trim().toLowerCase()).filter(Boolean))];
}

function roleSelect(id, value, disabled) {
  const select = h("select", { id, disabled }, ROLES.map((r) => h("option", { value: r }, t(`role.${r}`))));
  select.value = value;
  return select;
}

/** Skills input plus clickable chips of the skills already in use (appends the clicked one). */
function skillsField(id, value, inUse) {
  const input = h("input", { id, value: value.join(", "), placeholder: "returns, logistics, vip, lang:en" });
  const add = (skill) => {
    const current = splitSkills(input.value);
    if (!current.includes(skill)) input.value = [...current, skill].join(", ");
  };
  return h("label", {}, t("adm.field.skills"), input,
    inUse.length ? h("span", { class: "adm-skill-picks" }, inUse.map((skill) =>
      h("button", { type: "button", class: "adm-chip adm-pick", dataset: { skill }, on: { click: () => add(skill) } }, `+ ${skill}`)))
      : null);
}

async function submitting(button, error, work) {
  error.textContent = "";
  button.disabled = true;
  try {
    await work();
  } catch (err) {
    error.textContent = err instanceof ApiFailure ? err.message : String(err.message || err);
  } finally {
    button.disabled = false;
  }
}

/** The create form; done(created, token) after a create, done(null) on cancel. */
export function createForm(inUse, done) {
  const id = h("input", { id: "adm-agent-id", maxLength: 64, autocomplete: "off" });
  const name = h("input", { id: "adm-agent-name", maxLength: 128 });
  const role = roleSelect("adm-agent-role", "agent", false);
  const team = h("input", { id: "adm-agent-team", value: "default", maxLength: 64 });
  const max = h("input", { id: "adm-agent-max", type: "number", min: 0, max: 50, value: 5 });
  const password = h("input", { id: "adm-agent-password", type: "password", autocomplete: "new-password" });
  const error = h("p", { class: "error", role: "alert" });
  const save = h("button", { type: "submit", id: "adm-agent-save", class: "primary" }, t("adm.create"));
  const skills = skillsField("adm-agent-skills", [], inUse);
  const form = h("form", { class: "panel adm-form", id: "adm-agent-form", on: { submit: (ev) => {
    ev.preventDefault();
    submitting(save, error, async () => {
      if (!ID_RULE.test(id.value.trim())) throw new Error(t("adm.err.id"));
      if (!name.value.trim()) throw new Error(t("adm.err.name"));
      if (password.value && password.value.length < 8) throw new Error(t("adm.err.password"));
      const body = { id: id.value.trim(), name: name.value.trim(), role: role.value, team: team.value.trim() || "default",
        skills: splitSkills(skills.querySelector("input").value), max_concurrent: Number(max.value) };
      if (password.value) body.password = password.value;
      const created = await api("POST", "/api/agents", body);
      toast(t("adm.created", { id: created.id }));
      done(created, created.token);
    });
  } } },
  h("h2", {}, t("adm.form.new")),
  h("div", { class: "adm-grid" },
    h("label", {}, t("adm.field.id"), id),
    h("label", {}, t("adm.field.name"), name),
    h("label", {}, t("adm.field.role"), role),
    h("label", {}, t("adm.field.team"), team),
    h("label", {}, t("adm.field.max"), max),
    h("label", {}, t("adm.field.password"), password)),
  skills, error,
  h("div", { class: "row" }, save, h("button", { type: "button", on: { click: () => done(null) } }, t("common.cancel"))));
  setTimeout(() => id.focus(), 0);
  return form;
}

/** The edit form for agent; me is the logged-in admin (who may not demote or deactivate themself). */
export function editForm(agent, me, inUse, done) {
  const self = agent.id === me.id;
  const name = h("input", { id: "adm-edit-name", value: agent.name, maxLength: 128 });
  const role = roleSelect("adm-edit-role", agent.role, self);
  const team = h("input", { id: "adm-edit-team", value: agent.team, maxLength: 64 });
  const max = h("input", { id: "adm-edit-max", type: "number", min: 0, max: 50, value: agent.max_concurrent });
  const active = h("input", { id: "adm-edit-active", type: "checkbox", checked: agent.active, disabled: self });
  const skills = skillsField("adm-edit-skills", agent.skills || [], inUse);
  const error = h("p", { class: "error", role: "alert" });
  const save = h("button", { type: "submit", id: "adm-edit-save", class: "primary" }, t("common.save"));
  const password = h("input", { id: "adm-edit-password", type: "password", autocomplete: "new-password" });
  const pwError = h("p", { class: "error", role: "alert" });
  const pwSave = h("button", { type: "button", id: "adm-edit-password-save" }, t("adm.password.save"));
  pwSave.addEventListener("click", () => submitting(pwSave, pwError, async () => {
    if (password.value.length < 8) throw new Error(t("adm.err.password"));
    await api("POST", `/api/agents/${encodeURIComponent(agent.id)}/password`, { password: password.value });
    password.value = "";
    toast(t("adm.password.done"));
  }));
  return h("form", { class: "panel adm-form", id: "adm-edit-form", dataset: { agentId: agent.id }, on: { submit: (ev) => {
    ev.preventDefault();
    submitting(save, error, async () => {
      if (!name.value.trim()) throw new Error(t("adm.err.name"));
      const body = { name: name.value.trim(), team: team.value.trim(), skills: splitSkills(skills.querySelector("input").value),
        max_concurrent: Number(max.value) };
      // Role and active are left out for oneself: the server would accept them, and an admin who
      // demotes or deactivates their own account locks themself out of this page.
      if (!self) Object.assign(body, { role: role.value, active: active.checked });
      const updated = await api("PATCH", `/api/agents/${encodeURIComponent(agent.id)}`, body);
      toast(t("adm.updated"));
      done(updated);
    });
  } } },
  h("h2", {}, t("adm.form.edit", { id: agent.id })),
  h("div", { class: "adm-grid" },
    h("label", {}, t("adm.field.name"), name),
    h("label", {}, t("adm.field.role"), role),
    h("label", {}, t("adm.field.team"), team),
    h("label", {}, t("adm.field.max"), max)),
  skills,
  h("label", { class: "adm-check" }, active, t("adm.field.active")),
  self ? h("p", { class: "muted" }, t("adm.self")) : null,
  error,
  h("div", { class: "row" }, save, h("button", { type: "button", on: { click: () => done(null) } }, t("common.cancel"))),
  h("div", { class: "adm-password" },
    h("label", { class: "grow" }, t("adm.field.newpassword"), password), pwSave),
  pwError);
}

/** A freshly issued API token, shown once with a copy button and a warning. */
export function tokenBox(agentId, token, onClose) {
  const value = h("input", { id: "adm-token-value", readOnly: true, value: token });
  const copy = h("button", { type: "button", id: "adm-token-copy", on: { click: async () => {
    value.select();
    try {
      await navigator.clipboard.writeText(token);
    } catch {
      document.execCommand("copy"); // older browsers / insecure origins: copy the selection
    }
    copy.textContent = t("adm.token.copied");
  } } }, t("adm.token.copy"));
  return h("section", { class: "panel adm-token", id: "adm-token-box", role: "alert", dataset: { agentId } },
    h("h2", {}, t("adm.token.title", { id: agentId })),
    h("p", { class: "adm-token-warn" }, t("adm.token.warn")),
    h("div", { class: "row" }, value, copy),
    h("button", { type: "button", class: "link", id: "adm-token-close", on: { click: onClose } }, t("adm.token.close")));
}
