"""The newer official SDK, scale-gp, against the local server, unchanged (topK/topP on the wire)."""

from __future__ import annotations

import pytest
from scale_gp import SGPClient

from egp_core.local import DEFAULT_MODEL_ID

pytestmark = pytest.mark.model

PROMPT = "What is the capital of France? Answer in one sentence."


@pytest.fixture
def sgp(local_server):
    local_server.wait_idle()
    client = SGPClient(api_key="any-key", account_id="local", base_url=local_server.base_url, max_retries=0)
    yield client
    client.close()


def test_scale_gp_create_and_stream_agree(sgp):
    params = {"temperature": 0, "max_tokens": 12, "top_k": 1, "top_p": 1.0}
    done = sgp.completions.create(model=DEFAULT_MODEL_ID, prompt=PROMPT, model_parameters=params)
    assert done.completion.text and done.token_usage.total > 0
    stream = sgp.completions.create(model=DEFAULT_MODEL_ID, prompt=PROMPT, model_parameters=params, stream=True)
    # scale-gp types stream events with another model; our fields come through as they are
    events = [e.to_dict() for e in stream]
    assert "".join(e["completion"]["text"] for e in events) == done.completion.text
    assert events[-1]["token_usage"]["total"] == done.token_usage.total
    assert all(e.get("token_usage") is None for e in events[:-1])


def test_scale_gp_chat_completions(sgp):
    result = sgp.chat_completions.create(
        model=DEFAULT_MODEL_ID,
        messages=[{"role": "user", "content": PROMPT}],
        model_parameters={"temperature": 0, "max_tokens": 12},
    )
    assert result.chat_completion.message.content
    assert result.token_usage.total > 0
