"""SGP v5 through egp_core (the OpenAI-shaped client) against the fake EGP server on 127.0.0.1."""

from __future__ import annotations

import math

import pytest

from egp_core import errors
from egp_core.connections import Connection, message_form, probe_api
from egp_core.openai_compat import OpenAIClient, sgp_v5_client
from egp_core.types import AnswerOptions, CompletionRequest, Message, ModelParameters

KEY = "sk-v5-secret-key-123456"


def client(fake, api: str = "chat", **kw) -> OpenAIClient:
    kw.setdefault("retry_initial_delay", 0.001)
    return sgp_v5_client(fake.base_url, KEY, "acct-9", api=api, **kw)


def req(**kw) -> CompletionRequest:
    kw.setdefault("model", "fake-model")
    kw.setdefault("messages", [Message(role="system", content="Be brief."), Message(role="user", content="Hi")])
    return CompletionRequest(**kw)


def test_chat_create_sends_openai_body_and_workspace_headers(fake_egp):
    fake_egp.v5().reply(text="Hello there")
    options = AnswerOptions(seed=7, response_format={"type": "json_object"})
    with client(fake_egp) as c:
        done = c.complete(req(model_parameters=ModelParameters(temperature=0.3, max_tokens=20, top_k=5,
                                                               stop_sequences=["\n\n"]), options=options))
    assert (done.text, done.finish_reason) == ("Hello there (seed 7)", "stop")
    assert (done.usage.prompt, done.usage.completion, done.usage.total) == (3, 2, 5)
    r = fake_egp.requests[-1]
    assert r.path == "/v5/chat/completions"
    assert r.headers["x-api-key"] == KEY and r.headers["x-selected-account-id"] == "acct-9"
    assert "Authorization" not in r.headers
    assert r.body == {"model": "fake-model", "stream": False, "temperature": 0.3, "max_tokens": 20, "top_k": 5,
                      "stop": ["\n\n"], "seed": 7, "response_format": {"type": "json_object"},
                      "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]}


def test_chat_stream_yields_deltas_usage_and_finish(fake_egp):
    fake_egp.v5().reply(chunks=["Once", " upon", " a", " time"], finish_reason="length")
    with client(fake_egp) as c, c.stream(req()) as stream:
        assert [ch.text for ch in stream] == ["Once", " upon", " a", " time"]
    assert stream.finish_reason == "length" and stream.usage.completion == 4
    assert stream.completion.candidates is None and stream.completion.logprobs is None
    body = fake_egp.requests[-1].body
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}


def test_candidates_arrive_by_choice_index(fake_egp):
    fake_egp.v5().reply(text="Red")
    with client(fake_egp) as c:
        whole = c.complete(req(options=AnswerOptions(n=3)))
        with c.stream(req(options=AnswerOptions(n=2))) as stream:
            assert "".join(ch.text for ch in stream) == "Red"
    assert whole.candidates == ["Red", "Red (2)", "Red (3)"]
    assert stream.completion.candidates == ["Red", "Red (2)"]
    assert fake_egp.requests[-1].body["n"] == 2


def test_token_probabilities_streamed_and_whole(fake_egp):
    fake_egp.v5().reply(chunks=["Yes", ",", " sure"])
    options = AnswerOptions(top_logprobs=2)
    with client(fake_egp) as c:
        whole = c.complete(req(options=options))
        with c.stream(req(options=options)) as stream:
            assert [ch.text for ch in stream] == ["Yes", ",", " sure"]
    body = fake_egp.requests[-1].body
    assert body["logprobs"] is True and body["top_logprobs"] == 2
    for got in (whole.logprobs, stream.completion.logprobs):
        assert [t.token for t in got] == ["Yes", ",", " sure"]
        assert math.isclose(math.exp(got[0].logprob), 0.6, abs_tol=0.01)
        assert [alt for alt, _ in got[0].top] == ["Yes", " maybe"]


def test_v5_completions_path_and_logprobs_shape(fake_egp):
    fake_egp.v5().reply(chunks=["4", "."])
    request = CompletionRequest(model="fake-model", prompt="2+2=", options=AnswerOptions(top_logprobs=1, n=2))
    with client(fake_egp, api="completions") as c:
        whole = c.complete(request)
        streamed = list(c.stream(request))
    assert fake_egp.requests[-1].path == "/v5/completions"
    assert fake_egp.requests[-1].body["prompt"] == "2+2=" and fake_egp.requests[-1].body["logprobs"] == 1
    assert whole.text == "4." and whole.candidates == ["4.", "4. (2)"]
    assert [t.token for t in whole.logprobs] == ["4", "."] and whole.logprobs[0].top[0][0] == "4"
    assert "".join(ch.text for ch in streamed) == "4."


def test_fastapi_errors_are_told_apart(fake_egp):
    fake_egp.v5().fail(422, times=1).fail(404, body={"detail": "Model 'x' not found"}, times=1)
    with client(fake_egp, max_retries=0) as c:
        with pytest.raises(errors.InvalidRequestError) as bad:
            c.complete(req())
        with pytest.raises(errors.NotFoundError):
            list(c.stream(req()))
    assert "temperature" in bad.value.user_message


def test_rate_limit_is_retried_then_answers(fake_egp):
    fake_egp.v5().reply(text="ok").fail(429, retry_after=0, times=1)
    seen = []
    with client(fake_egp, on_retry=lambda e, d: seen.append(type(e))) as c:
        assert "".join(ch.text for ch in c.stream(req())) == "ok"
    assert seen == [errors.RateLimitError]


def test_wrong_key_is_an_authentication_error_without_the_key(fake_egp):
    fake_egp.v5().require_key("the-right-one")
    with client(fake_egp, max_retries=0) as c, pytest.raises(errors.AuthenticationError) as info:
        c.complete(req())
    assert KEY not in str(info.value.__dict__)


def test_a_dropped_stream_keeps_the_text_and_says_it_was_cut(fake_egp):
    fake_egp.v5().reply(chunks=["a", "b", "c", "d"]).drop_after(2)
    with client(fake_egp) as c:
        stream = c.stream(req())
        got = []
        with pytest.raises(errors.ProtocolError) as info:
            for ch in stream:
                got.append(ch.text)
    assert got == ["a", "b"] and stream.completion.text == "ab"
    assert "cut" in info.value.user_message
    assert len([r for r in fake_egp.requests if r.path == "/v5/chat/completions"]) == 1  # text shown: no retry


def test_malformed_event_and_error_event(fake_egp):
    fake_egp.v5().reply(chunks=["a", "b"]).malformed(after=1)
    with client(fake_egp) as c, pytest.raises(errors.ProtocolError):
        list(c.stream(req()))
    fake_egp.reset()
    fake_egp.v5().reply(chunks=["a", "b", "c"]).error_event(after=2, detail="GPU fell over")
    with client(fake_egp) as c, pytest.raises(errors.ServerError) as info:
        list(c.stream(req()))
    assert "GPU fell over" in info.value.user_message


def test_an_error_object_in_place_of_an_answer(fake_egp):
    fake_egp.v5().reply(chunks=["a", "b"]).malformed(after=1, line='{"detail": "Upstream provider failed"}')
    with client(fake_egp) as c, pytest.raises(errors.ServerError) as info:
        list(c.stream(req()))
    assert "Upstream provider failed" in info.value.user_message


def test_done_comments_and_unknown_events_are_skipped(fake_egp):
    fake_egp.v5().reply(chunks=["x", "y"]).comments().send_done()
    with client(fake_egp) as c:
        assert [ch.text for ch in c.stream(req())] == ["x", "y"]


def test_model_list_from_v5(fake_egp):
    fake_egp.v5().models(["m-a", "m-b"], versions=("v5",))
    with client(fake_egp) as c:
        assert c.list_models() == ["m-a", "m-b"]
    assert fake_egp.requests[0].path == "/v5/chat/completions/models"


def test_probe_picks_v5_when_the_workspace_has_it_else_falls_back(fake_egp):
    conn = Connection(id="w", name="W", kind="egp", base_url=fake_egp.base_url, api_key=KEY, account_id="a")
    assert probe_api(conn) == "completions"
    fake_egp.v5()
    assert probe_api(conn) == "v5-chat"
    assert fake_egp.requests[-1].path == "/v5/models" and fake_egp.requests[-1].headers["x-api-key"] == KEY
    assert probe_api(Connection(id="o", name="O", kind="openai", base_url=fake_egp.base_url)) == "chat"


def test_connection_makes_the_client_for_each_api(fake_egp):
    fake_egp.v5().reply(text="hi")
    conn = Connection(id="w", name="W", kind="egp", base_url=fake_egp.base_url, api_key=KEY)
    paths = []
    for api in ("v5-chat", "v5-completions", "chat", "completions"):
        with conn.make_client(api, max_retries=0) as c:
            assert c.complete(req() if message_form(api) == "chat" else
                              CompletionRequest(model="fake-model", prompt="hi")).text == "hi"
        paths.append(fake_egp.requests[-1].path)
    assert paths == ["/v5/chat/completions", "/v5/completions", "/v4/chat-completions", "/v2/completions"]
    assert [message_form(a) for a in ("v5-chat", "v5-completions", "chat", "completions")] == [
        "chat", "completions", "chat", "completions"]


def test_probe_raises_when_the_workspace_did_not_answer():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(errors.ConnectionFailed):
        probe_api(Connection(id="x", name="X", kind="egp", base_url=f"http://127.0.0.1:{port}"), timeout=1)


def test_probe_raises_on_a_server_error_and_says_no_on_a_refusal(fake_egp):
    conn = Connection(id="w", name="W", kind="egp", base_url=fake_egp.base_url)
    fake_egp.v5().fail(503, times=1, paths=["/v5/models"])
    with pytest.raises(errors.ServerError):
        probe_api(conn)
    assert probe_api(conn) == "v5-chat"
    fake_egp.require_key("another")
    assert probe_api(conn) == "completions"
