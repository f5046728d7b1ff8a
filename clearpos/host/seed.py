"""Load a validated world file into a store: all of it, or nothing."""

from __future__ import annotations

import json

from ..clock import Clock, utc_iso
from ..keys import SecurityModule
from ..store import Database, Tx
from ..wire import mask_pan
from ..world import World
from .tokens import PanTokenizer

#: what `--reset` empties, children before parents: the world and everything about
#: it (transactions, operations, tickets). Console users are the provider's staff,
#: not part of a world, and stay.
TABLES = (
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
                operators=json.dumps(
                    [{"no": o.no, "supervisor": o.supervisor} for o in t.operators]
                ),
                status_since=now,
                status_by="world",
                status_why=f"loaded from {world.source}",
            )
        for c in world.cards:
            tx.insert_card(
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
    }
