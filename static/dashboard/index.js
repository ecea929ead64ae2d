/* pairs overview: refresh the table rows (rendered by the server) every 2 s. */
(function () {
  "use strict";

  var EVERY_MS = 2000;
  var body = document.getElementById("pairs-rows");
  if (!body) return;
  var url = body.getAttribute("data-rows-url");
  var busy = false;

  function refresh() {
    if (busy || document.hidden || !url) return;
    busy = true;
    fetch(url, { headers: { Accept: "text/html" }, cache: "no-store" })
      .then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.text();
      })
      .then(function (html) {
        body.innerHTML = html;
        body.removeAttribute("data-error");
      })
      .catch(function () {
        body.setAttribute("data-error", "unreachable");
      })
      .then(function () {
        busy = false;
      });
  }

  var P = window.Pairs;
  if (P) {
    P.onHealth(function (h) {
      var f = h.feed || {};
      var status = document.getElementById("fl-status");
      if (status) {
        // The feed's words are its colour's: ok, degraded (connected, with a problem) or down.
        var word = f.connected && h.status === "ok" ? "ok" : f.connected ? "degraded" : "down";
        status.setAttribute("data-status", word);
        P.setText(status, word);
      }
      P.setText("fl-ticks", P.fmt(f.ticks_total, 0));
      P.setText("fl-reconnects", f.reconnects === undefined ? "—" : f.reconnects + (f.connect_failures ? " · " + f.connect_failures + " failed" : ""));
      P.setText("fl-gaps-filled", String(f.gaps_filled === undefined ? "—" : f.gaps_filled));
      P.setText("fl-gaps-unfilled", String(f.gaps_unfilled === undefined ? "—" : f.gaps_unfilled));
      P.setText("fl-mode", h.mode || "—");
      P.setText("fl-problems", (h.problems || []).join("; "));
    });
  }

  setInterval(refresh, EVERY_MS);
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) refresh();
  });
})();
