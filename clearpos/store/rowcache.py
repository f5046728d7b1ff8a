"""Rows the single SQLite writer keeps in memory between its transactions.

The host's SQLite writer is the only connection that writes terminals,
merchants and cards while it runs (the store lock keeps a second host out);
other processes (the admin CLI, a console on its own connection) may still
commit changes. So the writer can keep the rows it read or wrote, and ask
SQLite once per transaction whether anybody else committed since
(``PRAGMA data_version``, which changes only for other connections' commits).
If so, everything is forgotten.

Inside a transaction, rows read or written go to an overlay; only when the
writer says the transaction committed (:meth:`RowCache.committed`) does the
overlay join the cache. When a transaction rolls back, fails to commit, or its
writer never says, the next :meth:`RowCache.begin` forgets every row it
touched: the worst a missing call costs is a cache miss, never a stale row.

A write that is not a plain ``col = value`` update of one row by its key (an
insert, a delete of the table) drops the table's cache and overlay.

The duplicate check asks, for each financial request, whether the journal holds
a request with its TID, batch and STAN; nearly always it does not. So the cache
also keeps, for each terminal's latest batch it was asked about, the STANs of
the journal's requests in it, read once (:meth:`RowCache.load_requests`) and
followed as this writer inserts requests (:meth:`RowCache.inserted_request`).
A STAN not there is known absent without a query; one there is read as before.
The set may hold a STAN too many (a unit rolled back after its insert), which
costs a query, never one too few: another connection's commit forgets it, and
a request is only inserted through :meth:`Tx.insert_journal`. The journal's
unique (TID, batch, STAN) index still refuses a second row whatever the cache says.

PostgreSQL does not use this: its rows are shared by several host processes
and read ``FOR UPDATE``.

>>> c = RowCache()
>>> c.begin(7)
>>> c.put("terminals", "10000001", "row")
>>> c.get("terminals", "10000001")
'row'
>>> c.begin(7)  # rolled back: the overlay is gone
>>> c.get("terminals", "10000001") is None
True
>>> c.put("terminals", "10000001", "row"); c.committed()
>>> c.begin(7); c.get("terminals", "10000001")
'row'
>>> c.begin(8)  # another connection committed: forget everything
>>> c.get("terminals", "10000001") is None
True
"""

from __future__ import annotations

from typing import Any

#: the tables kept, by the name of their key column
CACHED_TABLES = {"terminals": "tid", "merchants": "mid", "cards": "id"}

#: what is kept: the rows, and card ids by PAN token
_KEPT = (*CACHED_TABLES, "card_tokens")

#: rows per table before the table's cache is emptied (a provider with more
#: active cards than this reads the rest from SQLite's page cache as before)
MAX_ROWS = 200_000

#: request STANs kept, all terminals together, before they are forgotten
MAX_REQUESTS = 200_000


class RowCache:
    """Committed rows, and the rows of the transaction in progress."""

    __slots__ = ("_added", "_overlay", "_requests", "_rows", "_stans", "_version", "hits", "misses")

    def __init__(self) -> None:
        self._rows: dict[str, dict[Any, Any]] = {t: {} for t in _KEPT}
        self._overlay: dict[str, dict[Any, Any]] = {t: {} for t in _KEPT}
        self._version: int | None = None
        #: TID -> (batch, STANs of the journal's requests in it): the duplicate check's
        #: knowledge, complete for that batch as far as committed rows go
        self._requests: dict[str, tuple[str, set[str]]] = {}
        self._stans = 0
        #: requests inserted by the transaction in progress: (TID, batch, STAN)
        self._added: set[tuple[str, str, str]] = set()
        self.hits = 0
        self.misses = 0

    def begin(self, data_version: int) -> None:
        """A transaction starts; ``data_version`` is SQLite's for this connection.

        What the last transaction touched without committing is forgotten, also in
        the committed rows (a savepoint rolled back mid-transaction undoes a unit's
        writes, not the earlier units'; their rows are read again)."""
        for table, overlay in self._overlay.items():
            if overlay:
                rows = self._rows[table]
                for key in overlay:
                    rows.pop(key, None)
                overlay.clear()
        self._added.clear()
        if data_version != self._version:
            self._version = data_version
            for rows in self._rows.values():
                rows.clear()
            self.forget_requests()

    def get(self, table: str, key: Any) -> Any:
        row = self._overlay[table].get(key)
        if row is None:
            row = self._rows[table].get(key)
        if row is None:
            self.misses += 1
        else:
            self.hits += 1
        return row

    def put(self, table: str, key: Any, row: Any) -> None:
        """A row as this transaction sees it (read, or just written)."""
        self._overlay[table][key] = row

    def drop(self, table: str) -> None:
        """The table changed in a way the cache does not follow."""
        for name in (table, "card_tokens") if table == "cards" else (table,):
            self._rows[name].clear()
            self._overlay[name].clear()

    def evict(self, table: str, key: Any) -> None:
        """One row changed in a way the cache does not follow (it is read again)."""
        self._rows[table].pop(key, None)
        self._overlay[table].pop(key, None)

    def request_known(self, tid: str, batch: str, stan: str) -> bool | None:
        """Whether the journal may hold the request ``tid``/``batch``/``stan``: False
        when it certainly does not, True when it may (read it), None when this
        batch's requests are not kept (:meth:`load_requests`)."""
        kept = self._requests.get(tid)
        if kept is None or kept[0] != batch:
            return None
        return stan in kept[1] or (tid, batch, stan) in self._added

    def load_requests(self, tid: str, batch: str, stans: set[str]) -> None:
        """The STANs of the journal's requests with this TID and batch, as read in
        the transaction in progress (the terminal's earlier batch is forgotten)."""
        old = self._requests.get(tid)
        if old is not None:
            self._stans -= len(old[1])
        self._requests[tid] = (batch, stans)
        self._stans += len(stans)

    def inserted_request(self, tid: str, batch: str, stan: str) -> None:
        """The transaction in progress inserted a request with this TID, batch, STAN."""
        self._added.add((tid, batch, stan))

    def forget_requests(self) -> None:
        self._requests.clear()
        self._stans = 0
        self._added.clear()

    def committed(self) -> None:
        """The transaction in progress committed: its rows are the store's now."""
        added = self._added
        if added:
            for tid, batch, stan in added:
                kept = self._requests.get(tid)
                if kept is not None and kept[0] == batch and stan not in kept[1]:
                    kept[1].add(stan)
                    self._stans += 1
            added.clear()
            if self._stans > MAX_REQUESTS:
                self.forget_requests()
        for table, overlay in self._overlay.items():
            if overlay:
                rows = self._rows[table]
                if len(rows) + len(overlay) > MAX_ROWS:
                    rows.clear()
                rows.update(overlay)
                overlay.clear()
