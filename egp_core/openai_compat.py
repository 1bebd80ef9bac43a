"""An adapter for OpenAI-compatible servers (vLLM, Ollama, llama.cpp's server, OpenAI).

`OpenAIClient` is an `egp_core.client.EGPClient` that speaks `/v1/models` and
`/v1/chat/completions` (SSE with `stream_options.include_usage`, usage in the
last chunk) instead of the EGP paths. Everything else is the EGP client's own:
the stream object (`CompletionStream`: chunks, metrics, close from any thread),
the retry policy (`egp_core.retry`), the SSE reader (`egp_core.sse`) and the
error classes, so pages see the same chunks, usage and errors from every kind
of connection. Only the wire format, the `Authorization: Bearer` header and
key scrubbing of error bodies differ.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from typing import Any

import requests

from egp_core.client import EGPClient, safe_url
from egp_core.errors import EGPError, InvalidRequestError, ProtocolError, ServerError
from egp_core.types import CompletionRequest, Message, TokenUsage

CHAT_PATH = "/v1/chat/completions"
MODELS_PATH = "/v1/models"
DEFAULT_OPENAI_URL = "https://api.openai.com"

_KEYISH = re.compile(r"\b(sk|key|api)[-_][A-Za-z0-9*_\-.]{4,}", re.IGNORECASE)


def api_root(base_url: str) -> str:
    """The server root: "http://host:8000/v1/" -> "http://host:8000" (paths add /v1 themselves)."""
    url = base_url.strip().rstrip("/")
    return url[: -len("/v1")] if url.endswith("/v1") else url


def redact(text: str, api_key: str | None) -> str:
    """`text` with the key, OpenAI's masked echo of it, and key-like tokens replaced by "[key]"."""
    if api_key:
        text = text.replace(api_key, "[key]")
    text = re.sub(r"(Incorrect API key provided: )\S+", r"\1[key].", text)
    return _KEYISH.sub("[key]", text)


def chat_body(request: CompletionRequest, stream: bool, *, include_usage: bool = True) -> dict[str, Any]:
    """The OpenAI /v1/chat/completions body for one of our requests (top_k is not part of it)."""
    messages = request.messages or [Message(role="user", content=request.prompt or "")]
    body: dict[str, Any] = {"model": request.model, "messages": [m.model_dump() for m in messages], "stream": stream}
    p = request.parameters
    for name in ("temperature", "max_tokens", "top_p", "frequency_penalty", "presence_penalty"):
        value = getattr(p, name)
        if value is not None:
            body[name] = value
    if p.stop_sequences:
        body["stop"] = list(p.stop_sequences)
    if stream and include_usage:
        body["stream_options"] = {"include_usage": True}
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


class OpenAIClient(EGPClient):
    """Talks to an OpenAI-compatible server; the same interface as EGPClient."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        connect_timeout: float = 5,
        read_timeout: float = 60,
        max_retries: int = 2,
        fallback_models: list[str] | None = None,
        on_retry: Callable[[EGPError, float], None] | None = None,
        retry_initial_delay: float = 0.5,
    ) -> None:
        super().__init__(api_root(base_url), None, None, api="chat", chat_path=CHAT_PATH,
                         connect_timeout=connect_timeout, read_timeout=read_timeout, max_retries=max_retries,
                         fallback_models=fallback_models, on_retry=on_retry,
                         retry_initial_delay=retry_initial_delay)
        self._api_key = api_key or None
        if self._api_key:
            self.session.headers["Authorization"] = f"Bearer {self._api_key}"

    @classmethod
    def from_env(cls, **overrides: Any) -> OpenAIClient:
        """Built from OPENAI_BASE_URL and OPENAI_API_KEY; keyword arguments win."""
        kwargs: dict[str, Any] = {"base_url": os.environ.get("OPENAI_BASE_URL") or DEFAULT_OPENAI_URL,
                                  "api_key": os.environ.get("OPENAI_API_KEY") or None}
        kwargs.update(overrides)
        return cls(**kwargs)

    def __repr__(self) -> str:
        return f"OpenAIClient(base_url={safe_url(self.base_url)!r}, api_key=<{'set' if self._api_key else 'none'}>)"

    # ---- what differs from EGP ---------------------------------------------------------------
    def list_model_info(self) -> list[dict[str, Any]]:
        """GET /v1/models: [{"name": id, ...}], or the fallback list when the server has no listing."""
        self.last_list_error = None
        url = self._url(MODELS_PATH)
        try:
            response = self.retry.run(lambda: self._send("GET", url, None, stream=False), self.on_retry)
            payload = response.json()
        except EGPError as error:
            self.last_list_error = error
            if self.fallback_models:
                return [{"name": name} for name in self.fallback_models]
            raise
        except ValueError:
            raise ProtocolError(url=safe_url(url), detail="The model list is not JSON.") from None
        items = payload.get("data", payload.get("models", [])) if isinstance(payload, dict) else payload
        out = []
        for item in items if isinstance(items, list) else []:
            if isinstance(item, str):
                out.append({"name": item})
            elif isinstance(item, dict) and (item.get("id") or item.get("name") or item.get("model")):
                out.append({**item, "name": str(item.get("id") or item.get("name") or item.get("model"))})
        return out or [{"name": name} for name in self.fallback_models]

    def _body(self, request: CompletionRequest, stream: bool) -> dict[str, Any]:
        return chat_body(request, stream)

    def _extract(self, payload: Any, url: str, line: str) -> tuple[str, str | None, TokenUsage | None]:
        """(text, finish_reason, usage) from a chat.completion or a chat.completion.chunk."""
        message = _error_message(payload)
        if message is not None:
            error = ServerError("The server reported a problem: " + redact(message, self._api_key)[:300],
                                url=safe_url(url), body=redact(json.dumps(payload), self._api_key),
                                detail="The server sent an error object instead of an answer.")
            raise error
        try:
            usage = usage_from(payload.get("usage"))
            text, finish = "", None
            for choice in payload["choices"]:
                if choice.get("index", 0) == 0:
                    part = choice.get("delta") or choice.get("message") or {}
                    text = part.get("content") or ""
                    finish = choice.get("finish_reason")
        except (KeyError, TypeError, AttributeError):
            raise ProtocolError(url=safe_url(url), detail=f"Unexpected answer shape: {line[:200]!r}") from None
        return text, finish, usage

    def _send(self, *args: Any, **kwargs: Any) -> requests.Response:
        """EGPClient._send, plus: retry once without `stream_options` for servers that refuse it,
        and scrub the key (and OpenAI's masked echo of it) from every error."""
        body = kwargs.get("body", args[2] if len(args) > 2 else None)
        try:
            try:
                return super()._send(*args, **kwargs)
            except InvalidRequestError as error:
                if not (isinstance(body, dict) and "stream_options" in body and "stream_options" in error.body):
                    raise
                body.pop("stream_options")  # an older server; later attempts go without it too
                return super()._send(*args, **kwargs)
        except EGPError as error:
            raise self._scrub(error) from None

    def _scrub(self, error: EGPError) -> EGPError:
        key = self._api_key
        error.body = redact(error.body or "", key)
        if error._detail:
            error._detail = redact(error._detail, key)
        if isinstance(error, InvalidRequestError):
            error.messages = [redact(m, key) for m in error.messages]
        error.user_message = redact(error.user_message, key)
        error.args = (error.user_message,)
        return error
