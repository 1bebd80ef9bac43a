"""One exception class per failure a person must tell apart.

Each carries `user_message`, one sentence for a non-programmer saying what
happened and what to do, and `detail`, the technical part (status, body
excerpt, URL without secrets) for an expander below it.
"""

from __future__ import annotations

import json


class EGPError(Exception):
    """Base class. `retryable` says whether the retry policy may try again."""

    user_message = "Something went wrong while talking to the model."
    retryable = False

    def __init__(
        self,
        user_message: str | None = None,
        *,
        status: int | None = None,
        url: str | None = None,
        body: str | None = None,
        detail: str | None = None,
    ) -> None:
        if user_message:
            self.user_message = user_message
        self.status = status
        self.url = url
        self.body = (body or "")[:500]
        self._detail = detail
        super().__init__(self.user_message)

    @property
    def detail(self) -> str:
        parts = []
        if self.status is not None:
            parts.append(f"HTTP {self.status}")
        if self.url:
            parts.append(self.url)
        if self._detail:
            parts.append(self._detail)
        if self.body:
            parts.append(f"Response: {self.body}")
        return " | ".join(parts) or type(self).__name__

    @property
    def kind(self) -> str:
        return type(self).__name__


class AuthenticationError(EGPError):
    """401 / 403: missing, wrong or unauthorised API key."""

    user_message = "The API key was rejected. Check it in Settings."


class NotFoundError(EGPError):
    """404: unknown model or path."""

    user_message = "The model or address was not found. Pick another model or check the endpoint URL in Settings."


class InvalidRequestError(EGPError):
    """400 / 422: the server refused the request; `messages` holds its own words."""

    user_message = "The server refused the request."

    def __init__(self, user_message: str | None = None, *, messages: list[str] | None = None, **kw) -> None:
        self.messages = list(messages or [])
        if user_message is None and self.messages:
            user_message = "The server refused the request: " + "; ".join(self.messages)
        super().__init__(user_message, **kw)


class RateLimitError(EGPError):
    """429: too many requests. `retry_after` in seconds when the server said."""

    user_message = "The server is busy with too many requests. Wait a moment and try again."
    retryable = True

    def __init__(self, user_message: str | None = None, *, retry_after: float | None = None, **kw) -> None:
        self.retry_after = retry_after
        if user_message is None and retry_after is not None:
            user_message = f"The server is busy with too many requests. Try again in {retry_after:.0f} seconds."
        super().__init__(user_message, **kw)


class ServerError(EGPError):
    """5xx, or an error the server reported in the middle of a stream."""

    user_message = "The server had a problem answering. Try again in a moment."
    retryable = True

    def __init__(self, user_message: str | None = None, *, retry_after: float | None = None, **kw) -> None:
        self.retry_after = retry_after
        super().__init__(user_message, **kw)


class TimeoutError(EGPError):  # noqa: A001 - our own, distinct from the builtin
    """No connection within the connect timeout, or no byte within the read timeout."""

    user_message = "The server took too long to answer. Try again, or ask for a shorter answer."
    retryable = True


class ConnectionFailed(EGPError):
    """The server could not be reached at all."""

    user_message = "Could not reach the server. Check the endpoint URL and your network."
    retryable = True


class ProtocolError(EGPError):
    """The server answered something that is not the EGP protocol (bad JSON, cut stream)."""

    user_message = "The server sent an answer we could not read. Try again; if it keeps happening, check the endpoint URL."


class RequestTooLarge(EGPError):
    """The prompt does not fit the model's context (detected before sending)."""

    user_message = "The message is too long for this model. Shorten it or start a new chat."


def error_to_dict(error: EGPError) -> dict[str, str]:
    """What is saved with a failed message: kind, the person's message, the detail."""
    return {"kind": error.kind, "message": error.user_message, "detail": error.detail}


def error_from_dict(data: dict | str | None) -> EGPError | None:
    """Rebuild a saved error (an unknown kind becomes the base class)."""
    if not data:
        return None
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except ValueError:
            return EGPError(data)
        if not isinstance(data, dict):
            return EGPError(str(data))
    classes = {cls.__name__: cls for cls in EGPError.__subclasses__()}
    classes["EGPError"] = EGPError
    cls = classes.get(str(data.get("kind")), EGPError)
    error = cls.__new__(cls)
    EGPError.__init__(error, data.get("message") or None, detail=data.get("detail"))
    error.retry_after = None
    error.messages = []
    return error
