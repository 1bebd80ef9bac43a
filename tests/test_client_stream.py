"""EGPClient.stream against the fake EGP server: parsing, errors, retries, cancel."""

from __future__ import annotations

import threading

import pytest

from egp_core import errors
from egp_core.client import EGPClient
from egp_core.types import Chunk, CompletionRequest, Message

KEY = "sk-stream-secret"


def make_client(fake, **kw) -> EGPClient:
    kw.setdefault("retry_initial_delay", 0.001)
    return EGPClient(fake.base_url, KEY, "acct-1", **kw)


def req(**kw) -> CompletionRequest:
    kw.setdefault("model", "fake-model")
    kw.setdefault("prompt", "Tell me")
    return CompletionRequest(**kw)


def test_stream_yields_deltas_then_usage_and_finish_reason(fake_egp):
    fake_egp.reply(chunks=["Once", " upon", " a", " time"], usage={"prompt": 2, "completion": 4, "total": 6})
    with make_client(fake_egp) as client, client.stream(req()) as stream:
        chunks = list(stream)
    assert [c.text for c in chunks] == ["Once", " upon", " a", " time"]
    assert all(isinstance(c, Chunk) for c in chunks)
    assert [c.at for c in chunks] == sorted(c.at for c in chunks)
    assert stream.text == "Once upon a time"
    assert stream.finish_reason == "stop"
    assert (stream.usage.prompt, stream.usage.completion, stream.usage.total) == (2, 4, 6)
    m = stream.metrics
    assert m.chunks == 4
    assert 0 < m.time_to_first_token <= m.total_time
    assert m.tokens_per_second > 0
    done = stream.completion
    assert (done.text, done.finish_reason, done.usage, done.model) == ("Once upon a time", "stop", stream.usage,
                                                                      "fake-model")
    assert stream.closed


def test_stream_request_asks_for_sse(fake_egp):
    with make_client(fake_egp) as client:
        list(client.stream(req()))
    r = fake_egp.requests[0]
    assert r.body["stream"] is True and r.path == "/v2/completions"
    assert r.headers["Accept"] == "text/event-stream"
    assert r.headers["x-api-key"] == KEY and r.headers["x-selected-account-id"] == "acct-1"


def test_text_is_available_while_iterating(fake_egp):
    fake_egp.reply(chunks=["a", "b", "c"])
    seen = []
    with make_client(fake_egp) as client:
        stream = client.stream(req())
        for _ in stream:
            seen.append((stream.text, stream.finish_reason))
    assert seen == [("a", None), ("ab", None), ("abc", None)]
    assert stream.finish_reason == "stop"


def test_chat_stream_reads_message_content(fake_egp):
    fake_egp.reply(chunks=["Hi", " you"])
    with make_client(fake_egp, api="chat") as client:
        stream = client.stream(req(prompt=None, messages=[Message(role="user", content="Hello")]))
        assert [c.text for c in stream] == ["Hi", " you"]
    assert fake_egp.requests[0].path == "/v4/chat-completions"
    assert stream.usage.completion == 2


def test_done_comments_blank_data_and_unknown_events_are_skipped(fake_egp):
    fake_egp.reply(chunks=["x", "y"]).comments().send_done()
    with make_client(fake_egp) as client:
        stream = client.stream(req())
        assert [c.text for c in stream] == ["x", "y"]
    assert stream.finish_reason == "stop"


def test_events_split_across_tcp_writes(fake_egp):
    fake_egp.reply(chunks=["héllo", " wörld", " ✓"]).split_writes(3)
    with make_client(fake_egp) as client:
        stream = client.stream(req())
        assert [c.text for c in stream] == ["héllo", " wörld", " ✓"]
    assert stream.usage.completion == 3


def test_no_usage_counts_chunks_for_tokens_per_second(fake_egp):
    fake_egp.reply(chunks=["a", "b", "c"]).no_usage()
    with make_client(fake_egp) as client:
        stream = client.stream(req())
        list(stream)
    assert stream.usage is None
    m = stream.metrics
    assert m.chunks == 3
    assert m.tokens_per_second == pytest.approx(3 / (m.total_time - m.time_to_first_token))


def test_time_to_first_token_includes_the_wait(fake_egp):
    fake_egp.delay_first_byte(0.2)
    with make_client(fake_egp) as client:
        stream = client.stream(req())
        list(stream)
    assert stream.metrics.time_to_first_token >= 0.2


def test_malformed_json_is_a_protocol_error_naming_the_line(fake_egp):
    fake_egp.reply(chunks=["good", " more"]).malformed(after=1, line='{"completion": {"text": "broken' + "x" * 300)
    with make_client(fake_egp) as client:
        stream = client.stream(req())
        got = []
        with pytest.raises(errors.ProtocolError) as info:
            for c in stream:
                got.append(c.text)
    assert got == ["good"]
    assert '{"completion": {"text": "broken' in info.value.detail
    assert "x" * 200 not in info.value.detail  # truncated
    assert stream.completion.text == "good"


def test_error_event_becomes_an_error_with_the_servers_words(fake_egp):
    fake_egp.reply(chunks=["part", "ial"]).error_event(after=1, detail="CUDA out of memory")
    with make_client(fake_egp) as client:
        stream = client.stream(req())
        with pytest.raises(errors.ServerError) as info:
            list(stream)
    assert "CUDA out of memory" in info.value.user_message
    assert stream.text == "part"
    assert len(fake_egp.requests) == 1


def test_error_event_before_any_text_is_not_retried(fake_egp):
    fake_egp.error_event(after=0, detail="Context too long")
    with make_client(fake_egp) as client, pytest.raises(errors.ServerError):
        list(client.stream(req()))
    assert len(fake_egp.requests) == 1


def test_dropped_connection_mid_stream_is_an_error_keeping_the_text(fake_egp):
    fake_egp.reply(chunks=["one", " two", " three"]).drop_after(2)
    with make_client(fake_egp) as client:
        stream = client.stream(req())
        with pytest.raises(errors.ProtocolError) as info:
            list(stream)
    assert "cut" in info.value.user_message
    assert stream.text == "one two"
    assert stream.finish_reason is None


@pytest.mark.parametrize(("status", "cls"), [(401, errors.AuthenticationError), (404, errors.NotFoundError),
                                             (422, errors.InvalidRequestError)])
def test_status_is_checked_before_reading_events(fake_egp, status, cls):
    fake_egp.fail(status)
    with make_client(fake_egp) as client, pytest.raises(cls) as info:
        list(client.stream(req()))
    assert info.value.status == status
    assert len(fake_egp.requests) == 1


def test_rate_limited_stream_is_retried_with_retry_after(fake_egp):
    fake_egp.fail(429, retry_after=0, times=1)
    seen = []
    with make_client(fake_egp, on_retry=lambda e, d: seen.append((type(e), d))) as client:
        assert client.stream(req()).completion.text == ""  # not started yet
        stream = client.stream(req())
        assert "".join(c.text for c in stream) == "Hello world"
    assert seen == [(errors.RateLimitError, 0.0)]


def test_server_error_then_success(fake_egp):
    fake_egp.fail(500, times=1)
    with make_client(fake_egp) as client:
        assert "".join(c.text for c in client.stream(req())) == "Hello world"
    assert len(fake_egp.requests) == 2


@pytest.mark.parametrize("where", ["before the status line", "after the headers"])
def test_a_slow_first_token_is_not_sent_again(fake_egp, where):
    """A generation whose first token takes longer than the read timeout is given up, not sent
    again: it used to cost three answers (three minutes, three bills)."""
    if where == "before the status line":
        fake_egp.delay_first_byte(1.0)
    else:
        fake_egp.delay_first_token(1.0)
    seen = []
    with make_client(fake_egp, read_timeout=0.2, on_retry=lambda e, d: seen.append(e)) as client:
        with pytest.raises(errors.TimeoutError) as info:
            list(client.stream(req()))
    assert len(fake_egp.requests) == 1 and seen == []
    assert "not asked again" in info.value.user_message


def test_stop_ends_a_retry_wait_at_once(fake_egp):
    fake_egp.fail(429, retry_after=50, times=1)
    waiting = threading.Event()
    with make_client(fake_egp, on_retry=lambda e, d: waiting.set()) as client:
        stream = client.stream(req())
        worker = threading.Thread(target=lambda: list(stream), daemon=True)
        worker.start()
        assert waiting.wait(30)
        stream.close()
        worker.join(20)  # patience only: the server asked for 50 s
        assert not worker.is_alive()
    assert len(fake_egp.requests) == 1 and stream.text == ""


def test_nothing_is_retried_once_text_was_yielded(fake_egp):
    fake_egp.reply(chunks=["shown", " never"]).stall_after(1)
    seen = []
    with make_client(fake_egp, read_timeout=0.2, on_retry=lambda e, d: seen.append(e)) as client:
        stream = client.stream(req())
        got = []
        with pytest.raises(errors.TimeoutError):
            for c in stream:
                got.append(c.text)
    assert got == ["shown"] and seen == []
    assert len(fake_egp.requests) == 1


def test_breaking_out_of_the_loop_closes_the_connection(fake_egp):
    fake_egp.reply(chunks=["a", "b", "c"]).stall_after(1)
    with make_client(fake_egp) as client:
        stream = client.stream(req())
        for _ in stream:
            break
        assert stream.closed
        assert fake_egp.wait_disconnect(5)
    assert stream.text == "a" and stream.finish_reason is None


def test_leaving_the_with_block_closes_the_connection(fake_egp):
    fake_egp.reply(text="many words " * 50, pace=20)
    with make_client(fake_egp) as client:
        with client.stream(req()) as stream:
            it = iter(stream)
            next(it)
        assert stream.closed
        assert fake_egp.wait_disconnect(5)
        assert fake_egp.streams_finished == 0


def test_close_from_another_thread_unblocks_the_reader(fake_egp):
    fake_egp.reply(chunks=["first", " second"]).stall_after(1)
    with make_client(fake_egp) as client:
        stream = client.stream(req())
        first = threading.Event()
        outcome: dict[str, object] = {}

        def read() -> None:
            try:
                for c in stream:
                    outcome.setdefault("chunks", []).append(c.text)
                    first.set()
                outcome["ended"] = "cleanly"
            except BaseException as exc:  # noqa: BLE001 - the test reports it
                outcome["ended"] = exc

        reader = threading.Thread(target=read)
        reader.start()
        assert first.wait(5)
        stream.close()
        reader.join(5)
        assert not reader.is_alive()
    assert outcome == {"chunks": ["first"], "ended": "cleanly"}
    assert fake_egp.wait_disconnect(5)
    assert stream.closed and stream.completion.text == "first"


def test_close_during_retry_wait_stops_at_once(fake_egp):
    fake_egp.fail(503, retry_after=30, times=1)
    with make_client(fake_egp, on_retry=lambda e, d: stream.close()) as client:
        stream = client.stream(req())
        assert list(stream) == []
    assert len(fake_egp.requests) == 1


def test_close_before_iterating_sends_nothing(fake_egp):
    with make_client(fake_egp) as client:
        stream = client.stream(req())
        stream.close()
        assert list(stream) == []
        stream.close()
    assert fake_egp.requests == []


def test_finished_streams_reuse_the_connection(fake_egp):
    with make_client(fake_egp) as client:
        for _ in range(3):
            assert "".join(c.text for c in client.stream(req())) == "Hello world"
        client.complete(req())
    assert fake_egp.connections == 1
    assert fake_egp.disconnects == 0


def test_a_stream_after_a_cancelled_one_works(fake_egp):
    fake_egp.reply(chunks=["a", "b"]).stall_after(1)
    with make_client(fake_egp) as client:
        for _ in client.stream(req()):
            break
        fake_egp.reset().reply(chunks=["x", "y"])
        assert "".join(c.text for c in client.stream(req())) == "xy"


def test_iterating_twice_does_not_send_twice(fake_egp):
    with make_client(fake_egp) as client:
        stream = client.stream(req())
        assert len(list(stream)) == 2
        assert list(stream) == []
    assert len(fake_egp.requests) == 1


def test_key_not_in_stream_errors(fake_egp):
    fake_egp.reply(chunks=["a"]).malformed(after=0)
    with make_client(fake_egp) as client, pytest.raises(errors.ProtocolError) as info:
        list(client.stream(req()))
    assert KEY not in info.value.detail and KEY not in str(info.value)


def test_close_while_waiting_for_the_status_line_unblocks_the_reader(fake_egp):
    fake_egp.delay_first_byte(10)
    with make_client(fake_egp) as client:
        stream = client.stream(req())
        outcome: dict[str, object] = {}

        def read() -> None:
            try:
                outcome["chunks"] = list(stream)
            except BaseException as exc:  # noqa: BLE001 - the test reports it
                outcome["error"] = exc

        reader = threading.Thread(target=read)
        reader.start()
        for _ in range(500):
            if fake_egp.requests:
                break
            threading.Event().wait(0.01)
        assert fake_egp.requests
        stream.close()
        reader.join(5)
        assert not reader.is_alive()
    assert outcome == {"chunks": []}
    assert len(fake_egp.requests) == 1


def test_close_delimited_stream_is_read_as_it_arrives(fake_egp):
    fake_egp.reply(chunks=["no", " chunks", " here"]).close_delimited()
    with make_client(fake_egp) as client:
        stream = client.stream(req())
        assert [c.text for c in stream] == ["no", " chunks", " here"]
    assert stream.usage.completion == 3 and stream.finish_reason == "stop"


def test_close_delimited_stream_yields_before_more_bytes_come_and_break_disconnects(fake_egp):
    fake_egp.reply(chunks=["first", " second"]).close_delimited().stall_after(1)
    with make_client(fake_egp, read_timeout=5) as client:
        for chunk in client.stream(req()):
            assert chunk.text == "first"
            break
        assert fake_egp.wait_disconnect(5)
