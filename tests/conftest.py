import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
for p in (ROOT / "bench", ROOT / "tests"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from host_fixture import BACKENDS, PG_WORKERS, Store, pg_unavailable  # noqa: E402


def require_pg() -> None:
    """Skip loudly when no PostgreSQL can be had; fail instead under CLEARPOS_REQUIRE_PG=1."""
    why = pg_unavailable()
    if why is None:
        return
    if os.environ.get("CLEARPOS_REQUIRE_PG") == "1":
        pytest.fail(f"CLEARPOS_REQUIRE_PG=1 but {why}")
    sys.stderr.write(f"\n*** SKIPPING POSTGRESQL TESTS: {why} ***\n")
    pytest.skip(f"POSTGRESQL TESTS SKIPPED: {why}")


@pytest.fixture(scope="module", params=BACKENDS)
def store(request: pytest.FixtureRequest) -> Iterator[Store]:
    """The backend a host test runs on: SQLite, then PostgreSQL (fresh databases, N workers)."""
    backend = str(request.param)
    if backend == "postgresql":
        require_pg()
        s = Store(backend, workers=PG_WORKERS)
    else:
        s = Store(backend)
    try:
        yield s
    finally:
        s.drop_all()
