/* pairs: the screener.
 *
 * The form (staff) POSTs to /api/screener/runs/ with the session's CSRF token and
 * shows a 400's reasons beside their fields; the run is then polled every second at
 * /api/screener/runs/<id>/ (queued, then running with its progress) and, once done
 * or failed, the result part of the page is fetched as the server renders it
 * (/screener/runs/<id>/) and swapped in (a failed run is named there, above the last
 * good one). The runs queued or running when the page opens (the scheduled one)
 * are polled the same way; the newest one's progress shows.
 *
 * The table is the server's, in rank order; its headings sort it here (each row
 * carries its numbers in data-*; a missing number sorts last either way) and
 * "significant only" hides the rest. The heatmap is drawn on a canvas from the
 * run's q-values (#sc-heat-data), one cell per pair, coloured by the bands of its
 * legend (their colours are the legend's CSS). "watch" POSTs the pair to /api/pairs/
 * at the run's interval and window and opens its live page; a pair that exists
 * already (the API's 400 says its id) opens that one.
 *
 * Hooks for tests: #sc-run[data-run-id], #sc-active[data-status], #sc-progress-text,
 * #sc-rows > tr[data-rank], th[aria-sort], canvas #sc-heat with data-cells,
 * #sc-heat-info, .sc-watch, #sc-watch-status, window.screenerPage (the states
 * seen, the sort, the watch answers).
 */
(function () {
  "use strict";

  var P = window.Pairs;
  var cfg = P && P.readJSON("screener-config");
  if (!cfg) return;

  var POLL_MS = 1000;
  var DISCOVER_MS = 15000; // how often the page looks for runs it did not start
  var PICKED = /[?&]run=/.test(window.location.search); // the reader opened a run of their choosing
  var FIELDS = ["top", "symbols", "interval", "window", "fdr"];
  // The first click on a heading sorts this way: the smaller the better, but for ρ and n.
  var FIRST_DESCENDING = { corr: true, n: true };
  // What a reason of the screener starts with, and the field it is about.
  var REASON_FIELDS = [
    ["top ", "top"],
    ["interval ", "interval"],
    ["window ", "window"],
    ["fdr ", "fdr"],
    ["a universe needs", "symbols"],
    ["give the symbols or top N", "symbols"],
  ];

  var page = {
    runs: P.readJSON("screener-runs") || [],
    shown: cfg.shown,
    active: cfg.active,
    seen: [], // the states of the run whose progress shows: "queued", "running", "done"...
    asked: null, // the run this page's form asked for
    sort: { key: "rank", descending: false },
    watched: [], // the answers to "watch": {pair, status, id}
    heat: null,
    polls: 0,
  };
  window.screenerPage = page;

  var $ = function (id) {
    return document.getElementById(id);
  };
  var isNum = P.isNum;

  var el = P.el;

  function seen(state) {
    if (page.seen[page.seen.length - 1] !== state) page.seen.push(state);
  }

  function url(template, id) {
    return template.replace(/\/0\/$/, "/" + id + "/");
  }

  /** A p- or q-value as the table writes it (dashboard.views.screen_p_text): "0.0123", "2.8e-28", "0". */
  function fmtQ(v) {
    if (!isNum(v)) return "—";
    if (v === 0) return "0";
    if (v < 0.0001) return v.toExponential(1);
    return v.toFixed(4);
  }

  // -- the table ---------------------------------------------------------------------

  function sortValue(row, key) {
    var raw = row.getAttribute("data-" + key);
    if (raw === null || raw === "") return null;
    var v = Number(raw);
    return isFinite(v) ? v : null;
  }

  function sortRows(key, descending) {
    var body = $("sc-rows");
    if (!body) return;
    var rows = Array.prototype.slice.call(body.children);
    rows.sort(function (r1, r2) {
      var a = sortValue(r1, key);
      var b = sortValue(r2, key);
      if (a === null || b === null) {
        if (a !== b) return a === null ? 1 : -1; // a missing number last, either way
      } else if (a !== b) {
        return descending ? b - a : a - b;
      }
      return sortValue(r1, "rank") - sortValue(r2, "rank");
    });
    for (var i = 0; i < rows.length; i++) body.appendChild(rows[i]);
    page.sort = { key: key, descending: descending };
    var heads = document.querySelectorAll("#sc-table th[data-key]");
    for (var k = 0; k < heads.length; k++) {
      var on = heads[k].getAttribute("data-key") === key;
      heads[k].setAttribute("aria-sort", on ? (descending ? "descending" : "ascending") : "none");
    }
  }

  function onSortClick(ev) {
    var button = ev.target.closest("#sc-table th[data-key] button.sort");
    if (!button) return false;
    var key = button.parentNode.getAttribute("data-key");
    var descending = page.sort.key === key ? !page.sort.descending : !!FIRST_DESCENDING[key];
    sortRows(key, descending);
    return true;
  }

  function applyFilter() {
    var box = $("sc-significant-only");
    var only = !!(box && box.checked);
    var rows = document.querySelectorAll("#sc-rows > tr");
    var shown = 0;
    for (var i = 0; i < rows.length; i++) {
      var hide = only && rows[i].getAttribute("data-sig") !== "true";
      rows[i].hidden = hide;
      if (!hide) shown++;
    }
    var empty = $("sc-filter-empty");
    if (empty) empty.hidden = !(only && shown === 0);
  }

  // -- watching a pair --------------------------------------------------------------

  var postJSON = P.postJSON;

  function setWatchStatus(text, bad) {
    var status = $("sc-watch-status");
    if (!status) return;
    P.setText(status, text);
    status.setAttribute("data-bad", bad ? "true" : "false");
    status.hidden = !text;
  }

  /** Every message of a 400 in one line: "symbol_a: ...; window: ...". */
  function messages(errors) {
    var out = [];
    for (var field in errors) {
      var list = Array.isArray(errors[field]) ? errors[field] : [errors[field]];
      out.push((field === "non_field_errors" ? "" : field + ": ") + list.join(" "));
    }
    return out.join("; ");
  }

  function existingId(errors) {
    var all = errors ? messages(errors) : "";
    var match = all.match(/exists already \(id (\d+)\)/);
    return match ? Number(match[1]) : null;
  }

  function watch(button) {
    var run = $("sc-run");
    if (!run) return;
    var pair = { symbol_a: button.getAttribute("data-a"), symbol_b: button.getAttribute("data-b") };
    var label = pair.symbol_a + "/" + pair.symbol_b;
    var body = {
      symbol_a: pair.symbol_a,
      symbol_b: pair.symbol_b,
      interval: run.getAttribute("data-interval"),
      window: Number(run.getAttribute("data-window")),
    };
    button.disabled = true;
    setWatchStatus("adding " + label + " " + body.interval + "…", false);
    postJSON(cfg.pairs_url, body)
      .then(function (answer) {
        var id = null;
        if (answer.status === 201 && answer.data && isNum(answer.data.id)) {
          id = answer.data.id;
          setWatchStatus(label + " " + body.interval + " added: opening its page", false);
        } else if (answer.status === 400 && (id = existingId(answer.data)) !== null) {
          setWatchStatus(label + " " + body.interval + " is watched already: opening its page", false);
        }
        page.watched.push({ pair: label, status: answer.status, id: id });
        if (id !== null) {
          window.location.assign(url(cfg.pair_page_url, id));
          return;
        }
        button.disabled = false;
        if (answer.status === 400 && answer.data) setWatchStatus(label + " not added: " + messages(answer.data), true);
        else if (answer.status === 401 || answer.status === 403) setWatchStatus("not added: sign in as staff again", true);
        else if (answer.status === 429) setWatchStatus("not added: too many requests; try again in a minute", true);
        else setWatchStatus("not added: the server answered HTTP " + answer.status, true);
      })
      .catch(function () {
        button.disabled = false;
        setWatchStatus("not added: the server cannot be reached", true);
      });
  }

  // -- the heatmap ------------------------------------------------------------------

  function bandOf(cell, bands) {
    var q = cell[2];
    if (!isNum(q)) return "none";
    for (var i = 0; i < bands.length; i++) {
      if (bands[i].below === null) return bands[i].key === "none" ? "far" : bands[i].key;
      if (q < bands[i].below) return bands[i].key;
    }
    return "far";
  }

  function bandColours() {
    var out = {};
    var swatches = document.querySelectorAll("#sc-legend .heat-sw[data-band]");
    for (var i = 0; i < swatches.length; i++) {
      out[swatches[i].getAttribute("data-band")] = getComputedStyle(swatches[i]).backgroundColor;
    }
    return out;
  }

  function label(symbol) {
    return symbol.replace(/USDT$/, "");
  }

  function drawHeat() {
    var canvas = $("sc-heat");
    var data = P.readJSON("sc-heat-data");
    page.heat = null;
    if (!canvas || !data || !data.symbols) return;
    var n = data.symbols.length;
    var box = canvas.parentNode;
    var width = Math.max(120, box.clientWidth);
    var ctx = canvas.getContext("2d");
    var font = "10px " + getComputedStyle(document.body).getPropertyValue("--mono");
    ctx.font = font;
    var longest = 0;
    for (var s = 0; s < n; s++) longest = Math.max(longest, ctx.measureText(label(data.symbols[s])).width);
    var cell = Math.floor((width - longest - 8) / Math.max(1, n));
    var labels = cell >= 9;
    var margin = labels ? Math.ceil(longest) + 6 : 0;
    cell = Math.max(2, Math.min(26, Math.floor((width - margin) / Math.max(1, n))));
    var size = margin + cell * n;
    var dpr = window.devicePixelRatio || 1;
    canvas.style.width = size + "px";
    canvas.style.height = size + "px";
    canvas.width = Math.round(size * dpr);
    canvas.height = Math.round(size * dpr);
    ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    var colours = bandColours();
    var grid = {};
    ctx.clearRect(0, 0, size, size);
    for (var c = 0; c < data.cells.length; c++) {
      var it = data.cells[c];
      var colour = colours[bandOf(it, data.bands)] || "#222b37";
      grid[it[0] + "," + it[1]] = it;
      grid[it[1] + "," + it[0]] = it;
      ctx.fillStyle = colour;
      var gap = cell > 4 ? 1 : 0;
      ctx.fillRect(margin + it[1] * cell, margin + it[0] * cell, cell - gap, cell - gap);
      ctx.fillRect(margin + it[0] * cell, margin + it[1] * cell, cell - gap, cell - gap);
    }
    if (labels) {
      ctx.fillStyle = "#8b949e";
      ctx.font = font;
      ctx.textBaseline = "middle";
      ctx.textAlign = "right";
      for (var r = 0; r < n; r++) ctx.fillText(label(data.symbols[r]), margin - 4, margin + r * cell + cell / 2);
      ctx.save();
      ctx.rotate(-Math.PI / 2);
      ctx.textAlign = "left";
      for (var k = 0; k < n; k++) ctx.fillText(label(data.symbols[k]), -margin + 4, margin + k * cell + cell / 2);
      ctx.restore();
    }
    canvas.setAttribute("data-cells", String(data.cells.length));
    canvas.setAttribute("data-symbols", String(n));
    page.heat = { data: data, grid: grid, cell: cell, margin: margin, n: n, pinned: null };
  }

  function heatCellAt(ev) {
    var h = page.heat;
    if (!h) return null;
    var rect = ev.target.getBoundingClientRect();
    var col = Math.floor((ev.clientX - rect.left - h.margin) / h.cell);
    var row = Math.floor((ev.clientY - rect.top - h.margin) / h.cell);
    if (row < 0 || col < 0 || row >= h.n || col >= h.n || row === col) return null;
    return h.grid[row + "," + col] || null;
  }

  /** A cell's pair and its numbers, as the table writes them. */
  function cellText(it) {
    var d = page.heat.data;
    var hl = it[4];
    var parts = [
      d.symbols[it[0]] + " / " + d.symbols[it[1]],
      "#" + it[8],
      "q " + fmtQ(it[2]),
      "EG p " + fmtQ(it[3]),
      "half-life " + (isNum(hl) ? P.fmt(hl, 1) + " bars (" + P.duration((hl * d.interval_ms) / 1000) + ")" : "—"),
      "β " + (isNum(it[5]) ? String(Number(it[5].toPrecision(4))) : "—"),
      "ρ " + P.fmt(it[6], 3),
    ];
    return parts.join(" · ") + (it[7] ? " · significant" : "");
  }

  function showCell(it) {
    var info = $("sc-heat-info");
    if (!info) return;
    if (!it) {
      var pinned = page.heat && page.heat.pinned;
      P.setText(info, pinned ? cellText(pinned) : "hover or tap a cell for its pair");
      info.setAttribute("data-pair", pinned ? page.heat.data.symbols[pinned[0]] + "/" + page.heat.data.symbols[pinned[1]] : "");
      return;
    }
    P.setText(info, cellText(it));
    info.setAttribute("data-pair", page.heat.data.symbols[it[0]] + "/" + page.heat.data.symbols[it[1]]);
  }

  function markRow(it) {
    var marked = document.querySelectorAll("#sc-rows > tr.picked");
    for (var i = 0; i < marked.length; i++) marked[i].classList.remove("picked");
    if (!it) return;
    var d = page.heat.data;
    var row = document.querySelector('#sc-rows > tr[data-pair="' + d.symbols[it[0]] + "/" + d.symbols[it[1]] + '"]');
    if (row) {
      row.classList.add("picked");
      if (!row.hidden && row.scrollIntoView) row.scrollIntoView({ block: "nearest" });
    }
  }

  function bindHeat() {
    var canvas = $("sc-heat");
    if (!canvas || canvas.getAttribute("data-bound")) return;
    canvas.setAttribute("data-bound", "true");
    canvas.addEventListener("mousemove", function (ev) {
      showCell(heatCellAt(ev));
    });
    canvas.addEventListener("mouseleave", function () {
      showCell(null);
    });
    canvas.addEventListener("click", function (ev) {
      var it = heatCellAt(ev);
      if (page.heat) page.heat.pinned = it;
      showCell(it);
      markRow(it);
    });
  }

  // -- the run polled ---------------------------------------------------------------

  function renderActive(run) {
    var box = $("sc-active");
    if (!box) return;
    if (!run) {
      box.hidden = true;
      box.setAttribute("data-status", "");
      return;
    }
    var pct = Math.round(100 * (isNum(run.progress) ? run.progress : 0));
    box.hidden = false;
    box.setAttribute("data-run-id", String(run.id));
    box.setAttribute("data-status", run.status);
    P.setText("sc-active-id", String(run.id));
    var badge = $("sc-active-status");
    if (badge) {
      badge.setAttribute("data-status", run.status);
      P.setText(badge, run.status);
    }
    P.setText("sc-active-what", run.interval + " · window " + run.window + " · FDR " + run.fdr);
    var bar = $("sc-progress");
    if (bar) {
      bar.setAttribute("data-status", run.status);
      bar.setAttribute("aria-valuenow", String(pct));
      var fill = bar.querySelector("span");
      if (fill) fill.style.width = pct + "%";
    }
    if (run.status === "queued") P.setText("sc-progress-text", "queued: the runner takes one screen at a time, every 3 s");
    else if (run.status === "running") P.setText("sc-progress-text", "running: " + pct + " %");
    seen(run.status);
  }

  var polling = {}; // run id -> its timer: every run queued or running, polled until it ends

  function newestPolled() {
    var newest = null;
    for (var key in polling) if (newest === null || Number(key) > newest) newest = Number(key);
    return newest;
  }

  function track(id) {
    if (polling[id] !== undefined) return;
    polling[id] = null;
    poll(id);
  }

  /** One run polled until it ends: its list entry kept up, the newest one's progress shown, then its result. */
  function poll(id) {
    polling[id] = null;
    page.polls++;
    fetch(url(cfg.run_url, id), { headers: { Accept: "application/json" }, cache: "no-store" })
      .then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.json();
      })
      .then(function (run) {
        updateRun(run);
        if (run.status === "done" || run.status === "failed") {
          delete polling[id];
          if (id === page.active || id === page.asked) seen(run.status);
          if (page.asked === id) setFormStatus("screen #" + id + " " + run.status, run.status === "failed");
          // The newest result shows: a run that ends after a newer one is shown is only listed, and so is
          // any run the page did not ask for while the reader looks at a run they picked (?run=).
          var picked = PICKED && id !== page.asked;
          if (!picked && (page.shown === null || id > page.shown)) loadResult(id);
          page.active = newestPolled();
          if (page.active === null) renderActive(null);
          return;
        }
        if (id === newestPolled()) {
          page.active = id;
          renderActive(run);
        }
        polling[id] = setTimeout(function () {
          poll(id);
        }, POLL_MS);
      })
      .catch(function () {
        if (id === newestPolled()) P.setText("sc-progress-text", "the server cannot be reached; trying again");
        polling[id] = setTimeout(function () {
          poll(id);
        }, 2 * POLL_MS);
      });
  }

  /**
   * Runs queued since the page loaded (the scheduled screen, another desk's) are found here
   * and followed as the page's own: listed, polled, and their result shown when newest.
   */
  function discover() {
    if (document.hidden) return;
    fetch(cfg.runs_url + "?limit=5", { headers: { Accept: "application/json" }, cache: "no-store" })
      .then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.json();
      })
      .then(function (runs) {
        var known = {};
        for (var i = 0; i < page.runs.length; i++) known[page.runs[i].id] = true;
        for (var j = runs.length - 1; j >= 0; j--) if (!known[runs[j].id]) track(runs[j].id);
      })
      .catch(function () {
        /* the next look finds them */
      });
  }

  /** The result part as the server renders it once run ``id`` has ended: it, or the last good run and its reason. */
  function loadResult(id) {
    return fetch(url(cfg.result_url, id), { headers: { Accept: "text/html" }, cache: "no-store" })
      .then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.text();
      })
      .then(function (html) {
        $("sc-result").innerHTML = html;
        var run = $("sc-run");
        page.shown = run ? Number(run.getAttribute("data-run-id")) : null;
        page.sort = { key: "rank", descending: false };
        if (page.shown === id && window.history && window.history.replaceState) {
          window.history.replaceState(null, "", cfg.page_url + "?run=" + id);
        }
        afterRender();
        markShown();
      })
      .catch(function () {
        setFormStatus("the result could not be loaded; reload the page", true);
      });
  }

  function afterRender() {
    drawHeat();
    bindHeat();
    applyFilter();
  }

  // -- the runs ---------------------------------------------------------------------

  /** A run of the API (full, with its pairs) as the list keeps it (dashboard.views.screen_run_item). */
  function runItemOf(run) {
    var pairs = Array.isArray(run.pairs) ? run.pairs : [];
    var significant = 0;
    for (var i = 0; i < pairs.length; i++) if (pairs[i].significant) significant++;
    return {
      id: run.id,
      status: run.status,
      progress: run.progress,
      error: run.error,
      interval: run.interval,
      window: run.window,
      fdr: run.fdr,
      requested: run.requested || null,
      universe: (run.symbols || []).length,
      pairs: pairs.length,
      significant: significant,
      created_at: run.created_at ? Date.parse(run.created_at) : null,
      finished_at: run.finished_at ? Date.parse(run.finished_at) : null,
    };
  }

  function updateRun(run) {
    var item = runItemOf(run);
    for (var i = 0; i < page.runs.length; i++) {
      if (page.runs[i].id === run.id) {
        item.requested = item.requested || page.runs[i].requested;
        page.runs[i] = item;
        renderRuns();
        return;
      }
    }
    page.runs.unshift(item);
    renderRuns();
  }

  function runLi(run) {
    var li = el("li", "bt-run-item");
    li.setAttribute("data-run-id", String(run.id));
    li.setAttribute("data-status", run.status);
    var a = el(run.status === "done" ? "a" : "div", "sc-run-link");
    if (run.status === "done") a.href = cfg.page_url + "?run=" + run.id;
    var top = el("div", "bt-run-line");
    top.appendChild(el("span", "mono bt-run-id", "#" + run.id));
    top.appendChild(el("span", "badge bt-badge", run.status));
    top.appendChild(el("span", "mono small", run.interval + " · " + run.window));
    if (run.status === "done") {
      top.appendChild(el("span", "mono bt-run-net" + (run.significant ? " pos" : ""), run.significant + " significant"));
    } else if (run.status === "running") {
      top.appendChild(el("span", "muted small bt-run-net", Math.round(100 * run.progress) + " %"));
    }
    a.appendChild(top);
    var what = run.requested && run.requested.symbols ? run.requested.symbols.length + " named symbols" : run.requested ? "top " + run.requested.top : "";
    var line = [];
    if (what) line.push(what);
    if (run.status === "done") line.push(run.universe + " symbols · " + run.pairs + " pairs");
    line.push(P.stamp(run.finished_at || run.created_at));
    a.appendChild(el("div", "muted small bt-run-range", line.join(" · ")));
    if (run.status === "failed" && run.error) {
      var why = el("div", "small sc-run-error", run.error);
      why.title = run.error;
      a.appendChild(why);
    }
    li.appendChild(a);
    return li;
  }

  function renderRuns() {
    var list = $("sc-runs");
    if (!list) return;
    list.textContent = "";
    for (var i = 0; i < page.runs.length; i++) list.appendChild(runLi(page.runs[i]));
    var empty = $("sc-runs-empty");
    if (empty) empty.hidden = page.runs.length > 0;
    markShown();
  }

  function markShown() {
    var items = document.querySelectorAll("#sc-runs > li");
    for (var i = 0; i < items.length; i++) {
      var on = Number(items[i].getAttribute("data-run-id")) === page.shown;
      if (on) items[i].setAttribute("aria-current", "true");
      else items[i].removeAttribute("aria-current");
    }
  }

  // -- the form ---------------------------------------------------------------------

  var form = $("sc-form");

  /** The field a reason of the screener is about, if it names one. */
  function fieldNamed(message) {
    for (var i = 0; i < REASON_FIELDS.length; i++) if (message.indexOf(REASON_FIELDS[i][0]) === 0) return REASON_FIELDS[i][1];
    return / is not a symbol /.test(message) ? "symbols" : null;
  }

  var staff = P.staffForm("sc", FIELDS, fieldNamed);
  var setFormStatus = staff.status;

  /** The form as the API takes it: the symbols named, or else the top N; as typed (the server judges it). */
  function body() {
    var out = { interval: form.elements.interval.value };
    var symbols = form.elements.symbols.value.split(/[\s,;]+/).filter(function (s) {
      return s;
    });
    if (symbols.length) out.symbols = symbols;
    else if (form.elements.top.value.trim()) out.top = form.elements.top.value.trim();
    ["window", "fdr"].forEach(function (name) {
      var v = form.elements[name].value.trim();
      if (v) out[name] = v;
    });
    return out;
  }

  function submit(ev) {
    ev.preventDefault();
    staff.clear();
    var button = $("sc-submit");
    if (button) button.disabled = true;
    setFormStatus("asking…", false);
    postJSON(cfg.runs_url, body())
      .then(function (answer) {
        if (answer.status === 202 && answer.data) {
          var asked = body();
          var run = Object.assign({ requested: { symbols: asked.symbols || null, top: asked.top || null } }, answer.data);
          setFormStatus("screen #" + run.id + " queued", false);
          page.asked = run.id;
          page.active = run.id;
          page.seen = [];
          updateRun(run);
          renderActive(run);
          track(run.id);
        } else {
          staff.refused(answer);
        }
      })
      .catch(function () {
        setFormStatus("not run: the server cannot be reached", true);
      })
      .then(function () {
        if (button) button.disabled = false;
      });
  }

  function syncTop() {
    // With symbols named, top N plays no part.
    form.elements.top.disabled = !!form.elements.symbols.value.trim();
  }

  // -- start ------------------------------------------------------------------------

  function start() {
    renderRuns();
    afterRender();
    var result = $("sc-result");
    result.addEventListener("click", function (ev) {
      if (onSortClick(ev)) return;
      var button = ev.target.closest("button.sc-watch");
      if (button && !button.disabled) watch(button);
    });
    result.addEventListener("change", function (ev) {
      if (ev.target && ev.target.id === "sc-significant-only") applyFilter();
    });
    if (form) {
      form.addEventListener("submit", submit);
      form.elements.symbols.addEventListener("input", syncTop);
      syncTop();
    }
    if (page.active !== null && page.active !== undefined) seen($("sc-active").getAttribute("data-status"));
    for (var i = 0; i < page.runs.length; i++) {
      if (page.runs[i].status === "queued" || page.runs[i].status === "running") track(page.runs[i].id);
    }
    setInterval(discover, DISCOVER_MS);
    var resized = null;
    window.addEventListener("resize", function () {
      clearTimeout(resized);
      resized = setTimeout(drawHeat, 150);
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
