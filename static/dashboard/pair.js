/* pairs: the live page of one pair.
 *
 * Renders the server's snapshot, chart series, live prices and alerts; computes no
 * statistic (the ±kσ bands are spread_mean ± k·spread_std of the snapshot, drawn as
 * horizontal lines). The z chart is the signal: each bar's signal_zscore as recorded
 * when that bar closed (never rescored), with the snapshot's entry/exit lines and
 * each alert at its bar and the signal z it fired on (a threshold edited later moves
 * the lines, not the markers). Messages arrive on ws(s)://HOST/ws/pairs/<id>/:
 *   snapshot (first on connect), series (the whole window: on connect, and after a
 *   snapshot when no delta applies), series_delta (after a snapshot: the new points
 *   and the window's model, see applyDelta), prices, alert, health (the
 *   /api/health/ record every 5 s: the page polls it only while these do not come).
 * The paper position card is read again from /api/positions/?pair=<id> after each
 * alert, after each snapshot while a position is open (its mark moves with every
 * bar) and on each connect; the server marks it, the page only writes its numbers
 * (as dashboard.views.position_card does). While one is open, its own spread
 * (A − β' × B, β' its entry's hedge) is drawn on the spread chart over the bars since
 * its entry, on an axis of its own (right), named "position spread (β' 0.0561)".
 *
 * The three charts share their time axis (common.js ChartGroup): zoom, pan, range
 * buttons and a reset, following the newest bar until zoomed or panned by hand. An
 * outage (bars more than an interval apart) breaks each line and is shaded, and each
 * chart's legend names its series (common.js renderLegend).
 *
 * Hooks for tests: #live-status[data-socket] (the page's socket: "connecting"/"live"/"down"), #signal-zscore-value, #warmup,
 * #gates > li[data-ok] (the entry checklist), #alert-feed > li[data-alert-id],
 * #position-panel[data-open] with #pos-unrealised and #pos-closed > li[data-position-id],
 * canvases #chart-prices/#chart-spread/#chart-zscore with data-points (points of the
 * main series drawn; the z chart's is the signal) and data-gaps (outages marked),
 * #legend-prices/#legend-spread/#legend-zscore, #chart-ranges > button[data-range],
 * #chart-reset, #chart-view[data-follow], window.pairsCharts and window.pairsPage
 * (state and counters; its chartGroup the view).
 */
(function () {
  "use strict";

  var P = window.Pairs;
  var cfg = P && P.readJSON("pair-config");
  if (!cfg) return;

  var RECONNECT_MIN_MS = 1000;
  var RECONNECT_MAX_MS = 5000; // a restarted server is back within seconds: so is the page
  var LIVE_TAIL_MAX = 2000; // live price points kept after the newest closed bar
  var LIVE_REDRAW_MS = 250; // live price chart redraws at most this often
  var FEED_MAX = 100; // alerts kept in the feed

  var C = P.colors;

  // Why a paper position closed (its exit alert's reason), in words.
  var POSITION_REASONS = { reverted: "spread reverted", relationship_broken: "relationship broke" };

  var SOURCE_NOTES = {
    history: "last recorded snapshot, not live: the snapshot cycle has not published a newer one yet",
    none: "not computed yet: the snapshot cycle has not run for this pair",
  };

  var QUALITY_LABELS = [
    ["stationarity", "Stationarity (ADF, EG p)"],
    ["correlation", "Returns correlation"],
    ["mean_reversion", "Mean reversion (half-life)"],
    ["fit", "Fit (R²)"],
  ];

  var page = {
    snapshot: P.readJSON("initial-snapshot") || {},
    series: P.readJSON("initial-series") || {},
    alerts: [], // newest first, as received (ids)
    openEntry: cfg.open_entry || null,
    armed: cfg.rule_armed !== false, // the rule may enter (it disarms at an entry until the mean)
    previousRun: cfg.previous_run || 0, // related_run of the snapshot before the shown one
    ruleAlert: null, // the newest alert the rule's state above follows: {bar_time, id}
    tail: [], // live prices {t, a, b} after the newest closed bar, oldest first
    prices: { a: null, b: null, t: null },
    messages: { snapshot: 0, series: 0, series_delta: 0, prices: 0, alert: 0, health: 0 },
    positions: P.readJSON("initial-positions") || [], // the API's, newest first
    positionReads: 0,
    connected: false,
    reconnects: 0,
  };
  window.pairsPage = page;

  var dec = { a: cfg.decimals_a, b: cfg.decimals_b, s: cfg.decimals_spread };
  var $ = function (id) {
    return document.getElementById(id);
  };
  var isNum = P.isNum;

  // -- charts -------------------------------------------------------------------

  function hline(label, color, dash, extra) {
    // Reference lines are drawn over the data (a lower order is drawn later).
    return P.lineDataset(label, color, Object.assign({ borderWidth: 1, borderDash: dash || [], pointHoverRadius: 0, hline: true, order: 0 }, extra || {}));
  }

  var charts = {};
  var group = null; // the charts' shared time axis: zoom, pan, range, following the newest bar

  function makeCharts() {
    if (typeof window.Chart !== "function") return;
    var Chart = window.Chart;
    P.chartTheme();
    group = new P.ChartGroup({
      intervalMs: cfg.interval_ms,
      live: true,
      tools: { ranges: $("chart-ranges"), reset: $("chart-reset"), state: $("chart-view") },
    });
    page.chartGroup = group;

    var pricesCanvas = $("chart-prices");
    if (pricesCanvas) {
      charts.prices = new Chart(pricesCanvas, {
        type: "line",
        plugins: [P.gapPlugin],
        data: {
          datasets: [
            P.lineDataset(cfg.symbol_a, C.a, { yAxisID: "yA", main: true, borderWidth: 2, order: 2, legend: cfg.symbol_a + " (" + P.quoteOf(cfg.symbol_a) + ")" }),
            P.lineDataset(cfg.symbol_b, C.b, { yAxisID: "yB", main: true, borderWidth: 1.1, order: 1, legend: cfg.symbol_b + " (" + P.quoteOf(cfg.symbol_b) + ")" }),
            P.lineDataset(cfg.symbol_a + " live", C.a, { yAxisID: "yA", borderWidth: 1, borderDash: [2, 2], live: true }),
            P.lineDataset(cfg.symbol_b + " live", C.b, { yAxisID: "yB", borderWidth: 1, borderDash: [2, 2], live: true }),
          ],
        },
        options: P.chartOptions(
          {
            x: P.timeAxis(),
            yA: P.valueAxis("left", { ticks: { color: C.a, maxTicksLimit: 6 } }),
            yB: P.valueAxis("right", { grid: { display: false }, ticks: { color: C.b, maxTicksLimit: 6 } }),
          },
          function (ctx) {
            var d = ctx.dataset.yAxisID === "yA" ? dec.a : dec.b;
            return " " + ctx.dataset.label + "  " + P.fmt(ctx.parsed.y, d);
          },
          group.zoomOptions()
        ),
      });
      group.add(charts.prices);
    }

    var spreadCanvas = $("chart-spread");
    if (spreadCanvas) {
      charts.spread = new Chart(spreadCanvas, {
        type: "line",
        plugins: [P.gapPlugin],
        data: {
          datasets: [
            P.lineDataset("spread", C.spread, { main: true, order: 1, legend: "spread (" + P.quoteOf(cfg.symbol_a) + ")" }),
            hline("mean", C.mean, [], { legend: "mean" }),
            hline("+1σ", C.band1, [4, 3], { legend: "±1σ" }),
            hline("−1σ", C.band1, [4, 3], { legend: "±1σ" }),
            hline("+2σ", C.band2, [2, 3], { fill: "+1", backgroundColor: C.band2Fill, legend: "±2σ", legendFill: C.band2Fill }),
            hline("−2σ", C.band2, [2, 3], { legend: "±2σ" }),
            // On an axis of its own (right): its level is set by its own β, not the window's.
            P.lineDataset("position spread", C.position, { yAxisID: "yPos", borderWidth: 1.2, position: true, order: 0 }),
          ],
        },
        options: P.chartOptions(
          {
            x: P.timeAxis(),
            y: P.valueAxis(),
            yPos: P.valueAxis("right", { display: false, grid: { display: false }, ticks: { color: C.position, maxTicksLimit: 6 } }),
          },
          function (ctx) {
            return " " + (ctx.dataset.position ? ctx.dataset.legend : "spread") + "  " + P.fmt(ctx.parsed.y, dec.s);
          },
          group.zoomOptions()
        ),
      });
      group.add(charts.spread);
    }

    var zCanvas = $("chart-zscore");
    if (zCanvas) {
      var markers = P.lineDataset("alerts", C.short, {
        legendItems: [
          { text: "long entry", glyph: "▲", color: C.long },
          { text: "short entry", glyph: "▼", color: C.short },
          { text: "exit", glyph: "●", color: C.closed },
        ],
        showLine: false,
        pointRadius: 6,
        pointHoverRadius: 8,
        pointHitRadius: 8,
        markers: true,
        order: -1,
        pointStyle: function (ctx) {
          return ctx.raw && ctx.raw.kind === "exit" ? "circle" : "triangle";
        },
        rotation: function (ctx) {
          return ctx.raw && ctx.raw.kind === "entry" && ctx.raw.direction === "short_spread" ? 180 : 0;
        },
        pointBackgroundColor: function (ctx) {
          if (!ctx.raw) return C.closed;
          if (ctx.raw.kind === "exit") return C.closed;
          return ctx.raw.direction === "short_spread" ? C.short : C.long;
        },
        pointBorderColor: "#0d1117",
        pointBorderWidth: 1,
      });
      charts.zscore = new Chart(zCanvas, {
        type: "line",
        plugins: [P.gapPlugin],
        data: {
          datasets: [
            P.lineDataset("signal z", C.z, { main: true, borderWidth: 1.4, order: 1, legend: "signal z" }),
            hline("+entry", C.entry, [5, 3]),
            hline("−entry", C.entry, [5, 3]),
            hline("+exit", C.exit, [2, 3]),
            hline("−exit", C.exit, [2, 3]),
            hline("0", C.zero, []),
            markers,
          ],
        },
        options: P.chartOptions(
          { x: P.timeAxis(), y: P.valueAxis() },
          function (ctx) {
            if (ctx.dataset.markers && ctx.raw) {
              return " " + ctx.raw.kind + " " + ctx.raw.direction.replace("_", " ") + "  signal z " + P.fmtSigned(ctx.parsed.y, 2);
            }
            return " signal z  " + P.fmtSigned(ctx.parsed.y, 2);
          },
          group.zoomOptions()
        ),
      });
      group.add(charts.zscore);
    }
    window.pairsCharts = charts;
  }

  function countValues(pts) {
    var n = 0;
    for (var i = 0; i < pts.length; i++) if (pts[i].y !== null) n++;
    return n;
  }

  function flat(y, x0, x1) {
    return isNum(y) && isNum(x0) && isNum(x1) ? [{ x: x0, y: y }, { x: x1, y: y }] : [];
  }

  function seriesRange() {
    var t = page.series.t || [];
    return t.length ? [t[0], t[t.length - 1]] : [null, null];
  }

  function markEmpty(canvasId, n) {
    var canvas = $(canvasId);
    if (canvas) canvas.setAttribute("data-points", String(n));
    if (canvas) canvas.style.visibility = n > 0 ? "visible" : "hidden";
    var overlay = document.querySelector('.chart-empty[data-for="' + canvasId + '"]');
    if (overlay) overlay.hidden = n > 0;
  }

  function drawSeries() {
    var s = page.series;
    var snap = page.snapshot;
    var range = seriesRange();
    var x0 = range[0];
    var x1 = range[1];
    var tail = liveTail();
    var ms = cfg.interval_ms;
    // Bars more than an interval apart: each line breaks there, and each chart marks the outage.
    var gaps = P.gapsOf(s.t, ms);
    // The charts span the window to the end of the newest bar (or of the live one), and show what the view says.
    var edge = rightEdge();
    if (group) group.setBounds(isNum(x0) ? x0 : page.tail.length ? page.tail[0].t : null, edge);
    var pricesA = P.linePoints(s.t, s.price_a, ms);
    if (charts.prices) {
      var ds = charts.prices.data.datasets;
      ds[0].data = pricesA;
      ds[1].data = P.linePoints(s.t, s.price_b, ms);
      ds[2].data = tail.a;
      ds[3].data = tail.b;
      P.setGaps(charts.prices, gaps);
      charts.prices.update("none");
      P.renderLegend(charts.prices, $("legend-prices"));
    }
    markEmpty("chart-prices", countValues(pricesA));
    var prices = $("chart-prices");
    if (prices) prices.setAttribute("data-live-points", String(page.tail.length));

    var spreadPts = P.linePoints(s.t, s.spread, ms);
    var spreadCount = countValues(spreadPts);
    if (charts.spread) {
      var sd = charts.spread.data.datasets;
      var m = snap.spread_mean;
      var sigma = snap.spread_std;
      var ok = spreadCount > 0 && isNum(m) && isNum(sigma);
      sd[0].data = spreadPts;
      sd[1].data = ok ? flat(m, x0, edge) : [];
      sd[2].data = ok ? flat(m + sigma, x0, edge) : [];
      sd[3].data = ok ? flat(m - sigma, x0, edge) : [];
      sd[4].data = ok ? flat(m + 2 * sigma, x0, edge) : [];
      sd[5].data = ok ? flat(m - 2 * sigma, x0, edge) : [];
      sd[6].data = positionSpread(s);
      var pos = openPosition();
      // Named by the hedge it was entered with (the entry signal's β'), not the window's moving one.
      sd[6].legend = pos ? "position spread (β' " + P.fmt(pos.hedge_ratio, 4) + ")" : "";
      charts.spread.options.scales.yPos.display = sd[6].data.length > 0;
      P.setGaps(charts.spread, gaps);
      charts.spread.update("none");
      P.renderLegend(charts.spread, $("legend-spread"));
    }
    markEmpty("chart-spread", spreadCount);

    var zPts = P.linePoints(s.t, s.signal_zscore, ms);
    var zCount = countValues(zPts);
    if (charts.zscore) {
      var zd = charts.zscore.data.datasets;
      var th = snap.thresholds || {};
      var has = zCount > 0;
      zd[0].data = zPts;
      zd[1].data = has ? flat(th.entry_z, x0, edge) : [];
      zd[2].data = has && isNum(th.entry_z) ? flat(-th.entry_z, x0, edge) : [];
      zd[3].data = has ? flat(th.exit_z, x0, edge) : [];
      zd[4].data = has && isNum(th.exit_z) ? flat(-th.exit_z, x0, edge) : [];
      zd[5].data = has ? flat(0, x0, edge) : [];
      zd[6].data = has ? alertMarkers(x0, x1) : [];
      // The thresholds the lines are drawn at, in the legend's words.
      zd[1].legend = zd[2].legend = "entry ±" + P.fmt(th.entry_z, 2);
      zd[3].legend = zd[4].legend = "exit ±" + P.fmt(th.exit_z, 2);
      P.setGaps(charts.zscore, gaps);
      charts.zscore.update("none");
      P.renderLegend(charts.zscore, $("legend-zscore"));
    }
    markEmpty("chart-zscore", zCount);
  }

  /** The open paper position's own spread, A − β' × B at its entry's hedge β', at each bar since its entry (none when flat). */
  function positionSpread(s) {
    var pos = openPosition();
    if (!pos || !isNum(pos.hedge_ratio) || !s.t) return [];
    var t = [];
    var values = [];
    for (var i = 0; i < s.t.length; i++) {
      if (s.t[i] < pos.opened_at) continue;
      t.push(s.t[i]);
      values.push(isNum(s.price_a[i]) && isNum(s.price_b[i]) ? s.price_a[i] - pos.hedge_ratio * s.price_b[i] : null);
    }
    return P.linePoints(t, values, cfg.interval_ms);
  }

  /** Where the charts end: the end of the newest bar, or of the bar the newest live price falls in (null: no data). */
  function rightEdge() {
    var t = page.series.t || [];
    var edge = t.length ? t[t.length - 1] + cfg.interval_ms : null;
    if (page.tail.length) {
      var live = (Math.floor(page.tail[page.tail.length - 1].t / cfg.interval_ms) + 1) * cfg.interval_ms;
      edge = edge === null ? live : Math.max(edge, live);
    }
    return edge;
  }

  /**
   * The live price points after the newest closed bar, joined to its close; broken, as the bars' lines are, where
   * no price came for longer than an interval (the join too, when the first live price is a bar or more later).
   */
  function liveTail() {
    var s = page.series;
    var t = s.t || [];
    var ms = cfg.interval_ms;
    var a = [];
    var b = [];
    if (!page.tail.length) return { a: a, b: b };
    var n = t.length;
    if (n && isNum(s.price_a[n - 1]) && isNum(s.price_b[n - 1]) && page.tail[0].t - t[n - 1] <= 2 * ms) {
      a.push({ x: t[n - 1], y: s.price_a[n - 1] });
      b.push({ x: t[n - 1], y: s.price_b[n - 1] });
    }
    for (var i = 0; i < page.tail.length; i++) {
      var p = page.tail[i];
      if (i > 0 && p.t - page.tail[i - 1].t > ms) {
        a.push({ x: page.tail[i - 1].t + ms, y: null });
        b.push({ x: page.tail[i - 1].t + ms, y: null });
      }
      a.push({ x: p.t, y: p.a });
      b.push({ x: p.t, y: p.b });
    }
    return { a: a, b: b };
  }

  function trimTail() {
    var t = page.series.t || [];
    if (t.length) {
      var after = t[t.length - 1] + cfg.interval_ms; // ticks of bars already closed are in the series
      var k = 0;
      while (k < page.tail.length && page.tail[k].t < after) k++;
      if (k) page.tail.splice(0, k);
    }
    if (page.tail.length > LIVE_TAIL_MAX) page.tail.splice(0, page.tail.length - LIVE_TAIL_MAX);
  }

  var lastLiveDraw = 0;
  var liveTimer = null;

  function drawLive() {
    liveTimer = null;
    lastLiveDraw = Date.now();
    if (!charts.prices) return;
    // A live price in a bar the charts do not reach yet: they all move on together (unless the user holds them still).
    if (group && group.following() && group.bounds && rightEdge() > group.bounds[1]) {
      scheduleDraw();
      return;
    }
    var tail = liveTail();
    var ds = charts.prices.data.datasets;
    ds[2].data = tail.a;
    ds[3].data = tail.b;
    charts.prices.update("none");
    var prices = $("chart-prices");
    if (prices) prices.setAttribute("data-live-points", String(page.tail.length));
  }

  function scheduleLive() {
    if (liveTimer || document.hidden) return;
    var wait = Math.max(0, LIVE_REDRAW_MS - (Date.now() - lastLiveDraw));
    liveTimer = setTimeout(drawLive, wait);
  }

  function alertMarkers(x0, x1) {
    var out = [];
    var items = document.querySelectorAll("#alert-feed > li[data-alert-id]");
    for (var i = 0; i < items.length; i++) {
      var a = alertsById[items[i].getAttribute("data-alert-id")];
      // At its bar, at the signal z it fired on (recorded with it): on the line, wherever the thresholds are now.
      // Alerts recorded before signals have none, and no place on this line.
      if (a && isNum(a.bar_time) && isNum(a.signal_zscore) && a.bar_time >= x0 && a.bar_time <= x1) {
        out.push({ x: a.bar_time, y: a.signal_zscore, kind: a.kind, direction: a.direction });
      }
    }
    out.sort(function (p, q) {
      return p.x - q.x;
    });
    return out;
  }

  // -- snapshot panels ----------------------------------------------------------

  function pairState(s) {
    if (page.openEntry && page.openEntry.open_direction) {
      return { key: "alerting", label: "alerting: " + page.openEntry.open_direction.replace("_", " ") };
    }
    if (s.source === "none") return { key: "pending", label: "not computed yet" };
    var stale = s.stale ? (s.stale_legs || []).join(", ") : "";
    if (!s.ready) {
      var w = s.warmup || {};
      var label = "warming up " + (w.bars || 0) + "/" + (w.required || 0);
      return { key: "warming", label: stale ? label + " · stale: " + stale : label };
    }
    if (stale) return { key: "stale", label: "stale: " + stale };
    return { key: "ready", label: "ready" };
  }

  function setData(el, name, value) {
    if (el && el.getAttribute(name) !== value) el.setAttribute(name, value);
  }

  function renderState() {
    var st = pairState(page.snapshot);
    var badge = $("state-badge");
    if (badge) {
      badge.className = "badge state-" + st.key;
      setData(badge, "data-state", st.key);
      P.setText(badge, st.label);
    }
  }

  function renderZone() {
    var zone = zoneOf(page.snapshot || {});
    setData($("z-tile"), "data-zone", zone.key);
    P.setText("z-zone", zone.label);
  }

  /** A threshold as the gates show it: at least 2 decimals, up to 4 ("0.05", "0.60", "2.00", "0.0125"). */
  function fmtTh(v) {
    if (!isNum(v)) return "—";
    var parts = v.toFixed(4).replace(/0+$/, "").split(".");
    var d = parts[1] || "";
    while (d.length < 2) d += "0";
    return parts[0] + "." + d;
  }

  /** A p-value in a gate: 3 decimals, "<0.001" below that. */
  function fmtGateP(v) {
    if (!isNum(v)) return "—";
    return v < 0.001 ? "<0.001" : v.toFixed(3);
  }

  function gate(key, ok, text, pct) {
    var li = $("gate-" + key);
    if (!li) return;
    setData(li, "data-ok", ok === null ? "unknown" : ok ? "true" : "false");
    P.setText(li.querySelector(".gate-text"), text);
    P.setText(li.querySelector(".gate-mark"), ok === null ? "·" : ok ? "✓" : "✗");
    var meter = li.querySelector(".gate-meter > span");
    if (meter && pct !== undefined) meter.style.width = pct.toFixed(0) + "%";
  }

  /**
   * The entry's checklist, as the server renders it (dashboard.views.entry_gates): each
   * relationship gate with its value and threshold, the confirmation run, the signal.
   * A missing value fails its gate on a ready snapshot; nothing is judged before.
   */
  function renderGates(s) {
    var th = s.thresholds || {};
    var ready = !!s.ready;
    function check(value, passes) {
      if (!ready) return null;
      return isNum(value) && passes;
    }
    gate("adf", check(s.adf_pvalue, s.adf_pvalue < th.max_adf_pvalue), "ADF p " + fmtGateP(s.adf_pvalue) + " < " + fmtTh(th.max_adf_pvalue));
    gate("coint", check(s.coint_pvalue, s.coint_pvalue < th.max_coint_pvalue), "EG p " + fmtGateP(s.coint_pvalue) + " < " + fmtTh(th.max_coint_pvalue));
    gate(
      "corr",
      check(s.correlation, s.correlation >= th.min_correlation),
      "correlation " + (isNum(s.correlation) ? s.correlation.toFixed(2) : "—") + " ≥ " + fmtTh(th.min_correlation)
    );
    var run = isNum(s.related_run) ? s.related_run : 0;
    var need = isNum(th.confirm_bars) ? th.confirm_bars : 0;
    gate("run", check(run, run >= need), "related " + run + "/" + need, need ? Math.min(100, (100 * run) / need) : 0);
    var z = s.signal_zscore;
    gate(
      "z",
      ready && isNum(z) ? Math.abs(z) > th.entry_z : null,
      "|signal z| " + (isNum(z) ? Math.abs(z).toFixed(2) : "—") + " > " + fmtTh(th.entry_z)
    );
    var flag = $("related-flag");
    if (flag) {
      setData(flag, "data-ok", ready ? (s.related ? "true" : "false") : "unknown");
      P.setText(flag, ready ? (s.related ? "related" : "not related") : "—");
    }
    if (isNum(th.confirm_bars)) P.setText("confirm-bars", String(th.confirm_bars));
  }

  function renderQuality(q) {
    var list = $("quality-breakdown");
    if (!list) return;
    var html = "";
    if (!q) {
      html = '<li class="muted q-empty">shown once the pair is ready</li>';
    } else {
      for (var i = 0; i < QUALITY_LABELS.length; i++) {
        var c = q[QUALITY_LABELS[i][0]];
        if (!c) continue;
        var maxPts = 100 * c.weight;
        var pct = isNum(c.value) ? Math.max(0, Math.min(100, c.value * 100)) : 0;
        html +=
          '<li data-component="' + QUALITY_LABELS[i][0] + '">' +
          '<span class="q-label">' + QUALITY_LABELS[i][1] + "</span>" +
          '<span class="q-track" aria-hidden="true"><span style="width: ' + pct.toFixed(0) + '%"></span></span>' +
          '<span class="q-points mono">' + P.fmt(c.points, 1) + '<span class="muted">/' + P.fmt(maxPts, 0) + "</span></span></li>";
      }
    }
    if (list.getAttribute("data-html") !== html) {
      list.innerHTML = html;
      list.setAttribute("data-html", html);
    }
  }

  /**
   * Where the signal z stands and what the pair's rule does about it, in a trader's words (as
   * dashboard.views.pairs.zone_of): beyond the entry line the trade is named only when it is
   * open or the rule would enter on this snapshot; otherwise the words say why not.
   */
  function zoneOf(s) {
    var z = s.signal_zscore;
    var th = s.thresholds || {};
    if (!isNum(z) || !isNum(th.entry_z) || !isNum(th.exit_z)) {
      return { key: "none", label: s.ready ? "no signal yet" : "warming up" };
    }
    var side = z > 0 ? "high" : "low";
    var held = page.openEntry && page.openEntry.open_direction;
    if (held) {
      var position = held.replace("_", " ");
      var unusable = unusableWhy(s);
      if (unusable !== null) return { key: "hold", label: position + " open, " + unusable };
      if (Math.abs(z) < th.exit_z) return { key: "exit", label: "back at the mean: exit the " + position };
      if (Math.abs(z) > th.entry_z && held === (z > 0 ? "short_spread" : "long_spread")) {
        return { key: "entry-" + side, label: "stretched " + side + ": " + position + " open" };
      }
      return { key: "hold", label: position + " open, exit inside ±" + fmtTh(th.exit_z) };
    }
    if (Math.abs(z) > th.entry_z) {
      var why = noEntryReason(s);
      if (why === null) return { key: "entry-" + side, label: "stretched " + side + ": " + (z > 0 ? "short the spread" : "long the spread") };
      return { key: "unrelated", label: "stretched " + side + ", no trade: " + why };
    }
    if (Math.abs(z) < th.exit_z) return { key: "exit", label: "back at the mean" };
    return { key: "between", label: "leaning " + side + ", inside ±" + fmtTh(th.entry_z) };
  }

  page.zoneOf = zoneOf; // for the browser test: the same words as the server's for each case

  /** Why the rule fires nothing on this snapshot whatever its z, or null (as _unusable). */
  function unusableWhy(s) {
    if (!s.ready) return "warming up";
    if (s.stale) return (s.stale_legs || []).join(", ") + " silent";
    return null;
  }

  /** Why the rule would not enter on this snapshot beyond the entry line, or null (as _no_entry_reason). */
  function noEntryReason(s) {
    var unusable = unusableWhy(s);
    if (unusable !== null) return unusable;
    if (!page.armed) return "this move was traded; waits for the mean";
    // The confirmation is the run before this snapshot: exactly one less than its own when it is related.
    var run = isNum(s.related_run) ? s.related_run : 0;
    var before = s.related && run > 0 ? run - 1 : page.previousRun;
    var need = (s.thresholds || {}).confirm_bars || 0;
    if (before < need) return "related " + before + "/" + need + " bars before this one";
    return null;
  }

  /**
   * A newer snapshot replaces the shown one. What the rule keeps of the one before: its run (the
   * confirmation the new one needs) and, with the new one usable and back inside the exit line, the
   * rule re-armed (docs/analytics.md, "Alert rule", step 2). Entries and exits arrive as alerts.
   */
  function followRule(s) {
    var shown = page.snapshot || {};
    if (isNum(shown.as_of) && isNum(s.as_of) && s.as_of <= shown.as_of) return;
    if (isNum(shown.as_of)) page.previousRun = isNum(shown.related_run) ? shown.related_run : 0;
    var th = s.thresholds || {};
    if (s.ready && !s.stale && isNum(s.signal_zscore) && isNum(th.exit_z) && Math.abs(s.signal_zscore) < th.exit_z) {
      page.armed = true;
    }
  }

  /** The warm-up tile's promise (as dashboard.views.pairs.warmup_text): no time while a leg is silent. */
  function warmupText(s) {
    if (s.ready) return (s.n || 0) + "/" + (s.window || cfg.window) + " bars in the window";
    var w = s.warmup || {};
    var togo = Math.max(0, (w.required || 0) - (w.bars || 0));
    if (s.stale) return togo + " bars to go · waiting for " + (s.stale_legs || []).join(", ") + " to trade";
    return togo + " bars to go · ~" + P.duration((togo * cfg.interval_ms) / 1000) + " if both legs keep trading";
  }

  function renderSnapshot() {
    var s = page.snapshot || {};
    var th = s.thresholds || {};
    var z = s.signal_zscore;

    P.setText("as-of", P.span(s.as_of, cfg.interval_ms));
    var source = $("snapshot-source");
    if (source) {
      // The server serves its newest recorded snapshot until the cycle publishes one.
      var note = SOURCE_NOTES[s.source] || "";
      setData(source, "data-source", s.source || "cycle");
      P.setText(source, note);
      source.hidden = !note;
    }
    P.setText("window-info", (s.n || 0) + "/" + (s.window || cfg.window) + " bars");
    P.setText("metrics-n", (s.n || 0) + " bars");

    if (page.prices.t === null) {
      P.setText("price-a", P.fmt(s.price_a, dec.a));
      P.setText("price-b", P.fmt(s.price_b, dec.b));
      P.setText("price-time", P.stamp(s.as_of));
    }

    P.setText("signal-zscore-value", P.fmtSigned(z, 2));
    renderZone();
    if (isNum(th.entry_z)) P.setText("th-entry", fmtTh(th.entry_z));
    if (isNum(th.exit_z)) P.setText("th-exit", fmtTh(th.exit_z));

    P.setText("spread-value", P.fmt(s.spread, dec.s));
    P.setText("spread-mean", P.fmt(s.spread_mean, dec.s));
    P.setText("spread-std", P.fmt(s.spread_std, dec.s));

    P.setText("quality-score", P.fmt(s.quality_score, 1));
    P.setText("quality-total", P.fmt(s.quality_score, 1) + " pts");
    var meter = $("quality-meter");
    if (meter) meter.style.width = (isNum(s.quality_score) ? Math.max(0, Math.min(100, s.quality_score)) : 0) + "%";

    var w = s.warmup || { bars: 0, required: 0 };
    var warm = $("warmup");
    if (warm) {
      P.setText(warm, s.ready ? "ready" : s.source === "none" ? "not computed yet" : (w.bars || 0) + "/" + (w.required || 0) + " bars");
      setData(warm, "data-ready", s.ready ? "true" : "false");
    }
    var pct = w.required ? Math.min(100, (100 * (w.bars || 0)) / w.required) : 0;
    var bar = $("warmup-bar");
    if (bar) bar.style.width = (s.ready ? 100 : pct).toFixed(1) + "%";
    setData($("warmup-progress"), "aria-valuenow", (s.ready ? 100 : pct).toFixed(0));
    P.setText("warmup-count", warmupText(s));
    var minBars = document.querySelectorAll(".chart-empty .min-bars");
    for (var k = 0; k < minBars.length; k++) if (w.required) P.setText(minBars[k], String(w.required));
    var warmTile = warm && warm.closest(".tile");
    if (warmTile) setData(warmTile, "data-ready", s.ready ? "true" : "false");

    P.setText("m-zscore", P.fmtSigned(s.zscore, 2));
    P.setText("m-hedge_ratio", P.fmt(s.hedge_ratio, 4));
    P.setText("price-b-beta", P.fmt(s.hedge_ratio, 4));
    P.setText("m-intercept", P.fmt(s.intercept, dec.s));
    P.setText("m-r_squared", P.fmt(s.r_squared, 4));
    P.setText("m-correlation", P.fmt(s.correlation, 3));
    P.setText("m-price_correlation", P.fmt(s.price_correlation, 3));
    P.setText("m-adf_stat", isNum(s.adf_stat) ? P.fmt(s.adf_stat, 3) + (isNum(s.adf_lag) ? "  lag " + s.adf_lag : "") : "—");
    P.setText("m-adf_pvalue", P.fmtP(s.adf_pvalue));
    P.setText("m-coint_pvalue", P.fmtP(s.coint_pvalue));
    P.setText(
      "m-half_life",
      isNum(s.half_life) ? P.fmt(s.half_life, 1) + " bars · " + P.duration(s.half_life_seconds) : s.ready ? "— (not reverting)" : "—"
    );
    P.setText("m-spread_std", P.fmt(s.spread_std, dec.s));

    renderGates(s);

    renderQuality(s.quality);
    renderState();
  }

  // -- live prices --------------------------------------------------------------

  function flash(el, up) {
    if (!el) return;
    el.classList.remove("tick-up", "tick-down");
    void el.offsetWidth; // restart the animation
    el.classList.add(up ? "tick-up" : "tick-down");
  }

  function onPrices(m) {
    if (!isNum(m.price_a) || !isNum(m.price_b)) return;
    var prev = page.prices;
    var a = $("price-a");
    var b = $("price-b");
    P.setText(a, P.fmt(m.price_a, dec.a));
    P.setText(b, P.fmt(m.price_b, dec.b));
    if (isNum(prev.a) && m.price_a !== prev.a) flash(a, m.price_a > prev.a);
    if (isNum(prev.b) && m.price_b !== prev.b) flash(b, m.price_b > prev.b);
    page.prices = { a: m.price_a, b: m.price_b, t: isNum(m.t) ? m.t : Date.now() };
    P.setText("price-a-src", "live");
    P.setText("price-time", P.hms(page.prices.t) + " UTC");
    var last = page.tail.length ? page.tail[page.tail.length - 1].t : -Infinity;
    if (isNum(m.t) && m.t >= last) {
      page.tail.push({ t: m.t, a: m.price_a, b: m.price_b });
      trimTail();
      scheduleLive();
    }
  }

  // -- alerts -------------------------------------------------------------------

  var alertsById = {};

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  /** The z an alert fired on: its signal z, or the in-sample z of alerts recorded before signals. */
  function alertZText(a) {
    return isNum(a.signal_zscore) ? "signal z " + P.fmtSigned(a.signal_zscore, 2) : "z " + P.fmtSigned(a.zscore, 2) + " in-sample";
  }

  function alertItem(a, isNew) {
    var li = el("li", "alert kind-" + a.kind + " dir-" + a.direction + (isNew ? " is-new" : ""));
    li.setAttribute("data-alert-id", String(a.id));
    var top = el("div", "alert-top");
    top.appendChild(el("span", "kind kind-" + a.kind, a.kind));
    top.appendChild(el("span", "dir dir-" + a.direction, String(a.direction || "").replace("_", " ")));
    top.appendChild(el("span", "mono alert-z", alertZText(a)));
    top.appendChild(el("time", "mono muted", P.stamp(a.created_at)));
    if (isNew) top.appendChild(el("span", "new-tag", "new"));
    li.appendChild(top);
    li.appendChild(el("div", "alert-msg", a.message || ""));
    return li;
  }

  function addAlert(a, isNew) {
    if (!a || a.id === undefined || a.id === null) return false;
    var key = String(a.id);
    if (alertsById[key]) return false;
    alertsById[key] = a;
    var feed = $("alert-feed");
    if (!feed) return false;
    // Keep newest first even when a backfill brings an older one.
    var li = alertItem(a, isNew);
    var before = null;
    for (var node = feed.firstElementChild; node; node = node.nextElementSibling) {
      var other = alertsById[node.getAttribute("data-alert-id")];
      if (other && (other.created_at < a.created_at || (other.created_at === a.created_at && other.id < a.id))) {
        before = node;
        break;
      }
    }
    feed.insertBefore(li, before);
    while (feed.children.length > FEED_MAX) feed.removeChild(feed.lastElementChild);
    var empty = $("alert-empty");
    if (empty) empty.hidden = true;
    if (isNew) {
      positionsWatchUntil = Date.now() + 5000;
      readPositions();
      followAlert(a);
      renderState();
      renderZone();
      if (charts.zscore) drawSeries();
    }
    return true;
  }

  /**
   * The rule's state after an alert, when it is newer than the last one followed: an entry opens
   * and disarms; an exit closes, re-arming only when the spread reverted. An older alert that a
   * backfill brings late changes nothing.
   */
  function followAlert(a) {
    var last = page.ruleAlert;
    if (last && (a.bar_time < last.bar_time || (a.bar_time === last.bar_time && a.id <= last.id))) return;
    page.ruleAlert = { bar_time: a.bar_time, id: a.id };
    if (a.kind === "entry") {
      page.openEntry = { open_direction: a.direction, open_since: a.bar_time };
      page.armed = false;
    } else if (a.kind === "exit") {
      page.openEntry = null;
      page.armed = a.reason === "reverted";
    }
  }

  function backfillAlerts() {
    if (!cfg.alerts_url) return;
    fetch(cfg.alerts_url, { headers: { Accept: "application/json" }, cache: "no-store" })
      .then(function (r) {
        return r.ok ? r.json() : [];
      })
      .then(function (list) {
        if (!Array.isArray(list)) return;
        var added = false;
        for (var i = list.length - 1; i >= 0; i--) added = addAlert(list[i], true) || added;
        if (added && charts.zscore) drawSeries();
      })
      .catch(function () {
        /* the next reconnect retries */
      });
  }

  // -- paper position ---------------------------------------------------------------

  function openPosition() {
    for (var i = 0; i < page.positions.length; i++) if (page.positions[i].open) return page.positions[i];
    return null;
  }

  /** A number to 6 significant digits, written out (dashboard.views.significant_text). */
  function sig6(v) {
    if (!isNum(v)) return "—";
    var t = String(Number(v.toPrecision(6)));
    return t === "-0" ? "0" : t;
  }

  function qtyText(q) {
    return (isNum(q) && q > 0 ? "+" : "") + sig6(q);
  }

  /** "pos", "neg" or "" for money as shown with 2 decimals (a PnL that shows 0.00 is neither). */
  function toneOf(v) {
    if (!isNum(v) || Math.round(v * 100) === 0) return "";
    return v > 0 ? "pos" : "neg";
  }

  function exitStamp(entry, exit) {
    var shown = P.stamp(exit);
    return shown.slice(0, 5) !== P.stamp(entry).slice(0, 5) ? shown : shown.slice(6);
  }

  /** One figure of the card; a money figure's label names its currency (the quote). */
  function metric(label, id, text, title, wide, money) {
    var div = el("div", wide ? "pos-wide" : "");
    var dt = el("dt", "", label);
    if (money) {
      dt.appendChild(document.createTextNode(" "));
      dt.appendChild(el("span", "muted", cfg.quote));
    }
    if (title) dt.title = title;
    div.appendChild(dt);
    var dd = el("dd", "mono", text);
    dd.id = id;
    div.appendChild(dd);
    return div;
  }

  /** The card as the server renders it (dashboard.views.position_card), from the API's positions. */
  function renderPosition() {
    var panel = $("position-panel");
    var body = $("pos-body");
    if (!panel || !body) return;
    var pos = openPosition();
    var key = pos ? pos.id + ":" + pos.mark_time : "none";
    var frag = document.createDocumentFragment();
    if (pos) {
      var long = pos.direction === "long_spread";
      var box = el("div", "pos-open");
      box.setAttribute("data-position-id", String(pos.id));
      var head = el("div", "pos-head");
      head.appendChild(el("span", "dir dir-" + pos.direction, long ? "long spread" : "short spread"));
      head.appendChild(document.createTextNode(" "));
      head.appendChild(
        el("span", "legs muted", long ? "(buy " + cfg.symbol_a + ", sell " + cfg.symbol_b + ")" : "(sell " + cfg.symbol_a + ", buy " + cfg.symbol_b + ")")
      );
      box.appendChild(head);
      var tone = toneOf(pos.unrealised_pnl);
      var pnl = el("div", "pos-pnl");
      var value = el("span", "pos-pnl-value mono " + tone, P.fmtSigned(pos.unrealised_pnl, 2));
      value.id = "pos-unrealised";
      pnl.appendChild(value);
      pnl.appendChild(document.createTextNode(" "));
      var pct = el("span", "mono " + tone, P.fmtSigned(pos.unrealised_pct, 2) + " %");
      pct.id = "pos-unrealised-pct";
      pnl.appendChild(pct);
      pnl.appendChild(document.createTextNode(" "));
      pnl.appendChild(el("span", "muted small", "unrealised, " + cfg.quote + " · net of entry fees"));
      box.appendChild(pnl);
      var dl = el("dl", "metrics pos-metrics");
      dl.appendChild(metric("Since", "pos-since", P.stamp(pos.opened_at) + " UTC", "", true));
      dl.appendChild(metric("Marked at", "pos-mark", isNum(pos.mark_time) ? P.stamp(pos.mark_time) + " UTC" : "not marked yet", "", true));
      dl.appendChild(metric("Own spread", "pos-spread", P.fmt(pos.spread, dec.s), "its own spread at the mark: A − β at entry × B", false, true));
      dl.appendChild(metric("β at entry", "pos-beta", P.fmt(pos.hedge_ratio, 4), "the entry signal's hedge ratio"));
      dl.appendChild(metric("Qty " + cfg.symbol_a, "pos-qty-a", qtyText(pos.qty_a), "+ bought, − sold"));
      dl.appendChild(metric("Qty " + cfg.symbol_b, "pos-qty-b", qtyText(pos.qty_b), "+ bought, − sold"));
      dl.appendChild(metric("Entry " + cfg.symbol_a, "pos-entry-a", P.fmt(pos.entry_price_a, dec.a + 2), "fill, slippage included"));
      dl.appendChild(metric("Entry " + cfg.symbol_b, "pos-entry-b", P.fmt(pos.entry_price_b, dec.b + 2), "fill, slippage included"));
      dl.appendChild(metric("Notional", "pos-notional", P.fmt(pos.notional, 2), "", false, true));
      dl.appendChild(metric("Entry fees", "pos-fees", P.fmt(pos.entry_fees, 2), "", false, true));
      box.appendChild(dl);
      frag.appendChild(box);
    } else {
      var none = el(
        "p",
        "muted small pos-none",
        "No open position. An entry alert opens one at its bar's closes (the signal's β, fee 5 bps and slippage 1 bps a leg, notional 10,000); its exit alert closes it."
      );
      none.id = "pos-none";
      frag.appendChild(none);
    }
    var sub = el("h3", "sub-head", "Closed ");
    sub.appendChild(el("span", "muted pos-closed-note", "newest first"));
    frag.appendChild(sub);
    var list = el("ul", "pos-closed");
    list.id = "pos-closed";
    var shown = 0;
    for (var i = 0; i < page.positions.length && shown < cfg.positions_closed_shown; i++) {
      var c = page.positions[i];
      if (c.open) continue;
      shown++;
      key += "|" + c.id;
      var li = el("li");
      li.setAttribute("data-position-id", String(c.id));
      li.appendChild(el("span", "dir dir-" + c.direction, String(c.direction).split("_")[0]));
      li.appendChild(document.createTextNode(" "));
      li.appendChild(el("span", "mono pos-times", P.stamp(c.opened_at) + " → " + exitStamp(c.opened_at, c.closed_at)));
      li.appendChild(document.createTextNode(" "));
      li.appendChild(el("span", "mono pnl " + toneOf(c.realised_pnl), P.fmtSigned(c.realised_pnl, 2)));
      li.appendChild(document.createTextNode(" "));
      var reason = POSITION_REASONS[c.reason] || String(c.reason || "").replace(/_/g, " ");
      li.appendChild(el("span", "muted small pos-reason", reason + " · held " + P.duration((c.closed_at - c.opened_at) / 1000)));
      list.appendChild(li);
    }
    if (!shown) list.appendChild(el("li", "muted small pos-closed-empty", "None closed yet."));
    frag.appendChild(list);
    if (body.getAttribute("data-key") === key) return;
    body.setAttribute("data-key", key);
    body.textContent = "";
    body.appendChild(frag);
    setData(panel, "data-open", pos ? "true" : "false");
    scheduleDraw();
  }

  var positionsBusy = false;
  var positionsAgain = false;
  var positionsWatchUntil = 0; // after an alert, the next snapshots read the positions too

  function readPositions() {
    if (!cfg.positions_url) return;
    if (positionsBusy) {
      positionsAgain = true;
      return;
    }
    positionsBusy = true;
    page.positionReads++;
    fetch(cfg.positions_url, { headers: { Accept: "application/json" }, cache: "no-store" })
      .then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.json();
      })
      .then(function (list) {
        if (!Array.isArray(list)) return;
        page.positions = list;
        renderPosition();
      })
      .catch(function () {
        /* the next snapshot or alert reads them again */
      })
      .then(function () {
        positionsBusy = false;
        if (positionsAgain) {
          positionsAgain = false;
          readPositions();
        }
      });
  }

  // -- websocket ----------------------------------------------------------------

  var ws = null;
  var backoff = RECONNECT_MIN_MS;
  var retryTimer = null;
  var stopped = false;
  var drawPending = false;

  function scheduleDraw() {
    if (drawPending) return;
    drawPending = true;
    var run = function () {
      drawPending = false;
      drawSeries();
    };
    if (document.hidden) setTimeout(run, 0);
    else window.requestAnimationFrame(run);
  }

  /** The page's socket, told to the one live indicator (common.js), which joins it to the feed's state. */
  function setWs(state, note) {
    page.connected = state === "live";
    P.setSocket(state, note);
  }

  function handle(msg) {
    if (!msg || typeof msg !== "object") return;
    var type = msg.type;
    if (type === "snapshot") {
      page.messages.snapshot++;
      followRule(msg);
      page.snapshot = msg;
      renderSnapshot();
      scheduleDraw();
      if (openPosition() || Date.now() < positionsWatchUntil) readPositions();
    } else if (type === "series") {
      page.messages.series++;
      delete msg.type;
      setSeries(msg);
    } else if (type === "series_delta") {
      page.messages.series_delta++;
      onSeriesDelta(msg);
    } else if (type === "prices") {
      page.messages.prices++;
      onPrices(msg);
    } else if (type === "alert") {
      page.messages.alert++;
      if (msg.pair === undefined || msg.pair === cfg.pair) addAlert(msg, true);
    } else if (type === "health") {
      page.messages.health++;
      delete msg.type;
      P.pushedHealth(msg);
    }
  }

  /** What a point keeps once it is in the window (dashboard/deltas.py POINT_KEYS): its time, prices and recorded signal z. */
  var POINT_KEYS = ["t", "price_a", "price_b", "signal_zscore"];

  /**
   * The series moved by a delta (dashboard/deltas.py series_delta_apply): drop the
   * oldest points, append the new ones (the signal z of a point is kept as it was
   * recorded, like its prices), and put the spread and z-score of every point under
   * the window's new model (hedge ratio, mean, std): the same two IEEE operations per
   * point the server makes, so the arrays equal /api/pairs/{id}/series/ exactly (the
   * server checks before it sends a delta; the browser test checks the page). Null
   * when the page's series or the delta lacks a key (then the whole series is fetched).
   */
  function applyDelta(base, d) {
    var s = { pair: d.pair, as_of: d.as_of };
    for (var k = 0; k < POINT_KEYS.length; k++) {
      var key = POINT_KEYS[k];
      if (!Array.isArray(base[key]) || !Array.isArray(d[key])) return null;
      s[key] = base[key].slice(d.drop).concat(d[key]);
    }
    var beta = d.hedge_ratio;
    var mean = d.spread_mean;
    var std = d.spread_std;
    s.spread = [];
    s.zscore = [];
    for (var i = 0; i < s.t.length; i++) {
      var a = s.price_a[i];
      var b = s.price_b[i];
      var sp = isNum(beta) && isNum(a) && isNum(b) ? a - beta * b : null;
      if (!isFinite(sp)) sp = null;
      var z = sp !== null && isNum(mean) && isNum(std) && std > 0 ? (sp - mean) / std : null;
      if (!isFinite(z)) z = null;
      s.spread.push(sp);
      s.zscore.push(z);
    }
    return s;
  }

  var refetching = false;

  function onSeriesDelta(d) {
    if (page.series.as_of === d.as_of) return; // the series sent on connect is already this one
    var moved = page.series.as_of === d.base_as_of ? applyDelta(page.series, d) : null;
    if (moved === null) {
      // A push was missed (the page opened between two snapshots): the whole series once more.
      if (refetching) return;
      refetching = true;
      fetch("/api/pairs/" + cfg.pair + "/series/", { headers: { Accept: "application/json" }, cache: "no-store" })
        .then(function (r) {
          if (!r.ok) throw new Error("HTTP " + r.status);
          return r.json();
        })
        .then(function (series) {
          if (!isNum(page.series.as_of) || series.as_of >= page.series.as_of) setSeries(series);
        })
        .catch(function () {
          /* the next snapshot's delta, or a reconnect, brings it */
        })
        .then(function () {
          refetching = false;
        });
      return;
    }
    setSeries(moved);
  }

  function setSeries(series) {
    page.series = series;
    trimTail();
    scheduleDraw();
  }

  function scheduleReconnect() {
    if (retryTimer || stopped) return;
    var wait = backoff * (0.5 + Math.random() * 0.5); // jittered: pages do not all come back at once
    backoff = Math.min(backoff * 2, RECONNECT_MAX_MS);
    setWs("down", "live updates disconnected; reconnecting in " + Math.round(wait / 1000) + " s");
    retryTimer = setTimeout(connect, wait);
  }

  function connect() {
    retryTimer = null;
    if (stopped) return;
    var url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + cfg.ws_path;
    try {
      ws = new WebSocket(url);
    } catch (e) {
      scheduleReconnect();
      return;
    }
    ws.onopen = function () {
      backoff = RECONNECT_MIN_MS;
      setWs("live");
      backfillAlerts(); // whatever fired while the socket was down
      readPositions();
    };
    ws.onmessage = function (ev) {
      var msg;
      try {
        msg = JSON.parse(ev.data);
      } catch (e) {
        return;
      }
      handle(msg);
    };
    ws.onclose = function (ev) {
      var wasLive = page.connected;
      ws = null;
      if (wasLive) page.reconnects++;
      if (ev && ev.code === 4404) {
        stopped = true;
        setWs("down", "this pair no longer exists");
        return;
      }
      scheduleReconnect();
    };
    ws.onerror = function () {
      /* onclose follows and schedules the retry */
    };
  }

  // -- feed health --------------------------------------------------------------

  var lastHealth = null;

  function renderHealthAge() {
    // The newest trade time known: the feed's status or, fresher, the live prices.
    var age = P.tickAge(lastHealth);
    if (isNum(page.prices.t)) {
      var live = Math.max(0, (Date.now() - page.prices.t) / 1000);
      age = age === null ? live : Math.min(age, live);
    }
    P.setText("health-age", age === null ? "—" : P.duration(age) + " ago");
    var cell = $("health-age");
    if (cell) setData(cell, "data-ok", age === null ? "unknown" : age < 5 ? "true" : "false");
  }

  /** Reconnects, and the attempts that failed when there are any ("0 · 6 failed"). */
  function reconnectsText(f) {
    if (!isNum(f.reconnects)) return "—";
    return f.reconnects + (f.connect_failures ? " · " + f.connect_failures + " failed" : "");
  }

  function renderHealth(h) {
    lastHealth = h;
    var f = h.feed || {};
    var status = $("health-status");
    if (status) {
      setData(status, "data-status", h.status || "unknown");
      P.setText(status, h.status || "unknown");
    }
    var conn = $("health-connected");
    if (conn) {
      setData(conn, "data-ok", f.connected ? "true" : "false");
      P.setText(conn, f.connected ? "yes" : "no");
    }
    P.setText("health-reconnects", reconnectsText(f));
    P.setText("health-gaps-filled", String(isNum(f.gaps_filled) ? f.gaps_filled : "—"));
    P.setText("health-gaps-unfilled", String(isNum(f.gaps_unfilled) ? f.gaps_unfilled : "—"));
    var unfilled = $("health-gaps-unfilled");
    if (unfilled) setData(unfilled, "data-ok", f.gaps_unfilled ? "false" : "true");
    P.setText("health-ticks", isNum(f.ticks_total) ? P.fmt(f.ticks_total, 0) : "—");
    P.setText("health-mode", h.mode || "—");
    var problems = $("health-problems");
    if (problems) {
      var html = (h.problems || [])
        .map(function (p) {
          var li = document.createElement("li");
          li.textContent = p;
          return li.outerHTML;
        })
        .join("");
      if (problems.getAttribute("data-html") !== html) {
        problems.innerHTML = html;
        problems.setAttribute("data-html", html);
      }
    }
    renderHealthAge();
  }

  // -- start ----------------------------------------------------------------------

  function start() {
    var initial = P.readJSON("initial-alerts") || [];
    // The rule's state came with the page: it follows alerts newer than the newest shown with it.
    if (initial.length) page.ruleAlert = { bar_time: initial[0].bar_time, id: initial[0].id };
    var existing = document.querySelectorAll("#alert-feed > li[data-alert-id]");
    var byId = {};
    for (var i = 0; i < initial.length; i++) byId[String(initial[i].id)] = initial[i];
    for (var j = 0; j < existing.length; j++) {
      var id = existing[j].getAttribute("data-alert-id");
      if (byId[id]) alertsById[id] = byId[id];
    }
    makeCharts();
    renderSnapshot();
    renderPosition();
    drawSeries();
    P.onHealth(renderHealth);
    setInterval(renderHealthAge, 1000);
    document.addEventListener("visibilitychange", function () {
      if (!document.hidden) {
        scheduleDraw();
        scheduleLive();
      }
    });
    setWs("connecting", "connecting live updates…");
    connect();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
