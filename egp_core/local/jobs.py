"""A generation request (`Job`) and the events it produces (`Delta`, `Finished`, `Failed`)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from egp_core.local.sampling import SamplingParams, TokenLogprob

STOPPED_MESSAGE = "The local model stopped before finishing this answer (the request was cancelled or the server is shutting down). Try again."


@dataclass(frozen=True, slots=True)
class Delta:
    text: str
    logprobs: tuple[TokenLogprob, ...] = ()  # the tokens behind `text`, when the job asked for logprobs


@dataclass(frozen=True, slots=True)
class Finished:
    finish_reason: str  # "stop" or "length"
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0  # prompt tokens whose KV state was reused, not evaluated


@dataclass(frozen=True, slots=True)
class Failed:
    message: str
    status: int = 500  # for a whole (non-streamed) answer: 503 when trying again may work


Event = Delta | Finished | Failed
Sink = Callable[[Event], None]


class Job:
    """One generation request: prompt tokens, parameters, and where its events go (from the engine's thread)."""

    def __init__(self, tokens: Sequence[int], params: SamplingParams, sink: Sink) -> None:
        self.tokens = list(tokens)
        self.params = params
        self.sink = sink
        self.cancelled = threading.Event()
        self.done = threading.Event()

    def report(self, event: Event) -> None:
        """Delivers an event; a broken sink never stops the engine."""
        try:
            self.sink(event)
        except Exception:  # noqa: BLE001
            import logging

            logging.getLogger(__name__).exception("could not deliver an event")
