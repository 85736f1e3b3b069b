/*
 * Phone pages for team leaders (a team account, or a volunteer who leads a team): 我的派单,
 * 接单 / 拒单, 完成服务 with a note, the hours and photos taken on the spot, and 导航 (our walking
 * route, then the order's Amap / Baidu links from the request view's `navigation`).
 */
(function (global) {
  "use strict";

  var PC = global.PCM;
  var el = PC.el;
  var ACTIVE = ["dispatched", "accepted", "completed", "reviewed"];
  // What the server takes (GET /requests/photos/limits: bytes, edge, photos per order), read
  // once. A phone's 12-50 MP photo is scaled down here first, so it is not refused (413) after
  // crossing mobile data whole.
  var limitsOnce = null;
  function photoLimits() {
    if (!limitsOnce) {
      limitsOnce = PC.api("GET", "requests/photos/limits").catch(function () {
        limitsOnce = null;  // asked again next time; meanwhile the server alone judges
        return null;
      });
    }
    return limitsOnce;
  }

  /** Decode a photo turned upright by its EXIF orientation (the JPEG drawn from it has none). */
  function decodePhoto(file) {
    function viaImg() {
      return new Promise(function (resolve, reject) {
        var url = global.URL.createObjectURL(file);
        var img = new global.Image();
        img.onload = function () { global.URL.revokeObjectURL(url); resolve(img); };
        img.onerror = function () { global.URL.revokeObjectURL(url); reject(new Error("decode")); };
        img.src = url;
      });
    }
    if (!global.createImageBitmap) { return viaImg(); }
    return global.createImageBitmap(file, { imageOrientation: "from-image" }).catch(viaImg);
  }

  function drawJpeg(src, w, h, quality) {
    var canvas = global.document.createElement("canvas");
    canvas.width = w;
    canvas.height = h;
    var ctx = canvas.getContext("2d");
    ctx.fillStyle = "#fff";  // a transparent PNG's clear pixels turn white, not black
    ctx.fillRect(0, 0, w, h);
    ctx.drawImage(src, 0, 0, w, h);
    return new Promise(function (resolve) { canvas.toBlob(resolve, "image/jpeg", quality); });
  }

  /**
   * What to upload for a picked photo: the file itself when the server takes it as it is;
   * otherwise a JPEG (quality 0.85) no longer than the server's edge, made smaller again until
   * it fits its byte limit. Canvas re-encoding also leaves the EXIF (GPS) on the phone.
   * Resolves to {blob, name}.
   */
  function fitPhoto(file, lim) {
    var same = { blob: file, name: file.name };
    if (!lim) { return Promise.resolve(same); }
    return decodePhoto(file).then(function (img) {
      var w = img.naturalWidth || img.width, h = img.naturalHeight || img.height;
      var done = function (out) { if (img.close) { img.close(); } return out; };
      if (file.size <= lim.photo_max_bytes && Math.max(w, h) <= lim.photo_max_edge_px &&
          w * h <= lim.photo_max_pixels) {
        return done(same);
      }
      var name = (file.name || "photo").replace(/\.[^.]*$/, "") + ".jpg";
      var attempt = function (scale, quality, left) {
        var cw = Math.max(1, Math.round(w * scale)), ch = Math.max(1, Math.round(h * scale));
        return drawJpeg(img, cw, ch, quality).then(function (blob) {
          if (!blob || blob.size <= lim.photo_max_bytes || !left) { return blob; }
          return quality > 0.7 ? attempt(scale, 0.7, left - 1) : attempt(scale * 0.8, quality, left - 1);
        });
      };
      return attempt(Math.min(1, lim.photo_max_edge_px / Math.max(w, h)), 0.85, 4).then(function (blob) {
        return done(blob ? { blob: blob, name: name } : same);
      });
    }, function () { return same; });  // not decodable here (e.g. HEIC): the server judges it
  }

  function taskCard(req) {
    return el("li", { class: "m-item", dataset: { testid: "task", id: req.id, state: req.state } }, [
      el("a", { href: "#/tasks/" + req.id, class: "m-item-link", "aria-label": "派单 " + req.id + " " + req.category_zh + " " + req.state_zh }, [
        el("div", { class: "m-item-head" }, [el("h3", { text: req.category_zh + " · #" + req.id }), PC.stateBadge(req)]),
        el("p", { class: "m-sub", text: req.description }),
        el("p", { class: "m-sub", text: PC.time(req.updated_at) + (req.team ? " · " + req.team.name : "") })
      ])
    ]);
  }

  function act(req, action, body, label, btn) {
    var key = PC.key(action);
    return PC.busy(btn, label + "中…", function () {
      return PC.api("POST", "requests/" + req.id + "/" + action, body, { idem: key });
    }).then(function (r) { PC.say(label + "成功：" + r.state_zh, "ok"); PC.render(); return r; });
  }

  function completeForm(req) {
    var note = el("textarea", { id: "task-note", rows: "3", maxlength: "500", placeholder: "例如：药已送到，老人身体状况良好" });
    var hours = el("input", { id: "task-hours", type: "number", min: "0.25", max: "24", step: "0.25", value: "1", inputmode: "decimal", required: true });
    var photos = el("input", { id: "task-photos", type: "file", accept: "image/*", capture: "environment", multiple: true });
    var picked = el("p", { class: "m-sub", id: "task-photos-picked", text: "可拍照或选择照片（JPEG/PNG/WebP）" });
    var maxPhotos = null;  // the server's photos_per_request, once read
    photoLimits().then(function (lim) {
      if (!lim) { return; }
      maxPhotos = lim.photos_per_request;
      if (!photos.files.length) { picked.textContent = "可拍照或选择照片（JPEG/PNG/WebP，最多 " + maxPhotos + " 张）"; }
    });
    var submit = PC.button("完成服务", { id: "task-complete", type: "submit", class: "m-btn-primary m-btn-block" });
    var key = PC.key("complete");
    var sent = {};  // photos already uploaded (by name+size): a retry does not send them twice
    var form = el("form", { class: "m-form", id: "complete-form", novalidate: true }, [
      el("h3", { text: "完成服务" }),
      PC.field("服务情况", note),
      PC.field("服务时长（小时）", hours),
      PC.field("现场照片", photos), picked,
      submit
    ]);
    photos.addEventListener("change", function () {
      var n = photos.files.length;
      picked.textContent = n ? "已选 " + n + " 张照片" : "未选照片";
      if (maxPhotos && n > maxPhotos) { PC.say("最多 " + maxPhotos + " 张照片", "error"); }
    });
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var h = parseFloat(hours.value);
      if (!(h > 0 && h <= 24)) { PC.say("请填写服务时长（0–24 小时）", "error"); hours.focus(); return; }
      var files = Array.prototype.slice.call(photos.files || [], 0, maxPhotos || undefined);
      PC.busy(submit, "提交中…", function () {
        // Photos first: they may be added while the order is accepted, then it is completed.
        return files.reduce(function (p, f, i) {
          var id = f.name + ":" + f.size;
          return p.then(function () {
            if (sent[id]) { return null; }
            submit.textContent = "上传照片 " + (i + 1) + "/" + files.length + "…";
            return photoLimits().then(function (lim) { return fitPhoto(f, lim); }).then(function (up) {
              var fd = new FormData();
              fd.append("file", up.blob, up.name);
              return PC.api("POST", "requests/" + req.id + "/photos", null, { form: fd });
            }).then(function () { sent[id] = true; });
          });
        }, Promise.resolve()).then(function () {
          submit.textContent = "提交中…";
          return PC.api("POST", "requests/" + req.id + "/complete", { hours: h, note: note.value.trim() }, { idem: key });
        });
      }).then(function (r) {
        PC.say("服务已完成：" + r.state_zh + (files.length ? "，照片 " + files.length + " 张" : ""), "ok");
        PC.render();
      }).catch(PC.fail);
    });
    return form;
  }

  function taskDetail(root, id) {
    return PC.api("GET", "requests/" + encodeURIComponent(id)).then(function (req) {
      var card = el("section", { class: "m-card", id: "task-detail", dataset: { id: req.id, state: req.state } });
      [
        PC.button("返回我的派单", { class: "m-btn-ghost m-back" }, function () { PC.go("tasks"); }),
        el("div", { class: "m-item-head" }, [el("h2", { text: req.category_zh + " · #" + req.id }),
          el("span", { id: "task-state", class: "m-badge m-state-" + req.state, dataset: { state: req.state }, text: req.state_zh })]),
        el("p", { text: req.description }),
        el("p", { class: "m-sub", text: "联系电话 " }, [
          req.contact_masked ? el("span", { text: req.contact })
            : el("a", { href: "tel:" + req.contact.replace(/[^0-9+]/g, ""), id: "task-call", class: "m-link", text: req.contact })
        ]),
        req.team ? el("p", { class: "m-sub", text: "服务队：" + req.team.name }) : null,
        req.hours ? el("p", { class: "m-sub", text: "服务时长 " + req.hours + " 小时" }) : null,
        PC.photoStrip(req),
        el("a", { href: "#/nav/request/" + req.id, id: "task-nav", class: "m-btn m-btn-block", text: "导航到服务地点" }),
        // The order's own hand-off links (only those who see the contact get them): after our
        // walking route above, straight to Amap or Baidu in their datums.
        req.navigation ? PC.handOff(req.navigation) : null
      ].forEach(function (n) { if (n) { card.appendChild(n); } });
      if (req.state === "dispatched" || req.state === "submitted") {
        var reason = el("textarea", { id: "task-decline-reason", rows: "2", maxlength: "500", placeholder: "拒单原因（选填）" });
        card.appendChild(el("div", { class: "m-actions m-actions-wide" }, [
          PC.button("接单", { id: "task-accept", class: "m-btn-primary" }, function (ev) {
            act(req, "accept", null, "接单", ev.currentTarget).catch(PC.fail);
          }),
          req.state === "dispatched" ? PC.button("拒单", { id: "task-decline", class: "m-btn-danger" }, function (ev) {
            act(req, "decline", { reason: reason.value.trim() }, "拒单", ev.currentTarget)
              .then(function () { PC.go("tasks"); }).catch(PC.fail);
          }) : null
        ]));
        if (req.state === "dispatched") { card.appendChild(PC.field("拒单原因", reason)); }
      }
      if (req.state === "accepted") { card.appendChild(completeForm(req)); }
      if (req.review) {
        card.appendChild(el("p", { class: "m-review", id: "task-review", text: "居民评价：" + "★★★★★".slice(0, req.review.stars) + " " + req.review.comment }));
      }
      root.appendChild(card);
    });
  }

  PC.view("tasks", function (root, args) {
    if (args[0]) { return taskDetail(root, args[0]); }
    var teams = PC.myTeams();
    var todo = el("ul", { class: "m-list", id: "task-list" });
    var done = el("ul", { class: "m-list", id: "task-done" });
    root.appendChild(el("section", { class: "m-card" }, [
      el("div", { class: "m-item-head" }, [el("h2", { text: "我的派单" }),
        PC.button("刷新", { id: "tasks-refresh", class: "m-btn-side" }, function () { PC.render(); })]),
      todo
    ]));
    root.appendChild(el("section", { class: "m-card" }, [el("h2", { text: "已完成" }), done]));
    return PC.api("GET", "requests?limit=100").then(function (page) {
      var mine = page.items.filter(function (r) {
        return r.team && teams.indexOf(r.team.team_id) >= 0 && ACTIVE.indexOf(r.state) >= 0;
      });
      mine.forEach(function (r) {
        (r.state === "dispatched" || r.state === "accepted" ? todo : done).appendChild(taskCard(r));
      });
      if (!todo.children.length) { todo.appendChild(el("li", { class: "m-note", text: "暂时没有待处理的派单" })); }
      if (!done.children.length) { done.appendChild(el("li", { class: "m-note", text: "还没有完成的服务" })); }
    });
  }, { label: "派单", order: 40, show: function () { return PC.isLeader(); } });
}(window));
