"""The examples in the chip modules' docstrings are true."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "clearpos.wire.tlv",
    "clearpos.wire.emvparams",
    "clearpos.wire.emvtags",
    "clearpos.issuer.emv",
    "clearpos.host.chiprules",
]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0
