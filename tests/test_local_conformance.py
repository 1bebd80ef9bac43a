"""The local server speaks PROTOCOL.md on every path, for the official SDK and raw requests."""

from __future__ import annotations

import json

import pytest
import requests
from scale_egp.sdk.client import EGPClient
from scale_egp.sdk.types.completions import ModelParameters as SDKModelParameters

from egp_core.local import DEFAULT_MODEL_ID
from egp_core.types import ChatCompletionResponse, CompletionResponse

pytestmark = pytest.mark.model

MODEL = DEFAULT_MODEL_ID
COMPLETION_PATHS = ["/egp/v1/completions", "/v2/completions", "/v4/completions"]
PROMPT = "What is the capital of France? Answer in one sentence."


def sse_events(response: requests.Response) -> list[tuple[str | None, str]]:
    """(event name, data) for each event of an SSE body, checking the framing on the way."""
    assert response.headers["content-type"].startswith("text/event-stream")
    events = []
    for block in response.text.split("\n\n"):
        if not block:
            continue
        name, data = None, []
        for line in block.split("\n"):
            if line.startswith("event: "):
                name = line[len("event: ") :]
            else:
                assert line.startswith("data: "), f"unexpected SSE line {line!r}"
                data.append(line[len("data: ") :])
        assert len(data) == 1, "each event carries exactly one data line"
        events.append((name, data[0]))
    assert response.text.endswith("\n\n")
    return events


def post(base_url: str, path: str, body: dict, **kw) -> requests.Response:
    return requests.post(base_url + path, json=body, timeout=60, **kw)


@pytest.fixture
def server(local_server):
    local_server.wait_idle()
    return local_server


@pytest.mark.parametrize("path", COMPLETION_PATHS)
def test_completions_paths_answer_200_with_the_completion_shape(server, path):
    body = {"model": MODEL, "prompt": PROMPT, "model_parameters": {"temperature": 0, "max_tokens": 12}}
    r = post(server.base_url, path, body)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    data = r.json()
    assert set(data) == {"completion", "token_usage"}
    parsed = CompletionResponse.model_validate(data)
    assert "Paris" in parsed.completion.text
    assert parsed.completion.finish_reason in ("stop", "length")
    usage = parsed.token_usage
    assert usage.total == usage.prompt + usage.completion
    assert 0 < usage.completion <= 12


@pytest.mark.parametrize("path", COMPLETION_PATHS)
def test_streamed_deltas_concatenate_to_the_non_streamed_text(server, path):
    params = {"temperature": 0, "max_tokens": 24}
    whole = post(server.base_url, path, {"model": MODEL, "prompt": PROMPT, "model_parameters": params}).json()
    # The newer SDKs send Accept: application/json on streams: the body decides.
    r = post(
        server.base_url,
        path,
        {"model": MODEL, "prompt": PROMPT, "model_parameters": params, "stream": True},
        headers={"Accept": "application/json"},
    )
    assert r.status_code == 200
    events = sse_events(r)
    assert all(name is None for name, _ in events)
    assert all(data != "[DONE]" for _, data in events)
    bodies = [CompletionResponse.model_validate_json(data) for _, data in events]
    assert len(bodies) >= 3, "the text arrives in several deltas"
    *deltas, last = bodies
    assert all(b.token_usage is None and b.completion.finish_reason is None for b in deltas)
    assert last.completion.text == ""
    assert (
        last.token_usage is not None and last.completion.finish_reason == whole["completion"]["finish_reason"]
    )
    assert "".join(b.completion.text for b in deltas) == whole["completion"]["text"]
    assert last.token_usage.model_dump() == whole["token_usage"]


def test_chat_completions_non_streaming_and_streaming(server):
    messages = [
        {"role": "system", "content": "You answer with one word."},
        {"role": "user", "content": "Name a color."},
    ]
    body = {"model": MODEL, "messages": messages, "model_parameters": {"temperature": 0, "max_tokens": 10}}
    r = post(server.base_url, "/v4/chat-completions", body)
    assert r.status_code == 200, r.text
    whole = ChatCompletionResponse.model_validate(r.json())
    assert whole.chat_completion.message.role == "assistant"
    assert whole.chat_completion.message.content
    streamed = sse_events(post(server.base_url, "/v4/chat-completions", {**body, "stream": True}))
    bodies = [ChatCompletionResponse.model_validate_json(data) for _, data in streamed]
    assert "".join(b.chat_completion.message.content for b in bodies) == whole.chat_completion.message.content
    assert bodies[-1].token_usage == whole.token_usage
    assert all(b.token_usage is None for b in bodies[:-1])


def test_completion_prompt_is_one_user_turn_of_the_chat_template(server):
    """/v2 with a prompt and /v4/chat-completions with that prompt as the only user message agree."""
    params = {"temperature": 0, "max_tokens": 16}
    a = post(
        server.base_url, "/v2/completions", {"model": MODEL, "prompt": PROMPT, "model_parameters": params}
    ).json()
    b = post(
        server.base_url,
        "/v4/chat-completions",
        {"model": MODEL, "messages": [{"role": "user", "content": PROMPT}], "model_parameters": params},
    ).json()
    assert a["completion"]["text"] == b["chat_completion"]["message"]["content"]
    assert a["token_usage"] == b["token_usage"]
    # the template (system turn + markers) makes the prompt longer than the bare text
    assert a["token_usage"]["prompt"] > 20


def test_official_scale_egp_sdk_create_stream_and_list(server):
    client = EGPClient(api_key="any-key", endpoint_url=server.base_url)  # calls /user-info
    assert client.account_id == "local"
    params = SDKModelParameters(temperature=0, max_tokens=10)
    # the SDK sends images: null and every unset field as null
    done = client.completions().create(
        model=MODEL, prompt=PROMPT, model_parameters=params, account_id=client.account_id
    )
    assert done.completion.text and done.token_usage.total > 0
    parts = list(
        client.completions().stream(
            model=MODEL, prompt=PROMPT, model_parameters=params, account_id=client.account_id
        )
    )
    assert "".join(p.completion.text for p in parts) == done.completion.text
    assert parts[-1].token_usage.total == done.token_usage.total
    assert [m.id for m in client.models().list()] == [MODEL]


def test_sdk_null_fields_are_accepted(server):
    body = {
        "model": MODEL,
        "prompt": "Hi",
        "images": None,
        "model_parameters": None,
        "account_id": None,
        "stream": False,
    }
    r = post(server.base_url, "/v2/completions", body)
    assert r.status_code == 200, r.text
    nulls = {"temperature": None, "max_tokens": 3, "stop_sequences": None, "top_k": None, "top_p": None}
    r = post(server.base_url, "/v2/completions", {"model": MODEL, "prompt": "Hi", "model_parameters": nulls})
    assert r.status_code == 200, r.text
    assert r.json()["token_usage"]["completion"] <= 3


@pytest.mark.parametrize("spelling", [{"topK": 1}, {"top_k": 1}])
def test_top_k_both_spellings_are_honoured(server, spelling):
    """top-k 1 at temperature 1 leaves one choice per step: exactly the greedy answer."""
    base = {"model": MODEL, "prompt": "Tell me a short story."}
    greedy = post(
        server.base_url, "/v2/completions", {**base, "model_parameters": {"temperature": 0, "max_tokens": 30}}
    )
    sampled = post(
        server.base_url,
        "/v4/completions",
        {**base, "model_parameters": {"temperature": 1, "max_tokens": 30, **spelling}},
    )
    assert sampled.status_code == 200, sampled.text
    assert sampled.json()["completion"]["text"] == greedy.json()["completion"]["text"]


@pytest.mark.parametrize("spelling", ["topP", "top_p"])
def test_top_p_both_spellings_are_accepted_and_validated(server, spelling):
    ok = post(
        server.base_url,
        "/v4/completions",
        {
            "model": MODEL,
            "prompt": "Hi",
            "model_parameters": {spelling: 0.01, "temperature": 1, "max_tokens": 20},
        },
    )
    greedy = post(
        server.base_url,
        "/v2/completions",
        {"model": MODEL, "prompt": "Hi", "model_parameters": {"temperature": 0, "max_tokens": 20}},
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["completion"]["text"] == greedy.json()["completion"]["text"]  # top_p 0.01 ~ greedy
    bad = post(
        server.base_url,
        "/v4/completions",
        {"model": MODEL, "prompt": "Hi", "model_parameters": {spelling: 5}},
    )
    assert bad.status_code == 422


def test_max_tokens_gives_length_and_exact_usage(server):
    r = post(
        server.base_url,
        "/v2/completions",
        {
            "model": MODEL,
            "prompt": "Write a long essay about rivers.",
            "model_parameters": {"temperature": 0, "max_tokens": 7},
        },
    )
    data = r.json()
    assert data["completion"]["finish_reason"] == "length"
    assert data["token_usage"]["completion"] == 7


def test_stop_sequence_is_not_emitted_and_finishes_with_stop(server):
    params = {"temperature": 0, "max_tokens": 20}
    full = post(
        server.base_url, "/v2/completions", {"model": MODEL, "prompt": PROMPT, "model_parameters": params}
    ).json()
    text = full["completion"]["text"]
    assert "Paris" in text
    for stream in (False, True):
        r = post(
            server.base_url,
            "/v2/completions",
            {
                "model": MODEL,
                "prompt": PROMPT,
                "stream": stream,
                "model_parameters": {**params, "stop_sequences": ["Paris"]},
            },
        )
        if stream:
            bodies = [json.loads(d) for _, d in sse_events(r)]
            got = "".join(b["completion"]["text"] for b in bodies)
            last = bodies[-1]
        else:
            last = r.json()
            got = last["completion"]["text"]
        assert got == text[: text.index("Paris")]
        assert last["completion"]["finish_reason"] == "stop"


def streamed_texts(base_url: str, body: dict) -> tuple[list[str], dict]:
    """The text deltas of a streamed answer, and its last event."""
    bodies = [
        json.loads(d) for _, d in sse_events(post(base_url, "/v2/completions", {**body, "stream": True}))
    ]
    return [b["completion"]["text"] for b in bodies[:-1]], bodies[-1]


def test_stop_sequence_split_across_tokens(server):
    """A stop sequence made of the end of one token and the start of the next: found, never sent."""
    body = {"model": MODEL, "prompt": PROMPT, "model_parameters": {"temperature": 0, "max_tokens": 20}}
    deltas, _ = streamed_texts(server.base_url, body)
    # each delta is one token here (plain English); take a boundary well inside the answer
    i = next(
        i
        for i in range(2, len(deltas) - 1)
        if len(deltas[i].strip()) >= 2 and len(deltas[i + 1].strip()) >= 2
    )
    stop = deltas[i][-2:] + deltas[i + 1][:2]
    full = "".join(deltas)
    expected = full[: full.index(stop)]
    body["model_parameters"]["stop_sequences"] = [stop]
    cut, last = streamed_texts(server.base_url, body)
    assert "".join(cut) == expected
    assert stop not in "".join(cut)
    assert last["completion"]["finish_reason"] == "stop"


def test_multibyte_characters_are_never_split(server):
    body = {
        "model": MODEL,
        "prompt": "Write a Japanese greeting in Japanese characters.",
        "stream": True,
        "model_parameters": {"temperature": 0, "max_tokens": 30},
    }
    r = post(server.base_url, "/v2/completions", body)
    deltas = [json.loads(d)["completion"]["text"] for _, d in sse_events(r)]
    text = "".join(deltas)
    assert any(ord(c) > 0x3000 for c in text), text
    assert "\ufffd" not in text
    usage = json.loads(sse_events(r)[-1][1])["token_usage"]
    assert usage["completion"] == 30
    assert len(deltas) - 1 < 30, "some characters took two tokens and were sent whole"


@pytest.mark.parametrize("path", ["/v3/models", "/v4/models", "/v5/chat/completions/models"])
def test_model_listings_name_the_model_the_completions_paths_accept(server, path):
    data = requests.get(server.base_url + path, timeout=10).json()
    if path == "/v3/models":
        ids = [m["id"] for m in data]
        assert data[0]["name"] == MODEL
    elif path == "/v4/models":
        ids = [m["id"] for m in data["items"]]
        assert data["current_page"] == 1
        assert data["items"][0]["context_length"] == 8192
    else:
        ids = [m["model_name"] for m in data["items"]]
        assert data["object"] == "list"
        item = data["items"][0]
        assert {"model_type", "model_vendor", "model_availability"} <= set(item)
        assert item["context_length"] == 8192
    assert ids == [MODEL]
    r = post(
        server.base_url,
        "/v2/completions",
        {"model": ids[0], "prompt": "Hi", "model_parameters": {"max_tokens": 2}},
    )
    assert r.status_code == 200


def test_user_info_shape(server):
    data = requests.get(server.base_url + "/user-info", timeout=10).json()
    assert {"id", "first_name", "last_name", "email", "access_profiles"} <= set(data)
    assert data["access_profiles"][0]["role"] == "admin"
    assert data["access_profiles"][0]["account"]["id"] == "local"


def test_health_reports_ready_and_idle(server):
    health = server.health()
    assert health["ready"] is True and health["status"] == "ok"
    assert health["busy"] is False and health["queue_length"] == 0
    assert health["models"][0]["id"] == MODEL


def test_prompt_usage_is_the_exact_token_count_of_the_chat_template(server):
    """Independently: render the GGUF's own template with jinja2, tokenize with the model's vocabulary."""
    import jinja2
    from llama_cpp import Llama

    from egp_core.local.engine import default_model_path

    vocab = Llama(model_path=str(default_model_path()), vocab_only=True, verbose=False)
    template = jinja2.Environment().from_string(vocab.metadata["tokenizer.chat_template"])
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": PROMPT}]
    for path, body in [
        ("/v2/completions", {"prompt": PROMPT}),
        ("/v4/chat-completions", {"messages": messages}),
    ]:
        rendered = template.render(
            messages=body.get("messages") or [{"role": "user", "content": PROMPT}], add_generation_prompt=True
        )
        expected = len(vocab.tokenize(rendered.encode(), add_bos=False, special=True))
        r = post(
            server.base_url,
            path,
            {"model": MODEL, **body, "model_parameters": {"temperature": 0, "max_tokens": 3}},
        )
        assert r.json()["token_usage"]["prompt"] == expected
    vocab.close()


@pytest.mark.parametrize("api", ["completions", "chat"])
def test_egp_core_client_complete_and_stream(server, api):
    from egp_core.client import EGPClient
    from egp_core.types import CompletionRequest, ModelParameters

    request = CompletionRequest(
        model=MODEL, prompt=PROMPT, model_parameters=ModelParameters(temperature=0, max_tokens=12)
    )
    with EGPClient(server.base_url, api=api) as client:
        assert MODEL in client.list_models()
        done = client.complete(request)
        with client.stream(request) as stream:
            chunks = list(stream)
    assert "".join(c.text for c in chunks) == done.text == stream.text
    assert stream.usage == done.usage and stream.finish_reason == done.finish_reason
