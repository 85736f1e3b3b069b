/*
 * 15分钟文明实践服务圈 · what the phone pages (/m/) and the workbench (/desk/) share.
 *
 * Served as ../assets/web/common.js and loaded before each page's own scripts, it exposes one
 * namespace, window.PCWeb: a DOM builder that only ever sets text (never HTML), the sign-in
 * token kept in localStorage (one key for both pages, so a dispatcher signed in on one is
 * signed in on the other), the URL builder (relative "../" paths, the page's ?district=
 * passed on) and the API client (problem+json errors become an Error in zh-CN carrying
 * status, code and the problem). No inline script, no eval: the pages run under a strict CSP.
 */
(function (global) {
  "use strict";

  var TOKEN_KEY = "pc-token";

  // ------------------------------------------------------------------ DOM

  /**
   * Build an element. attrs: text (textContent), class, dataset, on<event> (functions),
   * anything else as an attribute (true: present, false/null: absent). Children: nodes or
   * strings/numbers (as text); null, undefined and false are skipped.
   */
  function el(tag, attrs, kids) {
    var n = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      var v = attrs[k];
      if (v === null || v === undefined || v === false) { return; }
      if (k === "text") { n.textContent = String(v); }
      else if (k === "class") { n.className = v; }
      else if (k === "dataset") {
        Object.keys(v).forEach(function (d) { n.dataset[d] = String(v[d]); });
      } else if (k.slice(0, 2) === "on" && typeof v === "function") {
        n.addEventListener(k.slice(2), v);
      } else if (v === true) { n.setAttribute(k, ""); }
      else { n.setAttribute(k, String(v)); }
    });
    (kids || []).forEach(function (c) {
      if (c === null || c === undefined || c === false) { return; }
      n.appendChild(typeof c === "string" || typeof c === "number"
        ? document.createTextNode(String(c)) : c);
    });
    return n;
  }

  function clear(node) { while (node.firstChild) { node.removeChild(node.firstChild); } }

  // ------------------------------------------------------------------ storage

  /** Keep (or, given null/undefined/"", forget) a string in localStorage. */
  function store(key, value) {
    try {
      if (value === null || value === undefined || value === "") {
        global.localStorage.removeItem(key);
      } else { global.localStorage.setItem(key, value); }
    } catch (e) { /* private mode: kept for this page only */ }
  }

  function stored(key) {
    try { return global.localStorage.getItem(key); } catch (e) { return null; }
  }

  var token = {
    get: function () { return stored(TOKEN_KEY); },
    set: function (value) { store(TOKEN_KEY, value); }
  };

  // ------------------------------------------------------------------ URLs

  /** The district named in the page URL (?district=...), passed on to every API call. */
  var DISTRICT = new URLSearchParams(global.location.search).get("district");

  /**
   * A relative API URL: url("requests?limit=20"), url("desk/queue", {state: "submitted"}).
   * The pages live one folder down (/m/, /desk/), so paths get "../". Params that are null,
   * undefined or "" are left out; the page's district is added unless the path names one.
   */
  function url(path, params) {
    var p = String(path).replace(/^\/+/, "");
    var i = p.indexOf("?");
    var q = new URLSearchParams(i >= 0 ? p.slice(i + 1) : "");
    if (i >= 0) { p = p.slice(0, i); }
    if (DISTRICT && !q.has("district")) { q.set("district", DISTRICT); }
    Object.keys(params || {}).forEach(function (k) {
      var v = params[k];
      if (v !== null && v !== undefined && v !== "") { q.set(k, v); }
    });
    var s = q.toString();
    return "../" + p + (s ? "?" + s : "");
  }

  // ------------------------------------------------------------------ API

  /** A problem+json body (or nothing) as one zh-CN sentence. */
  function problemText(data, status) {
    if (data && typeof data === "object") {
      var title = typeof data.title === "string" ? data.title : "";
      var detail = typeof data.detail === "string" ? data.detail : "";
      if (title && detail && detail !== title) { return title + "：" + detail; }
      if (title || detail) { return title || detail; }
    }
    if (status === 0) { return "网络连接失败，请稍后重试"; }
    return "请求失败（" + status + "）";
  }

  /**
   * Call the API: api("GET", "requests?limit=20", null, {token: t}),
   * api("POST", "requests", body, {token: t, idem: key}), api("POST", "x/photos", null,
   * {form: formData}), api("GET", "desk/queue", null, {params: {...}}). Resolves to the JSON
   * body (text if the answer is not JSON); rejects with an Error carrying status (0: no
   * network), code and problem.
   */
  function api(method, path, body, opts) {
    var o = opts || {};
    var headers = { "Accept": "application/json" };
    if (o.token) { headers.Authorization = "Bearer " + o.token; }
    if (o.idem) { headers["Idempotency-Key"] = o.idem; }
    // Bearer tokens only: no cookies; answers change under the page, so no HTTP cache.
    var init = { method: method, headers: headers, credentials: "omit", cache: "no-store" };
    if (o.form) { init.body = o.form; }
    else if (body !== undefined && body !== null) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return global.fetch(url(path, o.params), init).then(function (r) {
      var json = (r.headers.get("content-type") || "").indexOf("json") >= 0;
      return r.text().then(function (text) {
        var data = text;
        if (json) {
          try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
        }
        if (r.ok) { return data; }
        var err = new Error(problemText(data, r.status));
        err.status = r.status;
        err.code = data && typeof data === "object" ? data.code : undefined;
        err.problem = data && typeof data === "object" ? data : null;
        throw err;
      });
    }, function () {
      var e = new Error(problemText(null, 0));
      e.status = 0;
      throw e;
    });
  }

  global.PCWeb = {
    el: el, clear: clear, store: store, stored: stored, token: token,
    district: DISTRICT, url: url, api: api, problemText: problemText
  };
}(window));
