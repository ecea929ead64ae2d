/* pairs: a pair's backtests.
 *
 * The form (staff) POSTs to /api/pairs/<id>/backtests/ with the session's CSRF token
 * and shows a 400's messages beside their fields; the run is then polled every second
 * at /api/backtests/<id>/ (queued, then running with its progress) and, once done or
 * failed, its part of the page is fetched as the server renders it
 * (/pairs/<id>/backtest/<run>/) and swapped in. The page computes no figure: the
 * summary, tables and words are the server's, and so are the chart points (the
 * equity and its drawdown, thinned to the lowest and highest of each stretch). The
 * list of runs comes from /api/pairs/<id>/backtests/; ?run=ID selects one.
 *
 * The two charts zoom and pan together (common.js ChartGroup: range buttons, reset).
 *
 * Hooks for tests: #bt-run[data-status], #bt-progress-text, #bt-form-errors,
 * .field-error[data-for], canvases #chart-equity/#chart-drawdown with data-points,
 * #legend-equity/#legend-drawdown, #chart-ranges, #chart-reset, #chart-view,
 * #bt-runs > li[data-run-id], window.backtestPage (the states seen, the charts, chartGroup).
 */
(function () {
  "use strict";

  var P = window.Pairs;
  var cfg = P && P.readJSON("backtest-config");
  if (!cfg) return;

  var POLL_MS = 1000;
  var FIELDS = ["start", "end", "days", "fee_bps", "slippage_bps", "notional", "delay_bars", "funding", "grid"];

  var C = P.colors;

  var page = {
    runs: P.readJSON("backtest-runs") || [],
    selected: cfg.selected,
    seen: [], // the states the selected run was shown in: "queued", "running 40 %", "done"...
    charts: {},
    polls: 0,
    asked: null, // the run this page's form asked for
  };
  window.backtestPage = page;

  var $ = function (id) {
    return document.getElementById(id);
  };
  var isNum = P.isNum;

  var el = P.el;

  function seen(state) {
    if (page.seen[page.seen.length - 1] !== state) page.seen.push(state);
  }

  // -- charts -------------------------------------------------------------------

  function points(line) {
    var out = [];
    if (!line || !line.t || !line.y) return out;
    for (var i = 0; i < line.t.length && i < line.y.length; i++) {
      if (isNum(line.t[i]) && isNum(line.y[i])) out.push({ x: line.t[i], y: line.y[i] });
    }
    return out;
  }

  function zeroLine(pts) {
    if (!pts.length) return [];
    return [
      { x: pts[0].x, y: 0 },
      { x: pts[pts.length - 1].x, y: 0 },
    ];
  }

  function drawChart(group, key, canvasId, label, color, fill, line) {
    var unit = P.quoteOf(cfg.symbol_a);
    var canvas = $(canvasId);
    if (!canvas) return;
    var pts = points(line);
    canvas.setAttribute("data-points", String(pts.length));
    var overlay = document.querySelector('.chart-empty[data-for="' + canvasId + '"]');
    if (overlay) overlay.hidden = pts.length > 0;
    if (!pts.length || typeof window.Chart !== "function") return;
    page.charts[key] = new window.Chart(canvas, {
      type: "line",
      data: {
        datasets: [
          P.lineDataset(label, color, {
            data: pts,
            backgroundColor: fill,
            pointBackgroundColor: color,
            fill: "origin",
            main: true,
            legend: label + " (" + unit + ")",
            legendFill: fill,
          }),
          P.lineDataset("0", C.zero, { data: zeroLine(pts), borderWidth: 1, pointHoverRadius: 0, hline: true }),
        ],
      },
      options: P.chartOptions(
        { x: P.timeAxis(), y: P.valueAxis() },
        function (ctx) {
          return " " + label + "  " + P.fmtSigned(ctx.parsed.y, 2) + " " + unit;
        },
        group.zoomOptions()
      ),
    });
    group.add(page.charts[key]);
    P.renderLegend(page.charts[key], $("legend-" + key));
  }

  /** The run's equity and drawdown, zoomed and panned together over its range (a run's charts do not move). */
  function drawCharts() {
    for (var key in page.charts) page.charts[key].destroy();
    page.charts = {};
    page.chartGroup = null;
    var data = P.readJSON("bt-chart-data");
    if (!data) return;
    P.chartTheme();
    var group = new P.ChartGroup({
      intervalMs: data.interval_ms || cfg.interval_ms,
      live: false,
      tools: { ranges: $("chart-ranges"), reset: $("chart-reset"), state: $("chart-view") },
    });
    drawChart(group, "equity", "chart-equity", "equity", C.equity, C.equityFill, data.equity);
    drawChart(group, "drawdown", "chart-drawdown", "drawdown", C.drawdown, C.drawdownFill, data.drawdown);
    var t = (data.equity && data.equity.t) || [];
    group.setBounds(t[0], t[t.length - 1]);
    for (var name in page.charts) page.charts[name].update("none");
    page.chartGroup = group;
  }

  // -- the selected run ------------------------------------------------------------

  function url(template, id) {
    return template.replace(/\/0\/$/, "/" + id + "/");
  }

  function selectRun(id) {
    page.selected = id;
    if (window.history && window.history.replaceState) {
      window.history.replaceState(null, "", cfg.page_url + "?run=" + id);
    }
    markSelected();
  }

  function renderProgress(run) {
    var bar = $("bt-progress");
    var text = $("bt-progress-text");
    var badge = $("bt-status");
    var pct = Math.round(100 * (isNum(run.progress) ? run.progress : 0));
    if (badge) {
      badge.setAttribute("data-status", run.status);
      P.setText(badge, run.status);
    }
    var head = $("bt-run");
    if (head) head.setAttribute("data-status", run.status);
    if (bar) {
      bar.setAttribute("data-status", run.status);
      bar.setAttribute("aria-valuenow", String(pct));
      var fill = bar.querySelector("span");
      if (fill) fill.style.width = pct + "%";
    }
    if (run.status === "queued") {
      P.setText(text, "queued: waiting for the runner, which takes one backtest at a time every 2 s");
      seen("queued");
    } else if (run.status === "running") {
      P.setText(text, "running: " + pct + " %");
      seen("running");
    }
  }

  var pollTimer = null;

  function poll(id) {
    if (pollTimer) clearTimeout(pollTimer);
    pollTimer = null;
    if (page.selected !== id) return;
    page.polls++;
    fetch(url(cfg.backtest_url, id), { headers: { Accept: "application/json" }, cache: "no-store" })
      .then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.json();
      })
      .then(function (run) {
        if (page.selected !== id) return;
        if (run.status === "done" || run.status === "failed") {
          seen(run.status);
          if (page.asked === id) setFormStatus("backtest #" + id + " " + run.status, run.status === "failed");
          loadRun(id);
          refreshRuns();
          return;
        }
        renderProgress(run);
        pollTimer = setTimeout(function () {
          poll(id);
        }, POLL_MS);
      })
      .catch(function () {
        P.setText("bt-progress-text", "the server cannot be reached; trying again");
        pollTimer = setTimeout(function () {
          poll(id);
        }, 2 * POLL_MS);
      });
  }

  /** The run's part of the page, as the server renders it; then its charts, or its progress polled. */
  function loadRun(id) {
    return fetch(url(cfg.result_url, id), { headers: { Accept: "text/html" }, cache: "no-store" })
      .then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.text();
      })
      .then(function (html) {
        if (page.selected !== id) return;
        $("bt-result").innerHTML = html;
        afterRender();
      })
      .catch(function () {
        setFormStatus("the result could not be loaded; reload the page", true);
      });
  }

  function afterRender() {
    var head = $("bt-run");
    var status = head ? head.getAttribute("data-status") : null;
    drawCharts();
    if (status === "queued" || status === "running") {
      var bar = $("bt-progress");
      renderProgress({ status: status, progress: bar ? Number(bar.getAttribute("aria-valuenow")) / 100 : 0 });
      pollTimer = setTimeout(function () {
        poll(page.selected);
      }, POLL_MS);
    } else if (status) {
      seen(status);
    }
  }

  // -- the runs --------------------------------------------------------------------

  function runItem(run) {
    var li = el("li", "bt-run-item");
    li.setAttribute("data-run-id", String(run.id));
    li.setAttribute("data-status", run.status);
    var a = el("a");
    a.href = cfg.page_url + "?run=" + run.id;
    var top = el("div", "bt-run-line");
    top.appendChild(el("span", "mono bt-run-id", "#" + run.id));
    top.appendChild(el("span", "badge bt-badge", run.status));
    var s = run.summary;
    if (s) {
      top.appendChild(el("span", "mono bt-run-net " + (s.net_pnl > 0 ? "pos" : s.net_pnl < 0 ? "neg" : ""), P.fmtSigned(s.net_pnl, 2)));
      top.appendChild(el("span", "muted small", s.trades + " trade" + (s.trades === 1 ? "" : "s")));
    } else if (run.status === "running") {
      top.appendChild(el("span", "muted small", Math.round(100 * run.progress) + " %"));
    }
    a.appendChild(top);
    var p = run.params || {};
    var costs = "fee " + p.fee_bps + " · slip " + p.slippage_bps + " · delay " + p.delay_bars + (p.funding ? "" : " · no funding") + (p.grid ? " · grid" : "");
    a.appendChild(el("div", "muted small mono bt-run-range", P.stamp(p.start) + " → " + P.stamp(p.end)));
    a.appendChild(el("div", "muted small bt-run-costs", costs));
    li.appendChild(a);
    return li;
  }

  function renderRuns() {
    var list = $("bt-runs");
    if (!list) return;
    list.textContent = "";
    for (var i = 0; i < page.runs.length; i++) list.appendChild(runItem(page.runs[i]));
    var empty = $("bt-runs-empty");
    if (empty) empty.hidden = page.runs.length > 0;
    markSelected();
  }

  function markSelected() {
    var items = document.querySelectorAll("#bt-runs > li");
    for (var i = 0; i < items.length; i++) {
      var on = Number(items[i].getAttribute("data-run-id")) === page.selected;
      if (on) items[i].setAttribute("aria-current", "true");
      else items[i].removeAttribute("aria-current");
    }
  }

  function refreshRuns() {
    return fetch(cfg.runs_url, { headers: { Accept: "application/json" }, cache: "no-store" })
      .then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.json();
      })
      .then(function (runs) {
        if (!Array.isArray(runs)) return;
        page.runs = runs;
        renderRuns();
      })
      .catch(function () {
        /* the list stays as it was; the next run refreshes it */
      });
  }

  // -- the form --------------------------------------------------------------------

  var form = $("bt-form");

  /** The field a message of the engine starts with ("fee_bps must be >= 0, not -1.0"), if any. */
  function fieldNamed(message) {
    for (var i = 0; i < FIELDS.length; i++) if (message.indexOf(FIELDS[i] + " ") === 0) return FIELDS[i];
    return null;
  }

  var staff = P.staffForm("bt", FIELDS, fieldNamed);
  var setFormStatus = staff.status;

  /** The form as the API takes it: what is typed, as typed (the server judges it); days only without a start. */
  function body() {
    var out = {};
    var start = form.elements.start.value.trim();
    var end = form.elements.end.value.trim();
    if (start) out.start = start;
    if (end) out.end = end;
    var days = form.elements.days.value.trim();
    if (!start && days) out.days = days;
    ["fee_bps", "slippage_bps", "notional", "delay_bars"].forEach(function (name) {
      var v = form.elements[name].value.trim();
      if (v) out[name] = v;
    });
    out.funding = form.elements.funding.checked;
    out.grid = form.elements.grid.checked;
    return out;
  }

  function submit(ev) {
    ev.preventDefault();
    staff.clear();
    var button = $("bt-submit");
    if (button) button.disabled = true;
    setFormStatus("asking…", false);
    staff
      .post(cfg.runs_url, body())
      .then(function (answer) {
        if (answer.status === 202 && answer.data) {
          setFormStatus("backtest #" + answer.data.id + " queued", false);
          page.asked = answer.data.id;
          page.seen = [];
          selectRun(answer.data.id);
          page.runs.unshift(answer.data);
          renderRuns();
          loadRun(answer.data.id);
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

  function syncDays() {
    // Without a start the range is days back from the end; with one, days plays no part.
    if (!form) return;
    var days = form.elements.days;
    days.disabled = !!form.elements.start.value;
  }

  // -- start ------------------------------------------------------------------------

  function start() {
    renderRuns();
    afterRender();
    if (form) {
      form.addEventListener("submit", submit);
      form.elements.start.addEventListener("input", syncDays);
      form.elements.start.addEventListener("change", syncDays);
      syncDays();
    }
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
