"""One answer generated in a background thread: stream -> live buffer -> store.

The page never holds the HTTP stream itself. A `Generation` owns it in a worker
thread, so the answer carries on (and keeps being saved) when the page reruns,
is refreshed, or is opened in a second tab; the page only *watches* it. Stop is
`cancel()`: it closes the socket (the server sees the disconnect and stops)
and the worker saves the partial answer as "stopped" in its `finally`.

No Streamlit here: the same object is driven by tests and by the pages.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any, Protocol

from egp_core.chat import added_usage, estimated_usage
from egp_core.errors import Busy, EGPError, error_to_dict
from egp_core.types import Completion, CompletionRequest, Metrics, TokenUsage

SAVE_EVERY_SECONDS = 0.5
"""How often the heartbeat writes what arrived since its last save (or only that the answer lives)."""
MAX_LIVE = 32
"""Live answers per process (Registry) unless told otherwise; beyond it a new answer is refused."""

log = logging.getLogger(__name__)

STATUSES = ("streaming", "complete", "stopped", "error")


class StreamingClient(Protocol):
    def stream(self, request: CompletionRequest) -> Any: ...


class MessageSink(Protocol):
    """Where the answer is saved: the store's `update_message` (`append_text` adds to the text)."""

    def update_message(self, message_id: str, **fields: Any) -> Any: ...


def usage_dict(usage: TokenUsage | None) -> dict[str, int] | None:
    return usage.model_dump() if usage is not None else None


def metrics_dict(metrics: Metrics | None) -> dict[str, Any] | None:
    return asdict(metrics) if metrics is not None else None


class Generation:
    """Streams one answer in a daemon thread; thread-safe to watch and cancel."""

    def __init__(
        self,
        client: StreamingClient,
        request: CompletionRequest,
        *,
        sink: MessageSink | None = None,
        message_id: str | None = None,
        on_finish: Callable[[Generation], None] | None = None,
        save_every: float = SAVE_EVERY_SECONDS,
        prefix: str = "",
        usage_before: dict[str, Any] | None = None,
    ) -> None:
        """`prefix` and `usage_before`: an answer being continued, its text and tokens so far."""
        self.client = client
        self.prefix = prefix
        self.usage_before = usage_before
        self.request = request
        self.sink = sink
        self.message_id = message_id
        self.on_finish = on_finish
        self.save_every = save_every

        self.status = "streaming"
        self.error: EGPError | None = None
        self.completion: Completion | None = None
        self.retry_notice: str | None = None
        self.started_at = time.monotonic()

        self._cancelled = threading.Event()
        self._done = threading.Event()
        self._stream: Any = None
        self._save_lock = threading.Lock()
        self._saved_chars = len(prefix)  # how much of the text the store has (interim saves append the rest)
        self._finished = False
        self._thread = threading.Thread(target=self._run, name=f"generation-{message_id}", daemon=True)
        self._heartbeat = threading.Thread(target=self._beat, name=f"heartbeat-{message_id}", daemon=True)

    # -- watching -------------------------------------------------------
    @property
    def text(self) -> str:
        """The answer so far: the stream keeps the parts; we never copy them per token."""
        stream = self._stream
        return self.prefix + (stream.text if stream is not None else "")

    @property
    def done(self) -> bool:
        return self._done.is_set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the answer is finished and saved. True when done."""
        return self._done.wait(timeout)

    # -- control --------------------------------------------------------
    def start(self) -> Generation:
        self._thread.start()
        if self.sink is not None and self.message_id is not None:
            self._heartbeat.start()
        return self

    def cancel(self) -> None:
        """Stop: close the HTTP stream now; the worker saves the partial answer."""
        self._cancelled.set()
        stream = self._stream
        if stream is not None:
            try:
                stream.close()
            except Exception:  # closing a socket that is already gone
                pass

    def note_retry(self, error: EGPError, delay: float) -> None:
        """For the client's `on_retry`: tell the watcher why it waits."""
        self.retry_notice = f"{error.user_message} Trying again in {delay:.0f} s."

    def refuse(self, error: EGPError) -> Generation:
        """Do not start: end at once as failed with `error` (saved like any other end)."""
        self.error = error
        self._finish()
        return self

    # -- saving (the heartbeat thread's job) ------------------------------------
    def _save_progress(self) -> None:
        """One interim save: append what arrived since the last one (or, with nothing new, only
        mark the answer alive). Bytes written grow with the answer's length, not its square,
        and the stream itself never waits for the database."""
        if self.sink is None or self.message_id is None:
            return
        with self._save_lock:
            if self._finished:  # never overwrite the final save
                return
            text = self.text
            new = text[self._saved_chars:]
            try:
                if new:
                    self.sink.update_message(self.message_id, append_text=new, status="streaming")
                    self._saved_chars = len(text)
                else:
                    self.sink.update_message(self.message_id, status="streaming")
            except Exception as exc:  # the stream goes on; the next beat or the final save catches up
                log.warning("Could not save the answer %s while it streams (%s); will try again",
                            self.message_id, _short(exc))

    def _beat(self) -> None:
        """Every `save_every` seconds, save what arrived, even while no text arrives (a queued or
        slow model), so other app replicas can tell a live answer from one lost in a crash."""
        while not self._done.wait(self.save_every):
            self._save_progress()

    # -- worker -----------------------------------------------------------

    def _run(self) -> None:
        try:
            if self._cancelled.is_set():
                return
            self._stream = self.client.stream(self.request)
            if self._cancelled.is_set():  # Stop pressed while connecting
                self._stream.close()
                return
            for _chunk in self._stream:  # the stream keeps the text (see `text`); the heartbeat saves it
                if self._cancelled.is_set():
                    break
                if self.retry_notice is not None:
                    self.retry_notice = None
        except EGPError as exc:
            if not self._cancelled.is_set():
                self.error = exc
        except Exception as exc:  # never let a bug escape a thread silently
            if not self._cancelled.is_set():
                self.error = EGPError(
                    "Something went wrong while receiving the answer. Try again.", body=repr(exc)
                )
        finally:
            self._finish()

    def _finish(self) -> None:
        stream = self._stream
        if stream is not None:
            try:
                stream.close()
            except Exception:
                pass
            self.completion = stream.completion
        if self._cancelled.is_set():
            self.status = "stopped"
        elif self.error is not None:
            self.status = "error"
        else:
            self.status = "complete"
        completion = self.completion
        fields: dict[str, Any] = {"text": self.text, "status": self.status}
        if completion is not None:
            fields["usage"] = usage_dict(completion.usage)
            if completion.usage is None and self.text:  # stopped or cut before the server counted
                fields["usage"] = estimated_usage(self.request, completion.metrics.chunks)
            if self.usage_before and fields["usage"]:  # a continued answer counts both requests
                fields["usage"] = added_usage(self.usage_before, fields["usage"])
            fields["metrics"] = metrics_dict(completion.metrics)
            fields["finish_reason"] = "stopped" if self.status == "stopped" else completion.finish_reason
            if completion.logprobs:
                fields["details"] = {"logprobs": [t.to_list() for t in completion.logprobs]}
        if self.error is not None:
            fields["error"] = json.dumps(error_to_dict(self.error))
        with self._save_lock:
            self._finished = True
            for attempt in range(3):  # the final save matters most: retry a busy database
                try:
                    if self.sink is not None and self.message_id is not None:
                        self.sink.update_message(self.message_id, **fields)
                    break
                except Exception as exc:
                    log.error("Could not save the end of the answer %s (attempt %d of 3): %s",
                              self.message_id, attempt + 1, _short(exc))
                    time.sleep(0.2)
        self._done.set()
        if self.on_finish is not None:
            try:
                self.on_finish(self)
            except Exception as exc:
                log.warning("on_finish of the answer %s failed: %s", self.message_id, _short(exc))


def _short(exc: BaseException) -> str:
    """An exception in one line for the log (a database error's first line, not its parameters)."""
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200] if text else ''}"


class Registry:
    """The live generations of this process, by message id (one per app process), at most
    `max_live` streaming at once: each holds two threads and a connection to the model."""

    def __init__(self, max_live: int = MAX_LIVE) -> None:
        self._lock = threading.Lock()
        self._live: dict[str, Generation] = {}
        self.max_live = max_live

    def start(self, generation: Generation) -> Generation:
        """Start it, or, when `max_live` answers already stream, end it at once as failed with a
        plain message (saved with the message like any error, so the page shows it)."""
        key = generation.message_id or str(id(generation))
        with self._lock:
            self._live = {k: g for k, g in self._live.items() if not g.done or time.monotonic() - g.started_at < 600}
            running = sum(1 for g in self._live.values() if not g.done)
            if running < self.max_live:
                self._live[key] = generation
                generation.start()
                return generation
        log.warning("Refused an answer: %d answers are already streaming in this process", running)
        return generation.refuse(Busy(limit=self.max_live))

    def get(self, message_id: str) -> Generation | None:
        with self._lock:
            return self._live.get(message_id)

    def running(self) -> list[Generation]:
        with self._lock:
            return [g for g in self._live.values() if not g.done]
