// clearpos console: progressive enhancement only. Every page works without this file.
(function () {
  "use strict";
  // 1. Live dashboard: re-fetch the live part every N seconds while the tab is visible.
  var live = document.getElementById("live");
  if (live && window.fetch) {
    var every = (parseInt(live.getAttribute("data-every"), 10) || 10) * 1000;
    var url = live.getAttribute("data-refresh");
    var timer = setInterval(function () {
      if (document.hidden) { return; }
      fetch(url, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
        .then(function (r) {
          if (r.redirected || !r.ok) { clearInterval(timer); return null; }
          return r.text();
        })
        .then(function (html) { if (html !== null) { live.innerHTML = html; } })
        .catch(function () { /* keep the last good numbers */ });
    }, every);
  }
  // 2. Card-number fields: a full PAN never leaves the browser -- cut it to first 6 / last 4.
  var fields = document.querySelectorAll("input[data-mask-pan]");
  Array.prototype.forEach.call(fields, function (input) {
    var cut = function () {
      var digits = input.value.replace(/\D/g, "");
      if (digits.length >= 13) {
        input.value = digits.slice(0, 6) + "****" + digits.slice(-4);
      }
    };
    input.addEventListener("change", cut);
    input.addEventListener("blur", cut);
    if (input.form) { input.form.addEventListener("submit", cut); }
  });
})();
