/*
 * 15分钟文明实践服务圈 · phone pages (/m/): the core.
 *
 * One page, routed by the URL fragment (#/home, #/orders/12, ...). This file holds what every
 * view uses: the API client (window.PCWeb's from ../common.js, with the signed-in token and
 * sign-out on 401), the DOM builder (PCWeb's: text only, never HTML), the router, the tab
 * bar, sign-in by phone and one-time code, and the 长辈版 switch. The views live in
 * m-map.js, m-resident.js, m-volunteer.js and m-leader.js and register themselves on
 * window.PCM. No inline script or handler anywhere: the page runs under a strict CSP.
 */
(function (global) {
  "use strict";

  var W = global.PCWeb;  // ../common.js, loaded first
  var PC = global.PCM = global.PCM || {};
  var LARGE_KEY = "pc-large";  // shared with the practice map (/map)

  PC.views = {};
  PC.tabs = [];
  PC.state = { token: null, user: null, loc: null, ready: false, view: null };
  var cleanups = [];

  var store = W.store;
  var stored = W.stored;
  var el = W.el;

  // ------------------------------------------------------------------ DOM

  PC.el = el;
  PC.$ = function (id) { return document.getElementById(id); };

  PC.button = function (text, attrs, onclick) {
    var a = attrs || {};
    a.type = a.type || "button";
    a.class = "m-btn" + (a.class ? " " + a.class : "");
    a.text = text;
    if (onclick) { a.onclick = onclick; }
    return el("button", a);
  };

  /** A labelled form field: returns the wrapper; the control is field.control. */
  PC.field = function (label, control, hint) {
    var id = control.id || ("f-" + Math.random().toString(36).slice(2, 8));
    control.id = id;
    var w = el("div", { class: "m-field" }, [
      el("label", { for: id, text: label }), control,
      hint ? el("p", { class: "m-hint", text: hint }) : null
    ]);
    w.control = control;
    return w;
  };

  var toastTimer = null;
  /** Say something in the status line (kind: "ok", "error" or "info"). */
  PC.say = function (text, kind) {
    var t = PC.$("toast");
    t.textContent = text;
    t.className = "m-toast m-toast-" + (kind || "info");
    t.setAttribute("role", kind === "error" ? "alert" : "status");
    t.hidden = false;
    if (toastTimer) { global.clearTimeout(toastTimer); }
    toastTimer = global.setTimeout(function () { t.hidden = true; }, kind === "error" ? 9000 : 5000);
  };

  /** Run fn(button) with the button disabled and showing busy text until the promise settles. */
  PC.busy = function (btn, text, fn) {
    var old = btn.textContent;
    btn.disabled = true;
    btn.textContent = text;
    var done = function () { btn.disabled = false; btn.textContent = old; };
    return Promise.resolve().then(fn).then(function (v) { done(); return v; },
      function (e) { done(); throw e; });
  };

  PC.fail = function (err) {
    PC.say(err && err.message ? err.message : "出错了，请稍后重试", "error");
  };

  var TIME = new Intl.DateTimeFormat("zh-CN", {
    timeZone: "Asia/Shanghai", month: "numeric", day: "numeric", hour: "2-digit",
    minute: "2-digit", hour12: false
  });
  PC.time = function (iso) {
    if (!iso) { return ""; }
    var d = new Date(iso);
    return isNaN(d.getTime()) ? String(iso) : TIME.format(d);
  };

  PC.minutes = function (m) {
    if (m === null || m === undefined) { return "步行不可达"; }
    return "步行约 " + Math.max(1, Math.ceil(m)) + " 分钟";
  };

  /** A fresh Idempotency-Key: a retry of the same form sends the same one. */
  PC.key = function (prefix) {
    var r = "";
    if (global.crypto && global.crypto.getRandomValues) {
      var a = new Uint32Array(4);
      global.crypto.getRandomValues(a);
      r = Array.prototype.map.call(a, function (x) { return x.toString(36); }).join("");
    } else {
      r = String(Math.random()).slice(2) + Date.now();
    }
    return (prefix || "m") + "-" + r;
  };

  // ------------------------------------------------------------------ API

  /**
   * Call the API: api("GET", "requests?limit=20"), api("POST", "requests", body, {idem: key}),
   * api("POST", "requests/1/photos", null, {form: formData}): PCWeb.api with the signed-in
   * token; a 401 on a signed-in page signs out (unless opts.quiet401). Resolves to the JSON
   * body; rejects with an Error carrying status, code and the problem.
   */
  PC.api = function (method, path, body, opts) {
    var o = opts || {};
    return W.api(method, path, body, {
      token: PC.state.token, idem: o.idem, form: o.form, params: o.params
    }).catch(function (err) {
      if (err.status === 401 && PC.state.token && !o.quiet401) {
        PC.signOut("登录已失效，请重新登录");
      }
      throw err;
    });
  };

  /** Fetch a protected image (evidence photo) with the token; resolve to a blob: URL. */
  PC.imageURL = function (path) {
    var headers = PC.state.token ? { Authorization: "Bearer " + PC.state.token } : {};
    return global.fetch(W.url(path), { headers: headers })
      .then(function (r) {
        if (!r.ok) { throw new Error("照片加载失败（" + r.status + "）"); }
        return r.blob();
      }).then(function (b) { return global.URL.createObjectURL(b); });
  };

  // ------------------------------------------------------------------ who is signed in

  PC.role = function () { return PC.state.user ? PC.state.user.role : null; };
  PC.isResident = function () { return PC.role() === "resident"; };
  PC.isVolunteer = function () {
    var u = PC.state.user;
    return !!u && (u.role === "volunteer" || (u.volunteer_id !== null && u.volunteer_id !== undefined));
  };
  PC.isLeader = function () {
    var u = PC.state.user;
    return !!u && (u.role === "team" || (Array.isArray(u.leads_teams) && u.leads_teams.length > 0));
  };
  /** Who orders services (点单) and follows their own orders: residents, and volunteers too. */
  PC.canOrder = function () { return PC.role() === "resident" || PC.role() === "volunteer"; };
  /** Whether an order is the caller's own (a leader's list also holds their teams' orders). */
  PC.isMine = function (req) { return !!PC.state.user && req.resident_id === PC.state.user.id; };
  PC.isStaff = function () {
    return ["dispatcher", "admin", "station"].indexOf(PC.role()) >= 0;
  };
  /** The team ids the user acts for: its team account's, or those it leads. */
  PC.myTeams = function () {
    var u = PC.state.user || {};
    var out = (u.leads_teams || []).slice();
    if (u.team_id && out.indexOf(u.team_id) < 0) { out.push(u.team_id); }
    return out;
  };

  PC.signOut = function (why) {
    PC.state.token = null;
    PC.state.user = null;
    W.token.set(null);
    renderChrome();
    if (why) { PC.say(why, "info"); }
    PC.go("login");
  };

  function loadMe() {
    return PC.api("GET", "users/me").then(function (u) {
      PC.state.user = u;
      renderChrome();
      return u;
    });
  }

  // ------------------------------------------------------------------ 长辈版

  function setLarge(on) {
    document.documentElement.classList.toggle("pc-large", !!on);
    var b = PC.$("elder-toggle");
    b.setAttribute("aria-pressed", on ? "true" : "false");
    b.textContent = on ? "标准版" : "长辈版";
    b.title = on ? "回到标准字号" : "放大文字和按钮";
    store(LARGE_KEY, on ? "1" : "0");
    PC.emit("resize");
  }

  PC.isLarge = function () { return document.documentElement.classList.contains("pc-large"); };

  // ------------------------------------------------------------------ events between views

  var listeners = {};
  PC.on = function (name, fn) { (listeners[name] = listeners[name] || []).push(fn); };
  PC.emit = function (name, arg) {
    (listeners[name] || []).forEach(function (fn) { fn(arg); });
  };

  /** Register something to undo when the view changes (a map, the camera, a timer). */
  PC.onLeave = function (fn) { cleanups.push(fn); };

  // ------------------------------------------------------------------ router

  /**
   * Register a view: PC.view("home", render, {tab: "首页", show: fn}). render(root, args,
   * query) fills the root; args are the fragment's path parts after the name.
   */
  PC.view = function (name, render, tab) {
    PC.views[name] = render;
    if (tab) { PC.tabs.push({ name: name, label: tab.label, show: tab.show, order: tab.order }); }
  };

  function parseHash() {
    var h = global.location.hash.replace(/^#\/?/, "");
    var q = "";
    var i = h.indexOf("?");
    if (i >= 0) { q = h.slice(i + 1); h = h.slice(0, i); }
    var parts = h.split("/").filter(Boolean).map(function (p) {
      try { return decodeURIComponent(p); } catch (e) { return p; }
    });
    return { name: parts[0] || "", args: parts.slice(1), query: new URLSearchParams(q) };
  }

  PC.go = function (name, args, query) {
    var h = "#/" + [name].concat((args || []).map(encodeURIComponent)).join("/");
    if (query) { h += "?" + new URLSearchParams(query).toString(); }
    if (global.location.hash === h) { render(); } else { global.location.hash = h; }
  };

  function defaultView() {
    if (!PC.state.user) { return "login"; }
    if (PC.isResident()) { return "home"; }
    if (PC.isVolunteer()) { return "activities"; }
    if (PC.isLeader()) { return "tasks"; }
    return "staff";
  }

  function visibleTabs() {
    return PC.tabs.filter(function (t) { return t.show(); })
      .sort(function (a, b) { return a.order - b.order; });
  }

  function renderChrome() {
    var signed = !!PC.state.user;
    PC.$("logout").hidden = !PC.state.token;
    var tabs = PC.$("tabs");
    tabs.textContent = "";
    var shown = signed ? visibleTabs() : [];
    tabs.hidden = shown.length < 2;
    document.body.classList.toggle("m-has-tabs", shown.length >= 2);
    shown.forEach(function (t) {
      tabs.appendChild(el("a", {
        href: "#/" + t.name, class: "m-tab", text: t.label, id: "tab-" + t.name,
        dataset: { view: t.name }
      }));
    });
    markTab();
  }

  function markTab() {
    var current = PC.state.view;
    Array.prototype.forEach.call(PC.$("tabs").querySelectorAll("a"), function (a) {
      var on = a.dataset.view === current || (PC.tabParent && PC.tabParent[current] === a.dataset.view);
      if (on) { a.setAttribute("aria-current", "page"); } else { a.removeAttribute("aria-current"); }
    });
  }

  /** Views that light another tab (an order's page lights 我的). */
  PC.tabParent = {};

  function render() {
    var r = parseHash();
    if (!PC.state.token && r.name !== "login") { PC.go("login"); return; }
    if (PC.state.token && !PC.state.user) { return; }  // boot loads the user, then renders
    var name = r.name && PC.views[r.name] ? r.name : defaultView();
    if (PC.state.token && name === "login") { name = defaultView(); }
    while (cleanups.length) {
      try { cleanups.pop()(); } catch (e) { /* a view's cleanup never blocks the next */ }
    }
    PC.state.view = name;
    document.body.dataset.view = name;
    var app = PC.$("app");
    app.textContent = "";
    app.setAttribute("aria-busy", "true");
    markTab();
    Promise.resolve().then(function () {
      return PC.views[name](app, r.args, r.query);
    }).catch(PC.fail).then(function () {
      app.setAttribute("aria-busy", "false");
      document.body.dataset.ready = name;
    });
  }

  PC.render = render;

  // ------------------------------------------------------------------ sign-in

  var countdown = { until: 0, timer: null };

  function startCountdown(btn, seconds) {
    countdown.until = Date.now() + seconds * 1000;
    var tick = function () {
      var left = Math.ceil((countdown.until - Date.now()) / 1000);
      if (!btn.isConnected) { global.clearInterval(countdown.timer); return; }
      if (left <= 0) {
        global.clearInterval(countdown.timer);
        btn.disabled = false;
        btn.textContent = "获取验证码";
        btn.dataset.left = "0";
        return;
      }
      btn.disabled = true;
      btn.textContent = left + " 秒后可重发";
      btn.dataset.left = String(left);
    };
    if (countdown.timer) { global.clearInterval(countdown.timer); }
    countdown.timer = global.setInterval(tick, 1000);
    tick();
  }

  PC.view("login", function (root) {
    var phone = el("input", {
      type: "tel", id: "login-phone", inputmode: "numeric", autocomplete: "tel",
      maxlength: "11", placeholder: "11 位手机号", pattern: "1[0-9]{10}", required: true
    });
    var code = el("input", {
      type: "text", id: "login-code", inputmode: "numeric", autocomplete: "one-time-code",
      maxlength: "8", placeholder: "短信验证码", required: true
    });
    var send = PC.button("获取验证码", { id: "login-send", class: "m-btn-side" });
    var submit = PC.button("登录", { id: "login-submit", type: "submit", class: "m-btn-primary m-btn-block" });
    var form = el("form", { class: "m-card m-form", id: "login-form", novalidate: true }, [
      el("h2", { text: "手机号登录" }),
      el("p", { class: "m-note", text: "居民、志愿者、服务队长都用手机号登录；首次登录即注册为居民。" }),
      PC.field("手机号", phone),
      el("div", { class: "m-field" }, [
        el("label", { for: "login-code", text: "验证码" }),
        el("div", { class: "m-row" }, [code, send])
      ]),
      submit
    ]);
    if (countdown.until > Date.now()) {
      startCountdown(send, Math.ceil((countdown.until - Date.now()) / 1000));
    }

    function digits() { return phone.value.replace(/[^0-9]/g, ""); }

    send.addEventListener("click", function () {
      if (!/^1[0-9]{10}$/.test(digits())) {
        PC.say("请输入 11 位手机号", "error");
        phone.focus();
        return;
      }
      send.disabled = true;
      PC.api("POST", "auth/codes", { phone: digits() }).then(function (r) {
        PC.say("验证码已发送，" + Math.round((r.expires_in_s || 300) / 60) + " 分钟内有效", "ok");
        startCountdown(send, r.resend_after_s || 60);
        code.focus();
      }, function (e) {
        send.disabled = false;
        if (e.code === "code_too_soon") { startCountdown(send, 60); }
        PC.fail(e);
      });
    });

    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      if (!/^1[0-9]{10}$/.test(digits()) || !code.value.trim()) {
        PC.say("请输入手机号和验证码", "error");
        return;
      }
      PC.busy(submit, "登录中…", function () {
        return PC.api("POST", "auth/sessions", { phone: digits(), code: code.value.trim() });
      }).then(function (r) {
        PC.state.token = r.token;
        W.token.set(r.token);
        PC.state.user = r.user || null;
        return r.user && r.user.leads_teams ? r.user : loadMe();
      }).then(function () {
        renderChrome();
        PC.say("登录成功，" + PC.state.user.name, "ok");
        if (!resumeDeepLink()) { PC.go(defaultView()); }
      }).catch(PC.fail);
    });
    root.appendChild(form);
  });

  // ------------------------------------------------------------------ staff: the workbench

  PC.view("staff", function (root) {
    var u = PC.state.user;
    root.appendChild(el("section", { class: "m-card" }, [
      el("h2", { text: "你好，" + u.name }),
      el("p", { text: "调度员、管理员和所站账号请使用调度工作台处理订单。" }),
      el("a", { href: "../desk/", class: "m-btn m-btn-primary m-btn-block", id: "to-desk", text: "打开调度工作台" })
    ]));
  });

  // ------------------------------------------------------------------ the QR's deep link

  /**
   * The check-in QR encodes /m/checkin?activity=ID&code=CODE. Opened there, the page keeps
   * the two (through a sign-in if needed) and sends the volunteer to #/checkin/ID?code=CODE,
   * which checks in at once.
   */
  function deepLink() {
    var path = global.location.pathname;
    if (!/\/checkin\/?$/.test(path)) { return null; }
    var q = new URLSearchParams(global.location.search);
    var id = q.get("activity");
    var code = q.get("code");
    if (!id || !/^[0-9]{1,10}$/.test(id)) { return null; }
    return { activity: id, code: (code || "").slice(0, 12) };
  }

  var pendingLink = null;

  function resumeDeepLink() {
    if (!pendingLink) { return false; }
    var link = pendingLink;
    pendingLink = null;
    PC.go("checkin", [link.activity], link.code ? { code: link.code, auto: "1" } : null);
    return true;
  }

  // ------------------------------------------------------------------ boot

  function boot() {
    setLarge(stored(LARGE_KEY) === "1");
    PC.$("elder-toggle").addEventListener("click", function () { setLarge(!PC.isLarge()); });
    PC.$("logout").addEventListener("click", function () {
      // End the session on the server too (a shared phone), then forget it here either way.
      var done = function () { PC.signOut("已退出登录"); };
      if (!PC.state.token) { done(); return; }
      PC.api("DELETE", "auth/sessions", null, { quiet401: true }).then(done, done);
    });
    pendingLink = deepLink();
    if (pendingLink) {
      // Back to the page's own URL (its district kept): a reload must not check in again.
      var own = W.district ? "?" + new URLSearchParams({ district: W.district }).toString() : "";
      global.history.replaceState(null, "", "./" + own + global.location.hash);
    }
    global.addEventListener("hashchange", render);
    PC.state.token = W.token.get();
    var ready = PC.state.token ? loadMe().catch(function (e) {
      if (e.status !== 401) { PC.fail(e); }
      PC.state.token = null;
      W.token.set(null);
    }) : Promise.resolve();
    ready.then(function () {
      renderChrome();
      PC.state.ready = true;
      if (PC.state.user && resumeDeepLink()) { return; }
      if (!PC.state.user && pendingLink) { PC.say("请先登录，登录后自动签到", "info"); }
      render();
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", boot);
  } else {
    global.setTimeout(boot, 0);
  }
}(window));
