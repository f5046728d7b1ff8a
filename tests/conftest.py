import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
for p in (ROOT / "bench", ROOT / "tests"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from host_fixture import BACKENDS, PG_WORKERS, Store, pg_unavailable  # noqa: E402
from store_audit import audit_test_stores, audited, describe  # noqa: E402


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "broken_stores(*names): SQLite files under tmp_path this test damages on purpose; "
        "the audit of every test database leaves them out",
    )


def pytest_terminal_summary(terminalreporter: Any) -> None:
    terminalreporter.write_line(
        f"store audit: {audited['sqlite']} SQLite and {audited['postgresql']} PostgreSQL "
        "host stores left by tests audited (tests/store_audit.py)"
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """Right after a test that used ``tmp_path`` passed (its fixtures not yet torn
    down): every host store in it must audit clean, or the test fails."""
    result = yield
    tmp = getattr(item, "funcargs", {}).get("tmp_path")
    if isinstance(tmp, Path):
        marker = item.get_closest_marker("broken_stores")
        bad = audit_test_stores(tmp, [str(n) for n in marker.args] if marker else [])
        if bad:
            pytest.fail(describe(bad), pytrace=False)
    return result


@pytest.fixture(scope="session", autouse=True)
def _audit_session_stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """At the end: host stores no test-level audit reached (module-scoped hosts)."""
    yield
    bad = audit_test_stores(tmp_path_factory.getbasetemp())
    if bad:
        pytest.fail(describe(bad), pytrace=False)


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
