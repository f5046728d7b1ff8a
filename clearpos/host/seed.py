"""Load a validated world file into a store: all of it, or nothing."""

from __future__ import annotations

import json

from ..clock import Clock, utc_iso
from ..issuer.chipkeys import seal_issuer_keys
from ..issuer.emv import IssuerKeys
from ..keys import SecurityModule
from ..keys.tokens import PanTokenizer
from ..store import AidRec, CapkRec, Database, Tx
from ..wire import mask_pan
from ..wire.dialect import declaration
from ..world import World

#: what `--reset` empties, children before parents: the world and everything about
#: it (transactions, operations, tickets). Console users are the provider's staff,
#: not part of a world, and stay.
TABLES = (
    "card_chips",
    "emv_capks",
    "emv_aids",
    "ticket_comments",
    "tickets",
    "resumption_requests",
    "arrears_ledger",
    "batch_uploads",
    "settlements",
    "journal",
    "audit",
    "maintenance",
    "cards",
    "terminals",
    "merchants",
    "meta",
)


class SeedRefused(RuntimeError):
    """The store already holds data and --reset was not given."""


def wipe(tx: Tx) -> None:
    tx.empty_tables(TABLES)


def seed(
    db: Database,
    world: World,
    hsm: SecurityModule,
    tokens: PanTokenizer,
    *,
    reset: bool,
    clock: Clock | None = None,
) -> dict[str, int]:
    """Load ``world`` in one transaction. Refuses a non-empty store unless ``reset``."""
    now = utc_iso((clock or Clock()).now())
    with db.transaction() as tx:
        if not tx.is_empty():
            if not reset:
                raise SeedRefused(
                    f"store {db.url} already holds merchants, cards or transactions; "
                    "start with --reset to wipe it and load the world file again"
                )
            wipe(tx)
        tx.set_meta("acquirer.institution", world.acquirer.institution)
        tx.set_meta("acquirer.name", world.acquirer.name)
        tx.set_meta("acquirer.single_des", "1" if world.acquirer.single_des else "0")
        # an acquirer's private fields: every host process reads them at start-up
        tx.set_meta("dialect.fields", json.dumps([declaration(f) for f in world.private_fields]))
        tx.set_meta("acquirer.company", world.acquirer.company_name)
        tx.set_meta("acquirer.hotline", world.acquirer.hotline)
        tx.set_meta("acquirer.hours", world.acquirer.hours)
        tx.set_meta("world.source", world.source)
        tx.set_meta("world.loaded_at", now)
        v = world.risk.card_velocity
        tx.set_meta(
            "risk.card_velocity",
            json.dumps({"count": v.count, "window_s": v.window_s, "lock_s": v.lock_s}) if v else "",
        )
        tx.set_meta("risk.quickpass_no_pin_limit_fen", str(world.risk.quickpass_no_pin_limit_fen))
        if world.issuer is not None:
            i = world.issuer
            seal_issuer_keys(tx, hsm, IssuerKeys(i.imk_ac, i.imk_smi, i.imk_smc))
        for m in world.merchants:
            tx.insert_merchant(
                mid=m.mid,
                name=m.name,
                status=m.status,
                suspension_cause=m.suspension_cause,
                arrears_fen=m.arrears_fen,
                single_limit_fen=m.single_limit_fen,
                restricted_types=json.dumps(list(m.restricted_types)),
                status_since=now,
                status_by="world",
                status_why=f"loaded from {world.source}",
            )
        for t in world.terminals:
            sealed = hsm.seal_tmk(t.tid, t.tmk)
            tx.insert_terminal(
                tid=t.tid,
                mid=t.mid,
                tmk_sealed=sealed,
                tmk_kcv=hsm.tmk_check_value(t.tid, sealed),
                status=t.status,
                min_software=t.min_software,
                dialect=t.dialect,
                operators=json.dumps(
                    [{"no": o.no, "supervisor": o.supervisor} for o in t.operators]
                ),
                status_since=now,
                status_by="world",
                status_why=f"loaded from {world.source}",
                chip=int(t.chip),
            )
        for c in world.cards:
            card_id = tx.insert_card(
                pan_token=tokens.token(c.pan),
                pan_masked=mask_pan(c.pan),
                expiry=c.expiry,
                pvv=hsm.pin_verification_value(c.pan, c.pin),
                status=c.status,
                organisation=c.organisation,
                balance_fen=c.balance_fen,
                opening_fen=c.balance_fen,
                daily_limit_fen=c.daily_limit_fen,
                status_since=now,
                status_by="world",
            )
            if c.chip is not None:
                tx.insert_card_chip(
                    card_id, psn=c.chip.psn, cvn=c.chip.cvn, service_code=c.chip.service_code
                )
        for k in world.capks:
            tx.put_capk(CapkRec(k.rid, k.index, k.modulus, k.exponent, k.expiry, k.check_value))
        for a in world.aids:
            tx.put_aid(
                AidRec(
                    a.aid,
                    a.app_version,
                    a.floor_limit_fen,
                    a.contactless_limit_fen,
                    a.contactless_cvm_limit_fen,
                    a.tac_default,
                    a.tac_online,
                    a.tac_denial,
                )
            )
        for w in world.maintenance:
            tx.insert_maintenance(
                who=w.who,
                start_at=utc_iso(w.start),
                end_at=utc_iso(w.end),
                notice_zh=w.notice_zh,
                notice_en=w.notice_en,
                created_by="world",
                created_at=now,
            )
        tx.audit(
            now, "world", "store", db.url, "load", reason=world.source, detail={"reset": reset}
        )
    return {
        "merchants": len(world.merchants),
        "terminals": len(world.terminals),
        "cards": len(world.cards),
        "maintenance": len(world.maintenance),
        "chip_cards": sum(1 for c in world.cards if c.chip is not None),
        "capks": len(world.capks),
        "aids": len(world.aids),
    }
