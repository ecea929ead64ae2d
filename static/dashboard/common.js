/* pairs dashboard: shared helpers (formatting, embedded JSON, feed health: polled, or told by the page's websocket).
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
    if (s < 0) s = 0;
    if (s < 10) return s.toFixed(1) + " s";
    if (s < 60) return Math.round(s) + " s";
    if (s < 3600) return Math.floor(s / 60) + "m " + pad(Math.round(s % 60)) + "s";
    if (s < 2 * 86400) return Math.floor(s / 3600) + "h " + pad(Math.floor((s % 3600) / 60)) + "m";
    return Math.floor(s / 86400) + "d " + pad(Math.floor((s % 86400) / 3600)) + "h";
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
