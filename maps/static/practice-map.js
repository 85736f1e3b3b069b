/*
 * practice-map.js: the practice map's behaviour on top of the folium page.
 *
 * Positions (中心/所/站/点) with clustering, filters by service category and level, search by
 * name, address or pinyin (GET /search), a position's card (GET /positions/{id}/card: address,
 * phone, hours, teams, coming activities, 导航 to Amap or Baidu after our own walking route),
 * 离我最近 (nearest positions by walking, with routes) from a click or 定位我, the offline
 * basemap, lazy planner layers and the 长辈版 (large) mode. Every text that comes from data is
 * set with textContent; innerHTML only ever receives the constant SVG shapes below.
 * All data is fetched from the API with relative URLs.
 */
(function (global) {
  "use strict";

  var SIZES = { center: 38, township: 32, community: 30, site: 26 };
  var FOCUS_ZOOM = 16;  // the cluster layer's disableClusteringAtZoom
  var LARGE_SIZES = { center: 52, township: 48, community: 46, site: 44 };
  // Six steps of viridis (matplotlib's, Smith & van der Walt), light = near, dark = far: the
  // lightness falls step by step, so the bins stay apart with red-green colour blindness
  // (deuteranopia, protanopia) and in grey.
  var CELL_BINS = [
    { max: 5, color: "#FDE725", label: "5 分钟内" },
    { max: 10, color: "#7AD151", label: "5–10 分钟" },
    { max: 15, color: "#22A884", label: "10–15 分钟" },
    { max: 20, color: "#2A788E", label: "15–20 分钟" },
    { max: 30, color: "#414487", label: "20–30 分钟" },
    { max: Infinity, color: "#440154", label: "30 分钟以上或无法步行到达" }
  ];
  var PLANNER = {
    cells: { label: "步行时间网格" },
    serviceAreas: { label: "15分钟服务范围", color: "#0B6E99", weight: 1, fill: 0.1 },
    gaps: { label: "服务缺口与居民", color: "#B42318", weight: 2, fill: 0.25 },
    recommendations: { label: "推荐新址", color: "#8A4B00", weight: 2, fill: 0.2 }
  };
  // What each planner layer's popup shows: [property, zh label, format]. Only these lines are
  // shown, in this order; a property not listed here is never shown (no raw keys).
  var PLANNER_FIELDS = {
    serviceAreas: [
      ["level", "层级", "level"], ["site_id", "阵地编号", "text"],
      ["minutes", "步行时间上限", "minutes"], ["walk_m_per_min", "步速", "pace"],
      ["reach_m", "步行可达距离", "metres"], ["area_km2", "服务范围面积", "km2"]
    ],
    gaps: [
      ["rank", "缺口排名", "ordinal"], ["gap_id", "缺口编号", "text"],
      ["category", "服务类别", "category"], ["residents", "缺口内居民（估算）", "residents"],
      ["cells", "网格数", "count"], ["area_km2", "面积", "km2"],
      ["mean_minutes", "平均步行时间", "minutes"], ["worst_minutes", "最远步行时间", "minutes"],
      ["unreachable_cells", "步行无法到达的网格", "count"],
      ["nearest_site_name", "最近阵地", "text"],
      ["nearest_walk_minutes", "到最近阵地步行", "minutes"]
    ],
    recommendations: [
      ["rank", "推荐顺序", "ordinal"], ["kind", "地点类型", "kind"],
      ["new_residents", "新增覆盖居民（估算）", "residents"],
      ["new_cells", "新增覆盖网格", "count"], ["cumulative_f15", "累计覆盖率", "percent"],
      ["osm_id", "OSM 编号", "text"]
    ]
  };

  var S = {
    map: null, layers: null, control: null, cfg: null, cluster: null, entries: [],
    byId: {}, category: "", query: "", levels: {}, large: false, planner: {},
    routeLayers: [], renderers: {}, readyParts: {}, lastQuery: null, lastNearest: null,
    searchIds: null, searchHits: [], searchTotal: 0, searchSeq: 0, searchTimer: null,
    cards: {}, drawn: null
  };

  // ------------------------------------------------------------------ small DOM helpers

  function $(id) { return document.getElementById(id); }

  function el(tag, className, text) {
    var e = document.createElement(tag);
    if (className) { e.className = className; }
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    return e;
  }

  function clear(node) { while (node.firstChild) { node.removeChild(node.firstChild); } }

  function message(text, kind) {
    var box = $("pc-message");
    box.textContent = text || "";
    box.className = "pc-message" + (kind ? " pc-" + kind : "");
  }

  function layerStatus(key, text, kind, count) {
    var list = $("pc-layer-status");
    var li = list.querySelector('li[data-layer="' + key + '"]');
    if (!li) {
      li = el("li");
      li.dataset.layer = key;
      list.appendChild(li);
    }
    li.textContent = text;
    li.className = kind ? "pc-" + kind : "";
    li.dataset.state = S.planner[key] || "";
    if (count === undefined) { delete li.dataset.count; } else { li.dataset.count = String(count); }
  }

  function getJSON(url, prefetched) {
    var pending = global.PC_PREFETCH && prefetched ? global.PC_PREFETCH[prefetched] : null;
    if (pending) { delete global.PC_PREFETCH[prefetched]; }
    var request = pending || fetch(url, { headers: { Accept: "application/json" } });
    return request.then(function (r) {
      if (r.ok) { return r.json(); }
      return r.json().catch(function () { return {}; }).then(function (body) {
        var err = new Error(body.detail || body.title || ("HTTP " + r.status));
        err.status = r.status;
        err.body = body;
        err.retryAfter = Number(r.headers.get("Retry-After")) || 0;
        throw err;
      });
    });
  }

  function withParams(url, params) {
    var u = new URL(url, document.baseURI);
    Object.keys(params).forEach(function (k) {
      if (params[k] !== undefined && params[k] !== null && params[k] !== "") {
        u.searchParams.set(k, params[k]);
      }
    });
    return u.pathname + u.search;
  }

  // ------------------------------------------------------------------ marker shapes

  function starPath() {
    var pts = [];
    for (var i = 0; i < 10; i++) {
      var r = i % 2 === 0 ? 19 : 8.5;
      var a = Math.PI / 5 * i - Math.PI / 2;
      pts.push((20 + r * Math.cos(a)).toFixed(2) + "," + (21 + r * Math.sin(a)).toFixed(2));
    }
    return pts.join(" ");
  }
  var STAR = starPath();

  function shapeSvg(level, size) {
    var st = S.levelStyle[level] || S.levelStyle.site;
    var c = st.color;
    var outline = 'stroke="#FFFFFF" stroke-width="2.5" stroke-linejoin="round"';
    var shape, textY = 21.5, fontSize = 17;
    if (st.shape === "star") {
      shape = '<polygon points="' + STAR + '" fill="' + c + '" ' + outline + "/>";
      textY = 23; fontSize = 11;
    } else if (st.shape === "square") {
      shape = '<rect x="4" y="4" width="32" height="32" rx="4" fill="' + c + '" ' + outline + "/>";
    } else if (st.shape === "diamond") {
      shape = '<polygon points="20,1.5 38.5,20 20,38.5 1.5,20" fill="' + c + '" ' + outline + "/>";
      fontSize = 14;
    } else {
      shape = '<circle cx="20" cy="20" r="17.5" fill="' + c + '" ' + outline + "/>";
    }
    return '<svg viewBox="0 0 40 40" width="' + size + '" height="' + size +
      '" aria-hidden="true" focusable="false">' + shape +
      '<text x="20" y="' + textY + '" text-anchor="middle" dominant-baseline="middle" ' +
      'font-size="' + fontSize + '" font-weight="700" fill="#FFFFFF">' + st.glyph +
      "</text></svg>";
  }

  function iconFor(level) {
    var size = (S.large ? LARGE_SIZES : SIZES)[level] || 28;
    return L.divIcon({
      html: shapeSvg(level, size),
      className: "pc-marker pc-marker-" + level,
      iconSize: [size, size],
      iconAnchor: [size / 2, size / 2],
      popupAnchor: [0, -size / 2]
    });
  }

  // A cluster reads as "3 个阵地" to a screen reader (and as a tooltip): the number alone says
  // nothing. Leaflet gives the keyboard-focusable icon role=button.
  var ClusterIcon = L.DivIcon.extend({
    createIcon: function (old) {
      var div = L.DivIcon.prototype.createIcon.call(this, old);
      div.setAttribute("aria-label", this.options.label);
      div.title = this.options.label;
      return div;
    }
  });

  function clusterIcon(cluster) {
    var n = cluster.getChildCount();
    var size = S.large ? 52 : (n < 10 ? 36 : 42);
    var span = el("span", null, n);
    span.setAttribute("aria-hidden", "true");
    return new ClusterIcon({
      html: span.outerHTML,
      className: "pc-cluster",
      iconSize: [size, size],
      label: n + " 个阵地"
    });
  }

  // ------------------------------------------------------------------ popups

  function line(parent, label, value) {
    var p = el("p", "pc-pop-line");
    p.appendChild(el("span", "pc-pop-label", label + "："));
    p.appendChild(el("span", null, value));
    parent.appendChild(p);
    return p;
  }

  function popupOptions(level) {
    // Fit a phone: narrow enough to clear the controls, scrolling when taller than the map, and
    // short enough that, panned into view, the popup leaves its marker on the map too.
    var size = S.map.getSize();
    var marker = level ? (S.large ? LARGE_SIZES : SIZES)[level] || 28 : 24;
    return {
      maxWidth: Math.max(200, Math.min(320, size.x - 70)),
      minWidth: Math.min(220, size.x - 90),
      maxHeight: Math.max(120, size.y - 160 - marker),
      autoPanPaddingTopLeft: [10, 64],  // below the layer control
      autoPanPaddingBottomRight: [58, 30]
    };
  }

  function teamsBlock(names) {
    var t = el("div", "pc-pop-line pc-card-teams");
    if (!names.length) {
      t.appendChild(el("span", "pc-pop-label", "志愿服务队："));
      t.appendChild(el("span", null, "暂无"));
      return t;
    }
    t.appendChild(el("span", "pc-pop-label", "志愿服务队（" + names.length + "）："));
    var ul = el("ul", "pc-pop-teams");
    names.forEach(function (name) { ul.appendChild(el("li", null, name)); });
    t.appendChild(ul);
    return t;
  }

  // A position's card, in its popup: what the map already has at once, the rest (address,
  // phone, teams, coming activities, 导航 links) from GET /positions/{id}/card.
  function sitePopup(f) {
    var p = f.properties;
    var box = el("div", "pc-pop pc-card");
    box.dataset.siteId = p.site_id;
    box.dataset.state = "loading";
    // What a resident needs first on a small screen: where, how to call, when, 导航.
    box.appendChild(el("h3", "pc-pop-title", p.name));
    line(box, "层级", p.level_zh);
    line(box, "地址", "正在加载…").dataset.field = "address";
    line(box, "电话", "正在加载…").dataset.field = "phone";
    line(box, "开放时间", p.opening_hours || "未知").dataset.field = "opening_hours";
    var acts = el("div", "pc-pop-line pc-card-acts");
    acts.appendChild(el("span", "pc-pop-label", "近期活动："));
    acts.appendChild(el("span", null, "正在加载…"));

    var navId = "pc-nav-" + String(p.site_id).replace(/[^A-Za-z0-9_-]/g, function (ch) {
      return "_" + ch.charCodeAt(0).toString(16);
    });
    var navBtn = el("button", "pc-btn pc-btn-main pc-pop-btn pc-nav-btn", "导航");
    navBtn.type = "button";
    navBtn.setAttribute("aria-expanded", "false");
    navBtn.setAttribute("aria-controls", navId);
    var nav = el("div", "pc-nav");
    nav.id = navId;
    nav.hidden = true;
    var status = el("p", "pc-nav-route", "");
    status.setAttribute("role", "status");
    nav.appendChild(status);
    nav.appendChild(el("p", "pc-pop-note", "用其他地图导航（坐标已换算为各自的坐标系）："));
    var links = el("div", "pc-nav-links");
    [["amap", "高德地图"], ["baidu", "百度地图"]].forEach(function (k) {
      var a = el("a", "pc-btn pc-nav-link", k[1]);
      a.dataset.app = k[0];
      a.target = "_blank";
      a.rel = "noopener noreferrer";
      a.setAttribute("aria-disabled", "true");
      links.appendChild(a);
    });
    nav.appendChild(links);
    navBtn.addEventListener("click", function () {
      var open = nav.hidden;
      nav.hidden = !open;
      navBtn.setAttribute("aria-expanded", open ? "true" : "false");
      if (open) { showRouteTo(p.site_id, status); }
      refreshPopup();
      if (open) {  // bring 导航 to the top of the card: our route, then the other apps
        var content = box.parentElement;
        if (content && content.classList.contains("leaflet-popup-content")) {
          content.scrollTop += navBtn.getBoundingClientRect().top -
            content.getBoundingClientRect().top - 4;
        }
      }
    });
    box.appendChild(navBtn);
    box.appendChild(nav);
    box.appendChild(acts);
    box.appendChild(teamsBlock(p.team_names || []));
    line(box, "服务类别", (p.category_names || []).join("、") || "暂无");

    var src = el("p", "pc-pop-note", (p.demo ? "示例数据 · " : "") + "OSM " + (p.osm_id || ""));
    box.appendChild(src);
    var btn = el("button", "pc-btn pc-pop-btn", "从这里查最近的其他阵地");
    btn.type = "button";
    btn.addEventListener("click", function () {
      var c = f.geometry.coordinates;
      nearest(L.latLng(c[1], c[0]), "“" + p.name + "”", p.site_id);
    });
    box.appendChild(btn);

    loadCard(p.site_id).then(function (card) {
      fillCard(box, card);
    }).catch(function (err) {
      box.dataset.state = "failed";
      ["address", "phone"].forEach(function (k) {
        var ln = box.querySelector('[data-field="' + k + '"]');
        ln.lastChild.textContent = "加载失败";
      });
      acts.lastChild.textContent = "加载失败：" + err.message;
      refreshPopup();
    });
    return box;
  }

  function loadCard(id) {
    if (!S.cards[id]) {
      var url = S.cfg.urls.card.replace("{site_id}", encodeURIComponent(id));
      S.cards[id] = getJSON(url).catch(function (err) {
        delete S.cards[id];  // try again next time
        throw err;
      });
    }
    return S.cards[id];
  }

  var WHEN = { timeZone: "Asia/Shanghai", month: "long", day: "numeric", weekday: "short",
    hour: "2-digit", minute: "2-digit", hour12: false };
  var UNTIL = { timeZone: "Asia/Shanghai", hour: "2-digit", minute: "2-digit", hour12: false };

  function fillCard(box, card) {
    var hours = box.querySelector('[data-field="opening_hours"]');
    hours.lastChild.textContent = card.opening_hours || "未知";
    var address = box.querySelector('[data-field="address"]');
    address.lastChild.textContent = card.address || "未登记";
    var phone = box.querySelector('[data-field="phone"]');
    phone.removeChild(phone.lastChild);
    if (card.phone && card.phone_tel) {
      var tel = el("a", "pc-tel", card.phone);
      tel.href = card.phone_tel;
      tel.setAttribute("aria-label", "拨打电话 " + card.phone);
      phone.appendChild(tel);
    } else {
      phone.appendChild(el("span", null, card.phone || "未登记"));
    }
    var teams = box.querySelector(".pc-card-teams");
    box.replaceChild(teamsBlock(card.teams.map(function (t) { return t.name; })), teams);
    var acts = box.querySelector(".pc-card-acts");
    acts.removeChild(acts.lastChild);
    if (!card.activities.length) {
      acts.appendChild(el("span", null, "暂无"));
    } else {
      var ul = el("ul", "pc-card-list");
      card.activities.forEach(function (a) {
        var li = el("li");
        li.dataset.activityId = String(a.id);
        li.appendChild(el("span", "pc-act-title", a.title));
        var start = new Date(a.starts_at), end = new Date(a.ends_at);
        li.appendChild(el("span", "pc-act-when", start.toLocaleString("zh-CN", WHEN) + "–" +
          end.toLocaleString("zh-CN", UNTIL)));
        li.appendChild(el("span", "pc-act-seats", a.category_name + " · 已报名 " + a.confirmed +
          "/" + a.capacity));
        ul.appendChild(li);
      });
      acts.appendChild(ul);
    }
    Array.prototype.forEach.call(box.querySelectorAll(".pc-nav-link"), function (a) {
      a.href = card.navigation[a.dataset.app];
      a.removeAttribute("aria-disabled");
    });
    box.dataset.state = "ready";
    refreshPopup();
  }

  function refreshPopup() {
    // The card grew: let Leaflet measure it again (it stays within popupOptions' maxHeight).
    var popup = S.openPopup;
    if (!popup || !S.map.hasLayer(popup)) { return; }
    var content = popup.getElement().querySelector(".leaflet-popup-content");
    var top = content ? content.scrollTop : 0;  // update() puts the content in afresh
    popup.update();
    content = popup.getElement().querySelector(".leaflet-popup-content");
    if (content) { content.scrollTop = top; }
  }

  function num(v, digits) {
    return v.toLocaleString("zh-CN", { maximumFractionDigits: digits });
  }

  // Format one planner value for people; null when it cannot be shown.
  function formatValue(format, v) {
    if (v === null || v === undefined || v === "") { return null; }
    var n = Number(v);
    var numeric = typeof v === "number" && isFinite(n);
    switch (format) {
      case "text": return String(v);
      case "level": return S.levelStyle[v] ? S.levelStyle[v].zh : null;
      case "category": return categoryName(v);
      case "kind": return (S.cfg.placeKinds && S.cfg.placeKinds[v]) || null;
      case "ordinal": return numeric ? "第 " + num(n, 0) + " 位" : null;
      case "count": return numeric ? num(n, 0) + " 个" : null;
      case "minutes": return numeric ? num(n, 1) + " 分钟" : null;
      case "pace": return numeric ? num(n, 1) + " 米/分钟" : null;
      case "metres": return numeric ? num(n, 0) + " 米" : null;
      case "km2": return numeric ? num(n, 2) + " 平方千米" : null;
      case "residents": return numeric ? num(n, 1) : null;
      case "percent": return numeric ? num(n * 100, 1) + "%" : null;
      default: return null;
    }
  }

  function plannerPopup(key, props, note) {
    var p = props || {};
    var box = el("div", "pc-pop");
    var title = key === "recommendations" ? p.label || p.name : p.name || p.nearest_site_name;
    box.appendChild(el("h3", "pc-pop-title", title || PLANNER[key].label));
    box.appendChild(el("p", "pc-pop-note", PLANNER[key].label));
    PLANNER_FIELDS[key].forEach(function (field) {
      var text = formatValue(field[2], p[field[0]]);
      if (text !== null) { line(box, field[1], text).dataset.field = field[0]; }
    });
    if (note) { box.appendChild(el("p", "pc-pop-note", note)); }
    return box;
  }

  // ------------------------------------------------------------------ positions, filters, search

  function entryMatches(e) {
    if (!S.levels[e.level]) { return false; }
    if (S.category && e.categories.indexOf(S.category) < 0) { return false; }
    if (S.searchIds && !S.searchIds[e.id]) { return false; }
    return true;
  }

  function applyFilters() {
    if (!S.cluster) { return; }  // the positions are not loaded yet: they apply it then
    var shown = S.entries.filter(entryMatches);
    S.cluster.clearLayers();
    S.cluster.addLayers(shown.map(function (e) { return e.marker; }));
    S.visible = shown.length;
    var count = $("pc-count");
    count.textContent = "显示 " + shown.length + " / " + S.entries.length + " 个阵地";
    count.dataset.visible = String(shown.length);
    count.dataset.total = String(S.entries.length);
    renderResults();
    renderLevelCounts();
  }

  // The rows of GET /search (its order: whole name, start of name, part, pinyin, address), one
  // per position, less those the level and category filters hide. Namesakes (two 八一小学) are
  // told apart by their address or the position they belong to.
  function renderResults() {
    var box = $("pc-results-box"), list = $("pc-results");
    clear(list);
    if (!S.searchIds) { box.hidden = true; return; }
    box.hidden = false;
    var hits = S.searchHits.filter(function (h) {
      return S.byId[h.site_id] && entryMatches(S.byId[h.site_id]);
    });
    if (!hits.length) {
      list.appendChild(el("li", "pc-empty", "没有名称、地址或拼音首字母与“" + S.rawQuery +
        "”相符的阵地"));
      return;
    }
    hits.forEach(function (h) {
      var li = el("li");
      var b = el("button", "pc-item");
      b.type = "button";
      b.dataset.siteId = h.site_id;
      b.appendChild(el("span", "pc-item-name", h.name));
      b.appendChild(el("span", "pc-item-sub", h.level_zh));
      var where = h.address || (h.parent_name ? "属 " + h.parent_name : "");
      if (where) { b.appendChild(el("span", "pc-item-where", where)); }
      b.addEventListener("click", function () { focusSite(h.site_id); });
      li.appendChild(b);
      list.appendChild(li);
    });
    if (S.searchTotal > S.searchHits.length) {
      list.appendChild(el("li", "pc-empty", "还有 " + (S.searchTotal - S.searchHits.length) +
        " 个，请输入更多字缩小范围"));
    }
  }

  function search(raw) {
    var box = $("pc-results-box");
    var seq = ++S.searchSeq;
    global.clearTimeout(S.searchTimer);
    S.rawQuery = raw;
    box.dataset.query = raw;
    if (!raw) {
      S.searchIds = null; S.searchHits = []; S.searchTotal = 0;
      box.dataset.state = "done";
      applyFilters();
      return Promise.resolve();
    }
    box.dataset.state = "loading";
    return getJSON(withParams(S.cfg.urls.search, { q: raw.slice(0, 40), limit: 20 }))
      .then(function (body) {
        if (seq !== S.searchSeq) { return; }  // a later query is on its way
        S.searchHits = body.items;
        S.searchTotal = body.total;
        S.searchIds = {};
        body.items.forEach(function (h) { S.searchIds[h.site_id] = true; });
        applyFilters();
        box.dataset.state = "done";
      }).catch(function (err) {
        if (seq !== S.searchSeq) { return; }
        box.dataset.state = "failed";
        message("搜索失败：" + err.message, "error");
      });
  }

  // Run fn once the map stands still: a view set in the middle of a zoom animation (the routes
  // of 离我最近 being fitted) is lost, and the cluster never shows the marker.
  function whenStill(fn) {
    if (S.map._animatingZoom) {  // Leaflet's own flag; no public one
      S.map.once("zoomend", function () { global.setTimeout(fn, 0); });
    } else {
      fn();
    }
  }

  function focusSite(id) {
    var e = S.byId[id];
    if (!e) { return; }
    if (S.map._animatingZoom) { whenStill(function () { focusSite(id); }); return; }
    if (!S.cluster.hasLayer(e.marker)) {  // filtered out: show it again
      S.levels[e.level] = true;
      S.category = ""; $("pc-category").value = "";
      syncLevelBoxes();
      applyFilters();
    }
    if (!S.map.hasLayer(S.layers.sites)) { S.map.addLayer(S.layers.sites); }
    S.map.closePopup();
    // Close enough that the position stands on its own (clustering ends at FOCUS_ZOOM).
    S.map.setView(e.marker.getLatLng(), Math.max(S.map.getZoom(), FOCUS_ZOOM), { animate: false });
    S.cluster.zoomToShowLayer(e.marker, function () { e.marker.openPopup(); });
  }

  function buildLegend() {
    var ul = $("pc-levels");
    clear(ul);
    S.cfg.levels.forEach(function (lv) {
      var li = el("li");
      var label = el("label", "pc-level");
      var box = el("input");
      box.type = "checkbox";
      box.checked = true;
      box.dataset.level = lv.code;
      box.addEventListener("change", function () {
        S.levels[lv.code] = box.checked;
        applyFilters();
      });
      var icon = el("span", "pc-level-icon");
      icon.innerHTML = shapeSvg(lv.code, 28);  // constant SVG, no data
      label.appendChild(box);
      label.appendChild(icon);
      label.appendChild(el("span", "pc-level-name", lv.zh + "（" + lv.short + "）"));
      label.appendChild(el("span", "pc-level-n", ""));
      li.appendChild(label);
      ul.appendChild(li);
    });
  }

  function syncLevelBoxes() {
    var boxes = document.querySelectorAll("#pc-levels input[type=checkbox]");
    Array.prototype.forEach.call(boxes, function (b) { b.checked = !!S.levels[b.dataset.level]; });
  }

  function renderLevelCounts() {
    var labels = document.querySelectorAll("#pc-levels .pc-level");
    Array.prototype.forEach.call(labels, function (label) {
      var code = label.querySelector("input").dataset.level;
      var n = S.entries.filter(function (e) { return e.level === code; }).length;
      label.querySelector(".pc-level-n").textContent = n + " 个";
    });
  }

  function loadSites() {
    return getJSON(S.cfg.urls.sites, "sites").then(function (fc) {
      S.cluster = L.markerClusterGroup({
        showCoverageOnHover: false,
        // On phones the plugin drops every marker outside the visible map after each move; a
        // popup panned into view could push its own marker out, and closed with it. 40-odd
        // markers cost nothing to keep.
        removeOutsideVisibleBounds: false,
        maxClusterRadius: 45,
        disableClusteringAtZoom: FOCUS_ZOOM,
        spiderfyOnMaxZoom: true,
        chunkedLoading: true,
        iconCreateFunction: clusterIcon
      });
      S.layers.sites.addLayer(S.cluster);
      S.entries = fc.features.map(function (f) {
        var p = f.properties, c = f.geometry.coordinates;
        var marker = L.marker([c[1], c[0]], {
          icon: iconFor(p.level), title: p.name + "（" + p.level_zh + "）", keyboard: true,
          riseOnHover: true
        });
        // Leaflet calls this on every update of the popup (the card calls update when its
        // details arrive): build the card once, again only after a failed load.
        marker.bindPopup(function () {
          if (!e.card || (e.card.dataset.state === "failed" && S.openPopup !== marker.getPopup())) {
            e.card = sitePopup(f);
          }
          return e.card;
        }, popupOptions(p.level));
        marker.on("add", function () { marker.getElement().dataset.siteId = p.site_id; });
        var e = {
          id: p.site_id, name: p.name,
          level: p.level, levelZh: p.level_zh, categories: p.categories || [], marker: marker,
          feature: f, card: null
        };
        S.byId[e.id] = e;
        return e;
      });
      S.total = S.entries.length;
      applyFilters();
      if (!S.entries.length) { message("这个区还没有阵地数据。", "info"); }
      part("sites");
    }).catch(function (err) {
      if (!err.status) { global.console.error(err); }
      $("pc-count").textContent = "阵地加载失败";
      message("阵地数据加载失败：" + err.message + "。请刷新页面重试。", "error");
      part("sites");
    });
  }

  // ------------------------------------------------------------------ basemap

  var BASE_STYLE = {
    green: function () {
      return { stroke: false, fillColor: "#CFE6C3", fillOpacity: 1 };
    },
    water: function (f) {
      return f.properties.k === "line"
        ? { color: "#86BCE6", weight: 2.5, opacity: 1 }
        : { color: "#86BCE6", weight: 1, fillColor: "#B5D8F4", fillOpacity: 1 };
    },
    buildings: function () {
      return { color: "#C8C1B6", weight: 0.6, fillColor: "#E2DDD5", fillOpacity: 1 };
    },
    streets: function (f) {
      var k = f.properties.k;
      if (k === "major") { return { color: "#E59A2E", weight: 5, opacity: 1 }; }
      if (k === "path") { return { color: "#8E877C", weight: 1.5, opacity: 1, dashArray: "3 4" }; }
      return { color: "#A8A195", weight: 2.5, opacity: 1 };
    }
  };

  function loadBasemap() {
    return getJSON(S.cfg.urls.basemap, "basemap").then(function (layers) {
      ["green", "water", "buildings", "streets"].forEach(function (key) {
        var fc = layers[key];
        if (!fc || !S.layers[key]) { return; }
        var layer = L.geoJSON(fc, {
          renderer: S.renderers.base,
          style: BASE_STYLE[key],
          interactive: key === "streets",
          onEachFeature: key === "streets" ? function (f, lyr) {
            if (f.properties.name) {
              lyr.bindTooltip(function () { return el("span", null, f.properties.name); },
                { sticky: true, direction: "top" });
            }
          } : undefined
        });
        S.layers[key].addLayer(layer);
      });
      part("basemap");
    }).catch(function (err) {
      message("底图加载失败：" + err.message + "。阵地仍可查看。", "error");
      part("basemap");
    });
  }

  // ------------------------------------------------------------------ 离我最近

  function clearRoutes() {
    S.layers.route.clearLayers();
  }

  function nearest(latlng, from, exclude) {
    var params = { lon: latlng.lng.toFixed(6), lat: latlng.lat.toFixed(6), limit: exclude ? 4 : 3 };
    if (S.category) { params.category = S.category; }
    S.lastQuery = { lon: Number(params.lon), lat: Number(params.lat), category: S.category };
    message("正在计算步行路线…", "info");
    return getJSON(withParams(S.cfg.urls.nearest, params)).then(function (fc) {
      if (exclude) {
        fc.features = fc.features.filter(function (f) { return f.properties.site_id !== exclude; })
          .slice(0, 3);
      }
      S.lastNearest = fc;
      drawNearest(latlng, fc, from);
      message("");
    }).catch(function (err) {
      var text = err.status === 422 && err.body && err.body.code === "out_of_area"
        ? "这里离步行道路太远（或不在本区地图范围内），请点击有道路的地方。"
        : "查询失败：" + err.message;
      message(text, "error");
    });
  }

  // Draw routes from the start: the chosen one (the first result unless the resident picked
  // another) bold with a white casing, the others thin and dashed.
  function drawRoutes(latlng, features, chosen, from) {
    clearRoutes();
    if (!S.map.hasLayer(S.layers.route)) { S.map.addLayer(S.layers.route); }
    var bounds = L.latLngBounds([latlng]);
    S.drawn = null;
    var ordered = features.filter(function (f) { return f.properties.site_id !== chosen; });
    features.forEach(function (f) { if (f.properties.site_id === chosen) { ordered.push(f); } });
    ordered.forEach(function (f) {  // the chosen one last: on top
      var best = f.properties.site_id === chosen;
      var coords = f.geometry.coordinates.map(function (c) { return [c[1], c[0]]; });
      if (best) {
        S.layers.route.addLayer(L.polyline(coords, {
          renderer: S.renderers.route, color: "#FFFFFF", weight: 10, opacity: 0.9,
          interactive: false
        }));
        S.drawn = { site_id: f.properties.site_id, coordinates: f.geometry.coordinates,
          minutes: f.properties.minutes, walk_m: f.properties.walk_m };
        coords.forEach(function (c) { bounds.extend(c); });
      }
      S.layers.route.addLayer(L.polyline(coords, {
        renderer: S.renderers.route, color: best ? "#0B4F9C" : "#3D6FB0",
        weight: best ? 6 : 3, opacity: best ? 1 : 0.6, dashArray: best ? null : "6 8",
        interactive: false
      }));
    });
    var me = L.circleMarker(latlng, {
      renderer: S.renderers.route, radius: 9, color: "#FFFFFF", weight: 3, fillColor: "#111111",
      fillOpacity: 1, interactive: false
    });
    me.bindTooltip(from === "gps" ? "您的位置" : "出发点", { permanent: true, direction: "top",
      offset: [0, -8], className: "pc-me" });
    S.layers.route.addLayer(me);
    return bounds;
  }

  function walkText(p) {
    return "步行 " + p.minutes + " 分钟 · 约 " + Math.round(p.walk_m) + " 米";
  }

  function drawNearest(latlng, fc, from) {
    var features = fc.features.slice();
    var chosen = features.length ? features[0].properties.site_id : null;
    var bounds = drawRoutes(latlng, features, chosen, from);
    S.nearestFrom = { latlng: latlng, from: from };

    var section = $("pc-nearest"), list = $("pc-nearest-list");
    clear(list);
    section.hidden = false;
    document.documentElement.classList.add("pc-has-nearest");
    $("pc-nearest-from").textContent = (from === "gps" ? "从您的位置" : "从" + (from || "所选位置")) +
      "步行" + (S.category ? "（只看“" + categoryName(S.category) + "”）" : "") +
      "，点一项看它的路线：";
    if (!features.length) {
      list.appendChild(el("li", "pc-empty", "步行可达范围内没有符合条件的阵地。"));
    }
    features.forEach(function (f) {
      var p = f.properties;
      var li = el("li");
      var b = el("button", "pc-item");
      b.type = "button";
      b.dataset.siteId = p.site_id;
      b.dataset.minutes = String(p.minutes);
      if (p.site_id === chosen) { b.setAttribute("aria-current", "true"); }
      b.appendChild(el("span", "pc-item-name", p.name));
      b.appendChild(el("span", "pc-item-sub", p.level_zh));
      var walk = el("span", "pc-item-walk", walkText(p));
      b.appendChild(walk);
      if (p.minutes > S.cfg.minutes) {  // beyond the 15-minute circle: say so in words
        b.dataset.far = "true";
        walk.appendChild(el("span", "pc-badge-far", "超过" + S.cfg.minutes + "分钟"));
      }
      b.addEventListener("click", function () { chooseRoute(p.site_id); });
      li.appendChild(b);
      list.appendChild(li);
    });
    collapse(false);
    showNearestList();
    S.map.invalidateSize();  // the panel grew: measure the map before fitting the routes
    if (features.length) {
      S.map.fitBounds(bounds, { padding: [36, 36], maxZoom: 17 });
    }
  }

  // On a phone the panel scrolls: bring the list to its top so the results are in view.
  function showNearestList() {
    var panel = $("pc-panel"), section = $("pc-nearest");
    var head = panel.querySelector(".pc-head");
    var offset = section.getBoundingClientRect().top - panel.getBoundingClientRect().top;
    panel.scrollTop += offset - (head ? head.offsetHeight : 0) - 4;
  }

  // The resident picked one of the nearest results: draw its route, and open its card.
  function chooseRoute(id) {
    var fc = S.lastNearest, start = S.nearestFrom;
    if (!fc || !start) { return; }
    var f = fc.features.filter(function (x) { return x.properties.site_id === id; })[0];
    if (!f) { return; }
    var bounds = drawRoutes(start.latlng, fc.features, id, start.from);
    Array.prototype.forEach.call(document.querySelectorAll("#pc-nearest-list .pc-item"),
      function (b) {
        if (b.dataset.siteId === id) { b.setAttribute("aria-current", "true"); } else {
          b.removeAttribute("aria-current");
        }
      });
    S.map.closePopup();
    if (S.map._animatingZoom) { whenStill(function () { chooseRoute(id); }); return; }
    S.map.fitBounds(bounds, { padding: [36, 36], maxZoom: 17, animate: false });
    var e = S.byId[id];
    if (!e) { return; }
    function open() {
      if (S.map.hasLayer(e.marker) && S.map.getBounds().contains(e.marker.getLatLng())) {
        e.marker.openPopup();  // on its own, on screen, with the whole route around it
      } else {
        focusSite(id);  // clustered or filtered out: go to it
      }
    }
    // The clusters regroup for the new zoom (animated): a popup opened meanwhile is closed
    // when its marker is taken off and put back.
    if (S.cluster._inZoomAnimation) {  // the plugin's own flag
      S.cluster.once("animationend", function () { global.setTimeout(open, 0); });
    } else {
      open();
    }
  }

  // 导航: our own walking route first (from the last start, or the phone's position), then
  // the links to the other apps, which the card already holds.
  function showRouteTo(id, status) {
    var have = S.lastNearest && S.nearestFrom && S.lastNearest.features.filter(function (x) {
      return x.properties.site_id === id;
    })[0];
    function shown(f) {
      var p = f.properties;
      status.textContent = "本图已显示步行路线：" + walkText(p) +
        (p.minutes > S.cfg.minutes ? "（超过" + S.cfg.minutes + "分钟）" : "");
      status.dataset.siteId = id;
    }
    if (have) {
      var keep = S.openPopup;
      drawRoutes(S.nearestFrom.latlng, S.lastNearest.features, id, S.nearestFrom.from);
      if (keep && !S.map.hasLayer(keep)) { S.map.openPopup(keep); }
      Array.prototype.forEach.call(document.querySelectorAll("#pc-nearest-list .pc-item"),
        function (b) {
          if (b.dataset.siteId === id) { b.setAttribute("aria-current", "true"); } else {
            b.removeAttribute("aria-current");
          }
        });
      shown(have);
      return;
    }
    function from(latlng, label) {
      status.textContent = "正在计算步行路线…";
      var url = withParams(S.cfg.urls.route.replace("{site_id}", encodeURIComponent(id)),
        { lon: latlng.lng.toFixed(6), lat: latlng.lat.toFixed(6) });
      getJSON(url).then(function (fc) {
        var f = fc.features[0];
        drawRoutes(latlng, fc.features, id, label);
        shown(f);
        refreshPopup();
      }).catch(function (err) {
        status.textContent = err.status === 422
          ? "出发点离步行道路太远，无法计算路线。" : "无法计算步行路线：" + err.message;
        refreshPopup();
      });
    }
    if (S.lastQuery) {
      from(L.latLng(S.lastQuery.lat, S.lastQuery.lon), "所选位置");
    } else if (navigator.geolocation) {
      status.textContent = "正在获取您的位置…";
      navigator.geolocation.getCurrentPosition(function (pos) {
        from(L.latLng(pos.coords.latitude, pos.coords.longitude), "gps");
      }, function () {
        status.textContent = "无法获取您的位置。先点击地图选出发点，可在本图看步行路线；" +
          "也可直接用下面的地图导航。";
        refreshPopup();
      }, { enableHighAccuracy: true, timeout: 10000, maximumAge: 60000 });
    } else {
      status.textContent = "先点击地图选出发点，可在本图看步行路线；也可直接用下面的地图导航。";
    }
  }

  function categoryName(code) {
    for (var i = 0; i < S.cfg.categories.length; i++) {
      if (S.cfg.categories[i].code === code) { return S.cfg.categories[i].name; }
    }
    return code;
  }

  function locate() {
    if (!navigator.geolocation) {
      message("这个浏览器不能定位。请直接点击地图选择出发点。", "error");
      return;
    }
    message("正在获取您的位置…", "info");
    navigator.geolocation.getCurrentPosition(function (pos) {
      nearest(L.latLng(pos.coords.latitude, pos.coords.longitude), "gps");
    }, function (err) {
      var why = err.code === 1 ? "没有定位权限（或页面不是 https）" : err.code === 3 ? "定位超时" : "定位失败";
      message("无法获取您的位置：" + why + "。请直接点击地图选择出发点。", "error");
    }, { enableHighAccuracy: true, timeout: 10000, maximumAge: 60000 });
  }

  // ------------------------------------------------------------------ planner layers (lazy)

  function cellColor(minutes) {
    var m = minutes === null || minutes === undefined ? Infinity : minutes;
    for (var i = 0; i < CELL_BINS.length; i++) {
      if (m <= CELL_BINS[i].max) { return CELL_BINS[i].color; }
    }
    return CELL_BINS[CELL_BINS.length - 1].color;
  }

  function buildCellsLegend() {
    var box = $("pc-cells-legend");
    clear(box);
    box.appendChild(el("p", "pc-legend-title", "步行时间网格（到最近阵地）"));
    var ul = el("ul", "pc-bins");
    CELL_BINS.forEach(function (b) {
      var li = el("li");
      var sw = el("span", "pc-swatch");
      sw.style.background = b.color;
      li.appendChild(sw);
      li.appendChild(el("span", null, b.label));
      ul.appendChild(li);
    });
    box.appendChild(ul);
    var keys = $("pc-plan-keys");
    clear(keys);
    Object.keys(PLANNER).forEach(function (key) {
      if (key === "cells") { return; }
      var li = el("li");
      li.dataset.layer = key;
      li.hidden = true;
      var sw = el("span", "pc-swatch" + (key === "recommendations" ? " pc-swatch-dot" : ""));
      sw.style.background = PLANNER[key].color;
      li.appendChild(sw);
      li.appendChild(el("span", null, PLANNER[key].label));
      keys.appendChild(li);
    });
  }

  function renderPlanner(key, fc) {
    var spec = PLANNER[key];
    var note = residentsNote(fc.properties);
    if (key === "cells") {
      return L.geoJSON(fc, {
        renderer: S.renderers.plan,
        bubblingMouseEvents: false,
        style: function (f) {
          return { color: "#FFFFFF", weight: 0.6, fillColor: cellColor(f.properties.walk_minutes),
            fillOpacity: 0.55 };
        },
        onEachFeature: function (f, lyr) {
          lyr.bindPopup(function () {
            var p = f.properties;
            var box = el("div", "pc-pop");
            box.appendChild(el("h3", "pc-pop-title", "网格 " + p.cell_id));
            line(box, "步行到最近阵地", p.walk_minutes === null ? "无法步行到达" :
              p.walk_minutes + " 分钟");
            line(box, "最近阵地", p.nearest_name || "无");
            line(box, "15分钟内", p.covered ? "是" : "否");
            var btn = el("button", "pc-btn pc-pop-btn", "从这里查最近阵地和路线");
            btn.type = "button";
            btn.addEventListener("click", function () {
              S.map.closePopup();
              nearest(lyr.getBounds().getCenter(), "网格中心");
            });
            box.appendChild(btn);
            return box;
          }, popupOptions());
        }
      });
    }
    return L.geoJSON(fc, {
      renderer: S.renderers.plan,
      bubblingMouseEvents: false,
      style: function (f) {
        if (f.geometry && f.geometry.type === "Point") {
          return { color: "#FFFFFF", weight: 3, fillColor: spec.color, fillOpacity: 1 };
        }
        return { color: spec.color, weight: spec.weight, opacity: 0.8, fillColor: spec.color,
          fillOpacity: spec.fill };
      },
      pointToLayer: function (f, latlng) {
        return L.circleMarker(latlng, { renderer: S.renderers.plan, radius: 11,
          bubblingMouseEvents: false });
      },
      onEachFeature: function (f, lyr) {
        lyr.bindPopup(function () { return plannerPopup(key, f.properties, note); },
          popupOptions());
      }
    });
  }

  // Residents are an estimate; say which kind, so an index is never read as a head count.
  function residentsNote(props) {
    var method = props && typeof props.population_method === "string" ? props.population_method : "";
    if (method.indexOf("WorldPop") >= 0) {
      return "居民数为 WorldPop 人口估算，按 OSM 居住用地与建筑分摊到网格。";
    }
    if (method.indexOf("estimate") === 0) {
      return "居民数为相对指数（全区合计 1000），按 OSM 居住用地与建筑估算，并非实际人数。";
    }
    return method ? "居民数来自用户提供的数据。" : "";
  }

  var BUSY_RETRIES = 3;

  function loadPlanner(key, attempt) {
    var spec = PLANNER[key];
    var tries = attempt || 0;
    if (!tries && (S.planner[key] === "loaded" || S.planner[key] === "loading")) { return; }
    S.planner[key] = "loading";
    layerStatus(key, "正在加载“" + spec.label + "”…", "info");
    getJSON(S.cfg.urls[key]).then(function (data) {
      var fc = data && data.type === "FeatureCollection" ? data
        : data && Array.isArray(data.features) ? { type: "FeatureCollection", features: data.features }
          : null;
      if (!fc) {
        S.planner[key] = "failed";
        layerStatus(key, "“" + spec.label + "”的数据格式无法识别。", "error");
        return;
      }
      var layer = renderPlanner(key, fc);
      S.layers[key].addLayer(layer);
      S.planner[key] = "loaded";
      var shown = layer.getLayers().length;  // what is on the map, not what was sent
      layerStatus(key, "“" + spec.label + "”：已加载 " + shown + " 个要素。" +
        residentsNote(fc.properties), "info", shown);
    }).catch(function (err) {
      if (err.status === 503 && tries < BUSY_RETRIES) {  // the server's analysis slots are full
        var wait = Math.min(Math.max(err.retryAfter || 2, 1), 15);
        layerStatus(key, "服务器正忙，" + wait + " 秒后重新加载“" + spec.label + "”…", "info");
        global.setTimeout(function () { loadPlanner(key, tries + 1); }, wait * 1000);
        return;
      }
      S.planner[key] = "failed";
      layerStatus(key, "“" + spec.label + "”加载失败：" + err.message +
        (err.status === 503 ? "（服务器正忙，请稍后再打开这个图层）" : ""), "error");
    });
  }

  function onOverlay(ev, on) {
    Object.keys(PLANNER).forEach(function (key) {
      if (S.layers[key] === ev.layer) {
        if (on) { loadPlanner(key); }
        if (key === "cells") {
          $("pc-cells-legend").hidden = !on;
        } else {
          $("pc-plan-keys").querySelector('li[data-layer="' + key + '"]').hidden = !on;
        }
      }
    });
  }

  // ------------------------------------------------------------------ 长辈版 and layout

  function setLarge(on) {
    S.large = !!on;
    document.documentElement.classList.toggle("pc-large", S.large);
    var b = $("pc-large");
    b.setAttribute("aria-pressed", S.large ? "true" : "false");
    b.title = S.large ? "再按一次回到标准字号" : "放大文字和按钮";
    try { global.localStorage.setItem("pc-large", S.large ? "1" : "0"); } catch (e) { /* private mode */ }
    S.entries.forEach(function (e) {
      e.marker.setIcon(iconFor(e.level));
      var icon = e.marker.getElement();  // a new element when on the map
      if (icon) { icon.dataset.siteId = e.id; }
    });
    if (S.cluster) { S.cluster.refreshClusters(); }
    refreshLayout();
  }

  function collapse(on) {
    var body = $("pc-body"), b = $("pc-collapse");
    body.hidden = !!on;
    b.setAttribute("aria-expanded", on ? "false" : "true");
    b.textContent = on ? "展开" : "收起";
    refreshLayout();
  }

  function refreshLayout() {
    global.requestAnimationFrame(function () {
      if (S.map) {
        S.map.invalidateSize();
        refreshPopupOptions();
        refreshPopup();  // the open card takes its new size
      }
    });
  }

  function refreshPopupOptions() {
    S.entries.forEach(function (e) {
      var popup = e.marker.getPopup();
      if (popup) { L.setOptions(popup, popupOptions(e.level)); }
    });
  }

  function mark(name) {
    if (global.performance && global.performance.mark) { global.performance.mark("pc-" + name); }
  }

  function part(name) {
    mark(name);
    S.readyParts[name] = true;
    if (S.readyParts.sites && S.readyParts.basemap) {
      document.documentElement.dataset.pcState = "ready";
      api.ready = true;
      api.readyAt = global.performance.now();
    }
  }

  function wire() {
    var input = $("pc-search");
    input.addEventListener("input", function () {
      var raw = input.value.trim();
      global.clearTimeout(S.searchTimer);
      $("pc-results-box").dataset.state = "loading";  // until the answer for this text is in
      $("pc-results-box").dataset.query = raw;
      S.searchTimer = global.setTimeout(function () { search(raw); }, raw ? 150 : 0);
    });
    input.addEventListener("keydown", function (ev) {
      if (ev.key === "Enter") {
        search(input.value.trim()).then(function () {
          var shown = S.entries.filter(entryMatches);
          if (S.searchIds && shown.length === 1) { focusSite(shown[0].id); }
        });
      }
    });
    $("pc-category").addEventListener("change", function (ev) {
      S.category = ev.target.value;
      applyFilters();
      if (S.lastQuery) {
        nearest(L.latLng(S.lastQuery.lat, S.lastQuery.lon), "所选位置");
      }
    });
    $("pc-locate").addEventListener("click", locate);
    $("pc-large").addEventListener("click", function () { setLarge(!S.large); });
    $("pc-collapse").addEventListener("click", function () { collapse(!$("pc-body").hidden); });
    S.map.on("click", function (ev) { nearest(ev.latlng, "所选位置"); });
    S.map.getContainer().addEventListener("keydown", function (ev) {
      if (ev.key === "Enter" && ev.target === S.map.getContainer()) {
        nearest(S.map.getCenter(), "地图中心");
      }
    });
    S.map.on("resize", refreshPopupOptions);
    S.map.on("overlayadd", function (ev) { onOverlay(ev, true); });
    S.map.on("overlayremove", function (ev) { onOverlay(ev, false); });
    S.map.on("popupclose", function (ev) {
      if (S.openPopup === ev.popup) { S.openPopup = null; }
      if (document.documentElement.classList.contains("pc-card-open")) {
        document.documentElement.classList.remove("pc-card-open");
        refreshLayout();
      }
    });
    S.map.on("popupopen", function (ev) {
      S.openPopup = ev.popup;
      // A card on a phone: the panel gives the map room (it still scrolls, nothing is hidden).
      var content = ev.popup.getElement().querySelector(".pc-card");
      if (content && global.matchMedia && global.matchMedia("(max-width: 799px)").matches &&
          !document.documentElement.classList.contains("pc-card-open")) {
        document.documentElement.classList.add("pc-card-open");
        refreshLayout();
      }
      var close = ev.popup.getElement().querySelector(".leaflet-popup-close-button");
      if (close) { close.setAttribute("aria-label", "关闭"); close.title = "关闭"; }
    });
  }

  function init(map, layers, control, cfg) {
    mark("init");
    S.map = map; S.layers = layers; S.control = control; S.cfg = cfg;
    S.levelStyle = {};
    cfg.levels.forEach(function (lv) { S.levelStyle[lv.code] = lv; S.levels[lv.code] = true; });
    api.map = map;

    var toggle = control.getContainer().querySelector(".leaflet-control-layers-toggle");
    if (toggle) { toggle.title = "图层"; toggle.setAttribute("aria-label", "图层：底图、规划图层"); }
    map.attributionControl.setPrefix("Leaflet");
    map.attributionControl.addAttribution(cfg.attribution + (cfg.demo ? " · 阵地为示例数据" : ""));
    map.getContainer().setAttribute("aria-label", cfg.district + "新时代文明实践阵地地图");
    [["pc-base", 250], ["pc-plan", 380], ["pc-route", 450]].forEach(function (p) {
      map.createPane(p[0]).style.zIndex = String(p[1]);
    });
    S.renderers.base = L.canvas({ pane: "pc-base", padding: 0.2 });
    S.renderers.plan = L.canvas({ pane: "pc-plan", padding: 0.2 });
    S.renderers.route = L.canvas({ pane: "pc-route", padding: 0.2 });

    buildLegend();
    buildCellsLegend();
    if (global.matchMedia && global.matchMedia("(max-width: 799px)").matches) {
      $("pc-legend").open = false;
    }
    var params = new URLSearchParams(global.location.search);
    var stored = null;
    try { stored = global.localStorage.getItem("pc-large"); } catch (e) { stored = null; }
    if (params.get("large") === "1" || (params.get("large") !== "0" && stored === "1")) {
      setLarge(true);
    }
    wire();
    Object.keys(PLANNER).forEach(function (key) {
      if (map.hasLayer(layers[key])) { onOverlay({ layer: layers[key] }, true); }
    });
    loadSites();
    loadBasemap();
  }

  var api = {
    init: init,
    ready: false,
    readyAt: null,
    map: null,
    nearest: function (lon, lat) { return nearest(L.latLng(lat, lon), "所选位置"); },
    setLarge: setLarge,
    siteCount: function () { return S.entries.length; },
    visibleCount: function () { return S.cluster ? S.cluster.getLayers().length : 0; },
    lastQuery: function () { return S.lastQuery; },
    lastNearest: function () { return S.lastNearest; },
    // the route drawn bold now: {site_id, coordinates, minutes, walk_m}, or null
    drawnRoute: function () { return S.drawn; },
    openCard: function (id) { focusSite(id); },
    search: function (q) { $("pc-search").value = q; return search(q); },
    cellBins: function () {
      return CELL_BINS.map(function (b) { return { color: b.color, label: b.label }; });
    }
  };
  global.PracticeMap = api;
  global.practiceMap = api;
})(window);
