"""An adapter for OpenAI-compatible servers (vLLM, Ollama, llama.cpp's server, OpenAI).

`OpenAIClient` has the interface of `egp_core.client.EGPClient`: `complete`,
`stream`, `list_models`, `close`. It speaks `/v1/models` and
`/v1/chat/completions` (SSE with `stream_options.include_usage`), and turns
what comes back into our own values (`Chunk`, `Completion`, `TokenUsage`) and
errors (`egp_core.errors`), so pages treat every kind of connection alike.
"""

from __future__ import annotations

import json
import random
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from sseclient import SSEClient

from egp_core import errors
from egp_core.types import Chunk, Completion, CompletionRequest, Message, Metrics, TokenUsage

RETRY_STATUSES = frozenset({408, 409, 429}) | frozenset(range(500, 600))
BACKOFF_BASE = 0.5
BACKOFF_CAP = 8.0

OnRetry = Callable[[errors.EGPError, float], None]


# ---- URLs, bodies, secrets -----------------------------------------------------------------


def api_root(base_url: str) -> str:
    """The server root: "http://host:8000/v1/" -> "http://host:8000" (paths add /v1 themselves)."""
    url = base_url.strip().rstrip("/")
    if url.endswith("/v1"):
        url = url[: -len("/v1")]
    return url


def safe_url(url: str) -> str:
    """The URL without user:password@ (for messages and logs)."""
    parts = urlsplit(url)
    if parts.username or parts.password:
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    return url


_KEYISH = re.compile(r"\b(sk|key|api)[-_][A-Za-z0-9*_\-.]{4,}", re.IGNORECASE)


def redact(text: str, api_key: str | None) -> str:
    """`text` with the key, and anything that looks like a key, replaced by "[key]"."""
    if api_key:
        text = text.replace(api_key, "[key]")
    text = re.sub(r"(Incorrect API key provided: )\S+", r"\1[key].", text)
    return _KEYISH.sub("[key]", text)


def chat_body(request: CompletionRequest, stream: bool, *, include_usage: bool = True) -> dict[str, Any]:
    """The OpenAI /v1/chat/completions body for one of our requests."""
    messages = request.messages or [Message(role="user", content=request.prompt or "")]
    body: dict[str, Any] = {"model": request.model, "messages": [m.model_dump() for m in messages], "stream": stream}
    p = request.parameters
    for ours, theirs in (("temperature", "temperature"), ("max_tokens", "max_tokens"), ("top_p", "top_p"),
                         ("frequency_penalty", "frequency_penalty"), ("presence_penalty", "presence_penalty")):
        value = getattr(p, ours)
        if value is not None:
            body[theirs] = value
    if p.stop_sequences:
        body["stop"] = list(p.stop_sequences)
    if stream and include_usage:
        body["stream_options"] = {"include_usage": True}
    return body


def usage_from(data: Any) -> TokenUsage | None:
    """OpenAI's usage object -> TokenUsage (None when absent)."""
    if not isinstance(data, dict):
        return None
    prompt, completion = data.get("prompt_tokens"), data.get("completion_tokens")
    total = data.get("total_tokens")
    if total is None:
        if prompt is None and completion is None:
            return None
        total = (prompt or 0) + (completion or 0)
    return TokenUsage(prompt=prompt, completion=completion, total=total)


# ---- errors ----------------------------------------------------------------------------------


def _server_message(body: str) -> str | None:
    """The human sentence in an OpenAI / FastAPI / Ollama error body."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    for _ in range(3):
        if isinstance(data, dict):
            inner = data.get("error", data.get("detail", data.get("message")))
            if inner is None:
                return None
            data = inner
        else:
            break
    if isinstance(data, list):
        return "; ".join(str(d.get("msg", d)) if isinstance(d, dict) else str(d) for d in data)
    return str(data) if data is not None else None


def _retry_after(headers: Any) -> float | None:
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            return None
    return None


def error_from_response(status: int, body: str, headers: Any, url: str, api_key: str | None) -> errors.EGPError:
    """The egp_core error for an HTTP failure, with the secret-free detail attached."""
    body = redact(body or "", api_key)
    url = safe_url(url)
    message = _server_message(body)
    detail = redact(message, api_key) if message else None
    kw: dict[str, Any] = {"status": status, "url": url, "body": body, "detail": detail}
    if status in (401, 403):
        return errors.AuthenticationError(**kw)
    if status == 404:
        return errors.NotFoundError(**kw)
    if status in (400, 413, 422):
        return errors.InvalidRequestError(messages=[detail] if detail else [], **kw)
    if status == 429:
        return errors.RateLimitError(retry_after=_retry_after(headers), **kw)
    if status == 408:
        return errors.TimeoutError(**kw)
    if status >= 500 or status == 409:
        return errors.ServerError(retry_after=_retry_after(headers), **kw)
    return errors.EGPError(**kw)


def error_from_exception(exc: Exception, url: str, api_key: str | None) -> errors.EGPError:
    """The egp_core error for a requests exception (no HTTP answer)."""
    url = safe_url(url)
    text = redact(f"{type(exc).__name__}: {exc}", api_key)
    if isinstance(exc, (requests.ConnectTimeout, requests.ReadTimeout, requests.Timeout, socket.timeout)):
        return errors.TimeoutError(url=url, detail=text)
    if isinstance(exc, requests.ConnectionError):
        return errors.ConnectionFailed(url=url, detail=text)
    if isinstance(exc, (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
                        requests.exceptions.InvalidSchema)):
        error = errors.ConnectionFailed("The server address is not a valid URL. Check it in Settings.",
                                        url=url, detail=text)
        error.retryable = False
        return error
    return errors.ProtocolError(url=url, detail=text)


def backoff(attempt: int, error: errors.EGPError) -> float:
    """Seconds to wait before retry `attempt` (0-based): Retry-After when given, else 0.5 s * 2^n (max 8 s) + jitter."""
    told = getattr(error, "retry_after", None)
    if told is not None:
        return min(float(told), 60.0)
    return min(BACKOFF_BASE * 2**attempt, BACKOFF_CAP) * (1 + random.random() * 0.25)


# ---- the stream ------------------------------------------------------------------------------


class OpenAIStream:
    """One streamed answer. Iterate for `Chunk`s; afterwards read `text`, `usage`,
    `finish_reason`, `metrics`, `completion`. `close()` (from any thread) ends it
    and closes the connection, so the server stops generating."""

    def __init__(self, client: OpenAIClient, request: CompletionRequest) -> None:
        self._client = client
        self.request = request
        self.model: str | None = request.model
        self.text = ""
        self.finish_reason: str | None = None
        self.usage: TokenUsage | None = None
        self.metrics = Metrics()
        self.completion: Completion | None = None
        self._closed = threading.Event()
        self._response: requests.Response | None = None
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self._first_at: float | None = None
        self._iter: Iterator[Chunk] | None = None

    # -- context manager and iteration --------------------------------------------------------
    def __enter__(self) -> OpenAIStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[Chunk]:
        if self._iter is None:
            self._iter = self._chunks()
        return self._iter

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def close(self) -> None:
        """Stop reading and close the connection now; safe from another thread and to repeat."""
        self._closed.set()
        with self._lock:
            response, self._response = self._response, None
        if response is not None:
            _shutdown(response)
        self._finish()

    # -- internals -------------------------------------------------------------------------------
    def _chunks(self) -> Iterator[Chunk]:
        client = self._client
        try:
            response = client._send("POST", "/v1/chat/completions", stream=True, request=self.request,
                                    cancelled=self._closed)
            if response is None:  # closed while connecting
                return
            with self._lock:
                if self._closed.is_set():
                    _shutdown(response)
                    return
                self._response = response
            yield from self._read(response)
        except errors.EGPError:
            if self._closed.is_set():
                return
            raise
        except (requests.RequestException, OSError, ValueError, AttributeError) as exc:
            if self._closed.is_set():  # the socket was shut under us by close()
                return
            raise error_from_exception(exc, client._url("/v1/chat/completions"), client.api_key) from None
        finally:
            with self._lock:
                response, self._response = self._response, None
            if response is not None:
                response.close()
            self._finish()

    def _read(self, response: requests.Response) -> Iterator[Chunk]:
        url = self._client._url("/v1/chat/completions")
        for event in SSEClient(response.iter_content(chunk_size=None)).events():
            if self._closed.is_set():
                return
            data = event.data.strip()
            if not data or data == "[DONE]":
                if data == "[DONE]":
                    return
                continue
            try:
                payload = json.loads(data)
            except ValueError:
                raise errors.ProtocolError(url=url, detail="An event was not JSON.",
                                           body=redact(data, self._client.api_key)) from None
            if event.event == "error" or (isinstance(payload, dict) and "error" in payload):
                message = _server_message(data) or "The server reported an error."
                raise errors.ServerError(url=url, detail=redact(message, self._client.api_key),
                                         body=redact(data, self._client.api_key))
            if not isinstance(payload, dict) or event.event not in ("message", "", None):
                continue
            self.model = payload.get("model") or self.model
            usage = usage_from(payload.get("usage"))
            if usage is not None:
                self.usage = usage
            for choice in payload.get("choices") or []:
                if choice.get("index", 0) != 0:
                    continue
                delta = (choice.get("delta") or {}).get("content")
                if choice.get("finish_reason"):
                    self.finish_reason = choice["finish_reason"]
                if delta:
                    now = time.monotonic()
                    if self._first_at is None:
                        self._first_at = now
                    self.text += delta
                    self.metrics.chunks += 1
                    yield Chunk(delta, now)
        if self.finish_reason is None and not self._closed.is_set():
            raise errors.ProtocolError("The answer was cut off before the end. Try again.", url=url,
                                       detail="The stream ended without a finish reason.")

    def _finish(self) -> None:
        if self.completion is not None:
            return
        now = time.monotonic()
        m = self.metrics
        m.total_time = now - self._started
        if self._first_at is not None:
            m.time_to_first_token = self._first_at - self._started
            generating = now - self._first_at
            produced = self.usage.completion if self.usage and self.usage.completion else m.chunks
            if generating > 0 and produced:
                m.tokens_per_second = produced / generating
        self.completion = Completion(text=self.text, finish_reason=self.finish_reason, usage=self.usage,
                                     model=self.model, metrics=m)


def _shutdown(response: requests.Response) -> None:
    """Close a streaming response so that a read blocked in another thread returns at once."""
    raw = response.raw
    sock = None
    conn = getattr(raw, "_connection", None) or getattr(raw, "connection", None)
    if conn is not None:
        sock = getattr(conn, "sock", None)
    if sock is None:
        fp = getattr(getattr(raw, "_fp", None), "fp", None)
        sock = getattr(getattr(fp, "raw", None), "_sock", None)
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
    try:
        response.close()
    except Exception:  # already closed from the reading side
        pass


# ---- the client ------------------------------------------------------------------------------


class OpenAIClient:
    """Talks to an OpenAI-compatible server. Same interface as `egp_core.client.EGPClient`."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        connect_timeout: float = 5,
        read_timeout: float = 60,
        max_retries: int = 2,
        on_retry: OnRetry | None = None,
    ) -> None:
        self.base_url = api_root(base_url)
        self.api_key = api_key or None
        self.timeout = (connect_timeout, read_timeout)
        self.max_retries = max_retries
        self.on_retry = on_retry
        self._session = requests.Session()
        self._session.headers["Accept"] = "application/json"
        if self.api_key:
            self._session.headers["Authorization"] = f"Bearer {self.api_key}"

    def __repr__(self) -> str:
        return f"OpenAIClient({safe_url(self.base_url)!r})"

    def __enter__(self) -> OpenAIClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._session.close()

    def _url(self, path: str) -> str:
        return self.base_url + path

    # -- public API -------------------------------------------------------------------------------
    def list_models(self) -> list[str]:
        """The model ids the server offers (GET /v1/models)."""
        response = self._send("GET", "/v1/models")
        assert response is not None
        try:
            data = response.json()
        except ValueError:
            raise errors.ProtocolError(url=safe_url(self._url("/v1/models")), detail="The model list was not JSON.",
                                       body=redact(response.text, self.api_key)) from None
        items = data.get("data", data.get("models", [])) if isinstance(data, dict) else data
        names = []
        for item in items or []:
            name = (item.get("id") or item.get("name") or item.get("model")) if isinstance(item, dict) else item
            if name and str(name) not in names:
                names.append(str(name))
        return names

    def complete(self, request: CompletionRequest) -> Completion:
        """One whole answer (no streaming)."""
        started = time.monotonic()
        response = self._send("POST", "/v1/chat/completions", request=request, stream=False)
        assert response is not None
        url = safe_url(self._url("/v1/chat/completions"))
        try:
            data = response.json()
            choice = (data.get("choices") or [{}])[0]
            text = (choice.get("message") or {}).get("content") or ""
        except (ValueError, AttributeError, IndexError):
            raise errors.ProtocolError(url=url, detail="The answer was not an OpenAI chat completion.",
                                       body=redact(response.text, self.api_key)) from None
        elapsed = time.monotonic() - started
        usage = usage_from(data.get("usage"))
        metrics = Metrics(time_to_first_token=elapsed, total_time=elapsed, chunks=1 if text else 0)
        if usage and usage.completion and elapsed > 0:
            metrics.tokens_per_second = usage.completion / elapsed
        return Completion(text=text, finish_reason=choice.get("finish_reason"), usage=usage,
                          model=data.get("model") or request.model, metrics=metrics)

    def stream(self, request: CompletionRequest) -> OpenAIStream:
        """A stream of the answer. It connects when first iterated; close() stops it from any thread."""
        return OpenAIStream(self, request)

    # -- HTTP with retries ------------------------------------------------------------------------
    def _send(
        self,
        method: str,
        path: str,
        *,
        request: CompletionRequest | None = None,
        stream: bool = False,
        cancelled: threading.Event | None = None,
    ) -> requests.Response | None:
        """Send with the retry policy; a 2xx response, or raise the mapped error. None if cancelled."""
        url = self._url(path)
        include_usage = True
        attempt = 0
        while True:
            if cancelled is not None and cancelled.is_set():
                return None
            body = chat_body(request, stream, include_usage=include_usage) if request is not None else None
            try:
                response = self._session.request(method, url, json=body, stream=stream, timeout=self.timeout)
            except requests.RequestException as exc:
                error = error_from_exception(exc, url, self.api_key)
            else:
                if 200 <= response.status_code < 300:
                    return response
                text = response.text
                response.close()
                if (stream and include_usage and response.status_code in (400, 422)
                        and "stream_options" in text):
                    include_usage = False  # an older server: ask again without usage in the stream
                    continue
                error = error_from_response(response.status_code, text, response.headers, url, self.api_key)
            retryable = error.retryable and (error.status is None or error.status in RETRY_STATUSES)
            if not retryable or attempt >= self.max_retries:
                raise error
            delay = backoff(attempt, error)
            attempt += 1
            if self.on_retry is not None:
                self.on_retry(error, delay)
            if cancelled is not None:
                if cancelled.wait(delay):
                    return None
            else:
                time.sleep(delay)
