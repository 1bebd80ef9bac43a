"""The EGP completions client: plain requests + SSE, retries, cancel.

    client = EGPClient.from_env()                       # or EGPClient(base_url, api_key, account_id)
    done = client.complete(CompletionRequest(model="gpt-4", prompt="Hi"))
    with client.stream(CompletionRequest(model="gpt-4", prompt="Hi")) as stream:
        for chunk in stream:                            # Chunk(text, at)
            print(chunk.text, end="")
    stream.finish_reason, stream.usage, stream.metrics, stream.completion

Errors are the classes of egp_core.errors; each has `user_message` for a
person and `detail` for an engineer. Retries follow egp_core.retry.

Streams: the request is sent when iteration starts. Leaving the loop early
(break, exception), leaving the `with` block or calling `close()` closes the
socket at once, so the server sees the disconnect. `close()` may be called
from another thread: a thread blocked reading the stream then wakes up and its
loop simply ends, without an exception (`.closed` is True, `.finish_reason`
stays None, `.completion` holds what arrived). That holds while the request
waits for the server's status line too: the session's adapter tells the stream
which connection its request uses. (Not while a TCP connection is still being
opened, at most the connect timeout, nor through an HTTP proxy.)

Metrics: time to first token runs from the first attempt (retries included)
to the first text; tokens per second is the completion tokens (from usage, or
the chunk count without it) over the time from the first text to the end.
"""

from __future__ import annotations

import json
import os
import re
import socket
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import requests
import urllib3
import urllib3.connection

from .errors import (
    AuthenticationError,
    ConnectionFailed,
    EGPError,
    InvalidRequestError,
    NotFoundError,
    ProtocolError,
    RateLimitError,
    ServerError,
    TimeoutError,
    scrub,
)
from .retry import RetryPolicy, T, parse_retry_after
from .sse import EventSource, StreamCut, iter_body, response_socket
from .types import Chunk, Completion, CompletionRequest, Metrics, TokenLogprob, TokenUsage

DEFAULT_ENDPOINT = "https://api.egp.scale.com"
MODEL_LIST_PATHS = ("/v5/chat/completions/models", "/v4/models", "/v3/models")
USER_AGENT = "egp-playground/0.1"
_BODY_EXCERPT = 500
_JSON = json.JSONDecoder()


def safe_url(url: str) -> str:
    """The URL without user info, query or fragment (where secrets could hide)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def _server_messages(payload: Any) -> list[str]:
    """The server's own words from a FastAPI-style error body ({"detail": ...}, nested or a list)."""
    if isinstance(payload, dict):
        for key in ("detail", "message", "error"):
            if key in payload:
                return _server_messages(payload[key])
        return []
    if isinstance(payload, list):
        out: list[str] = []
        for item in payload:
            if isinstance(item, dict) and "msg" in item:
                loc = ".".join(str(p) for p in item.get("loc") or [] if p != "body")
                out.append(f"{loc}: {item['msg']}" if loc else str(item["msg"]))
            else:
                out.extend(_server_messages(item))
        return out
    if payload is None:
        return []
    return [str(payload)]


def error_from_status(status: int, body: str, url: str, headers: Any) -> EGPError:
    """The EGPError for an HTTP error answer."""
    try:
        messages = _server_messages(json.loads(body))
    except ValueError:
        messages = []
    kw: dict[str, Any] = {"status": status, "url": url, "body": body[:_BODY_EXCERPT]}
    if status in (401, 403):
        return AuthenticationError(**kw)
    if status == 404:
        return NotFoundError(**kw)
    if status in (400, 422):
        return InvalidRequestError(messages=messages, **kw)
    if status == 408:
        error = TimeoutError(**kw)
        error.retry_after = parse_retry_after(headers)  # type: ignore[attr-defined]
        return error
    if status == 429:
        return RateLimitError(retry_after=parse_retry_after(headers), **kw)
    if status == 409:
        return ServerError("The server was busy with a conflicting request. Try again in a moment.",
                           retry_after=parse_retry_after(headers), **kw)
    if status >= 500:
        return ServerError(retry_after=parse_retry_after(headers), **kw)
    return EGPError(f"The server answered with an unexpected code ({status}).", **kw)


_tracking = threading.local()


def _track(conn: Any) -> None:
    callback = getattr(_tracking, "callback", None)
    if callback is not None:
        callback(conn)


class _Tracked:
    """Mixed into urllib3's connection classes: tells the stream, through its public `request`."""

    def request(self, *args: Any, **kwargs: Any) -> None:
        _track(self)
        super().request(*args, **kwargs)  # type: ignore[misc]


class _TrackingHTTPConnection(_Tracked, urllib3.connection.HTTPConnection):
    pass


class _TrackingHTTPSConnection(_Tracked, urllib3.connection.HTTPSConnection):
    pass


class _TrackingHTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _TrackingHTTPConnection


class _TrackingHTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _TrackingHTTPSConnection


class _TrackingAdapter(requests.adapters.HTTPAdapter):
    """Lets a stream learn which connection its request uses, to cut it before the answer starts.

    Only public extension points: requests' `init_poolmanager`, urllib3's pool classes with their
    `ConnectionCls`, and `HTTPConnection.request`, which urllib3 calls for every request (checked
    by tests/test_library_internals.py)."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _TrackingHTTPPool, "https": _TrackingHTTPSPool}


class EGPClient:
    """Talks to one EGP endpoint. One requests.Session (connection reuse) per client."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        account_id: str | None = None,
        *,
        api: Literal["completions", "chat"] = "completions",
        completions_path: str = "/v2/completions",
        chat_path: str = "/v4/chat-completions",
        connect_timeout: float = 5,
        read_timeout: float = 60,
        max_retries: int = 2,
        fallback_models: list[str] | None = None,
        on_retry: Callable[[EGPError, float], None] | None = None,
        retry_initial_delay: float = 0.5,
    ) -> None:
        if api not in ("completions", "chat"):
            raise ValueError(f"api must be 'completions' or 'chat', not {api!r}")
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key or None
        self.account_id = account_id or None
        self.api = api
        self.completions_path = completions_path
        self.chat_path = chat_path
        self.timeout = (connect_timeout, read_timeout)
        self.retry = RetryPolicy(max_retries=max_retries, initial_delay=retry_initial_delay)
        self.fallback_models = list(fallback_models or [])
        self.on_retry = on_retry
        self.last_list_error: EGPError | None = None
        self._closing = threading.Event()  # set by close(): ends a retry's wait at once
        self.model_paths: tuple[str, ...] = MODEL_LIST_PATHS
        self.session = requests.Session()
        # The environment (proxies, NO_PROXY, a CA bundle) is read once, for this one endpoint, not on
        # every request (requests' trust_env costs about a sixth of a request's CPU); ~/.netrc is
        # not read at all: its password is not for EGP.
        self.session.trust_env = False
        self.session.proxies.update(requests.utils.get_environ_proxies(self.base_url))
        bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        if bundle:
            self.session.verify = bundle
        adapter = _TrackingAdapter()
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers["User-Agent"] = USER_AGENT
        if self._api_key:
            self.session.headers["x-api-key"] = self._api_key
        if self.account_id:
            self.session.headers["x-selected-account-id"] = self.account_id

    @classmethod
    def from_env(cls, **overrides: Any) -> EGPClient:
        """Built from EGP_ENDPOINT_URL, EGP_API_KEY and EGP_ACCOUNT_ID; keyword arguments win."""
        kwargs: dict[str, Any] = {
            "base_url": os.environ.get("EGP_ENDPOINT_URL") or DEFAULT_ENDPOINT,
            "api_key": os.environ.get("EGP_API_KEY") or None,
            "account_id": os.environ.get("EGP_ACCOUNT_ID") or None,
        }
        kwargs.update(overrides)
        return cls(**kwargs)

    def __repr__(self) -> str:
        key = "set" if self._api_key else "none"
        return (f"EGPClient(base_url={safe_url(self.base_url)!r}, api={self.api!r}, "
                f"account_id={self.account_id!r}, api_key=<{key}>)")

    def close(self) -> None:
        """Close the connections; a call waiting to retry gives up at once."""
        self._closing.set()
        self.session.close()

    def __enter__(self) -> EGPClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- public calls ----------------------------------------------------
    @property
    def generation_path(self) -> str:
        return self.chat_path if self.api == "chat" else self.completions_path

    def complete(self, request: CompletionRequest) -> Completion:
        """Send the request and wait for the whole answer."""
        body = self._body(request, stream=False)
        url = self._url(self.generation_path)
        started = time.monotonic()

        def attempt() -> Completion:
            response = self._send("POST", url, body, stream=False)
            try:
                payload = response.json()
            except ValueError:
                raise ProtocolError(status=response.status_code, url=safe_url(url), body=response.text,
                                    detail="The answer is not JSON.") from None
            extras = Extras()
            text, finish, usage = self._extract(payload, url, response.text[:200], extras)
            return Completion(text=text, finish_reason=finish, usage=usage, model=request.model,
                              candidates=extras.candidates(text), logprobs=extras.logprobs or None)

        done = self._retrying(attempt)
        total = time.monotonic() - started
        tokens = done.usage.completion if done.usage and done.usage.completion is not None else None
        done.metrics = Metrics(time_to_first_token=total, total_time=total,
                               tokens_per_second=(tokens / total) if tokens and total > 0 else None,
                               chunks=1 if done.text else 0)
        return done

    def stream(self, request: CompletionRequest) -> CompletionStream:
        """A stream of the answer; the request is sent when iteration starts."""
        return CompletionStream(self, request)

    def list_model_info(self) -> list[dict[str, Any]]:
        """Model descriptions from the first listing endpoint that has some, each with a "name".

        Falls back to `fallback_models` (as {"name": ...}) when none answers. Raises the error
        only when the endpoint cannot be reached or refuses the key and there is no fallback.
        """
        self.last_list_error = None
        for path in self.model_paths:
            url = self._url(path)
            try:
                response = self._retrying(lambda url=url: self._send("GET", url, None, stream=False))
                items = _model_items(response.json())
            except (ConnectionFailed, TimeoutError, AuthenticationError) as error:
                self.last_list_error = error
                if self.fallback_models:
                    break
                raise
            except (EGPError, ValueError) as error:
                if isinstance(error, EGPError):
                    self.last_list_error = error
                continue
            if items:
                return items
        return [{"name": name} for name in self.fallback_models]

    def list_models(self) -> list[str]:
        """Model names the endpoint offers (see list_model_info), or the fallback list."""
        names: list[str] = []
        for item in self.list_model_info():
            if item["name"] not in names:
                names.append(item["name"])
        return names

    def user_info(self) -> dict[str, Any]:
        """GET /user-info: who the key belongs to and its accounts."""
        return self.get_json("/user-info")

    def get_json(self, path: str) -> Any:
        """GET `path` (with this client's headers and retries) and return its JSON."""
        url = self._url(path)
        response = self._retrying(lambda: self._send("GET", url, None, stream=False))
        try:
            return response.json()
        except ValueError:
            raise ProtocolError(status=response.status_code, url=safe_url(url), body=response.text) from None

    # ---- plumbing --------------------------------------------------------
    def _url(self, path: str) -> str:
        return self.base_url + (path if path.startswith("/") else "/" + path)

    def _body(self, request: CompletionRequest, stream: bool) -> dict[str, Any]:
        body = request.chat_body(stream) if self.api == "chat" else request.completions_body(stream)
        if self.account_id and "account_id" not in body:
            body["account_id"] = self.account_id
        return body

    def _retrying(self, attempt: Callable[[], T]) -> T:
        """One call under the retry policy (a retry's wait ends when the client is closed); its
        error leaves scrubbed of this client's key and of anything key-like."""
        try:
            return self.retry.run(attempt, self.on_retry, stop=self._closing)
        except EGPError as error:
            error.scrub(self._api_key)
            raise

    def _redact(self, text: str) -> str:
        """Technical text without the key, user info or query strings."""
        text = scrub(text, self._api_key)
        text = re.sub(r"(\w+://)[^/@\s'\"]*@", r"\1", text)
        return re.sub(r"\?[^\s'\"()]*", "?...", text)

    def _send(self, method: str, url: str, body: dict[str, Any] | None, stream: bool,
              on_connection: Callable[[Any], None] | None = None) -> requests.Response:
        """One HTTP attempt. Returns a 200 response or raises the matching EGPError.

        `on_connection` is called with the urllib3 connection before the request goes out (so a
        stream can be cancelled while it waits for the status line)."""
        headers = {"Accept": "text/event-stream", "Accept-Encoding": "identity"} if stream else {
            "Accept": "application/json"}
        _tracking.callback = on_connection
        try:
            response = self.session.request(method, url, json=body, headers=headers, stream=stream,
                                            timeout=self.timeout)
        except requests.exceptions.ConnectTimeout as exc:
            raise TimeoutError("The server did not accept the connection in time. Check the endpoint URL "
                               "and your network.", url=safe_url(url), detail=self._redact(repr(exc))) from None
        except requests.exceptions.Timeout as exc:
            if method == "GET":  # a read: asking again is free
                raise TimeoutError(url=safe_url(url), detail=self._redact(repr(exc))) from None
            raise _generation_timeout(url, self._redact(repr(exc)), self.timeout[1]) from None
        except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
                requests.exceptions.InvalidSchema) as exc:
            error = ConnectionFailed("The endpoint URL is not valid. Check it in Settings.", url=safe_url(url),
                                     detail=self._redact(repr(exc)))
            error.retryable = False
            raise error from None
        except requests.exceptions.RequestException as exc:
            raise ConnectionFailed(url=safe_url(url), detail=self._redact(repr(exc))) from None
        finally:
            _tracking.callback = None
        if response.status_code != 200:
            try:
                text = response.text
            except requests.exceptions.RequestException:
                text = ""
            finally:
                response.close()
            raise error_from_status(response.status_code, text, safe_url(url), response.headers)
        return response

    def plain_delta(self) -> Callable[[Any], str]:
        """The stream's hot path: a function from one decoded event to its text, raising
        LookupError (or TypeError) for anything but a plain text delta (usage, a finish reason,
        other choices, probabilities), which then goes the careful way through `_extract`."""
        return _egp_chat_delta if self.api == "chat" else _egp_completion_delta

    def _extract(self, payload: Any, url: str, line: str,
                 extras: Extras | None = None) -> tuple[str, str | None, TokenUsage | None]:
        """(text, finish_reason, usage) from one response object or stream event. (Other choices
        and token probabilities, which only the OpenAI shapes carry, go into `extras`.)"""
        try:
            if self.api == "chat":
                part = payload["chat_completion"]
                text = part["message"]["content"] or ""
            else:
                part = payload["completion"]
                text = part["text"] or ""
            finish = part.get("finish_reason")
            usage = _usage(payload.get("token_usage"))
        except (KeyError, TypeError, AttributeError, ValueError):
            messages = _server_messages(payload) if isinstance(payload, dict) else []
            if messages:
                raise ServerError("The server reported a problem: " + "; ".join(messages)[:300],
                                  url=safe_url(url), body=json.dumps(payload)) from None
            raise ProtocolError(url=safe_url(url), detail=f"Unexpected answer shape: {line[:200]!r}") from None
        return text, finish, usage


def _egp_completion_delta(payload: Any) -> str:
    part = payload["completion"]
    if payload["token_usage"] is not None or part["finish_reason"] is not None:
        raise LookupError
    return part["text"]


def _egp_chat_delta(payload: Any) -> str:
    part = payload["chat_completion"]
    if payload["token_usage"] is not None or part["finish_reason"] is not None:
        raise LookupError
    return part["message"]["content"]


class Extras:
    """What an answer carries besides its first choice's text: the other choices' texts (n > 1)
    and the first choice's token probabilities."""

    __slots__ = ("others", "logprobs")

    def __init__(self) -> None:
        self.others: dict[int, list[str]] = {}
        self.logprobs: list[TokenLogprob] = []

    def add_text(self, index: int, text: str) -> None:
        self.others.setdefault(index, []).append(text)

    def candidates(self, first: str) -> list[str] | None:
        """Every choice's text, first one first; None when there was only one."""
        if not self.others:
            return None
        return [first] + ["".join(self.others.get(i, [])) for i in range(1, max(self.others) + 1)]


def _usage(raw: Any) -> TokenUsage | None:
    if not raw:
        return None
    if "total" not in raw or raw["total"] is None:
        raw = {**raw, "total": (raw.get("prompt") or 0) + (raw.get("completion") or 0)}
    return TokenUsage.model_validate(raw)


def _model_items(payload: Any) -> list[dict[str, Any]]:
    """Model descriptions, each with "name", from any of the listing shapes."""
    if isinstance(payload, dict):
        items = next((payload[k] for k in ("items", "data", "models") if isinstance(payload.get(k), list)), [])
    else:
        items = payload
    out = []
    for item in items if isinstance(items, list) else []:
        if isinstance(item, str):
            out.append({"name": item})
        elif isinstance(item, dict):
            name = item.get("model_name") or item.get("name") or item.get("id") or item.get("model")
            if name:
                out.append({**item, "name": name})
    return out


class CompletionStream:
    """One streamed answer. Iterate for Chunks; read text, finish_reason, usage, metrics, completion."""

    def __init__(self, client: EGPClient, request: CompletionRequest) -> None:
        self.client = client
        self.request = request
        self.finish_reason: str | None = None
        self.usage: TokenUsage | None = None
        self.closed = False
        self._parts: list[str] = []
        self._chunks = 0
        self._started: float | None = None
        self._first_at: float | None = None
        self._ended: float | None = None
        self._response: requests.Response | None = None
        self._connection: Any = None  # the urllib3 connection while waiting for the status line
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._iter_ref: weakref.ref | None = None
        self.extras = Extras()

    # ---- values ----------------------------------------------------------
    @property
    def text(self) -> str:
        return "".join(self._parts)

    @property
    def metrics(self) -> Metrics:
        """Timing so far (final once the stream has ended)."""
        if self._started is None:
            return Metrics()
        end = self._ended if self._ended is not None else time.monotonic()
        tokens = self.usage.completion if self.usage and self.usage.completion is not None else self._chunks
        ttft = self._first_at - self._started if self._first_at is not None else None
        span = end - self._first_at if self._first_at is not None and self._chunks > 1 else end - self._started
        tps = tokens / span if tokens and span > 0 else None
        return Metrics(time_to_first_token=ttft, total_time=end - self._started, tokens_per_second=tps,
                       chunks=self._chunks)

    @property
    def completion(self) -> Completion:
        text = self.text
        return Completion(text=text, finish_reason=self.finish_reason, usage=self.usage,
                          model=self.request.model, metrics=self.metrics,
                          candidates=self.extras.candidates(text), logprobs=list(self.extras.logprobs) or None)

    # ---- iteration and closing ---------------------------------------------
    def __iter__(self) -> Iterator[Chunk]:
        live = self._iter_ref() if self._iter_ref is not None else None
        if live is not None:
            return live
        if self._started is not None or self.closed:
            return iter(())
        gen = self._run()
        self._iter_ref = weakref.ref(gen)
        return gen

    def __enter__(self) -> CompletionStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        if not self.closed and self._response is not None:
            self.close()

    def close(self) -> None:
        """Stop now: close the socket (from any thread). Safe to call twice."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
            response, self._response = self._response, None
            connection, self._connection = self._connection, None
        self._wake.set()
        if connection is not None and response is None:
            _shutdown(getattr(connection, "sock", None))
        if self._started is not None and self._ended is None:
            self._ended = time.monotonic()
        if response is not None:
            _abort(response)

    def _run(self) -> Iterator[Chunk]:
        client = self.client
        body = client._body(self.request, stream=True)
        url = client._url(client.generation_path)
        self._started = time.monotonic()
        attempt = 0
        try:
            while not self.closed:
                try:
                    yield from self._attempt(url, body)
                    return
                except EGPError as error:
                    if self.closed:
                        return
                    error.scrub(client._api_key)
                    delay = None if self._chunks else client.retry.delay_for(error, attempt)
                    if delay is None:
                        raise
                    self._drop_response()
                    if client.on_retry is not None:
                        client.on_retry(error, delay)
                    self._wake.wait(delay)
                    attempt += 1
        finally:
            if self._ended is None:
                self._ended = time.monotonic()
            self.close()

    def _attempt(self, url: str, body: dict[str, Any]) -> Iterator[Chunk]:
        client = self.client
        try:
            response = client._send("POST", url, body, stream=True, on_connection=self._on_connection)
        finally:
            with self._lock:
                self._connection = None  # from now on the response (or the pool) owns it
        with self._lock:
            if self.closed:
                _abort(response)
                return
            self._response = response
        if response.headers.get("content-type", "").startswith("application/json"):
            chunk = self._accept(response.text, url)  # a server that ignored "stream": one whole answer
            if chunk is not None:
                yield chunk
            self._finish()
            return
        # The hot loop (see bench/stream_client.py): one raw_decode and a few lookups per plain
        # delta event; anything else (usage, finish_reason, [DONE], bad JSON) goes to _accept.
        raw_decode = _JSON.raw_decode
        plain_delta = client.plain_delta()
        parts, monotonic = self._parts, time.monotonic
        try:
            for name, data in EventSource(iter_body(response)).messages():
                if name != "message":
                    if name == "error":
                        error = ServerError(_event_error_message(data), url=safe_url(url), body=data,
                                            detail="The server reported an error in the middle of the stream.")
                        error.retryable = False
                        raise error
                    continue
                try:
                    payload, end = raw_decode(data)
                    text = plain_delta(payload)
                    if end != len(data):
                        raise LookupError
                except (ValueError, LookupError, TypeError):
                    chunk = self._accept(data, url)
                    if chunk is not None:
                        yield chunk
                    continue
                if text:
                    at = monotonic()
                    if self._first_at is None:
                        self._first_at = at
                    parts.append(text)
                    self._chunks += 1
                    yield Chunk(text, at)
        except EGPError:
            raise
        except (StreamCut, urllib3.exceptions.HTTPError, OSError, ValueError,
                requests.exceptions.RequestException) as exc:
            if self.closed:
                return
            if isinstance(exc, socket.timeout | urllib3.exceptions.ReadTimeoutError):
                raise _generation_timeout(url, client._redact(repr(exc)), client.timeout[1]) from None
            raise ProtocolError("The connection to the server was cut before the answer finished. Try again.",
                                url=safe_url(url), detail=client._redact(repr(exc))) from None
        self._finish()

    def _on_connection(self, connection: Any) -> None:
        with self._lock:
            self._connection = connection

    def _accept(self, data: str, url: str) -> Chunk | None:
        """Take one event's data the careful way; the Chunk if it carried text."""
        data = data.strip()
        if not data or data == "[DONE]":
            return None
        try:
            payload = json.loads(data)
        except ValueError:
            raise ProtocolError(url=safe_url(url), detail=f"Invalid JSON in the stream: {data[:120]!r}") from None
        text, finish, usage = self.client._extract(payload, url, data, self.extras)
        if finish is not None:
            self.finish_reason = finish
        if usage is not None:
            self.usage = usage
        if not text:
            return None
        at = time.monotonic()
        if self._first_at is None:
            self._first_at = at
        self._parts.append(text)
        self._chunks += 1
        return Chunk(text, at)

    def _finish(self) -> None:
        self._ended = time.monotonic()
        with self._lock:
            response, self._response = self._response, None
            self.closed = True
        if response is not None:
            response.close()  # the body was read to its end: the connection goes back to the pool

    def _drop_response(self) -> None:
        with self._lock:
            response, self._response = self._response, None
        if response is not None:
            _abort(response)


def _generation_timeout(url: str, detail: str, seconds: float) -> TimeoutError:
    """No byte of the answer within the read timeout. Not retried: the server may still be
    generating (and billing) the first answer, so sending it again could cost two or three."""
    error = TimeoutError(f"The model sent nothing for {seconds:.0f} seconds, so the answer was given up. "
                         "It was not asked again (that could cost twice); try again, or pick a faster model.",
                         url=safe_url(url), detail=detail)
    error.retryable = False
    return error


def _event_error_message(data: str) -> str:
    try:
        messages = _server_messages(json.loads(data))
    except ValueError:
        messages = [data] if data else []
    if messages:
        return "The server stopped with an error: " + "; ".join(messages)[:300]
    return "The server stopped with an error. Try again in a moment."


def _abort(response: requests.Response) -> None:
    """Close a streamed response's socket at once (wakes a thread blocked reading it)."""
    _shutdown(response_socket(response))
    try:
        response.close()
    except Exception:  # noqa: BLE001 - closing must never raise
        pass


def _shutdown(sock: socket.socket | None) -> None:
    """Shut a socket down both ways: a thread blocked reading it wakes up at once."""
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
