// The transfer dialog: hand a ticket to another agent, or put it back in the queue of other skills
// (POST /api/tickets/{id}/transfer with agent_id or skills). The colleagues list (GET
// /api/colleagues) shows who is online and what they handle.

import { get, post } from "../api.js";
import { h, toast } from "../dom.js";
import { t } from "../i18n.js";

/** Open the dialog inside `host` for ticket `tk`; done() after a successful transfer. */
export async function openTransfer(host, me, tk, done) {
  const old = host.querySelector("#ws-transfer-dialog");
  if (old) old.remove();
  let agents = [];
  try {
    agents = ((await get("/api/colleagues")).agents || []).filter((a) => a.id !== tk.assignee_id);
  } catch (err) {
    toast(err.message, "error");
  }
  const toAgent = h("input", { type: "radio", name: "ws-transfer-mode", id: "ws-transfer-to-agent", value: "agent",
    checked: true, on: { change: sync } });
  const toSkills = h("input", { type: "radio", name: "ws-transfer-mode", id: "ws-transfer-to-skills", value: "skills",
    on: { change: sync } });
  const agentInput = agents.length
    ? h("select", { id: "ws-transfer-agent" }, agents.map((a) => h("option", { value: a.id },
      `${a.name || a.id} · ${t(`ws.presence.${a.presence}`)}${a.skills.length ? ` · ${a.skills.join(", ")}` : ""}`)))
    : h("input", { id: "ws-transfer-agent", placeholder: t("ws.transfer.agentid"), autocomplete: "off" });
  const skillsInput = h("input", { id: "ws-transfer-skills", value: (tk.skills || []).join(", "),
    placeholder: t("ws.transfer.skillshint") });
  const error = h("p", { class: "error", id: "ws-transfer-error", role: "alert" });
  const confirm = h("button", { type: "submit", class: "primary", id: "ws-transfer-confirm" }, t("ws.transfer.confirm"));
  const dialog = h("dialog", { class: "ws-dialog", id: "ws-transfer-dialog" },
    h("form", { method: "dialog", on: { submit: (ev) => { ev.preventDefault(); submit(); } } },
      h("h2", {}, t("ws.transfer.title", { id: tk.id })),
      h("label", { class: "ws-radio" }, toAgent, h("span", {}, t("ws.transfer.toagent"))),
      agentInput,
      h("label", { class: "ws-radio" }, toSkills, h("span", {}, t("ws.transfer.toskills"))),
      skillsInput,
      error,
      h("div", { class: "row ws-dialog-buttons" }, h("span", { class: "grow" }),
        h("button", { type: "button", id: "ws-transfer-cancel", on: { click: () => dialog.close() } }, t("common.cancel")),
        confirm)));
  dialog.addEventListener("close", () => dialog.remove());

  function sync() {
    agentInput.disabled = !toAgent.checked;
    skillsInput.disabled = toAgent.checked;
  }

  async function submit() {
    error.textContent = "";
    let body;
    if (toAgent.checked) {
      const id = agentInput.value.trim();
      if (!id) { error.textContent = t("ws.transfer.needagent"); return; }
      body = { agent_id: id };
    } else {
      body = { skills: skillsInput.value.split(/[,，\s]+/).map((s) => s.trim()).filter(Boolean) };
    }
    confirm.disabled = true;
    try {
      await post(`/api/tickets/${tk.id}/transfer`, body);
      toast(t("ws.done.transfer"));
      dialog.close();
      done();
    } catch (err) {
      error.textContent = err.message;
    } finally {
      confirm.disabled = false;
    }
  }

  sync();
  host.append(dialog);
  dialog.showModal();
}
