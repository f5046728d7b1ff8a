// Offline search of the help pages: filters window.HELP_INDEX as you type.
(function () {
  var me = document.currentScript;
  var root = me.getAttribute("data-root") || "";
  var lang = me.getAttribute("data-lang") || "zh";
  var box = document.getElementById("help-search");
  var list = document.getElementById("search-results");
  var form = box && box.form;
  if (!box || !list || !form || !window.HELP_INDEX) { return; }
  function norm(s) { return (s || "").toLowerCase().replace(/[\s，。、：:；;,.“”"'()（）-]+/g, ""); }
  function find(q) {
    var want = norm(q);
    if (!want) { return []; }
    var hits = [];
    window.HELP_INDEX.forEach(function (e) {
      var code = norm(e.c);
      var score = code === want ? 3 : norm(e.t).indexOf(want) >= 0 ? 2 : norm(e.w).indexOf(want) >= 0 ? 1 : 0;
      if (score) { hits.push([score + (e.l === lang ? 0.5 : 0), e]); }
    });
    hits.sort(function (a, b) { return b[0] - a[0]; });
    return hits.slice(0, 12).map(function (h) { return h[1]; });
  }
  function show() {
    var found = find(box.value);
    list.innerHTML = "";
    found.forEach(function (e) {
      var li = document.createElement("li");
      var a = document.createElement("a");
      a.href = root + e.h;
      a.textContent = e.t + (e.c ? " (" + e.c + ")" : "");
      li.appendChild(a);
      list.appendChild(li);
    });
    if (box.value && !found.length) {
      var none = document.createElement("li");
      none.textContent = lang === "zh" ? "没有找到，请换个说法或输入帮助码" : "Nothing found: try other words or the help code";
      list.appendChild(none);
    }
    list.hidden = !box.value;
  }
  box.addEventListener("input", show);
  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var first = find(box.value)[0];
    if (first) { window.location.href = root + first.h; } else { show(); }
  });
})();
