"""A small fake OpenAI-compatible server (vLLM / Ollama / llama.cpp style) for tests.

Serves GET /v1/models and POST /v1/chat/completions on 127.0.0.1 (port 0 by
default), streaming real OpenAI-format SSE chunks: a role chunk, content
deltas, a chunk with `finish_reason`, then, when the request asked for
`stream_options.include_usage`, a chunk with `choices: []` and `usage`, then
`data: [DONE]`. Errors use OpenAI's body `{"error": {"message", "type", "code"}}`.

    fake = FakeOpenAI().start()
    fake.reply("Hello world", pace=200)   # word tokens, 200 per second
    fake.require_key("sk-...")            # 401 unless "Authorization: Bearer sk-..."
    fake.fail(429, retry_after=0)         # the next request gets a 429
    fake.requests[-1]["body"], fake.disconnects

`llama_cpp_server(dir)` runs a real OpenAI-compatible server (llama-cpp-python's)
with the bundled model, for tests that need one.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

DEFAULT_MODELS = ["fake-gpt", "fake-llama-3-8b"]


def tokenize(text: str) -> list[str]:
    """Word-ish tokens that join back to the text."""
    return re.findall(r"\s*\S+|\s+", text) or [text]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    fake: FakeOpenAI


class FakeOpenAI:
    """The server and its script. Script methods return self."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []
        self.disconnects = 0
        self.disconnected = threading.Event()
        self.models_list = list(DEFAULT_MODELS)
        self.text = "Hello from the fake OpenAI server."
        self.chunks: list[str] | None = None
        self.finish_reason = "stop"
        self.pace: float | None = None
        self.api_key: str | None = None
        self.failures: list[tuple[int, dict[str, str], dict[str, Any]]] = []
        self.error_after: int | None = None
        self.stall_after: int | None = None
        self.reject_stream_options = False
        self._httpd = _Server((host, port), _Handler)
        self._httpd.fake = self

    # ---- lifecycle ------------------------------------------------------
    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeOpenAI:
        threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                         name="fake-openai", daemon=True).start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- script ---------------------------------------------------------
    def reply(self, text: str | None = None, *, chunks: list[str] | None = None, finish_reason: str = "stop",
              pace: float | None = None) -> FakeOpenAI:
        """The answer: `chunks` streamed as given, else `text` in word tokens; `pace` tokens per second."""
        self.chunks = list(chunks) if chunks is not None else None
        self.text = "".join(chunks) if chunks is not None else (text if text is not None else self.text)
        self.finish_reason, self.pace = finish_reason, pace
        return self

    def models(self, names: list[str]) -> FakeOpenAI:
        self.models_list = list(names)
        return self

    def require_key(self, key: str | None) -> FakeOpenAI:
        self.api_key = key
        return self

    def fail(self, status: int, *, times: int = 1, retry_after: float | None = None,
             message: str | None = None, code: str | None = None) -> FakeOpenAI:
        """Answer the next `times` chat requests with `status` and an OpenAI error body."""
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        body = _error_body(message or f"Fake failure {status}", "server_error" if status >= 500 else
                           "requests" if status == 429 else "invalid_request_error", code)
        self.failures.extend([(status, headers, body)] * times)
        return self

    def error_mid_stream(self, after: int = 1) -> FakeOpenAI:
        """After `after` content chunks, send `data: {"error": {...}}` and end the stream."""
        self.error_after = after
        return self

    def stall(self, after: int = 1) -> FakeOpenAI:
        """After `after` content chunks, keep the stream open and silent until the client leaves."""
        self.stall_after = after
        return self

    def no_stream_options(self) -> FakeOpenAI:
        """Behave like an older server: 400 when the body has `stream_options`."""
        self.reject_stream_options = True
        return self

    def wait_disconnect(self, timeout: float = 5.0) -> bool:
        return self.disconnected.wait(timeout)

    def note_disconnect(self) -> None:
        with self.lock:
            self.disconnects += 1
        self.disconnected.set()


def _error_body(message: str, type_: str, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


class _ClientGone(Exception):
    pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    @property
    def fake(self) -> FakeOpenAI:
        return self.server.fake

    def do_GET(self) -> None:  # noqa: N802
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        path = self.path.split("?", 1)[0]
        with self.fake.lock:
            self.fake.requests.append({"method": method, "path": path, "headers": dict(self.headers), "body": body})
        fake = self.fake
        if fake.api_key is not None and self.headers.get("Authorization") != f"Bearer {fake.api_key}":
            given = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
            shown = f"{given[:3]}***{given[-4:]}" if len(given) > 8 else "***"
            msg = (f"Incorrect API key provided: {shown}. You can find your API key at "
                   "https://platform.openai.com/account/api-keys.")
            return self._json(401, _error_body(msg, "invalid_request_error", "invalid_api_key"))
        if method == "GET" and path == "/v1/models":
            return self._json(200, {"object": "list", "data": [
                {"id": m, "object": "model", "created": 1700000000, "owned_by": "fake"} for m in fake.models_list]})
        if method == "POST" and path == "/v1/chat/completions":
            with fake.lock:
                failure = fake.failures.pop(0) if fake.failures else None
            if failure:
                status, headers, err = failure
                return self._json(status, err, headers)
            if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
                return self._json(400, _error_body("'messages' is a required property", "invalid_request_error"))
            if body.get("model") not in fake.models_list:
                return self._json(404, _error_body(f"The model `{body.get('model')}` does not exist.",
                                                   "invalid_request_error", "model_not_found"))
            if fake.reject_stream_options and "stream_options" in body:
                return self._json(400, _error_body("Unrecognized request argument supplied: stream_options",
                                                   "invalid_request_error"))
            if body.get("stream"):
                return self._stream(body)
            return self._json(200, self._completion(body))
        return self._json(404, _error_body(f"Unknown path {path}", "invalid_request_error"))

    # ---- answers ----------------------------------------------------------
    def _usage(self, body: dict[str, Any]) -> dict[str, int]:
        prompt = sum(len(tokenize(str(m.get("content", "")))) for m in body["messages"])
        completion = len(self._pieces())
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    def _pieces(self) -> list[str]:
        fake = self.fake
        return fake.chunks if fake.chunks is not None else tokenize(fake.text)

    def _completion(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()),
                "model": body["model"], "system_fingerprint": None,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": self.fake.text},
                             "logprobs": None, "finish_reason": self.fake.finish_reason}],
                "usage": self._usage(body)}

    def _chunk(self, body: dict[str, Any], delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
        return {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": int(time.time()),
                "model": body["model"], "system_fingerprint": None,
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}

    def _stream(self, body: dict[str, Any]) -> None:
        fake = self.fake
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        try:
            self._send(self._chunk(body, {"role": "assistant", "content": ""}, None))
            t0 = time.monotonic()
            for i, piece in enumerate(self._pieces()):
                if fake.pace and i:
                    wait = t0 + i / fake.pace - time.monotonic()
                    if wait > 0:
                        time.sleep(wait)
                if i == fake.error_after:
                    self._send(_error_body("The engine crashed while generating.", "server_error"))
                    self._end()
                    return
                if i == fake.stall_after:
                    self._wait_for_client_to_leave()
                    return
                self._send(self._chunk(body, {"content": piece}, None))
            self._send(self._chunk(body, {}, fake.finish_reason))
            if include_usage:
                last = self._chunk(body, {}, None)
                last["choices"], last["usage"] = [], self._usage(body)
                self._send(last)
            self._write(b"data: [DONE]\n\n")
            self._end()
        except (_ClientGone, BrokenPipeError, ConnectionResetError):
            self.close_connection = True
            fake.note_disconnect()

    def _send(self, payload: dict[str, Any]) -> None:
        self._write(b"data: " + json.dumps(payload).encode() + b"\n\n")

    def _write(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _end(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _wait_for_client_to_leave(self) -> None:
        self.connection.settimeout(60)
        try:
            while self.connection.recv(1024):
                pass
        except OSError:
            pass
        raise _ClientGone

    def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)


# ---- a real one: llama-cpp-python's own OpenAI-compatible server, with the bundled model ------------

LLAMA_CPP_MODEL = "smollm2"


@contextmanager
def llama_cpp_server(log_dir: Path) -> Iterator[str]:
    """Runs `python -m llama_cpp.server` with the bundled SmolLM2 on a free port; yields its base URL.

    Note: its very first answer after start can differ from the later ones at temperature 0
    (its cache warms up), so send one request before comparing answers."""
    import subprocess
    import sys

    import requests

    from egp_core.local.engine import default_model_path

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = log_dir / "llama-cpp-server.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(default_model_path()), "--model_alias",
             LLAMA_CPP_MODEL, "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "512", "--n_threads", "2"],
            stdout=out, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(base_url + "/v1/models", timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("llama_cpp.server did not start:\n" + log.read_text(errors="replace")[-2000:])
            time.sleep(0.1)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
