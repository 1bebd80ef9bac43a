"""OpenAI-shaped routes of the local server: SGP v5 (`/v5/...`) and OpenAI (`/v1/...`).

    POST /v5/chat/completions, /v1/chat/completions   messages -> chat.completion(.chunk)
    POST /v5/completions, /v1/completions             prompt   -> text_completion
    GET  /v5/models, /v1/models                        model lists (/v5/chat/completions/models is server.py's)

Both prefixes take the same bodies (../shared/PROTOCOL.md, "SGP v5 and
OpenAI-compatible"): `n` (1-4 candidates, each its own engine job, seeds
seed, seed+1, ...), `seed`, `logprobs` with `top_logprobs` (up to 5),
`response_format` (`json_object`, or `json_schema`, enforced with a llama.cpp
grammar), `stop`, `max_tokens` / `max_completion_tokens`, and usage. They
differ where the SDKs differ: a v1 stream ends with `data: [DONE]` (the OpenAI
SDK stops there) and reports errors as `{"error": {...}}`; a v5 stream ends by
closing (scale-gp-beta parses every `data:` line as JSON) and reports errors
FastAPI-style (`{"detail": ...}`, mid-stream as `event: error`).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.exceptions import HTTPException as StarletteHTTPException

from egp_core.local.engine import (
    Delta,
    EmptyPrompt,
    Engine,
    Event,
    Failed,
    Finished,
    ModelNotReady,
    PromptTooLong,
    QueueFull,
    SamplingParams,
    TemplateRefused,
)
from egp_core.types import Message

MAX_CANDIDATES = 4
MAX_TOP_LOGPROBS = 5
MAX_STOPS = 4
OWNER = "local"


# ---- request bodies -----------------------------------------------------------------------------


class _Common(BaseModel):
    """What chat completions and completions share. Unknown fields are ignored, as OpenAI's are not
    all meaningful here (user, metadata, store, ...)."""

    model_config = ConfigDict(extra="ignore")

    model: str = Field(min_length=1)
    stream: bool = False
    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    top_k: int | None = Field(default=None, ge=0)
    frequency_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    presence_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    stop: str | list[str] | None = None
    n: int = Field(default=1, ge=1, le=MAX_CANDIDATES)
    seed: int | None = None
    response_format: dict[str, Any] | None = None
    stream_options: dict[str, Any] | None = None

    @field_validator("stop")
    @classmethod
    def _at_most_four(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and len(value) > MAX_STOPS:
            raise ValueError(f"at most {MAX_STOPS} stop sequences")
        return value

    @property
    def stops(self) -> tuple[str, ...]:
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop or ())


class ChatBody(_Common):
    messages: list[dict[str, Any]] = Field(min_length=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    logprobs: bool = False
    top_logprobs: int | None = Field(default=None, ge=0, le=MAX_TOP_LOGPROBS)
    tools: list[Any] | None = None


class CompletionBody(_Common):
    prompt: str | list[str]
    logprobs: int | None = Field(default=None, ge=0, le=MAX_TOP_LOGPROBS)
    echo: bool = False


def _messages(raw: list[dict[str, Any]]) -> list[Message]:
    """OpenAI messages -> ours: text parts joined, "developer" read as "system"."""
    out = []
    for i, m in enumerate(raw):
        role = {"developer": "system"}.get(m.get("role"), m.get("role"))
        if role not in ("system", "user", "assistant"):
            raise HTTPException(400, f"messages[{i}]: the local model takes the roles system, user and "
                                     f"assistant, not {m.get('role')!r}.")
        content = m.get("content")
        if isinstance(content, list):
            if any(isinstance(p, dict) and p.get("type") not in ("text", None) for p in content):
                raise HTTPException(400, f"messages[{i}]: the local model reads text only, not images or audio.")
            content = "".join(str(p.get("text", "")) if isinstance(p, dict) else str(p) for p in content)
        out.append(Message(role=role, content=content if isinstance(content, str) else ""))
    return out


def grammar_for(response_format: dict[str, Any] | None) -> str | None:
    """The GBNF grammar that enforces `response_format` (None for plain text). HTTP 400 when the
    format or its schema cannot be enforced."""
    if not response_format:
        return None
    kind = response_format.get("type")
    if kind in (None, "text"):
        return None
    from llama_cpp.llama_grammar import JSON_GBNF, json_schema_to_gbnf

    if kind == "json_object":
        return JSON_GBNF
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if not isinstance(schema, dict):
            raise HTTPException(400, 'response_format: json_schema needs {"json_schema": {"name": ..., '
                                     '"schema": {...}}}.')
        try:
            return json_schema_to_gbnf(json.dumps(schema))
        except Exception as exc:  # noqa: BLE001 - the converter raises what it likes
            raise HTTPException(400, f"response_format: this JSON schema cannot be enforced here "
                                     f"({type(exc).__name__}: {exc}).") from None
    raise HTTPException(400, f"response_format: the type must be text, json_object or json_schema, not {kind!r}.")


def _params(body: _Common, max_tokens: int | None, top_logprobs: int | None, seed: int | None) -> SamplingParams:
    return SamplingParams.of(
        temperature=body.temperature,
        max_tokens=max_tokens,
        stop=body.stops,
        top_p=body.top_p,
        top_k=body.top_k,
        frequency_penalty=body.frequency_penalty,
        presence_penalty=body.presence_penalty,
        seed=seed,
        logprobs=top_logprobs is not None,
        top_logprobs=top_logprobs or 0,
        grammar=grammar_for(body.response_format),
    )


# ---- answers ------------------------------------------------------------------------------------


def _text(token: bytes) -> str:
    return token.decode("utf-8", "replace")


def _chat_logprobs(deltas: Any) -> dict[str, Any]:
    return {"content": [
        {"token": _text(t.token), "logprob": t.logprob, "bytes": list(t.token),
         "top_logprobs": [{"token": _text(a), "logprob": p, "bytes": list(a)} for a, p in t.top]}
        for t in deltas]}


def _completion_logprobs(deltas: Any, offset: int) -> dict[str, Any]:
    tokens, offsets = [], []
    for t in deltas:
        tokens.append(_text(t.token))
        offsets.append(offset)
        offset += len(tokens[-1])
    return {"tokens": tokens, "token_logprobs": [t.logprob for t in deltas],
            "top_logprobs": [{_text(a): p for a, p in t.top} for t in deltas], "text_offset": offsets}


class _Shape:
    """How one answer is written: chat or text completion, v1 or v5."""

    def __init__(self, chat: bool, v1: bool, model: str, want_logprobs: bool) -> None:
        self.chat, self.v1, self.want_logprobs = chat, v1, want_logprobs
        self.head = {"id": ("chatcmpl-" if chat else "cmpl-") + uuid.uuid4().hex[:24], "created": int(time.time()),
                     "model": model}
        self.offsets: dict[int, int] = {}

    def choice(self, index: int, text: str, finish: str | None, logprobs: Any, *, stream: bool,
               first: bool = False) -> dict[str, Any]:
        lp = None
        if self.want_logprobs and (logprobs or not stream):
            if self.chat:
                lp = _chat_logprobs(logprobs)
            else:
                lp = _completion_logprobs(logprobs, self.offsets.get(index, 0))
        if not self.chat:
            self.offsets[index] = self.offsets.get(index, 0) + len(text)
            return {"index": index, "text": text, "logprobs": lp, "finish_reason": finish}
        if not stream:
            part = {"message": {"role": "assistant", "content": text}}
        elif first:
            part = {"delta": {"role": "assistant", "content": text}}
        else:
            part = {"delta": {"content": text} if text or finish is None else {}}
        return {"index": index, **part, "logprobs": lp, "finish_reason": finish}

    def chunk(self, choices: list[dict[str, Any]], usage: dict[str, int] | None = None) -> str:
        obj = "chat.completion.chunk" if self.chat else "text_completion"
        payload: dict[str, Any] = {**self.head, "object": obj, "choices": choices}
        if usage is not None:
            payload["usage"] = usage
        return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"

    def whole(self, choices: list[dict[str, Any]], usage: dict[str, int]) -> dict[str, Any]:
        obj = "chat.completion" if self.chat else "text_completion"
        return {**self.head, "object": obj, "choices": choices, "usage": usage}

    def stream_error(self, message: str) -> str:
        if self.v1:
            return f"data: {json.dumps(_openai_error(message, 500))}\n\n"
        return f"event: error\ndata: {json.dumps({'detail': message})}\n\n"


def _usage(ends: list[Finished]) -> dict[str, int]:
    prompt = ends[0].prompt_tokens if ends else 0
    completion = sum(e.completion_tokens for e in ends)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _openai_error(message: str, status: int) -> dict[str, Any]:
    kind = {401: "authentication_error", 403: "permission_error", 404: "not_found_error",
            429: "rate_limit_error"}.get(status, "invalid_request_error" if status < 500 else "server_error")
    return {"error": {"message": message, "type": kind, "param": None, "code": status}}


def install_error_shapes(app: FastAPI) -> None:
    """Errors on /v1 in OpenAI's shape ({"error": {"message", "type", "code"}}, 400 for bad input);
    everywhere else FastAPI's ({"detail": ...})."""
    from fastapi.exception_handlers import http_exception_handler, request_validation_exception_handler

    def message_of(detail: Any) -> str:
        if isinstance(detail, list):
            parts = []
            for item in detail:
                if isinstance(item, dict):
                    loc = ".".join(str(p) for p in item.get("loc") or [] if p != "body")
                    parts.append(f"{loc}: {item.get('msg')}" if loc else str(item.get("msg")))
            return "; ".join(parts) or "The request is not valid."
        return str(detail)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if not request.url.path.startswith("/v1/"):
            return await http_exception_handler(request, exc)
        status = 400 if exc.status_code == 422 else exc.status_code
        return JSONResponse(_openai_error(message_of(exc.detail), status), status_code=status,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        if not request.url.path.startswith("/v1/"):
            return await request_validation_exception_handler(request, exc)
        return JSONResponse(_openai_error(message_of(exc.errors()), 400), status_code=400)


# ---- the routes -----------------------------------------------------------------------------------


Ready = Callable[[Engine, Request], Awaitable[None]]


def openai_router(
    registry: Any,
    engine_for: Callable[[str], Engine],
    ready: Ready,
    keep_alive: float,
    read_json: Callable[[Request], Awaitable[Any]],
    validate: Callable[[type, Any], Any],
    channel: Callable[[Engine, list[int], SamplingParams], Any],
    unless_gone: Callable[..., Awaitable[tuple[bool, Any]]],
    started: str,
) -> APIRouter:
    """The routes, wired to the server's registry and helpers (see server.create_app)."""
    router = APIRouter()

    async def answer(request: Request, chat: bool, v1: bool) -> Response:
        model = ChatBody if chat else CompletionBody
        body = validate(model, await read_json(request))
        engine = engine_for(body.model)
        if chat:
            if body.tools:
                raise HTTPException(400, "The local model cannot call tools. Leave out `tools`.")
            messages = _messages(body.messages)
            size = sum(len(m.content) for m in messages)
            top = body.top_logprobs if body.logprobs else None
            max_tokens = body.max_completion_tokens or body.max_tokens

            def tokenize() -> list[int]:
                return engine.tokenize_messages(messages)
        else:
            prompts = [body.prompt] if isinstance(body.prompt, str) else body.prompt
            if len(prompts) != 1:
                raise HTTPException(400, "Send one prompt (a string) per request.")
            if body.echo:
                raise HTTPException(400, "The local model does not echo the prompt. Leave out `echo`.")
            prompt = prompts[0]
            size, top, max_tokens = len(prompt), body.logprobs, body.max_tokens

            def tokenize() -> list[int]:
                return engine.tokenize_prompt(prompt)
        params = [_params(body, max_tokens, top, None if body.seed is None else body.seed + i)
                  for i in range(body.n)]
        try:
            await ready(engine, request)
        except HTTPException:
            raise
        except Exception:  # the client left while the model loaded
            return Response(status_code=499)
        channels = []
        try:
            tokens = tokenize() if size <= 8000 else await asyncio.to_thread(tokenize)
            for p in params:
                channels.append(channel(engine, tokens, p))
        except (PromptTooLong, EmptyPrompt, TemplateRefused) as exc:
            _cancel(channels)
            raise HTTPException(400, str(exc)) from None
        except (QueueFull, ModelNotReady) as exc:
            _cancel(channels)
            raise HTTPException(503, str(exc), headers={"Retry-After": "1"}) from None
        shape = _Shape(chat, v1, body.model, top is not None)
        if body.stream:
            include_usage = not v1 or bool((body.stream_options or {}).get("include_usage"))
            return StreamingResponse(
                _stream(channels, shape, keep_alive, include_usage),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            )
        return await _whole(request, channels, shape, unless_gone)

    for prefix, v1 in (("/v5", False), ("/v1", True)):
        router.add_api_route(prefix + "/chat/completions", _bind(answer, True, v1), methods=["POST"],
                             name=f"chat completions {prefix}")
        router.add_api_route(prefix + "/completions", _bind(answer, False, v1), methods=["POST"],
                             name=f"completions {prefix}")

    @router.get("/v1/models")
    async def models_v1() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": e.id, "object": "model", "created": 0, "owned_by": OWNER}
                                           for e in registry.engines.values()]}

    @router.get("/v5/models")
    async def models_v5() -> dict[str, Any]:
        items = [{"id": e.id, "name": e.id, "object": "model", "model_type": "chat_completion",
                  "model_vendor": "llmengine", "model_availability": "available" if e.state != "error" else "unavailable",
                  "status": "failed" if e.state == "error" else "ready", "created_at": started,
                  "created_by_user_id": "local-user", "created_by_identity_type": "user",
                  "model_metadata": {"context_length": e.n_ctx, "runs_on": "llama.cpp"}}
                 for e in registry.engines.values()]
        return {"items": items, "object": "list", "has_more": False, "total": len(items)}

    return router


def _bind(answer: Callable[..., Awaitable[Response]], chat: bool, v1: bool) -> Callable[[Request], Awaitable[Response]]:
    async def route(request: Request) -> Response:
        return await answer(request, chat, v1)

    return route


def _cancel(channels: list[Any]) -> None:
    for ch in channels:
        ch.cancel()


async def _merged(channels: list[Any], keep_alive: float) -> AsyncIterator[tuple[int, list[Event]]]:
    """(candidate index, events) as they arrive from any of the channels, until each has ended;
    (-1, []) when nothing arrived for `keep_alive` seconds."""
    waiting = {asyncio.ensure_future(ch.next_batch(keep_alive)): i for i, ch in enumerate(channels)}
    try:
        while waiting:
            done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            for task in sorted(done, key=waiting.__getitem__):
                i = waiting.pop(task)
                batch = task.result()
                yield (i, batch) if batch else (-1, [])
                if not any(not isinstance(e, Delta) for e in batch):
                    waiting[asyncio.ensure_future(channels[i].next_batch(keep_alive))] = i
    finally:
        for task in waiting:
            task.cancel()


async def _stream(channels: list[Any], shape: _Shape, keep_alive: float, include_usage: bool) -> AsyncIterator[bytes]:
    ends: list[Finished] = []
    started: set[int] = set()
    try:
        async for i, batch in _merged(channels, keep_alive):
            if i < 0:
                yield b": waiting for the model\n\n"
                continue
            parts: list[str] = []
            for event in batch:
                if isinstance(event, Delta):
                    first = shape.chat and i not in started
                    started.add(i)
                    parts.append(shape.chunk([shape.choice(i, event.text, None, event.logprobs, stream=True,
                                                           first=first)]))
                elif isinstance(event, Finished):
                    ends.append(event)
                    parts.append(shape.chunk([shape.choice(i, "", event.finish_reason, (), stream=True)]))
                else:
                    parts.append(shape.stream_error(event.message))
                    yield "".join(parts).encode("utf-8")
                    return
            yield "".join(parts).encode("utf-8")
        tail = shape.chunk([], _usage(ends)) if include_usage else ""
        if shape.v1:
            tail += "data: [DONE]\n\n"
        if tail:
            yield tail.encode("utf-8")
    finally:
        _cancel(channels)


async def _collect(channels: list[Any]) -> tuple[list[list[Delta]], list[Finished | Failed | None]]:
    deltas: list[list[Delta]] = [[] for _ in channels]
    ends: list[Finished | Failed | None] = [None] * len(channels)
    async for i, batch in _merged(channels, None):  # type: ignore[arg-type]
        for event in batch:
            if isinstance(event, Delta):
                deltas[i].append(event)
            else:
                ends[i] = event
    return deltas, ends


async def _whole(request: Request, channels: list[Any], shape: _Shape,
                 unless_gone: Callable[..., Awaitable[tuple[bool, Any]]]) -> Response:
    done, result = await unless_gone(request, _collect(channels), lambda: _cancel(channels))
    if not done:
        return Response(status_code=499)  # the client is gone; nobody reads this
    deltas, ends = result
    failed = next((e for e in ends if isinstance(e, Failed)), None)
    if failed is not None or any(e is None for e in ends):
        status = failed.status if failed else 500
        message = failed.message if failed else "The local model stopped before finishing."
        headers = {"Retry-After": "1"} if status == 503 else None
        raise HTTPException(status, message, headers=headers)
    choices = []
    for i, (parts, end) in enumerate(zip(deltas, ends, strict=True)):
        text = "".join(d.text for d in parts)
        logprobs = [t for d in parts for t in d.logprobs]
        choices.append(shape.choice(i, text, end.finish_reason, logprobs, stream=False))  # type: ignore[union-attr]
    return JSONResponse(shape.whole(choices, _usage([e for e in ends if isinstance(e, Finished)])))

