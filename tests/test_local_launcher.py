"""The app-side launcher: one server per process, on a free loopback port, reused on reruns."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from egp_core.local import DEFAULT_MODEL_ID
from egp_core.local.engine import ModelSpec
from egp_core.local.launcher import LocalServer, ensure_local_server
from egp_core.local.registry import Registry

pytestmark = pytest.mark.model


def test_starts_once_and_is_reused_on_rerun():
    first = ensure_local_server()
    # the port is bound when the call returns: /health answers even while the model loads
    health = requests.get(first.base_url + "/health", timeout=10).json()
    assert health["status"] in ("loading", "ok")
    assert first.base_url.startswith("http://127.0.0.1:")
    assert first.wait_ready(60) is True
    assert first.is_ready() and first.error is None

    body = {
        "model": DEFAULT_MODEL_ID,
        "prompt": "Hi",
        "model_parameters": {"temperature": 0, "max_tokens": 3},
    }
    r = requests.post(first.base_url + "/v2/completions", json=body, timeout=60)
    assert r.status_code == 200 and r.json()["token_usage"]["completion"] <= 3

    again = ensure_local_server()  # what a Streamlit rerun does
    assert again is first
    assert again.base_url == first.base_url
    r = requests.post(again.base_url + "/v2/completions", json=body, timeout=60)
    assert r.status_code == 200


@pytest.mark.parametrize("content", [None, b"this is not a model"])
def test_a_model_that_cannot_load_gives_a_friendly_error(tmp_path: Path, content):
    missing = tmp_path / "missing.gguf"
    if content is not None:
        missing.write_bytes(content)
    server = LocalServer(registry=Registry([ModelSpec("broken", missing)]))
    try:
        assert server.wait_ready(30) is False
        assert server.error is not None and "could not be loaded" in server.error
        assert "missing.gguf" in server.error_detail and "missing.gguf" not in server.error
        assert not server.is_ready()
        health = requests.get(server.base_url + "/health", timeout=10).json()
        assert health["status"] == "error" and health["error"] == server.error
        r = requests.post(
            server.base_url + "/v2/completions", json={"model": "broken", "prompt": "Hi"}, timeout=30
        )
        assert r.status_code == 503
        assert "could not be loaded" in r.json()["detail"]
    finally:
        server.stop()


def test_requests_sent_while_loading_wait_for_the_model():
    server = LocalServer(registry=Registry(n_threads=1))
    try:
        body = {
            "model": DEFAULT_MODEL_ID,
            "prompt": "Hi",
            "model_parameters": {"temperature": 0, "max_tokens": 2},
        }
        r = requests.post(server.base_url + "/v2/completions", json=body, timeout=60)  # sent at once
        assert r.status_code == 200, r.text
        assert server.is_ready()
    finally:
        server.stop()


def test_a_taken_port_falls_back_to_a_free_one(monkeypatch):
    import socket

    from egp_core.local import launcher

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        monkeypatch.setattr(launcher, "_instance", None)  # as in a fresh process
        server = launcher.ensure_local_server(port=port)
        try:
            assert server.port != port
            assert launcher.ensure_local_server(port=port) is server
            assert server.wait_ready(60)
            assert requests.get(server.base_url + "/health", timeout=10).json()["ready"]
        finally:
            server.stop()


def test_a_server_with_a_key_reports_it_and_requires_it():
    server = LocalServer(registry=Registry(n_threads=1), api_key="local-key-42")
    try:
        assert server.api_key == "local-key-42"
        assert "local-key-42" not in repr(server)
        assert requests.get(server.base_url + "/v4/models", timeout=10).status_code == 401
        ok = requests.get(server.base_url + "/v4/models", headers={"x-api-key": server.api_key}, timeout=10)
        assert ok.status_code == 200
    finally:
        server.stop()
