"""The terminal lifecycle: active ↔ suspended, replaced; TMK rotation; minimum software.

The host reads the terminal row on every message: ``status`` other than
``active`` declines with ``terminal.suspended`` (facts since/by/why), a
software version below ``min_software`` with ``terminal.update_required``, and
no working keys (``pik_sealed`` / ``mak_sealed`` empty) with
``terminal.not_signed_on`` — A0 plus "sign on again" in the header.

Replacing a terminal (SCENARIOS.md C6) retires the old TID (``replaced``,
``replaced_by`` the new one) and registers the new TID for the same merchant,
so the merchant's history — journal, settlements, tickets, audit — carries on.
Rotating the TMK seals the new key under the KEK and clears the working keys:
the terminal's next message gets A0 and it signs on again under the new TMK.
"""

from __future__ import annotations

import json
from datetime import datetime

from ..keys import SealedKeyError, SecurityModule
from ..store import TerminalRec, Tx
from ..store.queries import ops as q
from ..versions import normalise_version
from .common import Change, Refused, check_actor, mask_text, now_iso, record
from .lifecycle import Lifecycle, Rule

__all__ = [
    "TERMINAL",
    "add_terminal",
    "get_terminal",
    "replace",
    "resume",
    "rotate_tmk",
    "set_min_software",
    "suspend",
]

_LIVE = frozenset({"active", "suspended"})

TERMINAL = Lifecycle(
    "terminal",
    ("active", "suspended", "replaced"),
    (
        Rule("suspend", frozenset({"active"}), "suspended", "stop the terminal (停机); its merchant's other terminals go on"),
        Rule("resume", frozenset({"suspended"}), "active", "let it trade again (复机)"),
        Rule("replace", _LIVE, "replaced", "retire it for a new TID of the same merchant (final)"),
        Rule("rotate_tmk", _LIVE, None, "new TMK; working keys cleared, next message re-signs on"),
        Rule("set_software", _LIVE, None, "change the minimum software version"),
    ),
)  # fmt: skip


def get_terminal(tx: Tx, tid: str) -> TerminalRec:
    """The terminal, or Refused naming the unknown TID."""
    t = tx.terminal(tid)
    if t is None:
        raise Refused(f"no terminal {tid!r} in this store", entity="terminal", entity_id=tid)
    return t


def check_kek(tx: Tx, hsm: SecurityModule, tid: str | None = None) -> None:
    """Refused unless ``hsm``'s KEK opens this store's sealed TMKs (the host's KEK).

    A process with another KEK (``CLEARPOS_KEK`` / ``CLEARPOS_KEK_FILE`` not set as
    for the host) would seal keys the host cannot open.
    """
    row = q.sealing_probe(tx, tid)
    if row is None:
        return
    try:
        ok = hsm.tmk_check_value(row["tid"], row["tmk_sealed"]) == row["tmk_kcv"]
    except SealedKeyError:
        ok = False
    if not ok:
        raise Refused(
            "this process's KEK did not seal this store's keys: run with the host's "
            "KEK (CLEARPOS_KEK or CLEARPOS_KEK_FILE, as for clearpos host)"
        )


def _check_tid(tid: str) -> None:
    if not (len(tid) == 8 and tid.isascii() and tid.isalnum()):
        raise Refused(f"TID must be 8 letters or digits, got {tid!r}")


def _check_software(version: str) -> str:
    """The minimum as an application version (field 59 A2/05); MMmmpp is still read."""
    try:
        return normalise_version(version)
    except ValueError as exc:
        raise Refused(f"software version: {exc}") from None


def _why(why: str, action: str) -> str:
    text = mask_text((why or "").strip())
    if not text:
        raise Refused(f"say why: --why TEXT is required to {action} a terminal")
    return text


def _move(
    tx: Tx, t: TerminalRec, action: str, *, by: str, why: str, at: str, **cols: object
) -> Change:
    target = TERMINAL.target(action, t.status, t.tid)
    tx.update_terminal(t.tid, status=target, status_since=at, status_by=by, status_why=why, **cols)
    return record(
        tx,
        at=at,
        by=by,
        entity="terminal",
        entity_id=t.tid,
        action=action,
        from_state=t.status,
        to_state=target,
        why=why,
        detail={"mid": t.mid, **{k: v for k, v in cols.items() if k == "replaced_by"}},
    )


def add_terminal(
    tx: Tx,
    hsm: SecurityModule,
    tid: str,
    mid: str,
    tmk: bytes,
    *,
    by: str,
    why: str = "",
    min_software: str = "0.1.0",
    operators: list[dict[str, object]] | None = None,
    now: datetime | None = None,
    chip: bool = False,
    _replaces: str | None = None,
) -> Change:
    """Register a terminal for an existing merchant, with its TMK sealed under the KEK.
    ``chip``: it reads chip cards (a swiped chip card is then declined 45)."""
    by = check_actor(by)
    _check_tid(tid)
    min_software = _check_software(min_software)
    if tx.terminal(tid) is not None:
        raise Refused(f"terminal {tid} already exists", entity="terminal", entity_id=tid)
    m = tx.merchant(mid)
    if m is None:
        raise Refused(f"no merchant {mid!r}: register it first (clearpos admin merchant add)")
    if m.status == "closed":
        raise Refused(
            f"merchant {mid} is closed: no new terminals",
            entity="merchant",
            entity_id=mid,
            state="closed",
        )
    check_kek(tx, hsm)
    at = now_iso(now)
    sealed = hsm.seal_tmk(tid, tmk)
    kcv = hsm.tmk_check_value(tid, sealed)
    text = why.strip() or (f"replaces {_replaces}" if _replaces else "registered")
    tx.insert_terminal(
        tid=tid,
        mid=mid,
        tmk_sealed=sealed,
        tmk_kcv=kcv,
        status="active",
        min_software=min_software,
        operators=json.dumps(
            operators if operators is not None else [{"no": "01", "supervisor": False}]
        ),
        status_since=at,
        status_by=by,
        status_why=text,
        chip=int(chip),
    )
    detail: dict[str, object] = {"mid": mid, "tmk_kcv": kcv, "min_software": min_software}
    if chip:
        detail["chip"] = True
    if _replaces:
        detail["replaces"] = _replaces
    return record(
        tx,
        at=at,
        by=by,
        entity="terminal",
        entity_id=tid,
        action="add",
        to_state="active",
        why=text,
        detail=detail,
    )


def suspend(tx: Tx, tid: str, *, by: str, why: str, now: datetime | None = None) -> Change:
    """Stop one terminal (58 ``terminal.suspended``); the merchant's other terminals go on."""
    by = check_actor(by)
    t = get_terminal(tx, tid)
    return _move(tx, t, "suspend", by=by, why=_why(why, "suspend"), at=now_iso(now))


def resume(tx: Tx, tid: str, *, by: str, why: str, now: datetime | None = None) -> Change:
    """Let a suspended terminal trade again."""
    by = check_actor(by)
    t = get_terminal(tx, tid)
    return _move(tx, t, "resume", by=by, why=_why(why, "resume"), at=now_iso(now))


def replace(
    tx: Tx,
    hsm: SecurityModule,
    old_tid: str,
    new_tid: str,
    tmk: bytes,
    *,
    by: str,
    why: str,
    now: datetime | None = None,
) -> tuple[Change, Change]:
    """Retire ``old_tid`` for ``new_tid`` (same merchant, same minimum software)."""
    by = check_actor(by)
    why = _why(why, "replace")
    old = get_terminal(tx, old_tid)
    TERMINAL.target("replace", old.status, old_tid)
    if new_tid == old_tid:
        raise Refused("the new TID must differ from the old one")
    at = now_iso(now)
    added = add_terminal(
        tx,
        hsm,
        new_tid,
        old.mid,
        tmk,
        by=by,
        why=f"replaces {old_tid}: {why}",
        min_software=old.min_software,
        now=now,
        chip=old.chip,
        _replaces=old_tid,
    )
    retired = _move(
        tx,
        old,
        "replace",
        by=by,
        why=why,
        at=at,
        replaced_by=new_tid,
        pik_sealed=None,
        mak_sealed=None,
        keys_issued_at=None,
    )
    return retired, added


def rotate_tmk(
    tx: Tx,
    hsm: SecurityModule,
    tid: str,
    tmk: bytes,
    *,
    by: str,
    why: str,
    now: datetime | None = None,
) -> Change:
    """Seal a new TMK for ``tid`` and clear its working keys.

    The terminal's next message is answered A0 (``terminal.not_signed_on``) with
    "sign on again"; the sign-on then delivers working keys under the new TMK, so
    the new TMK must be loaded into the terminal (out of band) first.
    """
    by = check_actor(by)
    why = _why(why, "rotate the TMK of")
    t = get_terminal(tx, tid)
    TERMINAL.target("rotate_tmk", t.status, tid)
    check_kek(tx, hsm, tid)
    sealed = hsm.seal_tmk(tid, tmk)
    kcv = hsm.tmk_check_value(tid, sealed)
    if kcv == t.tmk_kcv:
        raise Refused(f"terminal {tid} already has a TMK with check value {kcv}: give a new key")
    at = now_iso(now)
    tx.update_terminal(
        tid, tmk_sealed=sealed, tmk_kcv=kcv, pik_sealed=None, mak_sealed=None, keys_issued_at=None
    )
    return record(
        tx,
        at=at,
        by=by,
        entity="terminal",
        entity_id=tid,
        action="rotate_tmk",
        from_state=t.status,
        to_state=t.status,
        why=why,
        detail={"old_kcv": t.tmk_kcv, "new_kcv": kcv, "mid": t.mid},
    )


def set_min_software(
    tx: Tx, tid: str, version: str, *, by: str, why: str, now: datetime | None = None
) -> Change:
    """Require at least ``version`` (field 59 A2/05, e.g. 0.2.0; MMmmpp is read too);
    older terminals get ``terminal.update_required``."""
    by = check_actor(by)
    version = _check_software(version)
    t = get_terminal(tx, tid)
    TERMINAL.target("set_software", t.status, tid)
    at = now_iso(now)
    tx.update_terminal(tid, min_software=version)
    return record(
        tx,
        at=at,
        by=by,
        entity="terminal",
        entity_id=tid,
        action="set_software",
        from_state=t.status,
        to_state=t.status,
        why=_why(why, "change the software minimum of"),
        detail={"before": t.min_software, "after": version, "mid": t.mid},
    )
