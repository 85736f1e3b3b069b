/*
 * Phone pages for residents: 首页 (the map and the 服务菜单 at my position), 点单, 我的 (my
 * orders, their state and history), and 评价 once an order is completed. Volunteers order as
 * residents do and get the same views (PC.canOrder); 我的 lists only the caller's own orders.
 */
(function (global) {
  "use strict";

  var PC = global.PCM;
  var el = PC.el;

  var ACTION_ZH = {
    create: "点单", dispatch: "派单", accept: "接单", decline: "拒单", complete: "完成服务",
    review: "评价", cancel: "取消", reject: "驳回", merge: "合并", redispatch: "改派",
    escalate: "超时升级"
  };
  var STATE_ZH = {
    submitted: "已点单（待派单）", dispatched: "已派单（待接单）", accepted: "已接单（服务中）",
    completed: "已完成（待评价）", reviewed: "已评价", cancelled: "已取消", rejected: "已驳回",
    merged: "已合并"
  };
  var ROLE_ZH = {
    resident: "居民", dispatcher: "调度员", team: "服务队", admin: "管理员", volunteer: "志愿者",
    station: "所站", system: "系统"
  };
  PC.ACTION_ZH = ACTION_ZH;
  PC.STATE_ZH = STATE_ZH;

  PC.stateBadge = function (req) {
    return el("span", { class: "m-badge m-state-" + req.state, dataset: { state: req.state },
      text: req.state_zh || STATE_ZH[req.state] || req.state });
  };

  // ------------------------------------------------------------------ 首页: map + 服务菜单

  function menuItem(item) {
    var meta = item.available
      ? [el("span", { class: "m-minutes", dataset: { testid: "menu-minutes" }, text: PC.minutes(item.walk_minutes) }),
        el("span", { class: "m-badge " + (item.within_15 ? "m-in" : "m-out"),
          text: item.within_15 ? "15分钟内" : "超出15分钟" })]
      : [el("span", { class: "m-badge m-out", text: "暂无可接单的队伍" })];
    var who = item.available ? el("p", { class: "m-sub", text: item.team_name + " · " + item.site_name }) : null;
    var actions = el("div", { class: "m-actions" }, [
      PC.button("点单", { class: "m-btn-primary", dataset: { testid: "menu-order", category: item.category },
        "aria-label": "点单：" + item.category_zh }, function () {
        PC.go("order", [item.category]);
      }),
      item.available ? PC.button("导航", { dataset: { testid: "menu-nav" },
        "aria-label": "导航到" + item.site_name }, function () {
        PC.go("nav", ["site", item.site_id]);
      }) : null
    ]);
    return el("li", { class: "m-item", dataset: { testid: "menu-item", category: item.category,
      within15: item.within_15 ? "1" : "0" } }, [
      el("div", { class: "m-item-head" }, [el("h3", { text: item.category_zh })].concat(meta)),
      who, actions
    ]);
  }

  PC.view("home", function (root) {
    var list = el("ul", { class: "m-list", id: "menu-list", "aria-live": "polite" });
    var status = el("p", { class: "m-note", id: "menu-status", text: "正在查找身边的志愿服务队…" });
    var box = el("div", { id: "home-map", class: "m-map", role: "application",
      "aria-label": "地图：点按地图选择位置" });
    var mm = null;

    var asked = 0;

    function load(loc) {
      var mine = ++asked;  // only the last place asked about is shown
      if (mm) { mm.view(loc.lat, loc.lon, 15); mm.you(loc.lon, loc.lat); }
      status.textContent = "正在查找身边的志愿服务队…";
      return PC.api("GET", "services/menu?lon=" + loc.lon + "&lat=" + loc.lat).then(function (m) {
        if (mine !== asked) { return; }
        list.textContent = "";
        list.dataset.lon = String(loc.lon);
        list.dataset.lat = String(loc.lat);
        // Nearest first; categories no team can take now last.
        m.items.slice().sort(function (a, b) {
          if (a.available !== b.available) { return a.available ? -1 : 1; }
          return (a.walk_minutes || 0) - (b.walk_minutes || 0);
        }).forEach(function (item) { list.appendChild(menuItem(item)); });
        var near = m.items.filter(function (i) { return i.within_15; }).length;
        status.textContent = "步行 15 分钟内有 " + near + " / " + m.items.length + " 类服务可点单（示例数据）";
        list.dataset.loaded = String(Date.now());
      }, function (e) {
        if (mine !== asked) { return; }
        status.textContent = e.code === "out_of_area" ? "这个位置不在服务区域内，请在地图上另选一点" : e.message;
        throw e;
      });
    }

    root.appendChild(el("section", { class: "m-card" }, [
      el("h2", { text: "身边的志愿服务" }),
      PC.hereBar(function (loc) { load(loc).catch(PC.fail); }),
      box,
      el("p", { class: "m-hint", text: "点按地图改选位置（紫色圆点是你）" })
    ]));
    root.appendChild(el("section", { class: "m-card" }, [
      el("h2", { text: "服务菜单" }), status, list
    ]));
    mm = PC.miniMap(box, {
      onTap: function (lon, lat) {
        load(PC.setHere(lon, lat, "tap")).catch(PC.fail);
      }
    });
    return PC.here().then(load);
  }, { label: "首页", order: 10, show: function () { return PC.canOrder(); } });

  // ------------------------------------------------------------------ 点单

  PC.view("order", function (root, args) {
    var select = el("select", { id: "order-category", required: true });
    var desc = el("textarea", { id: "order-description", rows: "4", maxlength: "2000", required: true,
      placeholder: "例如：帮忙代购一周的药品，下午三点前送到" });
    var contact = el("input", { id: "order-contact", type: "tel", inputmode: "numeric", maxlength: "20",
      autocomplete: "tel", required: true, placeholder: "联系电话" });
    var where = el("p", { id: "order-where", class: "m-loc-text", text: "位置读取中…" });
    var submit = PC.button("提交点单", { id: "order-submit", type: "submit", class: "m-btn-primary m-btn-block" });
    var key = PC.key("order");  // one per form: a retry after a lost answer is not a second order
    var form = el("form", { class: "m-card m-form", id: "order-form", novalidate: true }, [
      el("h2", { text: "点单" }),
      PC.field("服务类别", select),
      PC.field("需要什么帮助", desc),
      // The truth of requests_view.sees_contact: dispatchers, the 所/站 whose area holds the
      // order and the team sent (its account or leaders) read the whole number.
      PC.field("联系电话", contact, "完整号码仅调度员、服务地点所属所/站的工作人员和派到的服务队（含队长）可见；其他人看到的是 138****1234"),
      el("div", { class: "m-field" }, [
        el("span", { class: "m-label", text: "服务地点" }), where,
        el("a", { href: "#/home", class: "m-btn m-btn-ghost", id: "order-change-place", text: "在首页地图上改选位置" })
      ]),
      submit
    ]);
    root.appendChild(form);
    var loc = null;
    PC.here().then(function (l) { loc = l; where.textContent = PC.hereText(l); }).catch(PC.fail);
    form.addEventListener("input", function () { key = PC.key("order"); });
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var phone = contact.value.replace(/[^0-9+\-() ]/g, "");
      if (!desc.value.trim() || phone.length < 3 || !loc) {
        PC.say("请填写需要的帮助和联系电话", "error");
        return;
      }
      PC.busy(submit, "提交中…", function () {
        return PC.api("POST", "requests", {
          lon: loc.lon, lat: loc.lat, category: select.value, description: desc.value.trim(),
          contact: phone
        }, { idem: key });
      }).then(function (req) {
        PC.say("点单成功，订单号 " + req.id + "，" + (req.state_zh || ""), "ok");
        PC.go("orders", [String(req.id)]);
      }).catch(PC.fail);
    });
    return PC.api("GET", "categories").then(function (r) {
      r.categories.forEach(function (c) {
        select.appendChild(el("option", { value: c.code, text: c.name, selected: c.code === args[0] }));
      });
    });
  });
  PC.tabParent.order = "home";

  // ------------------------------------------------------------------ 我的: orders

  function orderCard(req) {
    return el("li", { class: "m-item", dataset: { testid: "order-card", id: req.id, state: req.state } }, [
      el("a", { href: "#/orders/" + req.id, class: "m-item-link", "aria-label": "订单 " + req.id + " " + req.category_zh + " " + req.state_zh }, [
        el("div", { class: "m-item-head" }, [
          el("h3", { text: req.category_zh + " · #" + req.id }), PC.stateBadge(req)
        ]),
        el("p", { class: "m-sub", text: req.description }),
        el("p", { class: "m-sub", text: "下单于 " + PC.time(req.created_at) + (req.team ? " · " + req.team.name : "") })
      ])
    ]);
  }

  function timeline(req) {
    var ol = el("ol", { class: "m-timeline", id: "order-timeline" });
    (req.history || []).forEach(function (t) {
      var what = ACTION_ZH[t.action] || t.action;
      var to = STATE_ZH[t.to_state] || t.to_state;
      var text = t.action === "escalate" ? what : what + " → " + to;
      ol.appendChild(el("li", { dataset: { testid: "timeline-item", action: t.action } }, [
        el("span", { class: "m-when", text: PC.time(t.at) }),
        el("strong", { text: text }),
        el("span", { class: "m-sub", text: "（" + (ROLE_ZH[t.actor_role] || t.actor_role) + "）" }),
        t.note ? el("p", { class: "m-sub", text: t.note }) : null
      ]));
    });
    return ol;
  }

  PC.photoStrip = function (req) {
    var photos = req.photos || [];
    if (!photos.length) { return null; }
    var strip = el("div", { class: "m-photos", id: "order-photos" });
    photos.forEach(function (p, i) {
      var img = el("img", { alt: "服务照片 " + (i + 1), width: "96", height: "96", dataset: { testid: "order-photo" } });
      strip.appendChild(img);
      PC.imageURL(p.url).then(function (u) {
        img.src = u;
        PC.onLeave(function () { global.URL.revokeObjectURL(u); });
      }).catch(function () { img.alt = "照片无法显示"; });
    });
    return strip;
  };

  function reviewForm(req, done) {
    var stars = 0;
    var group = el("div", { class: "m-stars", id: "review-stars", role: "radiogroup", "aria-label": "评分（1-5 星）" });
    var buttons = [];
    [1, 2, 3, 4, 5].forEach(function (n) {
      var b = PC.button("★", { class: "m-star", role: "radio", "aria-checked": "false",
        "aria-label": n + " 星", dataset: { stars: n, testid: "star-" + n } }, function () {
        stars = n;
        buttons.forEach(function (x, i) {
          x.setAttribute("aria-checked", i + 1 === n ? "true" : "false");
          x.classList.toggle("m-on", i < n);
        });
        shown.textContent = n + " 星";
      });
      buttons.push(b);
      group.appendChild(b);
    });
    var shown = el("span", { class: "m-sub", id: "review-shown", text: "请点星评分" });
    var comment = el("textarea", { id: "review-comment", rows: "3", maxlength: "500", placeholder: "说说这次服务（选填）" });
    var submit = PC.button("提交评价", { id: "review-submit", type: "submit", class: "m-btn-primary m-btn-block" });
    var key = PC.key("review");
    var form = el("form", { class: "m-form", id: "review-form", novalidate: true }, [
      el("h3", { text: "评价这次服务" }), group, shown, PC.field("评价内容", comment), submit
    ]);
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      if (!stars) { PC.say("请先点星评分", "error"); return; }
      PC.busy(submit, "提交中…", function () {
        return PC.api("POST", "requests/" + req.id + "/review", { stars: stars, comment: comment.value.trim() }, { idem: key });
      }).then(function (r) { PC.say("谢谢你的评价", "ok"); done(r); }).catch(PC.fail);
    });
    return form;
  }

  function orderDetail(root, id) {
    return PC.api("GET", "requests/" + encodeURIComponent(id)).then(function (req) {
      var card = el("section", { class: "m-card", id: "order-detail", dataset: { id: req.id, state: req.state } });
      var rows = [
        PC.button("返回我的订单", { class: "m-btn-ghost m-back" }, function () { PC.go("orders"); }),
        el("div", { class: "m-item-head" }, [el("h2", { text: req.category_zh + " · #" + req.id }),
          el("span", { id: "order-state", class: "m-badge m-state-" + req.state, dataset: { state: req.state }, text: req.state_zh })]),
        el("p", { text: req.description }),
        el("p", { class: "m-sub", text: "联系电话 " + req.contact }),
        req.team ? el("p", { id: "order-team", text: "服务队：" + req.team.name }) : null
      ];
      if (req.reject_reason) {
        rows.push(el("p", { class: "m-alert", id: "order-reject-reason", text: "驳回原因：" + req.reject_reason }));
      }
      if (req.merged_into) {
        rows.push(el("p", { class: "m-alert", id: "order-merged", text: "已与订单 #" + req.merged_into + " 合并处理" }));
      }
      if (req.level_zh || req.area_name) {
        rows.push(el("p", { class: "m-sub", id: "order-level", text: "负责：" + [req.area_name, req.level_zh].filter(Boolean).join(" · ") }));
      }
      if (req.hours) { rows.push(el("p", { class: "m-sub", text: "服务时长 " + req.hours + " 小时" })); }
      rows.push(PC.photoStrip(req));
      rows.push(el("h3", { text: "进度" }), timeline(req));
      if (req.review) {
        rows.push(el("p", { id: "order-review", class: "m-review", text: "我的评价：" + "★★★★★".slice(0, req.review.stars) + " " + req.review.comment }));
      }
      rows.forEach(function (r) { if (r) { card.appendChild(r); } });
      // Only the one who ordered reviews or cancels (a leader may open a team's order here).
      var own = PC.canOrder() && PC.isMine(req);
      if (req.state === "completed" && own) {
        card.appendChild(reviewForm(req, function () { PC.render(); }));
      }
      if (["submitted", "dispatched", "accepted"].indexOf(req.state) >= 0 && own) {
        var key = PC.key("cancel");
        card.appendChild(PC.button("取消订单", { id: "order-cancel", class: "m-btn-danger m-btn-block" }, function (ev) {
          PC.busy(ev.currentTarget, "取消中…", function () {
            return PC.api("POST", "requests/" + req.id + "/cancel",
              { reason: (PC.isResident() ? "居民" : "志愿者") + "在手机上取消" }, { idem: key });
          }).then(function () { PC.say("订单已取消", "ok"); PC.render(); }).catch(PC.fail);
        }));
      }
      root.appendChild(card);
    });
  }

  PC.view("orders", function (root, args) {
    if (args[0]) { return orderDetail(root, args[0]); }
    var list = el("ul", { class: "m-list", id: "order-list" });
    root.appendChild(el("section", { class: "m-card" }, [
      el("div", { class: "m-item-head" }, [el("h2", { text: "我的订单" }),
        PC.button("刷新", { id: "orders-refresh", class: "m-btn-side" }, function () { PC.render(); })]),
      list
    ]));
    return myOrders(0, []).then(function (items) {
      if (!items.length) {
        list.appendChild(el("li", { class: "m-note", text: "还没有订单。在首页的服务菜单里点单。" }));
      }
      items.forEach(function (req) { list.appendChild(orderCard(req)); });
    });
  }, { label: "我的", order: 90, show: function () { return PC.canOrder(); } });

  var MY_ORDERS = 50;

  /**
   * The caller's own orders, newest first, at most MY_ORDERS. A leader's GET /requests also
   * holds the orders dispatched to their teams (those are under 派单), so page on until enough
   * of the caller's own are found (a few pages at most).
   */
  function myOrders(offset, got) {
    return PC.api("GET", "requests?limit=100&offset=" + offset).then(function (page) {
      var all = got.concat(page.items.filter(PC.isMine));
      var seen = offset + page.items.length;
      if (all.length >= MY_ORDERS || !page.items.length || seen >= page.count || seen >= 500) {
        return all.slice(0, MY_ORDERS);
      }
      return myOrders(seen, all);
    });
  }
}(window));
