"""Up to `slots` generations at a time, the rest wait FIFO; a disconnect frees a slot; a full queue is 503.

"Long" requests ask for 4000 tokens of a story the model keeps writing at
temperature 0 (well over 30 s of work), so an engine that was not freed by a
disconnect stays busy far past the 5 s the tests wait for it. To make requests
wait, the tests first fill every slot with long streams (`fill_slots`).
"""

from __future__ import annotations

import http.client
import json
import threading
from urllib.parse import urlsplit

import pytest
import requests

from egp_core.local import DEFAULT_MODEL_ID

pytestmark = pytest.mark.model

MODEL = DEFAULT_MODEL_ID
LONG = {
    "model": MODEL,
    "prompt": "Write a very long story about a dragon and a knight, with many chapters.",
    "model_parameters": {"temperature": 0, "max_tokens": 4000},
}
SHORT = {"model": MODEL, "prompt": "Hi", "model_parameters": {"temperature": 0, "max_tokens": 2}}
FREED_WITHIN = 5.0


class Stream:
    """An open SSE response. Keeps one line iterator: dropping one closes the connection."""

    def __init__(self, response: requests.Response) -> None:
        self.response = response
        self._lines = response.iter_lines()

    def next_event(self) -> dict:
        for line in self._lines:
            if line.startswith(b"data: "):
                return json.loads(line[6:])
        raise AssertionError("the stream ended before any event")

    def close(self) -> None:
        self.response.close()


def open_stream(base_url: str, body: dict, path: str = "/v2/completions") -> Stream:
    r = requests.post(base_url + path, json={**body, "stream": True}, stream=True, timeout=60)
    assert r.status_code == 200, r.text
    return Stream(r)


def first_delta(stream: Stream) -> dict:
    return stream.next_event()


def send_without_reading(
    base_url: str, body: dict, path: str = "/v2/completions"
) -> http.client.HTTPConnection:
    """Sends a request and returns the open connection; closing it is the disconnect."""
    url = urlsplit(base_url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    conn.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
    return conn


def fill_slots(server) -> list[Stream]:
    """Long streams in every slot of the model, each already generating."""
    slots = server.health()["models"][0]["slots"]
    streams = []
    for _ in range(slots):
        streams.append(open_stream(server.base_url, LONG))
        first_delta(streams[-1])
    assert server.health()["active"] == slots
    return streams


def close_all(streams: list[Stream]) -> None:
    for stream in streams:
        stream.close()


@pytest.fixture
def server(local_server):
    local_server.wait_idle()
    yield local_server
    local_server.wait_idle()


@pytest.mark.parametrize("path", ["/v2/completions", "/v4/chat-completions"])
def test_closing_a_stream_while_generating_frees_the_engine(server, path):
    body = (
        LONG
        if path == "/v2/completions"
        else {**LONG, "messages": [{"role": "user", "content": LONG["prompt"]}]}
    )
    r = open_stream(server.base_url, body, path)
    first_delta(r)
    assert server.health()["busy"] is True
    r.close()
    server.wait_until(lambda h: not h["busy"], FREED_WITHIN)
    assert requests.post(server.base_url + "/v2/completions", json=SHORT, timeout=60).status_code == 200


def test_closing_a_plain_request_while_generating_frees_the_engine(server):
    conn = send_without_reading(server.base_url, LONG)
    server.wait_until(lambda h: h["busy"])
    conn.close()
    server.wait_until(lambda h: not h["busy"], FREED_WITHIN)


def test_health_and_listings_answer_while_generating(server):
    r = open_stream(server.base_url, LONG)
    first_delta(r)
    try:
        assert requests.get(server.base_url + "/v4/models", timeout=5).status_code == 200
        assert requests.get(server.base_url + "/health", timeout=5).json()["busy"] is True
    finally:
        r.close()


def test_disconnect_while_queued_leaves_the_queue_and_spares_the_running_jobs(server):
    running = fill_slots(server)
    try:
        queued_stream = open_stream(server.base_url, LONG)
        server.wait_until(lambda h: h["queue_length"] == 1)
        queued_stream.close()
        health = server.wait_until(lambda h: h["queue_length"] == 0, FREED_WITHIN)
        assert health["active"] == len(running)

        queued_plain = send_without_reading(server.base_url, LONG)
        server.wait_until(lambda h: h["queue_length"] == 1)
        queued_plain.close()
        health = server.wait_until(lambda h: h["queue_length"] == 0, FREED_WITHIN)
        assert health["active"] == len(running)
        # the running jobs still stream
        for stream in running:
            assert "completion" in first_delta(stream)
    finally:
        close_all(running)
    server.wait_until(lambda h: not h["busy"], FREED_WITHIN)


def test_queued_requests_run_in_arrival_order(server):
    running = fill_slots(server)
    finished: list[int] = []
    lock = threading.Lock()

    def ask(i: int) -> None:
        r = requests.post(server.base_url + "/v2/completions", json=SHORT, timeout=120)
        assert r.status_code == 200
        with lock:
            finished.append(i)

    threads = []
    try:
        for i in range(1, 5):
            t = threading.Thread(target=ask, args=(i,))
            t.start()
            threads.append(t)
            server.wait_until(lambda h, n=i: h["queue_length"] == n)
        running[0].close()  # one slot frees: the waiting requests go through it one by one
        for t in threads:
            t.join(60)
    finally:
        close_all(running)
    assert finished == [1, 2, 3, 4]


def test_full_queue_answers_503_with_retry_after(server):
    running = fill_slots(server)
    waiting: list[Stream] = []
    try:
        for n in range(1, 9):
            waiting.append(open_stream(server.base_url, SHORT))
            server.wait_until(lambda h, n=n: h["queue_length"] == n)
        r = requests.post(server.base_url + "/v2/completions", json=SHORT, timeout=10)
        assert r.status_code == 503
        assert r.headers["Retry-After"] == "1"
        assert "busy" in r.json()["detail"]
    finally:
        close_all(running)
    # the queued ones are then served, in order
    for w in waiting:
        assert first_delta(w)["completion"]["text"] is not None
        w.close()


def test_closing_a_stream_while_the_prompt_is_evaluated_frees_the_engine(server):
    """A ~6,000-token prompt takes many seconds to evaluate; the disconnect cuts it short."""
    before = requests.post(server.base_url + "/v2/completions", json=SHORT, timeout=60).json()
    body = {**SHORT, "prompt": "The river runs past the old mill and the market square. " * 500}
    r = open_stream(server.base_url, body)
    server.wait_until(lambda h: h["busy"])
    r.close()
    server.wait_until(lambda h: not h["busy"], FREED_WITHIN)
    # the engine is sound afterwards: same greedy answer as before
    after = requests.post(server.base_url + "/v2/completions", json=SHORT, timeout=60).json()
    assert after == before
