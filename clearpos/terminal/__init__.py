"""``clearpos.terminal`` -- the virtual POS terminal (``clearpos pos``).

- :mod:`.protocol` -- the rules of spec §4-§6 (reversal first, offline queue,
  re-sign-on, settlement and batch upload) as a sans-I/O protocol;
- :mod:`.machine` -- :class:`Terminal`: the commands, the driver of the protocol,
  composed of :mod:`.core`, :mod:`.operators`, :mod:`.session`, :mod:`.reversal`,
  :mod:`.offline`, :mod:`.sale` and :mod:`.settle`;
- :mod:`.doctor` -- the self-check (SCENARIOS.md B1);
- :mod:`.store` -- the state directory (SQLite, sealed card data and keys);
- :mod:`.client` -- the blocking TCP link, the only I/O;
- :mod:`.screens` -- outcomes and the terminal's own lines;
- :mod:`.receipts` -- receipts and settlement slips;
- :mod:`.cli` -- the ``clearpos pos`` command line.
"""

from .client import HostLink, Link, LinkError, NoAnswer, Unreachable
from .doctor import Check, DoctorReport
from .machine import CardInput, Terminal, TerminalError, parse_operators
from .screens import Outcome
from .store import StateLockedError, Store

__all__ = [
    "CardInput",
    "Check",
    "DoctorReport",
    "HostLink",
    "Link",
    "LinkError",
    "NoAnswer",
    "Outcome",
    "StateLockedError",
    "Store",
    "Terminal",
    "TerminalError",
    "Unreachable",
    "parse_operators",
]
