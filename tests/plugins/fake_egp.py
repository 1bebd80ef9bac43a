"""Fixture: the fake EGP server (see tests/fake_egp.py).

`fake_egp` is a running FakeEGP, new for each test (its own port, empty script
and records): use `fake_egp.base_url` and the script methods (`reply`, `fail`,
`drop_after`, `stall_after`, ...), then look at `fake_egp.requests` and
`fake_egp.disconnects` / `fake_egp.wait_disconnect()`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fake_egp import FakeEGP


@pytest.fixture
def fake_egp() -> Iterator[FakeEGP]:
    with FakeEGP() as fake:
        yield fake
