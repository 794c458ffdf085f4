// The sign-in form. The server sets an HttpOnly session cookie; the page only keeps the CSRF token.

import { ApiFailure, api } from "../api.js";
import { h, mount } from "../dom.js";
import { lang, setLang, t } from "../i18n.js";

export function renderLogin(root, onLoggedIn) {
  const error = h("p", { class: "error", id: "login-error", role: "alert" });
  const username = h("input", { id: "login-username", name: "username", autocomplete: "username", required: true });
  const password = h("input", { id: "login-password", name: "password", type: "password",
    autocomplete: "current-password", required: true });
  const submit = h("button", { id: "login-submit", type: "submit", class: "primary" }, t("login.submit"));
  const form = h("form", { class: "login-card", on: { submit: async (ev) => {
    ev.preventDefault();
    submit.disabled = true;
    error.textContent = "";
    try {
      onLoggedIn(await api("POST", "/api/session", { username: username.value.trim(), password: password.value }));
    } catch (err) {
      error.textContent = err instanceof ApiFailure ? err.message : t("login.failed");
      password.value = "";
    } finally {
      submit.disabled = false;
    }
  } } },
  h("h1", {}, "汇流 ", h("small", {}, "Huiliu")),
  h("p", { class: "muted" }, t("login.title")),
  h("label", {}, t("login.username"), username),
  h("label", {}, t("login.password"), password),
  error, submit,
  h("button", { type: "button", class: "link", id: "lang-switch",
    on: { click: () => { setLang(lang() === "zh" ? "en" : "zh"); renderLogin(root, onLoggedIn); } } },
  t("nav.lang")));
  mount(root, h("div", { class: "login-page" }, form));
  username.focus();
}
