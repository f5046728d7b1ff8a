"""The simulated issuer's chip master keys at rest: sealed under the KEK in the store.

Kept apart from :mod:`clearpos.issuer.emv` so the card side (the virtual
terminal) can use the EMV engine without the store or the security module.
"""

from __future__ import annotations

from ..keys import SecurityModule
from ..store import ISSUER_KEY_NAMES, Tx
from .emv import IssuerKeys

__all__ = ["seal_issuer_keys", "stored_issuer_keys"]


def seal_issuer_keys(tx: Tx, hsm: SecurityModule, keys: IssuerKeys) -> None:
    """Keep the issuer master keys in the store, each sealed under the KEK."""
    clear = {"ac": keys.ac, "smi": keys.smi, "smc": keys.smc}
    tx.set_issuer_keys_sealed({name: hsm.seal_issuer_key(name, clear[name]) for name in clear})


def stored_issuer_keys(tx: Tx, hsm: SecurityModule) -> IssuerKeys | None:
    """The issuer master keys from the store, or None when the world had no ``[issuer]``."""
    sealed = tx.issuer_keys_sealed()
    if sealed is None:
        return None
    ac, smi, smc = (hsm.open_issuer_key(name, sealed[name]) for name in ISSUER_KEY_NAMES)
    return IssuerKeys(ac, smi, smc)
