"""The EGP-compatible HTTP server over the local engines (FastAPI).

Speaks ../shared/PROTOCOL.md: the completions paths, chat completions, the
model listings and /user-info, plus GET /health for the app and the tests. The
OpenAI-shaped paths (SGP v5 under /v5, OpenAI under /v1) are in openai_routes.py.

While the model is loading, completions requests wait for it (up to
`load_timeout` seconds, then 503 with Retry-After: 1); if loading failed they
get 503 with the reason. Generation runs on the engine's worker thread, never
on the event loop, so /health and the listings answer while it generates.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field, ValidationError
from starlette.requests import ClientDisconnect

from egp_core.local.engine import (
    Delta,
    EmptyPrompt,
    Engine,
    Event,
    Failed,
    Finished,
    Job,
    ModelNotReady,
    PromptTooLong,
    QueueFull,
    SamplingParams,
    TemplateRefused,
)
from egp_core.local.registry import Registry
from egp_core.types import (
    ChatCompletionResponse,
    ChatCompletionText,
    ChatMessageOut,
    CompletionRequest,
    CompletionResponse,
    CompletionText,
    Message,
    TokenUsage,
)

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1_000_000
INLINE_TOKENIZE_CHARS = 8_000  # longer prompts are tokenized in a worker thread
KEEP_ALIVE_SECONDS = 10.0  # an SSE comment this often while a stream waits for its first token
LOCAL_ACCOUNT_ID = "local"
LOCAL_USER_ID = "local-user"
CONNECTION_NAME = "Local model (offline)"
_M = TypeVar("_M", bound=BaseModel)
_T = TypeVar("_T")


class CompletionsBody(CompletionRequest):
    """A completions request as the server accepts it: `prompt` is required."""

    prompt: str


class ChatBody(CompletionRequest):
    """A chat completions request: at least one message."""

    messages: list[Message] = Field(min_length=1)


class _ClientGone(Exception):
    """The client disconnected before we could answer."""


# ---- request reading ----------------------------------------------------------------------


async def _read_json(request: Request) -> Any:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media and media != "application/json" and not media.endswith("+json"):
        raise HTTPException(
            415, f"Send the request body as JSON (Content-Type: application/json), not {media}."
        )
    too_big = HTTPException(
        413, f"The request is too large: the local server accepts at most {MAX_BODY_BYTES:,} bytes."
    )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > 64 * MAX_BODY_BYTES:
        raise too_big
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():  # read it all, so the client sees our answer
        size += len(chunk)
        if size <= MAX_BODY_BYTES:
            chunks.append(chunk)
    if size > MAX_BODY_BYTES:
        raise too_big
    try:
        return json.loads(b"".join(chunks))
    except (ValueError, RecursionError):
        raise HTTPException(400, "The request body is not valid JSON.") from None


def _validate(model: type[_M], data: Any) -> _M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = []
        for err in exc.errors(include_url=False, include_input=False):
            err = dict(err)
            err["loc"] = ["body", *err["loc"]]
            if "ctx" in err:
                err["ctx"] = {
                    k: v if isinstance(v, str | int | float | bool) else str(v) for k, v in err["ctx"].items()
                }
            errors.append(err)
        raise HTTPException(422, errors) from None


# ---- bridging the engine thread to the event loop -----------------------------------------


class _Channel:
    """Submits one job and hands its events to the event loop, in batches."""

    def __init__(self, engine: Engine, tokens: list[int], params: SamplingParams) -> None:
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[Event] = asyncio.Queue()
        self.engine = engine
        self.job = engine.submit(Job(tokens, params, self._sink))

    def _sink(self, event: Event) -> None:
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, event)
        except RuntimeError:  # the loop is closed: nobody is listening any more
            self.job.cancelled.set()

    async def next_batch(self, timeout: float | None = None) -> list[Event]:
        """The events that arrived, at least one; [] when `timeout` seconds pass without any."""
        try:
            batch = [await asyncio.wait_for(self._queue.get(), timeout)]
        except TimeoutError:
            return []
        while not self._queue.empty():
            batch.append(self._queue.get_nowait())
        return batch

    def cancel(self) -> None:
        self.engine.cancel(self.job)


async def _wait_for_disconnect(request: Request) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


# ---- response bodies --------------------------------------------------------------------------


def _usage(done: Finished) -> TokenUsage:
    return TokenUsage(
        prompt=done.prompt_tokens,
        completion=done.completion_tokens,
        total=done.prompt_tokens + done.completion_tokens,
    )


def _completion_json(text: str, finish: str | None = None, usage: TokenUsage | None = None) -> str:
    return CompletionResponse(
        completion=CompletionText(text=text, finish_reason=finish), token_usage=usage
    ).model_dump_json()


def _chat_json(text: str, finish: str | None = None, usage: TokenUsage | None = None) -> str:
    return ChatCompletionResponse(
        chat_completion=ChatCompletionText(message=ChatMessageOut(content=text), finish_reason=finish),
        token_usage=usage,
    ).model_dump_json()


Render = Callable[..., str]


async def _sse(channel: _Channel, render: Render, keep_alive: float) -> AsyncIterator[bytes]:
    try:
        while True:
            parts: list[str] = []
            done = False
            batch = await channel.next_batch(keep_alive)
            if not batch:  # queued or reading a long prompt: keep idle-timeouts away
                yield b": waiting for the model\n\n"
                continue
            for event in batch:
                if isinstance(event, Delta):
                    parts.append(f"data: {render(event.text)}\n\n")
                    continue
                if isinstance(event, Finished):
                    parts.append(f"data: {render('', event.finish_reason, _usage(event))}\n\n")
                else:
                    parts.append(f"event: error\ndata: {json.dumps({'detail': event.message})}\n\n")
                done = True
                break
            if parts:
                yield "".join(parts).encode("utf-8")
            if done:
                return
    finally:
        channel.cancel()


async def _collect(channel: _Channel) -> tuple[str, Finished | Failed]:
    texts: list[str] = []
    while True:
        for event in await channel.next_batch():
            if isinstance(event, Delta):
                texts.append(event.text)
            else:
                return "".join(texts), event


async def _unless_gone(request: Request, work: Awaitable[_T], cancel: Callable[[], None]) -> tuple[bool, _T | None]:
    """(True, the result of `work`), or (False, None) when the client left first. Then, or
    when `work` fails, `cancel()` stops the generation behind it."""
    collector = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_wait_for_disconnect(request))
    try:
        await asyncio.wait({collector, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
        if not collector.done():
            collector.cancel()
        cancel()
    if collector.cancelled() or not collector.done():
        return False, None
    return True, collector.result()


async def _answer_whole(request: Request, channel: _Channel, render: Render) -> Response:
    done, result = await _unless_gone(request, _collect(channel), channel.cancel)
    if not done:
        return Response(status_code=499)  # the client is gone; nobody reads this
    text, end = result
    if isinstance(end, Failed):
        headers = {"Retry-After": "1"} if end.status == 503 else None
        return JSONResponse({"detail": end.message}, status_code=end.status, headers=headers)
    return Response(render(text, end.finish_reason, _usage(end)), media_type="application/json")


# ---- the app ------------------------------------------------------------------------------------


def create_app(
    registry: Registry | None = None,
    *,
    api_key: str | None = None,
    load_timeout: float = 120.0,
    start_loading: bool = True,
    keep_alive: float = KEEP_ALIVE_SECONDS,
) -> FastAPI:
    """The FastAPI app. `api_key` defaults to $EGP_LOCAL_API_KEY (unset: no key needed).

    `load_timeout`: how long a request waits for a loading model before a 503;
    `keep_alive`: seconds between SSE comments while a stream has nothing to send.
    """
    registry = registry if registry is not None else Registry()
    key = api_key if api_key is not None else os.environ.get("EGP_LOCAL_API_KEY") or None
    started = datetime.now(UTC).isoformat()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if start_loading:
            registry.start()
        yield
        registry.close()

    app = FastAPI(
        title="EGP Playground local model server",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.registry = registry

    @app.exception_handler(ClientDisconnect)
    async def client_gone(request: Request, exc: ClientDisconnect) -> Response:
        return Response(status_code=499)  # nobody is there to read it

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s", request.url.path)
        return JSONResponse({"detail": "The local model server had an unexpected problem."}, status_code=500)

    async def require_key(request: Request) -> None:
        if key is None:
            return
        given = request.headers.get("x-api-key", "")
        bearer = request.headers.get("authorization", "")
        if not given and bearer.lower().startswith("bearer "):  # the OpenAI SDK's way (/v1)
            given = bearer[len("bearer "):].strip()
        if not hmac.compare_digest(given.encode("utf-8"), key.encode("utf-8")):
            raise HTTPException(
                401, "The API key is missing or wrong. Send this server's key in the x-api-key header."
            )

    api = APIRouter(dependencies=[Depends(require_key)])

    def engine_for(model_id: str) -> Engine:
        engine = registry.get(model_id)
        if engine is None:
            known = ", ".join(registry.ids)
            raise HTTPException(404, f"The model {model_id!r} is not served here. Known models: {known}.")
        return engine

    async def ready(engine: Engine, request: Request) -> None:
        engine.start_loading()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + load_timeout
        while engine.state not in ("ready", "error"):
            if loop.time() > deadline:
                raise HTTPException(
                    503,
                    "The local model is still loading. Try again in a moment.",
                    headers={"Retry-After": "1"},
                )
            if await request.is_disconnected():
                raise _ClientGone()
            await asyncio.sleep(0.05)
        if engine.state == "error":
            raise HTTPException(503, engine.error or "The local model could not be loaded.")

    async def run(
        request: Request, body: CompletionRequest, engine: Engine, tokenize, size: int, render: Render
    ) -> Response:
        if body.images:
            raise HTTPException(
                400, "The local model cannot read images. Remove the images or pick another model."
            )
        try:
            await ready(engine, request)
        except _ClientGone:
            return Response(status_code=499)
        params = SamplingParams.from_model_parameters(body.model_parameters)
        try:
            # A short prompt tokenizes in well under a millisecond: do it here and save a
            # thread hop on the time to first token; a long one must not stall the loop.
            tokens = tokenize() if size <= INLINE_TOKENIZE_CHARS else await asyncio.to_thread(tokenize)
            channel = _Channel(engine, tokens, params)
        except (PromptTooLong, EmptyPrompt, TemplateRefused) as exc:
            raise HTTPException(400, str(exc)) from None
        except QueueFull as exc:
            raise HTTPException(503, str(exc), headers={"Retry-After": "1"}) from None
        except ModelNotReady as exc:
            raise HTTPException(503, str(exc), headers={"Retry-After": "1"}) from None
        if body.stream:
            return StreamingResponse(
                _sse(channel, render, keep_alive),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            )
        return await _answer_whole(request, channel, render)

    async def completions(request: Request) -> Response:
        body = _validate(CompletionsBody, await _read_json(request))
        engine = engine_for(body.model)
        size = len(body.prompt)
        return await run(
            request, body, engine, lambda: engine.tokenize_prompt(body.prompt), size, _completion_json
        )

    for path in ("/egp/v1/completions", "/v2/completions", "/v4/completions"):
        api.add_api_route(path, completions, methods=["POST"], name=f"completions {path}")

    @api.post("/v4/chat-completions")
    async def chat_completions(request: Request) -> Response:
        body = _validate(ChatBody, await _read_json(request))
        engine = engine_for(body.model)
        size = sum(len(m.content) for m in body.messages)
        return await run(
            request, body, engine, lambda: engine.tokenize_messages(body.messages), size, _chat_json
        )

    def item(engine: Engine) -> dict[str, Any]:
        return {
            "id": engine.id,
            "name": engine.id,
            "model_type": "COMPLETION",
            "model_vendor": "OTHER",
            "description": f"Runs on this computer with llama.cpp ({engine.spec.path.name}).",
            "created_at": started,
            "account_id": LOCAL_ACCOUNT_ID,
            "created_by_user_id": LOCAL_USER_ID,
            "request_schema": {},
            "response_schema": {},
            "context_length": engine.n_ctx,
            "status": engine.state,
        }

    @api.get("/v3/models")
    async def models_v3() -> list[dict[str, Any]]:
        return [item(e) for e in registry.engines.values()]

    @api.get("/v4/models")
    async def models_v4() -> dict[str, Any]:
        items = [item(e) for e in registry.engines.values()]
        return {
            "items": items,
            "current_page": 1,
            "items_per_page": len(items),
            "total_item_count": len(items),
        }

    @api.get("/v5/chat/completions/models")
    async def models_v5() -> dict[str, Any]:
        items = [
            {
                "model_name": e.id,
                "model_type": "chat_completion",
                "model_vendor": "llama.cpp",
                "model_availability": "available" if e.state != "error" else "unavailable",
                "context_length": e.n_ctx,
            }
            for e in registry.engines.values()
        ]
        return {"items": items, "object": "list"}

    @api.get("/user-info")
    async def user_info() -> dict[str, Any]:
        return {
            "id": LOCAL_USER_ID,
            "first_name": "Local",
            "last_name": "User",
            "email": "local@localhost",
            "access_profiles": [
                {"role": "admin", "account": {"id": LOCAL_ACCOUNT_ID, "name": CONNECTION_NAME}}
            ],
        }

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return registry.status()

    from egp_core.local.openai_routes import install_error_shapes, openai_router

    api.include_router(openai_router(registry, engine_for, ready, keep_alive, _read_json, _validate, _Channel,
                                     _unless_gone, started))
    install_error_shapes(app)
    app.include_router(api)
    return app
