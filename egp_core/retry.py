"""The retry policy, written once: what is retried, and how long to wait.

Retried: connection errors, connect timeouts, read timeouts of reads (listing
models; never of a generation, which may be running and billed on the server:
the client marks those not retryable), 408, 409, 429 and 5xx (the errors whose
`retryable` is true), up to `max_retries` times, waiting 0.5 s doubling each
time, capped at 8 s, with jitter (the newer SDKs' policy). A server-given
`Retry-After` / `retry-after-ms` is honoured when it is at most 60 s; a longer
wait is not slept through: the error is raised at once, carrying the delay, so
the person can be told when to come back. Streams are never retried once text
has been yielded (the client enforces that; this module only decides delays).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TypeVar

from .errors import EGPError

T = TypeVar("T")

RETRY_STATUSES = frozenset({408, 409, 429}) | frozenset(range(500, 600))
MAX_SERVER_DELAY = 60.0


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from `retry-after-ms` or `Retry-After` (seconds or an HTTP date), or None."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


@dataclass
class RetryPolicy:
    max_retries: int = 2
    initial_delay: float = 0.5
    max_delay: float = 8.0

    def backoff(self, attempt: int) -> float:
        """Delay before retry number `attempt` (0-based) when the server gave none."""
        delay = min(self.initial_delay * 2**attempt, self.max_delay)
        return delay * (1 - 0.25 * random.random())

    def delay_for(self, error: EGPError, attempt: int) -> float | None:
        """Seconds to wait before trying again, or None if `error` must be raised now."""
        if not error.retryable or attempt >= self.max_retries:
            return None
        server_delay = getattr(error, "retry_after", None)
        if server_delay is not None:
            return server_delay if server_delay <= MAX_SERVER_DELAY else None
        return self.backoff(attempt)

    def run(self, attempt_fn: Callable[[], T], on_retry: Callable[[EGPError, float], None] | None = None,
            stop: threading.Event | None = None) -> T:
        """Call `attempt_fn` until it returns, retrying retryable EGPErrors per the policy.

        The wait between attempts is a wait on `stop`: setting it (Stop, closing the client) ends
        the wait at once, and the last error is raised instead of trying again."""
        stop = stop if stop is not None else threading.Event()
        attempt = 0
        while True:
            try:
                return attempt_fn()
            except EGPError as error:
                delay = None if stop.is_set() else self.delay_for(error, attempt)
                if delay is None:
                    raise
                if on_retry is not None:
                    on_retry(error, delay)
                if stop.wait(delay):
                    raise
                attempt += 1
