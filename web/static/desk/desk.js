/*
 * 15分钟文明实践服务圈 · the dispatcher's workbench (/desk/).
 *
 * Sign in (phone + one-time code, or a pasted API token), then the queue of open orders from
 * GET /desk/queue grouped by state, each with its age and SLA countdown (overdue highlighted),
 * possible duplicates with a merge button, and the actions: 派单 (the nearest capable team
 * suggested from GET /teams/nearest), 改派, 驳回 with a reason, and the order's history.
 * The DOM builder, token storage, URLs and API client are window.PCWeb's (../common.js).
 * Text is only ever set with textContent; no inline script or handler (strict CSP).
 */
(function (global) {
  "use strict";

  var W = global.PCWeb;  // ../common.js, loaded first; its token is shared with /m/
  var el = W.el;
  var clear = W.clear;
  var DESK_ROLES = { dispatcher: true, admin: true, station: true };
  var STATES = [
    ["submitted", "待派单"],
    ["dispatched", "已派单 · 待接单"],
    ["accepted", "已接单 · 服务中"]
  ];
  var ACTIONS_ZH = {
    create: "点单", dispatch: "派单", accept: "接单", decline: "拒单", complete: "完成服务",
    review: "评单", cancel: "取消", reject: "驳回", merge: "合并", redispatch: "改派",
    escalate: "超时升级"
  };
  var ROLES_ZH = {
    resident: "居民", dispatcher: "调度员", team: "志愿服务队", admin: "管理员",
    volunteer: "志愿者", station: "所站管理员", system: "系统"
  };
  var REFRESH_MS = 30000;

  var S = {
    token: null, user: null, queue: null, skew: 0, selected: null, timers: [],
    rejectFor: null
  };

  // ------------------------------------------------------------------ helpers

  function $(id) { return document.getElementById(id); }

  /** PCWeb.api with the token being tried: the JSON body, or an Error with the problem. */
  function api(method, path, body, params) {
    return W.api(method, path, body, { token: S.token, params: params });
  }

  var statusTimer = null;
  function say(text, kind) {
    var p = $("desk-status");
    p.textContent = text;
    p.className = "d-status d-status-" + (kind || "info");
    p.setAttribute("role", kind === "error" ? "alert" : "status");
    p.hidden = false;
    if (statusTimer) { global.clearTimeout(statusTimer); }
    statusTimer = global.setTimeout(function () { p.hidden = true; }, kind === "error" ? 10000 : 5000);
  }

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  /** A time as read in Beijing: 12月2日 14:05. */
  function beijing(iso) {
    var d = new Date(iso);
    var b = new Date(d.getTime() + 8 * 3600 * 1000);
    return (b.getUTCMonth() + 1) + "月" + b.getUTCDate() + "日 " +
      pad(b.getUTCHours()) + ":" + pad(b.getUTCMinutes());
  }

  function minutesText(m) {
    m = Math.max(0, Math.floor(m));
    if (m < 60) { return m + " 分钟"; }
    var h = Math.floor(m / 60);
    if (h < 48) { return h + " 小时 " + (m % 60) + " 分钟"; }
    return Math.floor(h / 24) + " 天 " + (h % 24) + " 小时";
  }

  /** The server's clock as this page reads it (the queue says what time it is there). */
  function serverNow() { return Date.now() + S.skew; }

  function busy(btn, fn) {
    btn.disabled = true;
    return fn().then(function (x) { btn.disabled = false; return x; },
      function (e) { btn.disabled = false; throw e; });
  }

  // ------------------------------------------------------------------ sign-in

  function showSignin(message) {
    $("desk-main").hidden = true;
    $("desk-who").hidden = true;
    $("desk-signin").hidden = false;
    $("signin-msg").textContent = message || "";
    $("signin-phone").focus();
  }

  function phoneDigits() { return $("signin-phone").value.replace(/\D/g, ""); }

  function sendCode() {
    var phone = phoneDigits();
    if (!/^1\d{10}$/.test(phone)) {
      $("signin-msg").textContent = "请输入 11 位手机号";
      return;
    }
    var btn = $("signin-send");
    busy(btn, function () { return api("POST", "auth/codes", { phone: phone }); })
      .then(function (r) {
        $("signin-msg").textContent = "验证码已发送，" + Math.round((r && r.expires_in_s || 300) / 60) +
          " 分钟内有效";
        $("signin-code").focus();
        var wait = (r && r.resend_after_s) || 60;
        btn.disabled = true;
        var left = wait;
        var t = global.setInterval(function () {
          left -= 1;
          btn.textContent = left > 0 ? "重新获取（" + left + " 秒）" : "获取验证码";
          if (left <= 0) { btn.disabled = false; global.clearInterval(t); }
        }, 1000);
      }, function (e) { $("signin-msg").textContent = e.message; });
  }

  function signInWithCode(ev) {
    ev.preventDefault();
    var phone = phoneDigits();
    var code = $("signin-code").value.trim();
    if (!/^1\d{10}$/.test(phone) || !code) {
      $("signin-msg").textContent = "请填写手机号和验证码";
      return;
    }
    busy($("signin-submit"), function () {
      // "desk": the server refuses other roles before it replaces any token (403 not_staff).
      return api("POST", "auth/sessions", { phone: phone, code: code, "for": "desk" });
    }).then(function (r) { useToken(r.token); },
      function (e) {
        $("signin-msg").textContent = e.problem && e.problem.code === "not_staff" ?
          e.problem.detail : e.message;
      });
  }

  function signInWithToken() {
    var token = $("signin-token").value.trim();
    if (!token) { $("signin-msg").textContent = "请粘贴令牌"; return; }
    useToken(token);
  }

  function useToken(token) {
    S.token = token;
    api("GET", "users/me").then(function (me) {
      if (!DESK_ROLES[me.role]) {
        S.token = null;
        showSignin("「" + (me.role_zh || ROLES_ZH[me.role] || me.role) +
          "」账号不能使用派单工作台，请用调度员、管理员或所站账号登录");
        return;
      }
      W.token.set(token);
      S.user = me;
      $("signin-token").value = "";
      $("signin-code").value = "";
      $("desk-signin").hidden = true;
      $("desk-main").hidden = false;
      $("desk-who").hidden = false;
      $("desk-user").textContent = me.name + " · " + (me.role_zh || ROLES_ZH[me.role] || me.role) +
        (me.site_id ? " · " + me.site_id : "");
      load();
    }, function (e) {
      S.token = null;
      W.token.set(null);
      showSignin(e.status === 401 ? "登录已失效，请重新登录" : e.message);
    });
  }

  /** 退出: end the session on the server, then forget it here whatever the answer. */
  function endSession() {
    if (!S.token) { signOut(); return; }
    api("DELETE", "auth/sessions").then(signOut, signOut);
  }

  function signOut() {
    W.token.set(null);
    S.token = null;
    S.user = null;
    S.queue = null;
    clear($("queue"));
    showSignin("已退出");
  }

  // ------------------------------------------------------------------ the queue

  function load() {
    if (!S.token) { return Promise.resolve(); }
    var params = { state: $("filter-state").value, level: $("filter-level").value, limit: 300 };
    return api("GET", "desk/queue", undefined, params).then(function (q) {
      S.queue = q;
      S.skew = new Date(q.now).getTime() - Date.now();
      render();
    }, function (e) {
      if (e.status === 401) { signOut(); showSignin("登录已失效，请重新登录"); return; }
      say(e.message, "error");
    });
  }

  function visibleItems() {
    var onlyLate = $("filter-overdue").checked;
    var onlyDups = $("filter-dups").checked;
    return S.queue.items.filter(function (it) {
      return (!onlyLate || isOverdue(it)) && (!onlyDups || it.duplicates.length > 0);
    });
  }

  function isOverdue(it) {
    return it.due_at !== null && new Date(it.due_at).getTime() <= serverNow();
  }

  function render() {
    var q = S.queue;
    var box = $("queue");
    clear(box);
    var c = q.counts || {};
    var summary = $("desk-summary");
    clear(summary);
    summary.appendChild(document.createTextNode("待派单 " + (c.submitted || 0) + " · 待接单 " +
      (c.dispatched || 0) + " · 服务中 " + (c.accepted || 0) + " · 超时 "));
    // Counted again every second: orders fall overdue between two loads of the queue.
    summary.appendChild(el("strong", { id: "summary-overdue", "data-testid": "summary-overdue",
      text: q.overdue }));
    if (q.count > q.items.length) {
      summary.appendChild(document.createTextNode(" · 显示前 " + q.items.length + " 单"));
    }
    var items = visibleItems();
    var ids = {};
    q.items.forEach(function (it) { ids[it.id] = it; });
    STATES.forEach(function (pair) {
      var mine = items.filter(function (it) { return it.state === pair[0]; });
      if ($("filter-state").value && $("filter-state").value !== pair[0]) { return; }
      var section = el("section", { class: "d-group", "data-state": pair[0],
        "data-testid": "group-" + pair[0], "aria-label": pair[1] }, [
        el("h2", {}, [pair[1] + " ", el("span", { class: "d-count", text: mine.length })])
      ]);
      if (!mine.length) { section.appendChild(el("p", { class: "d-empty", text: "暂无" })); }
      mine.forEach(function (it) { section.appendChild(card(it, ids)); });
      box.appendChild(section);
    });
    tick();
    if (S.selected !== null) {
      var again = ids[S.selected];
      if (again) { markSelected(again.id); } else { S.selected = null; }
    }
  }

  function card(it, ids) {
    var sla = el("span", { class: "d-sla", "data-testid": "sla-" + it.id, "data-due": it.due_at || "" });
    var actions = el("div", { class: "d-actions" });
    if (it.next_actions.indexOf("dispatch") >= 0) {
      actions.appendChild(el("button", { type: "button", class: "d-btn d-primary",
        "data-testid": "dispatch-" + it.id, text: "派单",
        onclick: function () { select(it, "dispatch"); } }));
    }
    if (it.next_actions.indexOf("redispatch") >= 0) {
      actions.appendChild(el("button", { type: "button", class: "d-btn",
        "data-testid": "redispatch-" + it.id, text: "改派",
        onclick: function () { select(it, "redispatch"); } }));
    }
    if (it.next_actions.indexOf("reject") >= 0) {
      actions.appendChild(el("button", { type: "button", class: "d-btn d-danger",
        "data-testid": "reject-" + it.id, text: "驳回",
        onclick: function () { openReject(it); } }));
    }
    actions.appendChild(el("button", { type: "button", class: "d-btn d-quiet",
      "data-testid": "history-" + it.id, text: "历史",
      onclick: function () { select(it, "history"); } }));

    var dups = null;
    if (it.duplicates.length) {
      dups = el("div", { class: "d-dups", "data-testid": "dups-" + it.id }, [
        el("span", { class: "d-badge d-badge-dup", text: "疑似重复" })
      ]);
      it.duplicates.forEach(function (d) {
        var other = ids[d.id];
        dups.appendChild(el("span", { class: "d-dup-ref",
          text: "#" + d.id + "（步行 " + Math.round(d.walk_m) + " 米" +
            (other ? "，" + other.state_zh : "") + "）" }));
        if (it.next_actions.indexOf("merge") >= 0) {
          dups.appendChild(el("button", { type: "button", class: "d-btn d-small",
            "data-testid": "merge-" + it.id + "-" + d.id, text: "并入 #" + d.id,
            onclick: function (ev) { merge(it, d.id, ev.currentTarget); } }));
        }
      });
    }

    var where = (it.area_name || "—") + (it.level_zh ? "（" + it.level_zh + "）" : "");
    return el("article", {
      class: "d-order", id: "order-" + it.id, "data-testid": "order-" + it.id,
      "data-id": it.id, "data-state": it.state, tabindex: "0",
      onclick: function (ev) {
        if (ev.target.closest("button")) { return; }
        select(it, "history");
      },
      onkeydown: function (ev) { if (ev.key === "Enter") { select(it, "history"); } }
    }, [
      el("div", { class: "d-order-head" }, [
        el("strong", { text: "#" + it.id }),
        el("span", { class: "d-cat", text: it.category_zh }),
        el("span", { class: "d-age", "data-created": it.created_at, text: "" }),
        sla
      ]),
      el("p", { class: "d-desc", text: it.description }),
      el("p", { class: "d-meta" }, [
        "负责：" + where,
        it.team_name ? " · 队伍：" + it.team_name : "",
        it.round ? " · 第 " + (it.round + 1) + " 轮" : ""
      ]),
      dups,
      actions
    ]);
  }

  /** Update every age and SLA countdown on the page (once a second). */
  function tick() {
    var now = serverNow();
    var late = S.queue.items.filter(isOverdue).length;
    var counter = $("summary-overdue");
    if (counter) {
      counter.textContent = late;
      counter.className = late ? "d-late-count" : "";
    }
    var cards = document.querySelectorAll(".d-order");
    Array.prototype.forEach.call(cards, function (c) {
      var age = c.querySelector(".d-age");
      var sla = c.querySelector(".d-sla");
      var created = new Date(age.getAttribute("data-created")).getTime();
      age.textContent = "已等待 " + minutesText((now - created) / 60000);
      var due = sla.getAttribute("data-due");
      if (!due) {
        sla.textContent = "不计时";
        sla.className = "d-sla d-sla-off";
        c.classList.remove("d-overdue");
        return;
      }
      var left = (new Date(due).getTime() - now) / 1000;
      if (left > 0) {
        var m = Math.floor(left / 60);
        var s = Math.floor(left % 60);
        sla.textContent = "剩余 " + (m >= 60 ? Math.floor(m / 60) + ":" + pad(m % 60) : m) +
          ":" + pad(s);
        sla.className = "d-sla" + (left < 600 ? " d-sla-soon" : "");
        c.classList.remove("d-overdue");
      } else {
        sla.textContent = "超时 " + (-left < 60 ? Math.floor(-left) + " 秒" : minutesText(-left / 60));
        sla.className = "d-sla d-sla-late";
        c.classList.add("d-overdue");
      }
    });
  }

  function markSelected(id) {
    Array.prototype.forEach.call(document.querySelectorAll(".d-order"), function (c) {
      c.classList.toggle("d-selected", String(c.getAttribute("data-id")) === String(id));
    });
  }

  // ------------------------------------------------------------------ detail: history, dispatch

  function select(it, mode) {
    S.selected = it.id;
    markSelected(it.id);
    var box = $("detail");
    clear(box);
    var head = el("div", { class: "d-detail-head" }, [
      el("h2", { text: "#" + it.id + " " + it.category_zh }),
      el("p", { class: "d-meta", text: it.state_zh + " · 点单于 " + beijing(it.created_at) }),
      el("p", { class: "d-desc", text: it.description }),
      el("p", { class: "d-meta", text: "联系电话：" + it.contact })
    ]);
    box.appendChild(head);
    if (mode === "dispatch" || mode === "redispatch") {
      box.appendChild(suggestions(it, mode));
    }
    var hist = el("section", { class: "d-history", "aria-label": "处理历史" }, [
      el("h3", { text: "处理历史" }),
      el("p", { class: "d-empty", text: "加载中…" })
    ]);
    box.appendChild(hist);
    api("GET", "requests/" + it.id).then(function (full) {
      if (S.selected !== it.id) { return; }
      clear(hist);
      hist.appendChild(el("h3", { text: "处理历史" }));
      if (full.reject_reason) {
        hist.appendChild(el("p", { class: "d-reason", text: "驳回原因：" + full.reject_reason }));
      }
      var list = el("ol", { class: "d-steps", id: "history", "data-testid": "history" });
      full.history.forEach(function (h) {
        list.appendChild(el("li", { class: "d-step d-step-" + h.action,
          "data-action": h.action }, [
          el("time", { datetime: h.at, text: beijing(h.at) }),
          el("strong", { text: ACTIONS_ZH[h.action] || h.action }),
          el("span", { class: "d-role", text: h.action === "escalate" ? "系统自动"
            : (ROLES_ZH[h.actor_role] || h.actor_role) }),
          h.note ? el("span", { class: "d-note", text: h.note }) : null
        ]));
      });
      hist.appendChild(list);
    }, function (e) {
      clear(hist);
      hist.appendChild(el("p", { class: "d-msg", text: e.message }));
    });
  }

  function suggestions(it, mode) {
    var verb = mode === "dispatch" ? "派单" : "改派";
    var box = el("section", { class: "d-suggest", id: "suggestions",
      "data-testid": "suggestions", "aria-label": verb + "：可接单的队伍" }, [
      el("h3", { text: verb + "：可接单的队伍（按步行时间）" }),
      el("p", { class: "d-empty", text: "正在按步行时间排序…" })
    ]);
    api("GET", "teams/nearest", undefined, {
      lon: it.lon, lat: it.lat, category: it.category, eligible_only: "true", limit: 6
    }).then(function (r) {
      if (S.selected !== it.id) { return; }
      var teams = r.teams.filter(function (t) { return t.team_id !== it.team_id; });
      var list = el("ul", { class: "d-teams" });
      clear(box);
      box.appendChild(el("h3", { text: verb + "：可接单的队伍（按步行时间）" }));
      if (!teams.length) {
        box.appendChild(el("p", { class: "d-msg", text: "附近没有可接单的队伍" }));
        return;
      }
      teams.forEach(function (t, i) {
        list.appendChild(el("li", { class: i === 0 ? "d-team d-suggested" : "d-team" }, [
          el("span", { class: "d-team-name", text: t.name }),
          el("span", { class: "d-meta", text: t.site_name + " · 步行约 " +
            (t.walk_minutes === null ? "—" : t.walk_minutes.toFixed(1)) + " 分钟 · 余量 " +
            t.free_capacity }),
          i === 0 ? el("span", { class: "d-badge", text: "推荐" }) : null,
          el("button", { type: "button", class: "d-btn" + (i === 0 ? " d-primary" : ""),
            "data-testid": "assign-" + t.team_id, "data-team": t.team_id,
            text: verb + "给此队",
            onclick: function (ev) { assign(it, mode, t, ev.currentTarget); } })
        ]));
      });
      box.appendChild(list);
    }, function (e) {
      clear(box);
      box.appendChild(el("p", { class: "d-msg", text: e.message }));
    });
    return box;
  }

  function assign(it, mode, team, btn) {
    busy(btn, function () {
      return api("POST", "requests/" + it.id + "/" + mode, { team_id: team.team_id });
    }).then(function (r) {
      say("#" + it.id + " 已" + (mode === "dispatch" ? "派" : "改派") + "给 " +
        (r.team ? r.team.name : team.name), "ok");
      S.selected = it.id;
      return load().then(function () {
        var again = S.queue.items.filter(function (x) { return x.id === it.id; })[0];
        if (again) { select(again, "history"); }
      });
    }, function (e) { say(e.message, "error"); load(); });
  }

  function merge(it, into, btn) {
    if (!global.confirm("把 #" + it.id + " 合并到 #" + into + "？合并后 #" + it.id +
      " 结束，居民会看到它并入了哪一单。")) { return; }
    busy(btn, function () {
      return api("POST", "requests/" + it.id + "/merge", { into: into });
    }).then(function () {
      say("#" + it.id + " 已合并到 #" + into, "ok");
      load();
    }, function (e) { say(e.message, "error"); });
  }

  // ------------------------------------------------------------------ reject

  function openReject(it) {
    S.rejectFor = it;
    $("reject-id").textContent = "#" + it.id;
    $("reject-reason").value = "";
    $("reject-msg").textContent = "";
    $("reject-dialog").showModal();
    $("reject-reason").focus();
  }

  function confirmReject(ev) {
    ev.preventDefault();
    var it = S.rejectFor;
    var reason = $("reject-reason").value.trim();
    if (reason.length < 2) {
      $("reject-msg").textContent = "请写明驳回原因（居民会看到）";
      return;
    }
    busy($("reject-confirm"), function () {
      return api("POST", "requests/" + it.id + "/reject", { reason: reason });
    }).then(function () {
      $("reject-dialog").close();
      say("#" + it.id + " 已驳回", "ok");
      load();
    }, function (e) { $("reject-msg").textContent = e.message; });
  }

  // ------------------------------------------------------------------ start

  function start() {
    $("signin-send").addEventListener("click", sendCode);
    $("signin-form").addEventListener("submit", signInWithCode);
    $("signin-token-submit").addEventListener("click", signInWithToken);
    $("desk-signout").addEventListener("click", endSession);
    $("desk-refresh").addEventListener("click", function () { load(); });
    $("filter-state").addEventListener("change", function () { load(); });
    $("filter-level").addEventListener("change", function () { load(); });
    $("filter-overdue").addEventListener("change", render);
    $("filter-dups").addEventListener("change", render);
    $("reject-form").addEventListener("submit", confirmReject);
    $("reject-cancel").addEventListener("click", function () { $("reject-dialog").close(); });
    global.setInterval(function () { if (S.queue) { tick(); } }, 1000);
    global.setInterval(function () { if (S.token && !document.hidden) { load(); } }, REFRESH_MS);
    var token = W.token.get();
    if (token) { useToken(token); } else { showSignin(""); }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else { start(); }
}(window));
