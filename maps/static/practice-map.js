/*
 * practice-map.js: the practice map's behaviour on top of the folium page.
 *
 * Positions (中心/所/站/点) with clustering, filters by service category and level, search by
 * name, 离我最近 (nearest positions by walking, with routes) from a click or 定位我, the offline
 * basemap, lazy planner layers and the 长辈版 (large) mode. Every text that comes from data is
 * set with textContent; innerHTML only ever receives the constant SVG shapes below.
 * All data is fetched from the API with relative URLs.
 */
(function (global) {
  "use strict";

  var SIZES = { center: 38, township: 32, community: 30, site: 26 };
  var FOCUS_ZOOM = 16;  // the cluster layer's disableClusteringAtZoom
  var LARGE_SIZES = { center: 52, township: 48, community: 46, site: 44 };
  var CELL_BINS = [
    { max: 5, color: "#1A7F37", label: "5 分钟内" },
    { max: 10, color: "#5CB85C", label: "5–10 分钟" },
    { max: 15, color: "#C2E08A", label: "10–15 分钟" },
    { max: 20, color: "#F6C05C", label: "15–20 分钟" },
    { max: 30, color: "#EE7B30", label: "20–30 分钟" },
    { max: Infinity, color: "#B42318", label: "30 分钟以上或无法步行到达" }
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
    routeLayers: [], renderers: {}, readyParts: {}, lastQuery: null, lastNearest: null
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

  function clusterIcon(cluster) {
    var n = cluster.getChildCount();
    var size = S.large ? 52 : (n < 10 ? 36 : 42);
    var span = el("span", null, n);
    return L.divIcon({
      html: span.outerHTML,
      className: "pc-cluster",
      iconSize: [size, size]
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

  function sitePopup(f) {
    var p = f.properties;
    var box = el("div", "pc-pop");
    box.appendChild(el("h3", "pc-pop-title", p.name));
    line(box, "层级", p.level_zh);
    line(box, "服务类别", (p.category_names || []).join("、") || "暂无");
    var teams = p.team_names || [];
    if (teams.length) {
      var t = el("div", "pc-pop-line");
      t.appendChild(el("span", "pc-pop-label", "志愿服务队（" + teams.length + "）："));
      var ul = el("ul", "pc-pop-teams");
      teams.forEach(function (name) { ul.appendChild(el("li", null, name)); });
      t.appendChild(ul);
      box.appendChild(t);
    } else {
      line(box, "志愿服务队", "暂无");
    }
    line(box, "开放时间", p.opening_hours || "未知");
    var src = el("p", "pc-pop-note", (p.demo ? "示例数据 · " : "") + "OSM " + (p.osm_id || ""));
    box.appendChild(src);
    var btn = el("button", "pc-btn pc-pop-btn", "从这里查最近的其他阵地");
    btn.type = "button";
    btn.addEventListener("click", function () {
      var c = f.geometry.coordinates;
      nearest(L.latLng(c[1], c[0]), "“" + p.name + "”", p.site_id);
    });
    box.appendChild(btn);
    return box;
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
    if (S.query && e.nameLower.indexOf(S.query) < 0) { return false; }
    return true;
  }

  function applyFilters() {
    var shown = S.entries.filter(entryMatches);
    S.cluster.clearLayers();
    S.cluster.addLayers(shown.map(function (e) { return e.marker; }));
    S.visible = shown.length;
    var count = $("pc-count");
    count.textContent = "显示 " + shown.length + " / " + S.entries.length + " 个阵地";
    count.dataset.visible = String(shown.length);
    count.dataset.total = String(S.entries.length);
    renderResults(shown);
    renderLevelCounts();
  }

  function renderResults(shown) {
    var box = $("pc-results-box"), list = $("pc-results");
    clear(list);
    if (!S.query) { box.hidden = true; return; }
    box.hidden = false;
    if (!shown.length) {
      list.appendChild(el("li", "pc-empty", "没有名称包含“" + S.rawQuery + "”的阵地"));
      return;
    }
    shown.slice(0, 30).forEach(function (e) {
      var li = el("li");
      var b = el("button", "pc-item");
      b.type = "button";
      b.dataset.siteId = e.id;
      b.appendChild(el("span", "pc-item-name", e.name));
      b.appendChild(el("span", "pc-item-sub", e.levelZh));
      b.addEventListener("click", function () { focusSite(e.id); });
      li.appendChild(b);
      list.appendChild(li);
    });
    if (shown.length > 30) {
      list.appendChild(el("li", "pc-empty", "还有 " + (shown.length - 30) + " 个，请输入更多字缩小范围"));
    }
  }

  function focusSite(id) {
    var e = S.byId[id];
    if (!e) { return; }
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
        marker.bindPopup(function () { return sitePopup(f); }, popupOptions(p.level));
        marker.on("add", function () { marker.getElement().dataset.siteId = p.site_id; });
        var e = {
          id: p.site_id, name: p.name, nameLower: String(p.name).toLowerCase(),
          level: p.level, levelZh: p.level_zh, categories: p.categories || [], marker: marker,
          feature: f
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

  function drawNearest(latlng, fc, from) {
    clearRoutes();
    if (!S.map.hasLayer(S.layers.route)) { S.map.addLayer(S.layers.route); }
    var features = fc.features.slice();
    var bounds = L.latLngBounds([latlng]);
    features.slice().reverse().forEach(function (f) {
      var best = f.properties.rank === 1;
      var coords = f.geometry.coordinates.map(function (c) { return [c[1], c[0]]; });
      if (best) {
        S.layers.route.addLayer(L.polyline(coords, {
          renderer: S.renderers.route, color: "#FFFFFF", weight: 10, opacity: 0.9,
          interactive: false
        }));
      }
      S.layers.route.addLayer(L.polyline(coords, {
        renderer: S.renderers.route, color: best ? "#0B4F9C" : "#3D6FB0",
        weight: best ? 6 : 4, opacity: best ? 1 : 0.75, dashArray: best ? null : "6 8",
        interactive: false
      }));
      coords.forEach(function (c) { bounds.extend(c); });
    });
    var me = L.circleMarker(latlng, {
      renderer: S.renderers.route, radius: 9, color: "#FFFFFF", weight: 3, fillColor: "#111111",
      fillOpacity: 1, interactive: false
    });
    me.bindTooltip(from === "gps" ? "您的位置" : "出发点", { permanent: true, direction: "top",
      offset: [0, -8], className: "pc-me" });
    S.layers.route.addLayer(me);

    var section = $("pc-nearest"), list = $("pc-nearest-list");
    clear(list);
    section.hidden = false;
    $("pc-nearest-from").textContent = (from === "gps" ? "从您的位置" : "从" + (from || "所选位置")) +
      "步行" + (S.category ? "（只看“" + categoryName(S.category) + "”）" : "") + "：";
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
      b.appendChild(el("span", "pc-item-name", p.name));
      b.appendChild(el("span", "pc-item-sub", p.level_zh));
      b.appendChild(el("span", "pc-item-walk", "步行 " + p.minutes + " 分钟 · 约 " +
        Math.round(p.walk_m) + " 米"));
      b.addEventListener("click", function () { focusSite(p.site_id); });
      li.appendChild(b);
      list.appendChild(li);
    });
    collapse(false);
    S.map.invalidateSize();  // the panel grew: measure the map before fitting the routes
    if (features.length) {
      S.map.fitBounds(bounds, { padding: [36, 36], maxZoom: 17 });
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
      if (S.map) { S.map.invalidateSize(); refreshPopupOptions(); }
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
    var search = $("pc-search");
    search.addEventListener("input", function () {
      S.rawQuery = search.value.trim();
      S.query = S.rawQuery.toLowerCase();
      applyFilters();
    });
    search.addEventListener("keydown", function (ev) {
      if (ev.key === "Enter") {
        var shown = S.entries.filter(entryMatches);
        if (shown.length === 1) { focusSite(shown[0].id); }
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
    S.map.on("popupopen", function (ev) {
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
    lastNearest: function () { return S.lastNearest; }
  };
  global.PracticeMap = api;
  global.practiceMap = api;
})(window);
