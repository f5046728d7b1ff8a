"""Write the help pages to a directory, and tell whether a directory is current.

``build(out, site)`` writes ``<out>/{zh,en}/index.{md,html}``, ``s/<slug>``,
``r/<key>`` and ``c/<code>`` pages, rewrites only files whose bytes changed and
removes pages the catalog no longer has. ``stale(out, site)`` lists every file that
is missing, different or left over, without writing anything -- the test suite
and ``clearpos docs build --check`` use it to refuse pages that were not
regenerated from the current catalog.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..reasons import LANGS
from .pages import HelpSite
from .render import FileLinks, file_path, to_html, to_markdown

__all__ = ["BuildReport", "build", "render_files", "stale"]

EXTENSIONS = ("md", "html")


def render_files(site: HelpSite) -> dict[str, bytes]:
    """Every generated file: path under the output directory -> its bytes (UTF-8, LF)."""
    from .search import SEARCH_JS, index_js

    md, html = FileLinks("md"), FileLinks("html")
    files: dict[str, bytes] = {}
    pages = list(site.pages())
    for page in pages:
        files[file_path(page.lang, page.slug, "md")] = to_markdown(page, md).encode("utf-8")
        files[file_path(page.lang, page.slug, "html")] = to_html(page, html).encode("utf-8")
    files["search-index.js"] = index_js(pages).encode("utf-8")  # the offline search
    files["search.js"] = SEARCH_JS.encode("utf-8")
    return dict(sorted(files.items()))


def _existing(out: Path) -> set[str]:
    """Generated-looking files already under ``out/<lang>`` (other files are left alone)."""
    found: set[str] = set()
    for lang in LANGS:
        root = out / lang
        if not root.is_dir():
            continue
        for path in root.rglob("*"):
            if path.is_file() and path.suffix.lstrip(".") in EXTENSIONS:
                found.add(path.relative_to(out).as_posix())
    return found


@dataclass
class BuildReport:
    """What a build did, as paths relative to the output directory."""

    written: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0


def build(out: Path, site: HelpSite) -> BuildReport:
    """Write every page of ``site`` under ``out``; remove pages it no longer has."""
    report = BuildReport()
    files = render_files(site)
    for rel, data in files.items():
        path = out / rel
        if path.is_file() and path.read_bytes() == data:
            report.unchanged += 1
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
        report.written.append(rel)
    for rel in sorted(_existing(out) - set(files)):
        (out / rel).unlink()
        report.removed.append(rel)
    for lang in LANGS:  # drop directories emptied by removals
        root = out / lang
        if root.is_dir():
            for folder in sorted(root.rglob("*"), reverse=True):
                if folder.is_dir() and not any(folder.iterdir()):
                    folder.rmdir()
    return report


def stale(out: Path, site: HelpSite) -> list[str]:
    """Every way ``out`` differs from a fresh build: ``path: missing|differs|not generated``."""
    files = render_files(site)
    problems: list[str] = []
    for rel, data in files.items():
        path = out / rel
        if not path.is_file():
            problems.append(f"{rel}: missing")
        elif path.read_bytes() != data:
            problems.append(f"{rel}: differs from the current catalog and guide")
    for rel in sorted(_existing(out) - set(files)):
        problems.append(f"{rel}: not generated any more (stale page)")
    return problems
