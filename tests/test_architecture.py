"""The layering of docs/architecture.md, checked from the imports; and no SQL outside the store.

The layers are written down once, in the ``layers`` block of docs/architecture.md
(bottom row first). A package may import packages of the rows below its own,
never one of its own row (siblings are independent) or above. Every import
counts: at module level, inside a function, under ``TYPE_CHECKING``. The
``exceptions`` block of the same page lists the few arrows still to be
straightened, each with its reason; an exception that no longer happens must
be deleted from the page.

SQL — a ``.execute(...)`` call, or a string literal that reads like a statement
— appears only under clearpos/store/ and in the packages the ``sql-elsewhere``
block names.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "clearpos"
DOC = ROOT / "docs" / "architecture.md"

#: a string literal that is (part of) a SQL statement
SQL_TEXT = re.compile(
    r"\b(SELECT\s.*?\bFROM\s|INSERT\s+INTO\s|UPDATE\s+\w+\s+SET\s|DELETE\s+FROM\s|"
    r"CREATE\s+(TABLE|INDEX)\s|ALTER\s+TABLE\s|DROP\s+TABLE\s|PRAGMA\s+\w)",
    re.S,
)
SQL_CALLS = {"execute", "executemany", "executescript"}


def _block(name: str) -> list[str]:
    """The non-empty lines (comments cut) of the fenced block ```NAME in the page."""
    text = DOC.read_text("utf-8")
    m = re.search(rf"^```{re.escape(name)}\n(.*?)^```", text, re.M | re.S)
    assert m is not None, f"docs/architecture.md has no ```{name} block"
    lines = (line.split("#", 1)[0].strip() for line in m.group(1).splitlines())
    return [line for line in lines if line]


def layers() -> dict[str, int]:
    """Package (or top-level module) -> its row, 0 at the bottom."""
    rank: dict[str, int] = {}
    for row, line in enumerate(_block("layers")):
        for name in line.split():
            assert name not in rank, f"{name} is in two rows of the layers block"
            rank[name] = row
    return rank


def exceptions() -> dict[tuple[str, str], str]:
    """(file, package it may import against the layers) -> why."""
    out: dict[tuple[str, str], str] = {}
    for line in _block("exceptions"):
        m = re.fullmatch(r"(\S+)\s*->\s*(\S+)\s*:\s*(.+)", line)
        assert m is not None, f"exception line not 'FILE -> PACKAGE: why': {line!r}"
        out[(m.group(1), m.group(2))] = m.group(3)
    return out


@dataclass(frozen=True, slots=True)
class Arrow:
    file: str  # clearpos/console/views.py
    line: int
    source: str  # the package of the file: console
    target: str  # the package it imports: diagnosis


def _unit(module: str) -> str:
    """``clearpos.ops.tickets`` -> ``ops``; ``clearpos.money`` -> ``money``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "clearpos"


def _modules() -> Iterator[tuple[Path, str, ast.Module]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        yield path, ".".join(parts), ast.parse(path.read_text("utf-8"), str(path))


def arrows() -> Iterator[Arrow]:
    """Every import of one clearpos package by another."""
    for path, module, tree in _modules():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        rel = str(path.relative_to(ROOT))
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[: len(base) - (node.level - 1)]
                    target = ".".join([*base, node.module] if node.module else base)
                else:
                    target = node.module or ""
                # ``from clearpos import money`` imports clearpos.money; a name that is no
                # module (``from . import __version__``) is the package's own attribute
                targets = (
                    [target]
                    if target != "clearpos"
                    else [
                        f"clearpos.{a.name}"
                        for a in node.names
                        if (PACKAGE / a.name).is_dir() or (PACKAGE / f"{a.name}.py").is_file()
                    ]
                )
            for target in targets:
                if target.startswith("clearpos.") and _unit(target) != _unit(module):
                    yield Arrow(rel, node.lineno, _unit(module), _unit(target))


def test_every_package_has_a_layer() -> None:
    rank = layers()
    present = {_unit(module) for _, module, _ in _modules()} - {"clearpos"}
    assert sorted(present - rank.keys()) == [], "place these in the layers block"
    assert sorted(rank.keys() - present) == [], "the layers block names what does not exist"


def test_imports_follow_the_layers() -> None:
    rank, allowed = layers(), exceptions()
    wrong = [
        f"{a.file}:{a.line}: {a.source} (row {rank[a.source]}) imports {a.target} "
        f"(row {rank[a.target]})"
        for a in arrows()
        if rank[a.target] >= rank[a.source] and (a.file, a.target) not in allowed
    ]
    assert wrong == []


def test_exceptions_still_happen() -> None:
    rank = layers()
    seen = {(a.file, a.target) for a in arrows() if rank[a.target] >= rank[a.source]}
    stale = [f"{f} -> {t}" for f, t in exceptions() if (f, t) not in seen]
    assert stale == [], "straightened: delete these from the exceptions block"


def _docstrings(tree: ast.Module) -> set[int]:
    """ids of the docstring nodes: prose that may name a statement (``PRAGMA integrity_check``)."""
    out: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                out.add(id(body[0].value))
    return out


def _sql_outside_store() -> Iterator[str]:
    elsewhere = _block("sql-elsewhere")
    for path, module, tree in _modules():
        rel = str(path.relative_to(ROOT))
        if rel.startswith("clearpos/store/") or _unit(module) in elsewhere:
            continue
        prose = _docstrings(tree)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in SQL_CALLS
            ):
                yield f"{rel}:{node.lineno}: .{node.func.attr}(...)"
            elif (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and id(node) not in prose
                and SQL_TEXT.search(node.value)
            ):
                yield f"{rel}:{node.lineno}: {node.value.strip()[:60]!r}"


def test_no_sql_outside_the_store() -> None:
    assert list(_sql_outside_store()) == []


@pytest.mark.parametrize(
    "text",
    [
        "SELECT * FROM journal",
        "SELECT id, kind FROM journal",
        "INSERT INTO tickets (a) VALUES (?)",
        "UPDATE users SET disabled = 1",
        "DELETE FROM meta",
        "PRAGMA integrity_check",
        "SELECT COUNT(*) AS n FROM terminals GROUP BY mid",
    ],
)
def test_the_sql_detector_sees_statements(text: str) -> None:
    assert SQL_TEXT.search(text)


@pytest.mark.parametrize(
    "text",
    ["select a card", "UPDATE the terminal", "Delete from the list", "the SELECT key"],
)
def test_the_sql_detector_leaves_prose(text: str) -> None:
    assert not SQL_TEXT.search(text)


def test_the_arrow_reader_sees_every_kind_of_import() -> None:
    """A relative import inside a function, and an absolute one, both count."""
    found = {(a.file, a.target) for a in arrows()}
    assert ("clearpos/console/gate.py", "ops") in found  # from ..ops.common, inside a function
    assert ("clearpos/lab/campaign.py", "terminal") in found  # from clearpos.terminal import ...
    assert ("clearpos/app.py", "console") in found  # from .console.app, inside a function


def test_importing_every_module_has_no_side_effects(tmp_path: Path) -> None:
    """--doctest-modules imports every module: none may write a file, print, or start a thread."""
    import os
    import subprocess
    import sys

    names = [module for _, module, _ in _modules()]
    script = (
        "import importlib, sys, threading\n"
        f"for name in {names!r}:\n"
        "    importlib.import_module(name)\n"
        "assert threading.active_count() == 1, threading.enumerate()\n"
    )
    env = {**os.environ, "HOME": str(tmp_path), "PYTHONPATH": str(ROOT)}
    env.pop("CLEARPOS_KEK", None)
    env.pop("CLEARPOS_KEK_FILE", None)
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert (done.stdout, done.stderr) == ("", "")
    assert sorted(p.name for p in tmp_path.iterdir()) == []
