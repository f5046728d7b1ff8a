"""The terminal's state directory: one SQLite file that survives SIGKILL at any point.

Everything a POS must not forget lives in ``DIR/terminal.db``: configuration,
the STAN counter, the batch, the keys (sealed), the signed-in operator, the
local journal of every attempt, the one pending reversal and the offline queue.
Every change is one SQLite transaction with ``synchronous=FULL``: after a
crash the file holds either the state before or the state after, never half.

Card data: the journal keeps PANs masked. What the terminal must be able to
send again (a reversal, an offline upload, a batch-upload item, a void of an
earlier sale) is kept as the request's wire bytes -- without any PIN block --
sealed with the key-encryption key (AES-GCM, bound to the terminal id). Keys
are sealed the same way (:meth:`clearpos.keys.TerminalKeys.to_sealed`).
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from clearpos.keys import KeyEncryptionKey
from clearpos.private import private_dir, private_file
from clearpos.wire import Card, FinancialRequest, build, parse

from .chipdownload import StoredAid, StoredCapk

__all__ = [
    "JournalRow",
    "PendingReversal",
    "RequestSealer",
    "StateLockedError",
    "Store",
]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS config (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS journal (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    kind TEXT NOT NULL,
    stan TEXT NOT NULL,
    batch TEXT NOT NULL,
    amount_fen INTEGER,
    pan TEXT NOT NULL DEFAULT '',
    entry TEXT NOT NULL DEFAULT '',
    org TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    code TEXT NOT NULL DEFAULT '',
    rrn TEXT NOT NULL DEFAULT '',
    auth_code TEXT NOT NULL DEFAULT '',
    host_date TEXT NOT NULL DEFAULT '',
    host_time TEXT NOT NULL DEFAULT '',
    original_stan TEXT NOT NULL DEFAULT '',
    original_batch TEXT NOT NULL DEFAULT '',
    operator TEXT NOT NULL DEFAULT '',
    voided INTEGER NOT NULL DEFAULT 0,
    settled INTEGER NOT NULL DEFAULT 0,
    sealed TEXT,
    detail TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS journal_batch ON journal (batch, stan);
CREATE TABLE IF NOT EXISTS reversal (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    journal_id INTEGER NOT NULL,
    stan TEXT NOT NULL,
    batch TEXT NOT NULL,
    kind TEXT NOT NULL,
    amount_fen INTEGER,
    pan TEXT NOT NULL DEFAULT '',
    reason_code TEXT NOT NULL,
    sealed TEXT NOT NULL,
    tries INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    last_error TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS chip_capk (
    rid TEXT NOT NULL,
    idx TEXT NOT NULL,
    expiry TEXT NOT NULL,
    modulus TEXT NOT NULL,
    exponent TEXT NOT NULL,
    check_value TEXT NOT NULL,
    loaded_at TEXT NOT NULL,
    PRIMARY KEY (rid, idx));
CREATE TABLE IF NOT EXISTS chip_aid (
    aid TEXT PRIMARY KEY,
    tlv TEXT NOT NULL,
    loaded_at TEXT NOT NULL);
"""
# The schema only grows: a device store of an earlier version gains the new tables
# (chip_capk, chip_aid: issue 19) when it is opened, its rows untouched.

# journal statuses
SENDING = "sending"  # written before the request leaves; a crash leaves it so
APPROVED = "approved"
DECLINED = "declined"
TIMEOUT = "timeout"  # no answer; see the reversal
REVERSED = "reversed"  # a reversal of it was confirmed (00/12/25)
UNKNOWN = "unknown"  # refund whose answer was lost or failed its MAC: ask the host
OFFLINE_STORED = "offline_stored"  # approved locally, waiting in the offline queue
OFFLINE_UPLOADED = "offline_uploaded"  # host has it (00 or 94)
OFFLINE_DECLINED = "offline_declined"  # host refused it at upload
LOCAL = "local"  # refused on the terminal, nothing sent


class StateLockedError(RuntimeError):
    """Another ``clearpos pos`` command is using the same state directory."""


def now_text() -> str:
    """The local time, ISO-8601 with offset, to the second."""
    return datetime.now().astimezone().isoformat(timespec="seconds")


@dataclass(frozen=True, slots=True)
class JournalRow:
    """One row of the local journal (card data masked; the sealed request is opaque)."""

    id: int
    at: str
    kind: str
    stan: str
    batch: str
    amount_fen: int | None
    pan: str
    entry: str
    org: str
    status: str
    reason: str
    code: str
    rrn: str
    auth_code: str
    host_date: str
    host_time: str
    original_stan: str
    original_batch: str
    operator: str
    voided: bool
    settled: bool
    sealed: str | None
    detail: str

    def public(self) -> dict[str, Any]:
        """The row as JSON-friendly data, without the sealed request."""
        out = {k: getattr(self, k) for k in self.__slots__ if k != "sealed"}
        return out


@dataclass(frozen=True, slots=True)
class PendingReversal:
    """The one reversal the terminal owes the host (sent before anything else)."""

    journal_id: int
    stan: str
    batch: str
    kind: str
    amount_fen: int | None
    pan: str
    reason_code: str
    sealed: str
    tries: int
    created_at: str
    last_error: str


class RequestSealer:
    """Seals a financial request (its wire bytes, never a PIN block) under the KEK.

    >>> from clearpos.keys import KeyEncryptionKey
    >>> from clearpos.wire import Kind
    >>> s = RequestSealer(KeyEncryptionKey(bytes(32)), "10000001")
    >>> req = FinancialRequest(kind=Kind.PURCHASE, tid="10000001", mid="898310048161234",
    ...     stan="000001", batch="000001", amount_fen=100,
    ...     card=Card.swiped("6222021234567890123", "2812"))
    >>> s.open(s.seal(req)) == req
    True
    """

    __slots__ = ("_context", "_kek")

    def __init__(self, kek: KeyEncryptionKey, tid: str) -> None:
        self._kek = kek
        self._context = f"terminal-request:{tid}"

    def seal(self, request: FinancialRequest) -> str:
        """Sealed text of ``request`` with any PIN block removed."""
        if request.card is not None and request.card.pin_block is not None:
            request = replace(request, card=without_pin(request.card))
        return self._kek.seal(build(request), self._context)

    def open(self, sealed: str) -> FinancialRequest:
        """The request sealed by :meth:`seal` (raises SealedKeyError when it does not open)."""
        msg, _, _ = parse(self._kek.open(sealed, self._context))
        if not isinstance(msg, FinancialRequest):
            raise ValueError("sealed record is not a financial request")
        return msg


def without_pin(card: Card) -> Card:
    """The same card read without a PIN (entry mode ...2), e.g. for a stored copy."""
    entry = card.entry_mode[:2] + "2" if card.pin_block is not None else card.entry_mode
    return replace(card, pin_block=None, entry_mode=entry)


_JOURNAL_COLUMNS = (
    "id, at, kind, stan, batch, amount_fen, pan, entry, org, status, reason, code, rrn, "
    "auth_code, host_date, host_time, original_stan, original_batch, operator, voided, "
    "settled, sealed, detail"
)


def _row(r: tuple[Any, ...]) -> JournalRow:
    values = list(r)
    values[19] = bool(values[19])
    values[20] = bool(values[20])
    return JournalRow(*values)


class Store:
    """The SQLite state of one terminal. Every public write is one atomic transaction."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        private_dir(directory)  # sealed keys, journal, receipts: the owner's only
        private_dir(directory / "receipts")
        self._lock_file = open(private_file(directory / ".lock"), "a+")  # noqa: SIM115 - held until close()
        try:
            fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.close()
            raise StateLockedError(
                f"state directory {directory} is in use by another clearpos pos command"
            ) from None
        self.path = directory / "terminal.db"
        self._db = sqlite3.connect(private_file(self.path), isolation_level=None, timeout=5)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        with self.transaction():
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self._db.execute(statement)

    def close(self) -> None:
        """Close the database and release the directory lock."""
        self._db.close()
        fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_UN)
        self._lock_file.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic, durable transaction."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # ------------------------------------------------------------------ config

    def get(self, key: str, default: Any = None) -> Any:
        """A configuration value (JSON-decoded), or ``default``."""
        row = self._db.execute("SELECT value FROM config WHERE key = ?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    def put(self, **values: Any) -> None:
        """Set configuration values atomically (None deletes a key)."""
        with self.transaction() as db:
            self._put(db, values)

    @staticmethod
    def _put(db: sqlite3.Connection, values: dict[str, Any]) -> None:
        for key, value in values.items():
            if value is None:
                db.execute("DELETE FROM config WHERE key = ?", (key,))
            else:
                db.execute(
                    "INSERT INTO config (key, value) VALUES (?, ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (key, json.dumps(value, ensure_ascii=False)),
                )

    def next_stan(self) -> str:
        """Increment and persist the STAN (000001..999999, cycling) and return it."""
        with self.transaction() as db:
            last = int(self.get("stan", 0))
            stan = last % 999999 + 1
            self._put(db, {"stan": stan})
        return f"{stan:06d}"

    # ------------------------------------------------------------------ journal

    def journal_add(self, **fields: Any) -> int:
        """Append one journal row; returns its id."""
        with self.transaction() as db:
            return self._journal_add(db, fields)

    @staticmethod
    def _journal_add(db: sqlite3.Connection, fields: dict[str, Any]) -> int:
        fields.setdefault("at", now_text())
        names = ", ".join(fields)
        marks = ", ".join("?" for _ in fields)
        cur = db.execute(f"INSERT INTO journal ({names}) VALUES ({marks})", tuple(fields.values()))
        assert cur.lastrowid is not None
        return cur.lastrowid

    def journal_update(self, journal_id: int, **fields: Any) -> None:
        """Update one journal row."""
        with self.transaction() as db:
            self._journal_update(db, journal_id, fields)

    @staticmethod
    def _journal_update(db: sqlite3.Connection, journal_id: int, fields: dict[str, Any]) -> None:
        if fields:
            sets = ", ".join(f"{k} = ?" for k in fields)
            db.execute(f"UPDATE journal SET {sets} WHERE id = ?", (*fields.values(), journal_id))

    def journal(self, where: str = "1=1", params: tuple[Any, ...] = ()) -> list[JournalRow]:
        """Journal rows matching a SQL condition, oldest first."""
        rows = self._db.execute(
            f"SELECT {_JOURNAL_COLUMNS} FROM journal WHERE {where} ORDER BY id", params
        ).fetchall()
        return [_row(r) for r in rows]

    def journal_row(self, journal_id: int) -> JournalRow:
        """One journal row by id."""
        return self.journal("id = ?", (journal_id,))[0]

    def begin_send(self, fields: dict[str, Any], reversal: dict[str, Any] | None) -> int:
        """Journal a request as ``sending`` and, for a reversible one, store its reversal.

        One transaction, committed before the first byte leaves the terminal.
        """
        with self.transaction() as db:
            journal_id = self._journal_add(db, {**fields, "status": SENDING})
            if reversal is not None:
                db.execute("DELETE FROM reversal")
                db.execute(
                    "INSERT INTO reversal (id, journal_id, stan, batch, kind, amount_fen, pan, "
                    "reason_code, sealed, created_at) VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        journal_id,
                        reversal["stan"],
                        reversal["batch"],
                        reversal["kind"],
                        reversal["amount_fen"],
                        reversal["pan"],
                        reversal.get("reason_code", "98"),
                        reversal["sealed"],
                        now_text(),
                    ),
                )
        return journal_id

    def finish(
        self,
        journal_id: int,
        *,
        clear_reversal: bool,
        config: dict[str, Any] | None = None,
        void_of: int | None = None,
        **fields: Any,
    ) -> None:
        """Record a request's outcome, and clear its reversal, in one transaction.

        ``void_of``: the journal id of the original an approved void cancels.
        """
        with self.transaction() as db:
            self._journal_update(db, journal_id, fields)
            if void_of is not None:
                db.execute("UPDATE journal SET voided = 1 WHERE id = ?", (void_of,))
            if clear_reversal:
                db.execute("DELETE FROM reversal WHERE journal_id = ?", (journal_id,))
            if config:
                self._put(db, config)

    # ------------------------------------------------------------------ reversal

    def reversal(self) -> PendingReversal | None:
        """The pending reversal, if any."""
        r = self._db.execute(
            "SELECT journal_id, stan, batch, kind, amount_fen, pan, reason_code, sealed, tries, "
            "created_at, last_error FROM reversal WHERE id = 1"
        ).fetchone()
        return None if r is None else PendingReversal(*r)

    def set_reversal_reason(self, reason_code: str, *, sealed: str | None = None) -> None:
        """Change the reason the pending reversal will carry (98 -> 96 / A0 / 06), and
        with ``sealed`` the request it undoes (a chip reversal carries the card's 55)."""
        with self.transaction() as db:
            db.execute("UPDATE reversal SET reason_code = ? WHERE id = 1", (reason_code,))
            if sealed is not None:
                db.execute("UPDATE reversal SET sealed = ? WHERE id = 1", (sealed,))

    def reversal_attempt(self, error: str) -> None:
        """Count one failed try of the pending reversal."""
        with self.transaction() as db:
            db.execute(
                "UPDATE reversal SET tries = tries + 1, last_error = ? WHERE id = 1", (error,)
            )

    def reversal_done(self, journal_status: str, **fields: Any) -> None:
        """The host confirmed the reversal: drop it and mark its original."""
        with self.transaction() as db:
            row = db.execute("SELECT journal_id FROM reversal WHERE id = 1").fetchone()
            db.execute("DELETE FROM reversal")
            if row is not None:
                self._journal_update(db, row[0], {"status": journal_status, **fields})

    # ------------------------------------------------------------------ batches

    def close_batch(self, batch: str, next_batch: str) -> None:
        """Mark the batch settled and move to ``next_batch``; sealed copies of its
        settled records are dropped (pre-authorisations are kept for completion)."""
        with self.transaction() as db:
            db.execute("UPDATE journal SET settled = 1 WHERE batch = ?", (batch,))
            db.execute(
                "UPDATE journal SET sealed = NULL WHERE batch = ? AND kind NOT IN ('preauth')",
                (batch,),
            )
            self._put(db, {"batch": next_batch})

    # ------------------------------------------------------------------ chip

    def chip_replace(self, kind: str, items: Sequence[StoredCapk] | Sequence[StoredAid]) -> None:
        """Hold exactly ``items`` of ``kind`` (``capk`` / ``aid``) from now on, in one write."""
        at = now_text()
        with self.transaction() as db:
            if kind == "capk":
                db.execute("DELETE FROM chip_capk")
                for k in items:
                    assert isinstance(k, StoredCapk)
                    db.execute(
                        "INSERT INTO chip_capk VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (k.rid, k.index, k.expiry, k.modulus, k.exponent, k.check_value, at),
                    )
            elif kind == "aid":
                db.execute("DELETE FROM chip_aid")
                for a in items:
                    assert isinstance(a, StoredAid)
                    db.execute("INSERT INTO chip_aid VALUES (?, ?, ?)", (a.aid, a.tlv, at))
            else:
                raise ValueError(f"unknown chip download kind {kind!r}")
            self._put(db, {f"chip_{kind}_at": at})

    def chip_capks(self) -> list[StoredCapk]:
        """The CA public keys this terminal holds, by RID and index."""
        rows = self._db.execute(
            "SELECT rid, idx, expiry, modulus, exponent, check_value FROM chip_capk "
            "ORDER BY rid, idx"
        ).fetchall()
        return [StoredCapk(*r) for r in rows]

    def chip_aids(self) -> list[StoredAid]:
        """The AIDs (with their parameter TLV) this terminal holds."""
        rows = self._db.execute("SELECT aid, tlv FROM chip_aid ORDER BY aid").fetchall()
        return [StoredAid(*r) for r in rows]

    def writable_probe(self) -> str | None:
        """None when the directory accepts a durable write, else the error text."""
        probe = self.directory / ".doctor-probe"
        try:
            with open(probe, "wb") as fh:
                fh.write(b"ok")
                fh.flush()
                os.fsync(fh.fileno())
            probe.unlink()
        except OSError as exc:
            return f"{exc.strerror or exc}"
        return None
