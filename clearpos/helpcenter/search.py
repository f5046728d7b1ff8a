"""The offline search of the generated help pages: a static index and a small script.

``search-index.js`` sets ``window.HELP_INDEX`` to one entry per page (language,
path from the site root, title, help code, words to match); ``search.js`` filters
it as the merchant types, with no server and no network: the pages work from a
USB stick or ``file://``. Both are written by ``clearpos docs build`` next to
``zh/`` and ``en/``. In the console the same form goes to ``/help?q=``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from .doc import Code, Heading, Items, Link, Page, Para, Strong
from .render import file_path

__all__ = ["SEARCH_JS", "index_js"]


def _words(page: Page) -> str:
    """The text a search matches: the title, help code, headings and the first lines."""
    parts: list[str] = [page.title, page.help_code, page.slug.rpartition("/")[2]]
    for block in page.blocks[:8]:
        runs = block.items if isinstance(block, Items) else (block.run,)
        if isinstance(block, Heading | Para | Items):
            for run in runs:
                for part in run:
                    if isinstance(part, str):
                        parts.append(part)
                    elif isinstance(part, Code | Strong | Link):
                        parts.append(part.text)
    return " ".join(" ".join(parts).split())[:400]


def index_js(pages: Iterable[Page]) -> str:
    """``search-index.js``: ``window.HELP_INDEX = [...]`` (UTF-8, one entry per line)."""
    rows = [
        json.dumps(
            {
                "l": p.lang,
                "h": file_path(p.lang, p.slug, "html"),
                "t": p.title,
                "c": p.help_code,
                "w": _words(p),
            },
            ensure_ascii=False,
            sort_keys=True,
        )
        for p in pages
    ]
    return "window.HELP_INDEX = [\n" + ",\n".join(rows) + "\n];\n"


SEARCH_JS = """// Offline search of the help pages: filters window.HELP_INDEX as you type.
(function () {
  var me = document.currentScript;
  var root = me.getAttribute("data-root") || "";
  var lang = me.getAttribute("data-lang") || "zh";
  var box = document.getElementById("help-search");
  var list = document.getElementById("search-results");
  var form = box && box.form;
  if (!box || !list || !form || !window.HELP_INDEX) { return; }
  function norm(s) { return (s || "").toLowerCase().replace(/[\\s，。、：:；;,.“”"'()（）-]+/g, ""); }
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
"""
