"""Chip cards in operations: personalising a simulated card, CA keys and chip parameters.

- :func:`personalise` writes a card file (:mod:`clearpos.issuer.card`) for a
  chip card of the store: its ICC master keys derived from the issuer keys the
  store keeps sealed. The file starts at the issuer's last accepted ATC, so a
  re-personalised card is not refused as a replay.
- :func:`put_capk`, :func:`remove_capk` and :func:`set_aid` change what chip
  terminals download; every change is audited and moves the generation, so
  each chip terminal is told (processing requirement 4 or 5) to download again.

All values are checked with the rules of the world file; a refusal names the option.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

from ..issuer.card import ChipCard, bound, personalised
from ..issuer.chipkeys import stored_issuer_keys
from ..issuer.emv import EmvIssuer
from ..keys import SecurityModule
from ..money import fen_yuan
from ..store import AidRec, CapkRec, Tx
from ..world import capk_check_value
from .common import Change, Refused, check_actor, now_iso, record

__all__ = [
    "AidChanges",
    "aid_doc",
    "capk_doc",
    "personalise",
    "put_capk",
    "remove_capk",
    "set_aid",
]


def _hex(option: str, value: str, low: int, high: int, *, even: bool = True) -> str:
    text = value.strip().upper()
    span = f"exactly {low}" if low == high else f"{low} to {high}"
    if not text or any(c not in "0123456789ABCDEF" for c in text):
        raise Refused(f"{option} must be {span} hex digits (0-9, A-F only)")
    if not low <= len(text) <= high:
        raise Refused(f"{option} must be {span} hex digits, got {len(text)}")
    if even and len(text) % 2:
        raise Refused(f"{option} must be whole bytes (an even number of hex digits)")
    return text


# --------------------------------------------------------------------------- personalisation


def personalise(
    tx: Tx,
    hsm: SecurityModule,
    token: str,
    pan: str,
    out: Path,
    *,
    by: str,
    force: bool = False,
) -> tuple[ChipCard, Change]:
    """Write the card file of the chip card whose PAN token is ``token``."""
    by = check_actor(by)
    card = tx.card_by_token(token)
    if card is None:
        raise Refused("no such card at the issuer", entity="card")
    chip = tx.card_chip(card.id)
    if chip is None:
        raise Refused(
            f"card {card.pan_masked} has no chip (its world entry has no chip = {{ ... }})",
            entity="card",
            entity_id=str(card.id),
        )
    keys = stored_issuer_keys(tx, hsm)
    if keys is None:
        raise Refused("the store holds no issuer master keys: the world file needs [issuer]")
    if out.exists() and not force:
        raise Refused(f"{out} exists; give --force to overwrite it")
    icc = EmvIssuer(keys).icc_keys(pan, chip.psn)
    fresh = personalised(pan, chip.psn, card.expiry, chip.service_code, chip.cvn, icc)
    sim = bound(replace(fresh, atc=max(0, chip.last_atc)), out)
    try:
        sim.save()
    except OSError as exc:
        raise Refused(f"cannot write {out}: {exc.strerror or exc}") from exc
    change = record(
        tx,
        at=now_iso(),
        by=by,
        entity="card",
        entity_id=str(card.id),
        action="personalise",
        detail={"cvn": chip.cvn, "psn": chip.psn, "atc": sim.atc, "file": os.fspath(out)},
    )
    return sim, change


# --------------------------------------------------------------------------- CA keys


def capk_doc(k: CapkRec) -> tuple[dict[str, Any], str]:
    bits = len(k.modulus) * 4
    doc = {
        "rid": k.rid,
        "index": k.index,
        "bits": bits,
        "exponent": k.exponent,
        "expiry": k.expiry,
        "check_value": k.check_value,
    }
    text = f"{k.rid} {k.index}: RSA {bits} bits, exponent {k.exponent}, expires {k.expiry}, SHA-1 {k.check_value}"
    return doc, text


def put_capk(
    tx: Tx,
    rid: str,
    index: str,
    modulus: str,
    exponent: str,
    expiry: str,
    *,
    by: str,
    why: str,
) -> Change:
    """Add a CA public key, or replace the one with the same RID and index."""
    by = check_actor(by)
    rid = _hex("--rid", rid, 10, 10)
    index = _hex("--index", index, 2, 2)
    modulus = _hex("--modulus", modulus, 128, 496)
    exponent = exponent.strip().upper()
    if exponent not in ("03", "010001"):
        raise Refused('--exponent must be "03" or "010001" (EMV allows 3 and 65537)')
    if len(expiry) != 8 or not expiry.isdigit():
        raise Refused("--expiry must be a date YYYYMMDD")
    try:
        date(int(expiry[:4]), int(expiry[4:6]), int(expiry[6:]))
    except ValueError:
        raise Refused(f"--expiry {expiry} is not a real date") from None
    key = CapkRec(
        rid, index, modulus, exponent, expiry, capk_check_value(rid, index, modulus, exponent)
    )
    old = tx.capk(rid, index)
    tx.put_capk(key)
    return record(
        tx,
        at=now_iso(),
        by=by,
        entity="emv_capk",
        entity_id=f"{rid}/{index}",
        action="add" if old is None else "replace",
        from_state="" if old is None else old.check_value,
        to_state=key.check_value,
        why=why,
        detail={"bits": len(modulus) * 4, "expiry": expiry},
    )


def remove_capk(tx: Tx, rid: str, index: str, *, by: str, why: str) -> Change:
    by = check_actor(by)
    rid = _hex("--rid", rid, 10, 10)
    index = _hex("--index", index, 2, 2)
    old = tx.capk(rid, index)
    if old is None or not tx.delete_capk(rid, index):
        raise Refused(f"no CA key {rid} {index}", entity="emv_capk", entity_id=f"{rid}/{index}")
    return record(
        tx,
        at=now_iso(),
        by=by,
        entity="emv_capk",
        entity_id=f"{rid}/{index}",
        action="remove",
        from_state=old.check_value,
        why=why,
    )


# --------------------------------------------------------------------------- AIDs


def aid_doc(a: AidRec) -> tuple[dict[str, Any], str]:
    doc = {
        "aid": a.aid,
        "app_version": a.app_version,
        "floor_limit": fen_yuan(a.floor_limit_fen),
        "contactless_limit": fen_yuan(a.contactless_limit_fen),
        "contactless_cvm_limit": fen_yuan(a.contactless_cvm_limit_fen),
        "tac_default": a.tac_default,
        "tac_online": a.tac_online,
        "tac_denial": a.tac_denial,
    }
    text = (
        f"{a.aid}: version {a.app_version}, floor ¥{doc['floor_limit']}, "
        f"contactless ¥{doc['contactless_limit']} (CVM above ¥{doc['contactless_cvm_limit']}), "
        f"TAC default/online/denial {a.tac_default}/{a.tac_online}/{a.tac_denial}"
    )
    return doc, text


@dataclass(frozen=True, slots=True)
class AidChanges:
    """What ``emv aid set`` was asked to change; None = keep (or the default for a new AID)."""

    app_version: str | None = None
    floor_limit_fen: int | None = None
    contactless_limit_fen: int | None = None
    contactless_cvm_limit_fen: int | None = None
    tac_default: str | None = None
    tac_online: str | None = None
    tac_denial: str | None = None


def set_aid(tx: Tx, aid: str, changes: AidChanges, *, by: str, why: str) -> Change:
    """Create an AID's chip parameters or change some of them."""
    by = check_actor(by)
    aid = _hex("--aid", aid, 10, 32)
    old = tx.aid(aid)
    base = old or AidRec(aid, "0030", 0, 0, 0, "0000000000", "0000000000", "0000000000")
    new = AidRec(
        aid,
        _hex("--app-version", changes.app_version, 4, 4)
        if changes.app_version is not None
        else base.app_version,
        _pick(changes.floor_limit_fen, base.floor_limit_fen),
        _pick(changes.contactless_limit_fen, base.contactless_limit_fen),
        _pick(changes.contactless_cvm_limit_fen, base.contactless_cvm_limit_fen),
        *(
            _hex(f"--{name.replace('_', '-')}", value, 10, 10) if value is not None else current
            for name, value, current in (
                ("tac_default", changes.tac_default, base.tac_default),
                ("tac_online", changes.tac_online, base.tac_online),
                ("tac_denial", changes.tac_denial, base.tac_denial),
            )
        ),
    )
    if new.contactless_limit_fen and new.contactless_cvm_limit_fen > new.contactless_limit_fen:
        raise Refused(
            "--contactless-cvm-limit must not be above --contactless-limit "
            f"(¥{fen_yuan(new.contactless_limit_fen)})"
        )
    if old == new:
        raise Refused(f"AID {aid} already has these parameters: nothing to change")
    tx.put_aid(new)
    before, after = (aid_doc(old)[0] if old else {}), aid_doc(new)[0]
    changed = {k: after[k] for k in after if before.get(k) != after[k] and k != "aid"}
    return record(
        tx,
        at=now_iso(),
        by=by,
        entity="emv_aid",
        entity_id=aid,
        action="add" if old is None else "set",
        why=why,
        detail=changed,
    )


def _pick(value: int | None, current: int) -> int:
    return current if value is None else value
