/*
 * Phone pages for volunteers: 活动 near me by walking minutes, 报名 / 取消, 签到 by scanning the
 * activity's QR with the camera (jsQR, served from node_modules) or by typing its code, and
 * 志愿 (我的志愿: hours, star level, points) with the 积分超市 a tap away. One tab for the last
 * two keeps a leader who also orders at five tabs: 首页 · 活动 · 派单 · 志愿 · 我的.
 */
(function (global) {
  "use strict";

  var PC = global.PCM;
  var el = PC.el;

  // The caller's sign-ups by activity id, as the server has them (GET volunteers/me/signups):
  // the same on every phone the volunteer signs in on.
  var mySignups = {};

  function remember(activityId, signup) {
    if (signup && signup.state !== "cancelled") { mySignups[activityId] = signup; }
    else { delete mySignups[activityId]; }
  }

  function mine(activityId) { return mySignups[activityId] || null; }

  /** Earlier versions kept sign-ups and pick-up codes on the phone; the server has them now. */
  function forgetLocalCopies() {
    if (!PC.state.user) { return; }
    ["signups", "pickups"].forEach(function (name) {
      try { global.localStorage.removeItem("pc-" + name + "-" + PC.state.user.id); } catch (e) { /* no storage */ }
    });
  }

  function loadSignups() {
    forgetLocalCopies();
    return PC.api("GET", "volunteers/me/signups").then(function (r) {
      mySignups = {};
      r.items.forEach(function (s) { remember(s.activity_id, s); });
    });
  }

  function signupText(s) {
    if (!s) { return ""; }
    if (s.state === "waitlisted") { return "候补第 " + s.waitlist_place + " 位"; }
    var text = s.state_name || "已报名";
    if (s.checked_out) { return text + " · 已签退"; }
    return s.checked_in ? text + " · 已签到" : text;
  }

  function when(a) {
    return PC.time(a.starts_at) + " – " + PC.time(a.ends_at).replace(/^.*日?\s/, "");
  }

  // ------------------------------------------------------------------ 活动 near me

  function activityCard(a) {
    var s = mine(a.id);
    var state = el("span", { class: "m-badge m-in", dataset: { testid: "signup-state" }, text: signupText(s), hidden: !s });
    var li = el("li", { class: "m-item", dataset: { testid: "activity", id: a.id } });
    var actions = el("div", { class: "m-actions" });

    function draw() {
      var now = mine(a.id);
      state.textContent = signupText(now);
      state.hidden = !now;
      actions.textContent = "";
      if (now) {
        actions.appendChild(PC.button("签到", { class: "m-btn-primary", dataset: { testid: "checkin-link" } },
          function () { PC.go("checkin", [String(a.id)]); }));
        actions.appendChild(PC.button("取消报名", { dataset: { testid: "cancel-signup" } }, function (ev) {
          PC.busy(ev.currentTarget, "取消中…", function () {
            return PC.api("DELETE", "activities/" + a.id + "/signups");
          }).then(function () { remember(a.id, null); PC.say("已取消报名", "ok"); draw(); })
            .catch(PC.fail);
        }));
      } else {
        actions.appendChild(PC.button(a.spaces_left > 0 ? "报名" : "报名候补", { class: "m-btn-primary",
          dataset: { testid: "signup" }, "aria-label": "报名：" + a.title }, function (ev) {
          PC.busy(ev.currentTarget, "报名中…", function () {
            return PC.api("POST", "activities/" + a.id + "/signups");
          }).then(function (r) {
            remember(a.id, r);
            PC.say(r.state === "waitlisted" ? "名额已满，已排候补第 " + r.waitlist_place + " 位" : "报名成功", "ok");
            draw();
          }).catch(PC.fail);
        }));
      }
      actions.appendChild(PC.button("导航", { dataset: { testid: "activity-nav" } },
        function () { PC.go("nav", ["activity", String(a.id)]); }));
    }

    li.appendChild(el("div", { class: "m-item-head" }, [el("h3", { text: a.title }), state]));
    li.appendChild(el("p", { class: "m-sub", text: a.category_name + " · " + when(a) }));
    li.appendChild(el("p", { class: "m-sub" }, [
      el("span", { text: a.site_name + " · " }),
      el("span", { class: "m-minutes", dataset: { testid: "activity-minutes" }, text: PC.minutes(a.walk_minutes) })
    ]));
    li.appendChild(el("p", { class: "m-sub", text: "名额 " + a.confirmed + "/" + a.capacity + "，剩余 " + a.spaces_left }));
    li.appendChild(actions);
    draw();
    return li;
  }

  PC.view("activities", function (root) {
    var list = el("ul", { class: "m-list", id: "activity-list" });
    var status = el("p", { class: "m-note", id: "activity-status", text: "正在查找附近的活动…" });

    function load(loc) {
      return Promise.all([PC.api("GET", "activities?limit=50&near=" + loc.lon + "," + loc.lat),
        loadSignups()]).then(function (got) {
        var r = got[0];
        list.textContent = "";
        status.textContent = r.items.length ? "按步行时间由近到远（共 " + r.total + " 个活动）" : "附近暂时没有活动";
        r.items.forEach(function (a) { list.appendChild(activityCard(a)); });
      });
    }

    root.appendChild(el("section", { class: "m-card" }, [
      el("h2", { text: "附近的志愿活动" }),
      PC.hereBar(function (loc) { load(loc).catch(PC.fail); }),
      status, list
    ]));
    return PC.here().then(load);
  }, { label: "活动", order: 30, show: function () { return PC.isVolunteer(); } });

  // ------------------------------------------------------------------ 签到

  var jsqr = null;
  function loadJsQR() {
    if (global.jsQR) { return Promise.resolve(global.jsQR); }
    if (!jsqr) {
      jsqr = new Promise(function (resolve, reject) {
        var s = document.createElement("script");
        s.src = "../assets/jsqr/jsQR.js";
        s.onload = function () { resolve(global.jsQR); };
        s.onerror = function () { jsqr = null; reject(new Error("扫码组件加载失败，请输入签到码")); };
        document.head.appendChild(s);
      });
    }
    return jsqr;
  }

  /** Read activity and code out of what a QR says (the /m/checkin link, or a bare code). */
  function readQR(text) {
    try {
      var u = new URL(text, global.location.href);
      if (u.searchParams.get("code")) {
        return { activity: u.searchParams.get("activity"), code: u.searchParams.get("code") };
      }
    } catch (e) { /* not a link */ }
    var t = String(text).trim();
    return /^[A-Za-z0-9]{4,12}$/.test(t) ? { activity: null, code: t } : null;
  }

  /** Start the back camera in `video`; call found(text) once a QR is read. Returns stop(). */
  function scan(video, canvas, found) {
    var stream = null;
    var stopped = false;
    var frame = 0;
    function stop() {
      stopped = true;
      if (frame) { global.cancelAnimationFrame(frame); }
      if (stream) { stream.getTracks().forEach(function (t) { t.stop(); }); }
      video.srcObject = null;
    }
    var md = global.navigator.mediaDevices;
    if (!md || !md.getUserMedia) {
      return { stop: stop, ready: Promise.reject(new Error("此浏览器不能使用摄像头，请输入签到码")) };
    }
    var ready = Promise.all([loadJsQR(), md.getUserMedia({ video: { facingMode: "environment" }, audio: false })])
      .then(function (r) {
        var decode = r[0];
        stream = r[1];
        if (stopped) { stop(); return; }
        video.srcObject = stream;
        video.setAttribute("playsinline", "");
        video.muted = true;
        video.play();
        var g = canvas.getContext("2d", { willReadFrequently: true });
        var tick = function () {
          if (stopped) { return; }
          if (video.readyState >= 2 && video.videoWidth) {
            var scale = Math.min(1, 640 / Math.max(video.videoWidth, video.videoHeight));
            var w = Math.round(video.videoWidth * scale);
            var h = Math.round(video.videoHeight * scale);
            canvas.width = w;
            canvas.height = h;
            g.drawImage(video, 0, 0, w, h);
            var qr = decode(g.getImageData(0, 0, w, h).data, w, h, { inversionAttempts: "attemptBoth" });
            if (qr && qr.data) { found(qr.data); return; }
          }
          frame = global.requestAnimationFrame(tick);
        };
        tick();
      }, function (e) {
        if (e && e.name === "NotAllowedError") { throw new Error("未允许使用摄像头，请输入签到码"); }
        throw e instanceof Error && e.message ? e : new Error("摄像头打开失败，请输入签到码");
      });
    return { stop: stop, ready: ready };
  }

  PC.view("checkin", function (root, args, query) {
    var id = args[0];
    var title = el("h2", { id: "checkin-title", text: "活动签到" });
    var code = el("input", { id: "checkin-code", type: "text", maxlength: "12", autocomplete: "off",
      autocapitalize: "characters", spellcheck: "false", placeholder: "6 位签到码", value: query.get("code") || "" });
    var submit = PC.button("签到", { id: "checkin-submit", type: "submit", class: "m-btn-primary m-btn-block" });
    var out = PC.button("签退", { id: "checkout-submit", class: "m-btn-block" });
    var result = el("div", { id: "checkin-result", "aria-live": "polite" });
    var video = el("video", { id: "checkin-video", class: "m-video", hidden: true, "aria-label": "摄像头画面" });
    var canvas = el("canvas", { hidden: true });
    var scanBtn = PC.button("扫码签到", { id: "checkin-scan", class: "m-btn-primary m-btn-block" });
    var scanner = null;
    var form = el("form", { class: "m-form", id: "checkin-form", novalidate: true }, [
      PC.field("或输入现场显示的签到码", code), submit, out
    ]);
    root.appendChild(el("section", { class: "m-card" }, [
      PC.button("返回活动", { class: "m-btn-ghost m-back" }, function () { PC.go("activities"); }),
      title,
      el("p", { class: "m-note", text: "到达活动地点后，扫描现场的签到二维码，或输入二维码下方的签到码。签到时会发送你的位置。" }),
      scanBtn, video, canvas, form, result
    ]));
    PC.onLeave(function () { if (scanner) { scanner.stop(); } });

    function position() {
      // A fresh fix from the phone; else the last known place (the server checks the walk).
      return PC.locate().catch(function (e) {
        PC.say(e.message + "；将使用上次的位置", "info");
        return PC.here();
      });
    }

    function send(kind, btn) {
      var text = code.value.replace(/\s+/g, "").toUpperCase();
      if (text.length < 4) { PC.say("请输入签到码", "error"); code.focus(); return Promise.resolve(); }
      return PC.busy(btn, kind === "checkins" ? "签到中…" : "签退中…", function () {
        return position().then(function (loc) {
          return PC.api("POST", "activities/" + encodeURIComponent(id) + "/" + kind,
            { code: text, lon: loc.lon, lat: loc.lat });
        });
      }).then(function (r) {
        result.textContent = "";
        var line = kind === "checkins"
          ? "签到成功：" + PC.time(r.checkin_at) + "，距活动地点步行约 " + Math.max(1, Math.ceil(r.checkin_walk_minutes)) + " 分钟"
          : "签退成功，本次计入 " + (r.hours || 0) + " 小时";
        result.appendChild(el("p", { class: "m-ok", id: kind === "checkins" ? "checkin-ok" : "checkout-ok", text: line }));
        PC.say(line, "ok");
      }).catch(function (e) {
        result.textContent = "";
        result.appendChild(el("p", { class: "m-alert", id: "checkin-error", dataset: { code: e.code || "" }, text: e.message }));
        PC.fail(e);
      });
    }

    form.addEventListener("submit", function (ev) { ev.preventDefault(); send("checkins", submit); });
    out.addEventListener("click", function () { send("checkouts", out); });
    scanBtn.addEventListener("click", function () {
      if (scanner) { scanner.stop(); scanner = null; video.hidden = true; scanBtn.textContent = "扫码签到"; return; }
      video.hidden = false;
      scanBtn.textContent = "停止扫码";
      scanner = scan(video, canvas, function (text) {
        scanner.stop();
        scanner = null;
        video.hidden = true;
        scanBtn.textContent = "扫码签到";
        var got = readQR(text);
        if (!got) { PC.say("这不是签到二维码", "error"); return; }
        if (got.activity && got.activity !== id) {
          PC.go("checkin", [got.activity], { code: got.code, auto: "1" });
          return;
        }
        code.value = got.code;
        send("checkins", submit);
      });
      scanner.ready.catch(function (e) {
        if (scanner) { scanner.stop(); scanner = null; }
        video.hidden = true;
        scanBtn.textContent = "扫码签到";
        PC.fail(e);
        code.focus();
      });
    });

    var load = PC.api("GET", "activities/" + encodeURIComponent(id)).then(function (a) {
      title.textContent = "签到：" + a.title;
      title.parentNode.insertBefore(el("p", { class: "m-sub", text: a.site_name + " · " + when(a) }), title.nextSibling);
    });
    return load.then(function () {
      if (query.get("auto") === "1" && code.value) { return send("checkins", submit); }
      return null;
    });
  });
  PC.tabParent.checkin = "activities";

  // ------------------------------------------------------------------ 我的时长

  var KIND_ZH = { activity: "活动", correction: "更正", backfill: "补录" };
  var ENTRY_ZH = { approved: "已生效", pending: "待审核", rejected: "未通过" };

  PC.view("record", function (root) {
    return PC.api("GET", "volunteers/me/record").then(function (r) {
      var next = r.next_star_hours ? "再服务 " + Math.max(0, +(r.next_star_hours - r.hours).toFixed(1)) + " 小时升到下一星级" : "已是最高星级";
      var list = el("ul", { class: "m-list", id: "record-entries" });
      r.entries.forEach(function (e) {
        list.appendChild(el("li", { class: "m-item" }, [
          el("div", { class: "m-item-head" }, [el("strong", { text: (e.hours > 0 ? "+" : "") + e.hours + " 小时" }),
            el("span", { class: "m-badge", text: (KIND_ZH[e.kind] || e.kind) + " · " + (ENTRY_ZH[e.state] || e.state) })]),
          el("p", { class: "m-sub", text: PC.time(e.created_at) + (e.note ? " · " + e.note : "") })
        ]));
      });
      if (!r.entries.length) { list.appendChild(el("li", { class: "m-note", text: "还没有服务记录，报名参加活动吧。" })); }
      root.appendChild(el("section", { class: "m-card" }, [
        el("h2", { text: r.name + " 的志愿服务" }),
        el("dl", { class: "m-stats" }, [
          el("div", null, [el("dt", { text: "服务时长" }), el("dd", { id: "record-hours", text: r.hours + " 小时" })]),
          el("div", null, [el("dt", { text: "星级" }), el("dd", { id: "record-star", dataset: { level: r.star_level }, text: r.star_name })]),
          el("div", null, [el("dt", { text: "积分" }), el("dd", { id: "record-points", text: String(r.points) })])
        ]),
        el("p", { class: "m-sub", text: next }),
        el("a", { href: "#/store", id: "record-store", class: "m-btn m-btn-primary m-btn-block",
          text: "积分超市 · 我的取货码" }),
        el("h3", { text: "时长明细" }), list
      ]));
    });
  }, { label: "志愿", order: 50, show: function () { return PC.isVolunteer(); } });

  // ------------------------------------------------------------------ 积分超市

  /** Whether a failed call may have reached the server: no answer, or a gateway's 5xx. */
  function answerLost(e) { return !e.status || e.status >= 500; }

  function wait(ms) { return new Promise(function (resolve) { global.setTimeout(resolve, ms); }); }

  PC.view("store", function (root) {
    var balance = el("p", { class: "m-big", id: "store-points", text: "积分读取中…" });
    var list = el("ul", { class: "m-list", id: "reward-list" });
    var mineList = el("ul", { class: "m-list", id: "pickup-list" });

    /** 我的取货码: the caller's redemptions, newest first (GET volunteers/me/redemptions). */
    function loadCodes() {
      forgetLocalCopies();
      return PC.api("GET", "volunteers/me/redemptions").then(function (r) {
        mineList.textContent = "";
        r.items.forEach(function (c) {
          var picked = !!c.picked_up_at;
          mineList.appendChild(el("li", { class: "m-item", dataset: { testid: "pickup", id: c.id, picked: picked ? "1" : "0" } }, [
            el("div", { class: "m-item-head" }, [el("h3", { text: c.reward_name }),
              el("span", { class: "m-badge" + (picked ? "" : " m-in"), text: picked ? "已领取" : "待领取" })]),
            el("p", { class: "m-sub", text: "领取地点：" + c.site_name + " · " + PC.time(c.created_at) + " 兑换" }),
            el("p", { class: "m-code", dataset: { testid: "pickup-code" }, text: c.code })
          ]));
        });
        if (!r.items.length) { mineList.appendChild(el("li", { class: "m-note", text: "兑换后在这里出示取货码。" })); }
      });
    }

    function points() {
      return PC.api("GET", "volunteers/me/record").then(function (r) {
        balance.textContent = "我的积分：" + r.points;
        balance.dataset.points = String(r.points);
        return r.points;
      });
    }

    root.appendChild(el("section", { class: "m-card" }, [
      PC.button("返回我的志愿", { class: "m-btn-ghost m-back", id: "store-back" }, function () { PC.go("record"); }),
      el("h2", { text: "积分超市" }), balance, list]));
    root.appendChild(el("section", { class: "m-card" }, [el("h2", { text: "我的取货码" }), mineList]));
    return Promise.all([points(), PC.api("GET", "rewards"), loadCodes()]).then(function (r) {
      var items = r[1].items;
      if (!items.length) { list.appendChild(el("li", { class: "m-note", text: "暂时没有可兑换的物品" })); }
      items.forEach(function (w) {
        // A tap's Idempotency-Key, kept while its answer is unknown: the page's own retries and
        // the next tap after a lost answer ask about the same redemption, never a second one.
        var pending = null;

        function send(key, tries) {
          return PC.api("POST", "rewards/" + w.id + "/redemptions", null, { idem: key }).catch(function (e) {
            if (answerLost(e) && tries < 2) { return wait(700 * (tries + 1)).then(function () { return send(key, tries + 1); }); }
            throw e;
          });
        }

        list.appendChild(el("li", { class: "m-item", dataset: { testid: "reward", id: w.id } }, [
          el("div", { class: "m-item-head" }, [el("h3", { text: w.name }), el("span", { class: "m-badge", text: w.price_points + " 积分" })]),
          w.description ? el("p", { class: "m-sub", text: w.description }) : null,
          el("p", { class: "m-sub", text: "领取地点：" + (w.site_name || w.site_id) + " · 库存 " + w.stock }),
          el("div", { class: "m-actions" }, [PC.button("兑换", { class: "m-btn-primary", dataset: { testid: "redeem" },
            disabled: w.stock < 1, "aria-label": "兑换：" + w.name }, function (ev) {
            var key = pending || PC.key("redeem");
            pending = key;
            PC.busy(ev.currentTarget, "兑换中…", function () { return send(key, 0); }).then(function (red) {
              pending = null;
              PC.say("兑换成功，取货码 " + red.code + "，到 " + (w.site_name || w.site_id) + " 出示领取", "ok");
              return Promise.all([points(), loadCodes()]);
            }, function (e) {
              if (!answerLost(e)) { pending = null; throw e; }
              throw new Error("网络中断，兑换结果未知：请再点一次「兑换」查询这一笔，不会重复扣分");
            }).catch(PC.fail);
          })])
        ]));
      });
    });
  });
  PC.tabParent.store = "record";
}(window));
