"""The fake EGP server itself: run as a process and scripted over HTTP (as browser tests use it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import requests

from egp_core import errors
from egp_core.client import EGPClient
from egp_core.types import CompletionRequest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def fake_process():
    proc = subprocess.Popen([sys.executable, "-m", "tests.fake_egp", "--port", "0", "--text", "From the process",
                             "--models", "p1,p2"], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("fake EGP listening on http://127.0.0.1:")
        yield line.split()[-1]
    finally:
        proc.terminate()
        proc.wait(5)


def test_runs_as_a_process_and_is_scripted_over_http(fake_process):
    client = EGPClient(fake_process, "k", retry_initial_delay=0.001, max_retries=0)
    request = CompletionRequest(model="p1", prompt="hi")
    assert "".join(c.text for c in client.stream(request)) == "From the process"
    assert client.list_models() == ["p1", "p2"]
    state = requests.post(f"{fake_process}/_fake/script", json={"fail": {"status": 500, "times": 1}},
                          timeout=5).json()
    assert state["requests"] == 2
    with pytest.raises(errors.ServerError):
        client.complete(request)
    assert client.complete(request).text == "From the process"
    recorded = requests.get(f"{fake_process}/_fake/requests", timeout=5).json()
    assert [r["path"] for r in recorded][-2:] == ["/v2/completions", "/v2/completions"]
    assert requests.post(f"{fake_process}/_fake/script", json={"explode": {}}, timeout=5).status_code == 400
    requests.post(f"{fake_process}/_fake/reset", timeout=5)
    assert requests.get(f"{fake_process}/_fake/state", timeout=5).json()["requests"] == 0


def test_pace_streams_one_token_per_event(fake_egp):
    fake_egp.reply(text="one two three four", pace=1000)
    with EGPClient(fake_egp.base_url) as client:
        chunks = [c.text for c in client.stream(CompletionRequest(model="m", prompt="x"))]
    assert chunks == ["one", " two", " three", " four"]
