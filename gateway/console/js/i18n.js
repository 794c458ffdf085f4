// Console text: Chinese by default, English on request. Each view module registers its own strings
// (register({zh: {...}, en: {...}})) so the words live next to the screen that shows them.

const dictionaries = { zh: {}, en: {} };
const STORAGE_KEY = "huiliu.lang";

/** Add strings; keys are dotted names such as "ws.queue.mine". */
export function register(dicts) {
  for (const [code, entries] of Object.entries(dicts)) Object.assign(dictionaries[code] ||= {}, entries);
}

export function lang() {
  const stored = localStorage.getItem(STORAGE_KEY);
  return stored === "en" || stored === "zh" ? stored : "zh";
}

export function setLang(code) {
  localStorage.setItem(STORAGE_KEY, code === "en" ? "en" : "zh");
  document.documentElement.lang = code === "en" ? "en" : "zh-CN";
}

/** The text for key in the current language ({name} placeholders filled from vars). Falls back to
 * Chinese, then to the key itself, so a missing translation is visible but never breaks a page. */
export function t(key, vars = {}) {
  const text = dictionaries[lang()][key] ?? dictionaries.zh[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (m, name) => (name in vars ? String(vars[name]) : m));
}

register({
  zh: {
    "app.title": "汇流客服台",
    "app.loading": "加载中…",
    "nav.workspace": "工作台",
    "nav.kb": "知识库",
    "nav.agents": "客服与技能",
    "nav.sla": "SLA 与大促",
    "nav.dashboard": "数据看板",
    "nav.channels": "渠道状态",
    "nav.logout": "退出登录",
    "nav.lang": "English",
    "role.agent": "客服",
    "role.supervisor": "主管",
    "role.admin": "管理员",
    "login.title": "登录汇流客服台",
    "login.username": "用户名",
    "login.password": "密码",
    "login.submit": "登录",
    "login.failed": "登录失败",
    "common.save": "保存",
    "common.cancel": "取消",
    "common.saved": "已保存",
    "common.error": "出错了",
    "common.none": "暂无",
    "common.loading": "加载中…",
    "common.search": "搜索",
    "common.refresh": "刷新",
    "common.delete": "删除",
    "common.confirm": "确定吗？",
    "common.forbidden": "没有权限访问此页面",
    "common.notfound": "页面不存在",
  },
  en: {
    "app.title": "Huiliu Service Desk",
    "app.loading": "Loading…",
    "nav.workspace": "Workspace",
    "nav.kb": "Knowledge base",
    "nav.agents": "Agents & skills",
    "nav.sla": "SLA & peak",
    "nav.dashboard": "Dashboard",
    "nav.channels": "Channels",
    "nav.logout": "Log out",
    "nav.lang": "中文",
    "role.agent": "Agent",
    "role.supervisor": "Supervisor",
    "role.admin": "Admin",
    "login.title": "Sign in to Huiliu",
    "login.username": "Username",
    "login.password": "Password",
    "login.submit": "Sign in",
    "login.failed": "Sign-in failed",
    "common.save": "Save",
    "common.cancel": "Cancel",
    "common.saved": "Saved",
    "common.error": "Something went wrong",
    "common.none": "None",
    "common.loading": "Loading…",
    "common.search": "Search",
    "common.refresh": "Refresh",
    "common.delete": "Delete",
    "common.confirm": "Are you sure?",
    "common.forbidden": "You do not have access to this page",
    "common.notfound": "No such page",
  },
});
