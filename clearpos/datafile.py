"""Reading a data file that ships in a package, or one the caller names."""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from pathlib import Path


def read_text(
    package: str, filename: str, path: str | Path | None, fail: Callable[[str, str], Exception]
) -> tuple[str, str]:
    """``(name, text)`` of ``path``, or of ``filename`` packaged in ``package`` when
    ``path`` is None. An unreadable or non-UTF-8 file raises ``fail(name, message)``."""
    if path is None:
        resource = resources.files(package).joinpath(filename)
        name, read = str(resource), resource.read_text
    else:
        name, read = str(path), Path(path).read_text
    try:
        return name, read(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise fail(name, f"cannot read: {exc}") from exc
