// Live queue: refresh the tables when the brand's conversations change.
(function () {
  "use strict";
  var live = document.getElementById("queue-live");
  if (!live) return;
  var url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + live.getAttribute("data-socket");
  var state = document.getElementById("queue-socket");
  var pending = null, backoff = 500;
  function refresh() {
    pending = null;
    fetch(location.href, { headers: { "Accept": "text/html" }, credentials: "same-origin" })
      .then(function (r) { return r.text(); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var next = doc.getElementById("queue-live");
        if (next) live.innerHTML = next.innerHTML;
      })
      .catch(function () {});
  }
  function connect() {
    var ws = new WebSocket(url);
    ws.onopen = function () { backoff = 500; if (state) state.textContent = "live"; refresh(); };
    ws.onmessage = function () { if (!pending) pending = setTimeout(refresh, 300); };
    ws.onclose = function () {
      if (state) state.textContent = "reconnecting…";
      setTimeout(connect, Handoff.retryIn(backoff));
      backoff = Math.min(backoff * 2, 10000);
    };
  }
  connect();
})();
