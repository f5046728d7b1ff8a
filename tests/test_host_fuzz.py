"""A small seeded run of the host-level fuzzer (bench/fuzz_host.py) in the suite."""

from __future__ import annotations

from pathlib import Path

from fuzz_host import run


def test_host_survives_mangled_and_hostile_traffic(tmp_path: Path, capsys: object) -> None:
    assert run(1500, 20261123, tmp_path) == 0
