"""``clearpos.ops`` — running the acquiring business: every change audited.

One module per concern, each a set of plain functions over a store
transaction (:class:`~clearpos.store.Tx`) that check first, then change rows
and write the audit row in the same transaction; a check that fails raises
:class:`Refused` saying what is allowed instead. The lifecycles are tables
(:mod:`.lifecycle`):

- :mod:`.merchants` — active, restricted, suspended (arrears | risk | manual), closed;
- :mod:`.terminals` — active ↔ suspended, replaced; TMK rotation; minimum software;
- :mod:`.cards` — normal ↔ frozen, → lost | stolen | closed; PIN unlock;
- :mod:`.arrears` — fees, fines, payments with vouchers; resumption requests;
- :mod:`.maintenance` — host and issuer windows and their notices;
- :mod:`.users` — console users with argon2id password hashes;
- :mod:`.reports`, :mod:`.backup` — daily reconciliation report, backup, restore, export;
- :mod:`.cli` — ``clearpos admin``.
"""

from __future__ import annotations

from .common import Change, Refused
from .lifecycle import Lifecycle, Rule

__all__ = ["Change", "Lifecycle", "Refused", "Rule"]
