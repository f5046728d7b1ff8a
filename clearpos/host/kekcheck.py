"""Is this the KEK the store was sealed with? Found out at start-up, not at a sign-on.

A wrong KEK used to start a host that then answered every sign-on 96 with a
traceback. The store keeps a *canary*: a known value sealed under its KEK
(``meta`` ``kek.canary``) and that KEK's fingerprint (``kek.fingerprint``). A
host whose KEK does not open the canary refuses to start with one line naming
both fingerprints. A store made before the canary existed is checked with its
first sealed TMK, then given one.
"""

from __future__ import annotations

from ..keys import KekError, KeyEncryptionKey, SealedKeyError
from ..store import Database
from ..store.queries import ops as q

__all__ = ["CANARY", "CANARY_CONTEXT", "check_store_kek"]

CANARY = b"clearpos: this store's keys are sealed under this KEK"
CANARY_CONTEXT = "kek.canary"


def _wrong(kek: KeyEncryptionKey, theirs: str) -> KekError:
    was = f"KEK {theirs}" if theirs else "another KEK"
    return KekError(
        f"KEK {kek.fingerprint()} does not open this store's keys (sealed under {was}): "
        "start with the store's KEK in $CLEARPOS_KEK or $CLEARPOS_KEK_FILE, "
        "or load the world again with --reset"
    )


def check_store_kek(db: Database, kek: KeyEncryptionKey) -> str:
    """Raise :class:`KekError` when ``kek`` is not the store's; else write the canary
    if it is missing. Returns what was found: ``"canary"``, ``"tmk"`` (an older store,
    now given a canary) or ``"empty"``."""
    with db.reader() as tx:
        canary = tx.meta("kek.canary")
        theirs = tx.meta("kek.fingerprint")
        probe = None
        if not canary:
            probe = q.sealing_probe(tx)
    if canary:
        try:
            if kek.open(canary, CANARY_CONTEXT) == CANARY:
                return "canary"
        except SealedKeyError:
            pass
        raise _wrong(kek, theirs)
    found = "empty"
    if probe is not None:
        tid, sealed = probe["tid"], probe["tmk_sealed"]
        try:
            kek.open(str(sealed), f"tmk:{tid}")
        except SealedKeyError:
            raise _wrong(kek, theirs) from None
        found = "tmk"
    with db.transaction() as tx:
        tx.set_meta("kek.canary", kek.seal(CANARY, CANARY_CONTEXT))
        tx.set_meta("kek.fingerprint", kek.fingerprint())
    return found
