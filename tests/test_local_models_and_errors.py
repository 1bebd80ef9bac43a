"""Extra GGUF models, penalties, and an error after the stream began."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from egp_core.local import DEFAULT_MODEL_ID
from egp_core.local.engine import default_model_path
from egp_core.local.launcher import LocalServer
from egp_core.local.registry import Registry
from tests.plugins.local_model import start_local_server, stop_local_server

pytestmark = pytest.mark.model

MODEL = DEFAULT_MODEL_ID
COUNTING = {"model": MODEL, "prompt": "List the numbers from 1 to 500, one per line."}


@pytest.mark.parametrize("penalty", ["frequency_penalty", "presence_penalty"])
def test_penalties_change_a_repetitive_answer(local_server, penalty):
    local_server.wait_idle()
    url = local_server.base_url + "/v2/completions"
    params = {"temperature": 0, "max_tokens": 40}
    plain = requests.post(url, json={**COUNTING, "model_parameters": params}, timeout=60).json()
    penalised = requests.post(
        url, json={**COUNTING, "model_parameters": {**params, penalty: 2.0}}, timeout=60
    ).json()
    assert "1. 1\n2. 2\n3. 3" in plain["completion"]["text"]
    assert penalised["completion"]["text"] != plain["completion"]["text"]


def test_extra_models_from_egp_local_models_are_listed_and_served(tmp_path: Path):
    extra = tmp_path / "Tiny-Copy.Q4_1.gguf"
    extra.symlink_to(default_model_path())
    env = {"EGP_LOCAL_MODELS": f"{extra}, {tmp_path / 'absent.gguf'}"}
    server = start_local_server(tmp_path, "--threads", "1", env=env)
    try:
        ids = [MODEL, "Tiny-Copy.Q4_1"]
        base = server.base_url
        assert [m["id"] for m in requests.get(base + "/v3/models", timeout=10).json()] == ids
        assert [m["id"] for m in requests.get(base + "/v4/models", timeout=10).json()["items"]] == ids
        v5 = requests.get(base + "/v5/chat/completions/models", timeout=10).json()["items"]
        assert [m["model_name"] for m in v5] == ids
        assert server.health()["models"][1]["state"] == "unloaded"  # loaded on first use

        params = {"temperature": 0, "max_tokens": 8}
        answers = [
            requests.post(
                base + "/v2/completions",
                json={"model": m, "prompt": "Hi", "model_parameters": params},
                timeout=60,
            )
            for m in ids
        ]
        assert [a.status_code for a in answers] == [200, 200]
        assert answers[0].json() == answers[1].json()  # the same weights
        extra_status = server.health()["models"][1]
        assert extra_status["state"] == "ready" and extra_status["context_length"] == 8192
        assert "absent.gguf" in server.log()  # skipped with a warning
    finally:
        stop_local_server(server)


def test_an_error_after_the_stream_began_is_an_sse_error_event():
    server = LocalServer(registry=Registry(n_threads=1))
    try:
        assert server.wait_ready(60)
        body = {
            "model": MODEL,
            "prompt": "Write a very long story about a dragon and a knight, with many chapters.",
            "stream": True,
            "model_parameters": {"temperature": 0, "max_tokens": 4000},
        }
        r = requests.post(server.base_url + "/v2/completions", json=body, stream=True, timeout=60)
        lines = r.iter_lines()
        assert next(line for line in lines if line.startswith(b"data: "))
        server.registry.default.close()  # the engine goes away in the middle of the answer
        rest = list(lines)  # ... and the server ends the stream
        at = rest.index(b"event: error")
        assert rest[at + 1].startswith(b"data: ")
        assert "stopped before finishing" in json.loads(rest[at + 1][6:])["detail"]
        assert all(b'token_usage":{' not in line for line in rest)  # no normal ending
        # the server itself still answers, with JSON
        r = requests.post(server.base_url + "/v2/completions", json={**body, "stream": False}, timeout=60)
        assert r.status_code == 503 and r.headers["Retry-After"] == "1" and r.json()["detail"]
        assert requests.get(server.base_url + "/health", timeout=10).status_code == 200
    finally:
        server.stop()


def test_a_chat_template_that_refuses_the_messages_is_a_400():
    """Some models' templates raise (e.g. "roles must alternate"): a 400 with the template's words."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    server = LocalServer(registry=Registry(n_threads=1))
    try:
        assert server.wait_ready(60)
        strict = "{% if messages[0]['role'] == 'assistant' %}{{ raise_exception('Conversation must start with the user') }}{% endif %}"
        strict += (
            "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        )
        server.registry.default._formatter = Jinja2ChatFormatter(template=strict, eos_token="", bos_token="")
        url = server.base_url + "/v4/chat-completions"
        body = {"model": MODEL, "messages": [{"role": "assistant", "content": "Hello"}]}
        r = requests.post(url, json=body, timeout=60)
        assert r.status_code == 400
        assert "Conversation must start with the user" in r.json()["detail"]
        body["messages"] = [{"role": "user", "content": "Hello"}]
        body["model_parameters"] = {"max_tokens": 2}
        assert requests.post(url, json=body, timeout=60).status_code == 200
    finally:
        server.stop()


def test_a_stream_waiting_for_its_first_token_gets_keep_alive_comments():
    """SSE comments (ignored by the SDKs and our client) keep idle timeouts away during a long prompt."""
    server = LocalServer(registry=Registry(n_threads=1), keep_alive=0.1)
    try:
        assert server.wait_ready(60)
        body = {
            "model": MODEL,
            "prompt": "The river runs past the old mill and the market square. " * 500,
            "stream": True,
            "model_parameters": {"max_tokens": 1},
        }
        r = requests.post(server.base_url + "/v2/completions", json=body, stream=True, timeout=60)
        lines = r.iter_lines()
        first = next(line for line in lines if line)
        assert first.startswith(b": "), first
        r.close()
    finally:
        server.stop()
