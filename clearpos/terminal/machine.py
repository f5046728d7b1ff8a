"""The virtual POS terminal: commands, the reversal and offline rules, sign-on, settlement.

:class:`Terminal` holds one terminal's :class:`~clearpos.terminal.store.Store`
and a :class:`~clearpos.terminal.client.Link` to the host; each public method is
one operator command and returns an :class:`~clearpos.terminal.screens.Outcome`.

The rules it keeps (spec/pos8583.md §4-§6):

- a reversible request's reversal (reason 98) is stored durably *before* the
  request leaves; an answer clears it; an approved answer whose MAC fails turns
  it into reason A0, a crash between the answer and its recording into 96;
- the pending reversal goes out before any other online message, up to three
  tries per command, and 00 / 12 / 25 mean done;
- queued offline sales are uploaded (0220, 60.1 = 30) before the next
  transaction or settlement; 94 on an upload means the host already has it;
- 99, A0, 77 or processing requirement 3: sign on again by itself, then tell the
  operator to repeat -- nothing is ever re-sent silently, every request has a
  new STAN (persisted before it is sent);
- processing requirement 1: download the parameters and show the notice.

:class:`Terminal` composes the concerns, one module each: :mod:`.operators`,
:mod:`.session`, :mod:`.reversal`, :mod:`.offline`, :mod:`.sale`, :mod:`.settle`, on
:mod:`.core`; the rules themselves are the sans-I/O :mod:`.protocol`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .core import (
    CREDIT_KINDS,
    DEBIT_KINDS,
    DEFAULT_OPERATORS,
    DEFAULT_SOFTWARE,
    DIALECTS,
    FOREIGN_ORGS,
    VOID_OF,
    CardInput,
    TerminalError,
    TerminalKekError,
)
from .offline import OfflineMixin
from .operators import OperatorsMixin, parse_operators
from .reversal import ReversalMixin
from .sale import SaleMixin
from .session import SessionMixin
from .settle import SettleMixin

if TYPE_CHECKING:
    from .doctor import DoctorReport

__all__ = [
    "CREDIT_KINDS",
    "DEBIT_KINDS",
    "DEFAULT_OPERATORS",
    "DEFAULT_SOFTWARE",
    "DIALECTS",
    "FOREIGN_ORGS",
    "VOID_OF",
    "CardInput",
    "Terminal",
    "TerminalError",
    "TerminalKekError",
    "parse_operators",
]


class Terminal(OperatorsMixin, SessionMixin, ReversalMixin, OfflineMixin, SaleMixin, SettleMixin):
    """One virtual POS terminal whose state lives in ``state_dir``.

    ``tid``, ``mid`` and ``tmk`` are needed the first time; afterwards they are
    read from the state (a different ``tmk`` is a key injection: the working
    keys are dropped and the terminal must sign on again).
    """

    def doctor(self) -> DoctorReport:
        """The self-check of SCENARIOS.md B1 (see :mod:`clearpos.terminal.doctor`)."""
        from .doctor import run_doctor

        return run_doctor(self)
