"""Generation: an answer streamed in a background thread that saves itself, against the fake server."""

from __future__ import annotations

import json
import logging
import threading

import pytest
import sqlalchemy as sa

from egp_core.client import EGPClient
from egp_core.generation import Generation, Registry
from egp_core.store import open_store
from egp_core.types import CompletionRequest, ModelParameters


@pytest.fixture
def store(tmp_path):
    return open_store(f"sqlite:///{tmp_path}/history.db")


def answer_slot(store) -> tuple[str, str]:
    conv = store.create_conversation("me", "t")
    store.add_message(conv, "user", "Hello")
    return conv, store.add_message(conv, "assistant", "", status="streaming", model="fake-model")


def run(fake, store, **kw) -> tuple[Generation, str]:
    _, mid = answer_slot(store)
    client = EGPClient(fake.base_url, "key", retry_initial_delay=0.01, **kw)
    request = CompletionRequest(model="fake-model", prompt="Hello", model_parameters=ModelParameters(max_tokens=50))
    gen = Registry().start(Generation(client, request, sink=store, message_id=mid, save_every=0.05))
    return gen, mid


def test_a_finished_answer_is_saved_with_usage_metrics_and_finish_reason(fake_egp, store):
    fake_egp.reply(text="One two three four.", usage={"prompt": 3, "completion": 5, "total": 8})
    gen, mid = run(fake_egp, store)
    assert gen.wait(10)
    saved = store.get_message(mid)
    assert (saved.status, saved.text, saved.finish_reason) == ("complete", "One two three four.", "stop")
    assert saved.usage == {"prompt": 3, "completion": 5, "total": 8}
    assert saved.metrics["time_to_first_token"] is not None and saved.metrics["chunks"] >= 1


def test_the_growing_answer_is_saved_while_it_streams(fake_egp, store):
    fake_egp.reply(text=" ".join(f"w{i}" for i in range(60)), pace=60)  # one second
    gen, mid = run(fake_egp, store)
    seen = set()
    while not gen.done:
        seen.add(store.get_message(mid).text)
        gen.wait(0.05)
    partial = {t for t in seen if t and not t.endswith("w59")}
    assert len(partial) >= 3, "the partial answer was not saved as it grew"
    assert store.get_message(mid).status == "complete"


def test_cancel_closes_the_stream_and_saves_the_partial_answer_as_stopped(fake_egp, store):
    fake_egp.reply(text="alpha beta gamma delta").stall_after(2)
    gen, mid = run(fake_egp, store)
    while not gen.text and not gen.wait(0.02):
        pass
    gen.cancel()
    assert gen.wait(2), "cancel did not end the generation"
    assert fake_egp.wait_disconnect(2), "the server did not see the client leave"
    saved = store.get_message(mid)
    assert saved.status == "stopped" and saved.text and "alpha" in saved.text
    assert saved.finish_reason == "stopped"
    # The server never counted: the tokens are estimated (the pieces that arrived), and say so.
    assert saved.usage == {"prompt": 2, "completion": saved.metrics["chunks"], "total": 2 + saved.metrics["chunks"],
                           "estimated": True}
    assert saved.metrics["chunks"] == 2


def test_a_dropped_connection_keeps_the_partial_answer_and_the_error(fake_egp, store):
    fake_egp.reply(text="first second third fourth fifth").drop_after(2)
    gen, mid = run(fake_egp, store)
    assert gen.wait(10)
    saved = store.get_message(mid)
    assert saved.status == "error" and saved.text  # the words received are kept
    error = json.loads(saved.error)
    assert error["kind"] == "ProtocolError" and error["message"]


def test_an_error_before_any_text_is_saved_with_its_kind(fake_egp, store):
    fake_egp.fail(status=401)
    gen, mid = run(fake_egp, store)
    assert gen.wait(10)
    saved = store.get_message(mid)
    assert saved.status == "error" and saved.text == ""
    assert json.loads(saved.error)["kind"] == "AuthenticationError"


def test_a_rate_limit_wait_is_announced_before_the_retry(fake_egp, store):
    fake_egp.fail(status=429, retry_after=1)
    fake_egp.reply(text="Finally.")
    _, mid = answer_slot(store)
    request = CompletionRequest(model="fake-model", prompt="Hello")
    gen = Generation(None, request, sink=store, message_id=mid)
    gen.client = EGPClient(fake_egp.base_url, "key", on_retry=gen.note_retry)
    notices = []
    gen.start()
    while not gen.wait(0.02):
        if gen.retry_notice:
            notices.append(gen.retry_notice)
    assert any("Trying again in 1 s" in n for n in notices), notices
    assert store.get_message(mid).text == "Finally."


def test_a_live_answer_keeps_saving_while_no_text_arrives(fake_egp, store):
    fake_egp.delay_first_byte(1.0).reply(text="Late but here.")
    gen, mid = run(fake_egp, store)
    first = store.get_message(mid).updated_at
    stamps = set()
    while not gen.done:
        stamps.add(store.get_message(mid).updated_at)
        gen.wait(0.05)
    assert len({s for s in stamps if s > first}) >= 3, "no heartbeat while waiting for the first byte"
    assert store.get_message(mid).text == "Late but here."


class RecordingSink:
    """The store, with every save recorded: which thread wrote, and how many characters of text."""

    def __init__(self, store, fail: bool = False) -> None:
        self.store, self.fail = store, fail
        self.calls: list[tuple[str, dict]] = []

    def update_message(self, message_id, **fields):
        self.calls.append((threading.current_thread().name, fields))
        if self.fail and fields.get("status") == "streaming":
            raise sa.exc.OperationalError("UPDATE messages", {}, Exception("database is locked"))
        return self.store.update_message(message_id, **fields)


def start_recorded(fake, store, sink) -> tuple[Generation, str]:
    _, mid = answer_slot(store)
    client = EGPClient(fake.base_url, "key")
    request = CompletionRequest(model="fake-model", prompt="Hello")
    return Registry().start(Generation(client, request, sink=sink, message_id=mid, save_every=0.02)), mid


def test_interim_saves_come_from_the_heartbeat_and_send_only_what_is_new(fake_egp, store):
    text = " ".join(f"word{i}" for i in range(150))
    fake_egp.reply(text=text, pace=300)  # half a second: many heartbeats
    sink = RecordingSink(store)
    gen, mid = start_recorded(fake_egp, store, sink)
    assert gen.wait(30)
    interim = [(thread, fields) for thread, fields in sink.calls if fields.get("status") == "streaming"]
    assert len(interim) >= 3
    assert all(thread.startswith("heartbeat-") for thread, _ in interim), {t for t, _ in interim}
    written = sum(len(f.get("text") or "") + len(f.get("append_text") or "") for _, f in interim)
    assert written <= len(text), "interim saves rewrote the whole answer each time"
    assert store.get_message(mid).text == text and store.get_message(mid).status == "complete"


def test_a_failing_save_is_logged_and_the_answer_still_ends_saved(fake_egp, store, caplog):
    fake_egp.reply(text="one two three four five six", pace=30)
    sink = RecordingSink(store, fail=True)
    with caplog.at_level(logging.WARNING, logger="egp_core.generation"):
        gen, mid = start_recorded(fake_egp, store, sink)
        assert gen.wait(30)
    assert any("Could not save the answer" in r.getMessage() and "database is locked" in r.getMessage()
               for r in caplog.records)
    assert store.get_message(mid).text == "one two three four five six"


def test_the_registry_caps_live_answers_with_a_plain_message(fake_egp, store):
    fake_egp.reply(text="alpha beta gamma").stall_after(1)
    registry = Registry(max_live=2)
    client = EGPClient(fake_egp.base_url, "key")
    request = CompletionRequest(model="fake-model", prompt="Hello")
    gens = []
    for _ in range(3):
        _, mid = answer_slot(store)
        gens.append(registry.start(Generation(client, request, sink=store, message_id=mid)))
    refused = gens[2]
    assert refused.done and refused.status == "error"
    saved = store.get_message(refused.message_id)
    assert saved.status == "error" and "busy" in json.loads(saved.error)["message"]
    assert [g.done for g in gens[:2]] == [False, False] and len(registry.running()) == 2
    gens[0].cancel()
    assert gens[0].wait(10)
    _, mid = answer_slot(store)  # a place is free again
    again = registry.start(Generation(client, request, sink=store, message_id=mid))
    assert not again.done or again.status != "error"
    for g in (gens[1], again):
        g.cancel()
        assert g.wait(10)
