"""egp_core.openai_compat against a fake OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from egp_core import errors
from egp_core.openai_compat import OpenAIClient, api_root, chat_body, safe_url
from egp_core.types import Chunk, CompletionRequest, Message, ModelParameters
from tests.fake_openai import FakeOpenAI, llama_cpp_server

KEY = "sk-test-abcdefgh12345678"


@pytest.fixture()
def fake():
    with FakeOpenAI() as server:
        yield server


def req(prompt: str = "Hi", **params) -> CompletionRequest:
    return CompletionRequest(model="fake-gpt", prompt=prompt, model_parameters=ModelParameters(**params) if params else None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_base_url_forms():
    assert api_root("http://h:1/v1/") == "http://h:1"
    assert api_root(" http://h:1 ") == "http://h:1"
    assert safe_url("http://user:pw@h:1/v1") == "http://h:1/v1"


def test_chat_body_maps_parameters():
    r = CompletionRequest(model="m", messages=[Message(role="system", content="S"), Message(role="user", content="U")],
                          model_parameters=ModelParameters(temperature=0, max_tokens=5, stop_sequences=["\n"],
                                                           top_p=0.5, top_k=3, presence_penalty=0.1))
    body = chat_body(r, stream=True)
    assert body == {"model": "m", "messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}],
                    "stream": True, "temperature": 0, "max_tokens": 5, "top_p": 0.5, "presence_penalty": 0.1,
                    "stop": ["\n"], "stream_options": {"include_usage": True}}
    assert chat_body(req("P"), stream=False) == {"model": "fake-gpt", "messages": [{"role": "user", "content": "P"}],
                                                 "stream": False}


def test_list_models_and_key_header(fake):
    fake.require_key(KEY).models(["a", "b", "c"])
    with OpenAIClient(fake.base_url + "/v1", KEY) as client:
        assert client.list_models() == ["a", "b", "c"]
    assert fake.requests[-1]["headers"]["Authorization"] == f"Bearer {KEY}"
    assert fake.requests[-1]["path"] == "/v1/models"
    assert KEY not in repr(client)


def test_complete(fake):
    fake.reply("The answer is 4.")
    with OpenAIClient(fake.base_url) as client:
        c = client.complete(req("What is 2+2?", temperature=0, max_tokens=10))
    assert c.text == "The answer is 4."
    assert c.finish_reason == "stop"
    assert c.usage.prompt == 3 and c.usage.completion == 4 and c.usage.total == 7
    assert c.model == "fake-gpt"
    body = fake.requests[-1]["body"]
    assert body["messages"] == [{"role": "user", "content": "What is 2+2?"}] and body["max_tokens"] == 10
    assert "Authorization" not in fake.requests[-1]["headers"]


def test_stream_chunks_usage_and_metrics(fake):
    fake.reply(chunks=["Hel", "lo, ", "wörld", "!"], finish_reason="length")
    client = OpenAIClient(fake.base_url)
    with client.stream(req("x", max_tokens=4)) as stream:
        chunks = list(stream)
    assert [c.text for c in chunks] == ["Hel", "lo, ", "wörld", "!"]
    assert all(isinstance(c, Chunk) for c in chunks)
    assert stream.text == "Hello, wörld!"
    assert stream.finish_reason == "length"
    assert stream.usage.completion == 4 and stream.usage.prompt == 1 and stream.usage.total == 5
    done = stream.completion
    assert done.text == "Hello, wörld!" and done.usage == stream.usage and done.finish_reason == "length"
    assert done.metrics.chunks == 4
    assert done.metrics.time_to_first_token is not None and done.metrics.time_to_first_token >= 0
    assert done.metrics.tokens_per_second is not None and done.metrics.tokens_per_second > 0
    assert fake.requests[-1]["body"]["stream_options"] == {"include_usage": True}


def test_stream_falls_back_when_server_rejects_stream_options(fake):
    fake.reply("a b c").no_stream_options()
    with OpenAIClient(fake.base_url).stream(req()) as stream:
        assert "".join(c.text for c in stream) == "a b c"
    assert stream.usage is None and stream.finish_reason == "stop"
    assert "stream_options" not in fake.requests[-1]["body"]


def test_wrong_key(fake):
    fake.require_key(KEY)
    wrong = "sk-wrong-zyxwvuts98765432"
    client = OpenAIClient(fake.base_url, wrong)
    for call in (client.list_models, lambda: client.complete(req()), lambda: list(client.stream(req()))):
        with pytest.raises(errors.AuthenticationError) as info:
            call()
        err = info.value
        assert err.user_message == errors.AuthenticationError.user_message
        assert err.status == 401
        for text in (str(err), err.detail, err.body, err.user_message):
            assert wrong not in text and "9876" not in text and "sk-" not in text
        assert "Incorrect API key" in err.detail


def test_unknown_model(fake):
    with pytest.raises(errors.NotFoundError) as info:
        OpenAIClient(fake.base_url).complete(CompletionRequest(model="nope", prompt="x"))
    assert "nope" in info.value.detail


def test_rate_limit_is_retried_then_succeeds(fake):
    fake.reply("ok").fail(429, times=2, retry_after=0)
    seen = []
    client = OpenAIClient(fake.base_url, on_retry=lambda e, d: seen.append((type(e), d)))
    with client.stream(req()) as stream:
        assert "".join(c.text for c in stream) == "ok"
    assert seen == [(errors.RateLimitError, 0.0), (errors.RateLimitError, 0.0)]
    assert len(fake.requests) == 3


def test_rate_limit_gives_up_after_max_retries(fake):
    fake.fail(429, times=5, retry_after=0)
    with pytest.raises(errors.RateLimitError) as info:
        OpenAIClient(fake.base_url, max_retries=1).complete(req())
    assert info.value.retry_after == 0
    assert len(fake.requests) == 2


def test_server_error_and_bad_request(fake):
    fake.fail(500, times=1)
    with pytest.raises(errors.ServerError):
        OpenAIClient(fake.base_url, max_retries=0).complete(req())
    fake.fail(400, message="max_tokens is too large")
    with pytest.raises(errors.InvalidRequestError) as info:
        OpenAIClient(fake.base_url).complete(req())
    assert info.value.messages == ["max_tokens is too large"]
    assert len(fake.requests) == 2  # a 400 is not retried


def test_error_in_the_middle_of_a_stream(fake):
    fake.reply("one two three four").error_mid_stream(after=2)
    stream = OpenAIClient(fake.base_url).stream(req())
    got = []
    with pytest.raises(errors.ServerError) as info:
        for chunk in stream:
            got.append(chunk.text)
    assert got == ["one", " two"]
    assert "crashed" in info.value.user_message
    assert stream.completion.text == "one two"


def test_unreachable_host():
    port = free_port()
    client = OpenAIClient(f"http://127.0.0.1:{port}", KEY, max_retries=0)
    with pytest.raises(errors.ConnectionFailed) as info:
        client.list_models()
    assert info.value.user_message == errors.ConnectionFailed.user_message
    with pytest.raises(errors.ConnectionFailed):
        list(client.stream(req()))
    assert KEY not in info.value.detail


def test_unreachable_host_is_retried():
    seen = []
    client = OpenAIClient(f"http://127.0.0.1:{free_port()}", max_retries=1, on_retry=lambda e, d: seen.append(e))
    with pytest.raises(errors.ConnectionFailed):
        client.list_models()
    assert len(seen) == 1 and isinstance(seen[0], errors.ConnectionFailed)


def test_silent_server_times_out():
    with socket.socket() as listener:  # accepts connections, never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        client = OpenAIClient(f"http://127.0.0.1:{listener.getsockname()[1]}", read_timeout=0.3, max_retries=0)
        with pytest.raises(errors.TimeoutError):
            client.list_models()


def test_close_from_another_thread_unblocks_and_disconnects(fake):
    fake.reply("one two three").stall(after=2)
    stream = OpenAIClient(fake.base_url).stream(req())
    got = []
    first = threading.Event()

    def consume():
        for chunk in stream:
            got.append(chunk.text)
            first.set()

    worker = threading.Thread(target=consume, daemon=True)
    worker.start()
    assert first.wait(5)
    time.sleep(0.1)  # the worker is now blocked reading the silent stream
    assert worker.is_alive()
    stream.close()
    worker.join(5)
    assert not worker.is_alive()
    assert got == ["one", " two"]
    assert fake.wait_disconnect(5)
    assert stream.completion is not None and stream.completion.text == "one two"
    assert stream.closed


def test_close_before_iterating_sends_nothing(fake):
    stream = OpenAIClient(fake.base_url).stream(req())
    stream.close()
    assert list(stream) == []
    assert fake.requests == []


def test_same_stream_object_as_the_egp_client(fake):
    from egp_core.client import CompletionStream, EGPClient

    client = OpenAIClient(fake.base_url)
    assert isinstance(client, EGPClient)
    assert isinstance(client.stream(req()), CompletionStream)


def test_model_list_fallback_when_server_has_none(fake):
    fake.models([])
    assert OpenAIClient(fake.base_url, fallback_models=["my-model"]).list_models() == ["my-model"]
    assert OpenAIClient(fake.base_url).list_models() == []


# ---- a real OpenAI-compatible server: llama-cpp-python's own, with the bundled model ----------


@pytest.fixture(scope="module")
def llama_cpp(tmp_path_factory):
    with llama_cpp_server(tmp_path_factory.mktemp("llama-cpp")) as base_url:
        yield base_url


def test_real_llama_cpp_server(llama_cpp):
    client = OpenAIClient(llama_cpp + "/v1")
    assert client.list_models() == ["smollm2"]
    request = CompletionRequest(model="smollm2", messages=[Message(role="user", content="Name a colour.")],
                                model_parameters=ModelParameters(temperature=0, max_tokens=8))
    client.complete(request)  # this server's very first answer can differ from the later ones (cache warm-up)
    with client.stream(request) as stream:
        parts = [c.text for c in stream]
    whole = client.complete(request)
    assert whole.text and whole.finish_reason in ("stop", "length")
    assert whole.usage.completion <= 8 and whole.usage.total == whole.usage.prompt + whole.usage.completion
    assert len(parts) >= 2 and "".join(parts) == whole.text == stream.text
    assert stream.finish_reason == whole.finish_reason
    # This server ignores stream_options: no usage in the stream, and that is not an error.
    assert stream.usage is None or stream.usage == whole.usage
    assert stream.completion.metrics.time_to_first_token is not None
