"""Immutable records without the run-time cost of frozen dataclasses.

A ``@dataclass(frozen=True)`` sets each field in ``__init__`` through
``object.__setattr__``: for a 19-field row that is 5.1 µs on our machines
against 0.66 µs for a plain slots dataclass (``docs/performance.md`` §11). The
host builds a dozen such objects per message (the request, its card data, the
rows it reads and writes, the journal entry), so frozen dataclasses were a tenth
of its CPU.

``@record`` is a slots dataclass that type checkers see as frozen (PEP 681's
``frozen_default``): mypy rejects any assignment to a field, which is how the
code base keeps records immutable; at run time the fields are plain slots.
Records stay hashable and compare by value, as frozen dataclasses do.

>>> @record
... class Point:
...     x: int
...     y: int = 0
>>> Point(1) == Point(1, 0), hash(Point(1)) == hash(Point(1, 0))
(True, True)
>>> Point(2, 3)
Point(x=2, y=3)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, TypeVar, dataclass_transform, overload

T = TypeVar("T")


@overload
def record(cls: type[T], /) -> type[T]: ...
@overload
def record(*, kw_only: bool = False) -> Callable[[type[T]], type[T]]: ...


@dataclass_transform(frozen_default=True)
def record(
    cls: type[T] | None = None, /, *, kw_only: bool = False
) -> type[T] | Callable[[type[T]], type[T]]:
    """Make ``cls`` an immutable record (``@record`` or ``@record(kw_only=True)``)."""

    def wrap(c: type[T]) -> type[T]:
        return dataclass(slots=True, unsafe_hash=True, kw_only=kw_only)(c)

    return wrap if cls is None else wrap(cls)


def unchecked(cls: type[T]) -> Callable[..., T]:
    """A constructor of the record ``cls`` that does not run its ``__post_init__``
    checks: for a reader whose values were checked as they were read (the wire
    codec's decoder checks every field's format), so that each is checked once.

    Its parameters are the record's, in the same order and kinds (positional or
    keyword-only), but none has a default: a caller names every field, and a field
    added to the record is an error at that caller until it does.

    >>> @record
    ... class Even:
    ...     n: int
    ...     def __post_init__(self) -> None:
    ...         if self.n % 2:
    ...             raise ValueError("odd")
    >>> make = unchecked(Even)
    >>> make(2) == Even(2), make(3).n
    (True, 3)
    >>> Even(3)
    Traceback (most recent call last):
    ValueError: odd
    """
    positional = [f.name for f in fields(cls) if not f.kw_only]  # type: ignore[arg-type]
    keyword = [f.name for f in fields(cls) if f.kw_only]  # type: ignore[arg-type]
    params = ", ".join([*positional, *(["*", *keyword] if keyword else [])])
    body = "".join(f"    self.{n} = {n}\n" for n in (*positional, *keyword))
    src = f"def make({params}):\n    self = new(cls)\n{body}    return self\n"
    env: dict[str, Any] = {"new": object.__new__, "cls": cls}
    exec(compile(src, f"<unchecked {cls.__name__}>", "exec"), env)
    make: Callable[..., T] = env["make"]
    return make
