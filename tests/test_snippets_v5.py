"""The SGP v5 snippets (scale-gp-beta, requests, curl) are run against the fake EGP server's v5 and the
local model: they carry the answer options (candidates, seed, probabilities, JSON mode) and print the answer."""

from __future__ import annotations

import pytest

from egp_core.openai_compat import OpenAIClient
from egp_core.snippets import V5_SNIPPET_NAMES, all_snippets
from egp_core.types import AnswerOptions, CompletionRequest, Message, ModelParameters
from tests.test_snippets import TRICKY, printed, run_snippet

KEY = "sk-v5-snippet-key-4242"
OPTIONS = AnswerOptions(n=2, seed=7, top_logprobs=2, response_format={"type": "json_object"})


def chat_request(**kw) -> CompletionRequest:
    return CompletionRequest(model="fake-model", messages=[Message(role="system", content="Be 'brief'"),
                                                           Message(role="user", content=TRICKY)],
                             model_parameters=ModelParameters(temperature=0, max_tokens=8, top_k=3), **kw)


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("name", V5_SNIPPET_NAMES)
def test_v5_chat_snippets_send_the_options_and_print_the_answer(fake_egp, tmp_path, name, stream):
    fake_egp.v5().reply(text='{"a": "café"}').require_key(KEY)
    snippets = all_snippets(fake_egp.base_url, chat_request(options=OPTIONS), stream=stream, api="v5-chat",
                            account_id="acct-5")
    assert list(snippets) == list(V5_SNIPPET_NAMES)
    code = snippets[name]
    assert KEY not in code and "EGP_API_KEY" in code
    out = printed(run_snippet(name, code, tmp_path, api_key=KEY))
    if stream:
        assert out == '{"a": "café"} (seed 7)'  # the first candidate, as it streams
    else:
        assert out.startswith('--- candidate 1 ---\n{"a": "café"} (seed 7)\n--- candidate 2 ---\n'
                              '{"a": "café"} (seed 7) (2)')
    sent = fake_egp.requests[-1]
    assert sent.path == "/v5/chat/completions" and sent.headers["x-selected-account-id"] == "acct-5"
    body = sent.body
    assert body["messages"][1]["content"] == TRICKY and body["top_k"] == 3
    assert (body["n"], body["seed"], body["logprobs"], body["top_logprobs"]) == (2, 7, True, 2)
    assert body["response_format"] == {"type": "json_object"}
    proc = run_snippet(name, code, tmp_path, api_key="wrong")  # the server's words, no traceback
    assert "Invalid API key" in (proc.stdout + proc.stderr).decode() and b"Traceback" not in proc.stderr


@pytest.mark.parametrize("name", V5_SNIPPET_NAMES)
def test_v5_completions_snippets(fake_egp, tmp_path, name):
    fake_egp.v5().reply(text="four")
    req = CompletionRequest(model="fake-model", prompt="2+2=", options=AnswerOptions(seed=1, top_logprobs=1))
    code = all_snippets(fake_egp.base_url, req, stream=False, api="v5-completions")[name]
    assert printed(run_snippet(name, code, tmp_path)) == "four (seed 1)"
    assert fake_egp.requests[-1].path == "/v5/completions" and fake_egp.requests[-1].body["logprobs"] == 1


@pytest.mark.model
def test_v5_snippets_print_the_local_models_answer(local_server, tmp_path):
    local_server.wait_idle()
    req = CompletionRequest(model="SmolLM2-135M-Instruct", messages=[Message(role="user", content="Name a fruit.")],
                            model_parameters=ModelParameters(temperature=0.8, max_tokens=8),
                            options=AnswerOptions(seed=5))
    with OpenAIClient(local_server.base_url, max_retries=0) as client:
        expected = client.complete(req).text
    for stream in (False, True):
        for name, code in all_snippets(local_server.base_url, req, stream=stream, api="v5-chat").items():
            assert printed(run_snippet(name, code, tmp_path / f"{name[:4]}{stream}")) == expected, (name, stream)
