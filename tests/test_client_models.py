"""EGPClient.list_models / list_model_info / user_info against the fake EGP server."""

from __future__ import annotations

import socket

import pytest

from egp_core import errors
from egp_core.client import EGPClient


def make_client(base_url: str, **kw) -> EGPClient:
    kw.setdefault("retry_initial_delay", 0.001)
    return EGPClient(base_url, "key-1", **kw)


def test_v5_listing_is_preferred(fake_egp):
    fake_egp.models(["gpt-4", "llama-3"])
    with make_client(fake_egp.base_url) as client:
        assert client.list_models() == ["gpt-4", "llama-3"]
    assert [r.path for r in fake_egp.requests] == ["/v5/chat/completions/models"]


def test_v4_items_take_name_or_model_name_or_id(fake_egp):
    fake_egp.models([{"name": "a"}, {"model_name": "b"}, {"id": "c"}, {"other": "no name"}], versions=["v4"])
    with make_client(fake_egp.base_url) as client:
        assert client.list_models() == ["a", "b", "c"]
    assert [r.path for r in fake_egp.requests] == ["/v5/chat/completions/models", "/v4/models"]


def test_v3_bare_array(fake_egp):
    fake_egp.models(["x", "y"], versions=["v3"])
    with make_client(fake_egp.base_url) as client:
        assert client.list_models() == ["x", "y"]


def test_model_info_keeps_the_raw_fields(fake_egp):
    fake_egp.models([{"model_name": "smol", "context_length": 8192}])
    with make_client(fake_egp.base_url) as client:
        assert client.list_model_info() == [{"model_name": "smol", "context_length": 8192, "name": "smol"}]


def test_empty_listing_falls_through_to_the_next_endpoint(fake_egp):
    fake_egp.models([], versions=["v5"])
    with make_client(fake_egp.base_url, fallback_models=["fallback-1"]) as client:
        assert client.list_models() == ["fallback-1"]


def test_no_listing_endpoint_uses_the_fallback(fake_egp):
    fake_egp.models(versions=[])
    with make_client(fake_egp.base_url, fallback_models=["gpt-4", "claude"]) as client:
        assert client.list_models() == ["gpt-4", "claude"]
        assert isinstance(client.last_list_error, errors.NotFoundError)
    with make_client(fake_egp.base_url) as client:
        assert client.list_models() == []


def test_auth_failure_raises_without_fallback_and_falls_back_with_one(fake_egp):
    fake_egp.require_key("the-right-key")
    with make_client(fake_egp.base_url) as client, pytest.raises(errors.AuthenticationError) as info:
        client.list_models()
    assert "API key" in info.value.user_message
    with make_client(fake_egp.base_url, fallback_models=["m1"]) as client:
        assert client.list_models() == ["m1"]
        assert isinstance(client.last_list_error, errors.AuthenticationError)


def test_unreachable_raises_without_fallback_and_falls_back_with_one():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    with make_client(url) as client, pytest.raises(errors.ConnectionFailed):
        client.list_models()
    with make_client(url, fallback_models=["m1"]) as client:
        assert client.list_models() == ["m1"]


def test_server_error_on_listing_is_retried(fake_egp):
    fake_egp.fail(503, retry_after=0, times=1, paths=["/v5/chat/completions/models"])
    with make_client(fake_egp.base_url) as client:
        assert client.list_models() == ["fake-model", "fake-model-large"]
    assert len(fake_egp.requests) == 2


def test_user_info(fake_egp):
    with make_client(fake_egp.base_url) as client:
        info = client.user_info()
    assert info["access_profiles"][0]["account"]["id"] == "acct-1"
    assert fake_egp.requests[0].path == "/user-info"
