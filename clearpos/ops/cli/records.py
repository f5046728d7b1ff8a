"""Reports, backup and restore, journal export, store init, the KEK, lifecycles."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ...clock import parse_since, utc_iso
from ...errors import UsageError
from ...keys import KekError
from ...private import private_open
from ...progress import work
from ...store import StoreError, Tx, open_database
from ...store.queries import read
from .. import arrears, cards, merchants, reports, terminals
from ..backup import (
    PG_GUIDANCE,
    backup_sqlite,
    check_backup,
    export_journal,
    is_postgres,
    restore_sqlite,
    write_journal_csv,
)
from ..common import Refused
from ..lifecycle import Lifecycle
from .base import (
    _day,
    _db,
    _emit,
    _error,
    _group,
    _leaf,
    _refused,
    _run,
)


def _report(a: argparse.Namespace) -> int:
    fmt = "json" if a.json else a.format

    def body(tx: Tx) -> tuple[dict[str, Any], str]:
        days = reports.daily_report(tx, a.date, a.mid)
        return {"days": reports.report_json(days)}, reports.report_csv(days)

    try:
        with read(_db(a)) as tx:
            doc, text = body(tx)
    except StoreError as exc:
        return _error(a, str(exc))
    if fmt == "json":
        out = "\n".join(json.dumps(d, ensure_ascii=False, sort_keys=True) for d in doc["days"])
        out = out + "\n" if out else ""
    else:
        out = text
    if a.to and a.to != "-":
        with private_open(Path(a.to), "w", encoding="utf-8") as fh:
            fh.write(out)
        print(
            f"report for {a.date} written to {a.to} ({len(doc['days'])} merchants)", file=sys.stderr
        )
    else:
        sys.stdout.write(out)
    return 0


def _backup(a: argparse.Namespace) -> int:
    if is_postgres(a.db):
        return _error(a, PG_GUIDANCE)
    try:
        with work(f"backing up {a.db}", quiet=a.json) as w:
            check = backup_sqlite(a.db, Path(a.to), force=a.force, progress=w)
    except Refused as exc:
        return _refused(a, exc)
    doc = {"ok": check.ok, "to": a.to, **check.to_dict()}
    text = (
        f"backup of {a.db} written to {a.to}: {check.size} bytes, schema {check.schema_version}, "
        + ", ".join(f"{k} {v}" for k, v in check.counts.items())
        + ("; check OK" if check.ok else "; CHECK FAILED: " + "; ".join(check.problems))
    )
    _emit(a, doc, text)
    return 0 if check.ok else 1


def _restore(a: argparse.Namespace) -> int:
    if is_postgres(a.db):
        return _error(a, PG_GUIDANCE)
    try:
        with work(f"checking {a.source}", quiet=a.json) as w:
            source = Path(a.source)
            check = (
                check_backup(source, w)
                if a.check_only
                else restore_sqlite(source, a.db, force=a.force, progress=w)
            )
    except Refused as exc:
        return _refused(a, exc)
    if a.check_only:
        doc = {"ok": check.ok, **check.to_dict()}
        text = f"{a.source}: " + ("OK" if check.ok else "FAILED: " + "; ".join(check.problems))
        _emit(a, doc, text)
        return 0 if check.ok else 1
    doc = {"ok": True, "restored_to": a.db, **check.to_dict()}
    _emit(
        a,
        doc,
        f"restored {a.source} into {a.db} (integrity ok, schema {check.schema_version}, audit clean)",
    )
    return 0


def _export(a: argparse.Namespace) -> int:
    try:
        since = utc_iso(parse_since(a.since))
        until = utc_iso(parse_since(a.until)) if a.until else None
    except ValueError as exc:
        raise UsageError(str(exc)) from None

    to_stdout = a.to == "-"

    def body(tx: Tx) -> tuple[dict[str, Any], str]:
        with work("exporting", quiet=a.json) as w:
            if to_stdout:
                n = write_journal_csv(tx, sys.stdout, since=since, until=until, progress=w)
            else:
                n = export_journal(
                    tx, Path(a.to), since=since, until=until, force=a.force, progress=w
                )
        return (
            {
                "ok": True,
                "to": a.to,
                "rows": n,
                "since": since,
                "until": until,
            },
            f"{n} journal rows written to {'standard output' if to_stdout else a.to} (card numbers masked)",
        )

    if not to_stdout:
        return _run(a, body, write=False)
    # the CSV is standard output; the summary (text or JSON) goes to standard error
    try:
        with read(_db(a)) as tx:
            doc, text = body(tx)
    except Refused as exc:
        return _refused(a, exc)
    except StoreError as exc:
        return _error(a, str(exc))
    sys.stdout.flush()
    print(json.dumps(doc, ensure_ascii=False, sort_keys=True) if a.json else text, file=sys.stderr)
    return 0


def _init(a: argparse.Namespace) -> int:
    """Create an empty store with the current schema; an existing one is left alone."""
    from ...store import sqlite_path

    try:
        path = sqlite_path(a.db)
        if path is not None and path.exists():
            return _error(a, f"store {path.absolute()} already exists; nothing was changed")
        db = open_database(a.db, create=True)
        with read(db) as tx:
            if not tx.is_empty():
                return _error(a, f"store {db.url} already holds data; nothing was changed")
    except StoreError as exc:
        return _error(a, str(exc))
    _emit(
        a,
        {"ok": True, "created": db.url},
        f"created an empty store {db.url}; load a world with "
        f"`clearpos host --world FILE --db {db.url}`, then add the first console user with "
        f"`clearpos admin --db {db.url} user add --username NAME --role admin --by NAME`",
    )
    return 0


def _kek_new(a: argparse.Namespace) -> int:
    """A fresh KEK file, made once; the one every clearpos command then reads."""
    from ...keys.kek import default_kek_path, new_kek_file

    path = Path(a.out).expanduser() if a.out else default_kek_path()
    try:
        kek = new_kek_file(path)
    except KekError as exc:
        return _error(a, str(exc))
    hint = (
        ""
        if path.absolute() == default_kek_path().absolute()
        else f"; point clearpos at it with: export CLEARPOS_KEK_FILE={path.absolute()}"
    )
    _emit(
        a,
        {"ok": True, "file": str(path.absolute()), "fingerprint": kek.fingerprint()},
        f"KEK written to {path.absolute()} (mode 0600, fingerprint {kek.fingerprint()}){hint}. "
        "Keep a copy somewhere safe: without it no stored key can be opened.",
    )
    return 0


def _kek(sub: Any) -> None:
    g = _group(sub, "kek", "the key-encryption key that seals every stored key")
    p = _leaf(g, "new", "make the KEK file once (never replaces one)", _kek_new)
    p.add_argument("--out", help="KEK FILE (default $CLEARPOS_KEK_FILE or ~/.clearpos/kek)")


def _lifecycles(a: argparse.Namespace) -> int:
    tables = [
        merchants.MERCHANT,
        terminals.TERMINAL,
        cards.CARD,
        *a.extra_lifecycles,  # tickets' (diagnosis), passed in by clearpos.cli
        arrears.REQUEST,
    ]
    for lc in tables:
        rows = [{"action": r[0], "from": r[1], "to": r[2], "meaning": r[3]} for r in lc.table()]
        if a.json:
            print(
                json.dumps(
                    {"entity": lc.entity, "states": list(lc.states), "transitions": rows},
                    ensure_ascii=False,
                )
            )
        else:
            print(f"{lc.entity}: {' | '.join(lc.states)}")
            for r in rows:
                print(f"  {r['action']:<14} {r['from']:<40} → {r['to']:<12} {r['meaning']}")
    return 0


def _records(sub: Any, lifecycles: Sequence[Lifecycle] = ()) -> None:
    p = _leaf(sub, "report", "daily report per merchant (自动对账): CSV or JSON", _report)
    p.add_argument("--date", required=True, type=_day, help="business date YYYY-MM-DD (China time)")
    p.add_argument("--mid")
    p.add_argument("--format", choices=["csv", "json"], default="csv")
    p.add_argument("--to", help="write to FILE instead of standard output (- is standard output)")

    p = _leaf(
        sub,
        "backup",
        "consistent copy of a running SQLite store (PostgreSQL: pg_dump guidance)",
        _backup,
    )
    p.add_argument("--to", required=True, help="backup FILE")
    p.add_argument("--force", action="store_true", help="overwrite FILE")

    p = _leaf(sub, "restore", "check a backup, then restore it into a store", _restore)
    p.add_argument("--from", dest="source", required=True, help="backup FILE")
    p.add_argument("--force", action="store_true", help="overwrite a store that holds data")
    p.add_argument("--check-only", action="store_true", help="check the backup, restore nothing")

    p = _leaf(sub, "export", "journal as CSV, card numbers masked", _export)
    p.add_argument("--since", required=True, help="15m, 1d, 7d or a date like 2026-11-20")
    p.add_argument("--until", help="same forms; default now")
    p.add_argument("--to", required=True, help="CSV FILE, or - for standard output")
    p.add_argument("--force", action="store_true", help="overwrite FILE")

    _leaf(sub, "init", "create an empty store (the only admin command that creates one)", _init)
    p = _leaf(
        sub, "lifecycles", "the state machines: allowed transitions of each entity", _lifecycles
    )
    p.set_defaults(extra_lifecycles=tuple(lifecycles))
