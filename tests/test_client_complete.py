"""EGPClient.complete, configuration, errors and retries, against the fake EGP server."""

from __future__ import annotations

import socket
import threading
from email.utils import formatdate

import pytest

from egp_core import errors
from egp_core.client import EGPClient
from egp_core.retry import RetryPolicy, parse_retry_after
from egp_core.types import CompletionRequest, Message, ModelParameters

KEY = "sk-very-secret-key"


def make_client(fake, **kw) -> EGPClient:
    kw.setdefault("retry_initial_delay", 0.001)
    return EGPClient(fake.base_url, KEY, "acct-7", **kw)


def req(**kw) -> CompletionRequest:
    kw.setdefault("model", "fake-model")
    kw.setdefault("prompt", "Say hello")
    return CompletionRequest(**kw)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_complete_returns_text_usage_and_metrics(fake_egp):
    fake_egp.reply(text="Hello world", usage={"prompt": 3, "completion": 2, "total": 5})
    with make_client(fake_egp) as client:
        done = client.complete(req())
    assert done.text == "Hello world"
    assert done.finish_reason == "stop"
    assert (done.usage.prompt, done.usage.completion, done.usage.total) == (3, 2, 5)
    assert done.model == "fake-model"
    m = done.metrics
    assert m.total_time is not None and m.total_time > 0
    assert m.time_to_first_token == m.total_time
    assert m.tokens_per_second == pytest.approx(2 / m.total_time)


def test_complete_sends_headers_and_body_like_the_sdk(fake_egp):
    with make_client(fake_egp) as client:
        client.complete(req(model_parameters=ModelParameters(temperature=0.3, max_tokens=7,
                                                             stop_sequences=["\n"], top_k=5)))
    (r,) = fake_egp.requests
    assert r.path == "/v2/completions"
    assert r.headers["x-api-key"] == KEY
    assert r.headers["x-selected-account-id"] == "acct-7"
    assert r.body == {"model": "fake-model", "prompt": "Say hello", "stream": False, "account_id": "acct-7",
                      "model_parameters": {"temperature": 0.3, "max_tokens": 7, "stop_sequences": ["\n"],
                                           "top_k": 5}}


def test_no_key_no_account_sends_no_such_headers(fake_egp):
    with EGPClient(fake_egp.base_url) as client:
        client.complete(req())
    headers = {k.lower() for k in fake_egp.requests[0].headers}
    assert "x-api-key" not in headers and "x-selected-account-id" not in headers


@pytest.mark.parametrize("path", ["/egp/v1/completions", "/v4/completions", "/v2/completions"])
def test_completions_path_is_configurable(fake_egp, path):
    with make_client(fake_egp, completions_path=path) as client:
        assert client.complete(req()).text == "Hello world"
    assert fake_egp.requests[0].path == path


def test_chat_api_posts_messages_and_reads_message_content(fake_egp):
    fake_egp.reply(text="Hi there")
    with make_client(fake_egp, api="chat") as client:
        done = client.complete(req(prompt=None, messages=[Message(role="system", content="Be brief"),
                                                          Message(role="user", content="Hello")]))
    assert done.text == "Hi there"
    r = fake_egp.requests[0]
    assert r.path == "/v4/chat-completions"
    assert r.body["messages"] == [{"role": "system", "content": "Be brief"}, {"role": "user", "content": "Hello"}]


def test_one_session_reuses_the_connection(fake_egp):
    with make_client(fake_egp) as client:
        for _ in range(3):
            client.complete(req())
    assert fake_egp.connections == 1


def test_from_env_reads_the_sdk_variables_and_overrides_win(fake_egp, monkeypatch):
    monkeypatch.setenv("EGP_ENDPOINT_URL", fake_egp.base_url)
    monkeypatch.setenv("EGP_API_KEY", KEY)
    monkeypatch.setenv("EGP_ACCOUNT_ID", "acct-env")
    with EGPClient.from_env() as client:
        client.complete(req())
    with EGPClient.from_env(account_id="acct-override", api="chat") as client:
        client.complete(req())
    first, second = fake_egp.requests
    assert first.headers["x-api-key"] == KEY and first.headers["x-selected-account-id"] == "acct-env"
    assert second.headers["x-selected-account-id"] == "acct-override"
    assert second.path == "/v4/chat-completions"


def test_repr_and_errors_never_show_the_key(fake_egp):
    client = make_client(fake_egp)
    assert KEY not in repr(client) and "api_key=<set>" in repr(client)
    fake_egp.fail(401, body={"detail": "bad key"})
    with pytest.raises(errors.AuthenticationError) as info:
        client.complete(req())
    err = info.value
    assert KEY not in str(err) and KEY not in err.detail and KEY not in err.user_message


def test_url_in_errors_has_no_userinfo_or_query():
    port = free_port()
    client = EGPClient(f"http://user:pw@127.0.0.1:{port}", KEY, max_retries=0,
                       completions_path="/v2/completions?token=abc")
    with pytest.raises(errors.ConnectionFailed) as info:
        client.complete(req())
    for secret in ("pw", "abc", KEY):
        assert secret not in info.value.detail
        assert secret not in info.value.url


@pytest.mark.parametrize(("status", "cls"), [
    (401, errors.AuthenticationError), (403, errors.AuthenticationError), (404, errors.NotFoundError),
    (400, errors.InvalidRequestError), (422, errors.InvalidRequestError)])
def test_status_codes_map_to_error_kinds_and_are_not_retried(fake_egp, status, cls):
    fake_egp.fail(status, times=3)
    with make_client(fake_egp) as client, pytest.raises(cls) as info:
        client.complete(req())
    err = info.value
    assert err.status == status
    assert err.user_message and "\n" not in err.user_message
    assert f"HTTP {status}" in err.detail and "/v2/completions" in err.detail
    assert ("less than or equal" if status == 422 else f"Fake failure {status}") in err.detail
    assert len(fake_egp.requests) == 1


def test_invalid_request_carries_the_servers_messages(fake_egp):
    fake_egp.fail(422)
    with make_client(fake_egp) as client, pytest.raises(errors.InvalidRequestError) as info:
        client.complete(req())
    assert info.value.messages == ["model_parameters.temperature: Input should be less than or equal to 1"]
    assert "less than or equal to 1" in info.value.user_message


def test_nested_detail_is_unwrapped(fake_egp):
    fake_egp.fail(400, body={"detail": {"detail": "Prompt too long for model"}})
    with make_client(fake_egp) as client, pytest.raises(errors.InvalidRequestError) as info:
        client.complete(req())
    assert info.value.messages == ["Prompt too long for model"]


def test_error_messages_are_friendly_one_sentence():
    for cls in (errors.AuthenticationError, errors.NotFoundError, errors.InvalidRequestError,
                errors.RateLimitError, errors.ServerError, errors.TimeoutError, errors.ConnectionFailed,
                errors.ProtocolError):
        msg = cls().user_message
        assert msg.endswith(".") and "Traceback" not in msg and "HTTP" not in msg


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503])
def test_retryable_statuses_are_retried_then_succeed(fake_egp, status):
    fake_egp.fail(status, retry_after=0, times=2)
    seen = []
    with make_client(fake_egp, on_retry=lambda e, d: seen.append((e.status, d))) as client:
        assert client.complete(req()).text == "Hello world"
    assert seen == [(status, 0.0), (status, 0.0)]
    assert len(fake_egp.requests) == 3


def test_retries_stop_after_two(fake_egp):
    fake_egp.fail(500, times=5)
    with make_client(fake_egp) as client, pytest.raises(errors.ServerError):
        client.complete(req())
    assert len(fake_egp.requests) == 3


def test_max_retries_is_configurable(fake_egp):
    fake_egp.fail(503, times=5)
    with make_client(fake_egp, max_retries=0) as client, pytest.raises(errors.ServerError):
        client.complete(req())
    assert len(fake_egp.requests) == 1


def test_rate_limit_carries_retry_after(fake_egp):
    fake_egp.fail(429, retry_after=0, times=3)
    with make_client(fake_egp) as client, pytest.raises(errors.RateLimitError) as info:
        client.complete(req())
    assert info.value.retry_after == 0


def test_retry_after_ms_is_honoured(fake_egp):
    fake_egp.fail(429, retry_after_ms=20, retry_after=30, times=1)
    delays = []
    with make_client(fake_egp, on_retry=lambda e, d: delays.append(d)) as client:
        client.complete(req())
    assert delays == [0.02]


def test_retry_after_over_a_minute_is_not_slept_through(fake_egp):
    fake_egp.fail(429, retry_after=120, times=1)
    with make_client(fake_egp) as client, pytest.raises(errors.RateLimitError) as info:
        client.complete(req())
    assert info.value.retry_after == 120
    assert "120 seconds" in info.value.user_message
    assert len(fake_egp.requests) == 1


def test_backoff_without_retry_after_doubles_with_jitter(fake_egp):
    fake_egp.fail(500, times=2)
    delays = []
    with make_client(fake_egp, retry_initial_delay=0.01, on_retry=lambda e, d: delays.append(d)) as client:
        client.complete(req())
    assert 0.0075 <= delays[0] <= 0.01 and 0.015 <= delays[1] <= 0.02


def test_backoff_policy_defaults():
    policy = RetryPolicy()
    for attempt, base in [(0, 0.5), (1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 8.0), (9, 8.0)]:
        for _ in range(20):
            assert 0.75 * base <= policy.backoff(attempt) <= base


def test_parse_retry_after_forms():
    assert parse_retry_after({"retry-after": "3"}) == 3
    assert parse_retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert parse_retry_after({}) is None
    assert parse_retry_after({"retry-after": "soon"}) is None
    import time
    in_ten = parse_retry_after({"retry-after": formatdate(time.time() + 10, usegmt=True)})
    assert 5 < in_ten <= 10


def test_connection_refused_is_retried_then_friendly_error():
    client = EGPClient(f"http://127.0.0.1:{free_port()}", retry_initial_delay=0.001)
    seen = []
    client.on_retry = lambda e, d: seen.append(type(e))
    with pytest.raises(errors.ConnectionFailed) as info:
        client.complete(req())
    assert seen == [errors.ConnectionFailed, errors.ConnectionFailed]
    assert info.value.user_message == errors.ConnectionFailed.user_message


def test_invalid_url_is_a_friendly_error_not_retried():
    seen = []
    client = EGPClient("not a url", on_retry=lambda e, d: seen.append(e))
    with pytest.raises(errors.ConnectionFailed) as info:
        client.complete(req())
    assert "not valid" in info.value.user_message and seen == []


def test_read_timeout_is_a_timeout_error(fake_egp):
    fake_egp.delay_first_byte(0.5)
    with make_client(fake_egp, read_timeout=0.1, max_retries=0) as client, pytest.raises(errors.TimeoutError):
        client.complete(req())


def test_a_slow_generation_is_not_sent_again(fake_egp):
    """The server may still be generating (and billing) the first one: a read timeout of a
    generation is not retried (it used to be sent three times)."""
    fake_egp.delay_first_byte(0.5, times=1)
    seen = []
    with make_client(fake_egp, read_timeout=0.1, on_retry=lambda e, d: seen.append(e)) as client:
        with pytest.raises(errors.TimeoutError) as info:
            client.complete(req())
    assert len(fake_egp.requests) == 1 and seen == []
    assert not info.value.retryable and "not asked again" in info.value.user_message


def test_a_slow_model_listing_is_retried(fake_egp):
    fake_egp.delay_first_byte(0.5, times=1)
    with make_client(fake_egp, read_timeout=0.1) as client:
        assert client.list_models() == ["fake-model", "fake-model-large"]
    assert [r.path for r in fake_egp.requests] == ["/v5/chat/completions/models"] * 2


def test_closing_the_client_ends_a_retry_wait_at_once(fake_egp):
    """A retry's wait is a wait on an event, not time.sleep: Stop (close) ends it."""
    fake_egp.fail(503, retry_after=50, times=1)
    waiting, outcome = threading.Event(), {}
    client = make_client(fake_egp, on_retry=lambda e, d: waiting.set())

    def call() -> None:
        try:
            outcome["answer"] = client.complete(req())
        except errors.EGPError as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=call, daemon=True)
    worker.start()
    assert waiting.wait(30)
    client.close()
    worker.join(20)  # patience only: the server asked for 50 s
    assert not worker.is_alive()
    assert isinstance(outcome.get("error"), errors.ServerError) and len(fake_egp.requests) == 1


def test_non_json_answer_is_a_protocol_error(fake_egp):
    fake_egp.fail(200, body="<html>proxy login</html>")
    with make_client(fake_egp) as client, pytest.raises(errors.ProtocolError) as info:
        client.complete(req())
    assert "proxy login" in info.value.detail


def test_wrong_shape_is_a_protocol_error_naming_the_answer(fake_egp):
    fake_egp.fail(200, body={"choices": [{"text": "openai style"}]})
    with make_client(fake_egp) as client, pytest.raises(errors.ProtocolError) as info:
        client.complete(req())
    assert "openai style" in info.value.detail
