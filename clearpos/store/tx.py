"""``Tx``: every query the host makes, in SQL common to SQLite and PostgreSQL.

A backend supplies a connection whose ``execute(sql, params)`` takes ``?``
placeholders (the PostgreSQL backend translates them) and returns rows that
can be indexed by column name. The pipeline only ever talks to ``Tx``.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

from .records import (
    JOURNAL_COLUMNS,
    AidRec,
    CapkRec,
    CardRec,
    ChipRec,
    JournalEntry,
    JournalRec,
    MaintenanceRec,
    MerchantRec,
    SettlementRec,
    TerminalRec,
    journal_id_of,
)
from .rowcache import CACHED_TABLES, RowCache

# Kinds counted in settlement totals (spec §4).
DEBIT_KINDS = ("purchase", "completion", "offline")
CREDIT_KINDS = ("refund", "void", "completion_void")

#: debit amount, debit count, credit amount, credit count
Sums = tuple[int, int, int, int]


#: What terminals download for chip cards: CA public keys (0820 372 / 0800 370) and
#: chip parameters per AID (0820 382 / 0800 380). Each has a generation in meta
#: (``emv.capk_gen``, ``emv.aid_gen``) that changes whenever its rows change.
EMV_KINDS = ("capk", "aid")

#: spec §8: QuickPass taps up to ¥1,000.00 need no PIN unless the world says otherwise
DEFAULT_QUICKPASS_NO_PIN_LIMIT_FEN = 100_000

#: The simulated issuer's chip master keys, sealed, in meta under ``issuer.imk_<name>``.
ISSUER_KEY_NAMES = ("ac", "smi", "smc")

#: columns of the cached records that the store keeps as 0/1 (the records say bool)
_BOOL_COLUMNS = {
    "terminals": frozenset(("keys_proven", "chip")),
    "cards": frozenset(("pin_locked",)),
}

#: the one INSERT of a journal row
_JOURNAL_INSERT = (
    f"INSERT INTO journal ({', '.join(JOURNAL_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in JOURNAL_COLUMNS)})"
)

#: INSERT statements by (table, columns...), built once
_INSERT_SQL: dict[tuple[str, ...], str] = {}


#: per (record class, changed columns, bool columns): a function of (row, *new values)
#: giving the row with those columns changed, or None when a column is no field
_REPLACERS: dict[tuple[type, tuple[str, ...], frozenset[str]], Callable[..., Any] | None] = {}

#: UPDATE statements by (table, key, columns), built once
_UPDATE_SQL: dict[tuple[str, str, tuple[str, ...]], str] = {}


#: the financial row of a request: ``journal_request``, a partial UNIQUE index (only
#: rows with a req_key are in it, and req_key is always "TID:batch:STAN" of its
#: row); its parameters are ``req_key.rsplit(":", 2)`` (batch and STAN are digits)
REQUEST_ROW = "tid = ? AND batch = ? AND stan = ? AND req_key IS NOT NULL"
JOURNAL_BY_KEY = f"SELECT * FROM journal WHERE {REQUEST_ROW}"
#: the STANs of one terminal's batch's requests (REQUEST_ROW without the STAN)
_REQUEST_STANS = f"SELECT stan FROM journal WHERE {REQUEST_ROW.replace(' AND stan = ?', '')}"
assert _REQUEST_STANS.count("?") == 2


def _replacer(cls: type, cols: tuple[str, ...], bools: frozenset[str]) -> Callable[..., Any] | None:
    """Straight-line code calling ``cls`` with the row's fields and the new values in
    place (a card write on every purchase: ``dataclasses.replace`` costs four times
    as much, a loop over the columns twice)."""
    names = [f.name for f in dataclasses.fields(cls)]
    if not set(cols) <= set(names):
        return None
    args = []
    for n in names:
        if n in cols:
            v = f"v{cols.index(n)}"
            args.append(f"bool({v})" if n in bools else v)
        else:
            args.append(f"row.{n}")
    params = ", ".join(f"v{i}" for i in range(len(cols)))
    src = f"def replace(row, {params}):\n    return cls({', '.join(args)})\n"
    env: dict[str, Any] = {"cls": cls}
    exec(compile(src, f"<replace {cls.__name__} {' '.join(cols)}>", "exec"), env)
    fn: Callable[..., Any] = env["replace"]
    return fn


def _replaced(row: Any, cols: Mapping[str, Any], bools: frozenset[str]) -> Any:
    """``row`` with ``cols`` changed (bool columns as bool), or None when ``cols``
    names a column that is no field of the record.

    >>> from clearpos.store.records import MaintenanceRec
    >>> w = MaintenanceRec(1, "li", "a", "b", "zh", "en", "li", "now", False)
    >>> _replaced(w, {"end_at": "z"}, frozenset()).end_at
    'z'
    >>> _replaced(w, {"nope": 1}, frozenset()) is None
    True
    """
    key = (type(row), tuple(cols), bools)
    try:
        fn = _REPLACERS[key]
    except KeyError:
        fn = _REPLACERS[key] = _replacer(type(row), key[1], bools)
    return None if fn is None else fn(row, *cols.values())


class Cursor(Protocol):
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...


class Connection(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ...) -> Cursor: ...


class Tx:
    """Domain queries inside one database transaction."""

    #: appended to SELECTs of rows the transaction will update (PostgreSQL: FOR UPDATE)
    lock = ""

    def __init__(self, conn: Connection, *, cache: RowCache | None = None) -> None:
        self.conn = conn
        #: the configuration generation as read in this database transaction
        self._config_gen: str | None = None
        #: terminals, merchants and cards kept between transactions (the SQLite writer)
        self.cache = cache

    def forget(self) -> None:
        """A new database transaction starts on this object (the SQLite writer reuses
        one per connection): what was read in the last one no longer holds, and the
        row cache learns whether another connection committed since."""
        self._config_gen = None
        if self.cache is not None:
            self.cache.begin(int(self.conn.execute("PRAGMA data_version").fetchone()[0]))

    #: True where :meth:`expect_request` saves a round trip (PostgreSQL)
    prefetches_duplicates = False

    def expect_request(self, key: str, card_token: str | None = None) -> None:
        """The unit's request key and its card's PAN token, known before its terminal
        read: PostgreSQL answers the duplicate check (:meth:`journal_by_key`) and
        the card read (:meth:`card_by_token`) with that read. A hint only."""

    def committed(self) -> None:
        """The transaction committed (the writer says so after COMMIT): the rows it
        read and wrote may be kept for the next ones."""
        if self.cache is not None:
            self.cache.committed()

    # ------------------------------------------------------------------ helpers

    def _one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.conn.execute(sql, params).fetchone()

    def _all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return self.conn.execute(sql, params).fetchall()

    def _update(self, table: str, key: str, key_value: Any, cols: Mapping[str, Any]) -> None:
        if not cols:
            return
        shape = (table, key, tuple(cols))
        sql = _UPDATE_SQL.get(shape)
        if sql is None:
            sets = ", ".join(f"{c} = ?" for c in cols)
            sql = _UPDATE_SQL[shape] = f"UPDATE {table} SET {sets} WHERE {key} = ?"
        self.conn.execute(sql, [*cols.values(), key_value])
        if self.cache is not None and table in CACHED_TABLES:
            self._write_through(table, key, key_value, cols)

    def _write_through(self, table: str, key: str, key_value: Any, cols: Mapping[str, Any]) -> None:
        """The cached row as the UPDATE left it (plain values of record fields), or
        dropped when the cache cannot follow."""
        cache = self.cache
        assert cache is not None
        if key != CACHED_TABLES[table]:
            cache.drop(table)
            return
        row = cache.get(table, key_value)
        if row is None:
            return
        if table == "merchants":
            cache.evict(table, key_value)  # JSON columns
            return
        new = _replaced(row, cols, _BOOL_COLUMNS.get(table, frozenset()))
        if new is None:
            cache.evict(table, key_value)  # a column the record lacks
            return
        cache.put(table, key_value, new)

    def _insert(self, table: str, cols: Mapping[str, Any]) -> int:
        shape = (table, *cols)
        sql = _INSERT_SQL.get(shape)
        if sql is None:  # a handful of shapes: the journal row of each message type
            names = ", ".join(cols)
            marks = ", ".join("?" for _ in cols)
            sql = _INSERT_SQL[shape] = f"INSERT INTO {table} ({names}) VALUES ({marks})"
        if getattr(self.conn, "needs_returning", False):
            return int(self._one(sql + " RETURNING id", list(cols.values()))["id"])
        # SQLite: lastrowid is the new INTEGER PRIMARY KEY, without RETURNING's extra
        # result row (measured: 54-58 us instead of 75-84 us for a journal insert)
        cur = self.conn.execute(sql, list(cols.values()))
        return int(cur.lastrowid)  # type: ignore[attr-defined]

    def insert_row(self, table: str, cols: Mapping[str, Any]) -> int:
        """INSERT one row of a table with an ``id`` key (tickets, users, the arrears
        ledger, ...) and return its id."""
        return self._insert(table, cols)

    def update_row(self, table: str, key: str, key_value: Any, cols: Mapping[str, Any]) -> None:
        """UPDATE ``cols`` of the row whose ``key`` column is ``key_value``."""
        self._update(table, key, key_value, cols)

    def empty_tables(self, tables: Sequence[str]) -> None:
        """Delete every row of ``tables`` (children before parents)."""
        for table in tables:
            self.conn.execute(f"DELETE FROM {table}")
            if self.cache is not None and table in CACHED_TABLES:
                self.cache.drop(table)
            elif self.cache is not None and table == "journal":
                self.cache.forget_requests()

    # ------------------------------------------------------------------ meta

    def meta(self, key: str, default: str = "") -> str:
        row = self._one("SELECT value FROM meta WHERE key = ?", (key,))
        return str(row["value"]) if row else default

    def set_meta(self, key: str, value: str) -> None:
        self._put_meta(key, value)
        self.touch_config()

    def touch_config(self) -> None:
        """Tell every host process that configuration (meta, maintenance) changed."""
        self._config_gen = secrets.token_hex(8)
        self._put_meta("config.gen", self._config_gen)

    def config_generation(self) -> str:
        """Read once per database transaction (or taken from :meth:`terminal`'s row):
        inside one, only this transaction can change it (SQLite holds the write lock
        for the whole group-commit batch; on PostgreSQL every unit is its own
        transaction)."""
        if self._config_gen is None:
            self._config_gen = self.meta("config.gen")
        return self._config_gen

    def maintenance_all(self) -> list[MaintenanceRec]:
        rows = self._all("SELECT * FROM maintenance WHERE cancelled = 0 ORDER BY start_at")
        return [MaintenanceRec.of(r) for r in rows]

    def _put_meta(self, key: str, value: str) -> None:
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    # ------------------------------------------------------------------ merchants, terminals

    def merchant(self, mid: str, *, lock: bool = True) -> MerchantRec | None:
        """The merchant row; ``lock=False`` only reads it (no ``FOR UPDATE``), for a
        unit that will not change it and must not queue behind other readers."""
        cache = self.cache
        if cache is not None:
            rec: MerchantRec | None = cache.get("merchants", mid)
            if rec is not None:
                return rec
        row = self._one(
            "SELECT * FROM merchants WHERE mid = ?" + (self.lock if lock else ""), (mid,)
        )
        if row is None:
            return None
        rec = MerchantRec.of(row)
        if cache is not None:
            cache.put("merchants", mid, rec)
        return rec

    def merchants(self) -> list[MerchantRec]:
        return [MerchantRec.of(r) for r in self._all("SELECT * FROM merchants ORDER BY mid")]

    def update_merchant(self, mid: str, **cols: Any) -> None:
        if "restricted_types" in cols and not isinstance(cols["restricted_types"], str):
            cols["restricted_types"] = json.dumps(list(cols["restricted_types"]))
        self._update("merchants", "mid", mid, cols)

    def insert_merchant(self, **cols: Any) -> None:
        names = ", ".join(cols)
        self.conn.execute(
            f"INSERT INTO merchants ({names}) VALUES ({', '.join('?' for _ in cols)})",
            list(cols.values()),
        )

    def terminal(self, tid: str) -> TerminalRec | None:
        cache = self.cache
        if cache is not None:
            rec: TerminalRec | None = cache.get("terminals", tid)
            if rec is not None:
                return rec
        if self._config_gen is not None:
            row = self._one("SELECT * FROM terminals WHERE tid = ?" + self.lock, (tid,))
            rec = TerminalRec.of(row) if row else None
            if rec is not None and cache is not None:
                cache.put("terminals", tid, rec)
            return rec
        # The configuration generation rides along: every message's first read is its
        # terminal, so the host learns whether configuration changed without a query
        # of its own (on PostgreSQL, one round trip fewer per message).
        row = self._one(
            "SELECT t.*, (SELECT value FROM meta WHERE key = 'config.gen') AS config_gen "
            "FROM terminals t WHERE t.tid = ?" + self.lock,
            (tid,),
        )
        if row is None:
            return None
        self._config_gen = row["config_gen"] or ""
        rec = TerminalRec.of(row)
        if cache is not None:
            cache.put("terminals", tid, rec)
        return rec

    def terminals(self, mid: str | None = None) -> list[TerminalRec]:
        if mid is None:
            rows = self._all("SELECT * FROM terminals ORDER BY tid")
        else:
            rows = self._all("SELECT * FROM terminals WHERE mid = ? ORDER BY tid", (mid,))
        return [TerminalRec.of(r) for r in rows]

    def update_terminal(self, tid: str, **cols: Any) -> None:
        self._update("terminals", "tid", tid, cols)

    def insert_terminal(self, **cols: Any) -> None:
        names = ", ".join(cols)
        self.conn.execute(
            f"INSERT INTO terminals ({names}) VALUES ({', '.join('?' for _ in cols)})",
            list(cols.values()),
        )

    # ------------------------------------------------------------------ cards

    def card_by_token(self, token: str) -> CardRec | None:
        cache = self.cache
        if cache is not None:
            card_id = cache.get("card_tokens", token)
            rec: CardRec | None = cache.get("cards", card_id) if card_id is not None else None
            if rec is not None:
                return rec
        row = self._one("SELECT * FROM cards WHERE pan_token = ?" + self.lock, (token,))
        if row is None:
            return None
        rec = CardRec.of(row)
        if cache is not None:
            cache.put("cards", rec.id, rec)
            cache.put("card_tokens", token, rec.id)
        return rec

    def card(self, card_id: int) -> CardRec | None:
        cache = self.cache
        if cache is not None:
            rec: CardRec | None = cache.get("cards", card_id)
            if rec is not None:
                return rec
        row = self._one("SELECT * FROM cards WHERE id = ?" + self.lock, (card_id,))
        if row is None:
            return None
        rec = CardRec.of(row)
        if cache is not None:
            cache.put("cards", card_id, rec)
        return rec

    def cards(self) -> list[CardRec]:
        return [CardRec.of(r) for r in self._all("SELECT * FROM cards ORDER BY id")]

    def update_card(self, card_id: int, **cols: Any) -> None:
        self._update("cards", "id", card_id, cols)

    def insert_card(self, **cols: Any) -> int:
        return self._insert("cards", cols)

    # ------------------------------------------------------------------ chip cards

    def card_chip(self, card_id: int) -> ChipRec | None:
        """The card's chip row (locked on PostgreSQL: the ATC check updates it)."""
        row = self._one("SELECT * FROM card_chips WHERE card_id = ?" + self.lock, (card_id,))
        return ChipRec.of(row) if row else None

    def insert_card_chip(self, card_id: int, *, psn: str, cvn: str, service_code: str) -> None:
        self.conn.execute(
            "INSERT INTO card_chips (card_id, psn, cvn, service_code) VALUES (?, ?, ?, ?)",
            (card_id, psn, cvn, service_code),
        )

    def accept_atc(self, card_id: int, atc: int, ts: str) -> bool:
        """Record ``atc`` as the card's last ATC when it is above the one stored.
        False when it is not (another unit accepted this or a later ATC first:
        the caller declines ``card.cryptogram_replayed``)."""
        cur = self.conn.execute(
            "UPDATE card_chips SET last_atc = ?, atc_at = ? WHERE card_id = ? AND last_atc < ?",
            (atc, ts, card_id, atc),
        )
        return int(getattr(cur, "rowcount", 0) or 0) == 1

    def quickpass_no_pin_limit_fen(self) -> int:
        """World ``[risk] quickpass_no_pin_limit`` in fen (default ¥1,000.00)."""
        value = self.meta("risk.quickpass_no_pin_limit_fen")
        return int(value) if value.isdigit() else DEFAULT_QUICKPASS_NO_PIN_LIMIT_FEN

    # ------------------------------------------------------------------ issuer keys

    def issuer_keys_sealed(self) -> dict[str, str] | None:
        """The sealed issuer master keys by name (ac, smi, smc), or None when the
        world declared no ``[issuer]``."""
        sealed = {name: self.meta(f"issuer.imk_{name}") for name in ISSUER_KEY_NAMES}
        return sealed if all(sealed.values()) else None

    def set_issuer_keys_sealed(self, sealed: Mapping[str, str]) -> None:
        for name in ISSUER_KEY_NAMES:
            self.set_meta(f"issuer.imk_{name}", sealed[name])

    # ------------------------------------------------------------------ CA keys, AIDs

    def emv_generation(self, kind: str) -> str:
        """The current generation of ``kind`` (``capk`` or ``aid``); ``""`` = never set."""
        _check_emv_kind(kind)
        return self.meta(f"emv.{kind}_gen")

    def bump_emv_generation(self, kind: str) -> str:
        """A new generation for ``kind``: every chip terminal must download it again."""
        _check_emv_kind(kind)
        gen = secrets.token_hex(8)
        self.set_meta(f"emv.{kind}_gen", gen)
        return gen

    def capks(self) -> list[CapkRec]:
        rows = self._all("SELECT * FROM emv_capks ORDER BY rid, idx")
        return [CapkRec.of(r) for r in rows]

    def capk(self, rid: str, index: str) -> CapkRec | None:
        row = self._one("SELECT * FROM emv_capks WHERE rid = ? AND idx = ?", (rid, index))
        return CapkRec.of(row) if row else None

    def put_capk(self, key: CapkRec) -> bool:
        """Insert or replace a CA key; True when it is new. Bumps the CA-key generation."""
        new = self.capk(key.rid, key.index) is None
        values = (key.modulus, key.exponent, key.expiry, key.check_value)
        if new:
            self.conn.execute(
                "INSERT INTO emv_capks (rid, idx, modulus, exponent, expiry, check_value) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (key.rid, key.index, *values),
            )
        else:
            self.conn.execute(
                "UPDATE emv_capks SET modulus = ?, exponent = ?, expiry = ?, check_value = ? "
                "WHERE rid = ? AND idx = ?",
                (*values, key.rid, key.index),
            )
        self.bump_emv_generation("capk")
        return new

    def delete_capk(self, rid: str, index: str) -> bool:
        cur = self.conn.execute("DELETE FROM emv_capks WHERE rid = ? AND idx = ?", (rid, index))
        gone = int(getattr(cur, "rowcount", 0) or 0) == 1
        if gone:
            self.bump_emv_generation("capk")
        return gone

    def aids(self) -> list[AidRec]:
        return [AidRec.of(r) for r in self._all("SELECT * FROM emv_aids ORDER BY aid")]

    def aid(self, aid: str) -> AidRec | None:
        row = self._one("SELECT * FROM emv_aids WHERE aid = ?", (aid,))
        return AidRec.of(row) if row else None

    def put_aid(self, params: AidRec) -> bool:
        """Insert or replace an AID's parameters; True when new. Bumps the AID generation."""
        new = self.aid(params.aid) is None
        cols = {
            "app_version": params.app_version,
            "floor_limit_fen": params.floor_limit_fen,
            "contactless_limit_fen": params.contactless_limit_fen,
            "contactless_cvm_limit_fen": params.contactless_cvm_limit_fen,
            "tac_default": params.tac_default,
            "tac_online": params.tac_online,
            "tac_denial": params.tac_denial,
        }
        if new:
            names = ", ".join(["aid", *cols])
            marks = ", ".join("?" for _ in range(len(cols) + 1))
            self.conn.execute(
                f"INSERT INTO emv_aids ({names}) VALUES ({marks})", (params.aid, *cols.values())
            )
        else:
            self._update("emv_aids", "aid", params.aid, cols)
        self.bump_emv_generation("aid")
        return new

    def delete_aid(self, aid: str) -> bool:
        cur = self.conn.execute("DELETE FROM emv_aids WHERE aid = ?", (aid,))
        gone = int(getattr(cur, "rowcount", 0) or 0) == 1
        if gone:
            self.bump_emv_generation("aid")
        return gone

    def mark_emv_loaded(self, tid: str, kind: str, generation: str) -> None:
        """The terminal finished downloading ``kind`` at ``generation`` (after 371 / 381)."""
        _check_emv_kind(kind)
        self._update("terminals", "tid", tid, {f"{kind}_loaded": generation})

    def emv_requirement(self, terminal: TerminalRec) -> int:
        """Processing requirement for a chip terminal's answers: 4 while its CA keys
        differ from the host's, else 5 while its chip parameters do, else 0."""
        if not terminal.chip:
            return 0
        if terminal.capk_loaded != self.emv_generation("capk"):
            return 4
        if terminal.aid_loaded != self.emv_generation("aid"):
            return 5
        return 0

    # ------------------------------------------------------------------ journal

    def insert_journal(self, entry: JournalEntry) -> int:
        """Write one journal row; returns its id (the RRN's number)."""
        if entry.req_key is not None and self.cache is not None:
            self.cache.inserted_request(entry.tid, entry.batch, entry.stan)
        if getattr(self.conn, "needs_returning", False):
            return int(self._one(_JOURNAL_INSERT + " RETURNING id", entry.values())["id"])
        cur = self.conn.execute(_JOURNAL_INSERT, entry.values())
        return int(cur.lastrowid)  # type: ignore[attr-defined]

    def update_journal(self, jid: int, **cols: Any) -> None:
        self._update("journal", "id", jid, cols)

    def journal(self, jid: int) -> JournalRec | None:
        row = self._one("SELECT * FROM journal WHERE id = ?", (jid,))
        return JournalRec.of(row) if row else None

    def journal_by_key(self, req_key: str) -> JournalRec | None:
        """The financial row of the request ``TID:batch:STAN`` (``journal_request``)."""
        tid, batch, stan = req_key.rsplit(":", 2)
        if self.cache is not None and not self._may_hold_request(tid, batch, stan):
            return None
        row = self._one(JOURNAL_BY_KEY, (tid, batch, stan))
        return JournalRec.of(row) if row else None

    def _may_hold_request(self, tid: str, batch: str, stan: str) -> bool:
        """False when the row cache knows the journal holds no such request (the
        SQLite writer's duplicate check without a query, ``rowcache.py``)."""
        cache = self.cache
        assert cache is not None
        known = cache.request_known(tid, batch, stan)
        if known is None:
            stans = {r[0] for r in self._all(_REQUEST_STANS, (tid, batch))}
            cache.load_requests(tid, batch, stans)
            known = cache.request_known(tid, batch, stan)
        return bool(known)

    def journal_original(
        self, tid: str, batch: str, stan: str, kinds: Iterable[str]
    ) -> JournalRec | None:
        """The request (not a reversal or duplicate) with this TID, batch and STAN."""
        if self.cache is not None and not self._may_hold_request(tid, batch, stan):
            return None
        ks = list(kinds)
        marks = ", ".join("?" for _ in ks)
        row = self._one(
            f"{JOURNAL_BY_KEY} AND kind IN ({marks}) ORDER BY id LIMIT 1",
            (tid, batch, stan, *ks),
        )
        return JournalRec.of(row) if row else None

    def journal_by_rrn(self, rrn: str) -> JournalRec | None:
        jid = journal_id_of(rrn)
        return self.journal(jid) if jid is not None else None

    def journal_children(self, original_id: int, kinds: Iterable[str]) -> list[JournalRec]:
        ks = list(kinds)
        marks = ", ".join("?" for _ in ks)
        rows = self._all(
            f"SELECT * FROM journal WHERE original_id = ? AND kind IN ({marks}) ORDER BY id",
            (original_id, *ks),
        )
        return [JournalRec.of(r) for r in rows]

    def count_approved(self, card_id: int, kind: str, since: str) -> int:
        row = self._one(
            "SELECT COUNT(*) AS n FROM journal WHERE card_id = ? AND ts >= ? AND kind = ? AND code = '00'",
            (card_id, since, kind),
        )
        return int(row["n"])

    def batch_totals(self, tid: str, batch: str) -> tuple[Sums, Sums]:
        """Host view of an open batch, domestic (CUP) and foreign: debit amount and
        count, credit amount and count each.

        Approved transactions later reversed are not counted; a voided purchase
        counts as a debit and its void as a credit (spec §4)."""
        rows = self._all(
            "SELECT kind, organisation, COUNT(*) AS n, COALESCE(SUM(amount_fen), 0) AS s FROM journal "
            "WHERE tid = ? AND batch = ? AND code = '00' AND status <> 'reversed' "
            "AND settlement_id IS NULL AND req_key IS NOT NULL GROUP BY kind, organisation",
            (tid, batch),
        )
        acc = {True: [0, 0, 0, 0], False: [0, 0, 0, 0]}
        for r in rows:
            side = acc[r["organisation"] == "CUP"]
            if r["kind"] in DEBIT_KINDS:
                side[0] += int(r["s"])
                side[1] += int(r["n"])
            elif r["kind"] in CREDIT_KINDS:
                side[2] += int(r["s"])
                side[3] += int(r["n"])
        d, f = acc[True], acc[False]
        return (d[0], d[1], d[2], d[3]), (f[0], f[1], f[2], f[3])

    def close_batch(self, tid: str, batch: str, settlement_id: int) -> int:
        """Mark every financial row of the batch as belonging to this settlement."""
        cur = self.conn.execute(
            "UPDATE journal SET settlement_id = ? WHERE tid = ? AND batch = ? AND settlement_id IS NULL "
            "AND req_key IS NOT NULL",
            (settlement_id, tid, batch),
        )
        return int(getattr(cur, "rowcount", 0) or 0)

    # ------------------------------------------------------------------ settlements

    def insert_settlement(self, **cols: Any) -> int:
        return self._insert("settlements", cols)

    def update_settlement(self, sid: int, **cols: Any) -> None:
        self._update("settlements", "id", sid, cols)

    def settlement(self, sid: int) -> SettlementRec | None:
        row = self._one("SELECT * FROM settlements WHERE id = ?", (sid,))
        return SettlementRec.of(row) if row else None

    def open_settlement(self, tid: str, batch: str) -> SettlementRec | None:
        """The settlement of this batch still waiting for its batch upload, if any."""
        row = self._one(
            "SELECT * FROM settlements WHERE tid = ? AND batch = ? AND status = 'unbalanced' "
            "ORDER BY id DESC LIMIT 1",
            (tid, batch),
        )
        return SettlementRec.of(row) if row else None

    def closed_settlement(self, tid: str, batch: str) -> SettlementRec | None:
        """The settlement that closed this batch, if it is closed."""
        row = self._one(
            "SELECT * FROM settlements WHERE tid = ? AND batch = ? AND status = 'closed' "
            "ORDER BY id DESC LIMIT 1",
            (tid, batch),
        )
        return SettlementRec.of(row) if row else None

    def settlements(
        self,
        *,
        status: str | None = None,
        since: str | None = None,
        until: str | None = None,
        mid: str | None = None,
    ) -> list[SettlementRec]:
        """Settlements matching every given filter (``ts`` from ``since``, before
        ``until``), oldest first."""
        where: list[str] = []
        params: list[Any] = []
        for cond, value in (
            ("status = ?", status),
            ("ts >= ?", since),
            ("ts < ?", until),
            ("mid = ?", mid),
        ):
            if value:
                where.append(cond)
                params.append(value)
        sql = "SELECT * FROM settlements" + (" WHERE " + " AND ".join(where) if where else "")
        return [SettlementRec.of(r) for r in self._all(sql + " ORDER BY id", params)]

    def insert_batch_upload(self, **cols: Any) -> int:
        return self._insert("batch_uploads", cols)

    # ------------------------------------------------------------------ maintenance

    def maintenance_upcoming(self, now: str) -> list[MaintenanceRec]:
        rows = self._all(
            "SELECT * FROM maintenance WHERE cancelled = 0 AND end_at > ? ORDER BY start_at", (now,)
        )
        return [MaintenanceRec.of(r) for r in rows]

    def insert_maintenance(self, **cols: Any) -> int:
        mid = self._insert("maintenance", cols)
        self.touch_config()
        return mid

    def update_maintenance(self, wid: int, **cols: Any) -> None:
        self._update("maintenance", "id", wid, cols)
        self.touch_config()

    # ------------------------------------------------------------------ audit

    def audit(
        self,
        ts: str,
        actor: str,
        entity: str,
        entity_id: str,
        action: str,
        *,
        from_state: str = "",
        to_state: str = "",
        reason: str = "",
        detail: Mapping[str, Any] | None = None,
    ) -> int:
        return self._insert(
            "audit",
            {
                "ts": ts,
                "actor": actor,
                "entity": entity,
                "entity_id": entity_id,
                "action": action,
                "from_state": from_state,
                "to_state": to_state,
                "reason": reason,
                "detail": json.dumps(dict(detail or {}), ensure_ascii=False, sort_keys=True),
            },
        )

    def is_empty(self) -> bool:
        row = self._one(
            "SELECT (SELECT COUNT(*) FROM merchants) + (SELECT COUNT(*) FROM cards) "
            "+ (SELECT COUNT(*) FROM journal) AS n"
        )
        return int(row["n"]) == 0


def _check_emv_kind(kind: str) -> None:
    if kind not in EMV_KINDS:
        raise ValueError(f"EMV download kind must be one of {', '.join(EMV_KINDS)}, got {kind!r}")
