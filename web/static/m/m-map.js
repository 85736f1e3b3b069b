/*
 * Phone pages: where the user is (定位, a tap on the map, or the district's practice centre),
 * the small Leaflet map drawn from the district's own OSM basemap (no tiles, works offline),
 * and 导航: our walking route first, then the hand-off to Amap / Baidu Maps in their datums.
 */
(function (global) {
  "use strict";

  var PC = global.PCM;
  var el = PC.el;
  var cache = {};

  function once(key, fn) {
    if (!cache[key]) {
      cache[key] = fn().catch(function (e) { delete cache[key]; throw e; });
    }
    return cache[key];
  }

  /** Every practice position (GeoJSON of /map/sites), fetched once. */
  PC.sites = function () { return once("sites", function () { return PC.api("GET", "map/sites"); }); };
  PC.basemap = function () { return once("basemap", function () { return PC.api("GET", "map/basemap"); }); };

  // ------------------------------------------------------------------ where the user is

  var SOURCE_ZH = { gps: "手机定位", tap: "地图选点", centre: "区新时代文明实践中心附近", link: "签到链接" };

  /** The district's practice centre (中心), the place to start when nothing better is known. */
  PC.centre = function () {
    return PC.sites().then(function (fc) {
      var fs = fc.features || [];
      var c = fs.filter(function (f) { return f.properties.level === "center"; })[0] || fs[0];
      if (!c) { throw new Error("没有可用的阵地数据"); }
      return { lon: c.geometry.coordinates[0], lat: c.geometry.coordinates[1], source: "centre" };
    });
  };

  /** The user's position: the last one known this session, else the practice centre. */
  PC.here = function () {
    if (PC.state.loc) { return Promise.resolve(PC.state.loc); }
    var saved = null;
    try { saved = JSON.parse(global.sessionStorage.getItem("pc-loc") || "null"); } catch (e) { saved = null; }
    if (saved && typeof saved.lon === "number") {
      PC.state.loc = saved;
      return Promise.resolve(saved);
    }
    return PC.centre().then(function (c) { PC.state.loc = c; return c; });
  };

  PC.setHere = function (lon, lat, source) {
    PC.state.loc = { lon: +lon.toFixed(6), lat: +lat.toFixed(6), source: source };
    try { global.sessionStorage.setItem("pc-loc", JSON.stringify(PC.state.loc)); } catch (e) { /* ok */ }
    PC.emit("here", PC.state.loc);
    return PC.state.loc;
  };

  PC.hereText = function (loc) {
    return (SOURCE_ZH[loc.source] || "当前位置") + "（" + loc.lon.toFixed(4) + ", " + loc.lat.toFixed(4) + "）";
  };

  /** Ask the phone where it is (WGS84 from the browser); resolves to the new position. */
  PC.locate = function () {
    return new Promise(function (resolve, reject) {
      if (!global.navigator.geolocation) {
        reject(new Error("此浏览器不支持定位，请在地图上点选位置"));
        return;
      }
      global.navigator.geolocation.getCurrentPosition(function (p) {
        resolve(PC.setHere(p.coords.longitude, p.coords.latitude, "gps"));
      }, function (e) {
        reject(new Error(e && e.code === 1 ? "未允许定位，请在地图上点选位置"
          : "定位失败，请在地图上点选位置"));
      }, { enableHighAccuracy: true, timeout: 10000, maximumAge: 60000 });
    });
  };

  /** A line saying where the user is, with a 定位 button; updates itself. */
  PC.hereBar = function (onChange) {
    var text = el("span", { id: "loc-status", class: "m-loc-text", text: "位置读取中…" });
    var btn = PC.button("定位", { id: "locate", class: "m-btn-side" });
    var bar = el("div", { class: "m-loc", role: "group", "aria-label": "我的位置" }, [text, btn]);
    var show = function (loc) {
      text.textContent = "位置：" + PC.hereText(loc);
      text.dataset.source = loc.source;
    };
    btn.addEventListener("click", function () {
      PC.busy(btn, "定位中…", PC.locate).then(function (loc) {
        PC.say("已定位到你的位置", "ok");
        if (onChange) { onChange(loc); }
      }).catch(PC.fail);
    });
    PC.on("here", function (loc) { if (text.isConnected) { show(loc); } });
    PC.here().then(function (loc) {
      show(loc);
      if (loc.source === "centre" && !PC.state.triedGps) {
        // First time: ask the phone once; the centre stands in meanwhile.
        PC.state.triedGps = true;
        PC.locate().then(function (l) { if (onChange && text.isConnected) { onChange(l); } })
          .catch(function () { /* the centre is fine; 定位 asks again */ });
      }
    }).catch(PC.fail);
    return bar;
  };

  // ------------------------------------------------------------------ the small map

  var BASE = {
    green: function () { return { stroke: false, fillColor: "#CFE6C3", fillOpacity: 1 }; },
    water: function (f) {
      return f.properties.k === "line" ? { color: "#86BCE6", weight: 2.5 }
        : { color: "#86BCE6", weight: 1, fillColor: "#B5D8F4", fillOpacity: 1 };
    },
    buildings: function () { return { color: "#C8C1B6", weight: 0.5, fillColor: "#E2DDD5", fillOpacity: 1 }; },
    streets: function (f) {
      var k = f.properties.k;
      if (k === "major") { return { color: "#E59A2E", weight: 4 }; }
      if (k === "path") { return { color: "#8E877C", weight: 1.2, dashArray: "3 4" }; }
      return { color: "#A8A195", weight: 2 };
    }
  };
  var LEVEL_COLOUR = { center: "#B3261E", township: "#C2410C", community: "#1D4ED8", site: "#047857" };

  /**
   * A Leaflet map in `box` with the basemap and every position as a dot. opts.onTap(lon, lat)
   * makes a tap choose a place. Returns {map, you(lon, lat), line(geojson), pin(lon, lat)}.
   */
  PC.miniMap = function (box, opts) {
    var o = opts || {};
    if (!global.L) {
      box.appendChild(el("p", { class: "m-note", text: "地图组件未能加载" }));
      return null;
    }
    var L = global.L;
    var map = L.map(box, { zoomControl: true, attributionControl: true, preferCanvas: true,
      tap: false, zoomSnap: 0.5 });
    map.attributionControl.setPrefix(false);
    map.attributionControl.addAttribution("© OpenStreetMap contributors");
    // Our own marks (you, the destination, the route) in a pane above the positions' dots.
    map.createPane("m-top").style.zIndex = 450;
    var top = L.canvas({ pane: "m-top" });
    var sites = L.layerGroup().addTo(map);
    var over = L.layerGroup().addTo(map);
    var youMarker = null;
    var viewed = false;  // nothing may be drawn on a Leaflet map before it has a view
    var hasView = null;
    var whenViewed = new Promise(function (resolve) { hasView = resolve; });
    function view(lat, lon, zoom) {
      // Not animated: Leaflet drops a setView that comes during a zoom animation.
      map.setView([lat, lon], zoom || 15, { animate: false });
      viewed = true;
      hasView();
    }
    function ensure(lat, lon) { if (!viewed) { view(lat, lon, 15); } }
    PC.onLeave(function () { map.remove(); });
    Promise.all([PC.basemap(), whenViewed]).then(function (r) {
      var layers = r[0];
      if (!box.isConnected) { return; }
      ["green", "water", "buildings", "streets"].forEach(function (k) {
        if (layers[k]) {
          L.geoJSON(layers[k], { style: BASE[k], interactive: false }).addTo(map).bringToBack();
        }
      });
      box.dataset.basemap = "drawn";
    }).catch(function () { /* the dots and the route still show */ });
    PC.sites().then(function (fc) {
      var pts = (fc.features || []).map(function (f) {
        return [f.geometry.coordinates[1], f.geometry.coordinates[0], f.properties.level];
      });
      if (!viewed && pts.length) {  // the whole district until a place is known
        map.fitBounds(pts.map(function (p) { return [p[0], p[1]]; }), { padding: [10, 10], animate: false });
        viewed = true;
        hasView();
      }
      pts.forEach(function (p) {
        L.circleMarker([p[0], p[1]], {
          radius: p[2] === "center" ? 7 : 5, weight: 1.5, color: "#FFFFFF",
          fillColor: LEVEL_COLOUR[p[2]] || "#555555", fillOpacity: 0.95, interactive: false
        }).addTo(sites);
      });
    }).catch(PC.fail);
    if (o.onTap) {
      map.on("click", function (e) { o.onTap(e.latlng.lng, e.latlng.lat); });
    }
    var refresh = function () { if (box.isConnected) { map.invalidateSize(); } };
    PC.on("resize", refresh);
    global.setTimeout(refresh, 0);
    PC.lastMap = {
      map: map,
      view: view,
      you: function (lon, lat) {
        ensure(lat, lon);
        if (youMarker) { youMarker.remove(); }
        youMarker = L.circleMarker([lat, lon], { radius: 10, weight: 4, color: "#FFFFFF",
          fillColor: "#7C3AED", fillOpacity: 1, interactive: false, renderer: top }).addTo(map);
        return youMarker;
      },
      pin: function (lon, lat, colour) {
        ensure(lat, lon);
        return L.circleMarker([lat, lon], { radius: 10, weight: 4, color: "#FFFFFF",
          fillColor: colour || "#B3261E", fillOpacity: 1, interactive: false, renderer: top })
          .addTo(over);
      },
      line: function (geojson) {
        var c = geojson.geometry.coordinates[0];
        ensure(c[1], c[0]);
        var layer = L.geoJSON(geojson, { style: { color: "#7C3AED", weight: 6, opacity: 0.9 },
          interactive: false, renderer: top }).addTo(over);
        var b = layer.getBounds();
        if (b.isValid()) { map.fitBounds(b, { padding: [24, 24], maxZoom: 17, animate: false }); }
        return layer;
      }
    };
    return PC.lastMap;
  };

  // ------------------------------------------------------------------ 导航

  /** The hand-off buttons: Amap (GCJ-02) and Baidu (BD-09) links from the API. */
  PC.handOff = function (nav) {
    if (!nav || !nav.amap) { return el("p", { class: "m-note", text: "暂无导航链接" }); }
    return el("div", { class: "m-handoff", role: "group", "aria-label": "用其他地图导航" }, [
      el("a", { href: nav.amap, id: "nav-amap", class: "m-btn m-btn-block", target: "_blank",
        rel: "noopener noreferrer", text: "用高德地图导航" }),
      el("a", { href: nav.baidu, id: "nav-baidu", class: "m-btn m-btn-block", target: "_blank",
        rel: "noopener noreferrer", text: "用百度地图导航" }),
      el("p", { class: "m-hint", text: "高德坐标 " + nav.gcj02.join(", ") + "；百度坐标 " + nav.bd09.join(", ") })
    ]);
  };

  /**
   * 导航 to a position (#/nav/site/ID), an activity's position (#/nav/activity/ID) or an
   * order's place (#/nav/request/ID): the walk we computed on the map, its minutes, then the
   * buttons to other map apps.
   */
  PC.view("nav", function (root, args) {
    var kind = args[0];
    var id = args[1];
    var title = el("h2", { id: "nav-title", text: "导航" });
    var minutes = el("p", { id: "nav-minutes", class: "m-big", text: "正在计算步行路线…" });
    var box = el("div", { id: "nav-map", class: "m-map m-map-tall" });
    var links = el("div", { id: "nav-links" });
    root.appendChild(el("section", { class: "m-card" }, [
      PC.button("返回", { class: "m-btn-ghost m-back", id: "nav-back" }, function () { global.history.back(); }),
      title, minutes, box, links
    ]));
    var mm = PC.miniMap(box);

    function toSite(siteId, label) {
      return Promise.all([PC.api("GET", "positions/" + encodeURIComponent(siteId) + "/card"), PC.here()])
        .then(function (r) {
          var card = r[0];
          var here = r[1];
          title.textContent = "导航到 " + (label || card.name);
          links.appendChild(PC.handOff(card.navigation));
          if (mm) { mm.you(here.lon, here.lat); mm.pin(card.lon, card.lat); }
          var q = "lon=" + here.lon + "&lat=" + here.lat;
          return PC.api("GET", "positions/" + encodeURIComponent(siteId) + "/route?" + q)
            .then(function (fc) {
              var f = (fc.features || [])[0];
              if (!f) { throw new Error("从这里步行无法到达"); }
              if (mm) { mm.line(f); }
              minutes.textContent = "从" + PC.hereText(here) + "出发，" + PC.minutes(f.properties.walk_minutes)
                + "（" + Math.round(f.properties.walk_m) + " 米）";
              minutes.dataset.minutes = String(f.properties.walk_minutes);
            });
        });
    }

    function toRequest(reqId) {
      return PC.api("GET", "requests/" + encodeURIComponent(reqId)).then(function (req) {
        title.textContent = "导航到 " + req.category_zh + "订单 #" + req.id + " 的服务地点";
        var nav = req.navigation ? Promise.resolve(req.navigation)
          : PC.api("GET", "services/navigation?lon=" + req.lon + "&lat=" + req.lat
            + "&name=" + encodeURIComponent(req.category_zh + "服务地点"));
        if (mm) { mm.view(req.lat, req.lon, 16); mm.pin(req.lon, req.lat); }
        var route = req.team ? PC.api("GET", "teams/" + encodeURIComponent(req.team.team_id))
          .then(function (team) {
            var q = "lon=" + req.lon + "&lat=" + req.lat;
            return PC.api("GET", "positions/" + encodeURIComponent(team.site_id) + "/route?" + q)
              .then(function (fc) {
                var f = (fc.features || [])[0];
                if (!f) { throw new Error("从队伍驻地步行无法到达"); }
                if (mm) { mm.line(f); mm.pin(f.properties.lon, f.properties.lat, "#047857"); }
                minutes.textContent = "从队伍驻地（" + f.properties.name + "）出发，"
                  + PC.minutes(f.properties.walk_minutes) + "（" + Math.round(f.properties.walk_m) + " 米）";
                minutes.dataset.minutes = String(f.properties.walk_minutes);
              });
          }) : Promise.resolve(minutes.textContent = "该订单尚未派给队伍");
        return Promise.all([nav.then(function (n) { links.appendChild(PC.handOff(n)); }), route]);
      });
    }

    var work;
    if (kind === "site") { work = toSite(id); }
    else if (kind === "activity") {
      work = PC.api("GET", "activities/" + encodeURIComponent(id)).then(function (a) {
        return toSite(a.site_id, a.title + "（" + a.site_name + "）");
      });
    } else if (kind === "request") { work = toRequest(id); }
    else { work = Promise.reject(new Error("不知道要导航去哪里")); }
    return work.catch(function (e) {
      minutes.textContent = e.message;
      PC.fail(e);
    });
  });
}(window));
