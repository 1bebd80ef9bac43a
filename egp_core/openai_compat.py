"""The OpenAI wire shape, for OpenAI-compatible servers (vLLM, Ollama, llama.cpp's server,
OpenAI) and for SGP v5 (`/v5/chat/completions`, `/v5/completions`), which uses the same bodies.

`OpenAIClient` is an `egp_core.client.EGPClient` parameterised by a `Flavor`:
its path prefix (`/v1` or `/v5`), its model listings, and its headers
(`Authorization: Bearer` for OpenAI-compatible servers; `x-api-key` and
`x-selected-account-id` for an SGP workspace). `sgp_v5_client()` builds the
SGP one. Both speak chat completions (`api="chat"`) or completions
(`api="completions"`), with candidates (`n`), `seed`, token probabilities and
`response_format` from the request's `AnswerOptions`. Everything else is the
EGP client's own: the stream object (`CompletionStream`: chunks, metrics, close
from any thread), the retry policy (`egp_core.retry`), the SSE reader
(`egp_core.sse`) and the error classes, so pages see the same chunks, usage and
errors from every kind of connection.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import requests

from egp_core.client import EGPClient, Extras, safe_url
from egp_core.errors import EGPError, InvalidRequestError, ProtocolError, ServerError
from egp_core.types import CompletionRequest, Message, TokenLogprob, TokenUsage


@dataclass(frozen=True, slots=True)
class Flavor:
    """One API that speaks OpenAI's bodies: where its paths are and how it authenticates."""

    label: str
    prefix: str
    model_paths: tuple[str, ...]
    auth: Literal["bearer", "x-api-key"]
    top_k: bool  # whether the body may carry top_k (SGP v5 takes it; OpenAI does not)

    @property
    def chat_path(self) -> str:
        return self.prefix + "/chat/completions"

    @property
    def completions_path(self) -> str:
        return self.prefix + "/completions"


OPENAI = Flavor("OpenAI-compatible", "/v1", ("/v1/models",), "bearer", top_k=False)
SGP_V5 = Flavor("SGP v5", "/v5", ("/v5/chat/completions/models", "/v5/models"), "x-api-key", top_k=True)

CHAT_PATH = OPENAI.chat_path
MODELS_PATH = OPENAI.model_paths[0]
DEFAULT_OPENAI_URL = "https://api.openai.com"



def api_root(base_url: str) -> str:
    """The server root: "http://host:8000/v1/" -> "http://host:8000" (paths add /v1 themselves)."""
    url = base_url.strip().rstrip("/")
    return url[: -len("/v1")] if url.endswith("/v1") else url


def _common(request: CompletionRequest, stream: bool, include_usage: bool, top_k: bool,
            chat: bool) -> dict[str, Any]:
    """Sampling parameters and answer options, as both OpenAI bodies carry them."""
    body: dict[str, Any] = {}
    p = request.parameters
    for name in ("temperature", "max_tokens", "top_p", "frequency_penalty", "presence_penalty"):
        value = getattr(p, name)
        if value is not None:
            body[name] = value
    if top_k and p.top_k is not None:
        body["top_k"] = p.top_k
    if p.stop_sequences:
        body["stop"] = list(p.stop_sequences)
    o = request.options
    if o is not None:
        if o.n is not None and o.n > 1:
            body["n"] = o.n
        if o.seed is not None:
            body["seed"] = o.seed
        if o.top_logprobs is not None:
            if chat:
                body["logprobs"] = True
                if o.top_logprobs:
                    body["top_logprobs"] = o.top_logprobs
            else:
                body["logprobs"] = o.top_logprobs  # the completions API: how many alternatives
        if o.response_format:
            body["response_format"] = o.response_format
    if stream and include_usage:
        body["stream_options"] = {"include_usage": True}
    return body


def chat_body(request: CompletionRequest, stream: bool, *, include_usage: bool = True,
              top_k: bool = False) -> dict[str, Any]:
    """The /v1 (or /v5) chat/completions body for one of our requests."""
    messages = request.messages or [Message(role="user", content=request.prompt or "")]
    body: dict[str, Any] = {"model": request.model, "messages": [m.model_dump() for m in messages], "stream": stream}
    body.update(_common(request, stream, include_usage, top_k, chat=True))
    return body


def completions_body(request: CompletionRequest, stream: bool, *, include_usage: bool = True,
                     top_k: bool = False) -> dict[str, Any]:
    """The /v1 (or /v5) completions body: the prompt as given (messages become a transcript)."""
    from egp_core.chat import transcript

    prompt = request.prompt if request.messages is None else transcript(request.messages)
    body: dict[str, Any] = {"model": request.model, "prompt": prompt or "", "stream": stream}
    body.update(_common(request, stream, include_usage, top_k, chat=False))
    return body


def usage_from(data: Any) -> TokenUsage | None:
    """OpenAI's usage object -> TokenUsage (None when absent)."""
    if not isinstance(data, dict):
        return None
    prompt, completion, total = data.get("prompt_tokens"), data.get("completion_tokens"), data.get("total_tokens")
    if total is None:
        if prompt is None and completion is None:
            return None
        total = (prompt or 0) + (completion or 0)
    return TokenUsage(prompt=prompt, completion=completion, total=total)


def _error_message(payload: Any) -> str | None:
    """The sentence in {"error": {"message": ...}} / {"error": "..."} (OpenAI, vLLM, Ollama)."""
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict):
        return str(error.get("message") or error.get("code") or error)
    return str(error) if error else None


def _plain_choice(payload: Any) -> dict[str, Any]:
    """The hot path of a stream: the only choice of a chunk without a finish reason, usage or
    probabilities (LookupError for anything else, which then goes the careful way)."""
    choices = payload["choices"]
    choice = choices[0]
    if len(choices) != 1 or choice["index"] or choice["finish_reason"] is not None or choice.get("logprobs") \
            or payload.get("usage"):
        raise LookupError
    return choice


def _chat_delta(payload: Any) -> str:
    return _plain_choice(payload)["delta"]["content"]


def _completions_delta(payload: Any) -> str:
    return _plain_choice(payload)["text"]


def logprobs_from(raw: Any) -> list[TokenLogprob]:
    """Token probabilities from a choice's `logprobs`: the chat shape ({"content": [{"token",
    "logprob", "top_logprobs"}]}) or the completions shape ({"tokens", "token_logprobs",
    "top_logprobs": [{token: logprob}]}). [] when absent or unreadable."""
    if not isinstance(raw, dict):
        return []
    out: list[TokenLogprob] = []
    try:
        if isinstance(raw.get("content"), list):
            for item in raw["content"]:
                top = tuple((str(t["token"]), float(t["logprob"])) for t in item.get("top_logprobs") or [])
                out.append(TokenLogprob(str(item["token"]), float(item["logprob"]), top))
        elif isinstance(raw.get("tokens"), list):
            tops = raw.get("top_logprobs") or []
            for i, (token, logprob) in enumerate(zip(raw["tokens"], raw.get("token_logprobs") or [], strict=False)):
                top_map = tops[i] if i < len(tops) and isinstance(tops[i], dict) else {}
                top = tuple(sorted(((str(t), float(p)) for t, p in top_map.items()), key=lambda tp: -tp[1]))
                out.append(TokenLogprob(str(token), float(logprob if logprob is not None else 0.0), top))
    except (KeyError, TypeError, ValueError):
        return out
    return out


class OpenAIClient(EGPClient):
    """Talks to a server with OpenAI's bodies (an OpenAI-compatible server, or SGP v5 with
    `flavor=SGP_V5`); the same interface as EGPClient."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        account_id: str | None = None,
        flavor: Flavor = OPENAI,
        api: Literal["completions", "chat"] = "chat",
        connect_timeout: float = 5,
        read_timeout: float = 60,
        max_retries: int = 2,
        fallback_models: list[str] | None = None,
        on_retry: Callable[[EGPError, float], None] | None = None,
        retry_initial_delay: float = 0.5,
    ) -> None:
        super().__init__(api_root(base_url), None, None, api=api, chat_path=flavor.chat_path,
                         completions_path=flavor.completions_path,
                         connect_timeout=connect_timeout, read_timeout=read_timeout, max_retries=max_retries,
                         fallback_models=fallback_models, on_retry=on_retry,
                         retry_initial_delay=retry_initial_delay)
        self.flavor = flavor
        self.model_paths = flavor.model_paths
        self._api_key = api_key or None
        self.account_id = account_id or None
        if self._api_key and flavor.auth == "bearer":
            self.session.headers["Authorization"] = f"Bearer {self._api_key}"
        elif self._api_key:
            self.session.headers["x-api-key"] = self._api_key
        if self.account_id and flavor.auth == "x-api-key":
            self.session.headers["x-selected-account-id"] = self.account_id

    @classmethod
    def from_env(cls, **overrides: Any) -> OpenAIClient:
        """Built from OPENAI_BASE_URL and OPENAI_API_KEY; keyword arguments win."""
        kwargs: dict[str, Any] = {"base_url": os.environ.get("OPENAI_BASE_URL") or DEFAULT_OPENAI_URL,
                                  "api_key": os.environ.get("OPENAI_API_KEY") or None}
        kwargs.update(overrides)
        return cls(**kwargs)

    def __repr__(self) -> str:
        return (f"OpenAIClient(base_url={safe_url(self.base_url)!r}, flavor={self.flavor.label!r}, "
                f"api={self.api!r}, api_key=<{'set' if self._api_key else 'none'}>)")

    # ---- what differs from EGP ---------------------------------------------------------------
    def _body(self, request: CompletionRequest, stream: bool) -> dict[str, Any]:
        make = chat_body if self.api == "chat" else completions_body
        return make(request, stream, top_k=self.flavor.top_k)

    def plain_delta(self) -> Callable[[Any], str]:
        return _chat_delta if self.api == "chat" else _completions_delta

    def _extract(self, payload: Any, url: str, line: str,
                 extras: Extras | None = None) -> tuple[str, str | None, TokenUsage | None]:
        """(text, finish_reason, usage) of the first choice from a chat.completion, a
        chat.completion.chunk or a text_completion; other choices and probabilities into `extras`."""
        message = _error_message(payload)
        if message is None and isinstance(payload, dict) and "detail" in payload and "choices" not in payload:
            message = str(payload["detail"])  # SGP v5 reports FastAPI-style
        if message is not None:
            error = ServerError("The server reported a problem: " + message[:300],
                                url=safe_url(url), body=json.dumps(payload),
                                detail="The server sent an error object instead of an answer.")
            raise error
        try:
            usage = usage_from(payload.get("usage"))
            text, finish = "", None
            for choice in payload["choices"]:
                index = choice.get("index") or 0
                part = choice.get("delta") or choice.get("message")
                piece = (part.get("content") if isinstance(part, dict) else choice.get("text")) or ""
                if index == 0:
                    text, finish = piece, choice.get("finish_reason")
                    if extras is not None and choice.get("logprobs"):
                        extras.logprobs.extend(logprobs_from(choice["logprobs"]))
                elif extras is not None and piece:
                    extras.add_text(index, piece)
        except (KeyError, TypeError, AttributeError):
            raise ProtocolError(url=safe_url(url), detail=f"Unexpected answer shape: {line[:200]!r}") from None
        return text, finish, usage

    def _send(self, *args: Any, **kwargs: Any) -> requests.Response:
        """EGPClient._send, plus: retry once without `stream_options` for servers that refuse it.
        (Errors are scrubbed of the key where every client's are: EGPClient._retrying.)"""
        body = kwargs.get("body", args[2] if len(args) > 2 else None)
        try:
            return super()._send(*args, **kwargs)
        except InvalidRequestError as error:
            if not (isinstance(body, dict) and "stream_options" in body and "stream_options" in error.body):
                raise
            body.pop("stream_options")  # an older server; later attempts go without it too
            return super()._send(*args, **kwargs)


def sgp_v5_client(base_url: str, api_key: str | None = None, account_id: str | None = None,
                  **kw: Any) -> OpenAIClient:
    """A client for an SGP workspace's v5 API (`/v5/chat/completions`, `/v5/completions`)."""
    return OpenAIClient(base_url, api_key, account_id=account_id, flavor=SGP_V5, **kw)
