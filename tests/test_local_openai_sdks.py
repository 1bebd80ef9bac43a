"""The official SDKs of the OpenAI shape, unchanged, against the local server: scale-gp-beta on
/v5 and openai on /v1. Chat create and stream, n, seed, token probabilities, JSON mode,
completions, model lists, errors."""

from __future__ import annotations

import json
import math

import openai
import pytest
import requests
import scale_gp_beta
from scale_gp_beta import SGPClient

from egp_core.local import DEFAULT_MODEL_ID
from tests.test_local_bad_input import KEY, keyed_server  # noqa: F401 - a server that requires a key

pytestmark = pytest.mark.model

QUESTION = [{"role": "user", "content": "Name three colours."}]


@pytest.fixture
def sgp(local_server):
    local_server.wait_idle()
    client = SGPClient(api_key="any-key", account_id="local", base_url=local_server.base_url, max_retries=0)
    yield client
    client.close()


@pytest.fixture
def oai(local_server):
    local_server.wait_idle()
    client = openai.OpenAI(api_key="any-key", base_url=local_server.base_url + "/v1", max_retries=0)
    yield client
    client.close()


def test_sgp_chat_create_and_stream_agree(sgp):
    done = sgp.chat.completions.create(model=DEFAULT_MODEL_ID, messages=QUESTION, temperature=0, max_tokens=12)
    text = done.choices[0].message.content
    assert text and done.choices[0].finish_reason in ("stop", "length")
    assert done.usage.completion_tokens > 0
    assert done.usage.total_tokens == done.usage.prompt_tokens + done.usage.completion_tokens
    chunks = list(sgp.chat.completions.create(model=DEFAULT_MODEL_ID, messages=QUESTION, temperature=0,
                                              max_tokens=12, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == text
    assert chunks[-1].usage.total_tokens == done.usage.total_tokens  # v5: usage on the last chunk


def test_openai_chat_create_and_stream_agree(oai):
    done = oai.chat.completions.create(model=DEFAULT_MODEL_ID, messages=QUESTION, temperature=0,
                                       max_completion_tokens=12)
    text = done.choices[0].message.content
    assert text and done.object == "chat.completion"
    stream = oai.chat.completions.create(model=DEFAULT_MODEL_ID, messages=QUESTION, temperature=0, max_tokens=12,
                                         stream=True, stream_options={"include_usage": True})
    chunks = list(stream)  # ends at data: [DONE]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == text
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == done.usage.completion_tokens


def test_n_candidates_each_with_its_own_index(sgp, oai):
    done = oai.chat.completions.create(model=DEFAULT_MODEL_ID, messages=QUESTION, n=2, max_tokens=8,
                                       temperature=0.9, seed=3)
    assert [c.index for c in done.choices] == [0, 1]
    assert all(c.message.content for c in done.choices)
    stream = sgp.chat.completions.create(model=DEFAULT_MODEL_ID, messages=QUESTION, n=2, max_tokens=8,
                                         temperature=0.9, seed=3, stream=True)
    texts: dict[int, str] = {0: "", 1: ""}
    for chunk in stream:
        for choice in chunk.choices:
            texts[choice.index] += choice.delta.content or ""
    assert texts == {0: done.choices[0].message.content, 1: done.choices[1].message.content}


def test_the_same_seed_gives_the_same_text(oai):
    def ask(seed: int) -> str:
        return oai.chat.completions.create(model=DEFAULT_MODEL_ID, messages=QUESTION, temperature=1.0, top_p=1.0,
                                           max_tokens=16, seed=seed).choices[0].message.content

    first = ask(7)
    assert ask(7) == first
    assert any(ask(s) != first for s in (8, 9, 10))  # the seed is what made it repeat


def test_logprobs_with_top_alternatives(sgp, oai):
    done = oai.chat.completions.create(model=DEFAULT_MODEL_ID, messages=QUESTION, temperature=0, max_tokens=6,
                                       logprobs=True, top_logprobs=3)
    content = done.choices[0].logprobs.content
    assert "".join(t.token for t in content) == done.choices[0].message.content
    for t in content:
        assert t.logprob <= 0 and len(t.top_logprobs) == 3
        assert t.top_logprobs[0].logprob >= t.top_logprobs[1].logprob >= t.top_logprobs[2].logprob
        assert math.isclose(t.logprob, t.top_logprobs[0].logprob, abs_tol=1e-4)  # greedy: the likeliest
    chunks = list(sgp.chat.completions.create(model=DEFAULT_MODEL_ID, messages=QUESTION, temperature=0,
                                              max_tokens=6, logprobs=True, top_logprobs=2, stream=True))
    streamed = [t for c in chunks if c.choices and c.choices[0].logprobs for t in c.choices[0].logprobs.content]
    assert [t.token for t in streamed] == [t.token for t in content]
    with pytest.raises(openai.BadRequestError) as too_many:
        oai.chat.completions.create(model=DEFAULT_MODEL_ID, messages=QUESTION, logprobs=True, top_logprobs=6)
    assert "top_logprobs" in str(too_many.value)


def test_json_object_mode_gives_json(oai):
    done = oai.chat.completions.create(
        model=DEFAULT_MODEL_ID, max_tokens=150, temperature=0, response_format={"type": "json_object"},
        messages=[{"role": "user", "content": "Reply with a JSON object with keys name and colour for a cat."}])
    assert isinstance(json.loads(done.choices[0].message.content), dict)


def test_json_schema_mode_follows_the_schema(sgp):
    schema = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 20},
                                               "age": {"type": "integer"}},
              "required": ["name", "age"], "additionalProperties": False}
    done = sgp.chat.completions.create(
        model=DEFAULT_MODEL_ID, max_tokens=60, temperature=0,
        messages=[{"role": "user", "content": "Make up a person."}],
        response_format={"type": "json_schema", "json_schema": {"name": "person", "schema": schema}})
    data = json.loads(done.choices[0].message.content)
    assert set(data) == {"name", "age"} and isinstance(data["age"], int)


def test_completions_on_both_paths(sgp, oai):
    done = sgp.completions.create(model=DEFAULT_MODEL_ID, prompt="The sky is", max_tokens=6, temperature=0,
                                  logprobs=2)
    choice = done.choices[0]
    assert choice.text and done.usage.completion_tokens > 0
    assert "".join(choice.logprobs.tokens) == choice.text and len(choice.logprobs.top_logprobs[0]) == 2
    again = oai.completions.create(model=DEFAULT_MODEL_ID, prompt="The sky is", max_tokens=6, temperature=0,
                                   stop=["\n"])
    assert again.choices[0].text == choice.text.split("\n")[0]
    streamed = "".join(c.choices[0].text for c in oai.completions.create(
        model=DEFAULT_MODEL_ID, prompt="The sky is", max_tokens=6, temperature=0, stream=True) if c.choices)
    assert streamed == choice.text


def test_model_lists(sgp, oai, local_server):
    assert [m.id for m in oai.models.list()] == [DEFAULT_MODEL_ID]
    assert [m.name for m in sgp.chat.completions.models().items] == [DEFAULT_MODEL_ID]
    assert [m.name for m in sgp.models.list()] == [DEFAULT_MODEL_ID]


def test_bad_input_is_a_4xx_in_each_apis_shape(sgp, oai, local_server):
    with pytest.raises(openai.NotFoundError):
        oai.chat.completions.create(model="no-such-model", messages=QUESTION)
    with pytest.raises(openai.BadRequestError) as info:
        oai.chat.completions.create(model=DEFAULT_MODEL_ID, messages=QUESTION, n=5)
    assert info.value.body["message"].startswith("n:")  # OpenAI's {"error": {...}}
    with pytest.raises(scale_gp_beta.UnprocessableEntityError):
        sgp.chat.completions.create(model=DEFAULT_MODEL_ID, messages=QUESTION, n=5)
    r = requests.post(local_server.base_url + "/v5/chat/completions", timeout=10, json={
        "model": DEFAULT_MODEL_ID, "messages": QUESTION, "response_format": {"type": "json_schema"}})
    assert r.status_code == 400 and "json_schema" in r.json()["detail"]
    r = requests.post(local_server.base_url + "/v1/chat/completions", timeout=10, json={
        "model": DEFAULT_MODEL_ID, "messages": [{"role": "tool", "content": "x"}]})
    assert r.status_code == 400 and "roles" in r.json()["error"]["message"]
    r = requests.post(local_server.base_url + "/v1/completions", timeout=10, data="{not json",
                      headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"


def test_egp_core_speaks_v5_and_v1_to_the_local_server(local_server):
    from egp_core.openai_compat import OpenAIClient, sgp_v5_client
    from egp_core.types import AnswerOptions, CompletionRequest, Message, ModelParameters

    local_server.wait_idle()
    request = CompletionRequest(model=DEFAULT_MODEL_ID, messages=[Message(role="user", content="Name a fruit.")],
                                model_parameters=ModelParameters(temperature=0.8, max_tokens=8),
                                options=AnswerOptions(n=2, seed=11, top_logprobs=2))
    with sgp_v5_client(local_server.base_url, max_retries=0) as v5, \
            OpenAIClient(local_server.base_url + "/v1", max_retries=0) as v1:
        with v5.stream(request) as stream:
            streamed = "".join(c.text for c in stream)
        whole = v1.complete(request)
    done = stream.completion
    assert streamed == done.text == whole.text  # the same seed: the same candidates on both paths
    assert done.candidates == whole.candidates and len(done.candidates) == 2
    assert "".join(t.token for t in done.logprobs) == done.text
    assert all(len(t.top) == 2 for t in done.logprobs)
    assert done.usage.completion == whole.usage.completion


def test_a_server_with_a_key_takes_it_from_either_sdk(keyed_server):  # noqa: F811
    messages = [{"role": "user", "content": "Hi"}]
    with openai.OpenAI(api_key=KEY, base_url=keyed_server.base_url + "/v1", max_retries=0) as oai:
        assert oai.chat.completions.create(model=DEFAULT_MODEL_ID, messages=messages, max_tokens=2).choices
    with openai.OpenAI(api_key="wrong", base_url=keyed_server.base_url + "/v1", max_retries=0) as oai, \
            pytest.raises(openai.AuthenticationError) as info:
        oai.models.list()
    assert "API key" in info.value.body["message"]  # OpenAI's error shape
    with SGPClient(api_key=KEY, account_id="local", base_url=keyed_server.base_url, max_retries=0) as sgp:
        assert sgp.chat.completions.create(model=DEFAULT_MODEL_ID, messages=messages, max_tokens=2).choices
    with SGPClient(api_key="wrong", account_id="local", base_url=keyed_server.base_url, max_retries=0) as sgp, \
            pytest.raises(scale_gp_beta.AuthenticationError):
        sgp.models.list()
