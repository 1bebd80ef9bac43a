"""egp_core.model_catalog without Streamlit: short timeouts, a failure remembered for a while,
and lists kept apart by credentials. Real HTTP to the fake EGP server on 127.0.0.1."""

from __future__ import annotations

from egp_core.connections import Connection
from egp_core.errors import AuthenticationError, TimeoutError
from egp_core.model_catalog import (
    CONNECT_TIMEOUT,
    KEEP_FAILURE_SECONDS,
    KEEP_LIST_SECONDS,
    READ_TIMEOUT,
    ModelCatalog,
    credentials_hash,
    read_models,
)
from tests.fake_egp import MODEL_PATHS

KEY = "sk-catalog-key-0123456789"


def conn(fake, key: str | None = KEY, account: str | None = None) -> Connection:
    return Connection(id="env-egp", name="EGP workspace", kind="egp", base_url=fake.base_url, api_key=key,
                      account_id=account, source="env")


def listings(fake) -> int:
    return sum(1 for r in fake.requests if r.path in MODEL_PATHS.values())


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_listing_uses_short_timeouts_and_remembers_for_the_documented_times():
    assert (CONNECT_TIMEOUT, READ_TIMEOUT) == (3.0, 10.0)
    assert (KEEP_LIST_SECONDS, KEEP_FAILURE_SECONDS) == (60.0, 15.0)


def test_a_hanging_endpoint_fails_once_and_the_failure_is_remembered(fake_egp):
    fake_egp.models(["fake-model"]).delay_first_byte(5, times=1)
    clock = Clock()
    catalog = ModelCatalog(read=lambda c: read_models(c, read_timeout=0.5), clock=clock)
    first = catalog.get(conn(fake_egp))
    assert isinstance(first.error, TimeoutError) and first.names == []
    assert first.problem == "127.0.0.1 did not answer in time. Check the address and your network."
    assert first.retry_in == KEEP_FAILURE_SECONDS
    clock.now += 10
    again = catalog.get(conn(fake_egp))  # remembered: nobody waits for it again
    assert isinstance(again.error, TimeoutError) and again.retry_in == KEEP_FAILURE_SECONDS - 10
    assert again.problem == first.problem
    assert listings(fake_egp) == 1
    assert catalog.failing(conn(fake_egp)) and listings(fake_egp) == 1  # (asking this asks no server)
    clock.now += 6  # 16 s after the failure: asked again, and now it answers
    assert not catalog.failing(conn(fake_egp))
    assert catalog.get(conn(fake_egp)).names == ["fake-model"]
    assert listings(fake_egp) == 2


def test_a_list_is_kept_a_minute_and_try_again_reads_it_at_once(fake_egp):
    fake_egp.models(["fake-model"])
    clock = Clock()
    catalog = ModelCatalog(clock=clock)
    assert catalog.get(conn(fake_egp)).names == ["fake-model"]
    fake_egp.models(["fake-model", "fake-model-large"])
    clock.now += 59
    assert catalog.get(conn(fake_egp)).names == ["fake-model"]
    clock.now += 2
    assert catalog.get(conn(fake_egp)).names == ["fake-model", "fake-model-large"]
    fake_egp.models(["newer"])
    catalog.forget(conn(fake_egp))
    assert catalog.get(conn(fake_egp)).names == ["newer"]


def test_same_named_connections_with_different_credentials_never_share_a_list(fake_egp):
    fake_egp.models(["fake-model"]).require_key(KEY)
    catalog = ModelCatalog()
    assert catalog.get(conn(fake_egp)).names == ["fake-model"]
    stranger = catalog.get(conn(fake_egp, key="someone-elses-key"))
    assert stranger.names == [] and isinstance(stranger.error, AuthenticationError)
    assert catalog.get(conn(fake_egp)).names == ["fake-model"]  # the right key's list is still there
    assert credentials_hash(conn(fake_egp)) != credentials_hash(conn(fake_egp, account="acct-2"))
    assert credentials_hash(conn(fake_egp)) == credentials_hash(conn(fake_egp))
    assert KEY not in credentials_hash(conn(fake_egp)) and KEY not in repr(catalog._entries)
