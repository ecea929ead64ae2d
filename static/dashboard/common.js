/* pairs dashboard: shared helpers (formatting, embedded JSON, feed health: polled, or told by the page's websocket;
 * the charts' palette, look and tooltip; the staff forms' errors).
 *
 * The page computes no statistic: every number comes from the server and is only
 * formatted here. Times are shown in UTC.
 */
(function () {
  "use strict";

  var groupers = {};

  function isNum(v) {
    return typeof v === "number" && isFinite(v);
  }

  /** A number with exactly `d` decimals and thousands separators; "—" for null/NaN. */
  function fmt(v, d) {
    if (!isNum(v)) return "—";
    d = Math.max(0, Math.min(10, d | 0));
    var f = groupers[d];
    if (!f) {
      f = groupers[d] = new Intl.NumberFormat("en-US", { minimumFractionDigits: d, maximumFractionDigits: d });
    }
    var s = f.format(v);
    return s === "-0" || /^-0\.0*$/.test(s) ? s.slice(1) : s;
  }

  /** A signed number: "+1.23" / "-1.23" (zero unsigned). */
  function fmtSigned(v, d) {
    var s = fmt(v, d);
    return isNum(v) && s !== "—" && v > 0 && !/^0\.?0*$/.test(s) ? "+" + s : s;
  }

  /** A p-value: 4 decimals, "<0.0001" below that. */
  function fmtP(v) {
    if (!isNum(v)) return "—";
    return v < 0.0001 ? "<0.0001" : fmt(v, 4);
  }

  function pad(n) {
    return n < 10 ? "0" + n : "" + n;
  }

  /** HH:MM:SS (UTC) of a ms timestamp. */
  function hms(ms) {
    if (!isNum(ms)) return "—";
    var d = new Date(ms);
    return pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes()) + ":" + pad(d.getUTCSeconds());
  }

  /** MM-DD HH:MM:SS (UTC) of a ms timestamp. */
  function stamp(ms) {
    if (!isNum(ms)) return "—";
    var d = new Date(ms);
    return pad(d.getUTCMonth() + 1) + "-" + pad(d.getUTCDate()) + " " + hms(ms);
  }

  /** The span of the bar opening at ``ms``: "11-30 06:15:07–06:15:08" (as the server's bar_span_text). */
  function span(ms, intervalMs) {
    if (!isNum(ms)) return "—";
    var start = stamp(ms);
    var end = stamp(ms + intervalMs);
    return start + "–" + (end.slice(0, 5) === start.slice(0, 5) ? end.slice(6) : end);
  }

  /** YYYY-MM-DD HH:MM:SS (UTC) of a ms timestamp. */
  function utc(ms) {
    if (!isNum(ms)) return "—";
    return new Date(ms).getUTCFullYear() + "-" + stamp(ms);
  }

  /** A duration in seconds, compact: "0.4 s", "12 s", "4m 05s", "2h 03m", "3d 04h" (as the server's duration_text). */
  function duration(s) {
    if (!isNum(s)) return "—";
    // Rounded half up to the smallest unit shown, then split (as pairs_project.common.display.duration_text).
    if (s < 0) s = 0;
    var tenths = Math.floor(s * 10 + 0.5);
    if (tenths < 100) return (tenths / 10).toFixed(1) + " s";
    var whole = Math.floor(s + 0.5);
    if (whole < 60) return whole + " s";
    if (whole < 3600) return Math.floor(whole / 60) + "m " + pad(whole % 60) + "s";
    var minutes = Math.floor(s / 60 + 0.5);
    if (minutes < 60 * 48) return Math.floor(minutes / 60) + "h " + pad(minutes % 60) + "m";
    var hours = Math.floor(s / 3600 + 0.5);
    return Math.floor(hours / 24) + "d " + pad(hours % 24) + "h";
  }

  // -- chart time axes ---------------------------------------------------------

  var TIME_STEPS_S = [
    1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800,
    1209600, 2592000,
  ];

  /** A Chart.js afterBuildTicks hook: ticks at round UTC times (every 1 s ... 30 days) that fit the axis width. */
  function timeTicks(axis) {
    var min = axis.min;
    var max = axis.max;
    if (!isNum(min) || !isNum(max) || max <= min) {
      axis.ticks = isNum(min) ? [{ value: min }] : [];
      return;
    }
    var maxCount = Math.max(2, Math.floor((axis.chart.width || 600) / 90));
    var step = TIME_STEPS_S[TIME_STEPS_S.length - 1] * 1000;
    for (var i = 0; i < TIME_STEPS_S.length; i++) {
      if ((max - min) / (TIME_STEPS_S[i] * 1000) <= maxCount) {
        step = TIME_STEPS_S[i] * 1000;
        break;
      }
    }
    var ticks = [];
    for (var v = Math.ceil(min / step) * step; v <= max; v += step) ticks.push({ value: v });
    axis.ticks = ticks;
  }

  /** A tick label of a time axis spanning `span` ms: the date at midnights of long spans, minutes or seconds else. */
  function timeLabel(v, span) {
    if (span > 2 * 86400000) return v % 86400000 === 0 ? stamp(v).slice(0, 5) : stamp(v).slice(0, 11);
    if (v % 86400000 === 0 && span > 3600000) return stamp(v).slice(0, 5);
    return span > 3 * 3600000 ? hms(v).slice(0, 5) : hms(v);
  }

  // -- charts: one palette, one look ---------------------------------------------
  //
  // Every chart of every page takes its colours from here, so a series has the same
  // colour wherever it is drawn (a leg, the spread, the signal, the thresholds, the
  // equity) and no two series of one chart share one. The CSS swatches of the price
  // tiles (--a, --b) are the same two colours.

  var COLORS = {
    a: "#f0b90b", // leg A
    b: "#6ea8fe", // leg B
    spread: "#2dd4bf",
    mean: "#9aa4b2",
    band1: "#8b7cf6",
    band2: "#c678dd",
    band2Fill: "rgba(198, 120, 221, 0.07)",
    position: "#ff8c42", // an open paper position's own spread
    z: "#e6edf3",
    entry: "#f85149",
    exit: "#d29922",
    zero: "rgba(255, 255, 255, 0.22)",
    long: "#3fb950",
    short: "#f85149",
    closed: "#9aa4b2", // an exit alert
    equity: "#3fb950",
    equityFill: "rgba(63, 185, 80, 0.08)",
    drawdown: "#f85149",
    drawdownFill: "rgba(248, 81, 73, 0.16)",
    gap: "rgba(139, 148, 158, 0.55)", // an outage: no bar for longer than the interval
    gapFill: "rgba(139, 148, 158, 0.13)",
    grid: "rgba(255, 255, 255, 0.06)",
    tick: "#8b949e",
  };

  var MONO = "ui-monospace, SFMono-Regular, Menlo, Consolas, monospace";

  /** Chart.js's defaults for every chart of the pages: the page's font, small, muted. */
  function chartTheme() {
    var Chart = window.Chart;
    if (typeof Chart !== "function" || Chart.$pairsTheme) return;
    Chart.$pairsTheme = true;
    Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
    Chart.defaults.font.size = 10;
    Chart.defaults.color = COLORS.tick;
  }

  /** A time x axis (ms) with ticks at round UTC times. */
  function timeAxis() {
    return {
      type: "linear",
      bounds: "data",
      afterBuildTicks: timeTicks,
      ticks: {
        color: COLORS.tick,
        maxRotation: 0,
        autoSkipPadding: 12,
        callback: function (v) {
          return timeLabel(v, this.max - this.min);
        },
      },
      grid: { color: COLORS.grid, drawTicks: false },
      border: { display: false },
    };
  }

  // The plot areas of a page's charts line up, so a time is at the same place on each: a chart pads each side by
  // what its group's widest value axes there take beyond its own (as laid out last). Value axes are at least
  // AXIS_WIDTH wide (narrower on a phone), so their widths seldom change with their labels.
  function axisWidth(chart) {
    return chart.width < 600 ? 44 : 56;
  }

  function axisFit(axis) {
    var least = axisWidth(axis.chart);
    if (axis.options.display !== false && axis.width < least) axis.width = least;
  }

  function sideWidths(chart) {
    var w = { left: 0, right: 0 };
    var scales = chart.scales || {};
    for (var id in scales) {
      var scale = scales[id];
      if (scale.isHorizontal() || scale.options.display === false) continue;
      if (scale.position === "left") w.left += scale.width;
      else if (scale.position === "right") w.right += scale.width;
    }
    return w;
  }

  function chartPadding(ctx) {
    var chart = ctx.chart;
    var peers = chart.$group ? chart.$group.charts : [chart];
    var own = sideWidths(chart);
    var most = { left: own.left, right: own.right };
    for (var i = 0; i < peers.length; i++) {
      var w = sideWidths(peers[i]);
      most.left = Math.max(most.left, w.left);
      most.right = Math.max(most.right, w.right);
    }
    return { top: 4, right: 4 + most.right - own.right, bottom: 0, left: most.left - own.left };
  }

  /** A value axis on `position` (left by default), `extra` merged over it. */
  function valueAxis(position, extra) {
    var axis = {
      type: "linear",
      position: position || "left",
      afterFit: axisFit,
      ticks: { color: COLORS.tick, maxTicksLimit: 6 },
      grid: { color: COLORS.grid, drawTicks: false },
      border: { display: false },
    };
    if (extra) for (var k in extra) axis[k] = extra[k];
    return axis;
  }

  /** A line dataset of {x, y} points (null y: a break), `extra` merged over it. */
  function lineDataset(label, color, extra) {
    var ds = {
      label: label,
      data: [],
      borderColor: color,
      backgroundColor: color,
      borderWidth: 1.5,
      pointRadius: 0,
      pointHoverRadius: 3,
      pointHitRadius: 4,
      tension: 0,
      spanGaps: false,
      fill: false,
    };
    if (extra) for (var k in extra) ds[k] = extra[k];
    return ds;
  }

  /**
   * The options every chart shares: no animation, pre-parsed points, one tooltip
   * style (the time in UTC as its title, `label(ctx)` a line per series, reference
   * lines (datasets with `hline`) left out, and under it the outage the pointer is
   * in, when it is in one); `zoom`, a ChartGroup's zoomOptions().
   */
  function chartOptions(scales, label, zoom) {
    var options = {
      animation: false,
      normalized: true,
      parsing: false,
      responsive: true,
      maintainAspectRatio: false,
      resizeDelay: 50,
      interaction: { mode: "nearest", axis: "x", intersect: false },
      layout: { padding: chartPadding },
      scales: scales,
      plugins: {
        legend: { display: false },
        decimation: { enabled: true, algorithm: "min-max" },
        tooltip: {
          backgroundColor: "rgba(13, 17, 23, 0.94)",
          borderColor: "rgba(255, 255, 255, 0.12)",
          borderWidth: 1,
          titleColor: "#e6edf3",
          bodyColor: "#c9d1d9",
          footerColor: "#e6edf3",
          titleFont: { family: MONO },
          bodyFont: { family: MONO },
          footerFont: { family: MONO, weight: "normal" },
          displayColors: true,
          boxWidth: 8,
          boxHeight: 8,
          filter: function (item) {
            return !item.dataset.hline;
          },
          callbacks: {
            title: function (items) {
              return items.length ? utc(items[0].parsed.x) + " UTC" : "";
            },
            label: label,
            footer: function (items) {
              var chart = items.length ? items[0].chart : null;
              return chart && chart.$gapHover ? gapText(chart.$gapHover) : "";
            },
          },
        },
      },
    };
    if (zoom) options.plugins.zoom = zoom;
    return options;
  }

  // -- outages: no bar for longer than the interval ----------------------------------

  /**
   * The outages of bar times `t` (ms, ascending): each {from, to, interval} where the
   * bar `from` is followed by the bar `to` more than one interval later (the feed was
   * down, or the exchange had no trade in either leg).
   */
  function gapsOf(t, intervalMs) {
    var out = [];
    if (!t || !isNum(intervalMs) || intervalMs <= 0) return out;
    for (var i = 1; i < t.length; i++) {
      if (isNum(t[i]) && isNum(t[i - 1]) && t[i] - t[i - 1] > intervalMs) out.push({ from: t[i - 1], to: t[i], interval: intervalMs });
    }
    return out;
  }

  /** What an outage's marker says: "no data 12:01:05–12:03:40 UTC", from the end of the bar before to the bar after. */
  function gapText(g) {
    var start = g.from + g.interval;
    var sameDay = Math.floor(start / 86400000) === Math.floor(g.to / 86400000);
    return "no data " + (sameDay ? hms(start) + "–" + hms(g.to) : stamp(start) + " – " + stamp(g.to)) + " UTC";
  }

  /**
   * The points of a line over bar times `t`: a null point (a break, with spanGaps
   * false) where a bar has no value and where bars are more than `intervalMs` apart,
   * so an outage is a gap and never a straight line across it.
   */
  function linePoints(t, values, intervalMs) {
    var out = [];
    if (!t || !values) return out;
    var prev = null;
    for (var i = 0; i < t.length && i < values.length; i++) {
      if (!isNum(t[i])) continue;
      var drawing = out.length > 0 && out[out.length - 1].y !== null;
      if (drawing && prev !== null && isNum(intervalMs) && t[i] - prev > intervalMs) out.push({ x: prev + intervalMs, y: null });
      prev = t[i];
      if (isNum(values[i])) out.push({ x: t[i], y: values[i] });
      else if (out.length && out[out.length - 1].y !== null) out.push({ x: t[i], y: null });
    }
    while (out.length && out[out.length - 1].y === null) out.pop();
    return out;
  }

  /**
   * A Chart.js plugin: each outage of `chart.$gaps` a shaded band between the bars
   * either side, edged with dashed lines; while the pointer is in one it is
   * `chart.$gapHover`, and the tooltip says when there was no data.
   */
  var gapPlugin = {
    id: "pairsGaps",
    beforeEvent: function (chart, args) {
      var e = args.event;
      var hover = null;
      var area = chart.chartArea;
      var x = chart.scales.x;
      var gaps = chart.$gaps || [];
      if (e.type !== "mouseout" && area && x && gaps.length && e.x >= area.left && e.x <= area.right && e.y >= area.top && e.y <= area.bottom) {
        var v = x.getValueForPixel(e.x);
        for (var i = 0; i < gaps.length && !hover; i++) if (v > gaps[i].from && v < gaps[i].to) hover = gaps[i];
      }
      chart.$gapHover = hover;
    },
    afterEvent: function (chart, args) {
      // The tooltip only rebuilds when the nearest point changes: moving into an outage beside it must too.
      if (chart.$gapHover === chart.$gapShown) return;
      chart.$gapShown = chart.$gapHover;
      if (chart.tooltip && chart.tooltip.getActiveElements().length) chart.tooltip.update(true);
      args.changed = true;
    },
    beforeDatasetsDraw: function (chart) {
      var gaps = chart.$gaps;
      var area = chart.chartArea;
      var x = chart.scales.x;
      if (!gaps || !gaps.length || !area || !x) return;
      var ctx = chart.ctx;
      ctx.save();
      ctx.beginPath();
      ctx.rect(area.left, area.top, area.width, area.height);
      ctx.clip();
      ctx.fillStyle = COLORS.gapFill;
      ctx.strokeStyle = COLORS.gap;
      ctx.lineWidth = 1;
      ctx.setLineDash([3, 3]);
      for (var i = 0; i < gaps.length; i++) {
        var x0 = x.getPixelForValue(gaps[i].from);
        var x1 = x.getPixelForValue(gaps[i].to);
        if (x1 < area.left || x0 > area.right) continue;
        ctx.fillRect(x0, area.top, Math.max(1, x1 - x0), area.height);
        ctx.beginPath();
        ctx.moveTo(Math.round(x0) + 0.5, area.top);
        ctx.lineTo(Math.round(x0) + 0.5, area.bottom);
        ctx.moveTo(Math.round(x1) - 0.5, area.top);
        ctx.lineTo(Math.round(x1) - 0.5, area.bottom);
        ctx.stroke();
      }
      ctx.restore();
    },
  };

  /** The outages a chart marks, kept on the chart and counted on its canvas (data-gaps). */
  function setGaps(chart, gaps) {
    chart.$gaps = gaps;
    chart.canvas.setAttribute("data-gaps", String(gaps.length));
  }

  // -- legends ------------------------------------------------------------------------

  var SVG = "http://www.w3.org/2000/svg";

  function svgEl(tag, attrs) {
    var e = document.createElementNS(SVG, tag);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    return e;
  }

  /** A legend entry's sample: its line as drawn (colour, dash), a band, or a marker's glyph. */
  function swatchOf(item) {
    if (item.glyph) {
      var g = el("span", "legend-glyph", item.glyph);
      g.style.color = item.color;
      g.setAttribute("aria-hidden", "true");
      return g;
    }
    var svg = svgEl("svg", { class: "legend-swatch", width: "16", height: "8", viewBox: "0 0 16 8", "aria-hidden": "true" });
    if (item.fill) svg.appendChild(svgEl("rect", { x: "0", y: "0", width: "16", height: "8", fill: item.fill }));
    if (item.band) {
      svg.appendChild(svgEl("path", { d: "M0.5 0V8M15.5 0V8", stroke: item.color, "stroke-width": "1", "stroke-dasharray": "2 2" }));
    } else {
      var line = svgEl("line", { x1: "0", y1: "4", x2: "16", y2: "4", stroke: item.color, "stroke-width": "2" });
      if (item.dash && item.dash.length) line.setAttribute("stroke-dasharray", item.dash.join(" "));
      svg.appendChild(line);
    }
    return svg;
  }

  /**
   * The legend of a chart in `box`: each series it draws by its `legend` text (once a
   * text: the + and − lines of a threshold are one entry) as drawn, in the chart's own
   * colours; a dataset's `legendItems` instead when it has them (the alert markers).
   * A series is named while it has points (its main series, and `legendAlways`
   * ones, always); "no data" while an outage is marked.
   */
  function renderLegend(chart, box) {
    if (!chart || !box) return;
    var items = [];
    var seen = {};
    function add(item) {
      if (seen[item.text]) return;
      seen[item.text] = true;
      items.push(item);
    }
    var datasets = chart.data.datasets;
    for (var i = 0; i < datasets.length; i++) {
      var ds = datasets[i];
      if (!ds.legend && !ds.legendItems) continue;
      if (!ds.main && !ds.legendAlways && !ds.data.length) continue;
      if (ds.legendItems) ds.legendItems.forEach(add);
      else add({ text: ds.legend, color: ds.borderColor, dash: ds.borderDash || [], fill: ds.legendFill || null });
    }
    if (chart.$gaps && chart.$gaps.length) add({ text: "no data", color: COLORS.gap, fill: COLORS.gapFill, band: true });
    var key = JSON.stringify(items);
    if (box.getAttribute("data-key") === key) return;
    box.setAttribute("data-key", key);
    box.textContent = "";
    for (var j = 0; j < items.length; j++) {
      var span = el("span", "legend-item");
      span.appendChild(swatchOf(items[j]));
      span.appendChild(document.createTextNode(items[j].text));
      box.appendChild(span);
    }
  }

  /** The quote asset a USD-M symbol is priced in ("BTCUSDT" -> "USDT"): the unit of its price, and of a spread. */
  function quoteOf(symbol) {
    var m = /(USDT|USDC|BUSD|USD)$/.exec(String(symbol || ""));
    return m ? m[1] : "quote";
  }

  // -- zoom and pan: the charts of a page share their time axis -------------------------

  // The range buttons: spans of at least MIN_RANGE_BARS bars, shorter than what the charts hold.
  var RANGES = [
    [30e3, "30s"],
    [60e3, "1m"],
    [300e3, "5m"],
    [900e3, "15m"],
    [3600e3, "1h"],
    [4 * 3600e3, "4h"],
    [12 * 3600e3, "12h"],
    [86400e3, "1d"],
    [3 * 86400e3, "3d"],
    [7 * 86400e3, "1w"],
    [30 * 86400e3, "1M"],
    [90 * 86400e3, "3M"],
    [365 * 86400e3, "1y"],
  ];
  var MIN_RANGE_BARS = 20;
  var MAX_RANGE_BUTTONS = 5;
  var MIN_ZOOM_BARS = 10; // the narrowest a zoom goes

  /** The range buttons for bars of `intervalMs` over `span` ms: the longest few that are neither too short nor all of it. */
  function rangesFor(intervalMs, span) {
    var out = RANGES.filter(function (r) {
      return r[0] >= MIN_RANGE_BARS * intervalMs && r[0] < span;
    });
    return out.slice(Math.max(0, out.length - MAX_RANGE_BUTTONS));
  }

  /** A span of time in words for the range status: "12:01:05–12:03:00 UTC", with dates when it is longer than a day. */
  function spanText(min, max) {
    if (max - min > 86400000 || Math.floor(min / 86400000) !== Math.floor(max / 86400000)) {
      return stamp(min).slice(0, 11) + " – " + stamp(max).slice(0, 11) + " UTC";
    }
    return hms(min) + "–" + hms(max) + " UTC";
  }

  /**
   * The charts of a page zoomed and panned together on their time axis
   * (chartjs-plugin-zoom: the wheel or a pinch zooms, a drag pans; the wheel out
   * at the whole range scrolls the page), a range selector and a reset.
   *
   * The view is "all" (everything the charts hold), "range" (the newest `ms` of it)
   * or, once the user zooms or pans, "free" (the span chosen). A live group follows
   * the newest bar in the first two and stands still in the third until a reset or a
   * range button, and its status says which (data-follow="true"/"false").
   *
   * opts: {intervalMs, live, tools: {ranges, reset, state} (elements), onView(view)}.
   * The page adds its charts (built with zoomOptions()), then calls setBounds(x0, x1)
   * with its data's time span before it updates them.
   */
  function ChartGroup(opts) {
    var group = this;
    this.charts = [];
    this.intervalMs = opts.intervalMs;
    this.live = !!opts.live;
    this.tools = opts.tools || {};
    this.onView = opts.onView || null;
    this.view = { mode: "all" };
    this.bounds = null;
    this.rangesKey = null;
    if (this.tools.reset) {
      this.tools.reset.addEventListener("click", function () {
        group.setView({ mode: "all" });
      });
    }
    if (this.tools.ranges) {
      this.tools.ranges.addEventListener("click", function (ev) {
        var button = ev.target.closest("button[data-range]");
        if (!button) return;
        var ms = Number(button.getAttribute("data-range"));
        group.setView(ms > 0 ? { mode: "range", ms: ms } : { mode: "all" });
      });
    }
    this.renderState();
  }

  /** The zoom plugin's options for a chart of the group. */
  ChartGroup.prototype.zoomOptions = function () {
    var group = this;
    function moved(ctx) {
      group.userMoved(ctx.chart);
    }
    return {
      limits: { x: { minRange: MIN_ZOOM_BARS * this.intervalMs } },
      pan: { enabled: true, mode: "x", threshold: 5, onPan: moved },
      zoom: {
        wheel: { enabled: true },
        pinch: { enabled: true },
        mode: "x",
        onZoom: moved,
        onZoomStart: function (ctx) {
          // Nothing to zoom out of: the wheel scrolls the page instead.
          var e = ctx.event;
          if (e && e.type === "wheel" && e.deltaY > 0 && group.view.mode === "all") return false;
        },
      },
    };
  };

  ChartGroup.prototype.add = function (chart) {
    if (!chart) return;
    chart.$group = this; // its plot area lines up with the others' (chartPadding)
    this.charts.push(chart);
  };

  /** The x range the view shows over the data's [x0, x1]: [min, max], or nulls before there is data. */
  ChartGroup.prototype.range = function () {
    var b = this.bounds;
    var v = this.view;
    if (!b) return [null, null];
    if (v.mode === "range") return [Math.max(b[0], b[1] - v.ms), b[1]];
    if (v.mode === "free") {
      var lo = Math.max(v.min, b[0]);
      var hi = Math.min(v.max, b[1]);
      // The window has moved past what was chosen: the same width from its oldest bar.
      if (hi <= lo) return [b[0], Math.min(b[1], b[0] + (v.max - v.min))];
      return [lo, hi];
    }
    return [b[0], b[1]];
  };

  /** Writes the view into each chart's options (all but `except`), without drawing. */
  ChartGroup.prototype.place = function (except) {
    var r = this.range();
    var b = this.bounds;
    for (var i = 0; i < this.charts.length; i++) {
      var c = this.charts[i];
      if (c === except) continue;
      c.options.scales.x.min = r[0] === null ? undefined : r[0];
      c.options.scales.x.max = r[1] === null ? undefined : r[1];
      var limits = c.options.plugins.zoom && c.options.plugins.zoom.limits;
      if (limits && limits.x && b) {
        limits.x.min = b[0];
        limits.x.max = b[1];
      }
    }
  };

  /** The data's time span moved (new bars): the charts follow it unless the user zoomed or panned. */
  ChartGroup.prototype.setBounds = function (x0, x1) {
    this.bounds = isNum(x0) && isNum(x1) && x1 > x0 ? [x0, x1] : null;
    this.place();
    this.renderRanges();
    this.renderState();
  };

  ChartGroup.prototype.setView = function (view) {
    this.view = view;
    this.place();
    for (var i = 0; i < this.charts.length; i++) this.charts[i].update("none");
    this.renderRanges();
    this.renderState();
    if (this.onView) this.onView(view);
  };

  /** One chart was zoomed or panned by the user: the others show the same span, and it stays. */
  ChartGroup.prototype.userMoved = function (source) {
    var x = source.scales.x;
    this.view = { mode: "free", min: x.min, max: x.max };
    this.place(source);
    for (var i = 0; i < this.charts.length; i++) if (this.charts[i] !== source) this.charts[i].update("none");
    this.renderRanges();
    this.renderState();
    if (this.onView) this.onView(this.view);
  };

  /** Whether the charts follow the newest bar. */
  ChartGroup.prototype.following = function () {
    return this.view.mode !== "free";
  };

  ChartGroup.prototype.renderRanges = function () {
    var box = this.tools.ranges;
    if (!box) return;
    var b = this.bounds;
    var ranges = b ? rangesFor(this.intervalMs, b[1] - b[0]) : [];
    var key = ranges
      .map(function (r) {
        return r[1];
      })
      .join(",");
    if (key !== this.rangesKey) {
      this.rangesKey = key;
      box.textContent = "";
      var all = ranges.concat([[0, "All"]]);
      for (var i = 0; i < all.length; i++) {
        var button = el("button", "range-btn", all[i][1]);
        button.type = "button";
        button.setAttribute("data-range", String(all[i][0]));
        button.title = all[i][0] ? "the newest " + all[i][1] : "everything the charts hold";
        box.appendChild(button);
      }
    }
    var current = this.view.mode === "range" ? this.view.ms : this.view.mode === "all" ? 0 : -1;
    var buttons = box.querySelectorAll("button[data-range]");
    for (var j = 0; j < buttons.length; j++) {
      var on = Number(buttons[j].getAttribute("data-range")) === current;
      buttons[j].setAttribute("aria-pressed", on ? "true" : "false");
    }
  };

  ChartGroup.prototype.renderState = function () {
    var v = this.view;
    if (this.tools.reset) this.tools.reset.disabled = v.mode === "all";
    var state = this.tools.state;
    if (!state) return;
    var r = this.range();
    var text;
    if (v.mode === "free") {
      text = "zoomed to " + (r[0] === null ? "—" : spanText(r[0], r[1]));
      if (this.live) text += " · not following the newest bar (Reset zoom)";
    } else if (v.mode === "range") {
      var label = RANGES.filter(function (x) {
        return x[0] === v.ms;
      })[0];
      text = "the newest " + (label ? label[1] : duration(v.ms / 1000)) + (this.live ? " · following the newest bar" : " of the range");
    } else {
      text = this.live ? "all bars · following the newest bar" : "the whole range";
    }
    setText(state, text);
    if (this.live) state.setAttribute("data-follow", this.following() ? "true" : "false");
    state.setAttribute("data-view", v.mode);
  };

  // -- staff forms: a request's answer beside its fields ---------------------------------

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  /** The session's CSRF token: the form's hidden input, else Django's cookie. */
  function csrfToken(form) {
    var input = (form || document).querySelector('input[name="csrfmiddlewaretoken"]');
    if (input && input.value) return input.value;
    var match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  /** POSTs `body` as JSON with the session's CSRF token: resolves to {status, data} (data null when not JSON). */
  function postJSON(url, body, form) {
    return fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrfToken(form) },
      credentials: "same-origin",
      cache: "no-store",
      body: JSON.stringify(body),
    }).then(function (r) {
      return r
        .json()
        .catch(function () {
          return null;
        })
        .then(function (data) {
          return { status: r.status, data: data };
        });
    });
  }

  function messagesOf(value) {
    if (Array.isArray(value)) return value.map(String);
    if (value && typeof value === "object") return [JSON.stringify(value)];
    return [String(value)];
  }

  /**
   * A staff form (#<prefix>-form) and what it says: its status line
   * (#<prefix>-form-status), a 400's messages beside the fields they are about (the
   * form's .field-error[data-for=FIELD], FIELD one of `fields`) and the rest in a
   * list under it (#<prefix>-form-errors). A message filed under a field of the form
   * goes beside it; any other is split on "; " (the engines join their problems so)
   * and each part goes beside the field `fieldNamed(part)` names, else in the list.
   */
  function staffForm(prefix, fields, fieldNamed) {
    var form = document.getElementById(prefix + "-form");

    function status(text, bad) {
      var line = document.getElementById(prefix + "-form-status");
      if (!line) return;
      setText(line, text);
      line.setAttribute("data-bad", bad ? "true" : "false");
    }

    function clear() {
      var errors = form ? form.querySelectorAll(".field-error") : [];
      for (var i = 0; i < errors.length; i++) {
        errors[i].textContent = "";
        errors[i].hidden = true;
        var input = errors[i].parentNode.querySelector("input, select");
        if (input) input.removeAttribute("aria-invalid");
      }
      var box = document.getElementById(prefix + "-form-errors");
      if (box) {
        box.textContent = "";
        box.hidden = true;
      }
    }

    function addError(field, message) {
      var spot = form && fields.indexOf(field) >= 0 ? form.querySelector('.field-error[data-for="' + field + '"]') : null;
      if (!spot) return false;
      spot.textContent = spot.textContent ? spot.textContent + " " + message : message;
      spot.hidden = false;
      var input = spot.parentNode.querySelector("input, select");
      if (input) input.setAttribute("aria-invalid", "true");
      return true;
    }

    function show(errors) {
      var general = [];
      for (var field in errors) {
        var list = messagesOf(errors[field]);
        if (addError(field, list.join(" "))) continue;
        for (var i = 0; i < list.length; i++) {
          var parts = list[i].split("; ");
          for (var j = 0; j < parts.length; j++) {
            var named = fieldNamed(parts[j]);
            if (!named || !addError(named, parts[j])) general.push((field === "non_field_errors" ? "" : field + ": ") + parts[j]);
          }
        }
      }
      var box = document.getElementById(prefix + "-form-errors");
      if (box && general.length) {
        for (var k = 0; k < general.length; k++) box.appendChild(el("li", "", general[k]));
        box.hidden = false;
      }
    }

    /** What the form says of an answer that queued nothing: a 400 beside its fields, the others in words. */
    function refused(answer) {
      if (answer.status === 400 && answer.data) {
        status("not run: see below", true);
        show(answer.data);
      } else if (answer.status === 401 || answer.status === 403) {
        status("not run: sign in as staff again (the session ended or lacks the right)", true);
      } else if (answer.status === 429) {
        status("not run: too many requests; try again in a minute", true);
      } else {
        status("not run: the server answered HTTP " + answer.status, true);
      }
    }

    return {
      form: form,
      status: status,
      clear: clear,
      addError: addError,
      show: show,
      refused: refused,
      post: function (url, body) {
        return postJSON(url, body, form);
      },
    };
  }

  function readJSON(id) {
    var el = document.getElementById(id);
    if (!el) return null;
    try {
      return JSON.parse(el.textContent);
    } catch (e) {
      return null;
    }
  }

  function setText(id, text) {
    var el = typeof id === "string" ? document.getElementById(id) : id;
    if (el && el.textContent !== text) el.textContent = text;
    return el;
  }

  // -- feed health ------------------------------------------------------------

  var HEALTH_EVERY_MS = 5000;
  var STALE_TICK_S = 10;
  var health = null;
  var healthReceivedAt = 0;
  var healthPushedAt = 0; // when the page's websocket last told the health
  var listeners = [];

  function onHealth(fn) {
    listeners.push(fn);
    if (health) fn(health, healthReceivedAt);
  }

  /** Seconds since the newest trade the feed has seen (client clock), or null. */
  function tickAge(h) {
    var last = h && h.feed ? h.feed.last_tick_at : null;
    return isNum(last) ? Math.max(0, (Date.now() - last) / 1000) : null;
  }

  // -- the live indicator ---------------------------------------------------------
  //
  // One indicator in the top bar says whether what the page shows is live: the feed
  // (from the health record) and, on a page with a websocket, the page's own socket.
  // Green only when both are; red when either is down; amber when the feed is
  // connected but silent, or the system is degraded.

  var socket = null; // null: the page has no socket; else {state: "connecting"|"live"|"down", note}
  var healthFailed = false;

  /** A page with a websocket tells its state here ("connecting", "live", "down") with a note in words. */
  function setSocket(state, note) {
    socket = { state: state, note: note || "" };
    renderLive();
  }

  function feedState(h) {
    if (!h || !h.feed) return "unknown";
    if (!h.feed.connected) return "down";
    var age = tickAge(h);
    return age !== null && age > STALE_TICK_S ? "stale" : "live";
  }

  function renderLive() {
    var pill = document.getElementById("live-status");
    if (!pill) return;
    var h = health;
    var feed = feedState(h);
    var problems = h && h.problems ? h.problems.slice() : [];
    var state, text;
    if (socket && socket.state === "down") {
      state = "down";
      text = "page offline";
      problems.unshift(socket.note || "live updates disconnected");
    } else if (healthFailed && !(socket && socket.state === "live")) {
      state = "down";
      text = "server unreachable";
      problems.unshift("the server does not answer /api/health/");
    } else if (socket && socket.state === "connecting") {
      state = "unknown";
      text = "connecting…";
    } else if (feed === "unknown") {
      state = "unknown";
      text = "feed …";
    } else if (feed === "down") {
      state = "down";
      text = "feed down";
      var why = h.feed.last_error;
      if (why && problems.join(" ").indexOf(why) < 0) problems.unshift(why);
    } else if (feed === "stale") {
      state = "warn";
      text = "no ticks " + duration(tickAge(h));
    } else {
      state = h.status === "ok" ? "ok" : "warn";
      text = h.status === "ok" ? "live" : "live, degraded";
    }
    pill.setAttribute("data-state", state);
    pill.setAttribute("data-feed", feed);
    pill.setAttribute("data-socket", socket ? socket.state : "none");
    setText("live-status-text", text);
    var title = problems.length ? problems.join("\n") : "the feed" + (socket ? " and this page are" : " is") + " live";
    if (pill.title !== title) pill.title = title;
    pill.setAttribute("aria-label", text + (problems.length ? ": " + problems.join("; ") : ""));
  }

  function publish(h) {
    health = h;
    healthReceivedAt = Date.now();
    healthFailed = false;
    renderLive();
    for (var i = 0; i < listeners.length; i++) {
      try {
        listeners[i](h, healthReceivedAt);
      } catch (e) {
        /* a panel's failure must not stop the others */
      }
    }
  }

  /** A health record the page's websocket brought: polling waits while they come. */
  function pushedHealth(h) {
    healthPushedAt = Date.now();
    publish(h);
  }

  function pollHealth() {
    if (Date.now() - healthPushedAt < 2 * HEALTH_EVERY_MS) return;
    var pill = document.getElementById("live-status");
    var url = pill && pill.getAttribute("data-health-url");
    if (!url) return;
    fetch(url, { headers: { Accept: "application/json" }, cache: "no-store" })
      .then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.json();
      })
      .then(publish)
      .catch(function () {
        healthFailed = true;
        renderLive();
      });
  }

  function startHealth() {
    var initial = readJSON("initial-health");
    if (initial) publish(initial);
    setInterval(pollHealth, HEALTH_EVERY_MS);
    // The tick age moves between polls.
    setInterval(renderLive, 1000);
  }

  window.Pairs = {
    isNum: isNum,
    fmt: fmt,
    fmtSigned: fmtSigned,
    fmtP: fmtP,
    hms: hms,
    stamp: stamp,
    span: span,
    utc: utc,
    duration: duration,
    timeTicks: timeTicks,
    timeLabel: timeLabel,
    colors: COLORS,
    chartTheme: chartTheme,
    timeAxis: timeAxis,
    valueAxis: valueAxis,
    lineDataset: lineDataset,
    chartOptions: chartOptions,
    gapsOf: gapsOf,
    gapText: gapText,
    linePoints: linePoints,
    gapPlugin: gapPlugin,
    setGaps: setGaps,
    renderLegend: renderLegend,
    quoteOf: quoteOf,
    ChartGroup: ChartGroup,
    el: el,
    csrfToken: csrfToken,
    postJSON: postJSON,
    staffForm: staffForm,
    readJSON: readJSON,
    setText: setText,
    onHealth: onHealth,
    pushedHealth: pushedHealth,
    setSocket: setSocket,
    tickAge: tickAge,
  };

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", startHealth);
  } else {
    startHealth();
  }
})();
