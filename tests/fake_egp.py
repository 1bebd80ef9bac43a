"""A small fake EGP server for tests, benchmarks and browser tests.

It speaks the wire protocol of ../shared/PROTOCOL.md on 127.0.0.1 (port 0 by
default, so tests never collide) and does what a test script tells it:

    fake = FakeEGP().start()
    fake.reply(text="Hello world", pace=2000)     # one token per event, 2000/s
    fake.fail(status=429, retry_after=0, times=1) # first request gets a 429
    fake.drop_after(2)                            # cut the stream after 2 events
    fake.v5()                                     # also serve SGP v5 (OpenAI shapes), off by default
    ...
    fake.requests[-1].body, fake.disconnects, fake.wait_disconnect(5)

As a process (for browser tests: point EGP_ENDPOINT_URL at it):

    python -m tests.fake_egp --port 8765 --pace 50 --text "Hello from the fake"

and script it over HTTP: POST /_fake/script with a JSON object whose keys are
method names of FakeEGP and values their keyword arguments, applied in order,
e.g. {"reset": {}, "fail": {"status": 500, "times": 1}}. GET /_fake/state gives
the counters and GET /_fake/requests the recorded requests.

Streams use HTTP/1.1 chunked transfer encoding, one HTTP chunk per event (as
uvicorn does), unless `split_writes` cuts them into smaller pieces.
"""

from __future__ import annotations

import argparse
import json
import re
import select
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

COMPLETION_PATHS = ("/v2/completions", "/v4/completions", "/egp/v1/completions")
CHAT_PATH = "/v4/chat-completions"
V5_CHAT_PATH, V5_COMPLETIONS_PATH = "/v5/chat/completions", "/v5/completions"
V5_PATHS = (V5_CHAT_PATH, V5_COMPLETIONS_PATH)
GENERATION_PATHS = (*COMPLETION_PATHS, CHAT_PATH, *V5_PATHS)
MODEL_PATHS = {"v5": "/v5/chat/completions/models", "v4": "/v4/models", "v3": "/v3/models"}
DEFAULT_MODELS = ["fake-model", "fake-model-large"]
_SCRIPT_METHODS = {
    "reset", "reply", "fail", "drop_after", "stall_after", "malformed", "error_event", "send_done",
    "comments", "split_writes", "delay_first_byte", "delay_first_token", "models", "require_key", "no_usage",
    "close_delimited",
    "v5",
}


def tokenize(text: str) -> list[str]:
    """Split text into word-ish tokens that join back to the text."""
    return re.findall(r"\s*\S+|\s+", text) or [text]


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: Any

    def as_dict(self) -> dict[str, Any]:
        return {"method": self.method, "path": self.path, "query": self.query,
                "headers": self.headers, "body": self.body}


@dataclass
class _Failure:
    status: int
    retry_after: float | str | None = None
    retry_after_ms: int | None = None
    body: Any = None
    paths: tuple[str, ...] = GENERATION_PATHS
    echo: str | None = None


@dataclass
class _Script:
    text: str = "Hello world"
    chunks: list[str] | None = None
    usage: dict[str, int] | None = None
    send_usage: bool = True
    finish_reason: str | None = "stop"
    pace: float | None = None
    failures: deque[_Failure] = field(default_factory=deque)
    drop_after: int | None = None
    stall_after: int | None = None
    malformed_after: int | None = None
    malformed_line: str = '{"completion": {"text": "oops"'
    error_after: int | None = None
    error_detail: str = "The model crashed."
    done: bool = False
    comments: bool = False
    split: int | None = None
    first_byte_delay: float = 0.0
    first_byte_delay_times: int | None = None
    first_token_delay: float = 0.0
    models: list[Any] = field(default_factory=lambda: list(DEFAULT_MODELS))
    model_versions: tuple[str, ...] = ("v5", "v4", "v3")
    api_key: str | None = None
    chunked: bool = True
    raw_writes: list[bytes] | None = None
    raw_pause: float = 0.0
    v5: bool = False


class FakeEGP:
    """The fake server plus its script. All script methods return self."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._lock = threading.Lock()
        self._script = _Script()
        self.requests: list[RecordedRequest] = []
        self.connections = 0
        self.disconnects = 0
        self.disconnected = threading.Event()
        self.streams_finished = 0
        self.in_flight = 0
        self.max_in_flight = 0  # the most generation requests waiting for their answer at once
        self._httpd = _Server((host, port), _Handler)
        self._httpd.fake = self
        self._thread: threading.Thread | None = None

    # ---- lifecycle -------------------------------------------------------
    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        host = self._httpd.server_address[0]
        return f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{self.port}"

    def start(self) -> FakeEGP:
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.01},
                                        name="fake-egp", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> FakeEGP:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- script ----------------------------------------------------------
    def reset(self) -> FakeEGP:
        """Forget the script and the records."""
        with self._lock:
            self._script = _Script()
            self.requests.clear()
            self.connections = 0
            self.disconnects = 0
            self.streams_finished = 0
            self.max_in_flight = self.in_flight
            self.disconnected.clear()
        return self

    def reply(self, text: str | None = None, chunks: list[str] | None = None, usage: dict[str, int] | None = None,
              finish_reason: str | None = "stop", pace: float | None = None) -> FakeEGP:
        """How to answer: `chunks` are the streamed deltas (default: `text` split into word tokens);
        `usage` the final token_usage (default: counted); `pace` tokens per second (default: flat out)."""
        s = self._script
        if chunks is not None:
            s.chunks, s.text = list(chunks), "".join(chunks)
        elif text is not None:
            s.chunks, s.text = None, text
        s.usage, s.finish_reason, s.pace = usage, finish_reason, pace
        return self

    def no_usage(self) -> FakeEGP:
        """Send no token_usage at all (not even on the last event)."""
        self._script.send_usage = False
        return self

    def fail(self, status: int = 500, *, retry_after: float | str | None = None, retry_after_ms: int | None = None,
             body: Any = None, times: int = 1, paths: list[str] | tuple[str, ...] | None = None,
             echo: str | None = None) -> FakeEGP:
        """Answer the next `times` requests (to `paths`, default the generation paths) with `status`.

        `echo`: as a careless proxy does, put the request's headers (keys included) in the error
        body: "json" ({"detail": ..., "request": {"headers": {...}}}) or "text" (one header a line)."""
        f = _Failure(status, retry_after, retry_after_ms, body, tuple(paths) if paths else GENERATION_PATHS, echo)
        self._script.failures.extend([f] * times)
        return self

    def drop_after(self, n_events: int) -> FakeEGP:
        """Cut the connection abruptly after `n_events` events (no end of stream)."""
        self._script.drop_after = n_events
        return self

    def stall_after(self, n_events: int) -> FakeEGP:
        """Send `n_events` events, then keep the stream open and silent until the client leaves."""
        self._script.stall_after = n_events
        return self

    def malformed(self, after: int = 1, line: str | None = None) -> FakeEGP:
        """Send a `data:` line of invalid JSON after `after` events."""
        self._script.malformed_after = after
        if line is not None:
            self._script.malformed_line = line
        return self

    def error_event(self, after: int = 1, detail: str = "The model crashed.") -> FakeEGP:
        """Send `event: error` with {"detail": ...} after `after` events, then end the stream."""
        self._script.error_after, self._script.error_detail = after, detail
        return self

    def send_done(self) -> FakeEGP:
        """End the stream with `data: [DONE]` (which EGP itself never sends)."""
        self._script.done = True
        return self

    def comments(self) -> FakeEGP:
        """Put comments, blank `data:` lines and unknown events between the events."""
        self._script.comments = True
        return self

    def split_writes(self, size: int = 7) -> FakeEGP:
        """Send the stream in pieces of `size` bytes, each its own TCP write, cutting across events."""
        self._script.split = size
        return self

    def raw_body(self, writes: list[bytes], chunked: bool = True, pause: float = 0.0005) -> FakeEGP:
        """Answer a streamed generation with exactly these body bytes, each piece its own TCP write
        (`pause` s apart): with `chunked`, the pieces already hold the HTTP chunk framing; without,
        the body ends when the server closes the connection. For property tests of the client."""
        self._script.raw_writes, self._script.chunked, self._script.raw_pause = list(writes), chunked, pause
        return self

    def close_delimited(self) -> FakeEGP:
        """Stream without chunked encoding: the body ends when the server closes the connection."""
        self._script.chunked = False
        return self

    def delay_first_byte(self, seconds: float, times: int | None = None) -> FakeEGP:
        """Wait before answering (before the status line); for the next `times` requests, or all."""
        self._script.first_byte_delay = seconds
        self._script.first_byte_delay_times = times
        return self

    def delay_first_token(self, seconds: float) -> FakeEGP:
        """Send the status line and headers at once, then wait `seconds` before the first event
        (a model slow to start answering; the client's read timeout runs while it waits)."""
        self._script.first_token_delay = seconds
        return self

    def models(self, names: list[Any] | None = None, versions: list[str] | tuple[str, ...] = ("v5", "v4", "v3")
               ) -> FakeEGP:
        """The model list (names or dicts) and which listing endpoints exist ("v5", "v4", "v3")."""
        if names is not None:
            self._script.models = list(names)
        self._script.model_versions = tuple(versions)
        return self

    def v5(self, enabled: bool = True) -> FakeEGP:
        """Serve SGP v5 too: /v5/chat/completions and /v5/completions in OpenAI's shapes (n choices,
        fake token probabilities when asked, usage on the last chunk, no [DONE] unless `send_done`),
        and GET /v5/models. A request with a seed gets " (seed N)" after the text, so the same seed
        gives the same answer and another seed another. Off by default, so a workspace looks like an
        older one."""
        self._script.v5 = enabled
        return self

    def require_key(self, key: str | None) -> FakeEGP:
        """Answer 401 unless x-api-key equals `key`."""
        self._script.api_key = key
        return self

    def apply(self, calls: dict[str, dict[str, Any]]) -> FakeEGP:
        """Apply {method: kwargs} in order (the HTTP control endpoint uses this)."""
        for name, kwargs in calls.items():
            if name not in _SCRIPT_METHODS:
                raise ValueError(f"unknown script method {name!r}")
            getattr(self, name)(**(kwargs or {}))
        return self

    # ---- observation -----------------------------------------------------
    def wait_disconnect(self, timeout: float = 5.0) -> bool:
        return self.disconnected.wait(timeout)

    def state(self) -> dict[str, Any]:
        return {"requests": len(self.requests), "connections": self.connections,
                "disconnects": self.disconnects, "streams_finished": self.streams_finished,
                "max_in_flight": self.max_in_flight}

    # ---- used by the handler ---------------------------------------------
    def _record(self, req: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(req)

    def _take_failure(self, path: str) -> _Failure | None:
        with self._lock:
            f = self._script.failures
            if f and path in f[0].paths:
                return f.popleft()
        return None

    def _take_delay(self) -> float:
        with self._lock:
            s = self._script
            if not s.first_byte_delay:
                return 0.0
            if s.first_byte_delay_times is not None:
                if s.first_byte_delay_times <= 0:
                    return 0.0
                s.first_byte_delay_times -= 1
            return s.first_byte_delay

    def _on_disconnect(self) -> None:
        with self._lock:
            self.disconnects += 1
        self.disconnected.set()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    fake: FakeEGP


class _ClientGone(Exception):
    pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as uvicorn does
        with self.fake._lock:
            self.fake.connections += 1

    @property
    def fake(self) -> FakeEGP:
        return self.server.fake

    # ---- dispatch --------------------------------------------------------
    def do_GET(self) -> None:  # noqa: N802
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        path = url.path
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        if path.startswith("/_fake/"):
            return self._control(method, path, body)
        self.fake._record(RecordedRequest(method, path, url.query, dict(self.headers.items()), body))
        generation = method == "POST" and path in GENERATION_PATHS
        if generation:  # counted until its answer starts: a finished request is never counted late
            with self.fake._lock:
                self.fake.in_flight += 1
                self.fake.max_in_flight = max(self.fake.max_in_flight, self.fake.in_flight)
        try:
            delay = self.fake._take_delay()
            if delay:
                time.sleep(delay)
        finally:
            if generation:
                with self.fake._lock:
                    self.fake.in_flight -= 1
        script = self.fake._script
        if script.api_key is not None and self.headers.get("x-api-key") != script.api_key:
            return self._json(401, {"detail": "Invalid API key"})
        failure = self.fake._take_failure(path)
        if failure:
            return self._fail(failure)
        if path in V5_PATHS or path == "/v5/models":
            if not script.v5:
                return self._json(404, {"detail": "Not Found"})
            if method == "GET" and path == "/v5/models":
                return self._json(200, {"items": [{"id": f"id-{m}", "name": m, "model_type": "chat_completion",
                                                   "model_vendor": "openai", "status": "ready"}
                                                  for m in script.models if isinstance(m, str)],
                                        "has_more": False, "object": "list"})
        if method == "POST" and path in GENERATION_PATHS:
            if not isinstance(body, dict) or not body.get("model"):
                return self._json(422, {"detail": [{"loc": ["body", "model"], "msg": "Field required",
                                                    "type": "missing"}]})
            if path in V5_PATHS:
                return self._v5(script, path == V5_CHAT_PATH, body)
            chat = path == CHAT_PATH
            if body.get("stream") and script.raw_writes is not None:
                return self._raw_stream(script)
            if body.get("stream"):
                return self._stream(script, chat, body)
            return self._json(200, self._event(script.text, script.finish_reason, self._usage(script, body),
                                               chat))
        if method == "GET" and path == "/user-info":
            return self._json(200, {"id": "user-1", "first_name": "Fake", "last_name": "User",
                                    "email": "fake@example.com",
                                    "access_profiles": [{"role": "admin",
                                                         "account": {"id": "acct-1", "name": "Fake"}}]})
        if method == "GET":
            for version, model_path in MODEL_PATHS.items():
                if path == model_path and version in script.model_versions:
                    return self._json(200, self._model_listing(version, script.models))
        return self._json(404, {"detail": "Not Found"})

    def _control(self, method: str, path: str, body: Any) -> None:
        try:
            if method == "POST" and path == "/_fake/script":
                self.fake.apply(body or {})
                return self._json(200, self.fake.state())
            if method == "POST" and path == "/_fake/reset":
                self.fake.reset()
                return self._json(200, self.fake.state())
            if method == "GET" and path == "/_fake/state":
                return self._json(200, self.fake.state())
            if method == "GET" and path == "/_fake/requests":
                return self._json(200, [r.as_dict() for r in self.fake.requests])
        except (TypeError, ValueError) as exc:
            return self._json(400, {"detail": str(exc)})
        return self._json(404, {"detail": "Not Found"})

    # ---- answers ---------------------------------------------------------
    @staticmethod
    def _model_listing(version: str, models: list[Any]) -> Any:
        if version == "v3":
            return [m if isinstance(m, dict) else {"name": m} for m in models]
        if version == "v4":
            return {"items": [m if isinstance(m, dict) else {"id": f"id-{m}", "name": m} for m in models],
                    "current_page": 1}
        return {"items": [m if isinstance(m, dict) else {"model_name": m, "model_type": "chat_completion",
                                                         "model_vendor": "fake", "model_availability": "available"}
                          for m in models], "object": "list"}

    @staticmethod
    def _usage(script: _Script, body: dict[str, Any]) -> dict[str, int] | None:
        if not script.send_usage:
            return None
        if script.usage is not None:
            return script.usage
        prompt = body.get("prompt") or " ".join(m.get("content", "") for m in body.get("messages") or [])
        p = len(tokenize(prompt)) if prompt else 0
        c = len(script.chunks) if script.chunks is not None else len(tokenize(script.text))
        return {"prompt": p, "completion": c, "total": p + c}

    @staticmethod
    def _event(text: str, finish_reason: str | None, usage: dict[str, int] | None, chat: bool) -> dict[str, Any]:
        if chat:
            return {"chat_completion": {"message": {"role": "assistant", "content": text},
                                        "finish_reason": finish_reason}, "token_usage": usage}
        return {"completion": {"text": text, "finish_reason": finish_reason}, "token_usage": usage}

    def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _fail(self, f: _Failure) -> None:
        headers = {}
        if f.retry_after is not None:
            headers["Retry-After"] = str(f.retry_after)
        if f.retry_after_ms is not None:
            headers["retry-after-ms"] = str(f.retry_after_ms)
        body = f.body
        if f.echo == "json":
            body = {"detail": f"Proxy error {f.status}", "request": {"path": self.path, "headers": dict(self.headers)}}
        elif f.echo == "text":
            body = f"Proxy error {f.status} for {self.command} {self.path}\n" + "".join(
                f"{k}: {v}\n" for k, v in self.headers.items())
        if body is None:
            body = {"detail": [{"loc": ["body", "model_parameters", "temperature"],
                                "msg": "Input should be less than or equal to 1", "type": "less_than_equal"}]
                    } if f.status == 422 else {"detail": f"Fake failure {f.status}"}
        self._json(f.status, body, headers)

    # ---- SGP v5: OpenAI's shapes --------------------------------------------
    @staticmethod
    def _v5_usage(script: _Script, body: dict[str, Any], n: int) -> dict[str, int] | None:
        usage = _Handler._usage(script, body)
        if usage is None:
            return None
        completion = usage["completion"] * n
        return {"prompt_tokens": usage["prompt"], "completion_tokens": completion,
                "total_tokens": usage["prompt"] + completion}

    @staticmethod
    def _v5_logprobs(pieces: list[str], chat: bool, top: int) -> dict[str, Any]:
        """Fake probabilities: each token 60 %, its alternative " maybe" 30 %."""
        lp, alt = -0.5108, -1.204
        if chat:
            return {"content": [{"token": p, "logprob": lp, "bytes": list(p.encode()),
                                 "top_logprobs": [{"token": p, "logprob": lp}, {"token": " maybe", "logprob": alt}][:top]}
                                for p in pieces]}
        return {"tokens": pieces, "token_logprobs": [lp] * len(pieces),
                "top_logprobs": [{p: lp, " maybe": alt} for p in pieces], "text_offset": [0] * len(pieces)}

    @staticmethod
    def _v5_choice(i: int, text: str, finish: str | None, chat: bool, stream: bool,
                   logprobs: dict[str, Any] | None) -> dict[str, Any]:
        choice: dict[str, Any] = {"index": i, "finish_reason": finish, "logprobs": logprobs}
        if not chat:
            choice["text"] = text
        elif stream:
            choice["delta"] = {"content": text}
        else:
            choice["message"] = {"role": "assistant", "content": text}
        return choice

    def _v5(self, script: _Script, chat: bool, body: dict[str, Any]) -> None:
        n = int(body.get("n") or 1)
        pieces = list(script.chunks) if script.chunks is not None else tokenize(script.text)
        if body.get("seed") is not None:  # like a real model: the seed decides the text
            pieces.append(f" (seed {body['seed']})")
        first = "".join(pieces)
        texts = [first] + [f"{first} ({i + 1})" for i in range(1, n)]
        want = body.get("logprobs")
        top = int(body.get("top_logprobs") or 0) if chat else int(want or 0)
        head = {"id": "fake-v5", "created": 0, "model": body["model"],
                "object": ("chat.completion.chunk" if chat else "text_completion") if body.get("stream")
                else ("chat.completion" if chat else "text_completion")}
        usage = self._v5_usage(script, body, n)
        if not body.get("stream"):
            choices = [self._v5_choice(i, t, script.finish_reason, chat, False,
                                       self._v5_logprobs(pieces if i == 0 else tokenize(t), chat, top)
                                       if want else None) for i, t in enumerate(texts)]
            return self._json(200, {**head, "choices": choices, "usage": usage})
        events = [{**head, "choices": [self._v5_choice(0, p, None, chat, True,
                                                       self._v5_logprobs([p], chat, top) if want else None)]}
                  for p in pieces]
        for i, text in enumerate(texts[1:], start=1):
            events.append({**head, "choices": [self._v5_choice(i, text, script.finish_reason, chat, True, None)]})
        last = {**head, "choices": [self._v5_choice(0, "", script.finish_reason, chat, True, None)]}
        if usage is not None:
            last["usage"] = usage
        events.append(last)
        self._send_events(script, events)

    def _stream(self, script: _Script, chat: bool, body: dict[str, Any]) -> None:
        pieces = script.chunks if script.chunks is not None else tokenize(script.text)
        events = [self._event(p, None, None, chat) for p in pieces]
        events.append(self._event("", script.finish_reason, self._usage(script, body), chat))
        self._send_events(script, events)

    def _send_events(self, script: _Script, events: list[dict[str, Any]]) -> None:
        self.close_connection = False
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        if script.chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        writer = _ChunkWriter(self.connection, script.split, script.chunked)
        try:
            self.wfile.flush()
            if script.first_token_delay and self._client_gone(script.first_token_delay):
                raise _ClientGone
            t0 = time.monotonic()
            for i, event in enumerate(events):
                if script.pace and i:
                    wait = t0 + i / script.pace - time.monotonic()
                    if wait > 0 and self._client_gone(wait):
                        raise _ClientGone
                if i == script.malformed_after:
                    writer.send(f"data: {script.malformed_line}\n\n".encode())
                if i == script.error_after:
                    writer.send(b"event: error\ndata: " + json.dumps({"detail": script.error_detail}).encode()
                                + b"\n\n")
                    break
                if i == script.drop_after:
                    writer.flush()
                    self._drop()
                    return
                if i == script.stall_after:
                    writer.flush()
                    self._stall()
                    return
                if script.comments:
                    writer.send(b": keep-alive\n\ndata:\n\nevent: ping\ndata: {\"ping\": 1}\n\n")
                writer.send(b"data: " + json.dumps(event).encode() + b"\n\n", flush=i == 0 or bool(script.pace))
            if script.done:
                writer.send(b"data: [DONE]\n\n")
            writer.flush()
            writer.end()
            with self.fake._lock:
                self.fake.streams_finished += 1
        except (_ClientGone, BrokenPipeError, ConnectionResetError):
            self.close_connection = True
            self.fake._on_disconnect()

    def _raw_stream(self, script: _Script) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        if script.chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Connection", "close")
        self.close_connection = not script.chunked
        self.end_headers()
        try:
            for piece in script.raw_writes or []:
                self.connection.sendall(piece)
                if script.raw_pause:
                    time.sleep(script.raw_pause)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
            self.fake._on_disconnect()

    def _client_gone(self, timeout: float = 0.0) -> bool:
        readable, _, _ = select.select([self.connection], [], [], timeout)
        if not readable:
            return False
        try:
            return self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def _drop(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _stall(self) -> None:
        """Stay silent until the client goes away (or 30 s)."""
        self.close_connection = True
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self._client_gone(0.01):
                self.fake._on_disconnect()
                return


class _ChunkWriter:
    """Writes HTTP chunks: one per event, or pieces of `split` bytes each sent on its own."""

    def __init__(self, sock: socket.socket, split: int | None, chunked: bool = True) -> None:
        self.sock = sock
        self.split = split
        self.chunked = chunked
        self.buf: list[bytes] = []
        self.size = 0

    def send(self, data: bytes, flush: bool = True) -> None:
        if self.split:
            for i in range(0, len(data), self.split):
                self.sock.sendall(self._frame(data[i:i + self.split]))
                time.sleep(0.002)
            return
        self.buf.append(self._frame(data))
        self.size += len(data)
        if flush or self.size > 65536:
            self.flush()

    def _frame(self, data: bytes) -> bytes:
        return b"%x\r\n%s\r\n" % (len(data), data) if self.chunked else data

    def flush(self) -> None:
        if self.buf:
            self.sock.sendall(b"".join(self.buf))
            self.buf.clear()
            self.size = 0

    def end(self) -> None:
        if self.chunked:
            self.sock.sendall(b"0\r\n\r\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the fake EGP server.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--pace", type=float, default=None, help="tokens per second (default: flat out)")
    parser.add_argument("--text", default=None, help="the answer to stream")
    parser.add_argument("--models", default=None, help="comma-separated model names")
    args = parser.parse_args(argv)
    fake = FakeEGP(args.host, args.port)
    fake.reply(text=args.text, pace=args.pace)
    if args.models:
        fake.models(args.models.split(","))
    print(f"fake EGP listening on {fake.base_url}", flush=True)
    try:
        fake._httpd.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
