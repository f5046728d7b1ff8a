"""Application versions, as terminals report them in field 59 A2/05 (an..8).

Compared part by part, numbers as numbers; the earlier MMmmpp form of the
header's reserved digits (withdrawn by the revised spec §1) is still read as the
version it names, so minimums stored before the revision keep their meaning.
"""

from __future__ import annotations

import contextlib

_VERSION_CHARS = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz.-")


def normalise_version(text: str) -> str:
    """An application version as field 59 A2/05 carries it (an..8).

    The earlier MMmmpp form of the header's reserved digits is read as the
    version it names:

    >>> normalise_version("000200"), normalise_version("0.2.0"), normalise_version("H7062801")
    ('0.2.0', '0.2.0', 'H7062801')
    """
    if len(text) == 6 and text.isdecimal() and text.isascii():
        return ".".join(str(int(text[i : i + 2])) for i in (0, 2, 4))
    if not (1 <= len(text) <= 8 and set(text) <= _VERSION_CHARS and text[0].isalnum()):
        raise ValueError(
            f"an application version is 1-8 letters, digits, '.' or '-' such as 0.1.0, got {text!r}"
        )
    return text


def version_key(version: str) -> tuple[tuple[int, int | str], ...]:
    """A version compared part by part, numbers as numbers (``0.10.0`` > ``0.9.1``).

    >>> version_key("0.10.0") > version_key("0.9.1")
    True
    >>> version_key("H7062801") < version_key("H7062802")
    True
    """
    parts: list[tuple[int, int | str]] = []
    for part in version.replace("-", ".").split("."):
        parts.append((0, int(part)) if part.isdecimal() else (1, part))
    return tuple(parts)


def version_at_least(reported: str, minimum: str) -> bool:
    """True when ``reported`` is ``minimum`` or later (see :func:`version_key`); a
    minimum still in the MMmmpp form is read as the version it names."""
    with contextlib.suppress(ValueError):
        minimum = normalise_version(minimum)
    return version_key(reported) >= version_key(minimum)


__all__ = ["normalise_version", "version_at_least", "version_key"]
