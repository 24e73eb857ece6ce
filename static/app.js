// Handoff: small progressive enhancements. Pages work without it.
(function () {
  "use strict";
  // Handoff.retryIn is how long a live page waits before it reconnects:
  // its backoff, spread from half to one and a half times, so that the
  // pages whose sockets closed together (an instance stopped, or closed its
  // sockets after missing events) do not all come back in the same instant.
  window.Handoff = window.Handoff || {};
  window.Handoff.retryIn = function (backoff) {
    return Math.round(backoff * (0.5 + Math.random()));
  };
  document.addEventListener("click", function (ev) {
    var copy = ev.target.closest("[data-copy]");
    if (copy) {
      var input = document.querySelector(copy.getAttribute("data-copy"));
      if (!input) return;
      input.select();
      var done = function () {
        var old = copy.textContent;
        copy.textContent = "Copied";
        setTimeout(function () { copy.textContent = old; }, 1500);
      };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(input.value).then(done, function () { document.execCommand("copy"); done(); });
      } else {
        document.execCommand("copy");
        done();
      }
    }
  });
  document.addEventListener("submit", function (ev) {
    var btn = ev.submitter;
    var msg = btn && btn.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) ev.preventDefault();
  });
})();
