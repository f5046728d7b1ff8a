"""Lifecycles as tables (STYLE.md §8): which action leads from which states to which.

Each entity module declares one :class:`Lifecycle`; operations ask it for the
target state before they change anything, so an illegal transition is refused
in one place, with the actions that *are* allowed from the current state::

    >>> door = Lifecycle("door", ("open", "shut"), (
    ...     Rule("close", frozenset({"open"}), "shut", "close it"),
    ...     Rule("open", frozenset({"shut"}), "open", "open it"),
    ... ))
    >>> door.target("close", "open")
    'shut'
    >>> door.allowed("open")
    ('close',)
    >>> door.target("close", "shut")
    Traceback (most recent call last):
    ...
    clearpos.ops.common.Refused: door D1 is shut: cannot close; allowed from shut: open
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .common import Refused

__all__ = ["Lifecycle", "Rule"]


@dataclass(frozen=True, slots=True)
class Rule:
    """``action`` moves an entity from any of ``sources`` to ``target``.

    ``target`` None: the action is allowed from those states but keeps the state
    (a key rotation, a comment).
    """

    action: str
    sources: frozenset[str]
    target: str | None
    meaning: str


class Lifecycle:
    """The allowed transitions of one kind of entity."""

    def __init__(self, entity: str, states: Sequence[str], rules: Sequence[Rule]) -> None:
        self.entity = entity
        self.states = tuple(states)
        self.rules = {r.action: r for r in rules}
        for r in rules:
            unknown = (r.sources | ({r.target} if r.target else set())) - set(self.states)
            if unknown:
                raise ValueError(f"{entity}.{r.action}: unknown states {sorted(unknown)}")

    def allowed(self, state: str) -> tuple[str, ...]:
        """The actions allowed from ``state``, in table order."""
        return tuple(a for a, r in self.rules.items() if state in r.sources)

    def target(self, action: str, state: str, entity_id: str = "D1") -> str:
        """The state ``action`` leads to from ``state``; Refused when not allowed."""
        rule = self.rules.get(action)
        if rule is None:
            raise ValueError(f"{self.entity} has no action {action!r}")
        if state not in rule.sources:
            allowed = self.allowed(state)
            shown = ", ".join(allowed) if allowed else f"nothing ({state} is final)"
            raise Refused(
                f"{self.entity} {entity_id} is {state}: cannot {action.replace('_', ' ')}; "
                f"allowed from {state}: {shown}",
                entity=self.entity,
                entity_id=entity_id,
                state=state,
                action=action,
                allowed=allowed,
            )
        return rule.target or state

    def table(self) -> list[tuple[str, str, str, str]]:
        """(action, from states, to state, meaning) rows, for docs and ``--help``."""
        return [
            (
                r.action,
                " | ".join(s for s in self.states if s in r.sources),
                r.target or "(same)",
                r.meaning,
            )
            for r in self.rules.values()
        ]
