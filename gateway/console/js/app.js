// Boot and navigation: who is logged in (GET /api/session), the top bar, and hash routes that load
// one view module each. Views export render(root, ctx) and may return a cleanup function.

import { ApiFailure, api, setCsrf } from "./api.js";
import { h, mount, toast } from "./dom.js";
import { lang, setLang, t } from "./i18n.js";
import { renderLogin } from "./views/login.js";

const RANK = { agent: 0, supervisor: 1, admin: 2 };

// name → [module, minimum role, nav label key (null: not in the nav)]
const ROUTES = {
  workspace: ["./views/workspace.js", "agent", "nav.workspace"],
  dashboard: ["./views/dashboard.js", "supervisor", "nav.dashboard"],
  kb: ["./views/kb.js", "admin", "nav.kb"],
  "admin/agents": ["./views/agents.js", "admin", "nav.agents"],
  "admin/sla": ["./views/sla.js", "admin", "nav.sla"],
  "admin/channels": ["./views/channels.js", "admin", "nav.channels"],
};

let session = null; // {csrf, me}
let cleanup = null;
let navToken = 0;

/** "#/kb/12" → {name: "kb", param: "12"}; "#/admin/agents" → {name: "admin/agents", param: null}. */
export function parseRoute(hash) {
  const parts = (hash || "").replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  if (parts[0] === "admin" && parts.length >= 2) return { name: `admin/${parts[1]}`, param: parts[2] ?? null };
  return { name: parts[0] || "workspace", param: parts[1] ?? null };
}

function allowed(role, name) {
  const route = ROUTES[name];
  return route && RANK[role] >= RANK[route[1]];
}

function topBar(me, current) {
  const links = Object.entries(ROUTES)
    .filter(([name]) => allowed(me.role, name))
    .map(([name, [, , label]]) => h("a", { href: `#/${name}`, class: ["nav-link", name === current && "active"],
      dataset: { route: name } }, t(label)));
  return h("header", { class: "topbar" },
    h("span", { class: "brand" }, "汇流 ", h("small", {}, "Huiliu")),
    h("nav", {}, links),
    h("span", { class: "spacer" }),
    h("span", { class: "who", id: "who" }, me.name || me.id, " · ", t(`role.${me.role}`)),
    h("button", { type: "button", class: "link", id: "lang-switch",
      on: { click: () => { setLang(lang() === "zh" ? "en" : "zh"); show(); } } }, t("nav.lang")),
    h("button", { type: "button", class: "link", id: "logout", on: { click: logout } }, t("nav.logout")));
}

async function logout() {
  try { await api("DELETE", "/api/session"); } catch { /* already gone */ }
  session = null;
  show();
}

async function show() {
  const token = ++navToken;
  if (cleanup) { try { cleanup(); } catch (err) { console.error(err); } cleanup = null; }
  const root = document.getElementById("app");
  document.title = t("app.title");
  if (!session) {
    try {
      session = await api("GET", "/api/session");
      setCsrf(session.csrf);
    } catch (err) {
      if (!(err instanceof ApiFailure) || err.status !== 401) toast(err.message, "error");
      session = null;
    }
  }
  if (token !== navToken) return;
  if (!session) {
    renderLogin(root, async (s) => { session = s; setCsrf(s.csrf); show(); });
    return;
  }
  const route = parseRoute(location.hash);
  const main = h("main", { id: "view", class: `view-${route.name.replace("/", "-")}` });
  mount(root, topBar(session.me, route.name), main);
  if (!ROUTES[route.name]) { mount(main, h("p", { class: "empty" }, t("common.notfound"))); return; }
  if (!allowed(session.me.role, route.name)) { mount(main, h("p", { class: "empty" }, t("common.forbidden"))); return; }
  mount(main, h("p", { class: "empty" }, t("common.loading")));
  try {
    const mod = await import(ROUTES[route.name][0]);
    if (token !== navToken) return;
    mount(main);
    const ctx = { me: session.me, csrf: session.csrf, route, navigate: (hash) => { location.hash = hash; } };
    const result = await mod.render(main, ctx);
    if (token !== navToken) { if (typeof result === "function") result(); return; }
    cleanup = typeof result === "function" ? result : null;
  } catch (err) {
    console.error(err);
    mount(main, h("p", { class: "error" }, `${t("common.error")}: ${err.message}`));
  }
}

window.addEventListener("hashchange", () => {
  // Sub-routes of the same view (#/workspace/12 → #/workspace/13) re-render that view too: views
  // are cheap to build and this keeps each one stateless about navigation.
  show();
});
window.addEventListener("huiliu:logged-out", () => { session = null; show(); });
setLang(lang());
show();
