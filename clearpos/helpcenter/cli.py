"""``clearpos docs build [--out DIR] [--check]``: generate the merchant help pages.

Exit status: 0 written (or current with ``--check``), 1 stale pages found with
``--check`` or the guide does not match the catalog, 2 bad usage.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..reasons import CatalogError
from .guide import GuideError

DEFAULT_OUT = Path("docs/help")


def register(p: argparse.ArgumentParser) -> None:
    """Add the ``docs`` actions to ``p``."""
    sub = p.add_subparsers(dest="docs_command", metavar="ACTION")
    sub.required = True
    b = sub.add_parser(
        "build",
        help="generate the help pages (Markdown and HTML, zh and en)",
        description="Generate the merchant help pages from the reason catalog and "
        "clearpos/helpcenter/guide.toml: DIR/{zh,en}/index, s/<situation>, r/<reason key>, "
        "c/<code>, each as .md and .html. Only changed files are written; pages the "
        "catalog no longer has are removed.",
    )
    b.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"output directory (default {DEFAULT_OUT})"
    )
    b.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 listing every missing, different or stale file",
    )
    b.add_argument(
        "--world",
        type=Path,
        help="take the company, hotline and hours the pages give merchants from this world "
        "file's [acquirer] (default: the packaged demo world)",
    )
    b.add_argument("--json", action="store_true", help="one JSON document on stdout")
    b.set_defaults(run=_build)


def _build(args: argparse.Namespace) -> int:
    from ..world import WorldError
    from . import build, contact_of, stale

    out: Path = args.out
    try:
        contact = contact_of(args.world) if args.world else None
        if args.check:
            problems = stale(out, contact)
            if args.json:
                print(json.dumps({"out": str(out), "current": not problems, "stale": problems}))
            elif problems:
                print(
                    f"clearpos docs: {len(problems)} help files are not current:", file=sys.stderr
                )
                for line in problems:
                    print(f"  {out / line}", file=sys.stderr)
                print("run: clearpos docs build", file=sys.stderr)
            else:
                print(f"{out}: help pages are current")
            return 1 if problems else 0
        report = build(out, contact)
    except (GuideError, CatalogError, WorldError) as exc:
        print(f"clearpos docs: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(
            json.dumps(
                {
                    "out": str(out),
                    "written": report.written,
                    "removed": report.removed,
                    "unchanged": report.unchanged,
                }
            )
        )
    else:
        print(
            f"{out}: {len(report.written)} written, {len(report.removed)} removed, "
            f"{report.unchanged} unchanged"
        )
    return 0
