// The console's only way to the server: the staff JSON API, authenticated by the session cookie.
// Unsafe methods carry the CSRF token the session endpoint handed out (the cookie alone is not
// enough, so another site cannot make the browser act for a logged-in agent).

let csrfToken = "";

export function setCsrf(token) {
  csrfToken = token || "";
}

/** An API error: HTTP status, machine code and the server's (bilingual) message. */
export class ApiFailure extends Error {
  constructor(status, code, message, body) {
    super(message || code || `HTTP ${status}`);
    this.status = status;
    this.code = code;
    this.body = body;
  }
}

const UNSAFE = new Set(["POST", "PUT", "PATCH", "DELETE"]);

/**
 * Call the API. body: an object (sent as JSON), a string (sent as text, e.g. JSONL) or undefined.
 * Returns the parsed JSON, the text for non-JSON answers, or null for 204.
 */
export async function api(method, path, body, { raw = false } = {}) {
  const headers = { Accept: "application/json" };
  if (UNSAFE.has(method)) headers["X-CSRF-Token"] = csrfToken;
  let payload;
  if (typeof body === "string") {
    payload = body;
    headers["Content-Type"] = "text/plain; charset=utf-8";
  } else if (body !== undefined) {
    payload = JSON.stringify(body);
    headers["Content-Type"] = "application/json";
  }
  let resp;
  try {
    resp = await fetch(path, { method, headers, body: payload, credentials: "same-origin" });
  } catch (err) {
    throw new ApiFailure(0, "network", "网络连接失败 / network error");
  }
  if (resp.status === 204) return null;
  const type = resp.headers.get("Content-Type") || "";
  const data = type.includes("json") && !raw ? await resp.json().catch(() => null) : await resp.text();
  if (!resp.ok) {
    const code = data && data.error ? data.error : `http_${resp.status}`;
    const message = data && data.message ? data.message : `HTTP ${resp.status}`;
    if (resp.status === 401 && path !== "/api/session") window.dispatchEvent(new CustomEvent("huiliu:logged-out"));
    throw new ApiFailure(resp.status, code, message, data);
  }
  return data;
}

export const get = (path) => api("GET", path);
export const post = (path, body = {}) => api("POST", path, body);
export const put = (path, body = {}) => api("PUT", path, body);
export const patch = (path, body = {}) => api("PATCH", path, body);
export const del = (path) => api("DELETE", path);

/**
 * Live events for the logged-in staff member (Server-Sent Events; the browser reconnects by itself).
 * handlers: {kind: fn(eventData)} plus optional "*" for every event and "status" for open/error.
 * Returns a function that closes the stream.
 */
export function events(handlers) {
  const source = new EventSource("/api/agent/events");
  const kinds = ["message_received", "bot_replied", "escalated", "delivery_failed", "ticket_assigned",
    "ticket_updated", "agent_replied", "note_added", "sla_warning", "sla_breached", "csat_recorded",
    "customer_typing"];
  for (const kind of kinds) {
    source.addEventListener(kind, (ev) => {
      let data;
      try { data = JSON.parse(ev.data); } catch { return; }
      if (handlers[kind]) handlers[kind](data);
      if (handlers["*"]) handlers["*"](data);
    });
  }
  source.addEventListener("open", () => handlers.status && handlers.status("open"));
  source.addEventListener("error", () => handlers.status && handlers.status("error"));
  return () => source.close();
}
