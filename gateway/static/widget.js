/*
 * Huiliu (汇流) web chat widget — plain JS, no dependencies, no build step.
 *
 * Full page (chat.html):  HuiliuChat.mount(document.getElementById('huiliu-chat'));
 * Any shop page:          <script src=".../static/widget.js" data-huiliu-base="https://huiliu.example"></script>
 *                         adds a floating button that opens the chat panel
 *                         (also with data-huiliu-floating and no base: same origin).
 *
 * Security: every customer/agent/bot string is rendered with textContent only.
 */
(function (window, document) {
  'use strict';
  if (window.HuiliuChat && window.HuiliuChat.mount) return; // script included twice

  var STORAGE_KEY = 'huiliu.session';
  var MAX_LEN = 2000;
  var MAX_RETRIES = 3;     // automatic re-sends after the first attempt
  var TYPING_MS = 3000;
  var TYPING_SEND_MS = 2000; // tell the agent "customer is typing" at most this often (server throttles too)
  var LABELS = { bot: '机器人 Bot', agent: '客服 Agent', system: '系统 System', customer: '我 Me' };
  var WELCOME = '您好！我是汇流小铺的智能客服，有什么可以帮您？ Hi! How can I help?';
  var FAILED = '发送失败，点击重试 / failed, tap to retry';
  var script = document.currentScript; // null when injected as a module / after load

  function scriptAttr(name) { return script ? script.getAttribute(name) : null; }
  function trimBase(b) { return String(b || '').replace(/\/+$/, ''); }

  function el(tag, cls, text) {
    var n = document.createElement(tag);
    if (cls) n.className = cls;
    if (text != null) n.textContent = String(text);
    return n;
  }

  // RFC 4122 v4. crypto.randomUUID only exists in secure contexts, so fall back.
  function uuid() {
    var c = window.crypto;
    if (c && typeof c.randomUUID === 'function') return c.randomUUID();
    var b = new Uint8Array(16), i;
    if (c && c.getRandomValues) c.getRandomValues(b);
    else for (i = 0; i < 16; i++) b[i] = Math.floor(Math.random() * 256);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    var h = '';
    for (i = 0; i < 16; i++) h += (b[i] + 0x100).toString(16).slice(1);
    return h.slice(0, 8) + '-' + h.slice(8, 12) + '-' + h.slice(12, 16) + '-' + h.slice(16, 20) + '-' + h.slice(20);
  }

  // localStorage may throw (privacy modes, sandboxed iframes): degrade to no persistence.
  function loadSaved() {
    try { return JSON.parse(window.localStorage.getItem(STORAGE_KEY)) || {}; } catch (e) { return {}; }
  }
  function save(s) {
    try { window.localStorage.setItem(STORAGE_KEY, JSON.stringify({ visitor_id: s.visitor_id, token: s.token })); } catch (e) { /* ignore */ }
  }

  // Resolves {status, body} for every HTTP answer; rejects only on network failure.
  function postJSON(url, payload) {
    return fetch(url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(payload)
    }).then(function (res) {
      return res.json().catch(function () { return {}; }).then(function (body) {
        return { status: res.status, body: body || {} };
      });
    });
  }

  function fmtTime(iso) {
    var d = iso ? new Date(iso) : new Date();
    if (isNaN(d.getTime())) return '';
    return ('0' + d.getHours()).slice(-2) + ':' + ('0' + d.getMinutes()).slice(-2);
  }

  function parse(data) { try { return JSON.parse(data); } catch (e) { return null; } }

  function mount(root, opts) {
    opts = opts || {};
    var base = trimBase(opts.base != null ? opts.base : scriptAttr('data-huiliu-base'));
    var api = function (path) { return base + '/api/webchat/' + path; };
    var sessionPromise = null, es = null, typingTimer = null, reconnectTimer = null, failures = 0;
    var typingSentAt = 0;
    var seen = {};  // message_id -> true: SSE replays after reconnect must not show twice
    var mine = {};  // client_message_id -> true: our own messages, if the server echoes them

    // ---- DOM --------------------------------------------------------------
    root.textContent = '';
    root.classList.add('huiliu-root');
    var header = el('div', 'huiliu-header');
    var title = el('div', 'huiliu-title');
    title.appendChild(el('strong', null, '汇流客服'));
    title.appendChild(el('span', 'huiliu-subtitle', ' · Huiliu Support'));
    var status = el('span', 'huiliu-status', '连接中…');
    status.id = 'huiliu-status';
    status.setAttribute('aria-live', 'polite');
    header.appendChild(title);
    header.appendChild(status);
    if (opts.onClose) {
      var closeBtn = el('button', 'huiliu-close', '×');
      closeBtn.type = 'button';
      closeBtn.setAttribute('aria-label', '关闭 Close');
      closeBtn.addEventListener('click', opts.onClose);
      header.appendChild(closeBtn);
    }
    var list = el('div', 'huiliu-messages');
    list.id = 'huiliu-messages';
    list.setAttribute('role', 'log');
    list.setAttribute('aria-live', 'polite');
    // Client-side greeting only: deliberately not a .huiliu-msg (never sent, no id).
    list.appendChild(el('div', 'huiliu-welcome', WELCOME));
    var typing = el('div', 'huiliu-typing');
    typing.hidden = true;
    var composer = el('div', 'huiliu-composer');
    var input = el('textarea', 'huiliu-input');
    input.id = 'huiliu-input';
    input.rows = 1;
    input.maxLength = MAX_LEN;
    input.placeholder = '请输入您的问题… / Type a message (Enter 发送, Shift+Enter 换行)';
    input.setAttribute('aria-label', '消息 Message');
    var counter = el('span', 'huiliu-counter', '0/' + MAX_LEN);
    var sendBtn = el('button', 'huiliu-send', '发送');
    sendBtn.id = 'huiliu-send';
    sendBtn.type = 'button';
    sendBtn.title = 'Send';
    composer.appendChild(input);
    composer.appendChild(counter);
    composer.appendChild(sendBtn);
    root.appendChild(header);
    root.appendChild(list);
    root.appendChild(typing);
    root.appendChild(composer);

    function setStatus(open) {
      status.textContent = open ? '已连接' : '连接中…';
      status.title = open ? 'Connected' : 'Connecting…';
      status.setAttribute('data-state', open ? 'open' : 'connecting');
    }

    function nearBottom() { return list.scrollHeight - list.scrollTop - list.clientHeight < 80; }

    function addMessage(author, text, id, createdAt, quickReplies) {
      var stick = author === 'customer' || nearBottom();
      var node = el('div', 'huiliu-msg');
      node.setAttribute('data-author', author);
      if (id) node.setAttribute('data-message-id', id);
      if (author !== 'customer') node.appendChild(el('div', 'huiliu-label', LABELS[author]));
      var bubble = el('div', 'huiliu-bubble');
      bubble.appendChild(el('div', 'huiliu-text', text));
      node.appendChild(bubble);
      node.appendChild(el('div', 'huiliu-meta', fmtTime(createdAt)));
      if (quickReplies && quickReplies.length) {
        var chips = el('div', 'huiliu-chips');
        quickReplies.forEach(function (q) {
          if (!q || q.title == null) return;
          var chip = el('button', 'huiliu-chip', q.title);
          chip.type = 'button';
          chip.addEventListener('click', function () {
            send(q.payload != null ? String(q.payload) : String(q.title), String(q.title));
          });
          chips.appendChild(chip);
        });
        node.appendChild(chips);
      }
      list.appendChild(node);
      if (stick) list.scrollTop = list.scrollHeight;
      return node;
    }

    // ---- session ------------------------------------------------------------
    // One in-flight session request; reset to null on failure so the next caller retries.
    function ready() {
      if (!sessionPromise) {
        var saved = loadSaved();
        sessionPromise = postJSON(api('session'), { visitor_id: saved.visitor_id, token: saved.token, name: opts.name })
          .then(function (r) {
            if (r.status !== 200 || !r.body.visitor_id || !r.body.token) throw new Error(r.body.message || 'session ' + r.status);
            save(r.body);
            return r.body;
          });
        sessionPromise.catch(function () { sessionPromise = null; });
      }
      return sessionPromise;
    }

    function scheduleStart() {
      failures++;
      clearTimeout(reconnectTimer);
      reconnectTimer = setTimeout(start, Math.min(30000, 1000 * Math.pow(2, failures)));
    }

    // (Re)validate the session, then (re)open the event stream.
    function start() {
      setStatus(false);
      ready().then(connect, scheduleStart);
    }

    // ---- incoming (SSE) -----------------------------------------------------
    function connect(s) {
      if (es) es.close();
      var src = es = new EventSource(api('events') + '?visitor_id=' + encodeURIComponent(s.visitor_id) +
        '&token=' + encodeURIComponent(s.token));
      src.onopen = function () { failures = 0; setStatus(true); };
      src.onerror = function () {
        if (es !== src) return;
        setStatus(false);
        // The browser reconnects by itself (sending Last-Event-ID) after a dropped
        // stream. If the server refused it (e.g. 401 stale token) the source is
        // CLOSED for good: get a fresh session and open a new stream ourselves.
        if (src.readyState === 2) { src.close(); sessionPromise = null; scheduleStart(); }
      };
      src.addEventListener('message', function (ev) { onMessage(parse(ev.data)); });
      src.addEventListener('typing', function (ev) { showTyping(parse(ev.data) || {}); });
    }

    function onMessage(d) {
      if (!d || typeof d !== 'object') return;
      if (d.message_id != null) {
        if (seen[d.message_id]) return;
        seen[d.message_id] = true;
      }
      if (d.client_message_id && mine[d.client_message_id]) return;
      var author = LABELS[d.author] ? d.author : 'system';
      if (author !== 'customer') hideTyping();
      addMessage(author, d.text == null ? '' : String(d.text), d.message_id, d.created_at, d.quick_replies);
    }

    function showTyping(d) {
      typing.textContent = d.author === 'bot' ? '机器人正在输入… / Bot is typing…' : '客服正在输入… / Agent is typing…';
      typing.hidden = false;
      clearTimeout(typingTimer);
      typingTimer = setTimeout(hideTyping, TYPING_MS);
    }
    function hideTyping() { clearTimeout(typingTimer); typing.hidden = true; }

    // ---- outgoing -----------------------------------------------------------
    function setState(item, state, note) {
      item.state = state;
      item.node.setAttribute('data-status', state);
      item.meta.textContent = state === 'pending' ? '发送中… / sending'
        : state === 'failed' ? (note ? note + ' · ' : '') + FAILED
        : fmtTime();
    }

    // Show the message at once (optimistic), then deliver it in the background.
    function send(text, display) {
      text = String(text).replace(/^\s+|\s+$/g, '').slice(0, MAX_LEN);
      if (!text) return;
      var item = { id: uuid(), text: text, retries: 0, reauthed: false };
      mine[item.id] = true;
      item.node = addMessage('customer', display || text, item.id, null, null);
      item.meta = item.node.querySelector('.huiliu-meta');
      item.node.addEventListener('click', function () {
        if (item.state === 'failed') { item.retries = 0; deliver(item); }
      });
      deliver(item);
    }

    // Every attempt reuses item.id as client_message_id so the server can dedupe.
    function deliver(item) {
      setState(item, 'pending');
      ready().then(function (s) {
        return postJSON(api('messages'), { visitor_id: s.visitor_id, token: s.token, client_message_id: item.id, text: item.text });
      }).then(function (r) {
        if (r.status >= 200 && r.status < 300) {
          if (r.body.message_id != null) seen[r.body.message_id] = true;
          setState(item, 'sent');
        } else if (r.status === 401 && !item.reauthed) {
          // Token no longer valid: take a fresh session (and stream), then resend once.
          item.reauthed = true;
          sessionPromise = null;
          start();
          deliver(item);
        } else if (r.status >= 400 && r.status < 500) {
          setState(item, 'failed', r.body.message || r.body.error || 'HTTP ' + r.status);
        } else {
          throw new Error('HTTP ' + r.status); // 5xx: retry like a network error
        }
      }).catch(function () {
        if (item.retries < MAX_RETRIES) {
          item.retries++;
          setTimeout(function () { deliver(item); }, 1000 * Math.pow(2, item.retries - 1)); // 1s, 2s, 4s
        } else {
          setState(item, 'failed');
        }
      });
    }

    // ---- composer -----------------------------------------------------------
    // Best effort: a lost typing notice costs nothing, so failures are ignored and never retried.
    function notifyTyping() {
      var now = Date.now();
      if (now - typingSentAt < TYPING_SEND_MS) return;
      typingSentAt = now;
      ready().then(function (s) {
        return postJSON(api('typing'), { visitor_id: s.visitor_id, token: s.token });
      }).catch(function () { /* ignore */ });
    }
    function onInput() {
      counter.textContent = input.value.length + '/' + MAX_LEN;
      counter.classList.toggle('huiliu-counter-warn', input.value.length > MAX_LEN - 100);
      input.style.height = 'auto';
      input.style.height = Math.min(input.scrollHeight, 140) + 'px';
    }
    function submit() {
      var text = input.value;
      if (!text.replace(/\s+/g, '')) return;
      input.value = '';
      onInput();
      send(text);
      input.focus();
    }
    input.addEventListener('input', function () {
      onInput();
      if (input.value.replace(/\s+/g, '')) notifyTyping();
    });
    input.addEventListener('keydown', function (e) {
      // isComposing/229: Enter that confirms a Chinese IME candidate must not send.
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
        e.preventDefault();
        submit();
      }
    });
    sendBtn.addEventListener('click', submit);

    start();
    return {
      send: send,
      focus: function () { input.focus(); },
      destroy: function () { clearTimeout(reconnectTimer); hideTyping(); if (es) es.close(); es = null; }
    };
  }

  // ---- floating launcher for shop pages -------------------------------------
  function ensureCss(base) {
    if (document.querySelector('link[data-huiliu-css]')) return;
    var href = base ? base + '/static/chat.css' : (script && script.src ? new URL('chat.css', script.src).href : '/static/chat.css');
    var link = document.createElement('link');
    link.rel = 'stylesheet';
    link.href = href;
    link.setAttribute('data-huiliu-css', '');
    document.head.appendChild(link);
  }

  function floating() {
    var base = trimBase(scriptAttr('data-huiliu-base'));
    ensureCss(base);
    var fab = el('button', 'huiliu-fab');
    fab.type = 'button';
    fab.setAttribute('aria-label', '在线客服 Chat with us');
    fab.setAttribute('aria-expanded', 'false');
    fab.appendChild(el('span', 'huiliu-fab-icon', '💬'));
    fab.appendChild(el('span', 'huiliu-fab-text', '客服'));
    var panel = el('div', 'huiliu-panel');
    panel.hidden = true;
    var chat = null; // mounted lazily so visitors who never open it cost no SSE connection
    function toggle(open) {
      panel.hidden = !open;
      fab.setAttribute('aria-expanded', String(open));
      root.classList.toggle('huiliu-open', open);
      if (open && !chat) chat = mount(panel, { base: base, onClose: function () { toggle(false); } });
      if (open) chat.focus();
    }
    fab.addEventListener('click', function () { toggle(panel.hidden); });
    var root = el('div', 'huiliu-launcher');
    root.appendChild(panel);
    root.appendChild(fab);
    document.body.appendChild(root);
  }

  window.HuiliuChat = { mount: mount };

  if (scriptAttr('data-huiliu-base') !== null || scriptAttr('data-huiliu-floating') !== null) {
    if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', floating);
    else floating();
  }
})(window, document);
